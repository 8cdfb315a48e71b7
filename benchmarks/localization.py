"""Weakly-supervised localization benchmark: the paper's Tables 3, 4 and 5, reproduced by command.

    python benchmarks/localization.py                      # synthetic (3 seeds) + the real clip
    python benchmarks/localization.py --skip-real --seeds 0
    python benchmarks/localization.py --skip-synthetic
    /work/venv-peers/bin/python benchmarks/localization.py  # with the peers (torchvision, grad-cam, torchcam)

A thin script over :mod:`captum_3dcam.evaluation`: the methods (ours as data, baselines, peers),
the protocol (:func:`~captum_3dcam.evaluation.evaluate_methods`: target = the predicted class,
boxes by contour thresholding at ``threshold * frame max``, pointing game, IoU accuracy at 0.0,
0.5, 0.6 and mean IoU, Acc2) and the tables (:func:`~captum_3dcam.evaluation.render`) live
there. What is here: the data of this benchmark, the command line, and the block of
``benchmarks/RESULTS.md`` it writes.

Data:
  (a) :class:`~captum_3dcam.datasets.SyntheticActions` (exact boxes) with the trained
      :class:`~captum_3dcam.models.Small3DCNN`, one model per seed (trained once, checkpoints in
      ``runs/``), evaluated on the seed's test split;
  (b) the real UCF101 clip ``../shared/data/ucf101_24/v_Basketball_g01_c01.avi`` with its UCF101-24
      boxes, explained by I3D Kinetics-400 (target: the predicted class; Acc2 counts the frames when
      the prediction is "shooting basketball"); maps are mapped back to the 320x240 frame through
      the preprocessing geometry (:class:`~captum_3dcam.video.geometry.ClipGeometry`).

Methods: every name of :func:`~captum_3dcam.evaluation.available_methods` (see
:data:`captum_3dcam.evaluation.METHODS`); a peer whose package does not import here (pytorch-grad-cam
needs torchvision) is left out and the header says why.
"""
import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # running the script from a checkout without installing it
    sys.path.insert(0, str(REPO))
from benchmarks._results import write_results_block  # noqa: E402  (shared by every benchmark)

from captum_3dcam.evaluation import (  # noqa: E402
    available_methods,
    config_key,
    evaluate_methods,
    peer_status,
    render,
    sanity_table,
)

__all__ = ["available_methods", "evaluate_methods", "synthetic_items", "ucf_sample_items", "load_gttubes",
           "peer_status", "render", "write_results_block", "main"]

DEFAULT_SWEEP = tuple((t, "largest") for t in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, "otsu")) + ((0.5, "peak"), (0.5, "union"))
RESULTS_BLOCK = "localization"


def synthetic_items(num_videos: int, seed: int, **kwargs):
    """The test split of :class:`SyntheticActions` as ``(clip, boxes, label)`` items."""
    from captum_3dcam.datasets import SyntheticActions

    return SyntheticActions(num_videos=num_videos, split="test", seed=seed, **kwargs)


def load_gttubes(path, video: str, num_frames: int) -> torch.Tensor:
    """Per-frame boxes ``(num_frames, 4)`` of ``video`` from an act-detector ``gttubes`` pickle.

    Rows are ``(frame, x1, y1, x2, y2)`` with 1-based frames; frames without a box are NaN; a frame
    in several tubes keeps the union box (:func:`captum_3dcam.datasets.tubes_to_boxes`).

    Raises:
        FileNotFoundError, ValueError: a missing file, a malformed layout, or no such video.
        captum_3dcam._safe_load.UnsafePickleError: a pickle that asks to import anything but
            numpy arrays (nothing of it is executed).
    """
    from captum_3dcam.datasets import read_annotation_pickle, tubes_to_boxes

    data = read_annotation_pickle(path, "annotations")  # the restricted unpickler: no code from the file runs
    tubes = data.get("gttubes", data) if isinstance(data, dict) else None
    if not isinstance(tubes, dict):
        raise ValueError(f"annotations: {path}: expected a dict {{video: {{label: [tubes]}}}}")
    if video not in tubes:
        raise ValueError(f"annotations: {path} has no video {video!r}")
    return tubes_to_boxes([torch.as_tensor(t, dtype=torch.float32) for ts in tubes[video].values() for t in ts],
                          num_frames)


