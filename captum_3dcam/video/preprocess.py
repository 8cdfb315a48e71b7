"""Frames to model input: per-model preprocessing, each with the :class:`~.geometry.ClipGeometry` back.

Lives here: :func:`preprocess_i3d` / :func:`preprocess_resnext` / :func:`preprocess_torchvision` (the
weights' own ``weights.transforms()``), the general :func:`preprocess_clip` and the plain
:func:`frames_to_clip` turn decoded frames ``(T, H, W, 3)`` into a model input ``(1, 3, T, h, w)``;
the ``preprocess_*`` functions return with it a :class:`~.geometry.ClipGeometry` that maps maps and
boxes at model resolution back to the original frame's pixels. Each resizes the short side to the
model's scale then centre-crops; ``crop=False`` keeps the whole resized frame ``(H_r, W_r)`` (for a
fully convolutional model, whose head averages over space). Does not live here: the geometry itself
(:mod:`captum_3dcam.video.geometry`), decoding and encoding (:mod:`captum_3dcam.video.io`), sliding
windows over long videos (:mod:`captum_3dcam.video.windows`).
"""
import copy
import math
import numbers
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .geometry import ClipGeometry

__all__ = [
    "centre_frame_indices", "preprocess_clip", "preprocess_i3d", "preprocess_resnext",
    "preprocess_torchvision", "frames_to_clip", "I3D_MIN_FRAMES", "ACTIVITYNET_MEAN", "SYNTHETIC_MEAN", "SYNTHETIC_STD",
]

I3D_MIN_FRAMES, _CHUNK = 9, 32  # _CHUNK: frames resized at once in preprocess_clip
ACTIVITYNET_MEAN = (114.7748, 107.7354, 99.4750)  #: Hara et al.'s (RGB, 0-255), subtracted from ResNeXt inputs
#: SyntheticActions' intensity mapping (the small model's input): ``clip = (rgb - MEAN) / STD``, rgb in [0, 1].
SYNTHETIC_MEAN, SYNTHETIC_STD = 0.5, 0.25


def _check_frames(frames) -> None:
    """RGB frames ``(T, H, W, 3)`` on the 0-255 scale: uint8, or integers / floats within ``[0, 255]``.

    Float frames whose values all lie in ``[0, 1]`` (and are not all 0) are refused: they are on
    the 0-1 scale, and reading them as 0-255 would give an almost black clip without a word.
    """
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"frames: expected a torch.Tensor (T, H, W, 3), got {type(frames).__name__}")
    if frames.dim() != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames: expected shape (T, H, W, 3) RGB, got {tuple(frames.shape)}")
    if frames.shape[0] == 0:
        raise ValueError("frames: got zero frames")
    if frames.dtype == torch.uint8:
        return
    if frames.dtype == torch.bool or frames.is_complex() or frames.device.type == "meta":
        raise TypeError(f"frames: expected uint8 RGB 0-255, got dtype {frames.dtype} on {frames.device}")
    low, high = (float(v) for v in torch.aminmax(frames.detach()))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("frames: expected finite values on the 0-255 scale, got NaN or inf")
    if low < 0 or high > 255:
        raise ValueError(f"frames: expected RGB on the 0-255 scale (uint8), got values from {low:g} to {high:g}")
    if frames.is_floating_point() and 0 < high <= 1:
        raise ValueError(f"frames: float values from {low:g} to {high:g} look like the 0-1 scale; expected uint8 "
                         "RGB 0-255 (or floats on the 0-255 scale): pass (frames * 255).round().to(torch.uint8)")


