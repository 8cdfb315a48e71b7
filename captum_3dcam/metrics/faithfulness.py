"""Faithfulness of video attributions without ground truth: deletion / insertion, average drop.

Lives here: deletion and insertion curves and their AUC over space-time cubes (Petsiuk et al.
2018), average drop / increase in confidence (Chattopadhay et al. 2018) and the seeded
random-attribution control (in :mod:`captum_3dcam.metrics.confidence`, served here too). Does not live here: the replacement values (zero, mean, blur, ROAD's
imputation: :mod:`captum_3dcam.metrics.imputation`), metrics that need ground-truth boxes
(:mod:`captum_3dcam.metrics.localization`), producing attributions, benchmarks.

Every function takes any ``forward_func`` ``(N, C, T, H, W) -> (N, classes)``, runs it under
``torch.no_grad()`` in batches, never touches the model (mode, parameters, grads, hooks) and keeps
everything a torch tensor on the input's device.
"""
import warnings
from typing import Callable, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .imputation import (
    BASELINES,
    channel_std,
    check_clips,
    check_real,
    baseline_clip,
    noisy_linear_imputation,
)
from .._utils import progress_bar
from ..attr.upsample import check_size, upsample_to

__all__ = [
    "deletion_curve",
    "insertion_curve",
    "deletion_insertion_curves",
    "deletion_auc",
    "insertion_auc",
    "curve_auc",
]

Baseline = Union[str, Tensor, Callable[[Tensor, Tensor], Tensor]]
#: cubes per (T, H, W) axis when ``cube=None`` (with ``baseline="road"``: the validated default protocol)
DEFAULT_GRID = (4, 7, 7)
_MAX_STEPS = 10 ** 6  # a curve of more points than this is a mistake (and a list of that many counts)


# ---------------------------------------------------------------------------------------------
# validation and scoring


def _check_int(value, name: str, low: int = 1, high: Optional[int] = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        raise ValueError(f"{name}: expected an int >= {low}, got {value!r}{'' if high is None else f' (at most {high})'}")
    return value


def prepare_maps(attributions, inputs: Tensor) -> Tensor:
    """Attributions ``(N, 1, t, h, w)`` or ``(N, t, h, w)`` -> ``(N, 1, T, H, W)`` at the clip's size."""
    if not isinstance(attributions, Tensor):
        raise TypeError(f"attributions: expected a torch.Tensor, got {type(attributions).__name__}")
    maps = attributions.detach()
    if maps.dim() == 4:
        maps = maps[:, None]
    if maps.dim() != 5 or maps.shape[1] != 1 or maps.shape[0] != inputs.shape[0]:
        raise ValueError(f"attributions: expected (N, 1, T, H, W) or (N, T, H, W) with N = {inputs.shape[0]}, "
                         f"got shape {tuple(attributions.shape)}")
    if not maps.is_floating_point():
        maps = maps.float()
    if not bool(torch.isfinite(maps).all()):
        raise ValueError("attributions: expected finite values, got NaN or inf")
    return upsample_to(maps.to(inputs.device), tuple(inputs.shape[2:]))


def _forward_scores(forward_func, clips: Tensor, target: Optional[Tensor], score: str) -> Tuple[Tensor, Tensor]:
    """``(scores (N,), target (N,))`` of one batch; ``target=None`` takes the argmax."""
    out = forward_func(clips)
    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != clips.shape[0]:
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"forward_func: expected an output (N, classes) with N = {clips.shape[0]}, got {got}")
    if target is None:
        target = out.argmax(dim=1)
    elif bool(((target < 0) | (target >= out.shape[1])).any()):
        raise ValueError(f"target: expected class indices in [0, {out.shape[1]}), got {target.tolist()}")
    values = out.float().softmax(dim=1) if score == "probability" else out.float()
    picked = values.gather(1, target.view(-1, 1).to(out.device))[:, 0]
    if not bool(torch.isfinite(picked).all()):
        raise ValueError(f"forward_func: returned non-finite scores (NaN/inf) for the targets: {picked.tolist()}")
    return picked, target


