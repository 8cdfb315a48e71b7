"""Weak localization: attribution maps to per-frame boxes, tubes and temporal segments.

The paper localizes an action by *contour thresholding* its final attention map: per frame,
keep the pixels whose attention is at least ``threshold * max`` of that frame, take the
connected regions (the contours) of that mask and return the bounding box of the largest one.

Per frame ``t`` of a map ``P_t`` (shape ``(H, W)``)::

    mask_t  = (P_t >= threshold * max(P_t)) & (P_t > 0)          threshold in [0, 1] or "otsu"
    regions = connected components of mask_t (8- or 4-connectivity, scipy.ndimage.label)
    box_t   = bounding box of the largest region (or: of the region holding the peak,
              of all regions together)

Boxes are ``(x1, y1, x2, y2)`` in pixel-edge coordinates of the frame: a box covering pixel
columns ``i..j`` and rows ``k..l`` is ``(i, k, j + 1, l + 1)``. A frame whose map is all zero (or
negative) has no box: its row is NaN. Boxes are always float32 (integer pixel edges are exact up to
2**24; bfloat16 would round 257 to 256), whatever the maps' dtype; half-precision maps are
thresholded in float32.

Thresholding and box extents are vectorized in torch on the maps' device; the connected components
are computed on the CPU by one ``scipy.ndimage.label`` call over all frames, with a structuring
element that never connects two frames. The boxes come back on the maps' device.

Does not live here: tubes (boxes linked over time) and temporal segments, in
:mod:`captum_3dcam.localization.tubes` (their names are still importable from this module); the metrics, in
:mod:`captum_3dcam.metrics.localization`.
"""
from typing import List, NamedTuple, Union

import torch
from torch import Tensor

from .._utils import compute_dtype, mask_to_boxes, optional_import

__all__ = [
    "Regions", "threshold_masks", "otsu_thresholds", "attribution_to_boxes", "attribution_to_regions",
]
_TUBES = ("link_tube", "attribution_to_tubes", "temporal_attention", "mask_to_segments", "attention_to_segments")

Threshold = Union[float, str]
_REGIONS = ("largest", "peak", "union")
_OTSU_BINS = 256


class Regions(NamedTuple):
    """The connected regions of one frame's thresholded map.

    Attributes:
        boxes: ``(R, 4)`` boxes ``(x1, y1, x2, y2)``, pixel-edge coordinates, largest area first.
        areas: ``(R,)`` number of pixels of each region.
        masses: ``(R,)`` sum of the map over each region.
    """

    boxes: Tensor
    areas: Tensor
    masses: Tensor


def _scipy_ndimage():
    return optional_import("scipy.ndimage", "captum_3dcam.localization.boxes (connected regions)")


def as_frames(maps: Tensor, name: str = "maps") -> Tensor:
    """``(N, 1, T, H, W)`` or ``(N, T, H, W)`` -> ``(N, T, H, W)``, checked finite and floating."""
    if not isinstance(maps, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(maps).__name__}")
    shape = tuple(maps.shape)
    if maps.dim() == 5:
        if maps.shape[1] != 1:
            raise ValueError(
                f"{name}: expected (N, 1, T, H, W) or (N, T, H, W), got shape {tuple(maps.shape)} "
                "(a 5-D map must have one channel)"
            )
        maps = maps[:, 0]
    elif maps.dim() != 4:
        raise ValueError(
            f"{name}: expected (N, 1, T, H, W) or (N, T, H, W), got {maps.dim()}-D shape "
            f"{tuple(maps.shape)}"
        )
    if 0 in maps.shape[1:]:
        raise ValueError(f"{name}: expected T, H, W >= 1 (at least one frame of at least one pixel), got shape "
                         f"{shape}")
    if maps.is_complex() or maps.dtype == torch.bool:
        raise TypeError(f"{name}: expected a real-valued tensor, got dtype {maps.dtype}")
    if not maps.is_floating_point():
        maps = maps.float()
    if maps.numel() and not bool(torch.isfinite(maps).all()):
        bad = int((~torch.isfinite(maps)).sum())
        raise ValueError(f"{name}: expected finite values, got {bad} NaN/inf entries")
    return maps.detach()


