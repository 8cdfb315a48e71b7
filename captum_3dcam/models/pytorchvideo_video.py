"""PyTorchVideo's Kinetics-400 3D CNNs (SlowFast, X3D, Slow, I3D, R(2+1)D, CSN) from local weights.

    from captum_3dcam.models.pytorchvideo_video import load_pytorchvideo, preprocess_pytorchvideo

    model = load_pytorchvideo("slowfast_r50")     # the weights from the torch hub cache (or checkpoint=...)
    clip, geometry = preprocess_pytorchvideo(frames, "slowfast_r50")   # (1, 3, T, 256, 256), ClipGeometry

Lives here: :data:`PYTORCHVIDEO_MODELS` (per hub builder of ``pytorchvideo.models.hub``: its
checkpoint file, frames x sampling rate, short side, crop, SlowFast's ``alpha``, the fewest frames
it takes), :func:`pytorchvideo_weights_file`, :func:`pytorchvideo_url`, :func:`build_pytorchvideo`
(the architecture, no weights), :func:`load_pytorchvideo` and :func:`preprocess_pytorchvideo`.
Every model takes ONE clip ``(N, 3, T, H, W)``: SlowFast comes as a
:class:`~captum_3dcam.models.pathways.SlowFastClip`, which packs the two pathways itself. The
heads are built without PyTorchVideo's final softmax (X3D's and R(2+1)D's have one), so the
scores are logits as for every other model here; the weights are the same.

Weights are read from a local file only (``checkpoint=`` or the torch hub cache,
``torch.hub.get_dir()/checkpoints/<file>``, where ``pretrained=True`` would put them), with
``torch.load(weights_only=True)``; nothing is downloaded here. To get them once on a machine with
network::

    python -c "import torch; torch.hub.load_state_dict_from_url('https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/SLOWFAST_8x8_R50.pyth')"

The constants are those of PyTorchVideo's model zoo and torch hub pages (mean 0.45, std 0.225 on
the 0-1 scale). ``sampling_rate`` is the frame step of training at 30 fps; the windowed pipeline
feeds consecutive frames, as for every other model here (``frames`` per window).
Not here: ``c2d_r50`` (2D convolutions), the MViT transformers and the detection models.

Does not live here: the pathway packing and the one-clip / multi-input wrappers
(:mod:`.pathways`), the default layers (:mod:`.presets`), the ``--model pytorchvideo:<name>``
entries (:mod:`.registry`). torch and pytorchvideo are imported by these functions only.
"""
from __future__ import annotations  # torch is imported by the functions: the registry reads this module for --help

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Optional, Union

from ..errors import Captum3DCamError
from .torchvision_video import TORCHVISION_INSTALL_HINT

if TYPE_CHECKING:
    import torch

__all__ = ["PyTorchVideoModel", "PYTORCHVIDEO_MODELS", "PYTORCHVIDEO_MEAN", "PYTORCHVIDEO_STD", "PYTORCHVIDEO_URL",
           "PYTORCHVIDEO_INSTALL_HINT", "pytorchvideo_url", "pytorchvideo_weights_file", "build_pytorchvideo",
           "load_pytorchvideo", "preprocess_pytorchvideo"]


class PyTorchVideoModel(NamedTuple):
    """One hub model: its checkpoint and the input it was trained on."""

    file: str  #: checkpoint file name under :data:`PYTORCHVIDEO_URL` (``{"model_state": state_dict}``)
    frames: int  #: frames per clip (SlowFast: the fast pathway's)
    sampling_rate: int  #: frame step of training (at 30 fps)
    short_side: int  #: resize of the short side, pixels
    crop_size: int  #: centre crop, pixels
    min_frames: int  #: the fewest frames the network takes (SlowFast: ``frames``, or more in steps of ``alpha``)
    alpha: Optional[int] = None  #: SlowFast: fast frames per slow frame; ``None`` for one pathway