def prepare_target(target, n: int, device) -> Optional[Tensor]:
    if target is None:
        return None
    t = torch.as_tensor(target, device=device)
    if t.is_floating_point() or t.dtype == torch.bool or t.dim() > 1 or (t.dim() == 1 and t.numel() != n):
        raise ValueError(f"target: expected None, an int, or N = {n} ints, got {target!r}")
    return t.expand(n).long() if t.dim() == 0 else t.long()


def check_common(forward_func, inputs, score: str, batch_size) -> None:
    if not callable(forward_func):
        raise TypeError("forward_func: expected a callable (N, C, T, H, W) -> (N, classes), "
                        f"got {type(forward_func).__name__}")
    check_clips(inputs, "inputs")
    if score not in ("probability", "logit"):
        raise ValueError(f"score: expected 'probability' or 'logit', got {score!r}")
    _check_int(batch_size, "batch_size")
    if isinstance(forward_func, nn.Module) and forward_func.training:
        warnings.warn("forward_func is in training mode: dropout makes the scores random and BatchNorm would update "
                      "its running statistics; call model.eval() first", stacklevel=3)


def _progress(total: int, show: bool, desc: str):
    """The library's one progress bar (:func:`captum_3dcam._utils.progress_bar`), or ``None``."""
    return progress_bar(None, desc, total=total, leave=False) if show else None


# ---------------------------------------------------------------------------------------------
# deletion / insertion


def _cube_ranks(maps: Tensor, cube: Tuple[int, int, int]) -> Tuple[Tensor, int]:
    """Per voxel, the rank of its cube by mean attribution (0 = highest; ties by raster order)."""
    n, _, t, h, w = maps.shape
    sums = F.avg_pool3d(maps, cube, cube, ceil_mode=True)
    counts = F.avg_pool3d(torch.ones_like(maps[:1]), cube, cube, ceil_mode=True)
    scores = (sums / counts).flatten(1)  # (N, cubes): mean attribution of each (possibly partial) cube
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1], device=maps.device).expand_as(order))
    grid = ranks.view(n, 1, *sums.shape[2:]).to(torch.int32)
    for axis, size in zip((2, 3, 4), cube):
        grid = grid.repeat_interleave(size, dim=axis)
    return grid[:, :, :t, :h, :w], int(order.shape[1])


