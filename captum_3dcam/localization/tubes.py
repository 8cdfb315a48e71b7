"""Boxes linked over time and localization in time: tubes and temporal segments.

Lives here: :func:`link_tube` / :func:`attribution_to_tubes` (one box per frame chosen among every
region so that consecutive boxes overlap, Viterbi), :func:`temporal_attention` (per-frame attention
mass) and :func:`attention_to_segments` / :func:`mask_to_segments` (runs of high attention as
``[start, end)`` segments, the paper's Figure 5 for untrimmed video). Does not live here: the
per-frame contour thresholding itself (:mod:`captum_3dcam.localization.boxes`) and the temporal IoU
metric (:mod:`captum_3dcam.metrics.localization`).
"""
from typing import List, Optional, Sequence

import torch
from torch import Tensor

from .._utils import checked_boxes, compute_dtype, inter_union, normalize_max
from .boxes import Threshold, as_frames, attribution_to_regions, threshold_masks

__all__ = [
    "link_tube", "attribution_to_tubes", "temporal_attention", "mask_to_segments", "attention_to_segments",
]


def _pairwise_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU matrix of boxes ``(A, 4)`` x ``(B, 4)`` -> ``(A, B)`` (0 where the union is empty)."""
    inter, union = inter_union(a[:, None], b[None])
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
        boxes: ``T`` tensors of shape ``(R_t, 4)``, finite with ``x1 <= x2``, ``y1 <= y2`` (else
            ``ValueError``); ``R_t`` may be 0.
        scores: ``T`` tensors of shape ``(R_t,)``, finite and non-negative; None for all ones.
        overlap_weight: weight of the IoU between consecutive boxes (>= 0).

    Returns:
        ``(T, 4)``: the tube, NaN rows for frames without candidates; float32 (float64 for
        float64 boxes).

    Shape:
        ``T x (R_t, 4) -> (T, 4)``
    """
    if isinstance(boxes, Tensor) or not isinstance(boxes, (list, tuple)):
        raise TypeError(f"boxes: expected a list of (R_t, 4) tensors, got {type(boxes).__name__}")
    if scores is not None and len(scores) != len(boxes):
        raise ValueError(f"scores: expected {len(boxes)} entries (one per frame), got {len(scores)}")
    if isinstance(overlap_weight, bool) or not isinstance(overlap_weight, (int, float)) \
            or not 0 <= overlap_weight < float("inf"):
        raise ValueError(f"overlap_weight: expected a finite number >= 0, got {overlap_weight!r}")
    for t, b in enumerate(boxes):
        if not isinstance(b, Tensor) or b.dim() != 2 or b.shape[1] != 4:
            shape = tuple(b.shape) if isinstance(b, Tensor) else type(b).__name__
            raise ValueError(f"boxes[{t}]: expected a (R, 4) tensor, got {shape}")
        if bool(torch.isnan(checked_boxes(b, f"boxes[{t}]")).any()):  # also: real, finite, x1 <= x2, y1 <= y2
            raise ValueError(f"boxes[{t}]: expected finite candidate boxes, got NaN rows (a frame without "
                             "candidates is a (0, 4) tensor)")
        if scores is None:
            continue
        s = scores[t]
        if not isinstance(s, Tensor) or tuple(s.shape) != (b.shape[0],):
            got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
            raise ValueError(f"scores[{t}]: expected a tensor of shape ({b.shape[0]},), got {got}")
        if s.dtype == torch.bool or s.is_complex():
            raise TypeError(f"scores[{t}]: expected real scores, got dtype {s.dtype}")
        bad = ~(torch.isfinite(s) & (s >= 0))
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise ValueError(f"scores[{t}]: expected finite scores >= 0, got {float(s[i])} at index {i}")
    ref = next((b for b in boxes if b.numel()), None)
    dtype = compute_dtype(ref.dtype) if ref is not None else torch.float32  # half -> float32: exact pixels
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
        ``(N, T, 4)`` float32 boxes, NaN rows for frames without attention.

    Shape:
        ``(N, [1,] T, H, W) -> (N, T, 4)``
    """
    if score not in ("mass", "area"):
        raise ValueError(f"score: expected 'mass' or 'area', got {score!r}")
    frames = as_frames(maps)
    regions = attribution_to_regions(frames, threshold, connectivity=connectivity)
    tubes = []
    for clip in regions:
        boxes = [r.boxes for r in clip]
        scores = [r.masses if score == "mass" else r.areas.double() for r in clip]
        tubes.append(link_tube(boxes, scores, overlap_weight=overlap_weight).to(frames.device))
    if not tubes:
        return torch.zeros(0, frames.shape[1], 4, dtype=torch.float32, device=frames.device)
    return torch.stack(tubes).to(torch.float32)


def temporal_attention(maps: Tensor, *, normalize: bool = True) -> Tensor:
    """Per-frame attention mass ``m_t = sum_{h, w} relu(P_t)``, optionally divided by ``max_t m_t``.

    Args:
        maps: ``(N, 1, T, H, W)`` or ``(N, T, H, W)`` attention maps.
        normalize: divide each clip's curve by its maximum (a zero curve stays zero).

    Returns:
        ``(N, T)`` curve on the maps' device (summed in float32 for half-precision maps).

    Shape:
        ``(N, [1,] T, H, W) -> (N, T)``
    """
    frames = as_frames(maps)
    mass = frames.to(compute_dtype(frames.dtype)).clamp(min=0).sum(dim=(-2, -1))  # float16 sums overflow
    return normalize_max(mass, (1,)) if normalize else mass


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
    shape = tuple(curve.shape)
    if curve.dim() == 1:
        curve = curve[None]
    if curve.dim() != 2 or curve.shape[1] == 0:
        raise ValueError(f"curve: expected (N, T) or (T,) with T >= 1, got shape {shape}")
    if curve.dtype == torch.bool or curve.is_complex():
        raise TypeError(f"curve: expected a real-valued tensor, got dtype {curve.dtype}")
    if not bool(torch.isfinite(curve).all()):
        raise ValueError(f"curve: expected finite values, got {int((~torch.isfinite(curve)).sum())} NaN/inf entries")
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
