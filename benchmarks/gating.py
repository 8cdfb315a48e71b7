"""Attention-gating benchmark: the paper's Tables 6-7 question on SyntheticActions, paired seeds.

    python benchmarks/gating.py                    # 5 paired seeds, ~20-30 min on 1 busy core
    python benchmarks/gating.py --jobs 2           # two seeds at a time (a quiet 2-core box)
    python benchmarks/gating.py --quick            # smoke run (~20 s), prints only
    python benchmarks/gating.py --diagnose --seeds 0 1 2     # the recipe sweep (gating-recipe)
    python benchmarks/gating.py --seeds 5 6 7 8 9 --json b.json --no-write   # more seeds, then
    python benchmarks/gating.py --from-json a.json b.json    # one table from both runs

Does a layer-wise gated classifier (:class:`captum_3dcam.models.gating.LayerwiseGatedClassifier`) beat
its baseline? For every seed, on the same rendered clips, with the same initial backbone weights
and the same batch order (``TrainConfig.seed``), it trains:

  baseline         Small3DCNN alone
  gated_last       + one gate on conv4 (the paper's "I3D (layer 11)"), trained jointly from scratch
  gated_all        + gates on conv1..conv4 (the paper's "layer 5+4+3+2+1"), jointly from scratch
  mlp_head         control for the gates' extra parameters: the baseline with its ``fc`` replaced
                   by a 2-layer MLP (ReLU) sized to gated_all's parameter count, same recipe
  gates_on_frozen  the trained baseline, frozen, + gates on conv1..conv4; only the gates train,
                   ``--extra-epochs`` more epochs (``freeze_backbone=True``)
  head_on_frozen   control for it: the same frozen baseline, the same extra epochs spent on its
                   own ``fc``

and reports test clip-wise ("frame-wise") and video-wise accuracy (Table 6's columns), mean and
sample std over seeds, the paired difference to the baseline (and to the matching control) per
seed with its mean, 2-SE interval and a paired t-test, the parameter counts and the training time.

The recipe (:data:`RECIPE`, chosen on the *validation* split with ``--diagnose``; the table it
writes is in the ``gating-recipe`` block of RESULTS.md): SyntheticActions ``easy``, 32x32 frames,
1000 training videos, Small3DCNN widths (8, 16, 32, 64), Adam lr 0.003 for 15 epochs then 0.0003
for 5 (20 epochs), batch 16. The old recipe (500 videos, 6 epochs) swung from 0.33 to 0.75: with
500 videos the network memorises the training clips (train accuracy -> 1) before it learns the
motion, and which seeds find the motion first is luck; 1000 videos and 20 epochs let every seed
converge to the same plateau (train accuracy 1.0, validation 0.88-0.90) while the task stays below
the ceiling (2000 videos: 0.95). Test: 500 new videos x 2 clips (1000 clips), so that the
test-set sampling noise of one model (binomial SE ~0.01) stays under the target spread of 0.03.
"""
import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch
from torch import nn
from torch.utils.data import Dataset

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # running the script from a checkout without installing it
    sys.path.insert(0, str(REPO))

from captum_3dcam.datasets.synthetic import SyntheticActions  # noqa: E402
from captum_3dcam.models.gating import LayerwiseGatedClassifier  # noqa: E402
from captum_3dcam.models.small import Small3DCNN  # noqa: E402
from captum_3dcam.training.accuracy import evaluate  # noqa: E402
from captum_3dcam.training.loop import TrainConfig, train  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _gating_report import FINE_TUNED, VARIANTS, render, render_diagnosis, summarize  # noqa: E402  (statistics, tables)
from _results import write_results_block  # noqa: E402  (benchmarks/_results.py)

RESULTS_BLOCK = "gating"
RECIPE_BLOCK = "gating-recipe"
ALL_LAYERS = ("conv1", "conv2", "conv3", "conv4")

#: The benchmark's recipe (see the module docstring for how it was chosen).
RECIPE = dict(difficulty="easy", size=32, train_videos=1000, test_videos=500, test_clips=2,
              widths=(8, 16, 32, 64), epochs=20, lr_drop=15, lr=0.003, batch_size=16,
              extra_epochs=5, extra_lr_drop=4)
#: ``--quick``: a smoke run of every code path, not a measurement.
QUICK = dict(train_videos=120, test_videos=40, epochs=2, lr_drop=1, extra_epochs=1,
             extra_lr_drop=1)
