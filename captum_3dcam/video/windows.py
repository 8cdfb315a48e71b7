"""Long videos through a clip model: sliding windows and stitching per-frame results back.

Lives here: :func:`sliding_windows` (the ``[start, stop)`` windows), :func:`stitch_windows`
(per-window results averaged onto the video's frames), :func:`apply_sliding_windows` (both
around any per-window function) and :func:`attribute_windows` (3DCam of every window, batched, for
one class: what ``explain`` and ``explain-dataset`` share), :class:`WindowCam` (the batched pass
itself) and :func:`add_window` / :func:`window_mean` (the sums the stitching keeps, also used by
:mod:`captum_3dcam.video.streaming`). Does not live here: decoding
(:mod:`captum_3dcam.video.io`), preprocessing (:mod:`captum_3dcam.video.preprocess`) and the attribution
itself (:mod:`captum_3dcam.attr.attribution`).
"""
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from .._utils import progress_bar
from .._utils import autocast
from ..attr.attribution import Counterfactual3DCam, GlobalLocal3DCam
from ..attr.padding import input_margins, pad_time

__all__ = ["sliding_windows", "stitch_windows", "apply_sliding_windows", "attribute_windows", "window_taper"]


def sliding_windows(num_frames: int, clip_len: int, stride: int) -> List[Tuple[int, int]]:
    """Windows ``[start, stop)`` of ``clip_len`` frames every ``stride`` frames, covering every frame.

    Starts are ``0, stride, 2 * stride, ...``; when they do not reach the end, one last window is
    aligned to the end (``[num_frames - clip_len, num_frames)``). Every frame lies in at least one
    window, which needs ``stride <= clip_len``: a larger stride would skip the frames between
    windows (their maps would be NaN after :func:`stitch_windows`), so it is refused (unless one
    window holds the whole video, ``num_frames == clip_len``).

    Raises:
        ValueError: a count that is not a positive int, ``num_frames < clip_len``, or
            ``stride > clip_len``.

    Example:
        >>> sliding_windows(10, 4, 4)
        [(0, 4), (4, 8), (6, 10)]

    Shape:
        ``num_frames`` -> ``W`` pairs ``(start, stop)``, ``stop - start = clip_len``
    """
    for name, value in (("num_frames", num_frames), ("clip_len", clip_len), ("stride", stride)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    if num_frames < clip_len:
        raise ValueError(f"num_frames: the video has {num_frames} frames, fewer than clip_len={clip_len}")
    if stride > clip_len and num_frames > clip_len:
        raise ValueError(f"stride: {stride} is larger than clip_len={clip_len}, so frames {clip_len}..{stride - 1} "
                         f"would lie in no window; use a stride of at most {clip_len} (every frame is explained)")
    windows = [(s, s + clip_len) for s in range(0, num_frames - clip_len + 1, stride)]
    if windows[-1][1] < num_frames:
        windows.append((num_frames - clip_len, num_frames))
    return windows


def stitch_windows(
    per_window: torch.Tensor, windows: Sequence[Tuple[int, int]], num_frames: int, *, time_dim: int = -3,
    taper: bool = True,
) -> torch.Tensor:
    """Average per-window results back onto the whole video's frames.

    Frame ``f``'s value is the mean over the windows that contain it, weighted by its position in
    each window (:func:`window_taper`; ``taper=False``: the plain mean). NaN entries are ignored;
    NaN where every window gives NaN, e.g. boxes with no detection.

    Args:
        per_window: ``(W, ..., clip_len, ...)``, one result per window; ``time_dim`` indexes the
            clip's frames (default ``-3``: maps ``(W, 1, clip_len, H, W)``; use ``1`` for
            boxes ``(W, clip_len, 4)``).
        windows: the ``W`` ``(start, stop)`` pairs from :func:`sliding_windows`; together they
            must cover every frame ``0 .. num_frames - 1`` (a frame in no window is refused, not
            returned as NaN).
        num_frames: the video's length.

    Shape:
        ``(W, ..., clip_len, ...) -> (..., num_frames, ...)`` (the window dimension removed).
    """
    if not isinstance(per_window, torch.Tensor):
        raise TypeError(f"per_window: expected a torch.Tensor, got {type(per_window).__name__}")
    if per_window.shape[0] != len(windows):
        raise ValueError(f"per_window: expected {len(windows)} windows (dim 0), got {per_window.shape[0]}")
    dim = time_dim % per_window.dim()
    if dim == 0:
        raise ValueError("time_dim: must not be the window dimension 0")
    clip_len = per_window.shape[dim]
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"num_frames: expected a positive int, got {num_frames!r}")
    covered = torch.zeros(num_frames, dtype=torch.bool)
    for start, stop in windows:
        if stop - start != clip_len or start < 0 or stop > num_frames:
            raise ValueError(f"windows: ({start}, {stop}) does not fit clip_len={clip_len} in {num_frames} frames")
        covered[start:stop] = True
    if not bool(covered.all()):
        gaps = torch.nonzero(~covered).flatten().tolist()
        raise ValueError(f"windows: {len(gaps)} of {num_frames} frames lie in no window (the first: frame "
                         f"{gaps[0]}); windows must cover every frame (see sliding_windows)")
    values = per_window if per_window.is_floating_point() else per_window.float()
    out_shape = list(values.shape[1:])
    out_shape[dim - 1] = num_frames
    total = values.new_zeros(out_shape)
    count = values.new_zeros(out_shape)
    for i, (start, stop) in enumerate(windows):
        value = values[i]
        add_window(total.narrow(dim - 1, start, clip_len), count.narrow(dim - 1, start, clip_len), value,
                   taper_for(value, dim - 1) if taper else None)
    return window_mean(total, count)


