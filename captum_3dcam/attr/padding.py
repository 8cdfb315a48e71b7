"""Temporal margins: a clip's first and last frames repeated before the attribution pass.

Lives here: :func:`pad_time`, :func:`crop_time` and :func:`input_margins` (the margins of several
inputs at different frame rates), what ``attribute(..., temporal_margin=m)``
uses. Does not live here: the attribution (:mod:`captum_3dcam.attr.attribution`) or the stitching of
windows (:mod:`captum_3dcam.video.windows`).

Why: 3D CNNs pad in time. With TF "SAME" padding (I3D) a stride-2 layer pads more at a clip's end
than at its start, and the deep layers' last time steps see mostly padding; their gradients then
light up whole frames at the end of every clip (RESULTS.md, block ``window-edges``). With ``m``
replicated frames on each side, the clip's own frames sit away from the padding; the maps of the
padded clip, cut back to its ``T`` frames, are the clip's.
"""
from typing import List, Sequence

import torch
from torch import Tensor

__all__ = ["pad_time", "crop_time", "check_margin", "input_margins"]


def check_margin(margin, name: str = "temporal_margin") -> int:
    """``margin`` if it is a non-negative int, else a ValueError naming ``name``."""
    if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
        raise ValueError(f"{name}: expected a non-negative int (frames), got {margin!r}")
    return margin


def pad_time(clip: Tensor, margin: int) -> Tensor:
    """``clip`` with its first and last frame repeated ``margin`` times.

    Shape:
        ``(N, C, T, H, W) -> (N, C, T + 2 margin, H, W)``

    Example:
        >>> pad_time(torch.arange(3.0).view(1, 1, 3, 1, 1), 2).flatten().tolist()
        [0.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0]
    """
    check_margin(margin)
    if margin == 0:
        return clip
    first = clip[:, :, :1].expand(-1, -1, margin, -1, -1)
    last = clip[:, :, -1:].expand(-1, -1, margin, -1, -1)
    return torch.cat([first, clip, last], dim=2)


def crop_time(maps: Tensor, margin: int, frames: int) -> Tensor:
    """Frames ``[margin, margin + frames)`` of maps ``(N, 1, T + 2 margin, H, W)``."""
    return maps if margin == 0 else maps[:, :, margin:margin + frames]


def input_margins(margin: int, frames: Sequence[int]) -> List[int]:
    r"""The margin of each of several inputs of ``frames = (T_1, ..., T_I)`` frames, same time span.

    Input ``i`` is padded by :math:`m' T_i / T_{max}` frames, with :math:`m' \ge m` the smallest
    margin every input holds in whole frames (SlowFast, slow every 4th frame: ``m = 3`` becomes 4
    fast frames and 1 slow frame), so the inputs stay aligned in time. One input: ``[m]``.

    Example:
        >>> input_margins(3, [8, 32])
        [1, 4]
    """
    check_margin(margin)
    longest = max(frames)
    for m in range(margin, margin + longest + 1):  # m = a multiple of T_max always fits
        if all(m * t % longest == 0 for t in frames):
            return [m * t // longest for t in frames]
    raise AssertionError("unreachable: a multiple of the longest input's frames fits every input")
