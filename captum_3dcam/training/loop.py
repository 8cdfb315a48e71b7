"""Training loop: the paper's recipe (SGD, lr 0.001, x0.1 every 50 epochs), resumable, one process
or DistributedDataParallel under torchrun.

The loop fits any ``nn.Module`` whose ``forward(x)`` returns logits ``(N, num_classes)`` on a
dataset that yields ``(clip, boxes, label)`` (or ``(clip, label)``). After each epoch it measures
the two accuracies of the paper's Table 6 on the test set (clip-wise and video-wise,
:func:`captum_3dcam.training.accuracy.evaluate`) and writes a checkpoint (model, optimizer, scheduler, RNG
state, epoch, config, history). A run resumes from such a checkpoint and continues exactly as the
uninterrupted run would have: the batch order of epoch ``e`` depends only on ``(seed, e)`` and the
RNG state is restored (under several ranks, or on a GPU, the generators are reseeded at the start of
every epoch from ``(seed, epoch, rank)`` instead: each rank draws its own dropout masks).

Under a process group of several ranks (``torchrun``: :mod:`captum_3dcam.training.distributed`, :mod:`captum_3dcam.training.distributed`)
the same call trains with ``DistributedDataParallel``: each rank takes its ``DistributedSampler`` shard
(``set_epoch`` every epoch) of ``batch_size`` clips per step, so the global batch is
``batch_size x world_size``; the gradients are averaged, the metrics summed over ranks with
``all_reduce`` (the training figures count the few clips the sampler repeats to even out the shards;
the test figures are exact), and rank 0 alone writes the checkpoint (atomically). ``dtype="bfloat16"`` runs the
forward passes under ``torch.autocast`` (meant for GPUs; the weights stay float32).

Training stops with :class:`TrainingDivergedError` (naming the epoch and step, suggesting a lower
learning rate or a look at the data) at the first non-finite loss, before it reaches the weights,
or at the first step that leaves non-finite weights.

Lives here: :class:`TrainConfig`, :func:`check_seed`, :func:`train` — for any model and dataset.
Does not live here: the checkpoints (:mod:`captum_3dcam.models.train_checkpoint`), the accuracies
(:mod:`captum_3dcam.training.accuracy`), the embedded small model's
recipe (``train_small_model``, ``load_or_train_small_model``), in
:mod:`captum_3dcam.training.small_recipe`, nor the gated
classifier (:mod:`captum_3dcam.models.gating`), nor the ``captum-3dcam train`` command
(:mod:`captum_3dcam.training.recognition`).
"""
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Dict, List, Optional, Union

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .._utils import as_path, progress_bar
from . import distributed as ddp
from .._utils import autocast
from .accuracy import evaluate, split_batch
from ..errors import Captum3DCamError
from ..models.train_checkpoint import load_checkpoint, save_checkpoint

__all__ = [
    "TrainConfig",
    "TrainingDivergedError",
    "MAX_SEED",
    "check_seed",
    "train",
]

PathLike = Union[str, os.PathLike]

#: Seeds go to ``torch.manual_seed`` and NumPy: 0 .. 2**32 - 1 everywhere.
MAX_SEED = 2**32 - 1


class TrainingDivergedError(Captum3DCamError):
    """The loss or the weights stopped being finite (the message names the epoch, the step and what to try)."""


def check_seed(seed: Any, name: str = "seed") -> int:
    """``seed`` if it is an int in ``[0, 2**32 - 1]``; else a ``ValueError`` naming ``name``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name}: expected an integer in [0, {MAX_SEED}], got {seed!r}")
    return seed


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train`; the defaults are the paper's recipe.

    Args:
        epochs: number of epochs.
        batch_size: clips per step.
        optimizer: ``"sgd"`` (the paper's) or ``"adam"`` (``momentum`` is then ignored).
        lr: initial learning rate (paper: 0.001).
        momentum: SGD momentum (the paper does not say; 0.9 as in Hara et al.'s 3D ResNets).
        weight_decay: L2 penalty.
        step_size: multiply the learning rate by ``gamma`` every ``step_size`` epochs (paper: 50).
        gamma: the learning-rate factor (paper: 0.1).
        device: where the model and the batches go (``"cpu"``, ``"cuda"``, ...).
        seed: seeds the parameter-free randomness of the run (batch order, dropout).
        num_workers: DataLoader workers.
        eval_batch_size: clips per evaluation step (default: ``batch_size``).
        progress: show tqdm progress bars.
        dtype: ``"float32"`` or ``"bfloat16"`` (forward passes under ``torch.autocast``).
    """

    epochs: int = 100
    batch_size: int = 8
    optimizer: str = "sgd"
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 0.0
    step_size: int = 50
    gamma: float = 0.1
    device: str = "cpu"
    seed: int = 0
    num_workers: int = 0
    eval_batch_size: Optional[int] = None
    progress: bool = True
    dtype: str = "float32"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "step_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if self.eval_batch_size is not None and (
            not isinstance(self.eval_batch_size, int) or self.eval_batch_size < 1
        ):
            raise ValueError(f"eval_batch_size: expected a positive int or None, got {self.eval_batch_size!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer: expected 'sgd' or 'adam', got {self.optimizer!r}")
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype: expected 'float32' or 'bfloat16', got {self.dtype!r}")
        for name, low in (("lr", "> 0"), ("gamma", "> 0"), ("momentum", ">= 0"), ("weight_decay", ">= 0")):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                    or not (value > 0 if low == "> 0" else value >= 0)):
                raise ValueError(f"{name}: expected a finite number {low}, got {value!r}")
        check_seed(self.seed)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _loader(dataset, batch_size, shuffle, seed, num_workers, epoch=0) -> DataLoader:
    """One process: shuffled by a generator seeded ``seed + epoch``; several ranks: each rank gets
    its ``DistributedSampler`` shard (seeded by ``seed``, reshuffled by ``set_epoch``)."""
    if shuffle and ddp.is_distributed():
        sampler = DistributedSampler(dataset, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers)
    gen = torch.Generator().manual_seed(seed + epoch) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=gen,
                      num_workers=num_workers, drop_last=False)