def window_taper(clip_len: int) -> torch.Tensor:
    r"""Stitching weights ``(clip_len,)`` of a window's frames: a triangle, highest in the middle.

    .. math:: w_t = \min(t + 1, L - t) / \lceil L / 2 \rceil

    A frame near one window's edge is also near the middle of the next (stride ``L / 2``), so the
    stitched map comes mostly from the window that saw the frame with context on both sides:
    a 3D CNN's padding at a window's ends (TF "SAME" pads more at the end) makes the last frames'
    maps unreliable. Every weight is positive, so a frame that only one window holds (the video's
    first and last) keeps that window's value.
    """
    t = torch.arange(int(clip_len), dtype=torch.float32)
    return torch.minimum(t + 1, clip_len - t) / float(-(-int(clip_len) // 2))


def add_window(total: torch.Tensor, count: torch.Tensor, value: torch.Tensor,
               weight: Optional[torch.Tensor] = None) -> None:
    """Add one window's result, times ``weight`` (broadcast to ``value``), into running ``total`` and
    ``count`` slices (NaN entries skipped), in place."""
    valid = ~torch.isnan(value)
    w = valid.to(total.dtype) if weight is None else valid.to(total.dtype) * weight.to(total)
    total.add_(torch.where(valid, value, torch.zeros_like(value)) * (1 if weight is None else w))
    count.add_(w)


def taper_for(value: torch.Tensor, dim: int) -> torch.Tensor:
    """:func:`window_taper` of ``value``'s length on ``dim``, shaped to broadcast against ``value``."""
    shape = [1] * value.dim()
    shape[dim] = value.shape[dim]
    return window_taper(value.shape[dim]).to(value.device).view(shape)


def window_mean(total: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """``total / count`` of :func:`add_window`'s sums; NaN where no window gave a value."""
    safe = torch.where(count > 0, count, torch.ones_like(count))
    return torch.where(count > 0, total / safe, torch.full_like(total, float("nan")))


def apply_sliding_windows(
    fn: Callable[[torch.Tensor], torch.Tensor],
    clip: torch.Tensor,
    clip_len: int,
    stride: int,
    *,
    time_dim: int = -3,
    progress: bool = True,
) -> torch.Tensor:
    """Run ``fn`` on every window of a long clip and stitch the per-frame results.

    Args:
        fn: maps a window ``(1, C, clip_len, h, w)`` to a per-frame result with the window's frames
            on ``time_dim`` and a leading batch dimension of 1, e.g.
            ``lambda x: cam.attribute(x)`` -> ``(1, 1, clip_len, h, w)``.
        clip: the whole video ``(1, C, T, h, w)`` (e.g. from :func:`preprocess_i3d`).
        clip_len, stride: see :func:`sliding_windows`.
        time_dim: where ``fn``'s output holds time (default ``-3``).
        progress: show a progress bar (see :func:`captum_3dcam._utils.progress_bar`).

    Returns:
        ``fn``'s output stitched to ``T`` frames, e.g. ``(1, 1, T, h, w)``.

    Shape:
        ``clip`` ``(1, C, T, h, w)`` -> ``fn``'s output with ``T`` frames, e.g. ``(1, 1, T, h, w)``
    """
    if not isinstance(clip, torch.Tensor) or clip.dim() != 5 or clip.shape[0] != 1:
        got = tuple(clip.shape) if isinstance(clip, torch.Tensor) else type(clip).__name__
        raise ValueError(f"clip: expected a tensor (1, C, T, h, w), got {got}")
    num_frames = clip.shape[2]
    windows = sliding_windows(num_frames, clip_len, stride)
    results = [fn(clip[:, :, start:stop]) for start, stop in progress_bar(windows, "windows", unit="clip",
                                                                           enabled=progress)]
    for result in results:
        if not isinstance(result, torch.Tensor) or result.dim() < 2 or result.shape[0] != 1:
            got = tuple(result.shape) if isinstance(result, torch.Tensor) else type(result).__name__
            raise ValueError(f"fn: expected a tensor with a leading batch dimension of 1 per window, got {got}")
    stacked = torch.cat(results, dim=0)
    return stitch_windows(stacked, windows, num_frames, time_dim=time_dim).unsqueeze(0)


class _OutputCapture:
    """A forward hook on the model that keeps its last output (the logits of the attribution pass)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.output = None
        self._handle = model.register_forward_hook(self._hook)

    def _hook(self, _module, _inputs, output):
        self.output = output.detach()

    def close(self) -> None:
        self._handle.remove()


class _Inputs(torch.nn.Module):
    """``forward(*inputs)`` of a one-clip model made of input pathways (``model.forward_inputs``):
    what the attribution differentiates, so each pathway's layers map to their own input."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs):
        return self.model.forward_inputs(*inputs)


class WindowCam:
    """3DCam of batches of windows with the logits of the same pass (what every windowed explainer shares).

    ``explain(x, target)``: ``x`` ``(B, C, clip_len, h, w)`` -> ``(maps (B, 1, clip_len, h, w), logits
    (B, K))``, float32, under ``torch.autocast`` for ``dtype="bfloat16"`` (the logits of the clip the
    model saw: with ``temporal_margin``, the padded window). ``logits(x)``: a forward pass only
    (``no_grad``, the same autocast, the same padding), ``(B, K)`` float32. Call :meth:`close` when done.

    A model fed one clip but made of several input pathways (SlowFast: a slow and a fast clip packed
    from the window) says so with two methods, ``split_inputs(clip) -> (x_1, ..., x_P)`` and
    ``forward_inputs(x_1, ..., x_P) -> logits`` (``forward(clip)`` being the two in turn). The
    window is then explained the Captum way, one map per pathway (each layer on the pathway it
    belongs to, :mod:`captum_3dcam.attr.layer_inputs`), all on the window's grid, and ``maps`` is
    ``(B, 1 + P, clip_len, h, w)``: channel 0 their sum (the map of all layers), then one per pathway.
    """

    def __init__(self, model, layers, *, counterfactual: bool = False, dtype: str = "float32",
                 **attribute_kwargs) -> None:
        self.model, self.dtype, self.kwargs = model, dtype, attribute_kwargs
        self.split = getattr(model, "split_inputs", None) if hasattr(model, "forward_inputs") else None
        forward = model if self.split is None else _Inputs(model)
        self.cam = (Counterfactual3DCam if counterfactual else GlobalLocal3DCam)(forward, layers)
        self.capture = _OutputCapture(forward)

    def explain(self, x: torch.Tensor, target):
        with autocast(x.device, self.dtype):
            if self.split is None:
                out = self.cam.attribute(x, target=target, **self.kwargs).float()
            else:
                parts = self.cam.attribute(tuple(self.split(x)), target=target, output_size=tuple(x.shape[2:]),
                                           **self.kwargs)
                out = torch.cat([sum(parts)] + list(parts), dim=1).float()
        return out, self.capture.output.float()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        # the clip the attribution pass shows the model: with a temporal margin, the padded window
        # (of each pathway, padded as the attribution pads its inputs)
        margin = self.kwargs.get("temporal_margin", 0)
        with torch.no_grad(), autocast(x.device, self.dtype):
            if self.split is None:
                return self.model(pad_time(x, margin)).float()
            parts = self.split(x)
            margins = input_margins(margin, [p.shape[2] for p in parts])
            return self.model.forward_inputs(*(pad_time(p, m) for p, m in zip(parts, margins))).float()

    def close(self) -> None:
        self.capture.close()


def attribute_windows(model, layers, clip: torch.Tensor, windows: Sequence[Tuple[int, int]], *,
                      target: Optional[int] = None, batch_size: int = 1, counterfactual: bool = False,
                      dtype: str = "float32", progress: bool = False, **attribute_kwargs):
    """3DCam of every window of ``clip``, with the window logits from the same pass.

    ``batch_size`` windows go through the model in one forward and one backward pass (stacked
    along N). With ``target=None`` each window first explains its own top class; windows whose top
    class differs from the video's (the mean of the windows' probabilities) are explained again
    for the video's class, so the stitched map is the map of one class. ``dtype="bfloat16"`` runs
    the passes under ``torch.autocast``; maps and probabilities come back in float32.
    ``attribute_kwargs`` go to :meth:`GlobalLocal3DCam.attribute` (``layer_rule``, ``aggregation``,
    ``normalize_layers``: a preset's ``"attribute"`` entry). For a video too long to hold, see
    :func:`captum_3dcam.video.streaming.explain_stream` (the same maps, a window buffer at a time).

    Returns:
        ``(maps, probs, video_class)``: maps ``(W, 1, clip_len, h, w)`` (one per window), the
        video's class probabilities ``(K,)`` and the class explained.

    Shape:
        ``clip`` ``(1, C, T, h, w)``, ``W`` windows -> maps ``(W, 1, clip_len, h, w)``, probs ``(K,)``
    """
    unit = "batch" if batch_size > 1 else "window"

    def batches(indices):
        return [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]

    def run(chunk, cls):
        return cam.explain(torch.cat([clip[:, :, windows[i][0] : windows[i][1]] for i in chunk]), cls)

    maps, logits = [None] * len(windows), [None] * len(windows)
    cam = WindowCam(model, layers, counterfactual=counterfactual, dtype=dtype, **attribute_kwargs)
    try:
        for chunk in progress_bar(batches(list(range(len(windows)))), "3DCam windows", unit=unit, enabled=progress):
            out, lg = run(chunk, target)
            for k, i in enumerate(chunk):
                maps[i], logits[i] = out[k : k + 1], lg[k : k + 1]
        probs = torch.cat(logits).softmax(-1).mean(0)
        video_class = int(probs.argmax()) if target is None else int(target)
        redo = [i for i, lg in enumerate(logits) if int(lg.argmax()) != video_class]
        for chunk in progress_bar(batches(redo), "re-explain windows", unit=unit, enabled=progress and bool(redo)):
            out, _ = run(chunk, video_class)
            for k, i in enumerate(chunk):
                maps[i] = out[k : k + 1]
    finally:
        cam.close()
    return torch.cat(maps), probs, video_class