#: Hub builder name -> its checkpoint and input (PyTorchVideo's model zoo, Kinetics-400).
PYTORCHVIDEO_MODELS = {
    "slowfast_r50": PyTorchVideoModel("SLOWFAST_8x8_R50.pyth", 32, 2, 256, 256, 32, alpha=4),
    "slowfast_r101": PyTorchVideoModel("SLOWFAST_8x8_R101.pyth", 32, 2, 256, 256, 32, alpha=4),
    "slow_r50": PyTorchVideoModel("SLOW_8x8_R50.pyth", 8, 8, 256, 256, 8),
    "i3d_r50": PyTorchVideoModel("I3D_8x8_R50.pyth", 8, 8, 256, 256, 8),
    "r2plus1d_r50": PyTorchVideoModel("R2PLUS1D_16x4_R50.pyth", 16, 4, 256, 256, 13),
    "csn_r101": PyTorchVideoModel("CSN_32x2_R101.pyth", 32, 2, 256, 256, 25),
    "x3d_xs": PyTorchVideoModel("X3D_XS.pyth", 4, 12, 182, 182, 4),
    "x3d_s": PyTorchVideoModel("X3D_S.pyth", 13, 6, 182, 182, 13),
    "x3d_m": PyTorchVideoModel("X3D_M.pyth", 16, 5, 256, 256, 16),
}

PYTORCHVIDEO_URL = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/"
PYTORCHVIDEO_MEAN = (0.45, 0.45, 0.45)  #: RGB mean, on the 0-1 scale
PYTORCHVIDEO_STD = (0.225, 0.225, 0.225)  #: RGB std, on the 0-1 scale
PYTORCHVIDEO_INSTALL_HINT = f"pip install pytorchvideo, with torchvision: {TORCHVISION_INSTALL_HINT}"


def hub_module():
    """``pytorchvideo.models.hub`` (its import warnings, fvcore's ``torch.jit.script`` deprecation, silenced)."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            import pytorchvideo.models.hub as hub
    except ImportError as exc:
        raise ImportError(f"PyTorchVideo's models need pytorchvideo: {PYTORCHVIDEO_INSTALL_HINT}") from exc
    return hub


def _check_arch(arch: str) -> PyTorchVideoModel:
    if arch not in PYTORCHVIDEO_MODELS:
        raise Captum3DCamError(f"arch: expected one of {', '.join(PYTORCHVIDEO_MODELS)}, got {arch!r}")
    return PYTORCHVIDEO_MODELS[arch]


def pytorchvideo_url(arch: str) -> str:
    """Where PyTorchVideo publishes ``arch``'s Kinetics-400 checkpoint."""
    return PYTORCHVIDEO_URL + _check_arch(arch).file


