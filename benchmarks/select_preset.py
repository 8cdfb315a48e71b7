"""Choose the LOCALIZE preset by measurement on VALIDATION data only (never the test split).

Selection v2 (the current presets), in this order:

    python benchmarks/grid_game.py                                           # I3D grids -> runs/grid_game.json
    python benchmarks/select_preset.py --archs small --seeds 0 --num-videos 30 --json runs/sel_small.json --no-write &
    python benchmarks/select_preset.py --archs resnet --seeds 0 --num-videos 30 --json runs/sel_resnet.json --no-write
    python benchmarks/select_preset.py --from-json runs/sel_small.json runs/sel_resnet.json \
        --grid-json runs/grid_game.json --no-write          # stage 1: prints the ROAD command of the shortlist
    python benchmarks/faithfulness.py ... --json runs/road_validation.json   # that command (stage 2's ROAD)
    python benchmarks/select_preset.py --from-json runs/sel_small.json runs/sel_resnet.json \
        --grid-json runs/grid_game.json --road-json runs/road_validation.json   # the choice; writes the block

The rule of v2 is :mod:`_criteria`'s docstring. v1 (synthetic only) is what runs without ``--grid-json``:

    python benchmarks/select_preset.py                 # the procedure, writes its block of RESULTS.md
    python benchmarks/select_preset.py --seeds 0 --num-videos 20 --no-write   # smoke run
    python benchmarks/select_preset.py --archs small --json runs/sel_small.json --no-write &  # in parallel:
    python benchmarks/select_preset.py --archs resnet --json runs/sel_resnet.json --no-write
    python benchmarks/select_preset.py --from-json runs/sel_small.json runs/sel_resnet.json   # then merge

The procedure:

1. Validation data: the ``"val"`` split of :class:`~captum_3dcam.datasets.SyntheticActions`
   (videos that neither training nor the ``"test"`` split ever see) for the Small3DCNN of every
   seed in ``--seeds`` (trained once with the library's recipe, cached in ``--checkpoint-dir``),
   in five variants that move what a box threshold depends on: the actor's size (the
   ``radius`` knob: small, default, big, bigger; boxes cover 1.5 % to 24 % of the frame) and the
   frame resolution (96 x 96 instead of 64 x 64); and a sixth, ``deep-net pedestal``: the default
   videos with every frame of each candidate's final map lifted by the constant that gives it the
   per-frame ``min / max`` that the same map configuration has with the pretrained I3D on
   validation clips (:func:`pedestal_ratios`). The small validation networks' summed maps sit near
   zero away from the actor; a deep network's do not (their layers' receptive fields cover the
   frame), and a box rule that only works on maps that touch zero should lose. The real clips are
   test data: they are not looked at here.
2. Target: the model's predicted class. One forward and one backward pass per batch capture the
   activation and gradient of every layer (what ``GlobalLocal3DCam.attribute`` computes); every
   candidate below is computed from those same tensors, so all candidates see identical inputs.
3. Candidates: ``layer_rule`` x ``normalize_layers`` x ``aggregation`` x layer subset (all layers,
   the deeper half, the last) x box threshold x box region x ``relative_to`` (threshold a fraction
   of each frame's maximum, or of its range ``max - min``).
4. Sanity (Adebayo et al. 2018): for every map configuration, the Spearman rank correlation
   between its maps of the trained model and of the same model with every layer re-initialized
   (:func:`captum_3dcam.metrics.sanity.cascading_randomization`, last step), on 8 validation clips.
5. Score of a candidate: ``(IoU>=0.5 accuracy + pointing game) / 2``, averaged over seeds, then
   over the variants (a threshold that only fits one object size loses). The best score wins;
   among candidates within 0.005 of it, the one closest to the paper's configuration (fewest
   settings changed) is kept: that is ``LOCALIZE``. ``STRICT`` is chosen the same way among the
   candidates whose sanity correlation is below 0.3. The paper's configuration is reported beside.
"""
import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import _criteria  # noqa: E402
from _configs import RULES, cached_maps, config_kwargs, config_label, config_map, map_configs  # noqa: E402
from _results import write_results_block  # noqa: E402
from _validation_models import load_model  # noqa: E402

