"""Reading files that could carry code, safely; loading weights all or nothing.

Lives here, the one copy the whole package uses (checkpoints, annotation files, benchmarks):

- :func:`load_numpy_pickle`: a pickle read by a restricted unpickler whose ``find_class`` admits
  numpy arrays, numpy dtypes and scalars, ``collections.OrderedDict`` and ``_codecs.encode``
  (``str -> bytes`` only, how protocol 2 writes bytes) — nothing else. Dicts, lists, tuples,
  strings and numbers need no import. Anything else (``os.system`` through ``__reduce__``, any
  class) raises :class:`UnsafePickleError` *before* it is called: nothing from the file runs.
  Python 2 pickles (the act-detector ``*-GT.pkl`` and UCF101-24 ``pyannot.pkl``) are read with
  ``encoding="latin1"``, as numpy requires for their arrays.
- :func:`torch_load_weights_only`: ``torch.load(weights_only=True)`` (tensors, dicts, lists,
  numbers, strings) with one clear line on failure. No message of this module ever suggests
  turning that check off (torch's own advice to do so is not passed on).
- :func:`check_state_dict` / :func:`load_state_dict_exact` / :func:`load_states`: every key and
  shape (and an optimizer's parameter groups) is checked before anything is copied, so a
  mismatching checkpoint leaves the model, optimizer and scheduler untouched (never half-loaded).
  Lazy parameters (``nn.LazyLinear``, the lazy gates of
  :class:`~captum_3dcam.gating.LayerwiseGatedClassifier`) take the checkpoint's shape.

Written here rather than borrowed: ``torch.load(weights_only=True)`` cannot read numpy pickles, and
``numpy.load(allow_pickle=True)`` runs any code; the unpickler is ~40 lines. Does not live here: the
formats themselves (I3D's Flax tree, Hara's checkpoints: :mod:`captum_3dcam.models.checkpoints`;
the act-detector layout: :mod:`captum_3dcam.datasets.act_detector`).
"""
import importlib
import io
import os
import pickle
import re
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Union

import torch
from torch import nn

from ._utils import as_path
from .errors import Captum3DCamError

__all__ = [
    "UnsafePickleError", "CheckpointError", "load_numpy_pickle", "torch_load_weights_only",
    "check_state_dict", "load_state_dict_exact", "load_states",
]

PathLike = Union[str, os.PathLike]


class UnsafePickleError(pickle.UnpicklingError, Captum3DCamError):
    """A pickle that asks to import something other than numpy arrays, dtypes or containers.

    Both a ``pickle.UnpicklingError`` and a ``ValueError`` (:class:`Captum3DCamError`): the command
    line prints it as one line with exit status 2.
    """


class CheckpointError(Captum3DCamError):
    """A checkpoint that cannot be read safely or does not match the model (the message names what)."""


def _numpy_core(name: str):
    # numpy >= 2 moved numpy.core to numpy._core; pickles written by either name both resolve here.
    try:
        return importlib.import_module(f"numpy._core.{name}")
    except ImportError:  # numpy < 2
        return importlib.import_module(f"numpy.core.{name}")


def _bytes_from_text(text, encoding="utf-8"):
    """The only use of ``_codecs.encode`` that a numpy pickle needs: ``str -> bytes``."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise UnsafePickleError(f"_codecs.encode is allowed only as str -> bytes, got {type(text).__name__}, "
                                f"{encoding!r}")
    return text.encode(encoding)


def _allowed_globals() -> Dict[tuple, object]:
    import numpy as np

    multiarray, numeric = _numpy_core("multiarray"), _numpy_core("numeric")
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    for module in ("numpy.core.numeric", "numpy._core.numeric"):  # arrays pickled with protocol 5
        allowed[(module, "_frombuffer")] = numeric._frombuffer
    # numpy >= 1.25 pickles dtypes of arrays as e.g. numpy.dtypes.Float32DType
    for name in dir(getattr(np, "dtypes", object())):
        if name.endswith("DType"):
            allowed[("numpy.dtypes", name)] = getattr(np.dtypes, name)
    allowed[("collections", "OrderedDict")] = OrderedDict
    allowed[("_codecs", "encode")] = _bytes_from_text  # how protocol 2 writes bytes
    return allowed


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` admits only the globals of :func:`_allowed_globals`."""

    def __init__(self, file, source: str, encoding: str):
        super().__init__(file, encoding=encoding)
        self._allowed = _allowed_globals()
        self._source = source

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._source}: the pickle asks to import {module}.{name}; only numpy arrays, "
                "numpy dtypes and plain containers are allowed, so it was not loaded (nothing was executed)"
            ) from None

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self._source}: persistent ids are not allowed in a numpy pickle "
                                "(nothing was executed)")


