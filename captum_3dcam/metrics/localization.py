"""Localization metrics of the paper (section 4): pointing game, box IoU, IoU accuracy, Acc2, tIoU.

Boxes are ``(x1, y1, x2, y2)`` in pixel-edge coordinates (``x1 <= x2``, ``y1 <= y2``; pixel column
``x`` lies inside when ``x1 <= x < x2``). A ground-truth row of NaN means "no box in this frame":
such frames are excluded from every denominator and are never hits (Quantus counts them as hits).

- Pointing game / hit point: frame ``t`` is a hit when the argmax pixel ``(x, y)`` of its map lies
  in the GT box: ``x1 <= x < x2`` and ``y1 <= y < y2``. ``Acc = #hits / #GT frames``.
- IoU accuracy at ``tau``: ``#(GT frames with IoU(pred, gt) >= tau) / #GT frames``; ``tau = 0``
  means ``IoU > 0`` (the paper's "threshold 0.0"). Mean IoU over GT frames (a missing prediction
  has IoU 0).
- Acc2: the same numerators restricted to clips whose predicted class equals the label, over the
  same denominator: ``Acc2 = c * #hits / #GT frames`` per clip, ``c = [prediction == label]``.
- Temporal IoU of segments ``[start, end)``: ``|a ∩ b| / |a ∪ b|`` on the time axis.

Lives here: the metrics and :class:`LocalizationMeter`. Does not live here: turning maps into boxes
(:mod:`captum_3dcam.localization.boxes`) and running methods over datasets (:mod:`captum_3dcam.evaluation`).
"""
import numbers
from typing import Dict, Iterable, Optional, Sequence

import torch
from torch import Tensor

from .._utils import checked_boxes, compute_dtype, inter_union
from ..localization.boxes import as_frames
from ..localization.tubes import mask_to_segments

__all__ = [
    "check_boxes",
    "valid_frames",
    "box_iou",
    "pointing_game",
    "iou_accuracy",
    "hit_rate",
    "temporal_iou",
    "segment_set_iou",
    "gt_segments",
    "LocalizationMeter",
]

DEFAULT_IOU_THRESHOLDS = (0.0, 0.5, 0.6)


def check_boxes(boxes: Tensor, name: str = "boxes") -> Tensor:
    """Validate boxes ``(..., 4)``: rows all finite with ``x1 <= x2, y1 <= y2``, or all NaN.

    Returns the boxes as a floating tensor (integers are converted to float32; the checks
    themselves are made in float64, so large integer coordinates are compared exactly).

    Raises:
        TypeError: not a tensor.
        ValueError: last dimension not 4, inf values, partly-NaN rows, ``x2 < x1`` or ``y2 < y1``.

    Shape:
        ``(..., 4) -> (..., 4)``
    """
    checked_boxes(boxes, name)
    return boxes if boxes.is_floating_point() else boxes.float()


def valid_frames(gt_boxes: Tensor) -> Tensor:
    """True where a ground-truth box exists (the row is not NaN). ``(..., 4) -> (...)`` bool.

    Shape:
        ``(..., 4) -> (...)`` bool
    """
    return ~torch.isnan(check_boxes(gt_boxes, "gt_boxes")).any(-1)


def _same_shape(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b}: expected the same shape (paired per frame), got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )


def box_iou(pred_boxes: Tensor, gt_boxes: Tensor) -> Tensor:
    """Intersection over union of paired boxes, frame by frame.

    ``IoU = |p ∩ g| / |p ∪ g|``. Where the GT row is NaN the IoU is NaN (excluded from every
    metric); where only the prediction is NaN (no box) it is 0. Two zero-area boxes have IoU 1 when
    identical, else 0.

    Computed in float64 (float16 areas overflow above 65504, float32 loses integers above 2**24);
    returned in the inputs' promoted dtype, float32 for integer or half-precision boxes (an IoU that
    would round to 1 or 0 but is not takes the nearest float32 inside: 1.0 means identical boxes).

    Args:
        pred_boxes: ``(..., 4)`` predicted boxes, e.g. ``(N, T, 4)``.
        gt_boxes: ``(..., 4)`` ground truth of the same shape.

    Returns:
        ``(...)`` IoU in ``[0, 1]`` (NaN where there is no GT), on ``gt_boxes``' device.

    Shape:
        ``(N, T, 4), (N, T, 4) -> (N, T)``

    Example:
        >>> box_iou(torch.tensor([[0., 0., 2., 2.]]), torch.tensor([[1., 0., 3., 2.]]))
        tensor([0.3333])
    """
    pred = checked_boxes(pred_boxes, "pred_boxes")
    gt = checked_boxes(gt_boxes, "gt_boxes")
    _same_shape(pred, gt, "pred_boxes", "gt_boxes")
    out_dtype = compute_dtype(pred_boxes.dtype, gt_boxes.dtype)
    pred, dtype = pred.to(gt.device), torch.float64
    has_gt = ~torch.isnan(gt).any(-1)
    has_pred = ~torch.isnan(pred).any(-1)
    p, g = torch.nan_to_num(pred), torch.nan_to_num(gt)
    inter, union = inter_union(p, g)
    identical = (p == g).all(-1)
    iou = torch.where(union > 0, inter / torch.where(union > 0, union, torch.ones_like(union)), identical.to(dtype))
    iou = iou.clamp(0, 1)
    iou = torch.where(has_gt, torch.where(has_pred, iou, torch.zeros_like(iou)), torch.full_like(iou, float("nan")))
    out = iou.to(out_dtype)  # rounded to nearest, but never to a perfect 1 or 0 that the float64 IoU is not:
    out = torch.where((out == 1) & (iou < 1), torch.nextafter(out.new_ones(()), out.new_zeros(())), out)
    return torch.where((out == 0) & (iou > 0), torch.nextafter(out.new_zeros(()), out.new_ones(())), out)


def pointing_game(maps: Tensor, gt_boxes: Tensor) -> Tensor:
    """Hit point: is each frame's maximum inside its ground-truth box?

    The argmax pixel ``(x, y)`` of frame ``t`` (first in raster order on ties) is a hit when
    ``x1 <= x < x2`` and ``y1 <= y < y2``. Frames without GT (NaN row) and frames whose map is
    constant (no maximum to point with, e.g. all zero) are never hits.

    Args:
        maps: ``(N, 1, T, H, W)`` or ``(N, T, H, W)`` attention maps (finite).
        gt_boxes: ``(N, T, 4)`` ground truth in the maps' pixel coordinates, NaN rows for none.

    Returns:
        ``(N, T)`` bool. Divide ``hits.sum()`` by ``valid_frames(gt_boxes).sum()`` for the
        accuracy (or use :func:`hit_rate`).

    Shape:
        ``(N, [1,] T, H, W), (N, T, 4) -> (N, T)``
    """
    frames = as_frames(maps)
    gt = checked_boxes(gt_boxes, "gt_boxes")  # pixel indices compared exactly, also for float16 boxes
    if gt.dim() != 3 or gt.shape[:2] != frames.shape[:2]:
        raise ValueError(
            f"gt_boxes: expected shape (N, T, 4) = {tuple(frames.shape[:2]) + (4,)} to match maps "
            f"{tuple(frames.shape)}, got {tuple(gt.shape)}"
        )
    n, t, h, w = frames.shape
    flat = frames.reshape(n, t, h * w)
    idx = flat.argmax(-1)
    informative = flat.amax(-1) > flat.amin(-1)
    x = (idx % w).to(gt.device, gt.dtype)
    y = torch.div(idx, w, rounding_mode="floor").to(gt.device, gt.dtype)
    g = gt
    inside = (g[..., 0] <= x) & (x < g[..., 2]) & (g[..., 1] <= y) & (y < g[..., 3])
    return inside & ~torch.isnan(g).any(-1) & informative.to(gt.device)


def _correct_mask(correct: Optional[Tensor], n: int, device) -> Optional[Tensor]:
    if correct is None:
        return None
    correct = torch.as_tensor(correct)
    if correct.dim() != 1 or correct.shape[0] != n:
        raise ValueError(f"correct: expected a (N,) = ({n},) bool tensor, got shape {tuple(correct.shape)}")
    return _check_hits(correct, "correct").to(device)


