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
negative) has no box: its row is NaN.

Thresholding and box extents are vectorized in torch on the maps' device; the connected components
are computed on the CPU by one ``scipy.ndimage.label`` call over all frames, with a structuring
element that never connects two frames. The boxes come back on the maps' device.

Beyond per-frame boxes the module links boxes into a tube (:func:`link_tube`,
:func:`attribution_to_tubes`) and localizes in time (:func:`temporal_attention`,
:func:`attention_to_segments`): per-frame attention mass, thresholded into action segments, as the
paper's Figure 5 discusses for untrimmed video.
"""
from typing import List, NamedTuple, Optional, Sequence, Union

import torch
from torch import Tensor

__all__ = [
    "Regions",
    "threshold_masks",
    "otsu_thresholds",
    "attribution_to_boxes",
    "attribution_to_regions",
    "link_tube",
    "attribution_to_tubes",
    "temporal_attention",
    "mask_to_segments",
    "attention_to_segments",
]

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
    try:
        from scipy import ndimage
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "captum_3dcam.localization needs scipy for connected regions: "
            "pip install captum-3dcam[localization]"
        ) from exc
    return ndimage


def _as_frames(maps: Tensor, name: str = "maps") -> Tensor:
    """``(N, 1, T, H, W)`` or ``(N, T, H, W)`` -> ``(N, T, H, W)``, checked finite and floating."""
    if not isinstance(maps, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(maps).__name__}")
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
        ``(N, T)`` thresholds in ``(0, 1]``, to be used as ``threshold * max`` per frame.

    Shape:
        ``(N, [1,] T, H, W) -> (N, T)``
    """
    frames = _as_frames(maps)
    n, t = frames.shape[:2]
    rel = _relative(frames).clamp(min=0).reshape(n * t, -1)
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


def _masks(frames: Tensor, threshold: Threshold) -> Tensor:
    """Masks of already-validated frames ``(N, T, H, W)``; see :func:`threshold_masks`."""
    if threshold == "otsu":
        rel_t = otsu_thresholds(frames)[..., None, None].to(frames.dtype)
    else:
        rel_t = torch.full((1, 1, 1, 1), threshold, dtype=frames.dtype, device=frames.device)
    fmax = frames.amax(dim=(-2, -1), keepdim=True)
    return (frames >= rel_t * fmax) & (frames > 0)


def threshold_masks(maps: Tensor, threshold: Threshold = 0.5) -> Tensor:
    """Per-frame masks ``map >= threshold * max(map)`` (and ``map > 0``), vectorized in torch.

    Args:
        maps: ``(N, 1, T, H, W)`` or ``(N, T, H, W)`` attention maps.
        threshold: fraction of each frame's maximum in ``[0, 1]``, or ``"otsu"``.

    Returns:
        bool tensor ``(N, T, H, W)`` on the maps' device. A frame whose maximum is <= 0 is empty.

    Shape:
        ``(N, [1,] T, H, W) -> (N, T, H, W)``
    """
    threshold = _check_threshold(threshold)
    return _masks(_as_frames(maps), threshold)


