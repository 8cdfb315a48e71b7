"""``captum-3dcam demo``: the embedded synthetic default, end to end (:func:`captum_3dcam.apps.demo.run_demo`)."""
from ._common import add_command, fraction, positive_int, seed

NAME = "demo"


def add_parser(subparsers):
    """Register ``demo`` and its options."""
    p = add_command(
        subparsers, NAME, help="the embedded synthetic default, end to end",
        description="Generate SyntheticActions, train (or reuse) the small 3D CNN, explain test clips with "
                    "3DCam and GradCAM, evaluate localization, write figures, a GIF/MP4 and report.md.")
    p.add_argument("--out", default="captum-3dcam-demo", help="output folder (default: %(default)s)")
    p.add_argument("--checkpoint", help="where the trained model is kept (default: the cache, "
                                        "$CAPTUM_3DCAM_CACHE or ~/.cache/captum_3dcam)")
    p.add_argument("--retrain", action="store_true", help="train again even when the checkpoint exists")
    p.add_argument("--quick", action="store_true", help="tiny run in seconds (smoke test; model barely trained)")
    p.add_argument("--test-videos", type=positive_int, help="test clips explained (default 50, 10 with --quick)")
    p.add_argument("--threshold", type=fraction, default=None,
                   help="3DCam's box threshold, a fraction (default: the preset's)")
    p.add_argument("--preset", default="localize", choices=["localize", "paper", "strict"],
                   help="3DCam's attribution and box settings (default localize; paper: the paper's eq. 1-3)")
    p.add_argument("--seed", type=seed, default=0, help="seed of data and training, 0 .. 2**32-1 (default 0)")
    return p


def run(args) -> int:
    """Run the demo; its report and figures go to ``--out``."""
    from ..apps.demo import run_demo

    result = run_demo(args.out, checkpoint=args.checkpoint, retrain=args.retrain, quick=args.quick,
             test_videos=args.test_videos, threshold=args.threshold, preset=args.preset,
             seed=args.seed, device=args.device,
             progress=not args.no_progress)
    print(result["table"])
    print(f"\nwrote {result['files']['report']} and figures in {args.out} ({result['seconds']['total']:.0f} s)")
    return 0