from captum_3dcam import GlobalLocal3DCam  # noqa: E402
from captum_3dcam.localization.boxes import attribution_to_boxes  # noqa: E402
from captum_3dcam.metrics.localization import LocalizationMeter, box_iou, pointing_game  # noqa: E402

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)  # 0.2, 0.8 and "otsu" never came near the top in v1
PEDESTAL = "deep-net pedestal"  # the default variant, each frame lifted to the min/max ratio I3D shows
VARIANTS = {
    "default": {},
    "small actors": {"radius": (0.05, 0.07)},
    "big actors": {"radius": (0.15, 0.22)},
    "bigger actors": {"radius": (0.2, 0.28)},
    "96x96 frames": {"size": (96, 96)},
    PEDESTAL: {},
}
REGIONS = ("largest", "union")  # "peak" never came near the top in v1
RELATIVES = ("max", "range")  # box threshold relative to each frame's maximum, or to its range
PAPER = ("3dcam", "max", "sum", "all", None, 0.5, "largest", "max")
METRICS = ("pointing", "iou@0.5", "mean_iou")


def sanity_of(model, layers, clips, configs) -> Dict[tuple, float]:
    """Spearman correlation, trained vs fully re-initialized model, per map configuration.

    One :func:`~captum_3dcam.metrics.sanity.cascading_randomization` serves every configuration: its
    ``explain`` captures the layers once per step and returns the maps of all configurations stacked
    along N (``(configs * N, 1, T, H, W)``), so each step costs one forward and backward pass."""
    from captum_3dcam.metrics.sanity import cascading_randomization

    names = {id(m): n for n, m in model.named_modules()}
    layer_names = [names[id(m)] for m in layers]

    def explain(m, x, t):
        mods = dict(m.named_modules())
        cam = GlobalLocal3DCam(m, [mods[n] for n in layer_names])
        acts, grads = cam._activations_and_gradients((x,), t, None, False, None)
        maps_of = cached_maps(acts, grads, tuple(x.shape[2:]))
        return torch.cat([config_map(maps_of, cfg, len(acts)) for cfg in configs])

    last = cascading_randomization(model, explain, clips)[-1].spearman.view(len(configs), clips.shape[0])
    return {cfg: float(last[i].mean()) for i, cfg in enumerate(configs)}


def capture(model, layers, clips: torch.Tensor):
    """``(A_k, G_k)`` of every layer and the predicted classes, from one forward and backward."""
    cam = GlobalLocal3DCam(model, layers)
    with torch.no_grad():
        predicted = model(clips).argmax(1)
    acts, grads = cam._activations_and_gradients((clips,), predicted, None, False, None)
    return acts, grads, predicted


def lift(final: torch.Tensor, ratio: float) -> torch.Tensor:
    """Each frame plus the constant that makes its ``min / max`` equal ``ratio`` (never lowered)."""
    lo = final.amin(dim=(-2, -1), keepdim=True)
    hi = final.amax(dim=(-2, -1), keepdim=True)
    c = ((ratio * hi - lo) / (1.0 - ratio)).clamp(min=0)
    return final + torch.where(hi > 0, c, torch.zeros_like(c))