def _check_threshold(threshold: Threshold, name: str = "threshold") -> Threshold:
    if isinstance(threshold, str):
        if threshold.lower() != "otsu":
            raise ValueError(f"{name}: expected a number in [0, 1] or 'otsu', got {threshold!r}")
        return "otsu"
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise TypeError(f"{name}: expected a number in [0, 1] or 'otsu', got {type(threshold).__name__}")
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:  # also rejects NaN
        raise ValueError(f"{name}: expected a number in [0, 1] or 'otsu', got {threshold}")
    return threshold


def _relative(frames: Tensor) -> Tensor:
    """Each frame divided by its maximum; frames whose maximum is <= 0 become 0. Shape kept."""
    fmax = frames.amax(dim=(-2, -1), keepdim=True)
    safe = torch.where(fmax > 0, fmax, torch.ones_like(fmax))
    return torch.where(fmax > 0, frames / safe, torch.zeros_like(frames))


def otsu_thresholds(maps: Tensor, bins: int = _OTSU_BINS) -> Tensor:
    """Otsu's threshold of every frame, relative to the frame's maximum.

    Each frame is divided by its maximum (values in ``[0, 1]`` where the map is non-negative),
    histogrammed into ``bins`` bins, and the threshold that maximizes the between-class variance
    ``omega (1 - omega) (mu_0 - mu_1)^2`` is returned as the upper edge of the last background
    bin, so that ``map >= t * max`` is exactly the foreground class. Frames with no positive value
    or a single occupied bin get ``1.0`` (only the maximum survives).

    Args:
        maps: ``(N, 1, T, H, W)`` or ``(N, T, H, W)`` attention maps.
        bins: histogram bins.

    Returns:
        ``(N, T)`` thresholds in ``(0, 1]``, to be used as ``threshold * max`` per frame; float32
        for half-precision maps, else the maps' dtype.

    Shape:
        ``(N, [1,] T, H, W) -> (N, T)``
    """
    frames = as_frames(maps)
    frames = frames.to(compute_dtype(frames.dtype))  # float16 counts stop being exact at 2048 pixels
    n, t, h, w = frames.shape
    rel = _relative(frames).clamp(min=0).reshape(n * t, h * w)
    idx = (rel * bins).long().clamp_(0, bins - 1)
    hist = torch.zeros(n * t, bins, dtype=rel.dtype, device=rel.device)
    hist.scatter_add_(1, idx, torch.ones_like(rel))
    p = hist / rel.shape[1]
    centers = (torch.arange(bins, dtype=rel.dtype, device=rel.device) + 0.5) / bins
    omega = p.cumsum(1)
    mu = (p * centers).cumsum(1)
    mu_total = mu[:, -1:]
    denom = omega * (1 - omega)
    valid = denom > 1e-12
    between = torch.where(
        valid, (mu_total * omega - mu) ** 2 / torch.where(valid, denom, torch.ones_like(denom)), -1
    )
    k = between.argmax(dim=1)
    thresholds = (k + 1).to(rel.dtype) / bins
    thresholds = torch.where(valid.any(dim=1), thresholds, torch.ones_like(thresholds))
    return thresholds.reshape(n, t)


_RELATIVE = ("max", "range")


def _check_relative(relative_to) -> str:
    if not isinstance(relative_to, str) or relative_to not in _RELATIVE:
        raise ValueError(f"relative_to: expected one of {_RELATIVE}, got {relative_to!r}")
    return relative_to


def _masks(frames: Tensor, threshold: Threshold, relative_to: str = "max") -> Tensor:
    """Masks of already-validated frames ``(N, T, H, W)``; see :func:`threshold_masks`."""
    frames = frames.to(compute_dtype(frames.dtype))
    if relative_to == "range":  # the frame's minimum becomes 0: a pedestal under the map is ignored
        frames = frames - frames.amin(dim=(-2, -1), keepdim=True)
    if threshold == "otsu":
        rel_t = otsu_thresholds(frames)[..., None, None].to(frames.dtype)
    else:
        rel_t = torch.full((1, 1, 1, 1), threshold, dtype=frames.dtype, device=frames.device)
    fmax = frames.amax(dim=(-2, -1), keepdim=True)
    return (frames >= rel_t * fmax) & (frames > 0)


