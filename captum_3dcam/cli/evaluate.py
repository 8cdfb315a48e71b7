"""``captum-3dcam evaluate``: the paper's localization tables on a dataset
(:func:`captum_3dcam.evaluation.run_evaluate`)."""
from pathlib import Path

from ..datasets import NAMES
from ..errors import Captum3DCamError
from ..models.registry import MODELS
from ._common import add_command, add_full_frame, fraction, positive_int, seed

NAME = "evaluate"


def add_parser(subparsers):
    """Register ``evaluate`` and its options."""
    p = add_command(
        subparsers, NAME, help="localization tables (pointing game, IoU accuracy, Acc2)",
        description="Weakly-supervised localization of 3DCam vs GradCAM on a dataset with per-frame boxes "
                    "(the paper's Tables 3-5), by captum_3dcam.evaluation.")
    p.add_argument("--dataset", required=True, choices=NAMES[:3])
    p.add_argument("--root", help="dataset folder (jhmdb, ucf101-24)")
    p.add_argument("--annotations", help="act-detector *-GT.pkl or pyannot.pkl (required for ucf101-24)")
    p.add_argument("--split", default="test", choices=("train", "test", "all"), help="real datasets (default: test)")
    p.add_argument("--model", help=f"one of: {', '.join(MODELS)} (default for synthetic: small-synthetic)")
    p.add_argument("--checkpoint", help="weights file")
    p.add_argument("--layers", nargs="+", metavar="NAME", help="layers (default: the model's preset)")
    p.add_argument("--methods", nargs="+", metavar="NAME",
                   help="methods (default: gradcam_last, 3dcam_layer:<each layer>, 3dcam_sum, 3dcam_mean); "
                        "also e.g. 3dcam_max, gradcam_rule_sum, random, preset:localize, pgc_gradcampp")
    p.add_argument("--preset", default="localize", choices=("localize", "paper", "strict"),
                   help="the preset row added to the default methods (default: %(default)s)")
    p.add_argument("--max-videos", type=positive_int, help="evaluate at most this many videos (synthetic: 100)")
    p.add_argument("--threshold", type=fraction, default=0.5, help="box threshold (default 0.5)")
    p.add_argument("--seed", type=seed, default=0, help="synthetic data seed (default 0)")
    add_full_frame(p)
    p.add_argument("--out", help="folder for localization.md and localization.json")
    return p


def run(args) -> int:
    """Evaluate; print the table."""
    from ..evaluation import run_evaluate

    if args.root and not Path(args.root).exists():
        raise Captum3DCamError(f"--root: no such folder {args.root}")
    result = run_evaluate(args.dataset, root=args.root, annotations=args.annotations, split=args.split,
                          model=args.model, checkpoint=args.checkpoint, layers=args.layers, methods=args.methods,
                          preset=args.preset, max_videos=args.max_videos, threshold=args.threshold, seed=args.seed, device=args.device,
                          out=args.out, progress=not args.no_progress, full_frame=args.full_frame)
    print(result["table"])
    return 0
