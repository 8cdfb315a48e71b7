"""The default small model's recipe: test accuracy and training time, per SyntheticActions difficulty.

Trains :class:`captum_3dcam.models.Small3DCNN` from scratch with
:data:`captum_3dcam.models.SMALL_MODEL_RECIPE` (the recipe ``captum-3dcam demo`` and
``load_or_train_small_model()`` use) on each difficulty, and prints the final epoch's clip-wise
and video-wise test accuracy (100 test videos x 2 clips) and the wall-clock training time. The
README's accuracy figures for the small model come from here.

Usage::

    python benchmarks/small_model.py --threads 1                      # easy, medium, hard; writes RESULTS.md
    python benchmarks/small_model.py --difficulty easy --no-write
"""
import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from _results import write_results_block  # benchmarks/_results.py

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from captum_3dcam.models import SMALL_MODEL_RECIPE
from captum_3dcam.training.small_recipe import train_small_model  # noqa: E402

RESULTS_BLOCK = "small-model"


def run(difficulties, seed: int, progress: bool):
    rows = []
    for difficulty in difficulties:
        with tempfile.TemporaryDirectory() as tmp:  # a fresh checkpoint: the training is timed
            start = time.perf_counter()
            _, history = train_small_model(Path(tmp) / "small.pt", seed=seed, progress=progress,
                                           difficulty=difficulty)
            seconds = time.perf_counter() - start
        last = history[-1]
        rows.append({"difficulty": difficulty, "clip": last["test_clip_accuracy"],
                     "video": last["test_video_accuracy"], "seconds": seconds})
        print(f"{difficulty}: clip accuracy {last['test_clip_accuracy']:.3f}, video accuracy "
              f"{last['test_video_accuracy']:.3f}, {seconds:.0f} s", flush=True)
    return rows


def format_block(rows, seed, command, load_before, load_after) -> str:
    r = SMALL_MODEL_RECIPE
    lines = [
        "## The default small model (Small3DCNN on SyntheticActions)",
        "",
        f"Command: `{command}` — {platform.machine()} CPU, {os.cpu_count()} cores visible, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s); load average before/after {load_before:.1f} / {load_after:.1f}.",
        "",
        f"Recipe `SMALL_MODEL_RECIPE`: widths {tuple(r['widths'])}, {r['train_videos']} training videos "
        f"({r['clips_per_video']} clip each), {r['epochs']} epochs, {r['optimizer']} lr {r['lr']} "
        f"(x{r['gamma']} after epoch {r['step_size']}), batch {r['batch_size']}; seed {seed}. Test: "
        f"{r['test_videos']} videos x {r['test_clips_per_video']} clips of the same difficulty; chance = 0.20.",
        "",
        "| difficulty | clip accuracy | video accuracy | training time (s) |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(f"| {row['difficulty']} | {row['clip']:.3f} | {row['video']:.3f} | {row['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--difficulty", nargs="+", default=["easy", "medium", "hard"],
                   choices=("easy", "medium", "hard"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--results", default=str(HERE / "RESULTS.md"))
    p.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    rows = run(args.difficulty, args.seed, progress=not args.no_progress)
    load_after = os.getloadavg()[0]
    command = ("python benchmarks/small_model.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    body = format_block(rows, args.seed, command, load_before, load_after)
    print(body)
    if not args.no_write:
        write_results_block(Path(args.results), body, RESULTS_BLOCK)
        print(f"wrote block '{RESULTS_BLOCK}' of {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
