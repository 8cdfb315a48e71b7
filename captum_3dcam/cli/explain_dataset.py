"""``captum-3dcam explain-dataset``: every video of a dataset explained into files, resumable, under torchrun
too (:func:`captum_3dcam.evaluation.dataset_run.run_explain_dataset`)."""

from ..datasets import NAMES
from ..models.registry import MODELS
from ._common import add_command, add_full_frame, non_negative_int, positive_int, seed

NAME = "explain-dataset"


def add_parser(subparsers):
    """Register ``explain-dataset`` and its options."""
    p = add_command(
        subparsers, NAME, help="explain every video of a dataset (per-video boxes, metrics); resumable; torchrun",
        description="Explain every video of a dataset with 3DCam in sliding windows and write OUT/videos/<video>.json "
                    "(class explained, score, per-frame boxes in the original frame's pixels or null), with "
                    "--save-maps OUT/maps/<video>.npz (float16), then OUT/summary.json and OUT/localization.md "
                    "(pointing game, IoU accuracy, mean IoU when the dataset has boxes). Running it again with the "
                    "same --out skips the videos already done; every file already there is re-checked against this run (its "
                    "frames, classes, fields, settings, maps) and redone, with a line saying why, when it does not "
                    "match. Under `torchrun --nproc_per_node=N -m captum_3dcam "
                    "explain-dataset ...` each rank explains its share of the videos; rank 0 writes the summary.")
    p.add_argument("--dataset", required=True, choices=NAMES)
    p.add_argument("--root", help="dataset folder (jhmdb, ucf101-24; folder: ROOT/test/<class>/<video> or "
                                  "ROOT/<class>/<video>)")
    p.add_argument("--annotations", help="jhmdb: JHMDB-GT.pkl (optional); ucf101-24: UCF101v2-GT.pkl or pyannot.pkl")
    p.add_argument("--split", default="test", choices=("train", "test", "all"), help="real datasets (default: test)")
    p.add_argument("--model", help=f"one of: {', '.join(MODELS)} (default for synthetic: small-synthetic)")
    p.add_argument("--checkpoint", help="weights file")
    p.add_argument("--preset", default="localize", choices=("localize", "paper", "strict"),
                   help="attribution and box configuration (default: %(default)s)")
    p.add_argument("--layers", nargs="+", metavar="NAME", help="layers (default: the model's preset)")
    p.add_argument("--batch-size", type=positive_int, default=1, help="windows per forward pass (default 1)")
    p.add_argument("--clip-len", type=positive_int, help="window length in frames (default: the model's)")
    p.add_argument("--stride", type=positive_int, help="window step in frames (default: half the window)")
    p.add_argument("--limit", type=positive_int, help="only the first N videos of the split (fixed order)")
    p.add_argument("--save-maps", action="store_true", help="also write OUT/maps/<video>.npz (float16 maps)")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                   help="bfloat16: the passes under torch.autocast (default: %(default)s)")
    p.add_argument("--workers", type=non_negative_int,
                   help="DataLoader workers reading annotations ahead per rank (default: 2; synthetic: 0)")
    p.add_argument("--seed", type=seed, default=0, help="synthetic data seed (default 0)")
    add_full_frame(p)
    p.add_argument("--out", required=True, help="output folder (a run already there is resumed; a corrupt OUT/run.json stops the run)")
    return p


def run(args) -> int:
    """Explain the dataset; print the table (rank 0)."""
    from ..evaluation.dataset_run import run_explain_dataset

    result = run_explain_dataset(
        args.dataset, out=args.out, root=args.root, annotations=args.annotations, split=args.split,
        model=args.model, checkpoint=args.checkpoint, preset=args.preset, layers=args.layers, device=args.device,
        batch_size=args.batch_size, limit=args.limit, save_maps=args.save_maps, dtype=args.dtype,
        clip_len=args.clip_len, stride=args.stride, workers=args.workers, seed=args.seed,
        progress=not args.no_progress, full_frame=args.full_frame)
    if result["rank"] == 0:
        print(result["table"], end="")
        print(f"wrote {args.out}/: videos/ ({result['num_videos']} files), summary.json, localization.md")
    return 0