def pedestal_ratios(configs, num_clips: int = 8, seed: int = 0, cache: Optional[Path] = None) -> Dict[tuple, float]:
    """Mean per-frame ``min / max`` of every map configuration's final map with the pretrained I3D
    (``i3d_kinetics400``, 9 Mixed layers) on ``num_clips`` validation clips at 224 x 224: how far
    above zero a deep network lifts the summed maps. Validation clips only, never a real clip.
    ``cache``: a JSON file read if present (so parallel runs measure it once), else written."""
    if cache is not None and Path(cache).is_file():
        return {tuple(k): r for k, r in json.loads(Path(cache).read_text())}
    from captum_3dcam.datasets import SyntheticActions
    from captum_3dcam.models import default_layers
    from captum_3dcam.models.i3d import i3d_kinetics400

    model = i3d_kinetics400().eval()
    data = SyntheticActions(num_clips, "val", seed=seed, size=(224, 224))
    clips = torch.stack([data[i][0] for i in range(num_clips)])
    acts, grads, _ = capture(model, default_layers(model), clips)
    maps_of = cached_maps(acts, grads, tuple(clips.shape[2:]))
    out = {}
    for cfg in configs:
        final = config_map(maps_of, cfg, len(acts))
        hi = final.amax(dim=(-2, -1))
        ratio = torch.where(hi > 0, final.amin(dim=(-2, -1)) / hi.clamp_min(1e-30), torch.zeros_like(hi))
        out[cfg] = float(ratio.clamp(0, 0.99).mean())
    if cache is not None:
        Path(cache).write_text(json.dumps([[list(k), r] for k, r in out.items()]))
    return out


def run_grid(model, layers, batches, *, configs, thresholds, regions, pedestal: Optional[Dict[tuple, float]] = None,
             relatives=RELATIVES):
    meters: Dict[tuple, LocalizationMeter] = {}
    for clips, gt in batches:
        acts, grads, _ = capture(model, layers, clips)
        maps_of = cached_maps(acts, grads, tuple(clips.shape[2:]))
        for cfg in configs:
            final = config_map(maps_of, cfg, len(acts))
            if pedestal is not None:
                final = lift(final, pedestal[cfg])
            hits = pointing_game(final, gt)
            for thr, region, rel in itertools.product(thresholds, regions, relatives):
                boxes = attribution_to_boxes(final, thr, region=region, relative_to=rel)
                meters.setdefault((*cfg, thr, region, rel), LocalizationMeter()).add(hits, box_iou(boxes, gt))
    return {k: m.compute() for k, m in meters.items()}


def synthetic_batches(model, seed: int, num_videos: int, split: str, batch_size: int = 20, **knobs):
    from captum_3dcam.datasets import SyntheticActions

    data = SyntheticActions(num_videos, split, seed=seed, **knobs)
    items = [data[i] for i in range(len(data))]
    for s in range(0, len(items), batch_size):
        chunk = items[s : s + batch_size]
        yield torch.stack([c for c, _, _ in chunk]), torch.stack([b for _, b, _ in chunk])


def score(metrics: Dict[str, float]) -> float:
    return 0.5 * (metrics["iou@0.5"] + metrics["pointing"])


def label(key) -> str:
    rule, norm, agg, sub, gate, thr, region, rel = key
    return f"{rule} / {norm or 'none'} / {agg} / {sub}{' x gate ' + gate if gate else ''} / {thr} / {region} / {rel}"


