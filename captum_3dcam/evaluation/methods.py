"""The methods of the localization tables, as data: one :class:`Method` per row.

Lives here: :class:`Method`, the registry (:data:`METHODS`, :func:`get_method`,
:func:`available_methods`), the map providers of the baselines and peers (Captum's
``LayerGradCam``, a random map, pytorch-grad-cam, torch-cam) and :func:`peer_status`. Does not live
here: running them over a dataset (:mod:`captum_3dcam.evaluation.engine`) and the tables
(:mod:`captum_3dcam.evaluation.tables`).

A method of ours is data: keyword arguments of :meth:`GlobalLocal3DCam.attribute`
(``layer_rule``, ``aggregation``, ``normalize_layers``, ...), which layers, and optionally its own
box configuration. Adding a configuration is one entry of :data:`METHODS`::

    Method("gradcampp_sum", "rule gradcam++, sum of layers", {"layer_rule": "gradcam++"})

A preset of :mod:`captum_3dcam.attr.presets` is evaluated by name, ``"preset:localize"``. Methods
whose keyword arguments differ only in ``aggregation`` (and their layers) share one model pass.
A peer whose package cannot be imported is skipped with the reason (:func:`peer_status`).
"""
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ..errors import Captum3DCamError
from ..attr.upsample import upsample_to

__all__ = [
    "Method", "Context", "METHODS", "get_method", "available_methods", "method_layers", "unavailable", "peer_status",
]


@dataclass
class Context:
    """What a provider sees: the model, the evaluated layers (shallow to deep), a seeded generator."""

    model: nn.Module
    layers: List[nn.Module]
    names: List[str]
    generator: torch.Generator


@dataclass(frozen=True)
class Method:
    """One row of the tables.

    Attributes:
        name: the key in results and on the command line (``"3dcam_sum"``).
        label: the row's text in the paper tables.
        attribute: keyword arguments of :meth:`GlobalLocal3DCam.attribute` (ours).
        layers: ``"all"`` (the evaluated layers), ``"last"``, or layer names.
        counterfactual: use :class:`Counterfactual3DCam` (eq. 4).
        rescale: ``"minmax"``: each layer map scaled to ``[0, 1]`` per sample before the
            aggregation (as pytorch-grad-cam does), from the same pass.
        boxes: keyword arguments of :func:`attribution_to_boxes` for this row's main metrics
            (default: the run's ``threshold`` and ``region``).
        provider: for baselines and peers, ``(Context, x, target) -> maps (N, 1, T, H, W)``;
            ``None`` for 3DCam configurations.
        requires: the module a peer imports; the method is skipped when it cannot.
    """

    name: str
    label: str
    attribute: Mapping[str, Any] = field(default_factory=dict)
    layers: Union[str, Tuple[str, ...]] = "all"
    counterfactual: bool = False
    rescale: Optional[str] = None
    boxes: Optional[Mapping[str, Any]] = None
    provider: Optional[Callable[[Context, Tensor, Tensor], Tensor]] = None
    requires: Optional[str] = None

    @property
    def is_peer(self) -> bool:
        """A method of another library (pytorch-grad-cam, torch-cam)."""
        return self.requires is not None

    @classmethod
    def from_preset(cls, name: str, preset: Mapping[str, Any]) -> "Method":
        """A method from a preset dict ``{"attribute": {...}, "boxes": {...}, "layers": ...}``."""
        layers = preset.get("layers", "all")
        layers = tuple(layers) if isinstance(layers, (list, tuple)) else "all"
        return cls(f"preset:{name}", f"preset `{name}`", dict(preset.get("attribute", {})), layers,
                   boxes=dict(preset.get("boxes", {})) or None)


def method_layers(method: Method, names: Sequence[str]) -> List[str]:
    """The layer names ``method`` uses among the evaluated ``names`` (shallow to deep)."""
    if method.layers == "all":
        return list(names)
    if method.layers == "last":
        return list(names[-1:])
    return list(method.layers)


# ---------------------------------------------------------------------------------------------
# providers: baselines and peers