def threshold_masks(maps: Tensor, threshold: Threshold = 0.5, *, relative_to: str = "max") -> Tensor:
    """Per-frame masks ``map >= threshold * max(map)`` (and ``map > 0``), vectorized in torch.

    With ``relative_to="range"`` the threshold is a fraction of each frame's range instead:
    ``map - min >= threshold * (max - min)`` (and ``map > min``), so the masks do not change when a
    constant is added to a frame (a map that is positive everywhere, as summed raw layer maps of a
    deep network are, is not one region covering the frame).

    Args:
        maps: ``(N, 1, T, H, W)`` or ``(N, T, H, W)`` attention maps.
        threshold: fraction of each frame's maximum (or range) in ``[0, 1]``, or ``"otsu"``.
        relative_to: ``"max"`` (the paper's) or ``"range"``.

    Returns:
        bool tensor ``(N, T, H, W)`` on the maps' device. A frame whose maximum is <= 0 (with
        ``"range"``: a constant frame) is empty.

    Shape:
        ``(N, [1,] T, H, W) -> (N, T, H, W)``
    """
    threshold = _check_threshold(threshold)
    return _masks(as_frames(maps), threshold, _check_relative(relative_to))


def _structure(connectivity: int, stacked: bool = False):
    """2-D neighbourhood; with ``stacked`` a 3-D one that never connects across frames."""
    import numpy as np

    if connectivity == 8:
        plane = np.ones((3, 3), dtype=bool)
    elif connectivity == 4:
        plane = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)
    else:
        raise ValueError(f"connectivity: expected 4 or 8, got {connectivity!r}")
    if not stacked:
        return plane
    out = np.zeros((3, 3, 3), dtype=bool)
    out[1] = plane
    return out