def hit_rate(hits: Tensor, gt_boxes: Tensor, correct: Optional[Tensor] = None) -> float:
    """``#hits / #GT frames`` (pointing-game accuracy); with ``correct`` (N,) it is Acc2.

    Args:
        hits: ``(N, T)`` bool from :func:`pointing_game`.
        gt_boxes: ``(N, T, 4)`` ground truth (NaN rows are excluded from the denominator).
        correct: optional ``(N,)`` bool, True where the clip's predicted class equals its label;
            hits of wrong clips count as misses.

    Returns:
        the accuracy as a float; NaN when no frame has a GT box (there is nothing to score).

    Shape:
        ``hits`` ``(N, T)``, ``gt_boxes`` ``(N, T, 4)``, ``correct`` ``(N,)`` -> a float
    """
    valid = valid_frames(gt_boxes)
    if not isinstance(hits, Tensor) or hits.shape != valid.shape:
        shape = tuple(hits.shape) if isinstance(hits, Tensor) else type(hits).__name__
        raise ValueError(f"hits: expected a bool tensor of shape {tuple(valid.shape)}, got {shape}")
    _check_hits(hits)
    good = hits.bool().to(valid.device) & valid
    mask = _correct_mask(correct, valid.shape[0], valid.device)
    if mask is not None:
        good = good & mask.reshape(-1, *([1] * (good.dim() - 1)))
    total = int(valid.sum())
    return float(good.sum()) / total if total else float("nan")


def iou_accuracy(
    ious: Tensor,
    thresholds: Sequence[float] = DEFAULT_IOU_THRESHOLDS,
    correct: Optional[Tensor] = None,
) -> Dict[float, float]:
    """Fraction of GT frames whose IoU reaches each threshold (``tau = 0`` means ``IoU > 0``).

    Args:
        ious: ``(N, T)`` from :func:`box_iou` (NaN = no GT, excluded).
        thresholds: IoU thresholds in ``[0, 1]`` (or one number).
        correct: optional ``(N,)`` bool (or 0/1); frames of wrongly classified clips count as misses (Acc2).

    Returns:
        ``{tau: accuracy}``; accuracies are NaN when no frame has GT.

    Shape:
        ``ious`` ``(...)`` (NaN = no ground truth) -> ``{tau: float}``
    """
    _check_ious(ious)
    thresholds = (thresholds,) if isinstance(thresholds, numbers.Real) else thresholds  # one: the same dict
    if isinstance(thresholds, (str, bytes, Tensor)) or not isinstance(thresholds, Iterable):
        raise TypeError(f"thresholds: expected a number or numbers in [0, 1], got {type(thresholds).__name__}")
    thresholds = tuple(thresholds)
    for tau in thresholds:
        if isinstance(tau, bool) or not isinstance(tau, numbers.Real) or not 0.0 <= tau <= 1.0:
            raise ValueError(f"thresholds: expected numbers in [0, 1], got {tau!r}")
    valid = ~torch.isnan(ious)
    mask = _correct_mask(correct, ious.shape[0], ious.device) if ious.dim() else None
    total = int(valid.sum())
    out = {}
    for tau in thresholds:
        ok = (ious > 0) if tau == 0 else (ious >= tau)
        ok = ok & valid
        if mask is not None:
            ok = ok & mask.reshape(-1, *([1] * (ok.dim() - 1)))
        out[float(tau)] = float(ok.sum()) / total if total else float("nan")
    return out


def _check_ious(ious) -> None:
    if not isinstance(ious, Tensor) or ious.dtype == torch.bool or ious.is_complex():
        raise TypeError(f"ious: expected a real torch.Tensor, got {getattr(ious, 'dtype', type(ious).__name__)}")
    known = ious[~torch.isnan(ious)]
    if known.numel() and not (bool((known >= 0).all()) and bool((known <= 1).all())):
        raise ValueError(f"ious: expected IoUs in [0, 1] (NaN where there is no ground truth), got values from "
                         f"{float(known.min())} to {float(known.max())}")


