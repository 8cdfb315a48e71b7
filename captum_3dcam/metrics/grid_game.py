r"""The video grid pointing game: is the explanation about the class asked for?

Lives here: grids of real clips with the ground truth by construction (Böhle et al. 2022, Rao et
al. 2022, here for video), their scores, the game over a model and any attribution callable, its
controls, and a cheap class-sensitivity check. Does not live here: the attributions themselves
(:mod:`captum_3dcam.attr.attribution`) or box metrics (:mod:`captum_3dcam.metrics.localization`).

A **spatial** grid tiles ``n x n`` clips of different classes side by side at native scale (an
``(C, T, n H, n W)`` input: for fully convolutional models such as I3D, which average their logits
over space); a **temporal** grid plays ``n`` clips one after another (``(C, n T, H, W)``). The
target is one cell's class; a class-faithful map puts its evidence in that cell. With
:math:`M^+ = \mathrm{ReLU}(M)` and the target cell :math:`c`:

.. math::
    \mathrm{share} = \frac{\sum_{v \in c} M^+_v}{\sum_v M^+_v}, \qquad
    \mathrm{pointing} = \frac{|\{v \in c : M_v = \max M\}|}{|\{v : M_v = \max M\}|}

(pointing counts a tie by the fraction of the maxima inside the cell, so a constant map scores
chance, ``1 / cells``, as a random one does). A map with no positive value scores 0 and 0.

Only cells whose clip the model names correctly on its own take part, and a target is kept only
while the grid's own prediction ranks it within ``top_k`` (a target the model does not see in the
grid has no evidence to point at).
"""
import itertools
import random
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._utils import progress_bar

__all__ = [
    "spatial_grid",
    "temporal_grid",
    "cell_mask",
    "grid_scores",
    "Grid",
    "GridResult",
    "GridPointingGame",
    "random_maps",
    "uniform_maps",
    "class_sensitivity",
]

MODES = ("spatial", "temporal")
AttributeFn = Callable[[Tensor, List[int]], Union[Tensor, Mapping[str, Tensor]]]


def _check_clips(clips: Sequence[Tensor], name: str = "clips") -> Tuple[int, ...]:
    if isinstance(clips, Tensor) or not isinstance(clips, Sequence) or len(clips) == 0:
        raise TypeError(f"{name}: expected a non-empty list of (C, T, H, W) tensors, got {type(clips).__name__}")
    for i, c in enumerate(clips):
        if not isinstance(c, Tensor) or c.dim() != 4:
            got = tuple(c.shape) if isinstance(c, Tensor) else type(c).__name__
            raise ValueError(f"{name}[{i}]: expected a (C, T, H, W) tensor, got {got}")
    shape = tuple(clips[0].shape)
    for i, c in enumerate(clips):
        if tuple(c.shape) != shape:
            raise ValueError(f"{name}[{i}]: every clip must have the shape of clips[0] {shape}, got {tuple(c.shape)}")
    return shape


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    return mode


def spatial_grid(clips: Sequence[Tensor]) -> Tensor:
    """``n * n`` clips ``(C, T, H, W)`` tiled row by row into one ``(C, T, n H, n W)`` clip.

    Example:
        >>> spatial_grid([torch.zeros(3, 8, 4, 4)] * 4).shape
        torch.Size([3, 8, 8, 8])
    """
    _check_clips(clips)
    n = int(round(len(clips) ** 0.5))
    if n * n != len(clips):
        raise ValueError(f"clips: a spatial grid needs a square number of clips (4, 9, ...), got {len(clips)}")
    rows = [torch.cat(list(clips[r * n:(r + 1) * n]), dim=3) for r in range(n)]
    return torch.cat(rows, dim=2)


def temporal_grid(clips: Sequence[Tensor]) -> Tensor:
    """Clips ``(C, T, H, W)`` one after another: ``(C, n T, H, W)``."""
    _check_clips(clips)
    return torch.cat(list(clips), dim=1)


