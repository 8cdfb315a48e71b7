"""Model-parameter randomization sanity check (Adebayo et al., 2018, "Sanity Checks for Saliency Maps").

An explanation that survives the destruction of the model it explains is not explaining the model.
The cascading test re-initializes the model's layers from the top (logits) down, one more layer
per step, recomputes the explanation, and measures how similar it stays to the original::

    for k = 1..K:   re-initialize layer L_k (L_1 = top) on top of L_1..L_{k-1}
                    rho_k  = Spearman rank correlation(map_orig, map_k)   per sample (scipy)
                    ssim_k = SSIM(nrm(map_orig), nrm(map_k))              per sample, per frame

``nrm`` scales a map to ``[0, 1]`` (min-max per sample). A faithful method's similarity drops as
layers are randomized. The ``"independent"`` mode re-initializes one layer at a time on the
trained model instead.

The user's model is never touched: everything runs on a ``copy.deepcopy`` of it. The target class
is fixed from the trained copy (its prediction when ``target=None``), so every step explains the
same class.

Lives here: the randomization test and its similarity measures (Spearman, SSIM). Does not live here:
the tables that report it (:func:`captum_3dcam.evaluation.sanity_table`).
"""
import copy
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._utils import normalize_minmax, optional_import, progress_bar

__all__ = [
    "RandomizationStep",
    "spearman_rank_correlation",
    "ssim",
    "default_randomization_order",
    "cascading_randomization",
]

ExplainFn = Callable[[nn.Module, Tensor, Tensor], Tensor]


@dataclass
class RandomizationStep:
    """One step of the randomization test.

    Attributes:
        layer: name of the module randomized at this step (``"original"`` for step 0).
        spearman: ``(N,)`` Spearman rank correlation with the original maps.
        ssim: ``(N,)`` structural similarity with the original maps.
        maps: the maps of this step ``(N, 1, T, H, W)`` when ``keep_maps=True``, else None.
    """

    layer: str
    spearman: Tensor
    ssim: Tensor
    maps: Optional[Tensor] = None


def _flat_per_sample(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"{name}: expected (N, ...) with a batch dimension, got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name}: expected finite values, got NaN/inf")
    return x.detach().reshape(x.shape[0], -1).double().cpu()


