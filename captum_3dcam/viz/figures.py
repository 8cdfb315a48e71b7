"""The paper's figures as matplotlib ``Figure`` objects, and saving them.

Lives here: :func:`plot_overlay_rows` (the grid of frames x maps all figures are built on),
:func:`plot_layer_grid` (Fig. 2-3), :func:`plot_gradcam_vs_3dcam` (Fig. 4),
:func:`plot_temporal_curve` (Fig. 5), :func:`plot_class_maps` (Fig. 6), :func:`save_figure`, and
:func:`describe_attribution` (the caption naming the preset or rule a figure's maps came from).
Columns are labelled with true frame numbers (``frame_numbers=`` when the frames shown are a
selection of a longer video); a row whose map has no positive value says so under its label.
Does not live here: the pixels they show (:mod:`captum_3dcam.viz.overlays`). Figures are built on
``matplotlib.figure.Figure`` (no ``pyplot`` state: safe in scripts, servers and notebooks);
matplotlib is imported where used (``pip install captum-3dcam[viz]``). Videos, maps and boxes
follow the conventions of :mod:`captum_3dcam.viz.overlays`.
"""
import textwrap
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .._utils import as_path, optional_import
from ..attr.presets import PRESETS
from .overlays import (
    GT_COLOR,
    PRED_COLOR,
    as_maps,
    resize_maps,
    draw_boxes,
    frame_indices,
    normalize_maps,
    overlay,
)
from ..video.io import as_tensor, check_fps, to_frames

__all__ = [
    "plot_overlay_rows", "plot_layer_grid", "plot_gradcam_vs_3dcam", "plot_class_maps", "plot_temporal_curve",
    "save_figure", "describe_attribution", "EMPTY_MAP_NOTE",
]

#: Written under the label of a row whose map has no positive value (nothing to show).
EMPTY_MAP_NOTE = "empty: no positive value"


def describe_attribution(layer_rule: str = "3dcam", aggregation: str = "sum", normalize_layers=True, *,
                         layers: Optional[Sequence[str]] = None, counterfactual: bool = False,
                         **attribute) -> str:
    """A short caption of how maps were made, for figure titles.

    Names the preset of :mod:`captum_3dcam.attr.presets` whose ``"attribute"`` keywords match
    (``"PAPER preset (rule 3dcam, sum)"``), else the rule and aggregation; then the layers.
    ``attribute``: the other keywords of ``attribute`` (``gate``, ``gate_layers``, ``gate_mode``,
    ``temporal_margin``).

    Example:
        >>> describe_attribution("3dcam", "sum", True, layers=["conv1", "conv2"])
        'PAPER preset (rule 3dcam, sum) over conv1, conv2'
    """
    defaults = {"layer_rule": "3dcam", "aggregation": "sum", "normalize_layers": "max", "gate": None,
                "gate_layers": 1, "gate_mode": "product", "temporal_margin": 0}
    norm = {True: "max", "max": "max", False: False, "minmax": "minmax"}.get(normalize_layers, normalize_layers)
    own = {**defaults, **attribute, "layer_rule": layer_rule, "aggregation": aggregation, "normalize_layers": norm}
    text = f"rule {layer_rule}, {aggregation}" + ("" if norm == "max" else f", normalize_layers={normalize_layers}")
    if own["gate"]:
        text += f", gated by {own['gate']} of the last {own['gate_layers']} layer(s)"
    for name, preset in PRESETS.items():
        kw = {**defaults, **preset.get("attribute", {})}
        kw["normalize_layers"] = {True: "max"}.get(kw["normalize_layers"], kw["normalize_layers"])
        if kw == own:
            text = f"{name.upper()} preset ({text})"
            break
    if counterfactual:
        text = f"counterfactual, {text}"
    if layers:
        names = list(layers)
        text += " over " + (", ".join(names) if len(names) <= 4 else f"{names[0]} ... {names[-1]} ({len(names)} layers)")
    return text

ArrayLike = Union[torch.Tensor, np.ndarray]


