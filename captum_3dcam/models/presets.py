"""Layer presets: which layers 3DCam aggregates for each supported architecture.

===========================  ===================================================================
model                        default layers (shallow to deep)
===========================  ===================================================================
I3D (:class:`InceptionI3d`)  ``Mixed_3b, Mixed_3c, Mixed_4b..Mixed_4f, Mixed_5b, Mixed_5c``
                             (the paper's "mostly mixed" I3D layers; the reference measurement
                             in the data README aggregates all Mixed layers)
3D ResNeXt (Hara et al.)     ``relu`` (conv1 stage after BN + ReLU), ``layer1..layer4``
                             (the paper's "layer 5+4+3+2+1")
torchvision ``r3d_18``,      ``stem, layer1, layer2, layer3, layer4`` (post-activation outputs)
``mc3_18``, ``r2plus1d_18``
torchvision ``s3d``          the Inception blocks ``features.5, .6, .8-.12, .14, .15``
                             (Mixed_3b ... Mixed_5c, as for I3D)
:class:`Small3DCNN`          ``conv1..conv4``
===========================  ===================================================================

torchvision is never imported here: its models are recognised by class name.

Does not live here: the models known by name (:mod:`.registry`) and the attribution presets
(``captum_3dcam.attr.presets``).
"""
from typing import List, Sequence

from torch import nn

from .._utils import resolve_layers
from .gating import LayerwiseGatedClassifier

__all__ = ["default_layer_names", "default_layers", "get_layers"]

def _s3d_inception_blocks(model: nn.Module) -> List[str]:
    # torchvision's S3D.features: indices 5, 6, 8-12, 14, 15 are the SepInceptionBlock3D blocks
    return [f"features.{i}" for i, m in enumerate(model.features) if "Inception" in type(m).__name__]


_TORCHVISION_PRESETS = {
    "VideoResNet": lambda model: ["stem", "layer1", "layer2", "layer3", "layer4"],
    "S3D": _s3d_inception_blocks,
}


def default_layer_names(model: nn.Module) -> List[str]:
    """Qualified names (as in ``model.named_modules()``) of the preset layers of ``model``.

    Models defining a ``layer_names`` property (I3D, 3D ResNeXt, Small3DCNN here) use it;
    torchvision's video models are recognised by class; a
    :class:`~captum_3dcam.models.gating.LayerwiseGatedClassifier` gets its backbone's (``backbone.<name>``).

    Raises:
        TypeError: ``model`` is not an ``nn.Module`` or has no preset (pass layers explicitly).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, LayerwiseGatedClassifier):  # the backbone's preset, inside the gated model
        return [f"backbone.{name}" for name in default_layer_names(model.backbone)]
    names = getattr(model, "layer_names", None)
    if names is not None:
        return list(names)
    preset = _TORCHVISION_PRESETS.get(type(model).__name__)
    if preset is not None and type(model).__module__.startswith("torchvision"):
        return preset(model)
    raise TypeError(
        f"model: no default layers for {type(model).__name__}; supported: InceptionI3d, ResNeXt3D, Small3DCNN, "
        "torchvision r3d_18 / mc3_18 / r2plus1d_18 / s3d. Pass the layer modules explicitly instead"
    )


def get_layers(model: nn.Module, names: Sequence[str]) -> List[nn.Module]:
    """The submodules of ``model`` called ``names`` (e.g. ``["Mixed_4f", "Mixed_5c"]``), in order.

    Raises:
        ValueError: a name that is not a submodule (all unknown names listed).
    """
    return resolve_layers(model, list(names), "names")[1]


def default_layers(model: nn.Module) -> List[nn.Module]:
    """The layers 3DCam aggregates for ``model`` by default (see the table above), shallow to deep.

    Example:
        >>> model = i3d_kinetics400()
        >>> cam = GlobalLocal3DCam(model, default_layers(model))
    """
    return get_layers(model, default_layer_names(model))