def pytorchvideo_weights_file(arch: str) -> Path:
    """Where ``pretrained=True`` keeps ``arch``'s weights: ``torch.hub.get_dir()/checkpoints/<file>``."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / _check_arch(arch).file


def build_pytorchvideo(arch: str, num_classes: int = 400) -> torch.nn.Module:
    """``arch``'s architecture with fresh weights (no file read), logits out, one clip in.

    Built as the hub builds it (``pytorchvideo.models.hub.<arch>(pretrained=False)``) with
    ``head_activation=None``; SlowFast wrapped in a :class:`~captum_3dcam.models.pathways.SlowFastClip`
    (same parameter names). Under ``torch.device("meta")`` nothing is allocated.
    """
    model = _check_arch(arch)
    net = getattr(hub_module(), arch)(pretrained=False, model_num_class=int(num_classes), head_activation=None)
    if model.alpha is None:
        return net
    from .pathways import SlowFastClip

    return SlowFastClip(net.blocks, alpha=model.alpha)


def _weights_path(arch: str, checkpoint) -> Path:
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.is_file():
            raise Captum3DCamError(f"--checkpoint: no file at {path}")
        return path
    path, url = pytorchvideo_weights_file(arch), pytorchvideo_url(arch)
    if not path.is_file():
        raise Captum3DCamError(
            f"--checkpoint: no weights for PyTorchVideo's {arch} at {path} (the torch hub cache). Get them once on a "
            f"machine with network: python -c \"import torch; torch.hub.load_state_dict_from_url('{url}')\" "
            f"(or download {url} into {path.parent}), or pass --checkpoint FILE")
    return path


def _state_dict(state, path: Path, arch: str) -> dict:
    """The state dict in a hub checkpoint (``{"model_state": ...}``), a bare one, or ``{"state_dict"|"model": ...}``."""
    description = state.get("extra", {}).get("description") if isinstance(state, dict) else None
    if isinstance(description, dict):  # captum-3dcam train: small / i3d / resnext, never a PyTorchVideo model
        from .._untrusted import short_repr

        trained = short_repr(description.get("model"))
        raise Captum3DCamError(
            f"--checkpoint: {path} was written by captum-3dcam train for --model {trained}; pytorchvideo:{arch} "
            "reads PyTorchVideo's weights ({'model_state': state_dict}): explain it with its own --model")
    for key in ("model_state", "state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise Captum3DCamError(f"--checkpoint: {path} holds a {type(state).__name__}, expected a state dict")
    return state


def load_pytorchvideo(arch: str, checkpoint: Optional[Union[str, Path]] = None) -> torch.nn.Module:
    """PyTorchVideo's ``arch`` (eval mode) with weights from ``checkpoint`` or the torch hub cache.

    The checkpoint is the hub's ``{"model_state": state_dict}`` (or a bare state dict, or
    ``{"state_dict": ...}`` / ``{"model": ...}``) of the hub network; the number of classes is
    read from its head, and a 400-class model gets the Kinetics-400 names as ``model.labels``.
    Loading is all or nothing (:func:`~captum_3dcam.models.checkpoints.load_state_dict_exact`).

    Raises:
        ImportError: pytorchvideo is not installed (the message says how to install it).
        Captum3DCamError: no checkpoint given and none in the hub cache (the message gives the
            file, the URL and the one-line download command), a checkpoint of ``captum-3dcam
            train`` (another architecture), or an unknown ``arch``.
    """
    import torch

    from .checkpoints import load_state_dict_exact, read_torch_checkpoint
    from .kinetics400_labels import KINETICS400_LABELS

    _check_arch(arch)
    hub_module()  # the install hint before any file is read
    path = _weights_path(arch, checkpoint)
    state = _state_dict(read_torch_checkpoint(path), path, arch)
    with torch.device("meta"):
        skeleton = build_pytorchvideo(arch)
    head = f"blocks.{len(skeleton.blocks) - 1}.proj.weight"
    weight = state.get(head)
    num_classes = int(weight.shape[0]) if isinstance(weight, torch.Tensor) and weight.dim() == 2 else 400
    model = build_pytorchvideo(arch, num_classes)
    load_state_dict_exact(model, state, source=str(path))
    if num_classes == len(KINETICS400_LABELS):
        model.labels = KINETICS400_LABELS
    return model.eval()


def preprocess_pytorchvideo(frames, arch: str, *, crop: bool = True):
    """``frames (T, H, W, 3)`` uint8 -> ``(clip (1, 3, T, h, w), ClipGeometry)`` for ``arch``.

    The short side resized to the model's ``short_side``, the centre ``crop_size`` square kept
    (``crop=False``: the whole resized frame, for ``--full-frame``), ``(x / 255 - 0.45) / 0.225``:
    :func:`~captum_3dcam.video.preprocess.preprocess_clip` with PyTorchVideo's constants.
    """
    from ..video.preprocess import preprocess_clip

    model = _check_arch(arch)
    return preprocess_clip(frames, short_side=model.short_side, crop_size=model.crop_size, scale=1 / 255.0,
                           mean=PYTORCHVIDEO_MEAN, std=PYTORCHVIDEO_STD, min_frames=model.min_frames, crop=crop)