def cell_mask(size: Sequence[int], cells: int, cell: int, mode: str) -> Tensor:
    """Boolean ``(T, H, W)`` mask of cell ``cell`` of a grid of ``cells`` cells on a map of ``size``.

    Cell boundaries sit at ``floor(k * L / n)`` along each tiled axis of length ``L``, so a map of
    another resolution than the grid input (e.g. a layer's) is split at the same fractions.
    """
    _check_mode(mode)
    T, H, W = (int(s) for s in size)
    mask = torch.zeros(T, H, W, dtype=torch.bool)
    if not 0 <= cell < cells:
        raise ValueError(f"cell: expected 0 <= cell < {cells}, got {cell}")
    if mode == "temporal":
        mask[cell * T // cells:(cell + 1) * T // cells] = True
        return mask
    n = int(round(cells ** 0.5))
    if n * n != cells:
        raise ValueError(f"cells: a spatial grid has a square number of cells, got {cells}")
    r, c = divmod(cell, n)
    mask[:, r * H // n:(r + 1) * H // n, c * W // n:(c + 1) * W // n] = True
    return mask


def grid_scores(maps: Tensor, cells: int, target_cells: Sequence[int], mode: str) -> Tuple[Tensor, Tensor]:
    """Share of positive attribution and (tie-fair) pointing in each sample's target cell.

    Args:
        maps: ``(N, 1, T, H, W)`` or ``(N, T, H, W)``; any resolution (see :func:`cell_mask`).
        cells: number of cells of the grid.
        target_cells: ``N`` cell indices.
        mode: ``"spatial"`` or ``"temporal"``.

    Returns:
        ``(share, pointing)``, each ``(N,)`` float in ``[0, 1]``.
    """
    if not isinstance(maps, Tensor) or maps.dim() not in (4, 5):
        got = tuple(maps.shape) if isinstance(maps, Tensor) else type(maps).__name__
        raise ValueError(f"maps: expected (N, 1, T, H, W) or (N, T, H, W), got {got}")
    m = maps[:, 0] if maps.dim() == 5 else maps
    if m.shape[0] != len(target_cells):
        raise ValueError(f"target_cells: expected {m.shape[0]} cells (one per map), got {len(target_cells)}")
    m = m.detach().float()
    if not bool(torch.isfinite(m).all()):
        raise ValueError("maps: expected finite values, got NaN or inf")
    shares, points = [], []
    for i, cell in enumerate(target_cells):
        inside = cell_mask(m.shape[1:], cells, int(cell), mode).to(m.device)
        pos = m[i].clamp(min=0)
        total = pos.sum()
        shares.append(pos[inside].sum() / total if total > 0 else total.new_zeros(()))
        top = m[i] == m[i].max()
        points.append((top & inside).sum().float() / top.sum() if m[i].max() > 0 else total.new_zeros(()))
    return torch.stack(shares).cpu(), torch.stack(points).cpu()


def random_maps(seed: int = 0) -> AttributeFn:
    """A control: uniform noise maps (chance level), the same for a given seed and input shape."""
    def fn(x: Tensor, targets: List[int]) -> Tensor:
        g = torch.Generator().manual_seed(seed + len(targets))
        return torch.rand((x.shape[0], 1, *x.shape[2:]), generator=g).to(x.device)
    return fn


def uniform_maps(x: Tensor, targets: List[int]) -> Tensor:
    """A control: a constant map (share and pointing ``1 / cells``)."""
    return torch.ones((x.shape[0], 1, *x.shape[2:]), device=x.device)


@dataclass
class Grid:
    """One grid: its input ``(C, T', H', W')``, the clip index in each cell, and the targets kept."""

    clip: Tensor
    members: Tuple[int, ...]
    classes: Tuple[int, ...]
    kept_cells: Tuple[int, ...] = ()


@dataclass
class GridResult:
    """Scores of one method: per kept (grid, target) pair, and their means."""

    name: str
    share: Tensor
    pointing: Tensor
    grids: int
    targets: int
    cells: int

    @property
    def mean_share(self) -> float:
        return float(self.share.mean()) if self.share.numel() else float("nan")

    @property
    def mean_pointing(self) -> float:
        return float(self.pointing.mean()) if self.pointing.numel() else float("nan")

    def as_dict(self) -> Dict[str, float]:
        return {"share": self.mean_share, "pointing": self.mean_pointing, "grids": self.grids,
                "targets": self.targets, "chance": 1.0 / self.cells}


@dataclass
class GridPointingGame:
    """The grid game over ``model`` and real clips of known classes.

    Args:
        model: ``(N, C, T, H, W) -> (N, classes)``; for spatial grids with ``cells_at="native"`` it
            must accept ``n`` times the clips' height and width (fully convolutional models).
        clips: preprocessed clips ``(C, T, H, W)``, all of one shape, on the model's device.
        labels: the class of each clip.
        n: cells per side (spatial: ``n x n`` cells; temporal: ``n`` clips in a row).
        mode: ``"spatial"`` or ``"temporal"``.
        top_k: keep a target while the grid's prediction ranks it within the top ``top_k``.
        batch_size: targets per attribution call.
        cells_at: ``"native"`` (each clip at its own size: an ``n`` times larger input, for fully
            convolutional models) or ``"downscaled"`` (each clip shrunk ``n`` times in space, bilinear
            with antialiasing, so the grid has one clip's size: for models with a fixed input size).

    Example:
        >>> game = GridPointingGame(i3d, clips, labels, n=2, mode="spatial")
        >>> cam = GlobalLocal3DCam(i3d, default_layers(i3d))
        >>> res = game.evaluate(lambda x, t: cam.attribute(x, target=t))
        >>> res["method"].mean_share, res["method"].mean_pointing
    """

    model: nn.Module
    clips: Sequence[Tensor]
    labels: Sequence[int]
    n: int = 2
    mode: str = "spatial"
    top_k: int = 5
    batch_size: int = 4
    progress: bool = True
    cells_at: str = "native"
    correct: List[int] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        _check_clips(self.clips)
        _check_mode(self.mode)
        if len(self.labels) != len(self.clips):
            raise ValueError(f"labels: expected one class per clip ({len(self.clips)}), got {len(self.labels)}")
        for name in ("n", "top_k", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if self.n < 2:
            raise ValueError(f"n: a grid needs at least 2 cells per side, got {self.n}")
        if self.cells_at not in ("native", "downscaled"):
            raise ValueError(f"cells_at: expected 'native' or 'downscaled', got {self.cells_at!r}")
        with torch.no_grad():
            pred = [int(self.model(c.unsqueeze(0)).argmax()) for c in self.clips]
        self.correct = [i for i, (p, y) in enumerate(zip(pred, self.labels)) if p == int(y)]

    @property
    def cells(self) -> int:
        return self.n * self.n if self.mode == "spatial" else self.n

    def grids(self, count: Optional[int] = None, seed: int = 0) -> List[Grid]:
        """Grids of ``cells`` correctly named clips of distinct classes, targets filtered by ``top_k``.

        Every combination of the correct clips is used (``count`` of them, drawn with ``seed``,
        when given); the ``i``-th grid's clips are rotated by ``i`` so each class visits every cell.
        """
        combos = [c for c in itertools.combinations(self.correct, self.cells)
                  if len({int(self.labels[i]) for i in c}) == self.cells]
        if count is not None and count < len(combos):
            combos = random.Random(seed).sample(combos, count)
        build = spatial_grid if self.mode == "spatial" else temporal_grid
        out = []
        for g, combo in enumerate(combos):
            k = g % self.cells
            members = tuple(combo[k:] + combo[:k])
            clip = build([self._cell(self.clips[i]) for i in members])
            classes = tuple(int(self.labels[i]) for i in members)
            with torch.no_grad():
                logits = self.model(clip.unsqueeze(0))[0]
            top = set(logits.topk(min(self.top_k, logits.numel())).indices.tolist())
            kept = tuple(i for i, c in enumerate(classes) if c in top)
            out.append(Grid(clip, members, classes, kept))
        return out

    def _cell(self, clip: Tensor) -> Tensor:
        if self.cells_at == "native" or self.mode == "temporal":
            return clip
        h, w = clip.shape[-2:]
        size = (max(1, h // self.n), max(1, w // self.n))
        return F.interpolate(clip, size=size, mode="bilinear", align_corners=False, antialias=True)

    def evaluate(self, methods: Union[AttributeFn, Mapping[str, AttributeFn]], grids: Optional[List[Grid]] = None,
                 *, controls: bool = True) -> Dict[str, GridResult]:
        """Score every method on every kept (grid, target) pair.

        Args:
            methods: ``fn(x (B, C, T, H, W), targets [B ints]) -> maps (B, 1, T', H', W')`` or a
                dict of such maps (several fusions of one pass), or a dict name -> fn.
            grids: from :meth:`grids` (default: all of them).
            controls: add the ``random`` and ``uniform`` controls.

        Returns:
            name -> :class:`GridResult`.
        """
        if callable(methods):
            methods = {"method": methods}
        methods = dict(methods)
        if controls:
            methods.update({"random": random_maps(0), "uniform": uniform_maps})
        grids = self.grids() if grids is None else grids
        scores: Dict[str, List[Tuple[Tensor, Tensor]]] = {}
        pairs = [(g, cell) for g in grids for cell in g.kept_cells]
        chunks = []
        for g in grids:
            for s in range(0, len(g.kept_cells), self.batch_size):
                chunks.append((g, list(g.kept_cells[s:s + self.batch_size])))
        for g, cells in progress_bar(chunks, f"{self.mode} grids", unit="batch", enabled=self.progress):
            x = g.clip.unsqueeze(0).expand(len(cells), *g.clip.shape).contiguous()
            targets = [g.classes[c] for c in cells]
            for name, fn in methods.items():
                out = fn(x, targets)
                named = out.items() if isinstance(out, Mapping) else [(name, out)]
                for key, maps in named:
                    scores.setdefault(key, []).append(grid_scores(maps, self.cells, cells, self.mode))
        return {
            key: GridResult(key, torch.cat([s for s, _ in v]), torch.cat([p for _, p in v]),
                            sum(1 for g in grids if g.kept_cells), len(pairs), self.cells)
            for key, v in scores.items()
        }


def class_sensitivity(attribute_fn: AttributeFn, inputs: Tensor, class_a: int, class_b: int) -> Tensor:
    """Pearson correlation ``(N,)`` between the maps of ``inputs`` for two classes.

    A map that does not change with the class asked for (correlation near 1) shows where the
    model looks, not the evidence for a class. A cheap check for tests:
    ``assert (class_sensitivity(fn, x, 0, 1) < 0.99).all()``.
    """
    if class_a == class_b:
        raise ValueError(f"class_b: expected a class other than class_a={class_a}, got {class_b}")
    n = inputs.shape[0]
    a = attribute_fn(inputs, [int(class_a)] * n).reshape(n, -1).double()
    b = attribute_fn(inputs, [int(class_b)] * n).reshape(n, -1).double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    denom = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(denom > 0, (a * b).sum(1) / denom.clamp(min=1e-300), torch.ones_like(denom)).float()
