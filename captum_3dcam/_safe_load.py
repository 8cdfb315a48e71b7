"""Reading files that could carry code, safely; loading weights all or nothing.

Lives here, the one copy the whole package uses (checkpoints, annotation files, benchmarks):

- :func:`load_numpy_pickle`: a pickle read by a restricted unpickler whose ``find_class`` admits
  numpy arrays, numpy dtypes and scalars, ``collections.OrderedDict`` and ``_codecs.encode``
  (``str -> bytes`` only, how protocol 2 writes bytes) — nothing else; anything else (``os.system``
  through ``__reduce__``, any class) raises :class:`UnsafePickleError` *before* it is called. Every
  array is checked before numpy builds it (plain dtypes only, data of its exact size, no shape larger
  than the file): numpy trusts a pickle's dtype flags and would read its bytes as object pointers.
  The pure-Python unpickler and :func:`~captum_3dcam._untrusted.walk_untrusted` never recurse: any
  nesting, sharing or cycle ends in the tree or a clear error. Python 2 pickles (act-detector
  ``*-GT.pkl``, UCF101-24 ``pyannot.pkl``) are read with ``encoding="latin1"``, as numpy requires.
- :func:`torch_load_weights_only`: ``torch.load(weights_only=True)`` (tensors, dicts, lists,
  numbers, strings), bounded likewise, with one clear line on failure. No message of this module
  ever suggests turning that check off (torch's own advice to do so is not passed on).
- :func:`check_state_dict` / :func:`load_state_dict_exact` / :func:`load_states`: every key and
  shape (an optimizer's groups and states, a scheduler's entries) is checked before anything is
  copied, so a mismatching checkpoint leaves the model, optimizer and scheduler untouched. Lazy
  parameters (the lazy gates of :class:`~captum_3dcam.models.gating.LayerwiseGatedClassifier`) take the
  checkpoint's shape.

Written here rather than borrowed: ``torch.load(weights_only=True)`` cannot read numpy pickles, and
``numpy.load(allow_pickle=True)`` runs any code. Does not live here: the walk and the limits
(:mod:`captum_3dcam._untrusted`), the formats themselves (I3D's Flax tree, Hara's checkpoints:
:mod:`captum_3dcam.models.checkpoints`; the act-detector layout: :mod:`captum_3dcam.datasets.act_detector`).
"""
import importlib
import io
import math
import os
import pickle
import re
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Union

import torch
from torch import nn

from ._untrusted import optimizer_state_problem, scheduler_state_problem, short_repr, walk_untrusted
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


class _NdarrayToken:
    """What ``numpy.ndarray`` unpickles to: only ``_reconstruct``'s first argument, never called (a call
    would allocate any shape the file asks for)."""

    def __call__(self, *args, **kwargs):
        raise UnsafePickleError("the pickle calls numpy.ndarray directly; numpy pickles rebuild arrays with "
                                "_reconstruct or _frombuffer only, so it is not allowed (nothing was executed)")


_NDARRAY = _NdarrayToken()
#: dtype flags that make numpy treat an array's bytes as object pointers (object / structured dtypes).
_OBJECT_FLAGS = 0x01 | 0x02 | 0x04 | 0x20 | 0x40


