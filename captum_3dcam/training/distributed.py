"""torch.distributed plumbing for runs started by ``torchrun``: rank, device, shard, barrier.

    from captum_3dcam.training.distributed import init_distributed

    with init_distributed("auto") as ctx:          # torchrun's env -> process group; else one process
        with ctx.main_first():                     # rank 0 fills a cache, the others then read it
            model = load_model()
        for item in ctx.shard(items):              # items[rank::world_size]
            ...
        stats = ctx.all_gather_object(my_stats)    # every rank's, in rank order
        ctx.barrier()
        if ctx.is_main:
            merge()

Under ``torchrun --nproc_per_node=N`` (or ``--nnodes=M --rdzv-endpoint=HOST:PORT``), the
environment holds ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous
(``MASTER_ADDR``/``MASTER_PORT``); :func:`init_distributed` opens the default process group from
it (``init_method="env://"``): NCCL when the device is a GPU, gloo on the CPU, and each process
takes GPU ``LOCAL_RANK``. Without torchrun it is one process (rank 0 of 1) and every collective is
a no-op, so the same code runs both ways. A process group that already exists (the caller's) is
used as it is and left open. Nothing here launches processes: torchrun does (no home-made
launcher).

Library code that runs the same way in one process and under torchrun reads the default process
group through the plain functions :func:`is_distributed`, :func:`get_rank`, :func:`get_world_size`,
:func:`is_main_process`, :func:`barrier`, :func:`all_reduce_sum` (float64, exact counts),
:func:`broadcast_buffers` and :func:`wrap_ddp` (``DistributedDataParallel`` under several ranks, the
model itself in one process): outside a process group they are the one-process case.

Lives here: :class:`DistributedContext`, :func:`init_distributed` and those functions. Does not live
here: what the ranks do (:mod:`captum_3dcam.evaluation.dataset_run`, :mod:`captum_3dcam.training.loop`),
atomic file writes (:func:`captum_3dcam._utils.write_atomic`).
"""
import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Sequence, Union

import torch
from torch import distributed as dist
from torch import nn

from .._utils import resolve_device
from ..errors import Captum3DCamError

__all__ = [
    "DistributedContext", "init_distributed", "torchrun_env", "is_distributed", "get_rank", "get_world_size",
    "is_main_process", "barrier", "all_reduce_sum", "broadcast_buffers", "wrap_ddp",
]


def torchrun_env() -> Optional[dict]:
    """``{"rank", "world_size", "local_rank"}`` from torchrun's environment, or ``None`` outside it."""
    if "RANK" not in os.environ and "WORLD_SIZE" not in os.environ:
        return None
    try:
        env = {"rank": int(os.environ["RANK"]), "world_size": int(os.environ["WORLD_SIZE"]),
               "local_rank": int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))}
    except (KeyError, ValueError) as exc:
        raise Captum3DCamError(f"torchrun: RANK and WORLD_SIZE must both be integers in the environment ({exc}); "
                               "start the run with torchrun, or unset them") from None
    if not 0 <= env["rank"] < env["world_size"]:
        raise Captum3DCamError(f"torchrun: RANK={env['rank']} is outside 0..WORLD_SIZE-1 ({env['world_size']})")
    return env


@dataclass
class DistributedContext:
    """This process's place in the run.

    Attributes:
        rank, world_size, local_rank: as torchrun numbers them (0, 1, 0 for one process).
        device: where this process computes (``cuda:LOCAL_RANK`` for ``"cuda"`` under torchrun).
        backend: ``"nccl"``, ``"gloo"``, or ``None`` for one process.
        owns_group: the process group was opened here (and :meth:`close` destroys it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: Optional[str] = None
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that merges, writes shared files and shows progress."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        """More than one process, with a process group."""
        return self.world_size > 1 and self.backend is not None

    def shard(self, items: Sequence) -> list:
        """This rank's part of ``items``: ``items[rank::world_size]`` (deterministic, balanced)."""
        return list(items)[self.rank:: self.world_size]

    def barrier(self) -> None:
        """Wait until every rank gets here (no-op for one process)."""
        if self.is_distributed:
            import torch.distributed as dist

            if self.backend == "nccl":
                dist.barrier(device_ids=[self.device.index or 0])
            else:
                dist.barrier()

    def all_gather_object(self, obj: Any) -> List[Any]:
        """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` for one process."""
        if not self.is_distributed:
            return [obj]
        import torch.distributed as dist

        out: List[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (e.g. fills a cache); the others run it after it has finished."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def close(self, sync: bool = True) -> None:
        """Destroy the process group if it was opened here; with ``sync``, after a barrier, so that
        no rank tears its gloo connections down while another is still in its last collective (that
        aborted a rank with "terminate called without an active exception" in about 1 run of 3)."""
        if self.owns_group:
            import torch.distributed as dist

            if dist.is_initialized():
                if sync and self.world_size > 1:
                    self.barrier()
                dist.destroy_process_group()
            self.owns_group = False

    def __enter__(self) -> "DistributedContext":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(sync=exc_type is None)  # a rank that failed does not wait for the others


def init_distributed(device: Any = "auto", *, backend: Optional[str] = None,
                     timeout: Optional[datetime.timedelta] = None) -> DistributedContext:
    """This process's :class:`DistributedContext`; opens the process group under torchrun.

    Args:
        device: ``"auto"`` (a GPU when there is one, else the CPU), ``"cpu"``, ``"cuda"``
            (``cuda:LOCAL_RANK`` under torchrun) or ``"cuda:N"`` (that GPU, for every rank).
        backend: override ``"nccl"`` (GPU) / ``"gloo"`` (CPU).
        timeout: how long collectives (a barrier) wait for the slowest rank (default: PyTorch's).
    """
    env = torchrun_env()
    explicit = isinstance(device, str) and device.startswith("cuda:")
    resolved = resolve_device(device)
    if env is None or env["world_size"] == 1:
        return DistributedContext(device=resolved, **({} if env is None else env))
    if resolved.type == "cuda" and not explicit:
        count = torch.cuda.device_count()
        if env["local_rank"] >= count:
            raise Captum3DCamError(f"--device: LOCAL_RANK {env['local_rank']} needs GPU {env['local_rank']}, "
                                   f"but this machine has {count}; start at most {count} processes per node")
        resolved = torch.device("cuda", env["local_rank"])
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    import torch.distributed as dist

    chosen = backend or ("nccl" if resolved.type == "cuda" else "gloo")
    if dist.is_initialized():
        return DistributedContext(device=resolved, backend=dist.get_backend(), owns_group=False, **env)
    kwargs = {"timeout": timeout} if timeout is not None else {}
    dist.init_process_group(chosen, init_method="env://", rank=env["rank"], world_size=env["world_size"], **kwargs)
    return DistributedContext(device=resolved, backend=chosen, owns_group=True, **env)


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