def _reject_object_arrays(tree, path: str, source: str) -> None:
    import numpy as np

    if isinstance(tree, Mapping):
        for key, value in tree.items():
            _reject_object_arrays(value, f"{path}/{key}" if path else str(key), source)
    elif isinstance(tree, (list, tuple)):
        for i, value in enumerate(tree):
            _reject_object_arrays(value, f"{path}/{i}", source)
    elif isinstance(tree, np.ndarray) and tree.dtype.hasobject:
        raise UnsafePickleError(f"{source}: array {path!r} has an object dtype; only numeric arrays are allowed")


def load_numpy_pickle(path: PathLike, *, what: str = "checkpoint", encoding: str = "latin1"):
    """Read a pickle of numpy arrays and plain containers without executing any code.

    Args:
        path: the pickle file.
        what: the argument's name, for the messages (``"checkpoint"``, ``"annotations"``, ...).
        encoding: how Python 2 ``str`` objects are decoded (``"latin1"``: numpy arrays of
            Python 2 pickles need it; Python 3 pickles are unaffected).

    Returns:
        The unpickled object (dicts, lists, tuples, numpy arrays, numbers, strings).

    Raises:
        TypeError: ``path`` is not a ``str`` or ``os.PathLike``.
        FileNotFoundError / IsADirectoryError: no file at ``path``.
        UnsafePickleError: the pickle imports anything but numpy arrays/dtypes/scalars and
            ``collections.OrderedDict``, or holds object arrays. Nothing of it was executed.
        pickle.UnpicklingError: the file is not a valid pickle.
    """
    path = as_path(path, what, kind="file")
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no file at {path}")
    data = path.read_bytes()
    source = f"{what}: {path}"
    try:
        tree = _NumpyOnlyUnpickler(io.BytesIO(data), source=source, encoding=encoding).load()
    except UnsafePickleError as exc:
        if str(exc).startswith(source):
            raise
        raise UnsafePickleError(f"{source}: {exc} (nothing was executed)") from None
    except Exception as exc:  # truncated or garbage file
        raise pickle.UnpicklingError(f"{what}: could not unpickle {path}: not a readable pickle of numpy "
                                     f"arrays ({type(exc).__name__}: {exc})") from None
    _reject_object_arrays(tree, "", source)
    return tree


_TORCH_BOILERPLATE = ("weights only load failed", "check the documentation of torch.load", "please file an issue",
                      "weights_only")


def _torch_refusal(exc: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, without torch's advice to turn it off."""
    text = str(exc)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return f"it asks to import {found.group(1)}, which a weights-only load refuses (nothing was executed)"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not any(b in line.lower() for b in _TORCH_BOILERPLATE)]
    return (lines[0] if lines else type(exc).__name__).rstrip(".")


def torch_load_weights_only(path: PathLike, *, map_location=None, what: str = "checkpoint"):
    """``torch.load(path, weights_only=True)``: tensors, dicts, lists, numbers, strings; no code runs.

    Raises:
        TypeError: ``path`` is not a ``str`` or ``os.PathLike``.
        FileNotFoundError / IsADirectoryError: no file at ``path``.
        CheckpointError: the file is not a weights-only PyTorch checkpoint; the message says why
            (e.g. the global it asks to import) and never suggests turning the weights-only check off.
    """
    path = as_path(path, what, kind="file")
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no file at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a crafted, corrupt, truncated or foreign file
        raise CheckpointError(f"{what}: could not read {path} as a PyTorch checkpoint with "
                              f"torch.load(weights_only=True): {_torch_refusal(exc)}") from None


def _expected_entries(model: nn.Module) -> Dict[str, torch.Tensor]:
    """The entries ``model.state_dict()`` has (values kept as variables), also for lazy models.

    A model whose own ``state_dict`` refuses to run (a lazy :class:`LayerwiseGatedClassifier`)
    is walked module by module, as ``nn.Module._save_to_state_dict`` does.
    """
    try:
        return model.state_dict(keep_vars=True)
    except RuntimeError:
        out: Dict[str, torch.Tensor] = OrderedDict()
        for prefix, module in model.named_modules(remove_duplicate=False):
            dot = f"{prefix}." if prefix else ""
            for name, value in module._parameters.items():
                if value is not None:
                    out[dot + name] = value
            for name, value in module._buffers.items():
                if value is not None and name not in module._non_persistent_buffers_set:
                    out[dot + name] = value
        return out


