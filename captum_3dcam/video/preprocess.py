"""Frames to model input and coordinates back: per-model preprocessing and :class:`ClipGeometry`.

Lives here: :func:`preprocess_i3d` / :func:`preprocess_resnext` / :func:`preprocess_torchvision` (the
weights' own ``weights.transforms()``), the general :func:`preprocess_clip` and the plain
:func:`frames_to_clip` turn decoded frames ``(T, H, W, 3)`` into
a model input ``(1, 3, T, h, w)`` and return a :class:`ClipGeometry` that maps maps and boxes at
model resolution back to the original frame's pixels. Does not live here: decoding and encoding
(:mod:`captum_3dcam.video.io`), sliding windows over long videos (:mod:`captum_3dcam.video.windows`).

Coordinates: pixel-edge convention (SPEC section 4): pixel column ``i`` spans ``[i, i + 1)``; a
box ``(x1, y1, x2, y2)`` covers ``x1 <= x < x2``. Resizing maps a pixel-edge coordinate ``u`` of
the original frame to ``u * resized_w / W``; cropping subtracts the crop's offset.
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import math
import numbers

import torch
import torch.nn.functional as F

from .._utils import checked_boxes, compute_dtype

__all__ = [
    "ClipGeometry", "centre_frame_indices", "preprocess_clip", "preprocess_i3d", "preprocess_resnext",
    "preprocess_torchvision", "frames_to_clip", "I3D_MIN_FRAMES", "ACTIVITYNET_MEAN", "SYNTHETIC_MEAN", "SYNTHETIC_STD",
]

I3D_MIN_FRAMES, _CHUNK = 9, 32  # _CHUNK: frames resized at once in preprocess_clip
ACTIVITYNET_MEAN = (114.7748, 107.7354, 99.4750)  #: Hara et al.'s (RGB, 0-255), subtracted from ResNeXt inputs
#: SyntheticActions' intensity mapping (the small model's input): ``clip = (rgb - MEAN) / STD``, rgb in [0, 1].
SYNTHETIC_MEAN, SYNTHETIC_STD = 0.5, 0.25


@dataclass(frozen=True)
class ClipGeometry:
    """How a clip at model resolution sits in the original video.

    Attributes:
        frame_size: original ``(H, W)``.
        resized_size: ``(H_r, W_r)`` after the short-side resize.
        crop_box: ``(x1, y1, x2, y2)`` of the centre crop in resized pixels (pixel edges).
        frame_indices: the original frame index of each clip frame (a ``range`` of length ``T``).

    A model-resolution pixel-edge coordinate ``(u, v)`` maps to the original frame's
    ``x = (u + crop_x1) * W / W_r``, ``y = (v + crop_y1) * H / H_r``.
    """

    frame_size: Tuple[int, int]
    resized_size: Tuple[int, int]
    crop_box: Tuple[int, int, int, int]
    frame_indices: range

    @property
    def crop_size(self) -> Tuple[int, int]:
        """``(h, w)`` of the model input."""
        x1, y1, x2, y2 = self.crop_box
        return (y2 - y1, x2 - x1)

    def _scale(self, device, dtype) -> torch.Tensor:
        (h, w), (hr, wr) = self.frame_size, self.resized_size
        return torch.tensor([w / wr, h / hr, w / wr, h / hr], device=device, dtype=dtype)

    def boxes_to_frame(self, boxes: torch.Tensor) -> torch.Tensor:
        """Boxes at model resolution -> original frame pixels.

        Args:
            boxes: ``(..., 4)`` ``(x1, y1, x2, y2)`` in model-input pixel-edge coordinates;
                NaN rows (no box) stay NaN.

        Shape:
            ``(..., 4) -> (..., 4)``, float32 (float64 for float64 boxes; half precision would
            round frame coordinates above 2048).
        """
        boxes = _as_boxes(boxes)
        x1, y1, _, _ = self.crop_box
        offset = torch.tensor([x1, y1, x1, y1], device=boxes.device, dtype=boxes.dtype)
        return (boxes + offset) * self._scale(boxes.device, boxes.dtype)

    def boxes_from_frame(self, boxes: torch.Tensor) -> torch.Tensor:
        """Original-frame boxes (e.g. ground truth) -> model-input coordinates, clipped to the crop.

        A box entirely outside the crop collapses to zero width or height. NaN rows stay NaN.

        Shape:
            ``(..., 4) -> (..., 4)``, float32 (float64 for float64 boxes).
        """
        boxes = _as_boxes(boxes)
        x1, y1, _, _ = self.crop_box
        h, w = self.crop_size
        offset = torch.tensor([x1, y1, x1, y1], device=boxes.device, dtype=boxes.dtype)
        out = boxes / self._scale(boxes.device, boxes.dtype) - offset
        upper = torch.tensor([w, h, w, h], device=boxes.device, dtype=boxes.dtype)
        return torch.minimum(torch.clamp(out, min=0), upper)  # NaN propagates through both

    def maps_to_frame(self, maps: torch.Tensor, outside: Union[float, str] = "min") -> torch.Tensor:
        """Maps at model resolution -> original frame pixels, each frame's minimum outside the crop.

        Each original pixel centre ``x + 0.5`` is mapped into the crop and the map is sampled
        there bilinearly (edge values held up to the crop border); pixels whose centre falls
        outside the crop get ``outside``. Maps of another spatial size than the crop are first
        treated as covering the crop exactly. Time is unchanged (see :attr:`frame_indices`).

        Args:
            maps: ``(N, 1, T, h, w)`` or ``(N, T, h, w)``, on any device; sampled in float32 when
                in half precision and returned in their own dtype (float32 for integer maps).
            outside: the value of the pixels the model never saw: ``"min"`` (the default: each
                frame's minimum, so that every box threshold, relative to the maximum or to the
                range as ``attribution_to_boxes(..., relative_to="range")``, sees exactly the
                values of the crop and gives the boxes it gives at model resolution), or a number
                (e.g. ``0.0`` for pictures).

        Shape:
            ``(N, 1, T, h, w) -> (N, 1, T, H, W)``; ``(N, T, h, w) -> (N, T, H, W)``.
        """
        if not isinstance(maps, torch.Tensor):
            raise TypeError(f"maps: expected a torch.Tensor, got {type(maps).__name__}")
        if maps.dim() not in (4, 5) or (maps.dim() == 5 and maps.shape[1] != 1):
            raise ValueError(f"maps: expected (N, 1, T, h, w) or (N, T, h, w), got {tuple(maps.shape)}")
        lead = maps.shape[:-2]
        out_dtype = maps.dtype if maps.is_floating_point() else torch.float32
        flat = maps.reshape(-1, 1, *maps.shape[-2:])
        flat = flat.to(compute_dtype(flat.dtype))  # half-precision pixel coordinates are off by 2 above 2048
        (h, w), (hr, wr) = self.frame_size, self.resized_size
        cx1, cy1, cx2, cy2 = self.crop_box
        dev, dt = flat.device, flat.dtype
        # pixel centres of the original frame, in resized pixels, then normalized to the crop [-1, 1]
        xs = ((torch.arange(w, device=dev, dtype=dt) + 0.5) * (wr / w) - cx1) / (cx2 - cx1) * 2 - 1
        ys = ((torch.arange(h, device=dev, dtype=dt) + 0.5) * (hr / h) - cy1) / (cy2 - cy1) * 2 - 1
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], dim=-1)  # (H, W, 2) as (x, y)
        grid = grid.unsqueeze(0).expand(flat.shape[0], h, w, 2)
        sampled = F.grid_sample(flat, grid, mode="bilinear", padding_mode="border", align_corners=False)
        inside = (xs.abs() <= 1)[None, :] & (ys.abs() <= 1)[:, None]
        if isinstance(outside, str):
            if outside != "min":
                raise ValueError(f"outside: expected a number or 'min', got {outside!r}")
            fill = flat.amin(dim=(-2, -1), keepdim=True) if flat.numel() else flat.new_zeros(())
        elif isinstance(outside, (int, float)) and not isinstance(outside, bool) and math.isfinite(outside):
            fill = torch.full((), float(outside), dtype=dt, device=dev)
        else:
            raise (ValueError if isinstance(outside, float) else TypeError)(
                f"outside: expected a finite number or 'min', got {type(outside).__name__} {outside!r:.40}")
        return torch.where(inside, sampled, fill).reshape(*lead, h, w).to(out_dtype)


def _as_boxes(boxes) -> torch.Tensor:
    """Checked boxes in float32 (float64 stays float64): the frame's pixel coordinates."""
    checked_boxes(boxes, "boxes")
    return boxes.to(compute_dtype(boxes.dtype))


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
) -> Tuple[torch.Tensor, ClipGeometry]:
    """Centre frames in time, resize the short side, centre-crop, normalize.

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

    Returns:
        ``(clip, geometry)``: ``clip`` ``(1, 3, T', crop_size, crop_size)`` float32 on ``frames``'s
        device, and a :class:`ClipGeometry`.

    Shape:
        ``(T, H, W, 3)`` -> ``(1, 3, T', crop_size, crop_size)``
    """
    _check_frames(frames)
    _check_sizes(short_side, crop_size, scale, mean, std, min_frames)
    total, h, w, _ = frames.shape
    indices = centre_frame_indices(total, num_frames)
    if len(indices) < min_frames:
        raise ValueError(f"frames: the model needs at least {min_frames} frames, got {len(indices)}")
    if h <= w:
        hr, wr = short_side, max(int(round(w * short_side / h)), short_side)
    else:
        hr, wr = max(int(round(h * short_side / w)), short_side), short_side
    top, left = (hr - crop_size) // 2, (wr - crop_size) // 2
    mean_t = torch.tensor(mean, dtype=torch.float32, device=frames.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=frames.device).view(1, 3, 1, 1)
    clip = torch.empty(1, 3, len(indices), crop_size, crop_size, dtype=torch.float32, device=frames.device)
    for start in range(0, len(indices), _CHUNK):  # a few frames at a time: bounded float memory
        stop = min(start + _CHUNK, len(indices))
        x = frames[indices[start] : indices[stop - 1] + 1].permute(0, 3, 1, 2).float()  # (t, 3, H, W)
        if (hr, wr) != (h, w):
            x = F.interpolate(x, size=(hr, wr), mode="bilinear", align_corners=False, antialias=True)
        x = x[:, :, top : top + crop_size, left : left + crop_size]
        clip[0, :, start:stop] = ((x * scale - mean_t) / std_t).permute(1, 0, 2, 3)
    geometry = ClipGeometry(
        frame_size=(int(h), int(w)),
        resized_size=(hr, wr),
        crop_box=(left, top, left + crop_size, top + crop_size),
        frame_indices=indices,
    )
    return clip, geometry


