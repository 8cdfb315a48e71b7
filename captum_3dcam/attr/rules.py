r"""Per-layer map rules, the per-layer normalizations, and the aggregation of layer maps.

Every rule turns one layer's activation :math:`A_k` and gradient :math:`G_k`, both
``(N, C_k, T_k, H_k, W_k)``, into a map ``(N, 1, T, H, W)`` at the input's resolution. ``s`` is
``+1`` for the plain method and ``-1`` for the counterfactual (paper eq. 4: the gradients are
negated before everything else), ``up`` is trilinear upsampling
(:func:`~captum_3dcam.attr.upsample.upsample_to`) and ``nrm`` the per-sample normalization chosen by
``normalize_layers`` (``"max"``: ``x / max x``, the paper's; ``"minmax"``:
``(x - min) / (max - min)``; ``None``: identity; a constant or non-positive map becomes 0)::

    "3dcam"     (paper eq. 1-2, ReLU before the normalization)
                beta = s * sum_c G_kc,   alpha = sum_c A_kc
                map_k = nrm(relu(up(beta))) * nrm(relu(up(alpha)))
    "gradcam"   w_kc = s * mean_thw G_kc
                map_k = nrm(up(relu(sum_c w_kc A_kc)))
    "gradcam++" (Chattopadhay et al. 2018, the form pytorch-grad-cam uses, without its epsilon)
                a = (sG)^2 / (2 (sG)^2 + (sum_thw A_kc) (sG)^3),  0 where G = 0 or the denominator is 0
                w_kc = sum_thw a * relu(s G_kc)
                map_k = nrm(up(relu(sum_c w_kc A_kc)))
    "xgradcam"  (Fu et al. 2020, Axiom-based Grad-CAM)
                w_kc = s * sum_thw A_kc G_kc / sum_thw A_kc,  0 where sum_thw A_kc = 0
                map_k = nrm(up(relu(sum_c w_kc A_kc)))
    "layercam"  map_k = nrm(up(sum_c relu(s G_kc) * A_kc))

Aggregations over the K layer maps (paper eq. 3 for ``"sum"``)::

    "sum":  P = relu(sum_k map_k)      "mean": P = relu(sum_k map_k / K)
    "max":  P = relu(max_k map_k)

Global-local gating (``gate=``): the class evidence of the deepest layers (global) multiplies the
detail of all layers (local). With ``G = relu(sum of the last gate_layers maps by the gate rule)``
and ``L`` the aggregation above::

    "product":    P = minmax(G) * minmax(L)
    "geometric":  P = sqrt(minmax(G) * minmax(L))

A deep layer alone is class-specific but coarse; the sum of all layers is sharp but, with a deep
pretrained network, much the same map whatever class is asked; their product keeps what both
support (``benchmarks/RESULTS.md``, block ``grid-game``).

Maps are computed in float32, or float64 for float64 activations (half precision is upcast).
"""
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import Tensor

from .._utils import inverse_max, normalize_max, normalize_minmax
from ._validation import check_normalization
from .upsample import upsample_to

__all__ = ["LAYER_RULES", "AGGREGATIONS", "NORMALIZE", "GATE_MODES", "layer_map", "aggregate", "gate_fusion",
           "check_gate"]

Norm = Optional[Callable[[Tensor], Tensor]]

NORMALIZE: Dict[Optional[str], Norm] = {"max": normalize_max, "minmax": normalize_minmax, None: None}


def _apply(nrm: Norm, x: Tensor) -> Tensor:
    return x if nrm is None else nrm(x)


def _rule_3dcam(A: Tensor, G: Tensor, size, sign: float, nrm: Norm) -> Tensor:
    # beta and alpha share one upsampling call: (N, 2, T_k, H_k, W_k) -> (N, 2, T, H, W)
    pair = torch.cat([sign * G.sum(dim=1, keepdim=True), A.sum(dim=1, keepdim=True)], dim=1)
    up = upsample_to(pair, size)
    up = torch.relu(up) if up is pair else up.relu_()
    beta, alpha = up[:, :1], up[:, 1:]
    if nrm is normalize_max:  # nrm(b) * nrm(a) = b * a * (1/max b) * (1/max a): one full multiply
        return (beta * alpha).mul_(inverse_max(beta) * inverse_max(alpha))
    return _apply(nrm, beta) * _apply(nrm, alpha)


def _weighted_sum(weights: Tensor, A: Tensor, size, nrm: Norm) -> Tensor:
    """``nrm(up(relu(sum_c w_c A_c)))``; the channel sum is one batched matrix product."""
    n, c = A.shape[:2]
    cam = torch.bmm(weights.reshape(n, 1, c), A.reshape(n, c, -1)).view(n, 1, *A.shape[2:])
    return _apply(nrm, upsample_to(cam.relu_(), size))


def _rule_gradcam(A: Tensor, G: Tensor, size, sign: float, nrm: Norm) -> Tensor:
    return _weighted_sum(sign * G.mean(dim=(2, 3, 4)), A, size, nrm)


