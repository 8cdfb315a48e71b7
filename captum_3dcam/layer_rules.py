r"""Per-layer map rules and the aggregation of layer maps.

Every rule turns one layer's activation :math:`A_k` and gradient :math:`G_k`, both
``(N, C_k, T_k, H_k, W_k)``, into a map ``(N, 1, T, H, W)`` at the input's resolution. ``s`` is
``+1`` for the plain method and ``-1`` for the counterfactual (paper eq. 4), ``up`` is trilinear
upsampling and ``nrm`` the per-sample max normalization of :mod:`captum_3dcam.upsample`
(skipped with ``normalize=False``):

``"3dcam"`` (paper eq. 1-2, ReLU before the division by the maximum)::

    beta  = s * sum_c G_kc          alpha = sum_c A_kc
    map_k = nrm(relu(up(beta))) * nrm(relu(up(alpha)))

``"gradcam"``::

    w_kc  = s * mean_{t,h,w} G_kc
    map_k = nrm(up(relu(sum_c w_kc A_kc)))

``"layercam"``::

    map_k = nrm(up(sum_c relu(s * G_kc) * A_kc))

Aggregations over the K layer maps (paper eq. 3 for ``"sum"``)::

    "sum":  P = relu(sum_k map_k)      "mean": P = relu(sum_k map_k / K)
    "max":  P = relu(max_k map_k)
"""
from typing import Callable, Dict, List, Sequence

import torch
from torch import Tensor

from .upsample import inverse_max, upsample_to

__all__ = ["LAYER_RULES", "AGGREGATIONS", "layer_map", "aggregate"]


def _rule_3dcam(A: Tensor, G: Tensor, size, sign: float, normalize: bool) -> Tensor:
    # beta and alpha share one upsampling call: (N, 2, T_k, H_k, W_k) -> (N, 2, T, H, W)
    pair = torch.cat([sign * G.sum(dim=1, keepdim=True), A.sum(dim=1, keepdim=True)], dim=1)
    up = upsample_to(pair, size)
    up = torch.relu(up) if up is pair else up.relu_()
    beta, alpha = up[:, :1], up[:, 1:]
    cam = beta * alpha
    if normalize:  # nrm(b) * nrm(a) = b * a * (1/max b) * (1/max a): one full-size multiply
        cam.mul_(inverse_max(beta) * inverse_max(alpha))
    return cam


def _rule_gradcam(A: Tensor, G: Tensor, size, sign: float, normalize: bool) -> Tensor:
    weights = sign * G.mean(dim=(2, 3, 4), keepdim=True)
    cam = torch.relu((weights * A).sum(dim=1, keepdim=True))
    cam = upsample_to(cam, size)
    return cam * inverse_max(cam) if normalize else cam


def _rule_layercam(A: Tensor, G: Tensor, size, sign: float, normalize: bool) -> Tensor:
    cam = (torch.relu(sign * G) * A).sum(dim=1, keepdim=True)
    cam = upsample_to(cam, size)
    return cam * inverse_max(cam) if normalize else cam


LAYER_RULES: Dict[str, Callable] = {
    "3dcam": _rule_3dcam,
    "gradcam": _rule_gradcam,
    "layercam": _rule_layercam,
}


def _agg_sum(maps: List[Tensor]) -> Tensor:
    total = maps[0]
    for m in maps[1:]:
        total = total + m
    return total


AGGREGATIONS: Dict[str, Callable] = {
    "sum": _agg_sum,
    "mean": lambda maps: _agg_sum(maps) / len(maps),
    "max": lambda maps: torch.stack(maps, dim=0).amax(dim=0),
}


def layer_map(
    activation: Tensor,
    gradient: Tensor,
    size: Sequence[int],
    rule: str = "3dcam",
    counterfactual: bool = False,
    normalize: bool = True,
) -> Tensor:
    """One layer's map at resolution ``size`` by ``rule``; see the module docstring.

    Computed in float32 (half-precision activations and gradients are upcast).

    Shape:
        - activation, gradient: ``(N, C_k, T_k, H_k, W_k)``
        - output: ``(N, 1, *size)``
    """
    if rule not in LAYER_RULES:
        raise ValueError(f"layer_rule: expected one of {sorted(LAYER_RULES)}, got {rule!r}")
    A = activation.float()
    G = gradient.float()
    sign = -1.0 if counterfactual else 1.0
    return LAYER_RULES[rule](A, G, tuple(size), sign, normalize)


def aggregate(maps: List[Tensor], aggregation: str = "sum") -> Tensor:
    """Aggregate K maps ``(N, 1, T, H, W)`` into one, followed by ReLU (paper eq. 3)."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(
            f"aggregation: expected one of {sorted(AGGREGATIONS)}, got {aggregation!r}"
        )
    if not maps:
        raise ValueError("maps: expected at least one layer map, got none")
    return torch.relu(AGGREGATIONS[aggregation](maps))