def ucf_sample_items(data_dir, num_frames: int = 64, start: Optional[int] = None):
    """The UCF101-24 basketball clip as one ``(clip, boxes, label, geometry)`` item for I3D.

    The window of ``num_frames`` frames starts at ``start`` or, by default, is centred on the
    ground-truth tube (clamped to the video), so every annotated frame that fits is scored. The
    label is Kinetics-400's "shooting basketball" (296).
    """
    from captum_3dcam.video.preprocess import preprocess_i3d
    from captum_3dcam.video.io import read_video

    data_dir = Path(data_dir)
    frames = read_video(data_dir / "ucf101_24" / "v_Basketball_g01_c01.avi")
    total = frames.shape[0]
    gt = load_gttubes(data_dir / "ucf101_24" / "gt_tubes_sample.pkl", "Basketball/v_Basketball_g01_c01", total)
    num_frames = min(num_frames, total)
    if start is None:
        have = torch.nonzero(~torch.isnan(gt).any(-1)).flatten()
        centre = int(have.float().mean().round()) if have.numel() else total // 2
        start = min(max(centre - num_frames // 2, 0), total - num_frames)
    clip, geometry = preprocess_i3d(frames[start : start + num_frames])
    return ([(clip[0], gt[start : start + num_frames], 296, geometry)],
            {"start": start, "num_frames": num_frames, "video_frames": total})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="benchmarks/localization.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="synthetic: one trained model per seed")
    p.add_argument("--num-videos", type=int, default=100, help="synthetic: test videos per seed")
    p.add_argument("--checkpoint-dir", default=str(REPO / "runs"), help="synthetic: where the trained models are cached")
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"), help="the shared test data")
    p.add_argument("--real-frames", type=int, default=64, help="real clip: frames fed to I3D")
    p.add_argument("--threshold", default="0.5", help="box threshold (fraction of the frame max) or 'otsu'")
    p.add_argument("--region", default="largest", choices=["largest", "peak", "union"])
    p.add_argument("--whole-windows", type=int, nargs=2, default=[64, 32], metavar=("CLIP_LEN", "STRIDE"),
                   help="real clip: the whole video through sliding windows of CLIP_LEN frames every STRIDE frames")
    p.add_argument("--skip-whole", action="store_true", help="real clip: no whole-video column")
    p.add_argument("--methods", nargs="+", default=None, help="subset of methods (default: all available)")
    p.add_argument("--no-sweep", action="store_true", help="only the main box configuration")
    p.add_argument("--skip-synthetic", action="store_true")
    p.add_argument("--skip-real", action="store_true")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--json", default=None, help="also write every number to this JSON file")
    p.add_argument("--results", default=str(REPO / "benchmarks" / "RESULTS.md"), help="markdown file whose block is replaced")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--merge-json", nargs="+", default=None, metavar="JSON",
                   help="also show the methods of these earlier --json runs (same data; e.g. the peers measured "
                        "while the preset was being chosen); this run's methods win where both have one")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--sanity-clips", type=int, default=8,
                   help="synthetic: clips of the cascading randomization check (first seed; 0 to skip)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (1 is much faster on a CPU shared by other processes)")
    return p