#: ``--diagnose``: baseline-only recipes ``(train videos, epochs, lr drop after epoch)`` scored on
#: the validation split: the old recipe, more epochs, more data, the chosen one, longer still.
DIAGNOSE = ((500, 6, 5), (500, 30, 20), (1000, 6, 5), (1000, 14, 10), (1000, 20, 15),
            (1000, 30, 25), (2000, 12, 9))


class CachedClips(Dataset):
    """The clips and labels of a dataset rendered once, with its ``video_ids``."""

    def __init__(self, dataset: SyntheticActions) -> None:
        clips, labels = [], []
        for i in range(len(dataset)):
            clip, _boxes, label = dataset[i]
            clips.append(clip)
            labels.append(int(label))
        self.clips = torch.stack(clips)
        self.labels = torch.tensor(labels)
        self.video_ids = list(dataset.video_ids)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.clips[i], self.labels[i]


class HeadOnly(nn.Module):
    """A trained Small3DCNN whose features are frozen (eval mode, no gradients); only ``fc`` trains.

    The control for ``gates_on_frozen``: the same extra epochs spent on the model's own head.
    """

    def __init__(self, model: Small3DCNN) -> None:
        super().__init__()
        self.model = model
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith("fc."))

    def train(self, mode: bool = True):
        super().train(mode)
        self.model.eval()
        self.model.fc.train(mode)
        return self

    def forward(self, x):
        return self.model(x)


def num_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def mlp_hidden(extra: int, features: int, num_classes: int) -> int:
    """Hidden width ``h`` of an MLP head ``Linear(F, h), ReLU, Linear(h, C)`` that has ``extra``
    more parameters than ``Linear(F, C)`` (rounded): ``h (F + 1 + C) + C - (F C + C) = extra``."""
    return max(1, round((extra + features * num_classes) / (features + 1 + num_classes)))


def make_model(variant: str, seed: int, num_classes: int, input_shape, widths) -> nn.Module:
    """A fresh model; every variant starts from the same backbone weights for a given seed."""
    torch.manual_seed(seed)
    backbone = Small3DCNN(num_classes=num_classes, widths=widths)
    if variant == "baseline":
        return backbone
    if variant == "mlp_head":
        gated = make_model("gated_all", seed, num_classes, input_shape, widths)
        extra = num_params(gated) - num_params(backbone)
        hidden = mlp_hidden(extra, widths[-1], num_classes)
        torch.manual_seed(10_000 + seed)
        backbone.fc = nn.Sequential(nn.Linear(widths[-1], hidden), nn.ReLU(inplace=True),
                                    nn.Linear(hidden, num_classes))
        return backbone
    layers = ["conv4"] if variant == "gated_last" else list(ALL_LAYERS)
    torch.manual_seed(10_000 + seed)
    return LayerwiseGatedClassifier(backbone, layers, num_classes, input_shape=input_shape)


def _config(r: Dict, seed: int, epochs: int, lr_drop: int) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=r["batch_size"], optimizer="adam", lr=r["lr"],
                       weight_decay=0.0, step_size=lr_drop, gamma=0.1, seed=seed, progress=False)


def _timed_train(model, data, cfg) -> Dict[str, float]:
    start = time.perf_counter()
    history = train(model, data, None, cfg)
    return {"seconds": time.perf_counter() - start, "train_loss": history[-1]["train_loss"],
            "train_accuracy": history[-1]["train_accuracy"]}


def _warm_up(data: CachedClips, num_classes: int, input_shape, widths) -> None:
    """An untimed short training, so that the first timed one does not pay the warm-up (~3 s)."""
    for variant in ("baseline", "gated_all"):
        model = make_model(variant, 0, num_classes, input_shape, widths)
        train(model, torch.utils.data.Subset(data, range(64)), None, epochs=1, batch_size=16,
              optimizer="adam", lr=1e-3, progress=False)


# ------------------------------------------------------------------ data (shared by the workers)
_DATA: Dict[str, CachedClips] = {}


def render_data(r: Dict, seed: int = 0, splits=("train", "test")) -> float:
    """Render the splits once into ``_DATA`` (a forked worker inherits them); returns seconds."""
    t0 = time.perf_counter()
    size = (r["size"], r["size"])
    if "train" in splits:
        _DATA["train"] = CachedClips(SyntheticActions(
            r["train_videos"], "train", seed=seed, size=size, difficulty=r["difficulty"]))
    for split in ("test", "val"):
        if split in splits:
            _DATA[split] = CachedClips(SyntheticActions(
                r["test_videos"], split, seed=seed, size=size, difficulty=r["difficulty"],
                clips_per_video=r["test_clips"]))
    return time.perf_counter() - t0