def preprocess_i3d(frames: torch.Tensor, num_frames: Optional[int] = None) -> Tuple[torch.Tensor, ClipGeometry]:
    """DeepMind I3D input: short side 256, centre crop 224, RGB in ``[-1, 1]`` (``x / 127.5 - 1``).

    Args:
        frames: ``(T, H, W, 3)`` RGB ``uint8`` (see :func:`read_video`); float frames must be on the
            0-255 scale (frames in ``[0, 1]`` are refused, not silently darkened).
        num_frames: keep the centre ``num_frames`` (e.g. 64); ``None`` keeps all. I3D needs >= 9.

    Returns:
        ``(clip (1, 3, T', 224, 224), geometry)``.

    Shape:
        ``(T, H, W, 3)`` uint8 -> ``(1, 3, T', 224, 224)``
    """
    return preprocess_clip(
        frames, short_side=256, crop_size=224, scale=1 / 127.5, mean=(1.0, 1.0, 1.0), std=(1.0, 1.0, 1.0),
        num_frames=num_frames, min_frames=I3D_MIN_FRAMES,
    )


def preprocess_resnext(frames: torch.Tensor, num_frames: Optional[int] = 16) -> Tuple[torch.Tensor, ClipGeometry]:
    """Hara et al.'s 3D ResNeXt input: short side 112, centre crop 112, 0-255 minus the ActivityNet mean.

    Args:
        frames: ``(T, H, W, 3)`` RGB ``uint8`` (floats on the 0-255 scale; ``[0, 1]`` is refused).
        num_frames: keep the centre ``num_frames`` (16 as in training); ``None`` keeps all.

    Returns:
        ``(clip (1, 3, T', 112, 112), geometry)``.

    Shape:
        ``(T, H, W, 3)`` uint8 -> ``(1, 3, T', 112, 112)``
    """
    return preprocess_clip(
        frames, short_side=112, crop_size=112, scale=1.0, mean=ACTIVITYNET_MEAN, std=(1.0, 1.0, 1.0),
        num_frames=num_frames,
    )