def measure(args):
    """``(by_variant, spearman, models)``: per variant ``{candidate: metrics}`` (mean over models) and
    ``{map configuration: Spearman}`` (mean over models), from the models of ``--archs`` x ``--seeds``."""
    t0 = time.time()
    per_variant: Dict[str, List[Dict]] = {v: [] for v in args.variants}
    sanity: List[Dict[tuple, float]] = []
    configs = map_configs()
    pedestal = (pedestal_ratios(configs, cache=Path(args.checkpoint_dir) / "i3d_pedestal_v2.json")
                if PEDESTAL in args.variants else None)
    if pedestal is not None:
        print(f"pedestal ratios of I3D measured, {time.time() - t0:.0f} s", flush=True)
    for arch, seed in itertools.product(args.archs, args.seeds):
        model, layers = load_model(arch, seed, Path(args.checkpoint_dir))
        for variant in args.variants:
            batches = synthetic_batches(model, seed, args.num_videos, "val", **VARIANTS[variant])
            res = run_grid(model, layers, batches, configs=configs, thresholds=THRESHOLDS, regions=REGIONS,
                           pedestal=pedestal if variant == PEDESTAL else None)
            per_variant[variant].append(res)
            print(f"[{arch} seed {seed}, {variant}] {len(res)} candidates, {time.time() - t0:.0f} s", flush=True)
        clips, _ = next(synthetic_batches(model, seed, 8, "val", batch_size=8))
        sanity.append(sanity_of(model, layers, clips, configs))
        print(f"[{arch} seed {seed}] sanity, {time.time() - t0:.0f} s", flush=True)
    spearman = {k: sum(s[k] for s in sanity) / len(sanity) for k in sanity[0]}
    keys = list(per_variant[args.variants[0]][0])
    by_variant = {v: {k: {m: sum(r[k][m] for r in runs) / len(runs) for m in METRICS} for k in keys}
                  for v, runs in per_variant.items()}
    return by_variant, spearman, len(sanity), pedestal


def save_measurements(path, by_variant, spearman, models: int, meta: Dict, pedestal=None) -> None:
    """Every number of :func:`measure`, keys as lists, for ``--from-json``."""
    Path(path).write_text(json.dumps({
        "meta": meta, "models": models, "pedestal": [[list(k), r] for k, r in (pedestal or {}).items()],
        "by_variant": [[v, list(k), m] for v, d in by_variant.items() for k, m in d.items()],
        "sanity": [[list(k), s] for k, s in spearman.items()]}, indent=0))


def merge_measurements(paths: Sequence[str]):
    """Runs of :func:`save_measurements` merged as one run over all their models (weighted by count)."""
    by_variant: Dict[str, Dict[tuple, Dict[str, float]]] = {}
    spearman: Dict[tuple, float] = {}
    metas, total, pedestal = [], 0, {}
    for path in paths:
        data = json.loads(Path(path).read_text())
        pedestal.update({tuple(k): r for k, r in data.get("pedestal", [])})
        n = data["models"]
        total += n
        metas.append(data["meta"])
        for v, k, m in data["by_variant"]:
            slot = by_variant.setdefault(v, {}).setdefault(tuple(k), {x: 0.0 for x in METRICS})
            for x in METRICS:
                slot[x] += n * m[x]
        for k, s in data["sanity"]:
            spearman[tuple(k)] = spearman.get(tuple(k), 0.0) + n * s
    for d in by_variant.values():
        for m in d.values():
            for x in METRICS:
                m[x] /= total
    return by_variant, {k: s / total for k, s in spearman.items()}, total, metas, pedestal


