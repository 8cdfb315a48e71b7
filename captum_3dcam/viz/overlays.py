"""Pixels of attention: heatmaps blended over frames, boxes drawn, frames resized and tiled.

Lives here: :func:`normalize_maps`, :func:`colorize`, :func:`overlay`, :func:`draw_boxes`,
:func:`frame_indices`, :func:`resize_frames`, :func:`tile_videos` — functions from arrays to
``uint8`` frames ``(T, H, W, 3)``. Does not live here: matplotlib figures
(:mod:`captum_3dcam.viz.figures`), decoding, encoding and :func:`~captum_3dcam.video.io.to_frames`
(:mod:`captum_3dcam.video.io`); :mod:`captum_3dcam.viz` gathers all three.

Everything per frame is computed at once for the whole clip with torch (a colormap is a
256-entry lookup table indexed by the quantized map; boxes are drawn with broadcast
comparisons), so a 300-frame video is coloured in well under a second.

Conventions:
    - a *video* is ``(T, H, W, 3)`` uint8 (as decoded), ``(C, T, H, W)`` or ``(1, C, T, H, W)``
      float (a model input); floats are mapped to 0..255 by ``value_range`` (inferred when
      ``None``: ``[0, 1]``, ``[-1, 1]``, ``[0, 255]`` or the clip's own min..max);
    - a *map* is ``(T, H, W)``, ``(1, T, H, W)`` or ``(1, 1, T, H, W)`` (3DCam's output for
      one clip); it is resized (trilinear) to the video's ``(T, H, W)`` when they differ;
    - *boxes* are ``(T, 4)`` or ``(T, K, 4)`` in ``(x1, y1, x2, y2)`` pixel-edge coordinates
      (columns ``x1 <= x < x2``), NaN rows for frames without a box (SPEC section 4).

matplotlib (colormaps) and Pillow (captions) are imported where used: ``pip install captum-3dcam[viz]``.
"""
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from .._utils import normalize_max, optional_import
from ..video.io import as_tensor, to_frames

__all__ = [
    "normalize_maps", "colorize", "overlay", "draw_boxes", "frame_indices", "resize_frames", "tile_videos",
    "PRED_COLOR", "GT_COLOR",
]

ArrayLike = Union[torch.Tensor, np.ndarray]
Color = Tuple[int, int, int]

PRED_COLOR: Color = (255, 40, 40)
GT_COLOR: Color = (40, 255, 40)


def as_maps(maps: ArrayLike, name: str = "maps") -> torch.Tensor:
    m = as_tensor(maps, name).cpu().float()
    while m.dim() > 3 and m.shape[0] == 1:
        m = m[0]
    if m.dim() != 3:
        raise ValueError(
            f"{name}: expected one clip's map (T, H, W), (1, T, H, W) or (1, 1, T, H, W), "
            f"got shape {tuple(as_tensor(maps, name).shape)}"
        )
    if torch.isnan(m).any():
        raise ValueError(f"{name}: contains NaN")
    return m


