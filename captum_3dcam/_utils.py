"""Private helpers shared by several modules: one copy of each.

Lives here: normalizations that never divide by zero. Grows with the small helpers that more than
one module needs (mask -> box, progress bars, optional imports, layer-name resolution). Does not
live here: anything with a public contract of its own (that goes in its concept's module).
"""
from typing import Sequence

import torch
from torch import Tensor

__all__ = ["inverse_max", "normalize_max", "normalize_minmax"]


def inverse_max(x: Tensor, dims: Sequence[int] = (2, 3, 4)) -> Tensor:
    """``1 / max`` over ``dims`` where the maximum is positive, else 0 (never inf, never NaN).

    Shape:
        - x: any, e.g. :math:`(N, C, T, H, W)` with ``dims=(2, 3, 4)``
        - output: ``x``'s shape with ``dims`` kept as size 1
    """
    peak = x.amax(dim=tuple(dims), keepdim=True)
    positive = peak > 0
    return torch.where(positive, 1.0 / torch.where(positive, peak, torch.ones_like(peak)), 0.0)


def normalize_max(x: Tensor, dims: Sequence[int] = (2, 3, 4)) -> Tensor:
    r"""``x / max x`` over ``dims``; a slice with no positive value becomes 0.

    Shape:
        - x: any; output: same as ``x``
    """
    return x * inverse_max(x, dims)


def normalize_minmax(x: Tensor, dims: Sequence[int] = (2, 3, 4)) -> Tensor:
    r"""``(x - min) / (max - min)`` over ``dims``; a constant slice becomes 0 (never NaN).

    Shape:
        - x: any; output: same as ``x``, values in ``[0, 1]``
    """
    dims = tuple(dims)
    low = x.amin(dim=dims, keepdim=True)
    span = x.amax(dim=dims, keepdim=True) - low
    positive = span > 0
    scale = torch.where(positive, 1.0 / torch.where(positive, span, torch.ones_like(span)), 0.0)
    return (x - low) * scale
