"""Whether a model may see the whole frame (``--full-frame``), and its preprocessing either way.

    from captum_3dcam.models.full_frame import model_preprocess

    preprocess = model_preprocess(get_model_spec("i3d-kinetics400"), full_frame=True)  # checked, no weights read
    clip, geometry = preprocess(frames)     # (1, 3, T, 256, W_r): the whole frame, geometry.crop_box (0, 0, W_r, H_r)

A model whose head averages over space (:attr:`ModelSpec.fully_convolutional
<captum_3dcam.models.registry.ModelSpec>`: I3D, S3D, torchvision's ResNets, the Small3DCNN) takes
frames of any size, so its input can be the whole frame resized to the model's scale instead of the
centre crop. A head of fixed input size (Hara et al.'s ResNeXt-101: 16 x 112 x 112) cannot:
:func:`check_full_frame` refuses it in one line before any weight is read.

Lives here: :func:`check_full_frame`, :func:`model_preprocess`. Does not live here: the
preprocessing functions (:mod:`captum_3dcam.video.preprocess`), the registry (:mod:`.registry`),
the options of the commands (:mod:`captum_3dcam.cli`).
"""
from __future__ import annotations  # torch is imported by the functions that need it

import functools
from typing import TYPE_CHECKING, Callable

from ..errors import Captum3DCamError

if TYPE_CHECKING:
    from .registry import ModelSpec

__all__ = ["check_full_frame", "model_preprocess"]


def _input_size(spec: ModelSpec) -> str:
    """``" (T x h x w)"``: the clip the model's head was built for (its preprocessing of a tiny frame), or ``""``."""
    import torch

    try:
        clip, _ = spec.preprocess(torch.zeros(max(1, int(spec.min_frames)), 2, 2, 3, dtype=torch.uint8))
        return f" ({spec.clip_len} x {clip.shape[-2]} x {clip.shape[-1]})"
    except (ImportError, ValueError, TypeError):  # an optional package missing: the size is only a detail
        return ""


def check_full_frame(spec: ModelSpec, full_frame: bool) -> None:
    """Refuse ``full_frame=True`` for a model that is not fully convolutional; nothing is loaded.

    Raises:
        TypeError: ``full_frame`` is not a bool.
        Captum3DCamError: one line naming ``--full-frame``, the model and why, e.g. ``--full-frame:
            resnext101 has a classifier of fixed input size (16 x 112 x 112); it only sees the centre crop``.
    """
    if not isinstance(full_frame, bool):
        raise TypeError(f"full_frame: expected a bool, got {type(full_frame).__name__} {full_frame!r:.40}")
    if full_frame and not getattr(spec, "fully_convolutional", False):
        raise Captum3DCamError(f"--full-frame: {spec.name} has a classifier of fixed input size{_input_size(spec)}; "
                               "it only sees the centre crop (drop --full-frame)")


def model_preprocess(spec: ModelSpec, full_frame: bool = False) -> Callable:
    """``frames (T, H, W, 3) -> (clip (1, 3, T, h, w), geometry)`` for ``spec``'s model.

    ``full_frame=False``: ``spec.preprocess`` itself (the short side resized, the centre crop).
    ``full_frame=True``: ``spec.preprocess(frames, crop=False)``, the whole frame at the model's
    scale, after :func:`check_full_frame`.
    """
    check_full_frame(spec, full_frame)
    return functools.partial(spec.preprocess, crop=False) if full_frame else spec.preprocess
