"""DistributedDataParallel training helpers: what a training loop needs from ``torch.distributed``.

The process group itself is opened by :func:`captum_3dcam.distributed.init_distributed` (torchrun's
environment -> NCCL on GPUs, gloo on CPUs). The functions here read the state of the default
process group, so library code (:func:`captum_3dcam.training.train`,
:func:`captum_3dcam.accuracy.evaluate`) calls them unconditionally without a context object: outside
a process group of several ranks they are the one-process case (rank 0 of 1; sums and broadcasts
are the identity; no wrapper).

Lives here: :func:`is_distributed`, :func:`get_rank`, :func:`get_world_size`,
:func:`is_main_process`, :func:`barrier`, :func:`all_reduce_sum`, :func:`broadcast_buffers`,
:func:`wrap_ddp` and :func:`write_atomic` (the files rank 0 writes). Does not live here: opening the
process group, sharding and rank-0-first (:mod:`captum_3dcam.distributed`), the loop itself
(:mod:`captum_3dcam.training`).
"""
import os
from pathlib import Path
from typing import List, Sequence, Union

import torch
from torch import distributed as dist
from torch import nn

__all__ = [
    "is_distributed", "get_rank", "get_world_size", "is_main_process", "barrier", "all_reduce_sum",
    "broadcast_buffers", "wrap_ddp", "write_atomic",
]


def is_distributed() -> bool:
    """Whether a process group of more than one rank is initialized."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    """The number of ranks (1 outside a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """Rank 0 (always ``True`` in one process): the rank that writes files and prints."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for every rank (nothing to wait for in one process)."""
    if is_distributed():
        dist.barrier()


def all_reduce_sum(values: Sequence[float], device: Union[str, torch.device] = "cpu") -> List[float]:
    """The element-wise sum of ``values`` over all ranks (``values`` itself in one process).

    Computed in float64 on ``device`` (the rank's device: NCCL reduces GPU tensors only), so
    counts up to 2**53 stay exact.
    """
    if not is_distributed():
        return [float(v) for v in values]
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (e.g. BatchNorm running statistics) to every rank, in place."""
    if is_distributed():
        for buffer in module.buffers():
            dist.broadcast(buffer, src)


def wrap_ddp(model: nn.Module, device: Union[str, torch.device]) -> nn.Module:
    """``DistributedDataParallel(model)`` under a process group of several ranks, else ``model``.

    The wrapper broadcasts rank 0's parameters and buffers at construction (every rank starts from
    the same weights) and averages the gradients over the ranks in every ``backward``.
    """
    if not is_distributed():
        return model
    device = torch.device(device)
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def write_atomic(path: Union[str, os.PathLike], text: Union[str, bytes]) -> Path:
    """Write ``text`` (``str``, or ``bytes`` as they are) to ``path`` through a temporary file
    ``.NAME.PID.tmp`` and a rename (readers never see half a file; a kill leaves at most the temporary)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(text, (bytes, bytearray)):
            tmp.write_bytes(bytes(text))
        else:
            tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:  # a full disk, Ctrl-C: neither half a file nor a stray temporary is left
        tmp.unlink(missing_ok=True)
        raise
    return path