def _new_figure(width: float, height: float):
    Figure = optional_import("matplotlib.figure", "captum_3dcam.viz.figures").Figure
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
    frame_numbers: Optional[Sequence[int]] = None,
    notes: Optional[Mapping[str, str]] = None,
):
    """A grid of frames: one row per map (plus the input frames on top), one column per frame.

    The building block of the paper's figures 2-4 and 6. A row whose map is ``None`` shows the
    plain frames. Columns are labelled ``t=<frame number>``; a row whose map has no positive
    value gets ``notes[label]`` (or :data:`EMPTY_MAP_NOTE`) under its label.

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
        frame_numbers: the true frame number of each frame of ``video`` (when ``video`` holds a
            selection of a longer video's frames); default ``0 .. T - 1``.
        notes: ``{row label: text}`` written under that row's label (e.g. why a map is empty).

    Returns:
        ``matplotlib.figure.Figure``.

    Shape:
        ``video``: ``T`` frames; each row's map ``(T, H, W)`` (or ``(1, 1, T, H, W)``); boxes ``(T, 4)``
    """
    base = to_frames(video, value_range)
    T, H, W, _ = base.shape
    idx = list(frames) if frames is not None else frame_indices(T, num_frames)
    if any(not 0 <= i < T for i in idx):
        raise ValueError(f"frames: expected indices in [0, {T}), got {idx}")
    all_rows = ([("input", None)] if show_input else []) + list(rows.items())
    if not all_rows:
        raise ValueError("rows: expected at least one row")
    boxes, notes = dict(boxes or {}), dict(notes or {})
    for name, given in (("boxes", boxes), ("notes", notes)):
        unknown = set(given) - set(rows)
        if unknown:
            raise ValueError(f"{name}: keys {sorted(unknown)} are not row labels {list(rows)}")
    if frame_numbers is not None:
        frame_numbers = [int(f) for f in frame_numbers]
        if len(frame_numbers) != T:
            raise ValueError(f"frame_numbers: expected one number per frame of video ({T}), got {len(frame_numbers)}")

    sel = torch.as_tensor(idx)
    cells, row_labels = [], []
    for label, m in all_rows:  # overlays and boxes on the shown frames only
        text = textwrap.fill(str(label), 16)
        if m is None:
            img = base[sel].numpy()
        else:  # normalized over the whole clip (or per frame), then only the shown frames coloured
            full = normalize_maps(resize_maps(as_maps(m, f"rows[{label!r}]"), (T, H, W)), per_frame=per_frame)
            img = overlay(base[sel], full[sel], alpha=alpha, cmap=cmap, normalize=False)
            if not bool((full > 0).any()) or label in notes:
                text += "\n" + textwrap.fill(notes.get(label, EMPTY_MAP_NOTE), 20)
        row_labels.append(text)
        if gt_boxes is not None:
            img = draw_boxes(img, as_tensor(gt_boxes, "gt_boxes")[sel], color=GT_COLOR, thickness=box_thickness)
        if label in boxes:
            img = draw_boxes(img, as_tensor(boxes[label], "boxes")[sel], color=PRED_COLOR, thickness=box_thickness)
        cells.append(img)
    gap = max(2, min(H, W) // 24)
    grid = _montage(np.stack(cells), gap)  # one image: far faster to draw than R x C axes

    fig = _new_figure(cell_size * len(idx) * W / H + 1.2, cell_size * len(all_rows) + (0.4 if title else 0.1))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(grid)
    shown = idx if frame_numbers is None else [frame_numbers[i] for i in idx]
    ax.set_xticks([c * (W + gap) + W / 2 for c in range(len(idx))], [f"t={t}" for t in shown], fontsize=8)
    ax.set_yticks([r * (H + gap) + H / 2 for r in range(len(all_rows))], row_labels, fontsize=9)
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

    Shape:
        ``video``: ``T`` frames; each map ``(1, 1, T, H, W)`` or ``(T, H, W)``
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

    Shape:
        ``video``: ``T`` frames; maps ``(1, 1, T, H, W)`` or ``(T, H, W)``; boxes ``(T, 4)``
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

    Shape:
        ``video``: ``T`` frames; maps ``(1, 1, T, H, W)`` or ``(T, H, W)``
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
    c = as_tensor(curve, "curve").cpu().double().flatten().numpy()
    if c.size == 0:
        raise ValueError("curve: expected at least one value, got an empty array")
    T = c.size
    seg = _as_segments(segments, "segments")
    gt = _as_segments(gt_segments, "gt_segments")
    scale = 1.0 / check_fps(fps) if fps is not None else 1.0
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
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8)  # beside the axes: never over the curve
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def save_figure(fig, path: Union[str, Path], dpi: int = 100) -> Path:
    """Save a figure (PNG, PDF or SVG by the file name). Returns the path."""
    path = as_path(path, "path", kind="file")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