def check_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *,
                     source: str = "checkpoint") -> "OrderedDict[str, torch.Tensor]":
    """Check that ``state_dict`` fits ``model`` exactly; change nothing. Returns what to load.

    Every key of the model must be present (``num_batches_tracked`` buffers missing from older
    checkpoints keep the model's values), no key may be unknown, every value must be a tensor of
    the model's shape (a lazy parameter takes any shape) and real where the model's is real.

    Raises:
        CheckpointError: missing keys, unexpected keys, shape mismatches or non-tensors, all named.
    """
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"{source}: expected a state dict {{name: tensor}}, got {type(state_dict).__name__}")
    expected = _expected_entries(model)
    provided = OrderedDict(state_dict)
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in provided:
            provided[key] = value.detach()
    missing = [k for k in expected if k not in provided]
    unexpected = [k for k in provided if k not in expected]
    not_tensors = [k for k, v in provided.items() if not isinstance(v, torch.Tensor)]
    mismatched = [
        f"{k}: checkpoint {tuple(provided[k].shape)}, model {tuple(expected[k].shape)}"
        for k in expected
        if k in provided and k not in not_tensors and not nn.parameter.is_lazy(expected[k])
        and tuple(provided[k].shape) != tuple(expected[k].shape)
    ]
    complex_into_real = [k for k in expected if k in provided and k not in not_tensors
                         and provided[k].is_complex() and not expected[k].is_complex()]

    def listed(keys, sep=", "):
        return sep.join(keys[:10]) + (" ..." if len(keys) > 10 else "")

    problems = []
    if missing:
        problems.append(f"missing {len(missing)} keys: {listed(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} keys: {listed(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches: {listed(mismatched, '; ')}")
    if not_tensors:
        problems.append(f"{len(not_tensors)} entries are not tensors: {listed(not_tensors)}")
    if complex_into_real:
        problems.append(f"{len(complex_into_real)} complex entries for real parameters: {listed(complex_into_real)}")
    if problems:
        raise CheckpointError(f"{source} does not match {type(model).__name__} (nothing was loaded): "
                              + " | ".join(problems))
    return provided


def load_state_dict_exact(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *,
                          source: str = "checkpoint") -> nn.Module:
    """Load ``state_dict`` into ``model`` only if every key and shape matches; otherwise change nothing.

    See :func:`check_state_dict` for what is checked. Returns ``model``.

    Raises:
        CheckpointError: missing keys, unexpected keys or shape mismatches, all named in the message.
    """
    provided = check_state_dict(model, state_dict, source=source)
    model.load_state_dict(provided, strict=True)
    return model



def _check_optimizer_state(optimizer, saved, source: str) -> None:
    """The checks ``Optimizer.load_state_dict`` makes, made before anything is touched."""
    if not isinstance(saved, Mapping) or "state" not in saved or not isinstance(saved.get("param_groups"), list):
        raise CheckpointError(f"{source}: 'optimizer' is not an optimizer state dict (nothing was loaded)")
    sizes = [len(g["params"]) for g in optimizer.param_groups]
    saved_sizes = [len(g.get("params", ())) if isinstance(g, Mapping) else -1 for g in saved["param_groups"]]
    if sizes != saved_sizes:
        raise CheckpointError(f"{source}: the optimizer's parameter groups hold {sizes} parameters, the "
                              f"checkpoint's {saved_sizes} (another model or optimizer; nothing was loaded)")


def load_states(state: Mapping, *, model: Optional[nn.Module] = None, optimizer=None, scheduler=None,
                source: str = "checkpoint") -> None:
    """Load ``state["model"]``, ``state["optimizer"]``, ``state["scheduler"]`` into the objects given,
    all or nothing: everything is checked first (:func:`check_state_dict`, the optimizer's parameter
    groups, the scheduler's dict), then copied. ``None`` objects or entries are skipped.

    Raises:
        CheckpointError: a state that does not fit (named); none of the objects was changed.
    """
    model_state = check_state_dict(model, state["model"], source=source) if model is not None else None
    load_optimizer = optimizer is not None and state.get("optimizer") is not None
    if load_optimizer:
        _check_optimizer_state(optimizer, state["optimizer"], source)
    load_scheduler = scheduler is not None and state.get("scheduler") is not None
    if load_scheduler and not isinstance(state["scheduler"], Mapping):
        raise CheckpointError(f"{source}: 'scheduler' should be a dict, got {type(state['scheduler']).__name__} "
                              "(nothing was loaded)")
    if model is not None:
        model.load_state_dict(model_state, strict=True)
    if load_optimizer:
        optimizer.load_state_dict(state["optimizer"])
    if load_scheduler:
        scheduler.load_state_dict(state["scheduler"])