def _check_hits(hits: Tensor, name: str = "hits") -> Tensor:
    """``hits`` as bool: a bool tensor, or real values all exactly 0 or 1 (not probabilities, not NaN)."""
    if hits.dtype != torch.bool and (hits.is_complex() or not bool(((hits == 0) | (hits == 1)).all())):
        other = hits[~((hits == 0) | (hits == 1))].flatten()[0].item()
        raise ValueError(f"{name}: expected a bool tensor (or 0/1), got dtype {hits.dtype} with other values, e.g. "
                         f"{other!r} (threshold probabilities yourself, e.g. probs > 0.5)")
    return hits.bool()


def _check_segments(seg: Tensor, name: str) -> Tensor:
    if not isinstance(seg, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of shape (S, 2), got {type(seg).__name__}")
    if seg.dim() == 1 and seg.shape[0] == 2:
        seg = seg[None]
    if seg.dim() != 2 or seg.shape[1] != 2:
        raise ValueError(f"{name}: expected shape (S, 2) as [start, end), got {tuple(seg.shape)}")
    seg = seg.to(torch.float64)
    if not bool(torch.isfinite(seg).all()):
        raise ValueError(f"{name}: expected finite segment bounds")
    if bool((seg[:, 1] < seg[:, 0]).any()):
        raise ValueError(f"{name}: expected start <= end in every [start, end) segment")
    return seg


def temporal_iou(pred_segments: Tensor, gt_segments: Tensor) -> Tensor:
    """Pairwise temporal IoU of segments ``[start, end)``: ``(P, 2), (G, 2) -> (P, G)``.

    ``tIoU = max(0, min(e1, e2) - max(s1, s2)) / (max(e1, e2) - min(s1, s2))``; two empty,
    identical segments have tIoU 1, other empty unions 0.

    Shape:
        ``(P, 2), (G, 2) -> (P, G)`` (float64)
    """
    a = _check_segments(pred_segments, "pred_segments")
    b = _check_segments(gt_segments, "gt_segments").to(a.device)
    inter = (torch.minimum(a[:, None, 1], b[None, :, 1]) - torch.maximum(a[:, None, 0], b[None, :, 0])).clamp(min=0)
    union = (a[:, None, 1] - a[:, None, 0]) + (b[None, :, 1] - b[None, :, 0]) - inter
    same = (a[:, None, :] == b[None, :, :]).all(-1).to(a.dtype)
    return torch.where(union > 0, inter / torch.where(union > 0, union, torch.ones_like(union)), same)


def segment_set_iou(pred_segments: Tensor, gt_segments: Tensor, num_frames: int) -> float:
    """IoU of the frame sets covered by two lists of ``[start, end)`` segments of a ``T``-frame clip.

    Returns NaN when both sets are empty.

    Shape:
        ``(S, 2)``, ``(G, 2)`` -> a float
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 0:
        raise ValueError(f"num_frames: expected an int >= 0, got {num_frames!r}")
    masks = []
    for seg, name in ((pred_segments, "pred_segments"), (gt_segments, "gt_segments")):
        seg = _check_segments(seg, name).long()
        m = torch.zeros(num_frames, dtype=torch.bool)
        for s, e in seg.tolist():
            m[max(s, 0):max(min(e, num_frames), 0)] = True
        masks.append(m)
    union = int((masks[0] | masks[1]).sum())
    return float((masks[0] & masks[1]).sum()) / union if union else float("nan")


def gt_segments(gt_boxes: Tensor) -> Tensor:
    """Ground-truth temporal segments: runs of frames that have a box. ``(T, 4) -> (S, 2)``.

    Shape:
        ``(T, 4)`` -> ``(S, 2)``
    """
    valid = valid_frames(gt_boxes)
    if valid.dim() != 1:
        raise ValueError(f"gt_boxes: expected one clip (T, 4), got {tuple(gt_boxes.shape)}")
    return mask_to_segments(valid)


class LocalizationMeter:
    """Accumulates hit point, IoU accuracy, mean IoU and Acc2 over batches of clips.

    Example:
        >>> meter = LocalizationMeter()
        >>> meter.update(maps, gt_boxes, pred_boxes, predicted=pred, labels=y)  # per batch
        >>> meter.compute()["iou@0.5"]

    ``compute()`` keys: ``frames`` (GT frames), ``clips``, ``class_acc``, ``pointing``,
    ``mean_iou``, ``iou@tau`` per threshold, and, when labels were given, ``acc2_pointing`` and
    ``acc2@tau``.
    """

    def __init__(self, iou_thresholds: Iterable[float] = DEFAULT_IOU_THRESHOLDS) -> None:
        one = isinstance(iou_thresholds, numbers.Real)  # one threshold
        self.iou_thresholds = tuple(float(t) for t in ((iou_thresholds,) if one else iou_thresholds))
        iou_accuracy(torch.zeros(0), self.iou_thresholds)  # validates the thresholds
        self._hits, self._ious, self._correct = [], [], []
        self._has_labels = None

    def update(
        self,
        maps: Tensor,
        gt_boxes: Tensor,
        pred_boxes: Tensor,
        *,
        predicted: Optional[Tensor] = None,
        labels: Optional[Tensor] = None,
    ) -> None:
        """Add a batch: maps ``(N, [1,] T, H, W)``, boxes ``(N, T, 4)``, classes ``(N,)``.

        Shape:
            ``maps`` ``(N, [1,] T, H, W)``, boxes ``(N, T, 4)``, ``predicted``/``labels`` ``(N,)``
        """
        if (predicted is None) != (labels is None):
            raise ValueError("predicted and labels: give both (for Acc2) or neither")
        correct = None
        if predicted is not None:
            predicted = torch.as_tensor(predicted).reshape(-1).cpu()
            labels = torch.as_tensor(labels).reshape(-1).cpu()
            if predicted.shape != labels.shape:
                raise ValueError(
                    f"predicted and labels: expected the same shape (N,), got "
                    f"{tuple(predicted.shape)} and {tuple(labels.shape)}"
                )
            correct = predicted == labels
        self.add(pointing_game(maps, gt_boxes), box_iou(pred_boxes, gt_boxes), correct)

    def add(self, hits: Tensor, ious: Tensor, correct: Optional[Tensor] = None) -> None:
        """Add precomputed ``hits`` (N, T) bool, ``ious`` (N, T) (NaN = no GT), ``correct`` (N,) bool.

        Shape:
            ``hits``, ``ious`` ``(N, T)``, ``correct`` ``(N,)``
        """
        if not isinstance(hits, Tensor) or not isinstance(ious, Tensor) or hits.shape != ious.shape or hits.dim() != 2:
            raise ValueError("hits and ious: expected two (N, T) tensors of the same shape")
        _check_ious(ious), _check_hits(hits)
        has = correct is not None
        if self._has_labels is not None and has != self._has_labels:
            raise ValueError("predicted/labels: give them for every batch or for none")
        if has:
            self._correct.append(_correct_mask(torch.as_tensor(correct).reshape(-1), hits.shape[0], "cpu"))
        self._has_labels = has
        self._hits.append(hits.bool().cpu())
        self._ious.append(ious.cpu().double())

    def compute(self) -> Dict[str, float]:
        """The metrics over everything added so far (NaN where no frame has GT)."""
        ious = torch.cat([i.flatten() for i in self._ious]) if self._ious else torch.zeros(0)
        hits = torch.cat([h.flatten() for h in self._hits]) if self._hits else torch.zeros(0, dtype=torch.bool)
        valid = ~torch.isnan(ious)
        total = int(valid.sum())
        out: Dict[str, float] = {"frames": total, "clips": sum(h.shape[0] for h in self._hits)}
        out["pointing"] = float((hits & valid).sum()) / total if total else float("nan")
        out["mean_iou"] = float(ious[valid].mean()) if total else float("nan")
        for tau, acc in iou_accuracy(ious, self.iou_thresholds).items():
            out[f"iou@{tau:g}"] = acc
        if self._has_labels:
            correct = torch.cat([c[:, None].expand_as(h).flatten() for c, h in zip(self._correct, self._hits)])
            out["class_acc"] = float(torch.cat(self._correct).double().mean())
            out["acc2_pointing"] = float((hits & valid & correct).sum()) / total if total else float("nan")
            for tau, acc in iou_accuracy(torch.where(correct, ious, torch.where(valid, 0.0, ious)), self.iou_thresholds).items():
                out[f"acc2@{tau:g}"] = acc
        return out