def preprocess_torchvision(
    frames: torch.Tensor, transform, num_frames: Optional[int] = None, min_frames: int = 1,
) -> Tuple[torch.Tensor, ClipGeometry]:
    """A torchvision video model's input through its weights' own transforms, with the geometry back.

    ``transform`` is ``weights.transforms()`` (e.g. ``R3D_18_Weights.KINETICS400_V1.transforms()``:
    resize to ``resize_size``, centre crop ``crop_size``, ``/ 255``, normalize by the Kinetics mean
    and std). It is applied as it is, 32 frames at a time; this function only adds the
    :class:`ClipGeometry` of that resize and crop (torchvision's rounding of the crop offset), so
    maps and boxes map back to the frame. torchvision itself is not imported here.

    Args:
        frames: ``(T, H, W, 3)`` RGB ``uint8`` (what :func:`~captum_3dcam.video.io.read_video` returns).
        transform: a ``torchvision.transforms._presets.VideoClassification`` (anything with
            ``resize_size``, ``crop_size`` and a ``(T, C, H, W) -> (C, T, h, w)`` call).
        num_frames: keep the centre ``num_frames`` (``None``: every frame).
        min_frames: the fewest frames the model accepts (S3D: 14).

    Returns:
        ``(clip (1, 3, T', h, w), geometry)``, ``(h, w) = crop_size``.

    Shape:
        ``(T, H, W, 3)`` uint8 -> ``(1, 3, T', h, w)``
    """
    _check_frames(frames)
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
