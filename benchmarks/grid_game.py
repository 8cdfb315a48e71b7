"""The video grid pointing game with the pretrained I3D on real validation clips: is a map about the class asked for?

    python benchmarks/grid_game.py                          # spatial + temporal grids, writes block grid-game
    python benchmarks/grid_game.py --modes spatial --grids 10 --no-write     # a quick look

Clips: the six real clips of ``../shared/data`` that I3D names on its own (``validation/``: cleaning
pool, waxing eyebrows, tai chi; ``kinetics400/``: arm wrestling, abseiling; ``ucf101_24/``: the
basketball video, whose *boxes* are a test and are never read here), three 16-frame segments of
each (centred at 1/4, 2/4, 3/4 of the video), preprocessed as I3D's (short side 256, centre crop 224).
Segments I3D does not name correctly alone are dropped. Grids (:mod:`captum_3dcam.metrics.grid_game`):
``--grids`` random combinations of 4 segments of 4 distinct classes (seed 0); spatial: 2 x 2 at
native scale (448 x 448 x 16, I3D averages its logits over space); temporal: one after another
(224 x 224 x 64). A target is kept while I3D's prediction for the grid ranks it in the top 5.

Per kept (grid, target) one forward and one backward pass through I3D capture the activation and
gradient of its nine Mixed layers (what ``GlobalLocal3DCam.attribute`` computes); every candidate
map configuration below is computed from those same tensors (cached in ``--cache``). Candidates:
rule x per-layer normalization x layers (all nine, the deep half) x gate (none, or the deepest
layer's / two deepest layers' GradCAM multiplying the fused map, :func:`captum_3dcam.attr.rules.gate_fusion`),
and single layers with the GradCAM rule (what Captum's ``LayerGradCam`` computes, parity-tested in
``tests/test_attribution.py``). Temporal grids are also explained with ``temporal_margin`` (``--margins``:
the clip's end frames repeated before the pass, the maps cut back). ``pgc-style`` rows are pytorch-grad-cam's multi-layer recipe
(each layer's map min-max scaled, then averaged) emulated on the same tensors.
"""
import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, Sequence, Tuple

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _results import write_results_block  # noqa: E402

from _configs import cached_maps, config_label, config_map, map_configs  # noqa: E402

from captum_3dcam._safe_load import torch_load_weights_only  # noqa: E402
from captum_3dcam.metrics.grid_game import GridPointingGame, random_maps, uniform_maps  # noqa: E402
from captum_3dcam.attr.rules import aggregate  # noqa: E402

CLIPS = {
    "cleaning pool": "validation/cleaning_pool.mp4",
    "waxing eyebrows": "validation/waxing_eyebrows.avi",
    "tai chi": "validation/tai_chi.mp4",
    "arm wrestling": "kinetics400/arm_wrestling.mp4",
    "abseiling": "kinetics400/abseiling.mp4",
    "shooting basketball": "ucf101_24/v_Basketball_g01_c01.avi",
}


