"""Pictures and videos of attention: overlays, boxes, GIF/MP4 and the paper's figures.

Everything per frame is computed at once for the whole clip with torch (a colormap is a
256-entry lookup table indexed by the quantized map; boxes are drawn with broadcast
comparisons), so a 300-frame video is coloured in well under a second. Figures are built on
``matplotlib.figure.Figure`` (no ``pyplot`` state: safe in scripts, servers and notebooks).

Conventions:
    - a *video* is ``(T, H, W, 3)`` uint8 (as decoded), ``(C, T, H, W)`` or ``(1, C, T, H, W)``
      float (a model input); floats are mapped to 0..255 by ``value_range`` (inferred when
      ``None``: ``[0, 1]``, ``[-1, 1]``, ``[0, 255]`` or the clip's own min..max);
    - a *map* is ``(T, H, W)``, ``(1, T, H, W)`` or ``(1, 1, T, H, W)`` (3DCam's output for
      one clip); it is resized (trilinear) to the video's ``(T, H, W)`` when they differ;
    - *boxes* are ``(T, 4)`` or ``(T, K, 4)`` in ``(x1, y1, x2, y2)`` pixel-edge coordinates
      (columns ``x1 <= x < x2``), NaN rows for frames without a box (SPEC section 4).

Heavy dependencies are imported where used: matplotlib (figures, colormaps), PyAV (MP4/GIF).
Install them with ``pip install captum-3dcam[viz,video]``.
"""
import textwrap
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "to_frames",
    "normalize_maps",
    "colorize",
    "overlay",
    "draw_boxes",
    "frame_indices",
    "resize_frames",
    "tile_videos",
    "save_gif",
    "save_mp4",
    "save_video",
    "plot_overlay_rows",
    "plot_layer_grid",
    "plot_gradcam_vs_3dcam",
    "plot_class_maps",
    "plot_temporal_curve",
    "save_figure",
]

ArrayLike = Union[torch.Tensor, np.ndarray]
Color = Tuple[int, int, int]

PRED_COLOR: Color = (255, 40, 40)
GT_COLOR: Color = (40, 255, 40)


def _require_matplotlib():
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "captum_3dcam.visualization needs matplotlib: pip install captum-3dcam[viz]"
        ) from exc
    return matplotlib


def _require_av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "writing GIF/MP4 needs PyAV: pip install captum-3dcam[video]"
        ) from exc
    return av


def _as_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    raise TypeError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


# --------------------------------------------------------------------------------------------
# Frames and maps
# --------------------------------------------------------------------------------------------
def _infer_range(video: torch.Tensor) -> Tuple[float, float]:
    lo, hi = float(video.min()), float(video.max())
    for cand_lo, cand_hi in ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0)):
        if lo >= cand_lo and hi <= cand_hi:
            return cand_lo, cand_hi
    return lo, hi


def to_frames(video: ArrayLike, value_range: Optional[Tuple[float, float]] = None) -> torch.Tensor:
    """Convert a clip to displayable RGB frames.

    Args:
        video: ``(T, H, W, 3)`` / ``(T, H, W)`` uint8, or ``(C, T, H, W)`` / ``(1, C, T, H, W)``
            with ``C`` in {1, 3} (any dtype). A 4-D array whose last axis is 1 or 3 and whose
            first axis is not is read as channels-last.
        value_range: ``(low, high)`` of a float clip, mapped linearly to 0..255 (clamped);
            ``None`` infers it (``[0, 1]``, ``[-1, 1]``, ``[0, 255]``, else the clip's min..max).

    Returns:
        uint8 tensor on the CPU.

    Shape:
        - Output: ``(T, H, W, 3)``.
    """
    v = _as_tensor(video, "video").cpu()
    if v.dim() == 5:
        if v.shape[0] != 1:
            raise ValueError(f"video: expected a single clip (1, C, T, H, W), got {tuple(v.shape)}")
        v = v[0]
    if v.dim() == 3:  # (T, H, W) grey
        v = v.unsqueeze(-1)
    elif v.dim() == 4:
        channels_last = v.shape[-1] in (1, 3) and (v.shape[0] not in (1, 3) or v.dtype == torch.uint8)
        if not channels_last:
            if v.shape[0] not in (1, 3):
                raise ValueError(
                    f"video: expected (T, H, W, 3) or (C, T, H, W) with C in (1, 3), got {tuple(v.shape)}"
                )
            v = v.permute(1, 2, 3, 0)
    else:
        raise ValueError(f"video: expected 3, 4 or 5 dimensions, got shape {tuple(v.shape)}")
    if v.shape[-1] == 1:
        v = v.expand(*v.shape[:-1], 3)
    if v.dtype == torch.uint8:
        return v.contiguous()
    v = v.float()
    lo, hi = value_range if value_range is not None else _infer_range(v)
    if not hi > lo:
        return torch.zeros(v.shape, dtype=torch.uint8)
    return ((v - lo) / (hi - lo) * 255.0).clamp_(0, 255).round_().to(torch.uint8).contiguous()