def run_seed(task) -> Dict[str, Dict[str, float]]:
    """Every variant for one seed (one worker process): ``{variant: row}``."""
    r, seed, variants, eval_split = task
    torch.set_num_threads(r["threads"])
    train_set, test_set = _DATA["train"], _DATA[eval_split]
    input_shape = tuple(train_set.clips.shape[1:])
    num_classes = int(train_set.labels.max()) + 1
    full = _config(r, seed, r["epochs"], r["lr_drop"])
    extra = _config(r, seed, r["extra_epochs"], r["extra_lr_drop"])
    _warm_up(train_set, num_classes, input_shape, r["widths"])
    rows: Dict[str, Dict[str, float]] = {}
    baseline: Optional[nn.Module] = None
    for variant in [v for v in VARIANTS if v in variants or (v == "baseline" and set(variants)
                                                             & set(FINE_TUNED))]:
        if variant in FINE_TUNED:
            frozen = copy.deepcopy(baseline)
            torch.manual_seed(10_000 + seed)
            if variant == "gates_on_frozen":
                model = LayerwiseGatedClassifier(frozen, list(ALL_LAYERS), num_classes,
                                                 input_shape=input_shape, freeze_backbone=True)
            else:
                model = HeadOnly(frozen)
            row = _timed_train(model, train_set, extra)
        else:
            model = make_model(variant, seed, num_classes, input_shape, r["widths"])
            row = _timed_train(model, train_set, full)
            if variant == "baseline":
                baseline = model
        m = evaluate(model, test_set, batch_size=100)
        row.update(clip=m["clip_accuracy"], video=m["video_accuracy"], params=num_params(model),
                   trainable=num_params(model, trainable_only=True))
        rows[variant] = row
        print(f"  seed {seed} {variant:15s} {eval_split} clip {row['clip']:.3f} video "
              f"{row['video']:.3f}  train acc {row['train_accuracy']:.3f} loss "
              f"{row['train_loss']:.3f}  {row['seconds']:.0f} s", flush=True)
    return {v: rows[v] for v in variants if v in rows}


def run_diagnosis(task):
    """One baseline per ``(train videos, epochs, lr drop)``, scored on the validation split."""
    r, seed, (videos, epochs, drop) = task
    torch.set_num_threads(r["threads"])
    train_set = _DATA["train"]
    subset = torch.utils.data.Subset(train_set, range(videos))  # the first videos, balanced
    model = make_model("baseline", seed, int(train_set.labels.max()) + 1, None, r["widths"])
    row = _timed_train(model, subset, _config(r, seed, epochs, drop))
    row.update(clip=evaluate(model, _DATA["val"], batch_size=100)["clip_accuracy"])
    print(f"  seed {seed} {videos} videos {epochs} epochs: val clip {row['clip']:.3f} train acc "
          f"{row['train_accuracy']:.3f} ({row['seconds']:.0f} s)", flush=True)
    return (videos, epochs, drop), seed, row


def _map(fn, tasks, jobs: int):
    if jobs <= 1:
        return [fn(t) for t in tasks]
    import multiprocessing as mp

    with mp.get_context("fork").Pool(jobs) as pool:  # the workers inherit _DATA
        return list(pool.imap(fn, tasks))


# ------------------------------------------------------------------ files (statistics and tables: _gating_report.py)
def _write_json(path, data) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=1, default=list))


