"""Average drop / increase in confidence (Chattopadhay et al. 2018) and the random-map control.

Lives here: the scores of a clip multiplied by its explanation, and a seeded random attribution
for the control rows of every faithfulness table. Does not live here: deletion / insertion curves
(:mod:`captum_3dcam.metrics.faithfulness`, whose input checks these functions share), replacement values
(:mod:`captum_3dcam.metrics.imputation`).
"""
import numbers
from typing import Callable, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .._utils import normalize_minmax
from .faithfulness import check_common, prepare_maps, prepare_target, scores_in_batches
from .imputation import check_clips, baseline_clip, gaussian_blur3d

__all__ = ["confidence_scores", "average_drop", "increase_in_confidence", "random_attribution"]


def confidence_scores(
    forward_func: Callable[[Tensor], Tensor],
    inputs: Tensor,
    attributions: Tensor,
    target=None,
    *,
    baseline: str = "zero",
    score: str = "probability",
    batch_size: int = 8,
    blur_sigma: Sequence[float] = (1.0, 5.0, 5.0),
) -> Tuple[Tensor, Tensor]:
    r"""``(Y, O)``: the target's score on the clip and on the clip seen through its explanation map.

    ``E = (m - min m) / (max m - min m)`` per sample (0 for a constant map), and
    ``O = score(b + E * (x - b))`` with ``b`` the baseline clip; ``baseline="zero"`` is the paper's
    ``E * x`` (Chattopadhay et al. 2018). ``Y = score(x)``. Two batched passes.

    Shape:
        - inputs: :math:`(N, C, T, H, W)`; attributions: :math:`(N, 1, t, h, w)`; output: two :math:`(N,)`
    """
    check_common(forward_func, inputs, score, batch_size)
    if baseline not in ("zero", "mean", "blur"):
        raise ValueError(f"baseline: expected 'zero' (the paper's), 'mean' or 'blur', got {baseline!r}")
    n = inputs.shape[0]
    explanation = normalize_minmax(prepare_maps(attributions, inputs), dims=(1, 2, 3, 4))
    base = baseline_clip(inputs, baseline, blur_sigma=blur_sigma)
    masked = base + explanation * (inputs - base)
    with torch.no_grad():
        y, tgt = scores_in_batches(forward_func, [inputs[i:i + 1] for i in range(n)],
                                    prepare_target(target, n, inputs.device), score, batch_size, None)
        o, _ = scores_in_batches(forward_func, [masked[i:i + 1] for i in range(n)], tgt, score, batch_size, None)
    return y, o


def average_drop(forward_func, inputs, attributions, target=None, *, reduction: str = "mean", **kwargs) -> Tensor:
    r"""Average drop in % (Chattopadhay et al. 2018), lower is better.

    .. math::
        \mathrm{AD} = \frac{100}{N} \sum_{i=1}^{N} \frac{\max(0, Y_i - O_i)}{Y_i}

    with ``Y`` the target's score on the clip and ``O`` on ``E * clip`` (:func:`confidence_scores`,
    whose keyword arguments it takes). ``reduction="none"`` returns the per-sample terms (x 100).

    Raises:
        ValueError: a score ``Y <= 0`` (possible with ``score="logit"``: use probabilities).

    Shape:
        - output: scalar, or :math:`(N,)` with ``reduction="none"``
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction: expected 'mean' or 'none', got {reduction!r}")
    y, o = confidence_scores(forward_func, inputs, attributions, target, **kwargs)
    if not bool((y > 0).all()):
        raise ValueError(f"average_drop needs positive scores on the clips (use score='probability'), got {y.tolist()}")
    drop = 100.0 * torch.relu(y - o) / y
    return drop.mean() if reduction == "mean" else drop


def increase_in_confidence(
    forward_func, inputs, attributions, target=None, *, reduction: str = "mean", **kwargs
) -> Tensor:
    r"""Increase in confidence in % (Chattopadhay et al. 2018), higher is better.

    .. math::
        \mathrm{IC} = \frac{100}{N} \sum_{i=1}^{N} [O_i > Y_i]

    (:func:`confidence_scores`, whose keyword arguments it takes). ``reduction="none"``: 0 or 100 per sample.

    Shape:
        - output: scalar, or :math:`(N,)` with ``reduction="none"``
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction: expected 'mean' or 'none', got {reduction!r}")
    y, o = confidence_scores(forward_func, inputs, attributions, target, **kwargs)
    up = 100.0 * (o > y).float()
    return up.mean() if reduction == "mean" else up


# ---------------------------------------------------------------------------------------------
# control


def random_attribution(like: Tensor, *, seed: int = 0, sigma: Optional[Sequence[float]] = None) -> Tensor:
    """A seeded random map: the control row of every faithfulness table.

    Uniform ``[0, 1)`` noise drawn on the CPU with ``torch.Generator().manual_seed(seed)`` (the same
    map on every device), one map per sample. ``sigma=(t, h, w)`` blurs it
    (:func:`gaussian_blur3d`): random blobs instead of independent voxels, so that a random order
    removes contiguous regions as attribution maps do.

    Shape:
        - like: :math:`(N, C, T, H, W)` (clips or maps); output: :math:`(N, 1, T, H, W)` on ``like``'s device
    """
    check_clips(like, "like", finite=False)  # only its shape and device are used
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not -2 ** 63 <= seed < 2 ** 64:
        raise ValueError(f"seed: expected an int in [-2**63, 2**64), got {seed!r}")
    n, _, t, h, w = like.shape
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    maps = torch.rand((n, 1, t, h, w), generator=gen, dtype=torch.float32)
    if sigma is not None:
        maps = gaussian_blur3d(maps, sigma)
    return maps.to(like.device)