def _captum_gradcam(ctx: Context, x: Tensor, target: Tensor) -> Tensor:
    from captum.attr import LayerGradCam

    cam = LayerGradCam(ctx.model, ctx.layers[-1]).attribute(x, target=target, relu_attributions=True)
    return upsample_to(cam.detach(), tuple(x.shape[2:]))


def _random(ctx: Context, x: Tensor, target: Tensor) -> Tensor:
    noise = torch.rand((x.shape[0], 1, *x.shape[2:]), generator=ctx.generator)
    return noise.to(device=x.device, dtype=x.dtype)


def _pgc(class_name: str):
    def provider(ctx: Context, x: Tensor, target: Tensor) -> Tensor:
        pgc = importlib.import_module("pytorch_grad_cam")
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        with getattr(pgc, class_name)(model=ctx.model, target_layers=list(ctx.layers)) as cam:
            maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(c)) for c in target])
        return torch.as_tensor(maps, dtype=x.dtype)[:, None]

    return provider


def _torchcam(class_name: str):
    def provider(ctx: Context, x: Tensor, target: Tensor) -> Tensor:
        methods = importlib.import_module("torchcam.methods")
        extractor = getattr(methods, class_name)(ctx.model, target_layer=list(ctx.names),
                                                 input_shape=tuple(x.shape[1:]))
        try:
            with torch.enable_grad():
                cams = extractor(class_idx=[int(c) for c in target], scores=ctx.model(x))
            fused = extractor.fuse_cams([c.detach() for c in cams], target_shape=tuple(x.shape[2:]))
        finally:
            extractor.remove_hooks()
        if fused.dim() == 4 and len(cams) == 1:  # a single layer is returned as it is
            fused = upsample_to(fused[:, None], tuple(x.shape[2:]))[:, 0]
        return fused[:, None].to(x.dtype)

    return provider


_PGC, _TORCHCAM = "pytorch_grad_cam", "torchcam.methods"
_MINMAX = "minmax"

#: The fixed methods in table order (``3dcam_layer:<name>`` and ``preset:<name>`` are made on demand).
METHODS: Dict[str, Method] = {m.name: m for m in [
    Method("gradcam_last", "Captum LayerGradCam, last layer (baseline)", layers="last", provider=_captum_gradcam),
    Method("3dcam_sum", "**3DCam sum, all layers (default)**"),
    Method("3dcam_mean", "3DCam avg, all layers", {"aggregation": "mean"}),
    Method("3dcam_max", "3DCam max, all layers", {"aggregation": "max"}),
    Method("3dcam_sum_minmax", "3DCam sum, per-layer min-max normalization", rescale=_MINMAX),
    Method("3dcam_sum_raw", "3DCam sum, no per-layer normalization", {"normalize_layers": False}),
    Method("gradcam_rule_sum", "rule gradcam, sum of layers", {"layer_rule": "gradcam"}),
    Method("gradcam_rule_sum_minmax", "rule gradcam, sum of min-max normalized layers", {"layer_rule": "gradcam"},
           rescale=_MINMAX),
    Method("layercam_rule_sum", "rule layercam, sum of layers", {"layer_rule": "layercam"}),
    Method("layercam_rule_sum_minmax", "rule layercam, sum of min-max normalized layers", {"layer_rule": "layercam"},
           rescale=_MINMAX),
    Method("gradcampp_rule_sum", "rule gradcam++, sum of layers", {"layer_rule": "gradcam++"}),
    Method("gradcampp_rule_sum_minmax", "rule gradcam++, sum of min-max normalized layers",
           {"layer_rule": "gradcam++"}, rescale=_MINMAX),
    Method("gradcampp_rule_sum_raw", "rule gradcam++, sum of raw layers",
           {"layer_rule": "gradcam++", "normalize_layers": False}),
    Method("xgradcam_rule_sum", "rule xgradcam, sum of layers", {"layer_rule": "xgradcam"}),
    Method("counterfactual_sum", "Counterfactual 3DCam (eq. 4), sum", counterfactual=True),
    Method("random", "random map (uniform noise, a floor)", layers=(), provider=_random),
    Method("pgc_gradcam", "pytorch-grad-cam GradCAM, all layers", provider=_pgc("GradCAM"), requires=_PGC),
    Method("pgc_gradcampp", "pytorch-grad-cam GradCAM++, all layers", provider=_pgc("GradCAMPlusPlus"), requires=_PGC),
    Method("pgc_layercam", "pytorch-grad-cam LayerCAM, all layers", provider=_pgc("LayerCAM"), requires=_PGC),
    Method("pgc_xgradcam", "pytorch-grad-cam XGradCAM, all layers", provider=_pgc("XGradCAM"), requires=_PGC),
    Method("torchcam_gradcam", "torch-cam GradCAM, all layers", provider=_torchcam("GradCAM"), requires=_TORCHCAM),
    Method("torchcam_gradcampp", "torch-cam GradCAMpp, all layers", provider=_torchcam("GradCAMpp"),
           requires=_TORCHCAM),
    Method("torchcam_layercam", "torch-cam LayerCAM, all layers", provider=_torchcam("LayerCAM"), requires=_TORCHCAM),
]}
_LAYER_PREFIX, _PRESET_PREFIX = "3dcam_layer:", "preset:"
_PEER_NAMES = {_PGC: "pytorch-grad-cam", _TORCHCAM: "torch-cam"}
_PEER_PIP = {_PGC: "grad-cam", _TORCHCAM: "torchcam"}