def _as_maps(maps: ArrayLike, name: str = "maps") -> torch.Tensor:
    m = _as_tensor(maps, name).cpu().float()
    while m.dim() > 3 and m.shape[0] == 1:
        m = m[0]
    if m.dim() != 3:
        raise ValueError(
            f"{name}: expected one clip's map (T, H, W), (1, T, H, W) or (1, 1, T, H, W), "
            f"got shape {tuple(_as_tensor(maps, name).shape)}"
        )
    if torch.isnan(m).any():
        raise ValueError(f"{name}: contains NaN")
    return m


def _resize_maps(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    if tuple(maps.shape) == tuple(size):
        return maps
    return F.interpolate(maps[None, None], size=tuple(size), mode="trilinear", align_corners=False)[0, 0]


def normalize_maps(maps: ArrayLike, per_frame: bool = False) -> torch.Tensor:
    """Scale a map to ``[0, 1]``: ``relu(m) / max relu(m)`` over the clip (or each frame).

    A clip (frame) whose maximum is 0 stays 0, never NaN.

    Shape:
        - Input: ``(T, H, W)`` or ``(1, [1,] T, H, W)``. Output: ``(T, H, W)`` float.
    """
    m = _as_maps(maps).clamp(min=0)
    peak = m.amax(dim=(1, 2), keepdim=True) if per_frame else m.max().reshape(1, 1, 1)
    return torch.where(peak > 0, m / peak.clamp(min=torch.finfo(m.dtype).tiny), torch.zeros_like(m))


def _lut(cmap: str) -> torch.Tensor:
    matplotlib = _require_matplotlib()
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
    m = _as_maps(maps)
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
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha: expected a value in [0, 1], got {alpha}")
    frames = to_frames(video, value_range).float()
    m = _resize_maps(_as_maps(maps), frames.shape[:3])
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
    b = _as_tensor(boxes, "boxes").cpu().double()
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
        from PIL import Image, ImageDraw

        strip = Image.new("RGB", (out.shape[2], 14), (255, 255, 255))
        draw = ImageDraw.Draw(strip)
        x = 0
        for c, label in zip(clips, labels):
            draw.text((x + 2, 1), str(label), fill=(0, 0, 0))
            x += c.shape[2] + gap
        header = torch.from_numpy(np.array(strip)).expand(T, -1, -1, -1)
        out = torch.cat([header, out], dim=1)
    return out.numpy()


# --------------------------------------------------------------------------------------------
# GIF / MP4
# --------------------------------------------------------------------------------------------
def _check_fps(fps: float) -> float:
    if not float(fps) > 0:
        raise ValueError(f"fps: expected a positive number, got {fps}")
    return float(fps)


def save_gif(frames: ArrayLike, path: Union[str, Path], fps: float = 8.0) -> Path:
    """Write frames as an animated GIF (PyAV, one 256-colour palette per frame, every frame kept).

    Shape:
        - Input: ``(T, H, W, 3)`` uint8 (or any video :func:`to_frames` accepts).
    """
    from fractions import Fraction

    av = _require_av()
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover
        raise ImportError("writing GIF needs Pillow: pip install captum-3dcam[viz]") from exc
    fps = _check_fps(fps)
    img = to_frames(frames).numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    T, H, W, _ = img.shape
    with av.open(str(path), "w", format="gif") as container:
        stream = container.add_stream("gif", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = W, H, "pal8"
        for frame in img:
            q = Image.fromarray(frame).quantize(colors=256, method=Image.Quantize.FASTOCTREE)
            pal = np.zeros((256, 4), np.uint8)
            rgb = np.asarray(q.getpalette()[: 3 * 256], np.uint8).reshape(-1, 3)
            pal[: len(rgb), 1:] = rgb
            pal[:, 0] = 255  # ARGB, opaque
            vf = av.VideoFrame.from_ndarray((np.asarray(q), pal), format="pal8")
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def save_mp4(frames: ArrayLike, path: Union[str, Path], fps: float = 8.0, crf: int = 20) -> Path:
    """Write frames as H.264 MP4 (PyAV; yuv420p, odd sizes padded by one black pixel).

    Falls back to MPEG-4 Part 2 where the PyAV build has no libx264.

    Shape:
        - Input: ``(T, H, W, 3)`` uint8 (or any video :func:`to_frames` accepts).
    """
    from fractions import Fraction

    av = _require_av()
    fps = _check_fps(fps)
    img = to_frames(frames).numpy()
    T, H, W, _ = img.shape
    if H % 2 or W % 2:
        img = np.pad(img, ((0, 0), (0, H % 2), (0, W % 2), (0, 0)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = img.shape[2], img.shape[1], "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(int(crf)), "preset": "veryfast"}
        for frame in img:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def save_video(frames: ArrayLike, path: Union[str, Path], fps: float = 8.0) -> Path:
    """Write frames to ``path``: ``.gif`` -> :func:`save_gif`, ``.mp4``/``.mkv``/``.mov`` -> :func:`save_mp4`."""
    suffix = Path(path).suffix.lower()
    if suffix == ".gif":
        return save_gif(frames, path, fps)
    if suffix in (".mp4", ".mkv", ".mov"):
        return save_mp4(frames, path, fps)
    raise ValueError(f"path: expected a .gif, .mp4, .mkv or .mov file name, got {str(path)!r}")


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------
def _new_figure(width: float, height: float):
    _require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def plot_overlay_rows(
    video: ArrayLike,
    rows: Mapping[str, Optional[ArrayLike]],
    *,
    num_frames: int = 8,
    frames: Optional[Sequence[int]] = None,
    boxes: Optional[Mapping[str, ArrayLike]] = None,
    gt_boxes: Optional[ArrayLike] = None,
    show_input: bool = True,
    title: Optional[str] = None,
    alpha: float = 0.5,
    cmap: str = "jet",
    per_frame: bool = False,
    value_range: Optional[Tuple[float, float]] = None,
    cell_size: float = 1.5,
    box_thickness: Optional[int] = None,
):
    """A grid of frames: one row per map (plus the input frames on top), one column per frame.

    The building block of the paper's figures 2-4 and 6. A row whose map is ``None`` shows the
    plain frames.

    Args:
        video: the clip (see the module docstring).
        rows: ``{row label: map}`` in display order.
        num_frames: number of evenly spaced frames shown (ignored when ``frames`` is given).
        frames: explicit frame indices.
        boxes: ``{row label: (T, 4) boxes}`` drawn in red on that row.
        gt_boxes: ``(T, 4)`` ground-truth boxes drawn in green on every row.
        show_input: add a first row with the plain frames.
        title: figure title.
        alpha, cmap, per_frame, value_range: see :func:`overlay`.
        cell_size: inches per frame cell.
        box_thickness: see :func:`draw_boxes`.

    Returns:
        ``matplotlib.figure.Figure``.
    """
    base = to_frames(video, value_range)
    T, H, W, _ = base.shape
    idx = list(frames) if frames is not None else frame_indices(T, num_frames)
    if any(not 0 <= i < T for i in idx):
        raise ValueError(f"frames: expected indices in [0, {T}), got {idx}")
    all_rows = ([("input", None)] if show_input else []) + list(rows.items())
    if not all_rows:
        raise ValueError("rows: expected at least one row")
    boxes = dict(boxes or {})
    unknown = set(boxes) - set(rows)
    if unknown:
        raise ValueError(f"boxes: keys {sorted(unknown)} are not row labels {list(rows)}")

    sel = torch.as_tensor(idx)
    cells = []
    for label, m in all_rows:  # overlays and boxes on the shown frames only
        if m is None:
            img = base[sel].numpy()
        else:  # normalized over the whole clip (or per frame), then only the shown frames coloured
            full = normalize_maps(_resize_maps(_as_maps(m, f"rows[{label!r}]"), (T, H, W)), per_frame=per_frame)
            img = overlay(base[sel], full[sel], alpha=alpha, cmap=cmap, normalize=False)
        if gt_boxes is not None:
            img = draw_boxes(img, _as_tensor(gt_boxes, "gt_boxes")[sel], color=GT_COLOR, thickness=box_thickness)
        if label in boxes:
            img = draw_boxes(img, _as_tensor(boxes[label], "boxes")[sel], color=PRED_COLOR, thickness=box_thickness)
        cells.append(img)
    gap = max(2, min(H, W) // 24)
    grid = _montage(np.stack(cells), gap)  # one image: far faster to draw than R x C axes

    fig = _new_figure(cell_size * len(idx) * W / H + 1.2, cell_size * len(all_rows) + (0.4 if title else 0.1))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(grid)
    ax.set_xticks([c * (W + gap) + W / 2 for c in range(len(idx))], [f"t={t}" for t in idx], fontsize=8)
    ax.set_yticks([r * (H + gap) + H / 2 for r in range(len(all_rows))],
                  [textwrap.fill(str(label), 16) for label, _ in all_rows], fontsize=9)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _montage(cells: np.ndarray, gap: int) -> np.ndarray:
    """``(R, C, H, W, 3)`` uint8 -> one ``(R H + (R-1) gap, C W + (C-1) gap, 3)`` image, white gaps."""
    R, C, H, W, _ = cells.shape
    out = np.full((R * H + (R - 1) * gap, C * W + (C - 1) * gap, 3), 255, np.uint8)
    for r in range(R):
        for c in range(C):
            out[r * (H + gap): r * (H + gap) + H, c * (W + gap): c * (W + gap) + W] = cells[r, c]
    return out


def plot_layer_grid(
    video: ArrayLike,
    layer_maps: Union[Sequence[ArrayLike], Mapping[str, ArrayLike]],
    aggregate: ArrayLike,
    *,
    layer_names: Optional[Sequence[str]] = None,
    aggregate_name: str = "3DCam (all layers)",
    **kwargs,
):
    """The paper's figures 2-3: the input, one row per layer's 3DCam map, and the aggregate.

    Args:
        video: the clip.
        layer_maps: per-layer maps in layer order (``attribute(..., return_layer_maps=True)[1]``,
            each ``(1, 1, T, H, W)``), or ``{name: map}``.
        aggregate: the aggregated map ``P`` (eq. 3).
        layer_names: row labels for a sequence of maps (default ``layer 1..K``).
        aggregate_name: label of the last row.
        **kwargs: passed to :func:`plot_overlay_rows` (``num_frames``, ``gt_boxes``, ``title`` ...).
    """
    if isinstance(layer_maps, Mapping):
        rows = dict(layer_maps)
    else:
        layer_maps = list(layer_maps)
        names = list(layer_names) if layer_names is not None else [f"layer {k + 1}" for k in range(len(layer_maps))]
        if len(names) != len(layer_maps):
            raise ValueError(f"layer_names: expected {len(layer_maps)} names, got {len(names)}")
        rows = dict(zip(names, layer_maps))
    rows[aggregate_name] = aggregate
    kwargs.setdefault("per_frame", True)
    return plot_overlay_rows(video, rows, **kwargs)


def plot_gradcam_vs_3dcam(
    video: ArrayLike,
    gradcam: ArrayLike,
    cam3d: ArrayLike,
    *,
    gradcam_boxes: Optional[ArrayLike] = None,
    cam3d_boxes: Optional[ArrayLike] = None,
    **kwargs,
):
    """The paper's figure 4: input frames, GradCAM (last layer) and 3DCam, row by row.

    Predicted boxes (red) and ``gt_boxes`` (green, via ``kwargs``) are drawn when given.
    """
    rows = {"GradCAM": gradcam, "3DCam": cam3d}
    boxes = {k: v for k, v in (("GradCAM", gradcam_boxes), ("3DCam", cam3d_boxes)) if v is not None}
    return plot_overlay_rows(video, rows, boxes=boxes, **kwargs)


def plot_class_maps(
    video: ArrayLike,
    class_maps: Mapping[str, ArrayLike],
    counterfactual: Optional[ArrayLike] = None,
    *,
    counterfactual_name: str = "counterfactual (top-1)",
    **kwargs,
):
    """The paper's figure 6: one row per class (e.g. the top 3) and the counterfactual map.

    Args:
        class_maps: ``{"1. javelin throw (0.81)": map, ...}`` in display order.
        counterfactual: the :class:`Counterfactual3DCam` map of the top class (eq. 4).
    """
    rows = dict(class_maps)
    if counterfactual is not None:
        rows[counterfactual_name] = counterfactual
    return plot_overlay_rows(video, rows, **kwargs)


def _as_segments(segments, name: str) -> np.ndarray:
    if segments is None:
        return np.zeros((0, 2))
    s = segments.detach().cpu().numpy() if isinstance(segments, torch.Tensor) else np.asarray(segments, float)
    s = np.asarray(s, float).reshape(-1, 2) if np.size(s) else np.zeros((0, 2))
    if np.any(s[:, 1] < s[:, 0]):
        raise ValueError(f"{name}: expected (start, end) pairs with end >= start, got {s.tolist()}")
    return s


def plot_temporal_curve(
    curve: ArrayLike,
    *,
    segments=None,
    gt_segments=None,
    threshold: Optional[float] = None,
    fps: Optional[float] = None,
    video: Optional[ArrayLike] = None,
    num_thumbnails: int = 8,
    title: Optional[str] = None,
    ylabel: str = "attention",
):
    """The paper's figure 5: attention over time of an untrimmed video and its detected segments.

    Args:
        curve: per-frame attention, e.g. the map's per-frame maximum or mean.
        segments: detected segments ``(S, 2)`` as ``(start, end)`` frames, end exclusive
            (shaded red).
        gt_segments: ground-truth segments, same layout (shaded green).
        threshold: a horizontal line at this value (the detection threshold).
        fps: label the x axis in seconds instead of frames.
        video: when given, a strip of ``num_thumbnails`` frames is drawn above the curve.
        title: figure title.

    Shape:
        - ``curve``: ``(T,)``; ``video``: ``T`` frames.
    """
    c = _as_tensor(curve, "curve").cpu().double().flatten().numpy()
    if c.size == 0:
        raise ValueError("curve: expected at least one value, got an empty array")
    T = c.size
    seg = _as_segments(segments, "segments")
    gt = _as_segments(gt_segments, "gt_segments")
    scale = 1.0 / _check_fps(fps) if fps is not None else 1.0
    thumbs = to_frames(video) if video is not None else None
    if thumbs is not None and thumbs.shape[0] != T:
        raise ValueError(f"video: expected {T} frames to match curve, got {thumbs.shape[0]}")

    n_thumb = min(num_thumbnails, T) if thumbs is not None else 0
    fig = _new_figure(10, 3.2 + (1.4 if n_thumb else 0))
    if n_thumb:
        gs = fig.add_gridspec(2, 1, height_ratios=[1.0, 2.2])
        shown = frame_indices(T, n_thumb)
        h, w = thumbs.shape[1:3]
        gap = max(2, min(h, w) // 24)
        strip = _montage(thumbs[torch.as_tensor(shown)].numpy()[None], gap)
        top = fig.add_subplot(gs[0, 0])
        top.imshow(strip)
        top.set_xticks([c * (w + gap) + w / 2 for c in range(len(shown))],
                       [(f"{t * scale:.{2 if T * scale < 10 else 1}f}s" if fps else f"t={t}") for t in shown],
                       fontsize=8)
        top.set_yticks([])
        top.xaxis.tick_top()
        top.tick_params(length=0)
        for spine in top.spines.values():
            spine.set_visible(False)
        ax = fig.add_subplot(gs[1, :])
    else:
        ax = fig.add_subplot(1, 1, 1)
    x = np.arange(T) * scale
    ax.plot(x, c, color="black", lw=1.5, label=ylabel)
    for k, (s, e) in enumerate(gt):
        ax.axvspan(s * scale, e * scale, color="tab:green", alpha=0.25, label="ground truth" if k == 0 else None)
    for k, (s, e) in enumerate(seg):
        ax.axvspan(s * scale, e * scale, color="tab:red", alpha=0.25, label="detected" if k == 0 else None)
    if threshold is not None:
        ax.axhline(float(threshold), color="tab:red", ls="--", lw=1, label=f"threshold {float(threshold):.2g}")
    ax.set_xlim(0, max(T - 1, 1) * scale)
    ax.set_ylim(bottom=min(0.0, float(c.min())))
    ax.set_xlabel("time (s)" if fps else "frame")
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper right", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def save_figure(fig, path: Union[str, Path], dpi: int = 100) -> Path:
    """Save a figure (PNG, PDF or SVG by the file name). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