def resize_maps(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    if tuple(maps.shape) == tuple(size):
        return maps
    return F.interpolate(maps[None, None], size=tuple(size), mode="trilinear", align_corners=False)[0, 0]


def normalize_maps(maps: ArrayLike, per_frame: bool = False) -> torch.Tensor:
    """Scale a map to ``[0, 1]``: ``relu(m) / max relu(m)`` over the clip (or each frame).

    A clip (frame) whose maximum is 0 stays 0, never NaN.

    Shape:
        - Input: ``(T, H, W)`` or ``(1, [1,] T, H, W)``. Output: ``(T, H, W)`` float.
    """
    m = as_maps(maps).clamp(min=0)
    return normalize_max(m, (1, 2) if per_frame else (0, 1, 2))


def _lut(cmap: str) -> torch.Tensor:
    matplotlib = optional_import("matplotlib", "captum_3dcam.viz.overlays (colormaps)")
    try:
        cm = matplotlib.colormaps[cmap]
    except KeyError as exc:
        raise ValueError(f"cmap: unknown matplotlib colormap {cmap!r}") from exc
    return torch.from_numpy(cm(np.linspace(0.0, 1.0, 256))[:, :3]).float()


def colorize(maps: ArrayLike, cmap: str = "jet") -> torch.Tensor:
    """Colour a map in ``[0, 1]`` through a matplotlib colormap, all frames at once.

    ``rgb[t, y, x] = lut[round(255 * clamp(m[t, y, x], 0, 1))]`` with ``lut`` the 256 colours
    of ``cmap``.

    Shape:
        - Input: ``(T, H, W)``. Output: ``(T, H, W, 3)`` float in ``[0, 1]``.
    """
    m = as_maps(maps)
    idx = (m.clamp(0, 1) * 255).round().long()
    return _lut(cmap)[idx]


def overlay(
    video: ArrayLike,
    maps: ArrayLike,
    *,
    alpha: float = 0.5,
    cmap: str = "jet",
    per_frame: bool = False,
    value_range: Optional[Tuple[float, float]] = None,
    normalize: bool = True,
) -> np.ndarray:
    """Blend a heatmap over the frames: ``(1 - alpha) * frame + alpha * colormap(nrm(map))``.

    Args:
        video: the clip (see the module docstring).
        maps: its attribution map; resized to the video's ``(T, H, W)`` when they differ.
        alpha: heatmap opacity in ``[0, 1]``.
        cmap: a matplotlib colormap name.
        per_frame: normalize each frame by its own maximum (default: one maximum per clip, so
            frames keep their relative strength, as in the temporal curve).
        value_range: passed to :func:`to_frames`.
        normalize: apply ``nrm`` (:func:`normalize_maps`); ``False`` takes ``maps`` as already
            in ``[0, 1]`` (values outside are clamped).

    Returns:
        uint8 numpy array ``(T, H, W, 3)``.

    Example:
        >>> frames = overlay(clip, cam[0])          # clip (3, T, H, W), cam (N, 1, T, H, W)
        >>> save_video(frames, "attention.gif")

    Shape:
        ``video`` ``(T, H, W, 3)`` / ``(C, T, H, W)``, ``maps`` ``(T, h, w)`` -> ``(T, H, W, 3)`` uint8
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha: expected a value in [0, 1], got {alpha}")
    frames = to_frames(video, value_range).float()
    m = resize_maps(as_maps(maps), frames.shape[:3])
    m = normalize_maps(m, per_frame=per_frame) if normalize else m.clamp(0, 1)
    heat = colorize(m, cmap) * 255.0
    out = (1.0 - alpha) * frames + alpha * heat
    return out.round().clamp(0, 255).to(torch.uint8).numpy()


def draw_boxes(
    frames: ArrayLike,
    boxes: ArrayLike,
    *,
    color: Color = PRED_COLOR,
    thickness: Optional[int] = None,
) -> np.ndarray:
    """Draw rectangles on every frame at once (a copy; the input is untouched).

    A box ``(x1, y1, x2, y2)`` (rounded to integers, clipped to the frame) outlines the
    pixels ``x1 <= x < x2``, ``y1 <= y < y2``; its border is ``thickness`` pixels wide, inside
    the box. Rows with a NaN are skipped (frames without a box).

    Args:
        frames: ``(T, H, W, 3)`` uint8 (e.g. from :func:`overlay`), or any video
            :func:`to_frames` accepts.
        boxes: ``(T, 4)``, ``(T, K, 4)`` or ``(1, T, 4)``.
        color: RGB 0..255.
        thickness: border width in pixels, >= 1; ``None`` picks ``max(1, min(H, W) // 120)``.

    Shape:
        - Output: ``(T, H, W, 3)`` uint8 numpy array.
    """
    img = to_frames(frames).clone()
    T, H, W, _ = img.shape
    if thickness is None:
        thickness = max(1, min(H, W) // 120)
    if int(thickness) < 1:
        raise ValueError(f"thickness: expected an integer >= 1, got {thickness}")
    b = as_tensor(boxes, "boxes").cpu().double()
    if b.dim() == 3 and b.shape[0] == 1 and b.shape[1] == T and T != 1:
        b = b[0]
    if b.dim() == 2:
        b = b[:, None, :]
    if b.dim() != 3 or b.shape[-1] != 4 or b.shape[0] != T:
        raise ValueError(f"boxes: expected ({T}, 4) or ({T}, K, 4) for {T} frames, got {tuple(b.shape)}")
    valid = ~torch.isnan(b).any(dim=-1)  # (T, K)
    b = torch.nan_to_num(b).round().long()
    x1, y1 = b[..., 0].clamp(0, W), b[..., 1].clamp(0, H)
    x2, y2 = b[..., 2].clamp(0, W), b[..., 3].clamp(0, H)
    xs = torch.arange(W).view(1, 1, 1, W)
    ys = torch.arange(H).view(1, 1, H, 1)
    e = lambda v: v[..., None, None]  # noqa: E731  (T, K) -> (T, K, 1, 1)
    inside = (xs >= e(x1)) & (xs < e(x2)) & (ys >= e(y1)) & (ys < e(y2))
    th = int(thickness)
    core = (xs >= e(x1) + th) & (xs < e(x2) - th) & (ys >= e(y1) + th) & (ys < e(y2) - th)
    border = (inside & ~core & e(valid)).any(dim=1)  # (T, H, W)
    img[border] = torch.tensor(color, dtype=torch.uint8)
    return img.numpy()


def frame_indices(num_total: int, num: int) -> list:
    """``num`` evenly spaced frame indices in ``range(num_total)`` (all of them if fewer)."""
    if num_total < 1:
        raise ValueError(f"num_total: expected >= 1 frames, got {num_total}")
    if num < 1:
        raise ValueError(f"num: expected >= 1, got {num}")
    if num >= num_total:
        return list(range(num_total))
    return np.linspace(0, num_total - 1, num).round().astype(int).tolist()


def resize_frames(frames: ArrayLike, scale: float) -> np.ndarray:
    """Resize all frames by ``scale`` (nearest neighbour for integer factors, else bilinear).

    Shape:
        - Input: any video :func:`to_frames` accepts. Output: ``(T, round(H * s), round(W * s), 3)`` uint8.
    """
    if not float(scale) > 0:
        raise ValueError(f"scale: expected a positive number, got {scale}")
    img = to_frames(frames)
    if float(scale) == 1.0:
        return img.numpy()
    if float(scale).is_integer():
        s = int(scale)
        return img.repeat_interleave(s, dim=1).repeat_interleave(s, dim=2).numpy()
    T, H, W, _ = img.shape
    size = (max(1, round(H * scale)), max(1, round(W * scale)))
    x = F.interpolate(img.permute(0, 3, 1, 2).float(), size=size, mode="bilinear", align_corners=False,
                      antialias=scale < 1)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def tile_videos(
    videos: Sequence[ArrayLike], labels: Optional[Sequence[str]] = None, *, gap: int = 4
) -> np.ndarray:
    """Place videos side by side (same ``T`` and ``H``), with an optional caption strip on top.

    The caption is rendered once with Pillow and repeated over time.

    Shape:
        - Input: ``K`` videos ``(T, H, W_k, 3)``. Output: ``(T, H [+ caption], sum W_k + gaps, 3)`` uint8.
    """
    clips = [to_frames(v) for v in videos]
    if not clips:
        raise ValueError("videos: expected at least one video")
    T, H = clips[0].shape[:2]
    for k, c in enumerate(clips):
        if c.shape[:2] != (T, H):
            raise ValueError(f"videos[{k}]: expected {T} frames of height {H}, got shape {tuple(c.shape)}")
    if labels is not None and len(labels) != len(clips):
        raise ValueError(f"labels: expected {len(clips)} labels, got {len(labels)}")
    spacer = torch.full((T, H, gap, 3), 255, dtype=torch.uint8)
    parts = []
    for k, c in enumerate(clips):
        parts += ([spacer] if k else []) + [c]
    out = torch.cat(parts, dim=2)
    if labels:
        Image = optional_import("PIL.Image", "captions of tile_videos")
        ImageDraw = optional_import("PIL.ImageDraw", "captions of tile_videos")
        strip = Image.new("RGB", (out.shape[2], 14), (255, 255, 255))
        draw = ImageDraw.Draw(strip)
        x = 0
        for c, label in zip(clips, labels):
            draw.text((x + 2, 1), str(label), fill=(0, 0, 0))
            x += c.shape[2] + gap
        header = torch.from_numpy(np.array(strip)).expand(T, -1, -1, -1)
        out = torch.cat([header, out], dim=1)
    return out.numpy()