def _presets() -> Dict[str, Mapping[str, Any]]:
    """``{name: preset}`` of :mod:`captum_3dcam.attr.presets`."""
    from ..attr.presets import PRESETS

    return dict(PRESETS)


def get_method(name: Union[str, Method], layer_names: Sequence[str] = ()) -> Method:
    """The :class:`Method` called ``name``: a key of :data:`METHODS`, ``"3dcam_layer:<layer>"`` or
    ``"preset:<name>"``. A :class:`Method` is returned as it is."""
    if isinstance(name, Method):
        return name
    if name in METHODS:
        return METHODS[name]
    if name.startswith(_LAYER_PREFIX) and name[len(_LAYER_PREFIX):] in layer_names:
        layer = name[len(_LAYER_PREFIX):]
        return Method(name, f"3DCam single layer `{layer}`", layers=(layer,))
    if name.startswith(_PRESET_PREFIX) and name[len(_PRESET_PREFIX):].lower() in _presets():
        key = name[len(_PRESET_PREFIX):].lower()
        return Method.from_preset(key, _presets()[key])
    raise Captum3DCamError(f"methods: unknown {name!r}; known: {available_methods(layer_names)}")


def available_methods(layer_names: Sequence[str] = ()) -> List[str]:
    """Every method name known for these layers, in table order (peers included)."""
    fixed = list(METHODS)
    at = fixed.index("3dcam_sum_raw")
    per_layer = [f"{_LAYER_PREFIX}{n}" for n in layer_names]
    presets = [f"{_PRESET_PREFIX}{k}" for k in _presets()]
    return fixed[:at] + per_layer + presets + fixed[at:]


_IMPORTS: Dict[str, Optional[str]] = {}


def unavailable(method: Method) -> Optional[str]:
    """Why ``method`` cannot run here (its package does not import), or ``None``."""
    if method.requires is None:
        return None
    if method.requires not in _IMPORTS:
        try:
            importlib.import_module(method.requires)
            _IMPORTS[method.requires] = None
        except Exception as exc:  # noqa: BLE001  (any failure of a third-party import)
            _IMPORTS[method.requires] = (
                f"{_PEER_NAMES[method.requires]} is not importable here ({type(exc).__name__}: {exc}); "
                f"pip install {_PEER_PIP[method.requires]} (with torchvision) to compare with it")
    return _IMPORTS[method.requires]


def peer_status() -> Dict[str, str]:
    """Whether each peer library can be used here: ``"imported"`` or the reason it is skipped."""
    probe = {_PGC: METHODS["pgc_gradcam"], _TORCHCAM: METHODS["torchcam_gradcam"]}
    return {_PEER_NAMES[k]: unavailable(m) or "imported" for k, m in probe.items()}
