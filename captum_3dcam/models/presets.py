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
PyTorchVideo SlowFast        res3, res4, res5 of BOTH pathways, shallow to deep, the fast one
(``Net``, ``SlowFastClip``,  first in each stage: ``blocks.2.multipathway_blocks.1`` (fast),
``PathwayInputs``)           ``blocks.2.multipathway_blocks.0`` (slow), ``blocks.3...``,
                             ``blocks.4...`` (``net.`` first in PathwayInputs); the last, the
                             gate of a gated preset, is the slow res5 (2048 of the head's 2304
                             features)
PyTorchVideo X3D, Slow,      the last three ``ResStage`` blocks (res3, res4, res5): ``blocks.2,
I3D, R(2+1)D, CSN (``Net``)  blocks.3, blocks.4`` (I3D-R50: ``blocks.3, .4, .5``, after its pool)
===========================  ===================================================================

Neither torchvision nor PyTorchVideo is imported here: their models are recognised by class name
(PyTorchVideo's ``Net`` by its blocks' classes).

Does not live here: the models known by name (:mod:`.registry`) and the attribution presets
(``captum_3dcam.attr.presets``).
"""
from typing import List, Sequence

from torch import nn

from .._utils import resolve_layers
from .gating import LayerwiseGatedClassifier
from .pathways import PathwayInputs, SlowFastClip

__all__ = ["default_layer_names", "default_layers", "get_layers"]

def _s3d_inception_blocks(model: nn.Module) -> List[str]:
    # torchvision's S3D.features: indices 5, 6, 8-12, 14, 15 are the SepInceptionBlock3D blocks
    return [f"features.{i}" for i, m in enumerate(model.features) if "Inception" in type(m).__name__]


_TORCHVISION_PRESETS = {
    "VideoResNet": lambda model: ["stem", "layer1", "layer2", "layer3", "layer4"],
    "S3D": _s3d_inception_blocks,
}


def _pytorchvideo_stages(blocks: nn.ModuleList) -> List[str]:
    """The last three residual stages of a PyTorchVideo network's ``blocks``: ``blocks.i`` for a
    ``ResStage``, ``blocks.i.multipathway_blocks.j`` for every pathway j of a multi-pathway stage,
    the last pathway (SlowFast's fast one) first: the slow pathway's res5 ends the list."""
    stages = []
    for i, block in enumerate(blocks):
        paths = getattr(block, "multipathway_blocks", None)
        if type(block).__name__ == "ResStage":
            stages.append([f"blocks.{i}"])
        elif isinstance(paths, nn.ModuleList) and all(type(p).__name__ == "ResStage" for p in paths):
            stages.append([f"blocks.{i}.multipathway_blocks.{j}" for j in reversed(range(len(paths)))])
    return [name for stage in stages[-3:] for name in stage]


def _pytorchvideo_preset(model: nn.Module) -> List[str]:
    """PyTorchVideo's ``Net``, or our :class:`~.pathways.SlowFastClip` that runs its blocks; ``[]`` otherwise."""
    blocks = getattr(model, "blocks", None)
    mine = isinstance(model, SlowFastClip)
    if not isinstance(blocks, nn.ModuleList) or not (mine or type(model).__module__.startswith("pytorchvideo")):
        return []
    return _pytorchvideo_stages(blocks)


def default_layer_names(model: nn.Module) -> List[str]:
    """Qualified names (as in ``model.named_modules()``) of the preset layers of ``model``.

    Models defining a ``layer_names`` property (I3D, 3D ResNeXt, Small3DCNN here) use it;
    torchvision's video models are recognised by class, PyTorchVideo's by their blocks (SlowFast:
    both pathways); a :class:`~captum_3dcam.models.pathways.PathwayInputs` gets its network's
    (``net.<name>``); a
    :class:`~captum_3dcam.models.gating.LayerwiseGatedClassifier` gets its backbone's (``backbone.<name>``).

    Raises:
        TypeError: ``model`` is not an ``nn.Module`` or has no preset (pass layers explicitly).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, LayerwiseGatedClassifier):  # the backbone's preset, inside the gated model
        return [f"backbone.{name}" for name in default_layer_names(model.backbone)]
    if isinstance(model, PathwayInputs):  # the wrapped network's preset, inside the wrapper
        return [f"net.{name}" for name in default_layer_names(model.net)]
    names = getattr(model, "layer_names", None)
    if names is not None:
        return list(names)
    names = _pytorchvideo_preset(model)
    if names:
        return names
    preset = _TORCHVISION_PRESETS.get(type(model).__name__)
    if preset is not None and type(model).__module__.startswith("torchvision"):
        return preset(model)
    raise TypeError(
        f"model: no default layers for {type(model).__name__}; supported: InceptionI3d, ResNeXt3D, Small3DCNN, "
        "torchvision r3d_18 / mc3_18 / r2plus1d_18 / s3d, PyTorchVideo's ResNet-style networks (SlowFast, X3D, ...). "
        "Pass the layer modules explicitly instead"
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