def deletion_insertion_curves(
    forward_func: Callable[[Tensor], Tensor],
    inputs: Tensor,
    attributions: Tensor,
    target=None,
    *,
    baseline: Baseline = "road",
    steps: int = 20,
    cube: Optional[Sequence[int]] = None,
    batch_size: int = 8,
    score: str = "probability",
    modes: Sequence[str] = ("deletion", "insertion"),
    blur_sigma: Sequence[float] = (1.0, 5.0, 5.0),
    noise: float = 0.01,
    seed: int = 0,
    show_progress: bool = True,
) -> Tuple[Tensor, ...]:
    r"""Deletion and insertion curves (Petsiuk et al. 2018) over space-time cubes, in one set of passes.

    The attribution map is averaged over cubes of ``cube = (t, h, w)`` voxels and the cubes are
    sorted by that mean, highest first. Step ``k = 0 .. steps`` removes (deletion) or reveals
    (insertion) the first ``n_k = round(k * n / steps)`` of the ``n`` cubes and records the target's
    score: ``clip_k = where(keep_k, clip, replacement)``. Deletion starts at the clip and ends at the
    replacement; insertion the other way round. Both share their all-replaced clip (one pass).

    Replacement (``baseline``): ``"zero"``; ``"mean"`` (the clip's per-channel mean); ``"blur"``
    (:func:`gaussian_blur3d` with ``blur_sigma``); ``"road"`` (:func:`noisy_linear_imputation` of
    the removed voxels from the kept ones at every step, noise ``noise``, seeded by ``seed`` per
    sample, so every method sees the same noise); a tensor broadcastable to the clips; or a
    callable ``(clips (B, C, T, H, W), keep (B, 1, T, H, W) bool) -> clips``.

    The defaults (``"road"``, a 4x7x7 grid of cubes) are the protocol chosen by
    ``benchmarks/faithfulness.py``: with I3D on real clips, zero / mean / blur replacement of
    scattered 4x16x16 cubes lets a *random* order remove the class as fast as or faster than
    attribution maps (the holes are out of distribution), so those protocols cannot rank methods;
    under ROAD with this grid a random order came last on the clips it was chosen on and on a
    held-out clip (benchmarks/RESULTS.md). ROAD costs one imputation per perturbed clip.

    Args:
        forward_func: the model, ``(N, C, T, H, W) -> (N, classes)``; used as it is (put it in eval
            mode first), under ``torch.no_grad()``.
        inputs: the clips.
        attributions: maps, higher = more important; another ``(t, h, w)`` is trilinearly upsampled.
        target: class per sample (int, N ints, ``(N,)`` tensor); None = the predicted class.
        steps: points of the curve after the start.
        cube: cube size ``(t, h, w)``; with a size that divides ``(T, H, W)`` the x-axis is also the
            fraction of voxels, otherwise the cubes at the far edges are partial. None: a 4x7x7 grid,
            ``ceil((T / 4, H / 7, W / 7))`` (8x32x32 for I3D's 32x224x224 clips).
        batch_size: perturbed clips per forward pass (the results do not depend on it).
        score: ``"probability"`` (softmax of the output, the default) or ``"logit"``.
        modes: which curves, in this order.
        show_progress: a tqdm bar over the forward passes.

    Returns:
        ``(fractions, curve, ...)``: the fraction of cubes replaced (deletion) / revealed
        (insertion) at each step, then one ``(N, steps + 1)`` tensor of scores per mode.

    Shape:
        - inputs: :math:`(N, C, T, H, W)`; attributions: :math:`(N, 1, t, h, w)` or :math:`(N, t, h, w)`
        - output: :math:`(S + 1,)` and :math:`(N, S + 1)` per mode, ``S = steps``

    Example:
        >>> fr, dele, ins = deletion_insertion_curves(model.eval(), clips, maps, baseline="road")
        >>> curve_auc(fr, dele, relative=True)      # (N,), lower is better
    """
    check_common(forward_func, inputs, score, batch_size)
    steps = _check_int(steps, "steps", high=_MAX_STEPS)
    t, h, w = inputs.shape[2:]
    cube = tuple(-(-s // g) for s, g in zip((t, h, w), DEFAULT_GRID)) if cube is None else check_size(cube, "cube")
    if any(c > s for c, s in zip(cube, inputs.shape[2:])):
        raise ValueError(f"cube: expected sizes <= the clip's (T, H, W) = {tuple(inputs.shape[2:])}, got {cube}")
    modes = tuple(modes)
    if not modes or any(m not in ("deletion", "insertion") for m in modes) or len(set(modes)) != len(modes):
        raise ValueError(f"modes: expected distinct entries of 'deletion', 'insertion', got {modes!r}")
    fill = _make_fill(baseline, inputs, blur_sigma, noise, seed)
    n = inputs.shape[0]
    ranks, n_cubes = _cube_ranks(prepare_maps(attributions, inputs), cube)
    counts = [int(round(k * n_cubes / steps)) for k in range(steps + 1)]
    fractions = torch.tensor([c / n_cubes for c in counts], device=inputs.device)
    tgt = prepare_target(target, n, inputs.device)
    # every distinct perturbed clip once (deletion's last step is insertion's first)
    keys = list(dict.fromkeys(_key(m, c, n_cubes) for m in modes for c in counts))
    keys = [k for k in keys if k != ("all", n_cubes)]
    bar = _progress(n * (len(keys) + 1), show_progress, "deletion/insertion")
    with torch.no_grad():
        full, tgt = scores_in_batches(forward_func, [inputs[i:i + 1] for i in range(n)], tgt, score, batch_size, bar)
        results = {("all", n_cubes): full}
        todo = [(key, i) for key in keys for i in range(n)]
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            idx = torch.tensor([i for _, i in chunk], device=inputs.device)
            keep = torch.stack([_keep_mask(ranks[i], key) for key, i in chunk])
            clips = fill(inputs[idx], keep, idx)
            s, _ = _forward_scores(forward_func, clips, tgt[idx], score)
            for (key, i), v in zip(chunk, s):
                results.setdefault(key, torch.empty(n, device=inputs.device))[i] = v
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    curves = []
    for mode in modes:
        curves.append(torch.stack([results[_key(mode, c, n_cubes)] for c in counts], dim=1))
    return (fractions, *curves)


def _key(mode: str, count: int, n_cubes: int):
    """Which clip step ``count`` of ``mode`` is: insertion keeps the top ``count`` cubes, deletion the rest."""
    kept = count if mode == "insertion" else n_cubes - count
    if kept == n_cubes:
        return ("all", n_cubes)
    if kept == 0:
        return ("none", 0)
    return ("top", count) if mode == "insertion" else ("rest", count)


def _keep_mask(rank: Tensor, key) -> Tensor:
    kind, count = key
    if kind == "none":
        return torch.zeros_like(rank, dtype=torch.bool)
    return rank < count if kind == "top" else rank >= count


def scores_in_batches(forward_func, pieces, target, score, batch_size, bar):
    outs, tgts = [], []
    for start in range(0, len(pieces), batch_size):
        clips = torch.cat(pieces[start:start + batch_size])
        t = None if target is None else target[start:start + clips.shape[0]]
        s, t = _forward_scores(forward_func, clips, t, score)
        outs.append(s)
        tgts.append(t.to(clips.device))
        if bar is not None:
            bar.update(clips.shape[0])
    return torch.cat(outs), torch.cat(tgts)


def _make_fill(baseline, inputs: Tensor, blur_sigma, noise: float, seed: int):
    """``fill(clips (B, ...), keep (B, 1, T, H, W), sample index (B,)) -> perturbed clips``."""
    noise = check_real(noise, "noise")
    if isinstance(seed, bool) or not isinstance(seed, int) or not -2 ** 63 <= seed <= 2 ** 64 - inputs.shape[0]:
        raise ValueError(f"seed: expected an int in [-2**63, 2**64 - N] (sample i uses seed + i), got {seed!r}")
    if isinstance(baseline, str):
        if baseline == "road":
            cache = {}

            def road(clips, keep, idx):
                for i in idx.tolist():
                    if i not in cache:
                        cache[i] = _sample_noise(inputs[i], seed + i)
                noises = [cache[i] for i in idx.tolist()]
                filled = noisy_linear_imputation(clips, keep, noise=0.0)
                std = channel_std(clips)
                return torch.where(keep, clips, filled + noise * std * torch.stack(noises))
            return road
        if baseline not in BASELINES:
            raise ValueError(f"baseline: expected one of {BASELINES}, a tensor or a callable, got {baseline!r}")
        base = baseline_clip(inputs, baseline, blur_sigma=blur_sigma)
        return lambda clips, keep, idx: torch.where(keep, clips, base[idx])
    if isinstance(baseline, Tensor):
        try:
            base = torch.broadcast_to(baseline.to(inputs.device, inputs.dtype), inputs.shape)
        except RuntimeError as exc:
            raise ValueError(f"baseline: a tensor must broadcast to the inputs {tuple(inputs.shape)}, "
                             f"got {tuple(baseline.shape)}") from exc
        if not bool(torch.isfinite(base).all()):
            raise ValueError("baseline: expected a tensor of finite values, got NaN or inf")
        return lambda clips, keep, idx: torch.where(keep, clips, base[idx])
    if callable(baseline):
        return lambda clips, keep, idx: baseline(clips, keep)
    raise TypeError(f"baseline: expected a str, a tensor or a callable, got {type(baseline).__name__}")


def _sample_noise(clip: Tensor, seed: int) -> Tensor:
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(clip.shape, generator=gen, dtype=clip.dtype).to(clip.device)


def deletion_curve(forward_func, inputs, attributions, target=None, **kwargs) -> Tuple[Tensor, Tensor]:
    """Deletion curve: remove the most important cubes first; the score should fall fast.

    Arguments as :func:`deletion_insertion_curves`.

    Shape:
        - output: ``fractions`` :math:`(S + 1,)`, ``scores`` :math:`(N, S + 1)`; ``scores[:, 0]`` is the clip's
    """
    return deletion_insertion_curves(forward_func, inputs, attributions, target, modes=("deletion",), **kwargs)


def insertion_curve(forward_func, inputs, attributions, target=None, **kwargs) -> Tuple[Tensor, Tensor]:
    """Insertion curve: reveal the most important cubes first; the score should rise fast.

    Arguments as :func:`deletion_insertion_curves`.

    Shape:
        - output: ``fractions`` :math:`(S + 1,)`, ``scores`` :math:`(N, S + 1)`; ``scores[:, -1]`` is the clip's
    """
    return deletion_insertion_curves(forward_func, inputs, attributions, target, modes=("insertion",), **kwargs)


def curve_auc(
    fractions: Tensor, scores: Tensor, *, relative: bool = False, reference: Optional[Tensor] = None
) -> Tensor:
    r"""Area under a curve by the trapezoid rule over the fraction axis.

    .. math::
        \mathrm{AUC} = \sum_{k=1}^{S} (f_k - f_{k-1}) \frac{s_{k-1} + s_k}{2}

    With ``relative=True`` the area is divided by the score of the unperturbed clip (``reference``,
    default: the curve's end where the clip is whole: ``scores[:, 0]`` if ``fractions`` runs from 0
    and the curve is a deletion, so pass ``reference`` for insertion curves or use
    :func:`insertion_auc`). Relative AUCs compare clips whose scores differ; a value above 1 means
    the perturbed clips score higher than the clip itself.

    Raises:
        ValueError: shapes disagree, or ``relative`` with a reference score that is not positive
            (use ``score="probability"``).

    Shape:
        - fractions: :math:`(S + 1,)`; scores: :math:`(N, S + 1)`; output: :math:`(N,)`
    """
    if not isinstance(fractions, Tensor) or not isinstance(scores, Tensor):
        raise TypeError("fractions, scores: expected torch.Tensors")
    if fractions.dim() != 1 or scores.dim() != 2 or scores.shape[1] != fractions.shape[0] or fractions.shape[0] < 2:
        raise ValueError(f"fractions (S + 1,), scores (N, S + 1) with S >= 1 expected, got {tuple(fractions.shape)} "
                         f"and {tuple(scores.shape)}")
    if not (bool(torch.isfinite(fractions).all()) and bool(torch.isfinite(scores).all())):
        raise ValueError("fractions, scores: expected finite values, got NaN or inf")
    area = torch.trapezoid(scores, fractions.to(scores), dim=1)
    if not relative:
        return area
    ref = scores[:, 0] if reference is None else reference.to(scores)
    if ref.shape != area.shape or not bool((ref > 0).all()):
        raise ValueError("reference: relative AUC needs a positive score of the unperturbed clip per sample, "
                         f"got {ref.tolist()}")
    return area / ref


def deletion_auc(forward_func, inputs, attributions, target=None, *, relative: bool = False, **kwargs) -> Tensor:
    """AUC of :func:`deletion_curve` (lower = more faithful); ``relative`` divides by the clip's score.

    Shape:
        - output: :math:`(N,)`
    """
    fractions, scores = deletion_curve(forward_func, inputs, attributions, target, **kwargs)
    return curve_auc(fractions, scores, relative=relative, reference=scores[:, 0])


def insertion_auc(forward_func, inputs, attributions, target=None, *, relative: bool = False, **kwargs) -> Tensor:
    """AUC of :func:`insertion_curve` (higher = more faithful); ``relative`` divides by the clip's score.

    Shape:
        - output: :math:`(N,)`
    """
    fractions, scores = insertion_curve(forward_func, inputs, attributions, target, **kwargs)
    return curve_auc(fractions, scores, relative=relative, reference=scores[:, -1])