def _make_optim(model: nn.Module, cfg: TrainConfig):
    if cfg.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        optimizer = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    return optimizer, scheduler


def _check_loss(value: float, epoch: int, step: int, lr: float, device) -> None:
    """Stop before a non-finite loss reaches the weights (under several ranks: when any rank's does)."""
    bad = not math.isfinite(value)
    if ddp.get_world_size() > 1:
        bad = ddp.all_reduce_sum([float(bad)], device)[0] > 0
    if bad:
        raise TrainingDivergedError(
            f"epoch {epoch + 1}, step {step}: the training loss is {value} (not finite), so training stopped "
            f"before this step changed the weights (the checkpoint holds the last finished epoch). Check the "
            f"data for NaN or infinite values, or lower the learning rate (--lr, now {lr:g})")


def _check_weights(model: nn.Module, epoch: int, step: int, lr: float) -> None:
    """Stop when a step left non-finite trained weights (the same on every rank: DDP averaged the gradients)."""
    trained = [p for p in model.parameters() if p.grad is not None]
    if trained and not bool(torch.stack([torch.isfinite(p).all() for p in trained]).all()):
        bad = sum(int((~torch.isfinite(p)).sum()) for p in trained)
        raise TrainingDivergedError(
            f"epoch {epoch + 1}, step {step}: {bad} weights are no longer finite after this step (the "
            f"checkpoint holds the last finished epoch). The learning rate is too high (--lr, now {lr:g}): "
            "lower it, or check the data for extreme values")


def _resume(resume, checkpoint, model, optimizer, scheduler, device):
    """``(first epoch, history)``: ``(0, [])``, or those of the checkpoint resumed (its states loaded
    into ``model``, ``optimizer``, ``scheduler`` and the CPU generator, every field checked)."""
    resume_path = None
    if resume is True:
        if checkpoint is None:
            raise ValueError("resume=True needs checkpoint=<path>")
        resume_path = found if (found := as_path(checkpoint, "checkpoint")).is_file() else None
    elif resume:
        resume_path = as_path(resume, "resume")
        if not resume_path.is_file():
            raise FileNotFoundError(f"resume: no checkpoint at {resume_path}")
    if resume_path is None:
        return 0, []
    state = load_checkpoint(resume_path, model, optimizer, scheduler, map_location=device)
    if state.get("rng_state") is not None:  # checked by load_checkpoint
        torch.set_rng_state(state["rng_state"])
    return state["epoch"], list(state["history"])