def report(by_variant, spearman, *, description: str, top: int, pedestal=None) -> Tuple[str, tuple, Optional[tuple]]:
    """The block of RESULTS.md, LOCALIZE's and STRICT's candidate keys."""
    variants = list(by_variant)
    keys = list(by_variant[variants[0]])
    mean = {k: {m: sum(by_variant[v][k][m] for v in variants) / len(variants) for m in METRICS} for k in keys}
    ranked = sorted(keys, key=lambda k: -score(mean[k]))
    best = score(mean[ranked[0]])
    near = [k for k in ranked if score(mean[k]) >= best - 0.005]
    closest = lambda k: (sum(a != b for a, b in zip(k, PAPER)), ranked.index(k))  # noqa: E731
    chosen = min(near, key=closest)
    passing = [k for k in ranked if spearman[k[:5]] < 0.3]
    strict = None
    if passing:
        strict_best = score(mean[passing[0]])
        strict = min([k for k in passing if score(mean[k]) >= strict_best - 0.005], key=closest)
    lines = [
        "## Choosing the LOCALIZE preset (validation data only)",
        "",
        description,
        "",
        f"Score = (IoU>=0.5 + pointing) / 2, mean over models, then over variants (per-variant scores in the last "
        f"columns); target = predicted class. Candidates: {len(keys)} (rule / normalize_layers / aggregation / "
        "layers / threshold / region / relative_to).",
        "",
        "| rank | candidate | score | pointing | IoU>=0.5 | mean IoU | sanity | " + " | ".join(variants) + " |",
        "|---|---|---|---|---|---|---|" + "---|" * len(variants),
    ]
    shown = ranked[:top]
    for extra in (chosen, strict, PAPER):
        if extra is not None and extra not in shown and extra in mean:
            shown.append(extra)
    for k in shown:
        tag = {chosen: " **(LOCALIZE)**", strict: " **(STRICT)**", PAPER: " (PAPER)"}.get(k, "")
        m = mean[k]
        per = " | ".join(f"{score(by_variant[v][k]):.3f}" for v in variants)
        lines.append(f"| {ranked.index(k) + 1} | {label(k)}{tag} | {score(m):.3f} | {m['pointing']:.3f} | "
                     f"{m['iou@0.5']:.3f} | {m['mean_iou']:.3f} | {spearman[k[:5]]:.2f} | {per} |")
    lines += ["", f"LOCALIZE: `{label(chosen)}` (of the candidates within 0.005 of the best score {best:.3f}, "
              "the one with the fewest settings changed from the paper's).",
              f"STRICT: `{label(strict) if strict else 'none passes'}` (the same rule among the candidates whose "
              "maps decorrelate from the trained model's once every layer is re-initialized: sanity < 0.3).", "",
              "Best candidate per rule (its best normalization / layers / threshold / region):", "",
              "| rule | best candidate | score | pointing | IoU>=0.5 | sanity |", "|---|---|---|---|---|---|"]
    for rule in RULES:
        of_rule = [k for k in ranked if k[0] == rule]
        if of_rule:
            k = of_rule[0]
            lines.append(f"| {rule} | {label(k)} | {score(mean[k]):.3f} | {mean[k]['pointing']:.3f} | "
                         f"{mean[k]['iou@0.5']:.3f} | {spearman[k[:5]]:.2f} |")
    pedestal = pedestal or {}
    lines += ["", "Sanity per map configuration (Spearman, trained vs fully re-initialized, mean over models) and its "
              f"pedestal (mean per-frame min / max of the final map with the pretrained I3D on 8 validation clips at "
              f"224 x 224: the lift applied in the `{PEDESTAL}` variant):", "",
              "| rule / normalize / aggregation / layers | sanity | I3D pedestal | best score |", "|---|---|---|---|"]
    for cfg in sorted(spearman, key=lambda c: spearman[c]):
        best_of = max(score(mean[k]) for k in keys if k[:5] == cfg)
        ped = f"{pedestal[cfg]:.2f}" if cfg in pedestal else "-"
        lines.append(f"| {' / '.join(str(v or 'none') for v in cfg)} | {spearman[cfg]:.2f} | {ped} | {best_of:.3f} |")
    return "\n".join(lines), chosen, strict


