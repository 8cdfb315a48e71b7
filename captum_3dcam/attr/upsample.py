"""Trilinear upsampling of layer maps and per-sample max normalization.

Both are used by every layer rule of :mod:`captum_3dcam.attr.attribution` and are public so that
users can bring their own maps to the input's resolution the same way.
"""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .._utils import inverse_max, normalize_max

__all__ = ["upsample_to", "normalize_max", "inverse_max", "check_size"]


def check_size(size, name: str = "size") -> Tuple[int, int, int]:
    """Validate a ``(T, H, W)`` size: three positive integers.

    Raises:
        TypeError: ``size`` is not a sequence of three integers.
        ValueError: an entry is not positive.
    """
    if isinstance(size, torch.Size):
        size = tuple(size)
    if not isinstance(size, Sequence) or isinstance(size, (str, bytes)) or len(size) != 3:
        raise TypeError(f"{name}: expected a sequence of 3 ints (T, H, W), got {size!r}")
    out = []
    for s in size:
        if isinstance(s, bool) or not isinstance(s, int):
            if isinstance(s, Tensor) and s.numel() == 1 and not s.is_floating_point():
                s = int(s.item())
            else:
                raise TypeError(f"{name}: expected ints (T, H, W), got {size!r}")
        if s <= 0:
            raise ValueError(f"{name}: expected positive sizes (T, H, W), got {tuple(size)}")
        out.append(int(s))
    return tuple(out)


def upsample_to(x: Tensor, size: Sequence[int]) -> Tensor:
    r"""Trilinearly interpolate a 5-D map to ``size``.

    .. math::
        \uparrow x = \mathrm{interpolate}(x, (T, H, W), \text{mode}=\text{trilinear},
        \text{align\_corners}=\text{False})

    A map already at ``size`` is returned as it is (no copy).

    Args:
        x: maps of shape ``(N, C, t, h, w)``.
        size: target ``(T, H, W)``.

    Shape:
        - x: :math:`(N, C, t, h, w)`
        - output: :math:`(N, C, T, H, W)`

    Example:
        >>> upsample_to(torch.ones(2, 1, 2, 7, 7), (16, 224, 224)).shape
        torch.Size([2, 1, 16, 224, 224])
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 5:
        raise ValueError(f"x: expected a 5-D tensor (N, C, t, h, w), got shape {tuple(x.shape)}")
    size = check_size(size)
    if tuple(x.shape[2:]) == size:
        return x
    if not x.is_floating_point():
        x = x.float()
    if x.device.type == "cpu":
        return _separable_trilinear(x, size)
    return F.interpolate(x, size=size, mode="trilinear", align_corners=False)


def _linear_matrix(n_in: int, n_out: int, dtype, device) -> Tensor:
    """``(n_in, n_out)`` matrix of 1-D linear interpolation (align_corners=False), as torch does it."""
    eye = torch.eye(n_in, dtype=dtype, device=device).unsqueeze(1)  # n_in signals of length n_in
    return F.interpolate(eye, size=n_out, mode="linear", align_corners=False).squeeze(1)


def _separable_trilinear(x: Tensor, size) -> Tensor:
    """Trilinear interpolation as three small matrix products (W, then H, then T).

    Trilinear interpolation is separable, so this equals ``F.interpolate(..., "trilinear")`` to
    rounding; on the CPU the three BLAS products are about twice as fast as the native kernel.
    """
    n, c, t, h, w = x.shape
    T, H, W = size
    y = x
    if w != W:
        y = y @ _linear_matrix(w, W, x.dtype, x.device)  # (n, c, t, h, W)
    if h != H:
        y = (y.transpose(-1, -2) @ _linear_matrix(h, H, x.dtype, x.device)).transpose(-1, -2)
    if t != T:
        flat = y.reshape(n, c, t, H * W).transpose(-1, -2)  # (n, c, H*W, t)
        y = (flat @ _linear_matrix(t, T, x.dtype, x.device)).transpose(-1, -2).reshape(n, c, T, H, W)
    return y.contiguous()