def _merge(seen: List[str], new: Sequence[str]) -> None:
    for m in new:
        if m not in seen:
            seen.append(m)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from captum_3dcam.models import default_layers, i3d_kinetics400
    from captum_3dcam.training.small_recipe import load_or_train_small_model

    args = build_parser().parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threshold = args.threshold if args.threshold == "otsu" else float(args.threshold)
    sweep = None if args.no_sweep else list(DEFAULT_SWEEP)
    main_config = config_key(threshold, args.region)
    kwargs = dict(threshold=threshold, region=args.region, sweep=sweep, show_progress=args.progress)
    columns: Dict[str, List[Dict]] = {}
    meta: Dict = {"peers": peer_status(), "torch": torch.__version__, "threads": torch.get_num_threads()}
    methods_seen: List[str] = []
    t_start = time.time()

    if not args.skip_synthetic:
        runs = []
        for seed in args.seeds:
            ckpt = Path(args.checkpoint_dir) / f"small3dcnn_seed{seed}.pt"
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            model = load_or_train_small_model(ckpt, seed=seed, progress=args.progress).eval()
            t0 = time.time()
            res = evaluate_methods(model, default_layers(model), synthetic_items(args.num_videos, seed), args.methods,
                                   batch_size=args.batch_size, **kwargs)
            acc = res.get("3dcam_sum", {}).get("class_acc", "n/a")
            print(f"[synthetic seed {seed}] {time.time() - t0:.1f} s, class accuracy {acc}", flush=True)
            runs.append(res)
            _merge(methods_seen, res)
        if args.sanity_clips > 0:
            model = load_or_train_small_model(Path(args.checkpoint_dir) / f"small3dcnn_seed{args.seeds[0]}.pt",
                                              seed=args.seeds[0], progress=False).eval()
            data = synthetic_items(args.num_videos, args.seeds[0])
            clips = torch.stack([data[i][0] for i in range(min(args.sanity_clips, len(data)))])
            meta["sanity"] = sanity_table(model, default_layers(model), clips)
        columns[f"Synthetic ({len(args.seeds)} seed{'s' if len(args.seeds) > 1 else ''})"] = runs
        meta["synthetic"] = {"seeds": args.seeds, "test_videos": args.num_videos, "model": "Small3DCNN (train_small_model)"}

    if not args.skip_real:
        items, info = ucf_sample_items(args.data_dir, args.real_frames)
        model = i3d_kinetics400().eval()
        t0 = time.time()
        res = evaluate_methods(model, default_layers(model), items, args.methods, batch_size=1, **kwargs)
        with torch.no_grad():
            probs = model(items[0][0][None]).softmax(-1)[0]
        top = int(probs.argmax())
        info.update(predicted=model.labels[top], probability=round(float(probs[top]), 3))
        print(f"[real clip] {time.time() - t0:.1f} s, predicted {info['predicted']} {info['probability']}", flush=True)
        columns["UCF101-24 basketball (I3D)"] = [res]
        meta["real"] = info
        _merge(methods_seen, res)
        if not args.skip_whole:
            items, whole = ucf_sample_items(args.data_dir, 10**6, start=0)
            t0 = time.time()
            res = evaluate_methods(model, default_layers(model), items, args.methods, batch_size=1,
                                   windows=tuple(args.whole_windows), **kwargs)
            print(f"[real video, all {whole['num_frames']} frames] {time.time() - t0:.1f} s", flush=True)
            columns[f"UCF101-24 basketball, all {whole['num_frames']} frames (I3D, windows "
                    f"{args.whole_windows[0]}/{args.whole_windows[1]})"] = [res]
            meta["whole"] = dict(whole, windows=args.whole_windows)
            _merge(methods_seen, res)

    for path in args.merge_json or []:
        earlier = json.loads(Path(path).read_text())
        for column, runs in earlier["results"].items():
            mine = columns.setdefault(column, [{} for _ in runs])
            if len(mine) != len(runs):
                raise SystemExit(f"--merge-json {path}: column {column!r} has {len(runs)} runs, this run {len(mine)}")
            for now, before in zip(mine, runs):
                for method, metrics in before.items():
                    now.setdefault(method, metrics)
            _merge(methods_seen, [m for run in runs for m in run])
        for key, value in earlier["meta"].items():
            meta.setdefault(key, value)
        meta.setdefault("merged", []).append(f"`{earlier['meta'].get('command', path)}` "
                                             f"({earlier['meta'].get('seconds', float('nan')):.0f} s)")
    if not columns:
        print("nothing to do (both --skip-synthetic and --skip-real)")
        return 1
    given = sys.argv[1:] if argv is None else list(argv)
    command = "python benchmarks/localization.py" + ("" if not given else " " + " ".join(given))
    meta["command"], meta["seconds"] = command, time.time() - t_start
    header = [
        "## Weakly-supervised localization (paper Tables 3-5)",
        "",
        f"Command: `{command}` (total {time.time() - t_start:.0f} s on this CPU, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads)" + (", with the rows of " + ", ".join(meta["merged"]) + " (the same data, "
                                                 "measured earlier in the same session)" if meta.get("merged") else "") + ".",
        "",
        "Target = the model's predicted class. Boxes: per frame, threshold at `threshold x frame max` (a preset's row: "
        "its own box settings, `captum_3dcam.attr.presets`), connected regions (8-connectivity, scipy), the chosen region's "
        "box, found at model resolution and mapped to the frame's pixels (`geometry.boxes_to_frame`: what `explain` and "
        "the README do), compared with the GT box there; pointing on the map in the frame's pixels; frames without "
        "GT are excluded. Synthetic cells are mean ± std over seeds (one trained Small3DCNN and one test split of "
        f"{args.num_videos} videos x 16 frames per seed).",
    ]
    if "real" in meta:
        r = meta["real"]
        header.append(
            f"Real clip: frames {r['start']}..{r['start'] + r['num_frames'] - 1} of {r['video_frames']} of v_Basketball_g01_c01 "
            f"(the window centred on the GT tube), I3D Kinetics-400 predicts *{r['predicted']}* ({r['probability']}); "
            "Acc2 counts it correct when the prediction is 'shooting basketball'. Maps at 224x224 are mapped back to 320x240."
        )
    if "whole" in meta:
        w = meta["whole"]
        header.append(
            f"Whole video: all {w['num_frames']} frames of the same clip through sliding windows of {w['windows'][0]} frames "
            f"every {w['windows'][1]} (`evaluate_methods(..., windows=...)`): the class is the argmax of the windows' mean "
            "softmax, every method explains it in each window, its maps are averaged over overlapping windows "
            "(weighted by the position in the window, `stitch_windows`' taper), then boxes."
        )
    header += ["", "Peers: " + "; ".join(f"{k}: {v}" for k, v in meta["peers"].items()) + ".", ""]
    body = "\n".join(header) + "\n" + render(columns, methods_seen, main_config)
    if "sanity" in meta:
        body += ("\n**Sanity check — cascading randomization** (Adebayo et al. 2018; synthetic seed "
                 f"{args.seeds[0]}, {args.sanity_clips} test clips, predicted class fixed): Spearman rank correlation / SSIM "
                 "between the trained model's maps and the maps after re-initializing the named block and every block above it "
                 "(lower = the method depends on the weights, as it should).\n\n" + "\n".join(meta["sanity"]) + "\n")
    print(body)
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": columns}, indent=1, default=str))
    if not args.no_write:
        write_results_block(Path(args.results), body, RESULTS_BLOCK)
        print(f"wrote block '{RESULTS_BLOCK}' of {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
