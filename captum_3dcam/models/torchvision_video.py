"""torchvision's Kinetics-400 video models (``r3d_18``, ``mc3_18``, ``r2plus1d_18``, ``s3d``) from local weights.

    from captum_3dcam.models.torchvision_video import load_torchvision_video, torchvision_transforms

    model = load_torchvision_video("r3d_18")         # the weights from the torch hub cache (or checkpoint=...)
    clip, geometry = preprocess_torchvision(frames, torchvision_transforms("r3d_18"))

Lives here: :data:`TORCHVISION_VIDEO_MODELS`, :func:`torchvision_weights` (the ``KINETICS400_V1``
weights enum), :func:`torchvision_weights_file` (where torchvision keeps the downloaded file),
:func:`torchvision_transforms` and :func:`load_torchvision_video`. Weights are read from a local
file only (``checkpoint=`` or the torch hub cache, ``torch.hub.get_dir()/checkpoints``), with
``torch.load(weights_only=True)``; nothing is downloaded here, so nothing surprising happens on a
machine without network. To get them once on a machine with network::

    python -c "from torchvision.models.video import R3D_18_Weights as W; W.KINETICS400_V1.get_state_dict(progress=True)"

Does not live here: the preprocessing (:func:`captum_3dcam.video.preprocess.preprocess_torchvision`),
the layer presets (:mod:`.presets`), the ``--model torchvision:<name>`` entries (:mod:`.registry`).
torchvision is imported by these functions only.
"""
from __future__ import annotations  # torch is imported by the functions: the registry reads this module for --help

from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

from ..errors import Captum3DCamError

if TYPE_CHECKING:
    import torch

__all__ = ["TORCHVISION_VIDEO_MODELS", "torchvision_weights", "torchvision_weights_file", "torchvision_transforms",
           "load_torchvision_video", "TORCHVISION_INSTALL_HINT"]

#: Model builder name -> (weights enum name, fewest input frames, classifier weight key).
TORCHVISION_VIDEO_MODELS = {
    "r3d_18": ("R3D_18_Weights", 1, "fc.weight"),
    "mc3_18": ("MC3_18_Weights", 1, "fc.weight"),
    "r2plus1d_18": ("R2Plus1D_18_Weights", 1, "fc.weight"),
    "s3d": ("S3D_Weights", 14, "classifier.1.weight"),
}

TORCHVISION_INSTALL_HINT = (
    "pip install torchvision matching your torch (a CPU-only machine keeps the small CPU build with "
    "`pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu`)"
)


def video_module():
    try:
        import torchvision.models.video as video
    except ImportError as exc:
        raise ImportError(f"torchvision's video models need torchvision: {TORCHVISION_INSTALL_HINT}") from exc
    return video


def _check_arch(arch: str) -> str:
    if arch not in TORCHVISION_VIDEO_MODELS:
        raise Captum3DCamError(f"arch: expected one of {', '.join(TORCHVISION_VIDEO_MODELS)}, got {arch!r}")
    return arch


def torchvision_weights(arch: str):
    """The ``KINETICS400_V1`` weights enum of ``arch`` (its ``url``, ``meta`` and ``transforms()``)."""
    return getattr(video_module(), TORCHVISION_VIDEO_MODELS[_check_arch(arch)][0]).KINETICS400_V1


def torchvision_weights_file(arch: str) -> Path:
    """Where torchvision keeps ``arch``'s downloaded weights: ``torch.hub.get_dir()/checkpoints/<file>``."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / Path(torchvision_weights(arch).url).name


def torchvision_transforms(arch: str):
    """``weights.transforms()`` of ``arch`` (no weights file needed)."""
    return torchvision_weights(arch).transforms()


def load_torchvision_video(arch: str, checkpoint: Optional[Union[str, Path]] = None) -> torch.nn.Module:
    """torchvision's ``arch`` (eval mode) with weights from ``checkpoint`` or the torch hub cache.

    The checkpoint is a state dict (or ``{"state_dict": ...}`` / ``{"model": ...}``) of the
    torchvision model; the number of classes is read from its classifier, and a 400-class model
    gets the Kinetics-400 names as ``model.labels``. Loading is all or nothing
    (:func:`~captum_3dcam.models.checkpoints.load_state_dict_exact`).

    Raises:
        ImportError: torchvision is not installed (the message says how to keep a CPU build).
        Captum3DCamError: no checkpoint given and none in the hub cache (the message gives the
            file, the URL and the one-line download command), or an unknown ``arch``.
    """
    import torch

    from .checkpoints import load_state_dict_exact, read_torch_checkpoint

    weights = torchvision_weights(arch)
    if checkpoint is None:
        path = torchvision_weights_file(arch)
        if not path.is_file():
            raise Captum3DCamError(
                f"--checkpoint: no weights for torchvision's {arch} at {path} (the torch hub cache). Get them "
                f"once on a machine with network: python -c \"from torchvision.models.video import "
                f"{TORCHVISION_VIDEO_MODELS[arch][0]} as W; W.KINETICS400_V1.get_state_dict(progress=True)\" "
                f"(or download {weights.url} into {path.parent}), or pass --checkpoint FILE")
    else:
        path = Path(checkpoint)
        if not path.is_file():
            raise Captum3DCamError(f"--checkpoint: no file at {path}")
    state = read_torch_checkpoint(path)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise Captum3DCamError(f"--checkpoint: {path} holds a {type(state).__name__}, expected a state dict")
    head = state.get(TORCHVISION_VIDEO_MODELS[arch][2])
    num_classes = int(head.shape[0]) if isinstance(head, torch.Tensor) else len(weights.meta["categories"])
    model = getattr(video_module(), arch)(weights=None, num_classes=num_classes)
    load_state_dict_exact(model, state, source=str(path))
    if num_classes == len(weights.meta["categories"]):
        model.labels = tuple(weights.meta["categories"])
    return model.eval()
