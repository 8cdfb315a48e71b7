"""Action-recognition accuracy of a classifier on a dataset: clip-wise and video-wise (paper Table 6).

    frame-wise (clip) accuracy  = mean over clips i of  [argmax_c y_i[c] == label_i]
    video-wise accuracy         = mean over videos v of [argmax_c mean_{i in v} softmax(y_i)[c] == label_v]

The clips of a video are grouped by the dataset's ``video_ids`` / ``video_id(i)``. Under a process
group of several ranks (torchrun) each rank scores whole videos (video ``j`` in first-appearance
order goes to rank ``j mod world_size``) and the sums are reduced with ``all_reduce``, so every rank
gets exactly the numbers one process would compute.

Lives here: :func:`evaluate` and :func:`video_ids_of` (also importable from
:mod:`captum_3dcam.training.loop`, their former home). Does not live here: the training loop
(:mod:`captum_3dcam.training.loop`), the localization metrics (:mod:`captum_3dcam.metrics.localization`).
"""
from typing import Any, Dict, List, Union

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from . import distributed as ddp
from .._utils import autocast, progress_bar

__all__ = ["evaluate", "video_ids_of", "split_batch"]


def video_ids_of(dataset: Dataset) -> List[Any]:
    """Video id of every item: ``dataset.video_ids``, ``dataset.video_id(i)``, through ``Subset``.

    A dataset that offers neither gets one video per item (video-wise = clip-wise accuracy).
    """
    if isinstance(dataset, Subset):
        parent = video_ids_of(dataset.dataset)
        return [parent[i] for i in dataset.indices]
    ids = getattr(dataset, "video_ids", None)
    if ids is not None:
        ids = list(ids)
        if len(ids) != len(dataset):
            raise ValueError(
                f"dataset.video_ids: expected {len(dataset)} entries (one per item), got {len(ids)}"
            )
        return ids
    fn = getattr(dataset, "video_id", None)
    if callable(fn):
        return [fn(i) for i in range(len(dataset))]
    return list(range(len(dataset)))


def split_batch(batch):
    """``(clip, label)`` of a batch of ``(clip, boxes, label)`` or ``(clip, label)`` items."""
    if not isinstance(batch, (list, tuple)) or len(batch) not in (2, 3):
        raise TypeError(
            "dataset items: expected (clip, boxes, label) or (clip, label), "
            f"got {type(batch).__name__} of length {len(batch) if hasattr(batch, '__len__') else '?'}"
        )
    return batch[0], batch[-1]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 8,
    device: Union[str, torch.device] = "cpu",
    num_workers: int = 0,
    progress: bool = False,
    dtype: str = "float32",
) -> Dict[str, float]:
    """Clip-wise (frame-wise) and video-wise accuracy and mean loss of ``model`` on ``dataset``.

    Video-wise: the softmax scores of a video's clips are averaged and the argmax compared with
    the video's label. The model is evaluated in ``eval()`` mode and its mode restored after.
    Under torchrun every rank must call it (it reduces across ranks) and gets the same result.

    Args:
        model: returns logits ``(N, num_classes)``.
        dataset: items ``(clip, [boxes,] label)``.
        batch_size, num_workers: of the ``DataLoader``.
        device: where the batches go (the model's device).
        progress: a progress bar (rank 0 only).
        dtype: ``"bfloat16"`` runs the forward passes under ``torch.autocast``.

    Returns:
        ``{"loss", "clip_accuracy", "video_accuracy", "num_clips", "num_videos"}``.

    Shape:
        items ``(clip (C, T, H, W), [boxes,] label)``; ``model``: ``(N, C, T, H, W) -> (N, num_classes)``
    """
    if len(dataset) == 0:
        raise ValueError("dataset: expected at least one item, got an empty dataset")
    device = torch.device(device)
    groups: Dict[Any, List[int]] = {}
    for i, v in enumerate(video_ids_of(dataset)):
        groups.setdefault(v, []).append(i)
    rank, world = ddp.get_rank(), ddp.get_world_size()
    mine = [idx for j, idx in enumerate(groups.values()) if j % world == rank]
    if world > 1:
        offsets, flat = [], []
        for idx in mine:
            offsets.append(list(range(len(flat), len(flat) + len(idx))))
            flat.extend(idx)
        dataset, mine = Subset(dataset, flat), offsets
    was_training = model.training
    model.eval()
    probs, labels, loss_sum = [], [], 0.0
    try:  # iterated even by a rank without videos: every rank draws the loader's seed from the global RNG
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
        for batch in progress_bar(loader, "eval", unit="batch", enabled=progress and rank == 0, leave=False):
            x, y = split_batch(batch)
            x, y = x.to(device), torch.as_tensor(y).to(device)
            with autocast(device, dtype):
                logits = model(x)
            loss_sum += nn.functional.cross_entropy(logits.float(), y, reduction="sum").item()
            probs.append(logits.float().softmax(-1).cpu())
            labels.append(y.cpu())
    finally:
        model.train(was_training)
    clip_hits = video_hits = mixed = 0.0
    if mine:
        probs_t, labels_t = torch.cat(probs), torch.cat(labels)
        clip_hits = (probs_t.argmax(-1) == labels_t).sum().item()
        for idx in mine:
            video_label = labels_t[idx[0]]
            mixed += float(bool((labels_t[idx] != video_label).any()))
            video_hits += float(probs_t[idx].mean(0).argmax() == video_label)
    n_clips = sum(len(idx) for idx in mine)
    totals = ddp.all_reduce_sum([loss_sum, clip_hits, n_clips, video_hits, len(mine), mixed], device)
    loss_sum, clip_hits, n_clips, video_hits, n_videos, mixed = totals
    if mixed:
        raise ValueError("dataset: clips of one video carry different labels")
    return {
        "loss": loss_sum / n_clips,
        "clip_accuracy": clip_hits / n_clips,
        "video_accuracy": video_hits / n_videos,
        "num_clips": int(n_clips),
        "num_videos": int(n_videos),
    }