def _mask_boxes(mask: Tensor) -> Tensor:
    """Bounding box of the True pixels of each frame: ``(F, H, W)`` bool -> ``(F, 4)``, NaN if empty."""
    f, h, w = mask.shape
    rows = mask.any(dim=2)
    cols = mask.any(dim=1)
    y1 = rows.to(torch.uint8).argmax(dim=1)
    y2 = h - rows.flip(1).to(torch.uint8).argmax(dim=1)
    x1 = cols.to(torch.uint8).argmax(dim=1)
    x2 = w - cols.flip(1).to(torch.uint8).argmax(dim=1)
    boxes = torch.stack([x1, y1, x2, y2], dim=1).to(torch.float64)
    return torch.where(rows.any(dim=1, keepdim=True), boxes, torch.full_like(boxes, float("nan")))


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
    maps: Tensor, threshold: Threshold = 0.5, *, connectivity: int = 8
) -> List[List[Regions]]:
    """Every connected region of every frame's thresholded map (the "every region" option).

    Args:
        maps: ``(N, 1, T, H, W)`` or ``(N, T, H, W)`` attention maps.
        threshold: fraction of each frame's maximum in ``[0, 1]``, or ``"otsu"``.
        connectivity: 8 (diagonal neighbours connect, like contours) or 4.

    Returns:
        ``regions[n][t]``: a :class:`Regions` with ``boxes (R, 4)``, ``areas (R,)`` and
        ``masses (R,)``, largest area first; ``R = 0`` for an empty frame. Tensors are on the
        maps' device.

    Shape:
        ``(N, [1,] T, H, W) -> N lists of T Regions``
    """
    import numpy as np

    ndimage = _scipy_ndimage()
    structure = _structure(connectivity)
    threshold = _check_threshold(threshold)
    frames = _as_frames(maps)
    masks = _masks(frames, threshold).cpu().numpy()
    values = frames.cpu().double().numpy()
    out: List[List[Regions]] = []
    for n in range(frames.shape[0]):
        row = []
        for t in range(frames.shape[1]):
            boxes, areas, masses, _ = _frame_regions(masks[n, t], values[n, t], ndimage, structure)
            order = np.argsort(-areas, kind="stable")
            row.append(
                Regions(
                    torch.as_tensor(boxes[order], dtype=frames.dtype, device=frames.device).reshape(-1, 4),
                    torch.as_tensor(areas[order], dtype=torch.long, device=frames.device),
                    torch.as_tensor(masses[order], dtype=frames.dtype, device=frames.device),
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

    Returns:
        ``(N, T, 4)`` boxes ``(x1, y1, x2, y2)`` in pixel-edge coordinates (``x1 <= x < x2`` for
        the covered pixel columns), on the maps' device; NaN rows for frames with no positive
        attention.

    Shape:
        ``(N, [1,] T, H, W) -> (N, T, 4)``

    Example:
        >>> m = torch.zeros(1, 1, 1, 4, 6); m[..., 1:3, 2:5] = 1.0
        >>> attribution_to_boxes(m)
        tensor([[[2., 1., 5., 3.]]])
    """
    if not isinstance(region, str) or region not in _REGIONS:
        hint = " (for every region use attribution_to_regions)" if region == "all" else ""
        raise ValueError(f"region: expected one of {_REGIONS}, got {region!r}{hint}")
    threshold = _check_threshold(threshold)
    structure = _structure(connectivity, stacked=True)
    frames = _as_frames(maps)
    n, t, h, w = frames.shape
    masks = _masks(frames, threshold).reshape(n * t, h, w)
    if region != "union" and masks.numel():
        chosen = _chosen_region(masks, frames.reshape(n * t, h * w), region, structure)
    else:
        chosen = masks
    boxes = _mask_boxes(chosen.cpu() if chosen.numel() else chosen)
    return boxes.reshape(n, t, 4).to(device=frames.device, dtype=frames.dtype)


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


def _pairwise_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU matrix of boxes ``(A, 4)`` x ``(B, 4)`` -> ``(A, B)`` (0 where the union is empty)."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / torch.where(union > 0, union, torch.ones_like(union)), 0.0)


def link_tube(
    boxes: Sequence[Tensor],
    scores: Optional[Sequence[Tensor]] = None,
    *,
    overlap_weight: float = 1.0,
) -> Tensor:
    """Link per-frame candidate boxes into one tube by dynamic programming (Viterbi).

    Chooses one candidate ``b_t`` per non-empty frame to maximize::

        sum_t s_t(b_t) / max s_t  +  overlap_weight * sum_t IoU(b_t, b_prev(t))

    where ``b_prev(t)`` is the chosen box of the previous non-empty frame (empty frames are
    skipped, not broken on). Scores default to 1 (pure temporal consistency); with
    :func:`attribution_to_regions` use the regions' ``masses`` or ``areas``.

    Args:
        boxes: ``T`` tensors of shape ``(R_t, 4)``; ``R_t`` may be 0.
        scores: ``T`` tensors of shape ``(R_t,)``, non-negative; None for all ones.
        overlap_weight: weight of the IoU between consecutive boxes (>= 0).

    Returns:
        ``(T, 4)``: the tube, NaN rows for frames without candidates.

    Shape:
        ``T x (R_t, 4) -> (T, 4)``
    """
    if isinstance(boxes, Tensor) or not isinstance(boxes, (list, tuple)):
        raise TypeError(f"boxes: expected a list of (R_t, 4) tensors, got {type(boxes).__name__}")
    if scores is not None and len(scores) != len(boxes):
        raise ValueError(f"scores: expected {len(boxes)} entries (one per frame), got {len(scores)}")
    if not isinstance(overlap_weight, (int, float)) or not overlap_weight >= 0:
        raise ValueError(f"overlap_weight: expected a number >= 0, got {overlap_weight!r}")
    for t, b in enumerate(boxes):
        if not isinstance(b, Tensor) or b.dim() != 2 or b.shape[1] != 4:
            shape = tuple(b.shape) if isinstance(b, Tensor) else type(b).__name__
            raise ValueError(f"boxes[{t}]: expected a (R, 4) tensor, got {shape}")
        if scores is not None and tuple(scores[t].shape) != (b.shape[0],):
            raise ValueError(f"scores[{t}]: expected shape ({b.shape[0]},), got {tuple(scores[t].shape)}")
    ref = next((b for b in boxes if b.numel()), None)
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
    device = ref.device if ref is not None else torch.device("cpu")
    tube = torch.full((len(boxes), 4), float("nan"), dtype=dtype, device=device)
    frames = [t for t, b in enumerate(boxes) if b.shape[0] > 0]
    if not frames:
        return tube
    unary = []
    for t in frames:
        s = scores[t].to(torch.float64) if scores is not None else torch.ones(boxes[t].shape[0], dtype=torch.float64)
        s = s.cpu()
        smax = s.max()
        unary.append(s / smax if smax > 0 else torch.zeros_like(s))
    cand = [boxes[t].detach().to(torch.float64).cpu() for t in frames]
    acc = unary[0]
    back = []
    for k in range(1, len(frames)):
        trans = acc[:, None] + overlap_weight * _pairwise_iou(cand[k - 1], cand[k])
        best, arg = trans.max(dim=0)
        back.append(arg)
        acc = best + unary[k]
    choice = int(acc.argmax())
    for k in range(len(frames) - 1, -1, -1):
        tube[frames[k]] = cand[k][choice].to(dtype)
        if k > 0:
            choice = int(back[k - 1][choice])
    return tube


def attribution_to_tubes(
    maps: Tensor,
    threshold: Threshold = 0.5,
    *,
    score: str = "mass",
    overlap_weight: float = 1.0,
    connectivity: int = 8,
) -> Tensor:
    """One linked tube per clip: every region of every frame, linked by :func:`link_tube`.

    Args:
        maps: ``(N, 1, T, H, W)`` or ``(N, T, H, W)`` attention maps.
        threshold: fraction of each frame's maximum in ``[0, 1]``, or ``"otsu"``.
        score: ``"mass"`` (sum of attention in a region) or ``"area"`` (its pixel count).
        overlap_weight: weight of temporal consistency (IoU of consecutive boxes).
        connectivity: 8 or 4.

    Returns:
        ``(N, T, 4)`` boxes, NaN rows for frames without attention.

    Shape:
        ``(N, [1,] T, H, W) -> (N, T, 4)``
    """
    if score not in ("mass", "area"):
        raise ValueError(f"score: expected 'mass' or 'area', got {score!r}")
    frames = _as_frames(maps)
    regions = attribution_to_regions(frames, threshold, connectivity=connectivity)
    tubes = []
    for clip in regions:
        boxes = [r.boxes for r in clip]
        scores = [r.masses if score == "mass" else r.areas.to(frames.dtype) for r in clip]
        tubes.append(link_tube(boxes, scores, overlap_weight=overlap_weight).to(frames.device))
    if not tubes:
        return torch.zeros(0, frames.shape[1], 4, dtype=frames.dtype, device=frames.device)
    return torch.stack(tubes).to(frames.dtype)


def temporal_attention(maps: Tensor, *, normalize: bool = True) -> Tensor:
    """Per-frame attention mass ``m_t = sum_{h, w} relu(P_t)``, optionally divided by ``max_t m_t``.

    Args:
        maps: ``(N, 1, T, H, W)`` or ``(N, T, H, W)`` attention maps.
        normalize: divide each clip's curve by its maximum (a zero curve stays zero).

    Returns:
        ``(N, T)`` curve on the maps' device.

    Shape:
        ``(N, [1,] T, H, W) -> (N, T)``
    """
    frames = _as_frames(maps)
    mass = frames.clamp(min=0).sum(dim=(-2, -1))
    if normalize:
        top = mass.amax(dim=1, keepdim=True)
        mass = torch.where(top > 0, mass / torch.where(top > 0, top, torch.ones_like(top)), 0.0)
    return mass


def mask_to_segments(mask: Tensor) -> Tensor:
    """Runs of True in a 1-D mask -> segments ``(S, 2)`` ``[start, end)`` (end exclusive), long.

    Shape:
        ``(T,) -> (S, 2)``
    """
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask: expected a torch.Tensor, got {type(mask).__name__}")
    if mask.dim() != 1:
        raise ValueError(f"mask: expected a 1-D (T,) tensor, got shape {tuple(mask.shape)}")
    m = mask.bool().to(torch.int8)
    padded = torch.cat([m.new_zeros(1), m, m.new_zeros(1)])
    diff = padded[1:] - padded[:-1]
    starts = torch.nonzero(diff == 1).flatten()
    ends = torch.nonzero(diff == -1).flatten()
    return torch.stack([starts, ends], dim=1).long()


def attention_to_segments(
    curve: Tensor,
    threshold: Threshold = 0.5,
    *,
    min_length: int = 1,
    max_gap: int = 0,
) -> List[Tensor]:
    """Temporal localization: frames whose attention is high form action segments.

    Per clip: ``keep_t = (m_t >= threshold * max_t m_t) & (m_t > 0)``; runs of kept frames are
    segments; runs separated by at most ``max_gap`` dropped frames are merged; segments shorter
    than ``min_length`` frames are dropped.

    Args:
        curve: ``(N, T)`` per-frame attention (e.g. :func:`temporal_attention`), or ``(T,)``.
        threshold: fraction of the clip's maximum in ``[0, 1]``, or ``"otsu"``.
        min_length: shortest segment kept, in frames (>= 1).
        max_gap: longest gap bridged when merging, in frames (>= 0).

    Returns:
        ``N`` long tensors ``(S, 2)``: segments ``[start, end)``, end exclusive, in frames.

    Shape:
        ``(N, T) -> N x (S, 2)``
    """
    if not isinstance(curve, Tensor):
        raise TypeError(f"curve: expected a torch.Tensor, got {type(curve).__name__}")
    if curve.dim() == 1:
        curve = curve[None]
    if curve.dim() != 2:
        raise ValueError(f"curve: expected (N, T) or (T,), got shape {tuple(curve.shape)}")
    if isinstance(min_length, bool) or not isinstance(min_length, int) or min_length < 1:
        raise ValueError(f"min_length: expected an int >= 1, got {min_length!r}")
    if isinstance(max_gap, bool) or not isinstance(max_gap, int) or max_gap < 0:
        raise ValueError(f"max_gap: expected an int >= 0, got {max_gap!r}")
    keep = threshold_masks(curve[:, None, None, :], threshold)[:, 0, 0, :].cpu()
    out = []
    for row in keep:
        segs = mask_to_segments(row)
        if max_gap > 0 and segs.shape[0] > 1:
            merged = [segs[0].clone()]
            for s in segs[1:]:
                if s[0] - merged[-1][1] <= max_gap:
                    merged[-1][1] = s[1]
                else:
                    merged.append(s.clone())
            segs = torch.stack(merged)
        segs = segs[(segs[:, 1] - segs[:, 0]) >= min_length]
        out.append(segs.reshape(-1, 2))
    return out