def spearman_rank_correlation(a: Tensor, b: Tensor) -> Tensor:
    """Spearman's rho between paired maps, per sample, with ``scipy.stats.spearmanr``.

    A constant map has no ranking: its correlation is reported as 0 (scipy would give NaN),
    except that two constant maps correlate 1.

    Shape:
        ``(N, ...), (N, ...) -> (N,)`` float64
    """
    spearmanr = optional_import("scipy.stats", "spearman_rank_correlation").spearmanr
    fa, fb = _flat_per_sample(a, "a"), _flat_per_sample(b, "b")
    if fa.shape != fb.shape:
        raise ValueError(f"a and b: expected the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    out = torch.zeros(fa.shape[0], dtype=torch.float64)
    for i in range(fa.shape[0]):
        const_a = bool((fa[i] == fa[i, 0]).all()) if fa.shape[1] else True
        const_b = bool((fb[i] == fb[i, 0]).all()) if fb.shape[1] else True
        if const_a or const_b:
            out[i] = 1.0 if (const_a and const_b) else 0.0
        else:
            out[i] = float(spearmanr(fa[i].numpy(), fb[i].numpy()).statistic)
    return out


def _gaussian_window(size: int, sigma: float, dtype) -> Tensor:
    """The normalized 1-D Gaussian ``(size,)``; the 2-D window is its outer product (separable)."""
    g = torch.exp(-((torch.arange(size, dtype=dtype) - (size - 1) / 2) ** 2) / (2 * sigma**2))
    return g / g.sum()


def ssim(a: Tensor, b: Tensor, *, window_size: int = 11, sigma: float = 1.5, normalize: bool = True) -> Tensor:
    """Mean structural similarity (Wang et al. 2004) of paired maps, per sample.

    Computed frame by frame with a Gaussian window (no padding, like scikit-image), constants
    ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` with data range ``L = 1``, and averaged over frames
    and pixels. With ``normalize=True`` each map is first scaled to ``[0, 1]`` by its own min and
    max (a constant map becomes 0). The window shrinks to the frame when the frame is smaller.

    Args:
        a, b: ``(N, 1, T, H, W)``, ``(N, T, H, W)`` or ``(N, H, W)`` maps of the same shape.

    Returns:
        ``(N,)`` SSIM in ``[-1, 1]`` (1 for identical maps).

    Shape:
        ``(N, ..., H, W), (N, ..., H, W) -> (N,)``
    """
    for x, name in ((a, "a"), (b, "b")):
        _flat_per_sample(x, name)
    if a.shape != b.shape:
        raise ValueError(f"a and b: expected the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.dim() < 3:
        raise ValueError(f"a: expected (N, ..., H, W), got shape {tuple(a.shape)}")
    n, (h, w) = a.shape[0], a.shape[-2:]
    x = a.detach().double().reshape(n, -1, h, w)
    y = b.detach().double().to(x.device).reshape(n, -1, h, w)
    if normalize:
        x, y = normalize_minmax(x, (1, 2, 3)), normalize_minmax(y, (1, 2, 3))
    size = min(window_size, h, w)
    size = size if size % 2 == 1 else size - 1
    g = _gaussian_window(size, sigma, x.dtype).to(x.device)
    frames = x.shape[1]
    xs, ys = x.reshape(-1, 1, h, w), y.reshape(-1, 1, h, w)
    # The five local means in one separable filtering (columns, then rows): 2 x size instead of
    # size^2 multiplies per pixel, the same values (the 2-D Gaussian is the outer product of g).
    stack = torch.cat([xs, ys, xs * xs, ys * ys, xs * ys], dim=1)
    local = F.conv2d(F.conv2d(stack, g.view(1, 1, size, 1).expand(5, 1, size, 1), groups=5),
                     g.view(1, 1, 1, size).expand(5, 1, 1, size), groups=5)
    mu_x, mu_y = local[:, 0:1], local[:, 1:2]
    sxx = local[:, 2:3] - mu_x**2
    syy = local[:, 3:4] - mu_y**2
    sxy = local[:, 4:5] - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.reshape(n, frames, -1).mean(dim=(1, 2))


def default_randomization_order(model: nn.Module) -> List[str]:
    """Top-down order of the model's top-level children that hold parameters (output side first)."""
    names = [name for name, child in model.named_children() if any(True for _ in child.parameters())]
    return names[::-1]


def _reinitialize(module: nn.Module, generator_seed: int) -> None:
    """Re-draw every parameter of ``module`` (``reset_parameters`` where it exists)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(generator_seed)
        touched = False
        for sub in module.modules():
            reset = getattr(sub, "reset_parameters", None)
            if callable(reset):
                reset()
                touched = True
        if not touched:
            for p in module.parameters():
                with torch.no_grad():
                    p.normal_(0.0, 0.02)


def cascading_randomization(
    model: nn.Module,
    explain: ExplainFn,
    inputs: Tensor,
    target=None,
    *,
    layers: Optional[Sequence[str]] = None,
    mode: str = "cascading",
    seed: int = 0,
    keep_maps: bool = False,
    eval_mode: bool = True,
    show_progress: bool = False,
) -> List[RandomizationStep]:
    """Adebayo et al.'s model-parameter randomization test, on a deep copy of ``model``.

    Args:
        model: the trained model; it is deep-copied and never changed.
        explain: ``explain(model_copy, inputs, target) -> maps (N, ...)``; it must build its
            explainer on the model it is given, e.g.
            ``lambda m, x, t: GlobalLocal3DCam(m, [m.conv1, m.conv2]).attribute(x, target=t)``.
        inputs: ``(N, C, T, H, W)`` clips.
        target: class per sample (int, list or ``(N,)`` tensor); None = the trained copy's
            prediction, kept fixed for every step.
        layers: names (``model.named_modules()``) to randomize, in order (top first). Default:
            :func:`default_randomization_order`.
        mode: ``"cascading"`` (randomizations accumulate) or ``"independent"`` (one layer at a
            time on a fresh copy of the trained model).
        seed: seed of the re-initialization (step ``k`` uses ``seed + k``).
        keep_maps: keep every step's maps in the result.
        eval_mode: run the copies in eval mode (BatchNorm running statistics, no dropout).
        show_progress: a tqdm bar over the steps.

    Returns:
        ``[step_0, step_1, ..., step_K]``: step 0 is the original (``layer="original"``,
        correlation 1), step ``k`` the model with ``layers[:k]`` (or ``layers[k-1]``) randomized.

    Shape:
        ``inputs (N, C, T, H, W)`` -> ``K + 1`` steps of ``(N,)`` scores.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if not callable(explain):
        raise TypeError(f"explain: expected a callable (model, inputs, target) -> maps, got {type(explain).__name__}")
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs: expected a torch.Tensor, got {type(inputs).__name__}")
    if mode not in ("cascading", "independent"):
        raise ValueError(f"mode: expected 'cascading' or 'independent', got {mode!r}")
    modules = dict(model.named_modules())
    layers = list(default_randomization_order(model) if layers is None else layers)
    for name in layers:
        if not isinstance(name, str) or name not in modules or name == "":
            raise ValueError(f"layers: {name!r} is not a submodule name of the model (see model.named_modules())")
    if not layers:
        raise ValueError("layers: expected at least one module to randomize, got none")

    trained = copy.deepcopy(model)
    if eval_mode:
        trained.eval()
    n = inputs.shape[0]
    if target is None:
        with torch.no_grad():
            target = trained(inputs).argmax(dim=1)
    target = torch.as_tensor(target, device=inputs.device)
    if target.dim() == 0:
        target = target.expand(n)
    original = explain(trained, inputs, target).detach()
    steps = [
        RandomizationStep(
            "original",
            spearman_rank_correlation(original, original),
            ssim(original, original),
            original if keep_maps else None,
        )
    ]
    iterator = progress_bar(enumerate(layers, start=1), "randomization", total=len(layers), enabled=show_progress)
    current = copy.deepcopy(trained)
    for k, name in iterator:
        if mode == "independent":
            current = copy.deepcopy(trained)
        _reinitialize(dict(current.named_modules())[name], seed + k)
        maps = explain(current, inputs, target).detach()
        if maps.shape != original.shape:
            raise ValueError(
                f"explain: returned maps of shape {tuple(maps.shape)} after randomizing {name!r}, "
                f"expected {tuple(original.shape)}"
            )
        steps.append(
            RandomizationStep(
                name,
                spearman_rank_correlation(original, maps),
                ssim(original, maps),
                maps if keep_maps else None,
            )
        )
    return steps