def _check_sizes(short_side, crop_size, scale, mean, std, min_frames) -> None:
    for name, value in (("short_side", short_side), ("crop_size", crop_size), ("min_frames", min_frames)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    if crop_size > short_side:
        raise ValueError(f"crop_size: must not exceed short_side ({short_side}), got {crop_size}")
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale: expected a finite number > 0, got {scale!r}")
    for name, values, positive in (("mean", mean, False), ("std", std, True)):
        try:
            values = [float(v) for v in values]
        except (TypeError, ValueError):
            raise TypeError(f"{name}: expected 3 numbers (R, G, B), got {values!r}") from None
        if len(values) != 3 or not all(math.isfinite(v) for v in values) or (positive and min(values) <= 0):
            what = "3 finite numbers > 0" if positive else "3 finite numbers"
            raise ValueError(f"{name}: expected {what} (R, G, B), got {values}")


def _check_crop(crop) -> None:
    if not isinstance(crop, bool):
        raise TypeError(f"crop: expected True (centre crop) or False (the whole frame), got {type(crop).__name__} "
                        f"{crop!r:.40}")


def centre_frame_indices(total: int, num_frames: Optional[int]) -> range:
    """Indices of the centre ``num_frames`` of ``total`` frames (all of them when ``None``).

    The window starts at ``(total - num_frames) // 2``.
    """
    if isinstance(total, bool) or not isinstance(total, numbers.Integral) or total < 0:
        raise ValueError(f"total: expected an int >= 0 (the number of frames), got {total!r}")
    if num_frames is None:
        return range(total)
    if isinstance(num_frames, bool) or not isinstance(num_frames, numbers.Integral) or num_frames < 1:
        raise ValueError(f"num_frames: expected a positive int or None, got {num_frames!r}")
    if total < num_frames:
        raise ValueError(f"frames: the model input needs {num_frames} frames (num_frames), the video has {total}")
    start = (total - num_frames) // 2
    return range(start, start + num_frames)


def preprocess_clip(
    frames: torch.Tensor,
    *,
    short_side: int,
    crop_size: int,
    scale: float,
    mean: Sequence[float],
    std: Sequence[float],
    num_frames: Optional[int] = None,
    min_frames: int = 1,
    crop: bool = True,
) -> Tuple[torch.Tensor, ClipGeometry]:
    """Centre frames in time, resize the short side, centre-crop (unless ``crop=False``), normalize.

    ``clip = (frames * scale - mean) / std`` per RGB channel, after a bilinear (antialiased)
    resize of the short side to ``short_side`` (the long side to ``round(long * short_side / short)``)
    and a centre crop ``crop_size`` starting at ``(resized - crop_size) // 2``. Frames are
    processed 32 at a time, so a long video needs memory for the output clip only.

    Args:
        frames: ``(T, H, W, 3)`` RGB, ``uint8`` (or float on the 0-255 scale; float frames in
            ``[0, 1]`` are refused, see the rule in :func:`_check_frames`).
        short_side, crop_size: resize and crop sizes in pixels (positive ints).
        scale, mean, std: normalization: ``scale > 0``, three finite ``mean``, three ``std > 0``.
        num_frames: keep the centre ``num_frames`` (``None``: every frame).
        min_frames: the fewest frames the model accepts.
        crop: ``False`` keeps the whole resized frame (no crop; ``crop_size`` is still checked):
            the clip is ``(1, 3, T', H_r, W_r)`` and ``geometry.crop_box`` is ``(0, 0, W_r, H_r)``.

    Returns:
        ``(clip, geometry)``: ``clip`` ``(1, 3, T', crop_size, crop_size)`` float32 on ``frames``'s
        device (``crop=False``: ``(1, 3, T', H_r, W_r)``), and a :class:`ClipGeometry`.

    Shape:
        ``(T, H, W, 3)`` -> ``(1, 3, T', crop_size, crop_size)``; ``crop=False``: ``(1, 3, T', H_r, W_r)``
    """
    _check_frames(frames)
    _check_sizes(short_side, crop_size, scale, mean, std, min_frames)
    _check_crop(crop)
    total, h, w, _ = frames.shape
    indices = centre_frame_indices(total, num_frames)
    if len(indices) < min_frames:
        raise ValueError(f"frames: the model needs at least {min_frames} frames, got {len(indices)}")
    if h <= w:
        hr, wr = short_side, max(int(round(w * short_side / h)), short_side)
    else:
        hr, wr = max(int(round(h * short_side / w)), short_side), short_side
    ch, cw = (crop_size, crop_size) if crop else (hr, wr)
    top, left = (hr - ch) // 2, (wr - cw) // 2
    mean_t = torch.tensor(mean, dtype=torch.float32, device=frames.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=frames.device).view(1, 3, 1, 1)
    clip = torch.empty(1, 3, len(indices), ch, cw, dtype=torch.float32, device=frames.device)
    for start in range(0, len(indices), _CHUNK):  # a few frames at a time: bounded float memory
        stop = min(start + _CHUNK, len(indices))
        x = frames[indices[start] : indices[stop - 1] + 1].permute(0, 3, 1, 2).float()  # (t, 3, H, W)
        if (hr, wr) != (h, w):
            x = F.interpolate(x, size=(hr, wr), mode="bilinear", align_corners=False, antialias=True)
        x = x[:, :, top : top + ch, left : left + cw]
        clip[0, :, start:stop] = ((x * scale - mean_t) / std_t).permute(1, 0, 2, 3)
    geometry = ClipGeometry(
        frame_size=(int(h), int(w)),
        resized_size=(hr, wr),
        crop_box=(left, top, left + cw, top + ch),
        frame_indices=indices,
    )
    return clip, geometry


def preprocess_i3d(frames: torch.Tensor, num_frames: Optional[int] = None, *,
                   crop: bool = True) -> Tuple[torch.Tensor, ClipGeometry]:
    """DeepMind I3D input: short side 256, centre crop 224, RGB in ``[-1, 1]`` (``x / 127.5 - 1``).

    Args:
        frames: ``(T, H, W, 3)`` RGB ``uint8`` (see :func:`read_video`); float frames must be on the
            0-255 scale (frames in ``[0, 1]`` are refused, not silently darkened).
        num_frames: keep the centre ``num_frames`` (e.g. 64); ``None`` keeps all. I3D needs >= 9.
        crop: ``False``: the whole frame, short side 256 (I3D averages its logits over space, so
            it takes any size): ``(1, 3, T', 256, W_r)`` for a landscape frame.

    Returns:
        ``(clip (1, 3, T', 224, 224), geometry)`` (``crop=False``: ``(1, 3, T', H_r, W_r)``).

    Shape:
        ``(T, H, W, 3)`` uint8 -> ``(1, 3, T', 224, 224)``; ``crop=False``: ``(1, 3, T', H_r, W_r)``
    """
    return preprocess_clip(
        frames, short_side=256, crop_size=224, scale=1 / 127.5, mean=(1.0, 1.0, 1.0), std=(1.0, 1.0, 1.0),
        num_frames=num_frames, min_frames=I3D_MIN_FRAMES, crop=crop,
    )


def preprocess_resnext(frames: torch.Tensor, num_frames: Optional[int] = 16, *,
                       crop: bool = True) -> Tuple[torch.Tensor, ClipGeometry]:
    """Hara et al.'s 3D ResNeXt input: short side 112, centre crop 112, 0-255 minus the ActivityNet mean.

    Args:
        frames: ``(T, H, W, 3)`` RGB ``uint8`` (floats on the 0-255 scale; ``[0, 1]`` is refused).
        num_frames: keep the centre ``num_frames`` (16 as in training); ``None`` keeps all.
        crop: ``False``: the whole frame, short side 112. Hara et al.'s network has a head of
            fixed size (16 x 112 x 112): such a clip does not go through it.

    Returns:
        ``(clip (1, 3, T', 112, 112), geometry)`` (``crop=False``: ``(1, 3, T', H_r, W_r)``).

    Shape:
        ``(T, H, W, 3)`` uint8 -> ``(1, 3, T', 112, 112)``; ``crop=False``: ``(1, 3, T', H_r, W_r)``
    """
    return preprocess_clip(
        frames, short_side=112, crop_size=112, scale=1.0, mean=ACTIVITYNET_MEAN, std=(1.0, 1.0, 1.0),
        num_frames=num_frames, crop=crop,
    )


def preprocess_torchvision(
    frames: torch.Tensor, transform, num_frames: Optional[int] = None, min_frames: int = 1, *, crop: bool = True,
) -> Tuple[torch.Tensor, ClipGeometry]:
    """A torchvision video model's input through its weights' own transforms, with the geometry back.

    ``transform`` is ``weights.transforms()`` (e.g. ``R3D_18_Weights.KINETICS400_V1.transforms()``:
    resize to ``resize_size``, centre crop ``crop_size``, ``/ 255``, normalize by the Kinetics mean
    and std). It is applied as it is, 32 frames at a time; this function only adds the
    :class:`ClipGeometry` of that resize and crop (torchvision's rounding of the crop offset), so
    maps and boxes map back to the frame. torchvision itself is not imported here. With
    ``crop=False`` a copy of ``transform`` whose ``crop_size`` is the resized frame's runs instead
    (its centre crop keeps everything): the same resize and normalization, the whole frame.

    Args:
        frames: ``(T, H, W, 3)`` RGB ``uint8`` (what :func:`~captum_3dcam.video.io.read_video` returns).
        transform: a ``torchvision.transforms._presets.VideoClassification`` (anything with
            ``resize_size``, ``crop_size`` and a ``(T, C, H, W) -> (C, T, h, w)`` call).
        num_frames: keep the centre ``num_frames`` (``None``: every frame).
        min_frames: the fewest frames the model accepts (S3D: 14).
        crop: ``False``: no crop, the clip is ``(1, 3, T', H_r, W_r)``, ``(H_r, W_r)`` the resized frame.

    Returns:
        ``(clip (1, 3, T', h, w), geometry)``, ``(h, w) = crop_size`` (``crop=False``: ``(H_r, W_r)``).

    Shape:
        ``(T, H, W, 3)`` uint8 -> ``(1, 3, T', h, w)``
    """
    _check_frames(frames)
    _check_crop(crop)
    if frames.dtype != torch.uint8:
        raise TypeError(f"frames: torchvision's video transforms expect uint8 frames, got {frames.dtype}")
    for attribute in ("resize_size", "crop_size"):
        if not hasattr(transform, attribute) or not callable(transform):
            raise TypeError(f"transform: expected weights.transforms() of a torchvision video model (with "
                            f"{attribute}), got {type(transform).__name__}")
    _check_sizes(1, 1, 1.0, (0, 0, 0), (1, 1, 1), min_frames)  # min_frames: a positive int
    total, h, w, _ = frames.shape
    indices = centre_frame_indices(total, num_frames)
    if len(indices) < min_frames:
        raise ValueError(f"frames: the model needs at least {min_frames} frames, got {len(indices)}")
    size, (ch, cw) = [int(v) for v in transform.resize_size], [int(v) for v in transform.crop_size]
    if len(size) == 2:  # torchvision.transforms.functional.resize: (h, w) exactly
        hr, wr = size
    else:  # one int: the short side, the long side truncated as torchvision does
        hr, wr = (size[0], int(size[0] * w / h)) if h <= w else (int(size[0] * h / w), size[0])
    if ch > hr or cw > wr:
        raise ValueError(f"transform: crop {ch}x{cw} is larger than the resized frame {hr}x{wr}")
    if not crop:  # the weights' own transform, its centre crop the whole resized frame
        transform, (ch, cw) = copy.copy(transform), (hr, wr)
        transform.crop_size = [hr, wr]
    top, left = int(round((hr - ch) / 2.0)), int(round((wr - cw) / 2.0))  # torchvision's center_crop
    chunks = []
    for start in range(0, len(indices), _CHUNK):
        stop = min(start + _CHUNK, len(indices))
        chunks.append(transform(frames[indices[start] : indices[stop - 1] + 1].permute(0, 3, 1, 2)))
    clip = torch.cat(chunks, dim=1).unsqueeze(0)
    geometry = ClipGeometry(frame_size=(int(h), int(w)), resized_size=(hr, wr),
                            crop_box=(left, top, left + cw, top + ch), frame_indices=indices)
    return clip, geometry


def frames_to_clip(
    frames: torch.Tensor,
    size: Optional[Tuple[int, int]] = None,
    mean: Sequence[float] = (0.5, 0.5, 0.5),
    std: Sequence[float] = (0.5, 0.5, 0.5),
) -> torch.Tensor:
    """uint8 frames -> float clip: ``(rgb / 255 - mean) / std``, optionally resized (no crop).

    ``size=(h, w)`` resizes every frame bilinearly (no crop, so a box maps back by scaling its x
    by ``W / w`` and its y by ``H / h``). The defaults give RGB in ``[-1, 1]`` (I3D's range).

    Shape:
        ``(T, H, W, 3)`` uint8 -> ``(3, T, h, w)`` float32
    """
    if not isinstance(frames, torch.Tensor) or frames.dim() != 4 or frames.shape[-1] != 3:
        raise ValueError(
            f"frames: expected a (T, H, W, 3) tensor, got "
            f"{tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__}"
        )
    _check_frames(frames)  # 0-255: frames already in [0, 1] would be divided by 255 twice
    _check_sizes(1, 1, 1.0, mean, std, 1)
    if size is not None and (not isinstance(size, (tuple, list)) or len(size) != 2 or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in size)):
        raise ValueError(f"size: expected None or two positive ints (h, w), got {size!r}")
    x = frames.permute(3, 0, 1, 2).float() / 255.0  # (3, T, H, W)
    if size is not None:
        x = F.interpolate(
            x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    m = torch.as_tensor(mean, dtype=x.dtype).view(3, 1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype).view(3, 1, 1, 1)
    return (x - m) / s