def fused_maps(acts, grads, size) -> Dict[str, torch.Tensor]:
    """Every candidate's map ``(B, 1, *size)`` from one capture (A_k, G_k of every layer)."""
    k = len(acts)
    maps_of = cached_maps(acts, grads, size)
    out = {config_label(cfg): config_map(maps_of, cfg, k) for cfg in map_configs()}
    names = ["Mixed_3b", "Mixed_3c", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f", "Mixed_5b", "Mixed_5c"]
    for i in (k - 1, k - 2, k - 3):
        out[f"Captum LayerGradCam @ {names[i]} (= gradcam rule on it)"] = torch.relu(maps_of("gradcam", False)[i])
    for rule in ("gradcam", "gradcam++", "layercam", "xgradcam"):
        out[f"pgc-style {rule} (9 layers, min-max, mean)"] = aggregate(maps_of(rule, "minmax"), "mean")
    return out


def load_clips(data_dir: Path):
    from captum_3dcam.video.preprocess import preprocess_i3d
    from captum_3dcam.video.io import read_video

    labels = [line.strip() for line in open(data_dir / "kinetics400" / "labels.txt")]
    clips, classes, names = [], [], []
    for name, rel in CLIPS.items():
        frames = read_video(data_dir / rel)
        total = frames.shape[0]
        for q in (1, 2, 3):
            start = max(0, min(total - 16, q * total // 4 - 8))
            clip, _ = preprocess_i3d(frames[start:start + 16], 16)
            clips.append(clip[0])
            classes.append(labels.index(name))
            names.append(f"{name}@{start}")
    return clips, classes, names


def peer_methods(model, layers, peers: Sequence[str]) -> Dict:
    """pytorch-grad-cam's own classes over the same layers (``--peers``; needs the torchvision venv of .ci/run)."""
    if not peers:
        return {}
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    def make(name):
        def fn(x, targets):
            with getattr(pgc, name)(model=model, target_layers=list(layers)) as cam:
                maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])
            maps = torch.as_tensor(maps, dtype=torch.float32)[:, None, ::2, ::4, ::4]
            return maps.nan_to_num(0.0, 0.0, 0.0)  # its GradCAM++ divides by 0 on some grids: no evidence there
        return fn
    return {f"pytorch-grad-cam {name} (9 layers)": make(name) for name in peers}


def run_mode(model, layers, clips, classes, mode: str, grids: int, cache: Path, margins: Sequence[int],
             peers: Sequence[str] = ()) -> Tuple[Dict, Dict]:
    """``({candidate: {share, pointing, targets, grids}}, meta)`` of one grid mode (temporal: per margin)."""
    from captum_3dcam import GlobalLocal3DCam
    from captum_3dcam.attr.padding import crop_time, pad_time

    game = GridPointingGame(model, clips, classes, n=2 if mode == "spatial" else 4, mode=mode, progress=True,
                            batch_size=4)
    chosen = game.grids(count=grids, seed=0)
    cam = GlobalLocal3DCam(model, layers)
    margins = list(margins) if mode == "temporal" else [0]

    def all_maps(x, targets):
        key = cache / f"{mode}_{hash((x.shape, float(x.sum()), float((x * x).sum()), tuple(targets), tuple(margins))) & 0xFFFFFFFF:08x}.pt"
        if key.is_file():  # our own cache, read through the safe loader like every torch file
            return torch_load_weights_only(key, what="grid cache")
        out = {}
        size = (x.shape[2] // 2, x.shape[3] // 4, x.shape[4] // 4)  # scores are fractions: a quarter of the pixels
        for m in margins:
            acts, grads = cam._activations_and_gradients((pad_time(x, m),), targets, None, False, None)
            padded = (size[0] + m, *size[1:])  # the margin at the same time scale (size = T / 2)
            suffix = f" | margin {m}" if m else ""
            for k, v in fused_maps(acts, grads, padded).items():
                out[k + suffix] = crop_time(v, m // 2, size[0]).half()
        out["control: random"] = random_maps(0)(x, targets)[:, :, ::2, ::4, ::4].half()
        out["control: uniform"] = uniform_maps(x, targets)[:, :, ::2, ::4, ::4].half()
        torch.save(out, key)
        return out

    methods = {"ours": lambda x, t: {k: v.float() for k, v in all_maps(x, t).items()}}
    methods.update(peer_methods(model, layers, peers))
    res = game.evaluate(methods, chosen, controls=False)
    meta = {"grids": len(chosen), "grids_with_targets": sum(1 for g in chosen if g.kept_cells),
            "targets": sum(len(g.kept_cells) for g in chosen), "correct_segments": len(game.correct),
            "segments": len(clips)}
    return {k: r.as_dict() for k, r in res.items()}, meta


def report(results: Dict[str, Dict], metas: Dict[str, Dict], command: str, seconds: float) -> str:
    modes = list(results)
    keys = sorted({k for m in modes for k in results[m]},
                  key=lambda k: -sum(results[m][k]["share"] for m in modes if k in results[m]) /
                  sum(1 for m in modes if k in results[m]))
    lines = ["## The grid pointing game with I3D (real validation clips)", "",
             f"Command: `{command}` ({f'{seconds / 60:.0f} min, ' if seconds else ''}torch {torch.__version__}, "
             "2-core CPU). "
             + " ".join(f"{m}: {metas[m]['grids']} grids of 4 ({metas[m]['grids_with_targets']} with a target in I3D's "
                        f"top 5), {metas[m]['targets']} (grid, target) pairs;" for m in modes)
             + f" {metas[modes[0]]['correct_segments']} of {metas[modes[0]]['segments']} segments named correctly "
             "alone. Share: positive attribution inside the target's cell (chance 0.25); pointing: the maximum "
             "inside it (ties shared). Sorted by the mean share over the modes.", "",
             "| map configuration | " + " | ".join(f"{m} share | {m} pointing" for m in modes) + " |",
             "|---|" + "---|---|" * len(modes)]
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(f"{results[m][k]['share']:.3f} | {results[m][k]['pointing']:.3f}"
                                              if k in results[m] else "- | -" for m in modes) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--modes", nargs="+", default=["spatial", "temporal"], choices=["spatial", "temporal"])
    p.add_argument("--grids", type=int, default=40)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--margins", type=int, nargs="+", default=[0, 8], help="temporal grids: temporal_margin values")
    p.add_argument("--cache", default=str(REPO / "runs" / "grid_game"))
    p.add_argument("--json", default=str(REPO / "runs" / "grid_game.json"), help="every score (input of select_preset)")
    p.add_argument("--peers", nargs="*", default=[], help="pytorch-grad-cam classes, e.g. GradCAMPlusPlus LayerCAM")
    p.add_argument("--peer-modes", nargs="+", default=["spatial"], help="grid modes the --peers run on")
    p.add_argument("--merge", default=None, help="a JSON of an earlier run: its rows are kept unless measured again")
    p.add_argument("--from-json", default=None, help="write the block from this JSON of an earlier run")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--results", default=str(REPO / "benchmarks" / "RESULTS.md"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = f"python benchmarks/grid_game.py {' '.join(argv if argv is not None else sys.argv[1:])}".strip()
    if args.from_json:  # the block from an earlier run's JSON, nothing measured
        data = json.loads(Path(args.from_json).read_text())
        text = report(data["results"], data["metas"], data["command"].replace(" --no-write", "") +
                      f"` then `python benchmarks/grid_game.py --from-json {args.from_json}", data.get("seconds", 0.0))
        print(text)
        if not args.no_write:
            write_results_block(Path(args.results), text, "grid-game")
        return 0
    from captum_3dcam.models import default_layers, i3d_kinetics400

    t0 = time.time()
    model = i3d_kinetics400().eval()
    clips, classes, _ = load_clips(Path(args.data_dir))
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    results, metas = {}, {}
    for mode in args.modes:
        results[mode], metas[mode] = run_mode(model, default_layers(model), clips, classes, mode, args.grids, cache,
                                              args.margins, args.peers if mode in args.peer_modes else ())
        print(f"[{mode}] {metas[mode]}, {time.time() - t0:.0f} s", flush=True)
    if args.merge and Path(args.merge).is_file():  # e.g. the peers measured in the torchvision venv
        old = json.loads(Path(args.merge).read_text())
        for mode, rows in old["results"].items():
            if mode in results:
                results[mode] = {**rows, **results[mode]}
            else:
                results[mode], metas[mode] = rows, old["metas"][mode]
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"results": results, "metas": metas, "command": command,
                                           "seconds": time.time() - t0}, indent=0))
    text = report(results, metas, command, time.time() - t0)
    print(text)
    if not args.no_write:
        write_results_block(Path(args.results), text, "grid-game")
    return 0


if __name__ == "__main__":
    sys.exit(main())
