"""The checkpoints of :func:`captum_3dcam.training.loop.train`: written atomically, read back with every field checked.

A checkpoint is a dict ``{"model", "optimizer", "scheduler", "epoch", "config", "history",
"rng_state", "extra"}`` (see :func:`save_checkpoint`). A file is not trusted when it is read back:
:func:`load_checkpoint` reads it with ``torch.load(weights_only=True)`` (bounded in depth and size,
:mod:`captum_3dcam._safe_load`), then checks every field a resumed run reads (:func:`check_fields`):
``epoch`` an int in ``[0, MAX_EPOCHS]``, ``history`` a list of at most ``epoch`` dicts of numbers,
``rng_state`` a CPU generator state, ``model`` a dict, ``config``/``extra`` dicts or ``None``; a
wrong field is one :class:`CheckpointError` naming the file and the field. The model's, optimizer's
and scheduler's states are checked against the live objects when they are loaded
(:func:`captum_3dcam._safe_load.load_states`).

Lives here: :func:`save_checkpoint`, :func:`load_checkpoint`, :func:`check_fields`,
:data:`MAX_EPOCHS`. Does not live here: the loop that writes them (:mod:`captum_3dcam.training.loop`,
which re-exports both functions), what ``extra`` means to the small model's recipe
(:mod:`captum_3dcam.training.small_recipe`) or to ``captum-3dcam train`` (:mod:`captum_3dcam.models.trained`).
"""
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import torch
from torch import nn

from .._safe_load import CheckpointError, load_states, torch_load_weights_only
from .._untrusted import short_repr
from .._utils import as_path

__all__ = ["MAX_EPOCHS", "save_checkpoint", "load_checkpoint", "check_fields"]

PathLike = Union[str, os.PathLike]

#: The most epochs a checkpoint may say it has done.
MAX_EPOCHS = 1_000_000


def save_checkpoint(
    path: PathLike,
    model: nn.Module,
    optimizer: Optional[torch.optim.Optimizer] = None,
    scheduler: Optional[Any] = None,
    *,
    epoch: int = 0,
    config: Optional[Any] = None,
    history: Optional[List[Dict[str, float]]] = None,
    extra: Optional[Dict[str, Any]] = None,
) -> Path:
    """Write a checkpoint atomically (a temporary file, then a rename).

    Contents: ``model`` (state dict), ``optimizer``, ``scheduler``, ``epoch`` (epochs done),
    ``config`` (a :class:`~captum_3dcam.training.loop.TrainConfig` as a dict), ``history`` (per-epoch
    metrics), ``rng_state`` and ``extra``.
    """
    path = as_path(path, "path", kind="file")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": int(epoch),
        "config": asdict(config) if config is not None else None,
        "history": list(history or []),
        "rng_state": torch.get_rng_state(),
        "extra": dict(extra or {}),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_fields(state: Mapping[str, Any], source: str) -> None:
    """Check the fields of a checkpoint dict that a resumed run reads; ``source`` names the file.

    Raises:
        CheckpointError: ``"{source}: field 'epoch': expected ..., got ..."`` for the first wrong field.
    """
    def wrong(field: str, expected: str, value: Any):
        return CheckpointError(f"{source}: field {field!r}: expected {expected}, got {short_repr(value)} "
                               "(a damaged or foreign checkpoint; nothing was loaded)")

    epoch = state["epoch"]
    if not _is_int(epoch) or not 0 <= epoch <= MAX_EPOCHS:
        raise wrong("epoch", f"the number of epochs done, an int in [0, {MAX_EPOCHS}]", epoch)
    if not isinstance(state["model"], Mapping):  # its entries: check_state_dict, against a model
        raise wrong("model", "a state dict {name: tensor}", state["model"])
    history = state.get("history", [])
    if not isinstance(history, list) or len(history) > epoch:
        raise wrong("history", f"a list of at most {epoch} per-epoch records (epoch is {epoch})", history)
    for i, record in enumerate(history):
        if not isinstance(record, Mapping) or not all(
                isinstance(k, str) and (_is_int(v) or isinstance(v, float)) for k, v in record.items()):
            raise wrong(f"history[{i}]", "a dict of numbers (epoch, lr, train_loss, ...)", record)
        if "epoch" in record and record["epoch"] != epoch - len(history) + i + 1:
            raise wrong(f"history[{i}].epoch", str(epoch - len(history) + i + 1), record["epoch"])
    rng = state.get("rng_state")
    if rng is not None:
        expected = torch.get_rng_state()
        if not isinstance(rng, torch.Tensor) or rng.dtype != torch.uint8 or tuple(rng.shape) != tuple(expected.shape):
            raise wrong("rng_state", f"a CPU generator state (uint8 tensor of shape {tuple(expected.shape)})", rng)
        try:
            torch.Generator().set_state(rng)
        except RuntimeError as exc:
            raise wrong("rng_state", f"a valid CPU generator state ({exc})", rng) from None
    for field in ("config", "extra"):  # optimizer, scheduler: load_states, against the live objects
        if state.get(field) is not None and not isinstance(state[field], Mapping):
            raise wrong(field, "a dict or None", state[field])
    config = state.get("config") or {}
    for key in ("lr", "seed", "epochs"):
        value = config.get(key)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                  or not math.isfinite(value)):
            raise wrong(f"config.{key}", "a finite number", value)


def load_checkpoint(
    path: PathLike,
    model: Optional[nn.Module] = None,
    optimizer: Optional[torch.optim.Optimizer] = None,
    scheduler: Optional[Any] = None,
    *,
    map_location: Union[str, torch.device] = "cpu",
) -> Dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; load the states given, all or nothing.

    Read with ``torch.load(weights_only=True)`` (no code from the file runs); every field is checked
    (:func:`check_fields`) and every state given is checked before any is copied
    (:func:`captum_3dcam._safe_load.load_states`), so a mismatching checkpoint leaves ``model``,
    ``optimizer`` and ``scheduler`` as they were. Returns the checkpoint dict.

    Raises:
        TypeError: ``path`` is not a ``str`` or ``os.PathLike``.
        FileNotFoundError: no file at ``path``.
        CheckpointError (a ``ValueError``): a file that is not such a checkpoint, a field of the
            wrong type or range, or states that do not match (named in the message); nothing was loaded.
    """
    path = as_path(path, "checkpoint", kind="file")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no file at {path}")
    state = torch_load_weights_only(path, map_location=map_location, what="checkpoint")
    if not isinstance(state, dict) or "model" not in state or "epoch" not in state:
        raise CheckpointError(
            f"checkpoint: {path} is not a captum_3dcam training checkpoint "
            "(expected a dict with 'model' and 'epoch')"
        )
    source = f"checkpoint {path}"
    check_fields(state, source)
    load_states(state, model=model, optimizer=optimizer, scheduler=scheduler, source=source)
    return state