def merge_runs(args, command: str, write: bool) -> int:
    """``--from-json``: one table from the seeds of several ``--json`` runs of the same recipe."""
    runs = [json.loads(Path(f).read_text()) for f in args.from_json]
    same = lambda run: ({k: v for k, v in run["recipe"].items() if k not in ("jobs", "threads")},
                        run["split"])  # noqa: E731
    if any(same(run) != same(runs[0]) for run in runs):
        raise SystemExit("--from-json: the runs used different recipes or splits")
    seeds = [s for run in runs for s in run["seeds"]]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"--from-json: a seed appears twice ({seeds})")
    variants = [v for v in VARIANTS if all(v in run["results"] for run in runs)]
    results = {v: [row for run in runs for row in run["results"][v]] for v in variants}
    summary = summarize(results)
    r = dict(runs[0]["recipe"])
    body = render(results, summary, r, seeds, sum(run["seconds"] for run in runs),
                  ([(run["command"], run["seconds"]) for run in runs], command),
                  runs[0]["split"], None)
    print(body)
    if args.json:
        _write_json(args.json, {"recipe": r, "command": command, "merged": args.from_json,
                                "seeds": seeds, "split": runs[0]["split"], "results": results,
                                "summary": summary})
    if write:
        write_results_block(Path(args.results), body, RESULTS_BLOCK)
        print(f"wrote block '{RESULTS_BLOCK}' of {args.results}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--quick", action="store_true", help="smoke run on tiny data (prints only)")
    p.add_argument("--diagnose", action="store_true",
                   help="baseline-only recipe sweep on the validation split (block gating-recipe)")
    p.add_argument("--split", default="test", choices=["test", "val"],
                   help="where the variants are scored (val: for choosing a recipe)")
    for key in ("train_videos", "test_videos", "test_clips", "size", "epochs", "lr_drop",
                "batch_size", "extra_epochs", "extra_lr_drop"):
        p.add_argument("--" + key.replace("_", "-"), type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--difficulty", default=None, choices=["easy", "medium", "hard"])
    p.add_argument("--widths", nargs=4, type=int, default=None)
    p.add_argument("--jobs", type=int, default=1, help="seeds trained in parallel (processes)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--json", default=None, help="also write every number to this JSON file")
    p.add_argument("--from-json", nargs="+", default=None, metavar="JSON",
                   help="train nothing: merge the seeds of runs written with --json (same "
                        "recipe) into one table")
    p.add_argument("--results", default=str(REPO / "benchmarks" / "RESULTS.md"))
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args(argv)

    r = dict(RECIPE, **(QUICK if args.quick else {}))
    for key in list(RECIPE):
        if getattr(args, key, None) is not None:
            r[key] = getattr(args, key)
    r["widths"] = tuple(r["widths"])
    r.update(jobs=args.jobs, threads=args.threads)
    if args.quick:
        args.seeds = args.seeds[:2]
    torch.set_num_threads(args.threads)
    command = "python benchmarks/gating.py" + (" " + " ".join(sys.argv[1:] if argv is None
                                                              else argv)).rstrip()
    write = not (args.no_write or args.quick)
    start = time.perf_counter()

    if args.diagnose:
        recipes = DIAGNOSE if not args.quick else ((60, 1, 1), (120, 2, 1))
        r["train_videos"] = max(v for v, _, _ in recipes)
        render_s = render_data(r, splits=("train", "val"))
        print(f"rendered {len(_DATA['train'])} training clips in {render_s:.0f} s", flush=True)
        tasks = [(r, seed, rec) for rec in recipes for seed in args.seeds]
        rows: Dict = {rec: [] for rec in recipes}
        for rec, _seed, row in _map(run_diagnosis, tasks, args.jobs):
            rows[rec].append(row)
        body = render_diagnosis(rows, r, command, time.perf_counter() - start)
        print(body)
        if args.json:
            _write_json(args.json, {"recipe": r, "command": command, "rows": [
                {"train_videos": k[0], "epochs": k[1], "lr_drop": k[2], "seeds": v}
                for k, v in rows.items()]})
        if write:
            write_results_block(Path(args.results), body, RECIPE_BLOCK)
            print(f"wrote block '{RECIPE_BLOCK}' of {args.results}")
        return 0

    if args.from_json:
        return merge_runs(args, command, write)

    render_s = render_data(r, splits=("train", args.split))
    print(f"rendered {len(_DATA['train'])} training and {len(_DATA[args.split])} {args.split} "
          f"clips in {render_s:.0f} s; {len(args.seeds)} seeds x {len(args.variants)} variants",
          flush=True)
    results: Dict[str, List[Dict]] = {v: [] for v in args.variants}
    done = 0
    for seed_rows in _map(run_seed, [(r, s, args.variants, args.split) for s in args.seeds],
                          args.jobs):
        for v, row in seed_rows.items():
            results[v].append(row)
        done += 1
        elapsed = time.perf_counter() - start
        print(f"[{done}/{len(args.seeds)} seeds, {elapsed / 60:.1f} min, about "
              f"{elapsed / done * (len(args.seeds) - done) / 60:.1f} min left]", flush=True)
    summary = summarize(results)
    seconds = time.perf_counter() - start
    body = render(results, summary, r, args.seeds, seconds, command, args.split, render_s)
    print(body)
    if args.json:
        _write_json(args.json, {"recipe": r, "command": command, "seconds": seconds,
                                "render_s": render_s, "seeds": args.seeds, "split": args.split,
                                "results": results, "summary": summary})
    if write:
        write_results_block(Path(args.results), body, RESULTS_BLOCK)
        print(f"wrote block '{RESULTS_BLOCK}' of {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