def _epoch_steps(model, net, optimizer, batches, epoch: int, lr: float, device, dtype: str, show: bool):
    """One epoch's optimizer steps over ``batches``; ``(loss sum, correct, seen)`` of this rank. Stops
    with :class:`TrainingDivergedError` on a non-finite loss, update or weights."""
    loss_sum, correct, seen = 0.0, 0, 0
    for step, batch in enumerate(batches, 1):
        x, y = split_batch(batch)
        x, y = x.to(device), torch.as_tensor(y).to(device)
        with autocast(device, dtype):
            logits = net(x)
        loss = nn.functional.cross_entropy(logits.float(), y)
        value = loss.item()
        _check_loss(value, epoch, step, lr, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        try:
            optimizer.step()
        except RuntimeError as exc:  # e.g. an update of lr x gradient past the float range
            if "overflow" not in str(exc):
                raise
            raise TrainingDivergedError(f"epoch {epoch + 1}, step {step}: the optimizer's update is not finite "
                                        f"({exc}); lower the learning rate (--lr, now {lr:g})") from None
        _check_weights(model, epoch, step, lr)
        loss_sum += value * len(y)
        correct += (logits.argmax(-1) == y).sum().item()
        seen += len(y)
        if show:
            batches.set_postfix(loss=f"{loss_sum / seen:.3f}")
    return loss_sum, correct, seen


def train(
    model: nn.Module,
    train_set: Dataset,
    test_set: Optional[Dataset] = None,
    config: Optional[TrainConfig] = None,
    *,
    checkpoint: Optional[PathLike] = None,
    resume: Union[bool, PathLike] = False,
    extra: Optional[Dict[str, Any]] = None,
    on_epoch_end: Optional[Callable[[List[Dict[str, float]]], None]] = None,
    **overrides,
) -> List[Dict[str, float]]:
    """Fit ``model`` with SGD + step decay; evaluate and checkpoint after every epoch.

    Under a process group of several ranks (see the module docstring) every rank calls it with the
    same arguments; the model is wrapped in ``DistributedDataParallel`` for the run (and unwrapped
    after), each rank reads the resumed checkpoint and rank 0 writes them.

    Args:
        model: returns logits ``(N, num_classes)`` for a clip batch ``(N, C, T, H, W)``; it is
            moved to ``config.device`` and trained in place.
        train_set: yields ``(clip, boxes, label)`` or ``(clip, label)``.
        test_set: evaluated after each epoch (clip-wise and video-wise accuracy).
        config: a :class:`TrainConfig`; ``**overrides`` replace single fields
            (``train(m, ds, epochs=3, lr=0.05)``).
        checkpoint: file written after every epoch (``None``: no checkpoint).
        resume: ``True`` to resume from ``checkpoint`` when it exists, or the path of a
            checkpoint to resume from. The epochs already done are skipped; ``config.epochs``
            is the total.
        extra: stored in the checkpoints under ``"extra"`` (e.g. how to rebuild the model).
        on_epoch_end: called with the history after each epoch's checkpoint, on rank 0 only.

    Returns:
        The history: one dict per epoch with ``epoch``, ``lr``, ``train_loss``,
        ``train_accuracy``, ``seconds`` and, with a ``test_set``, ``test_loss``,
        ``test_clip_accuracy``, ``test_video_accuracy``.

    Shape:
        items ``(clip (C, T, H, W), [boxes,] label)``; ``model``: ``(N, C, T, H, W) -> (N, num_classes)``
    """
    if config is None:
        config = TrainConfig(**overrides)
    elif not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a TrainConfig, got {type(config).__name__}")
    elif overrides:
        config = TrainConfig(**{**asdict(config), **overrides})
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    if len(train_set) == 0:
        raise ValueError("train_set: expected at least one item, got an empty dataset")
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    model.to(device)
    optimizer, scheduler = _make_optim(model, config)
    start, history = _resume(resume, checkpoint, model, optimizer, scheduler, device)
    total, squares = ddp.all_reduce_sum([start, start * start], device)
    if total * total != squares * ddp.get_world_size():  # not every rank resumes the same epoch
        raise ValueError(f"resume: the ranks found checkpoints of different epochs (this rank: {start}); "
                           "under several nodes the checkpoint must be on a file system every rank reads")
    eval_bs = config.eval_batch_size or config.batch_size
    main, net = ddp.is_main_process(), ddp.wrap_ddp(model, device)
    show = config.progress and main
    was_training = model.training
    try:
        epochs = progress_bar(range(start, config.epochs), "epochs", unit="epoch", enabled=show,
                              initial=start, total=config.epochs)
        for epoch in epochs:
            t0 = time.perf_counter()
            model.train()
            if ddp.get_world_size() > 1:  # each rank its own dropout, yet a function of (seed, epoch, rank)
                torch.manual_seed(config.seed * 100003 + epoch * 1009 + ddp.get_rank() + 1)
            if device.type == "cuda":  # the CUDA generator is not in the checkpoint: reseed per epoch
                torch.cuda.manual_seed(config.seed * 100003 + epoch * 1009 + ddp.get_rank())
            loader = _loader(train_set, config.batch_size, True, config.seed * 100003,
                             config.num_workers, epoch)
            lr = optimizer.param_groups[0]["lr"]
            bar = progress_bar(loader, f"epoch {epoch + 1}", unit="batch", enabled=show, leave=False)
            loss_sum, correct, seen = _epoch_steps(model, net, optimizer, bar, epoch, lr, device, config.dtype, show)
            scheduler.step()
            loss_sum, correct, seen = ddp.all_reduce_sum([loss_sum, correct, seen], device)
            record = {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / seen,
                      "train_accuracy": correct / seen}
            ddp.broadcast_buffers(model)  # rank 0's BatchNorm statistics, as in its checkpoint
            if test_set is not None:
                m = evaluate(model, test_set, batch_size=eval_bs, device=device,
                             num_workers=config.num_workers, dtype=config.dtype)
                record.update(test_loss=m["loss"], test_clip_accuracy=m["clip_accuracy"],
                              test_video_accuracy=m["video_accuracy"])
            record["seconds"] = time.perf_counter() - t0
            history.append(record)
            if show:
                epochs.set_postfix({k: f"{v:.3f}" for k, v in record.items()
                                    if k in ("train_loss", "test_clip_accuracy")})
            if checkpoint is not None and main:
                save_checkpoint(checkpoint, model, optimizer, scheduler, epoch=epoch + 1,
                                config=config, history=history, extra=extra)
            if on_epoch_end is not None and main:
                on_epoch_end(history)
            ddp.barrier()
    finally:
        model.train(was_training)
    return history