def i3d_sanity(configs, data_dir: Path, frames: int = 16) -> Dict[tuple, float]:
    """Spearman correlation of each configuration's I3D maps, trained vs every layer re-initialized, on the
    three real validation clips (centre ``frames`` frames; target: the trained model's prediction)."""
    import copy

    from captum_3dcam.models import default_layers
    from captum_3dcam.models.i3d import i3d_kinetics400
    from captum_3dcam.video.preprocess import preprocess_i3d
    from captum_3dcam.metrics.sanity import spearman_rank_correlation
    from captum_3dcam.video.io import read_video

    model = i3d_kinetics400().eval()
    randomized = copy.deepcopy(model)
    torch.manual_seed(0)
    for m in randomized.modules():
        if m is not randomized and hasattr(m, "reset_parameters"):
            m.reset_parameters()
    out: Dict[tuple, List[float]] = {cfg: [] for cfg in configs}
    for name in ("cleaning_pool.mp4", "waxing_eyebrows.avi", "tai_chi.mp4"):
        frames_ = read_video(data_dir / "validation" / name)
        start = max(0, (frames_.shape[0] - frames) // 2)
        clip, _ = preprocess_i3d(frames_[start:start + frames])
        with torch.no_grad():
            target = model(clip).argmax(1)
        maps = []
        for net in (model, randomized):
            acts, grads = GlobalLocal3DCam(net, default_layers(net))._activations_and_gradients((clip,), target, None, False, None)
            maps.append(cached_maps(acts, grads, tuple(clip.shape[2:])))
        for cfg in configs:
            a, b = (config_map(m, cfg, 9) for m in maps)
            out[cfg].append(float(spearman_rank_correlation(a, b)[0]))
    return {cfg: sum(v) / len(v) for cfg, v in out.items()}


def real_selection(by_variant, spearman, args) -> Tuple[str, Optional[tuple], Optional[tuple]]:
    """Selection v2 (:mod:`_criteria`): the block text, the winner and its box key."""
    variants = list(by_variant)
    keys = list(by_variant[variants[0]])
    mean = {k: {m: sum(by_variant[v][k][m] for v in variants) / len(variants) for m in METRICS} for k in keys}
    grid = json.loads(Path(args.grid_json).read_text())
    _criteria.SYNTHETIC_FLOORS["pointing"] = round(2 * _criteria.synthetic_chance(VARIANTS), 3)
    used = _criteria.margin_wins(grid, args.margin)
    rows = _criteria.criteria(mean, spearman, grid, args.margin if used else 0)
    peer = mean[_criteria.PGC_GRADCAMPP]
    ranked, short, _, failed = _criteria.select(rows, peer, None, args.shortlist)
    names = {f"s{i + 1}": cfg for i, cfg in enumerate(short)}
    Path(args.checkpoint_dir, "shortlist.json").write_text(json.dumps({n: list(c) for n, c in names.items()}))
    extra = {"temporal_margin": args.margin} if used else {}
    methods = " ".join(f"--method '{n}={json.dumps({**config_kwargs(c), **extra})}'" for n, c in names.items())
    print("stage 2, ROAD on the validation clips:\n  python benchmarks/faithfulness.py --skip-protocol --protocol "
          f"road:8x32x32 --clips cleaning_pool waxing_eyebrows tai_chi {methods} --methods random {' '.join(names)} "
          "--json runs/road_validation.json --block faithfulness-validation", flush=True)
    stage2 = None
    if args.road_json:
        road = json.loads(Path(args.road_json).read_text())["methods"]
        extra_cfgs = [_criteria.PAPER_CFG, ("xgradcam", "max", "sum", "all", None), ("gradcam++", False, "sum", "all", None)]
        sanity = i3d_sanity(list(dict.fromkeys(short + extra_cfgs)), Path(args.data_dir))
        stage2 = {cfg: {"ROAD deletion": sum(road[c][n]["deletion"] for c in road) / len(road),
                        "ROAD insertion": sum(road[c][n]["insertion"] for c in road) / len(road),
                        "I3D sanity": sanity[cfg]} for n, cfg in names.items()}
    ranked, short, winner, failed = _criteria.select(rows, peer, stage2, args.shortlist)
    text, winner = _criteria.summary(rows, ranked, short, winner, failed, stage2, args.margin, used, peer)
    strict = next((c for c in ranked if rows[c]["synthetic sanity"] < 0.2 and c != winner), None)
    if strict:
        text += (f"\n\nSTRICT (v2): the best stage-1 configuration whose synthetic sanity Spearman is below 0.2 (a "
                 f"stricter bar than 0.3): `{json.dumps({**config_kwargs(strict), **extra})}`, boxes "
                 f"`{label(rows[strict]['boxes'])}`, sanity {rows[strict]['synthetic sanity']:.2f}.")
    if stage2:
        text += ("\n\nI3D sanity (Spearman, trained vs every layer re-initialized, 3 validation clips, 16 frames) of "
                 "the presets besides: " + "; ".join(f"`{config_label(c)}` {sanity[c]:.2f}" for c in extra_cfgs)
                 + " (PAPER, v1's STRICT, v1's LOCALIZE).")
    return text, winner, (rows[winner]["boxes"] if winner else None), extra


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--archs", nargs="+", default=["small", "resnet"], choices=["small", "resnet"])
    p.add_argument("--num-videos", type=int, default=60)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--checkpoint-dir", default=str(REPO / "runs"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="write every measured number here (input of --from-json)")
    p.add_argument("--from-json", nargs="+", default=None, metavar="JSON",
                   help="measure nothing: merge these --json files (e.g. one per architecture, run in parallel)")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--grid-json", default=None, help="selection v2: grid_game.py's JSON (I3D on real validation clips)")
    p.add_argument("--road-json", default=None, help="selection v2 stage 2: faithfulness.py's JSON on the validation clips")
    p.add_argument("--shortlist", type=int, default=5)
    p.add_argument("--margin", type=int, default=8, help="the temporal_margin measured by grid_game.py")
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--results", default=str(REPO / "benchmarks" / "RESULTS.md"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = f"python benchmarks/select_preset.py {' '.join(argv if argv is not None else sys.argv[1:])}".strip()
    if args.from_json:
        by_variant, spearman, models, metas, pedestal = merge_measurements(args.from_json)
        description = (f"Command: `{command}`, merging " + "; ".join(
            f"`{m['command']}` ({m['seconds']:.0f} s, torch {m['torch']}, {m['threads']} thread(s))" for m in metas)
            + f". Data: SyntheticActions `val` split (never `test`), {models} models (" +
            "; ".join(m["models"] for m in metas) + f"), {metas[0]['num_videos']} videos x 16 frames per model and "
            f"variant ({', '.join(by_variant)}).")
    else:
        t0 = time.time()
        by_variant, spearman, models, pedestal = measure(args)
        meta = {"command": command, "seconds": time.time() - t0, "torch": torch.__version__, "threads": args.threads,
                "num_videos": args.num_videos,
                "models": f"{', '.join(args.archs)} x seeds {', '.join(map(str, args.seeds))}"}
        if args.json:
            save_measurements(args.json, by_variant, spearman, models, meta, pedestal)
        description = (f"Command: `{command}` ({meta['seconds']:.0f} s, torch {torch.__version__}, {args.threads} "
                       f"thread(s)). Data: SyntheticActions `val` split (never `test`), {models} models "
                       f"({meta['models']}), {args.num_videos} videos x 16 frames per model and variant "
                       f"({', '.join(args.variants)}).")
    text, chosen, strict = report(by_variant, spearman, description=description, top=args.top, pedestal=pedestal)
    if args.grid_json:
        real, winner, boxes, extra = real_selection(by_variant, spearman, args)
        text = (text.replace("## Choosing the LOCALIZE preset (validation data only)",
                             "## Choosing the LOCALIZE preset (validation data only): selection v2")
                .replace(" **(LOCALIZE)**", " **(best on synthetic alone)**")
                .replace("\nLOCALIZE: `", "\nBest on the synthetic split alone (v1's rule): `"))
        text += "\n\n### Selection v2: real validation clips with I3D, then synthetic\n\n" + real
        if winner:
            text += (f"\n\nLOCALIZE (v2): `{json.dumps({**config_kwargs(winner), **extra})}`, boxes `{label(boxes)}` (the map "
                     "configuration with the lowest stage-2 rank sum; its best box setting on the synthetic split).")
    print(text)
    if not args.no_write:
        write_results_block(Path(args.results), text, "select_preset")
    return 0


if __name__ == "__main__":
    sys.exit(main())