def _rule_gradcampp(A: Tensor, G: Tensor, size, sign: float, nrm: Norm) -> Tensor:
    # For G != 0, a = G^2 / (2 G^2 + S G^3) = 1 / (2 + S G), so a * relu(G) = relu(G) / (2 + S G):
    # the same value without the G^2 and G^3 temporaries (or their underflow). Where the
    # denominator is 0 the quotient is inf or NaN, and nan_to_num sets it to 0, as the rule says.
    G = G if sign > 0 else -G
    S = A.sum(dim=(2, 3, 4), keepdim=True)
    weights = torch.relu(G).div_(G.mul(S).add_(2.0)).nan_to_num_(0.0, 0.0, 0.0)
    return _weighted_sum(weights.sum(dim=(2, 3, 4)), A, size, nrm)


def _rule_xgradcam(A: Tensor, G: Tensor, size, sign: float, nrm: Norm) -> Tensor:
    n, c = A.shape[:2]
    flat = A.reshape(n, c, -1)
    total = flat.sum(dim=2)
    dot = (flat * G.reshape(n, c, -1)).sum(dim=2)
    weights = torch.where(total != 0, dot / torch.where(total != 0, total, torch.ones_like(total)), 0.0)
    return _weighted_sum(sign * weights, A, size, nrm)


def _rule_layercam(A: Tensor, G: Tensor, size, sign: float, nrm: Norm) -> Tensor:
    cam = (torch.relu(sign * G) * A).sum(dim=1, keepdim=True)
    return _apply(nrm, upsample_to(cam, size))


LAYER_RULES: Dict[str, Callable] = {
    "3dcam": _rule_3dcam,
    "gradcam": _rule_gradcam,
    "gradcam++": _rule_gradcampp,
    "xgradcam": _rule_xgradcam,
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


def check_rule(rule: str) -> str:
    """``rule`` if it names a layer rule, else a ValueError listing them."""
    if not isinstance(rule, str) or rule not in LAYER_RULES:
        raise ValueError(f"layer_rule: expected one of {sorted(LAYER_RULES)}, got {rule!r}")
    return rule


def layer_map(
    activation: Tensor,
    gradient: Tensor,
    size: Sequence[int],
    rule: str = "3dcam",
    counterfactual: bool = False,
    normalize=True,
) -> Tensor:
    """One layer's map at resolution ``size`` by ``rule``; see the module docstring.

    Args:
        activation, gradient: :math:`A_k` and :math:`G_k`.
        size: ``(T, H, W)`` of the map.
        rule: a key of :data:`LAYER_RULES`.
        counterfactual: negate the gradient (paper eq. 4).
        normalize: ``True``/``"max"``, ``"minmax"`` or ``False`` (see the module docstring).

    Shape:
        - activation, gradient: ``(N, C_k, T_k, H_k, W_k)``
        - output: ``(N, 1, *size)``
    """
    nrm = NORMALIZE[check_normalization(normalize)]
    wide = (torch.float32, torch.float64)
    A = activation if activation.dtype in wide else activation.float()
    G = gradient.to(A.dtype)
    sign = -1.0 if counterfactual else 1.0
    return LAYER_RULES[check_rule(rule)](A, G, tuple(size), sign, nrm)


def aggregate(maps: List[Tensor], aggregation: str = "sum") -> Tensor:
    """Aggregate K maps ``(N, 1, T, H, W)`` into one, followed by ReLU (paper eq. 3).

    Shape:
        - maps: K tensors :math:`(N, 1, T, H, W)`
        - output: :math:`(N, 1, T, H, W)`
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(
            f"aggregation: expected one of {sorted(AGGREGATIONS)}, got {aggregation!r}"
        )
    if not maps:
        raise ValueError("maps: expected at least one layer map, got none")
    return torch.relu(AGGREGATIONS[aggregation](maps))


GATE_MODES = ("product", "geometric")


def check_gate(gate, gate_layers, gate_mode, num_layers: int) -> None:
    """Validate the gating arguments of :meth:`GlobalLocal3DCam.attribute` (ValueError naming the argument)."""
    if gate is None:
        return
    if not isinstance(gate, str) or gate not in LAYER_RULES:
        raise ValueError(f"gate: expected None or one of {sorted(LAYER_RULES)}, got {gate!r}")
    if isinstance(gate_layers, bool) or not isinstance(gate_layers, int) or not 1 <= gate_layers <= num_layers:
        raise ValueError(f"gate_layers: expected an int in [1, {num_layers}] (the number of layers), "
                         f"got {gate_layers!r}")
    if gate_mode not in GATE_MODES:
        raise ValueError(f"gate_mode: expected one of {GATE_MODES}, got {gate_mode!r}")


def gate_fusion(local: Tensor, gate: Tensor, mode: str = "product") -> Tensor:
    """Global-local gating of an aggregated map by a deep layers' map (see the module docstring).

    Shape:
        - local, gate: :math:`(N, 1, T, H, W)`
        - output: :math:`(N, 1, T, H, W)`, values in ``[0, 1]``
    """
    if mode not in GATE_MODES:
        raise ValueError(f"gate_mode: expected one of {GATE_MODES}, got {mode!r}")
    fused = normalize_minmax(torch.relu(gate)).mul_(normalize_minmax(local))
    return fused.sqrt_() if mode == "geometric" else fused