def _frame_regions(mask, values, labels_fn, structure):
    """Connected regions of one (H, W) numpy mask -> (boxes (R,4), areas (R,), masses (R,))."""
    import numpy as np

    labels, count = labels_fn.label(mask, structure=structure)
    if count == 0:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0), labels
    flat = labels.ravel()
    areas = np.bincount(flat, minlength=count + 1)[1:]
    masses = np.bincount(flat, weights=values.ravel(), minlength=count + 1)[1:]
    slices = labels_fn.find_objects(labels)
    boxes = np.array([[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in slices], dtype=float)
    return boxes, areas, masses, labels


def attribution_to_regions(
    maps: Tensor, threshold: Threshold = 0.5, *, connectivity: int = 8, relative_to: str = "max"
) -> List[List[Regions]]:
    """Every connected region of every frame's thresholded map (the "every region" option).

    Args:
        maps: ``(N, 1, T, H, W)`` or ``(N, T, H, W)`` attention maps.
        threshold: fraction of each frame's maximum in ``[0, 1]``, or ``"otsu"``.
        connectivity: 8 (diagonal neighbours connect, like contours) or 4.
        relative_to: ``"max"`` or ``"range"`` (see :func:`threshold_masks`).

    Returns:
        ``regions[n][t]``: a :class:`Regions` with ``boxes (R, 4)`` float32, ``areas (R,)`` and
        ``masses (R,)`` (float32 for half-precision maps), largest area first; ``R = 0`` for an
        empty frame. Tensors are on the maps' device.

    Shape:
        ``(N, [1,] T, H, W) -> N lists of T Regions``
    """
    import numpy as np

    ndimage = _scipy_ndimage()
    structure = _structure(connectivity)
    threshold = _check_threshold(threshold)
    frames = as_frames(maps)
    masks = _masks(frames, threshold, _check_relative(relative_to)).cpu().numpy()
    values = frames.cpu().double().numpy()
    out: List[List[Regions]] = []
    for n in range(frames.shape[0]):
        row = []
        for t in range(frames.shape[1]):
            boxes, areas, masses, _ = _frame_regions(masks[n, t], values[n, t], ndimage, structure)
            order = np.argsort(-areas, kind="stable")
            row.append(
                Regions(
                    torch.as_tensor(boxes[order], dtype=torch.float32, device=frames.device).reshape(-1, 4),
                    torch.as_tensor(areas[order], dtype=torch.long, device=frames.device),
                    torch.as_tensor(masses[order], dtype=compute_dtype(frames.dtype), device=frames.device),
                )
            )
        out.append(row)
    return out


def attribution_to_boxes(
    maps: Tensor,
    threshold: Threshold = 0.5,
    *,
    region: str = "largest",
    connectivity: int = 8,
    relative_to: str = "max",
) -> Tensor:
    """Contour-threshold localization: one box per frame (the paper's weak localization).

    Per frame: ``mask = (map >= threshold * max) & (map > 0)``; connected regions of the mask;
    the box of the chosen region. For every region of every frame use
    :func:`attribution_to_regions`.

    Args:
        maps: ``(N, 1, T, H, W)`` or ``(N, T, H, W)`` attention maps (finite; NaN raises).
        threshold: fraction of each frame's maximum in ``[0, 1]`` (default 0.5), or ``"otsu"``
            (Otsu's threshold per frame, see :func:`otsu_thresholds`).
        region: ``"largest"`` (most pixels, the paper's choice; ties go to the first region in
            raster order), ``"peak"`` (the region that holds the frame's maximum), or ``"union"``
            (one box around all regions).
        connectivity: 8 (diagonal neighbours connect, like contours) or 4.
        relative_to: ``"max"`` (the paper's: ``threshold`` is a fraction of the frame's maximum) or
            ``"range"`` (``map - min >= threshold * (max - min)``: invariant to a constant added to a
            frame; see :func:`threshold_masks`).

    Returns:
        ``(N, T, 4)`` float32 boxes ``(x1, y1, x2, y2)`` in pixel-edge coordinates (``x1 <= x < x2``
        for the covered pixel columns), on the maps' device, whatever the maps' dtype; NaN rows for
        frames with no positive attention.

    Shape:
        ``(N, [1,] T, H, W) -> (N, T, 4)``

    Example:
        >>> m = torch.zeros(1, 1, 1, 4, 6); m[..., 1:3, 2:5] = 1.0
        >>> attribution_to_boxes(m)
        tensor([[[2., 1., 5., 3.]]])
        >>> attribution_to_boxes(m.double()).dtype
        torch.float32
    """
    if not isinstance(region, str) or region not in _REGIONS:
        hint = " (for every region use attribution_to_regions)" if region == "all" else ""
        raise ValueError(f"region: expected one of {_REGIONS}, got {region!r}{hint}")
    threshold = _check_threshold(threshold)
    structure = _structure(connectivity, stacked=True)
    frames = as_frames(maps)
    n, t, h, w = frames.shape
    masks = _masks(frames, threshold, _check_relative(relative_to)).reshape(n * t, h, w)
    if region != "union" and masks.numel():
        chosen = _chosen_region(masks, frames.reshape(n * t, h * w), region, structure)
    else:
        chosen = masks
    boxes = mask_to_boxes(chosen.cpu() if chosen.numel() else chosen)
    return boxes.reshape(n, t, 4).to(device=frames.device, dtype=torch.float32)


def _chosen_region(masks: Tensor, flat_values: Tensor, region: str, structure) -> Tensor:
    """One connected region per frame (largest or holding the peak), as a mask ``(F, H, W)``.

    All frames are labelled in one ``scipy.ndimage.label`` call whose structure never links two
    frames; each label's frame and area come from ``bincount``.
    """
    import numpy as np

    ndimage = _scipy_ndimage()
    f = masks.shape[0]
    labels, count = ndimage.label(masks.cpu().numpy(), structure=structure)
    flat = labels.reshape(f, -1)
    if count == 0:
        return torch.zeros_like(masks, device="cpu")
    if region == "peak":
        peaks = flat_values.argmax(dim=1).cpu().numpy()
        selected = flat[np.arange(f), peaks]
    else:
        ravel = flat.ravel()
        areas = np.bincount(ravel, minlength=count + 1)
        frame_index = np.repeat(np.arange(f, dtype=np.float64), flat.shape[1])
        frame_of = np.rint(np.bincount(ravel, weights=frame_index, minlength=count + 1)[1:] / areas[1:]).astype(np.int64)
        # per frame: the largest area, ties to the lowest label (first in raster order)
        order = np.lexsort((np.arange(count), -areas[1:], frame_of))
        first = np.unique(frame_of[order], return_index=True)
        selected = np.zeros(f, dtype=labels.dtype)
        selected[first[0]] = order[first[1]] + 1
    chosen = (labels == selected[:, None, None]) & (selected[:, None, None] > 0)
    return torch.from_numpy(chosen)