class _NumpyOnlyUnpickler(pickle._Unpickler):
    """The pure-Python unpickler (iterative: any nesting loads), whose ``find_class`` admits only numpy
    arrays, dtypes and scalars, ``collections.OrderedDict`` and ``_codecs.encode``, and which checks every
    array it builds BEFORE numpy sees it: plain dtypes only (numeric, bool, bytes, str; no object or
    structured dtype: numpy would read the file's bytes as object pointers), data of the array's exact
    size, at most ``budget`` bytes allocated by shapes from the file, a dtype's state set once, before use.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, source: str, encoding: str, budget: int):
        super().__init__(file, encoding=encoding)
        self._source, self._budget, self._used = source, budget, {}
        multiarray, numeric = _numpy_core("multiarray"), _numpy_core("numeric")
        self._np_reconstruct, self._np_frombuffer, self._np_scalar = (
            multiarray._reconstruct, numeric._frombuffer, multiarray.scalar)
        import numpy as np

        allowed = {("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): np.dtype,
                   ("collections", "OrderedDict"): OrderedDict, ("_codecs", "encode"): _bytes_from_text}
        for module in ("numpy.core", "numpy._core"):
            allowed[(f"{module}.multiarray", "_reconstruct")] = self._reconstruct
            allowed[(f"{module}.multiarray", "scalar")] = self._scalar
            allowed[(f"{module}.numeric", "_frombuffer")] = self._frombuffer  # protocol 5
        for name in dir(getattr(np, "dtypes", object())):  # numpy >= 1.25 pickles dtype classes by these names
            if name.endswith("DType"):
                allowed[("numpy.dtypes", name)] = getattr(np.dtypes, name)
        self._allowed = allowed

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

    def _refuse(self, what: str):
        return UnsafePickleError(f"{self._source}: {what}; only arrays of plain numeric, bool or string dtypes "
                                 "are allowed, so it was not loaded (nothing was executed)")

    def _dtype(self, dtype, what: str):
        """``dtype`` as a plain numpy dtype, remembered as used (its state may no longer change)."""
        import numpy as np

        try:
            dt = dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)
        except Exception:
            raise self._refuse(f"{what} has no numpy dtype ({short_repr(dtype)})") from None
        if dt.hasobject or dt.fields is not None or dt.subdtype is not None or dt.kind not in "biufcSUVmM":
            raise self._refuse(f"{what} has an object or structured dtype ({dt})")
        self._used[id(dt)] = dt
        return dt

    def _shape(self, shape, dt, what: str) -> tuple:
        if not isinstance(shape, (tuple, list)) or len(shape) > 64 or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
            raise self._refuse(f"{what} has no valid shape ({short_repr(shape)})")
        return tuple(shape), math.prod(shape) * dt.itemsize

    def _reconstruct(self, subtype, shape, dtype):
        if subtype is not _NDARRAY:
            raise self._refuse(f"_reconstruct is asked for a {short_repr(subtype)}")
        dt = self._dtype(dtype, "an array")
        shape, nbytes = self._shape(shape, dt, "an array")
        self._budget -= nbytes
        if self._budget < 0:
            raise UnsafePickleError(f"{self._source}: an array of shape {shape} ({nbytes:,} bytes) is more than "
                                    "the file could hold; not loaded (nothing was executed)")
        import numpy as np

        return self._np_reconstruct(np.ndarray, shape, dt)

    def _frombuffer(self, buf, dtype, shape, order):
        return self._np_frombuffer(buf, self._dtype(dtype, "an array"), shape, order)

    def _scalar(self, dtype, *args):
        return self._np_scalar(self._dtype(dtype, "a scalar"), *args)

    def load_build(self):
        import numpy as np

        state, inst = self.stack[-1], self.stack[-2]
        if isinstance(inst, np.ndarray):
            if not isinstance(state, tuple) or len(state) not in (4, 5):
                raise self._refuse("an array with a malformed state")
            shape, dtype, raw = state[-4], state[-3], state[-1]
            dt = self._dtype(dtype, "an array")
            shape, nbytes = self._shape(shape, dt, f"an array of dtype {dt}")
            if not isinstance(raw, (bytes, bytearray, str)) or len(raw) != nbytes:
                raise self._refuse(f"an array of shape {shape} and dtype {dt} comes with "
                                   f"{short_repr(raw) if not isinstance(raw, (bytes, str)) else len(raw)} bytes of "
                                   f"data instead of {nbytes}")
        elif isinstance(inst, np.dtype):
            flags = state[7] if isinstance(state, tuple) and len(state) >= 8 else 0
            if (id(inst) in self._used or not isinstance(state, tuple) or not 5 <= len(state) <= 9
                    or any(isinstance(v, (dict, list, tuple)) for v in state[:7])
                    or not isinstance(flags, int) or flags & _OBJECT_FLAGS):
                raise self._refuse(f"a dtype state {short_repr(state)} (set after use, structured or object)")
        else:
            raise self._refuse(f"the pickle sets the state of a {type(inst).__name__}")
        pickle._Unpickler.load_build(self)
        if isinstance(inst, np.dtype):
            self._dtype(inst, "a dtype")

    dispatch[pickle.BUILD[0]] = load_build


def _check_leaf(source: str):
    def check(value, path):
        import numpy as np

        if isinstance(value, np.ndarray) and value.dtype.hasobject:
            raise UnsafePickleError(f"{source}: array {path!r} has an object dtype; only numeric arrays are allowed")

    return check


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
        unpickler = _NumpyOnlyUnpickler(io.BytesIO(data), source=source, encoding=encoding, budget=len(data))
        tree = unpickler.load()
    except UnsafePickleError as exc:
        if str(exc).startswith(source):
            raise
        raise UnsafePickleError(f"{source}: {exc} (nothing was executed)") from None
    except Exception as exc:  # truncated or garbage file (RecursionError and MemoryError included)
        raise pickle.UnpicklingError(f"{what}: could not unpickle {path}: not a readable pickle of numpy "
                                     f"arrays ({type(exc).__name__}: {str(exc)[:300]})") from None
    walk_untrusted(tree, source, error=UnsafePickleError, leaf=_check_leaf(source))
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
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a crafted, corrupt, truncated or foreign file
        raise CheckpointError(f"{what}: could not read {path} as a PyTorch checkpoint with "
                              f"torch.load(weights_only=True): {_torch_refusal(exc)[:300]}") from None
    walk_untrusted(state, f"{what}: {path}", error=CheckpointError)  # nothing later walks 2**40 paths or recurses
    return state


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
    load_scheduler = scheduler is not None and state.get("scheduler") is not None
    problem = ((load_optimizer and optimizer_state_problem(optimizer, state["optimizer"]))
               or (load_scheduler and scheduler_state_problem(scheduler, state["scheduler"])))
    if problem:
        raise CheckpointError(f"{source}: {problem} (nothing was loaded)")
    if model is not None:
        model.load_state_dict(model_state, strict=True)
    if load_optimizer:
        optimizer.load_state_dict(state["optimizer"])
    if load_scheduler:
        scheduler.load_state_dict(state["scheduler"])
