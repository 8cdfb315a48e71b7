"""Checks on user input for the core: each raises a TypeError/ValueError naming the argument.

Lives here: inputs, layers, model output, targets (every Captum ``TargetType`` form, numpy ints
too), the normalization choice, the memory an ``output_size`` would take, and the explanation of
a dtype/device mismatch between the input and the model. Does not live here: the attribution
itself (:mod:`.attribution`) or checks of boxes and maps (:mod:`.metrics`, :mod:`.localization`).
"""
import os
from numbers import Integral
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

__all__ = [
    "check_inputs",
    "check_layers",
    "layer_names",
    "check_output",
    "resolve_targets",
    "select_scores",
    "check_normalization",
    "check_map_memory",
    "explain_forward_error",
    "owner_module",
]

NORMALIZATIONS = {True: "max", "max": "max", "minmax": "minmax", False: None, None: None}


def check_inputs(inputs) -> Tuple[Tensor, ...]:
    """``inputs`` as a tuple of clips ``(N, C, T_i, H_i, W_i)``, detached, one per model input.

    ``inputs`` is a tensor or, as in Captum, a tuple of tensors passed to the model as its
    positional inputs (one map per tensor comes back); every one is a non-empty floating-point 5-D
    clip of the same batch size ``N`` (inputs that are not clips go in ``additional_forward_args``).
    Tensors made under ``torch.inference_mode()`` are copied into ordinary tensors (autograd cannot
    record them); the user's tensors are never marked as requiring grad.
    """
    if isinstance(inputs, Tensor):
        all_inputs = (inputs,)
    elif isinstance(inputs, tuple) and inputs and all(isinstance(t, Tensor) for t in inputs):
        all_inputs = inputs
    else:
        got = type(inputs).__name__ if not isinstance(inputs, tuple) else (
            "an empty tuple" if not inputs else
            "a tuple holding " + ", ".join(sorted({type(t).__name__ for t in inputs if not isinstance(t, Tensor)})))
        raise TypeError(
            "inputs: expected a torch.Tensor of shape (N, C, T, H, W) or a tuple of them (one per model "
            f"input; arguments that are not clips go in additional_forward_args), got {got}"
        )
    for i, clip in enumerate(all_inputs):
        where = "inputs" if isinstance(inputs, Tensor) else f"inputs[{i}]"
        if clip.is_meta:
            raise ValueError(f"{where}: a 'meta' tensor holds no values to explain; pass a real tensor")
        if clip.dim() != 5:
            raise ValueError(f"{where}: expected a 5-D tensor (N, C, T, H, W), got shape {tuple(clip.shape)}"
                             + ("" if isinstance(inputs, Tensor) else
                                "; arguments that are not clips go in additional_forward_args"))
        if clip.shape[0] == 0:
            raise ValueError(f"{where}: expected a non-empty batch, got shape {tuple(clip.shape)}")
        if clip.shape[0] != all_inputs[0].shape[0]:
            raise ValueError(f"{where}: expected the batch size of inputs[0] ({all_inputs[0].shape[0]}), "
                             f"got shape {tuple(clip.shape)}")
        if any(s == 0 for s in clip.shape[1:]):
            raise ValueError(f"{where}: expected non-empty (C, T, H, W), got shape {tuple(clip.shape)}")
        if not clip.is_floating_point():
            raise TypeError(f"{where}: expected a floating-point tensor, got dtype {clip.dtype}")
        if not bool(torch.isfinite(clip).all()):
            raise ValueError(f"{where}: contains NaN or Inf values")
    # detached aliases: Captum marks what it captures as requiring grad, never the user's tensor
    return tuple(t.clone() if t.is_inference() else t.detach() for t in all_inputs)


def owner_module(forward_func) -> Optional[nn.Module]:
    """The ``nn.Module`` behind ``forward_func`` (itself, or the owner of a bound method)."""
    if isinstance(forward_func, nn.Module):
        return forward_func
    owner = getattr(forward_func, "__self__", None)
    return owner if isinstance(owner, nn.Module) else None


def check_layers(layers, forward_func) -> List[nn.Module]:
    """``layers`` as a non-empty list of distinct modules of ``forward_func`` (when it is one)."""
    if isinstance(layers, nn.Module) and not isinstance(layers, nn.ModuleList):
        layers = [layers]
    elif isinstance(layers, (list, tuple, nn.ModuleList)):
        layers = list(layers)
    else:
        raise TypeError(
            "layers: expected an nn.Module or a sequence of nn.Modules, "
            f"got {type(layers).__name__}"
        )
    if not layers:
        raise ValueError("layers: expected at least one layer, got an empty sequence")
    for i, layer in enumerate(layers):
        if not isinstance(layer, nn.Module):
            raise TypeError(f"layers[{i}]: expected an nn.Module, got {type(layer).__name__}")
    if len({id(layer) for layer in layers}) != len(layers):
        raise ValueError("layers: the same module is listed more than once")
    owner = owner_module(forward_func)
    if owner is not None:
        members = {id(m) for m in owner.modules()}
        for i, layer in enumerate(layers):
            if id(layer) not in members:
                raise ValueError(
                    f"layers[{i}]: {type(layer).__name__} is not a submodule of forward_func "
                    f"({type(owner).__name__})"
                )
    return layers


def layer_names(layers: Sequence[nn.Module], forward_func) -> List[str]:
    """Readable names: the attribute path inside the model where known, else the class name."""
    owner = owner_module(forward_func)
    by_id = {}
    if owner is not None:
        for name, module in owner.named_modules():
            by_id.setdefault(id(module), name or type(owner).__name__)
    return [by_id.get(id(layer), type(layer).__name__) for layer in layers]


def check_output(output, batch_size: int) -> Tensor:
    """The model output must be a finite floating-point ``(N, ...)`` tensor with a gradient."""
    if not isinstance(output, Tensor):
        raise TypeError(
            "forward_func: expected the model to return a tensor (N, num_classes), "
            f"got {type(output).__name__}"
        )
    if output.dim() < 2 or output.shape[0] != batch_size or output[0].numel() == 0:
        raise ValueError(
            f"forward_func: expected an output of shape (N={batch_size}, num_classes), "
            f"got {tuple(output.shape)}"
        )
    if not output.is_floating_point():
        raise TypeError(
            f"forward_func: expected floating-point scores to take gradients of, got dtype "
            f"{output.dtype}"
        )
    if not bool(torch.isfinite(output.detach()).all()):
        raise ValueError("forward_func: the model output contains NaN or Inf values")
    if not output.requires_grad:
        raise RuntimeError(
            "forward_func: the model output has no gradient with respect to the selected layers "
            "(is it computed under torch.inference_mode(), detached, or converted outside "
            "autograd?); 3DCam needs d output / d layer"
        )
    return output


def _index(value, what: str) -> int:
    if isinstance(value, Tensor) and value.numel() == 1 and not value.is_floating_point() \
            and value.dtype != torch.bool:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"target: expected an integer class index{what}, got {value!r}")
    return int(value)


def _as_tuple(value, what: str) -> Tuple[int, ...]:
    if isinstance(value, tuple):
        return tuple(_index(v, what) for v in value)
    return (_index(value, what),)


def resolve_targets(target, output: Tensor) -> Tensor:
    """Indices ``(N, D)`` into ``output`` ``(N, d_1, ..., d_D)``, one row per sample.

    Every Captum ``TargetType`` form: ``None`` (the predicted class, argmax of a 2-D output), an
    int (numpy integers and 0-d tensors too) or a tuple for every sample, a list of N ints or
    tuples, a 1-D tensor or array of N ints.
    """
    try:
        import numpy as np

        if isinstance(target, np.ndarray):
            target = torch.from_numpy(target)
    except ImportError:  # pragma: no cover - numpy ships with torch wheels
        pass
    n, dims = output.shape[0], tuple(output.shape[1:])
    device = output.device
    if target is None:
        if len(dims) != 1:
            raise ValueError(
                f"forward_func: target=None explains the predicted class of an output (N, "
                f"num_classes), got shape {tuple(output.shape)}; pass target indices"
            )
        return output.detach().argmax(dim=1, keepdim=True)
    if isinstance(target, Tensor) and target.numel() != 1:
        if target.is_floating_point() or target.dtype == torch.bool:
            raise TypeError(f"target: expected an integer tensor, got dtype {target.dtype}")
        if target.dim() != 1 or target.numel() != n:
            raise ValueError(
                f"target: expected a scalar or a tensor of length N={n}, "
                f"got shape {tuple(target.shape)}"
            )
        rows = target.to(device=device, dtype=torch.long)[:, None]
    elif isinstance(target, list):
        if len(target) != n:
            raise ValueError(f"target: expected a list of length N={n}, got length {len(target)}")
        tuples = [_as_tuple(t, f" for sample {i}") for i, t in enumerate(target)]
        if len({len(t) for t in tuples}) != 1:
            raise ValueError("target: the tuples of a list target must all have the same length")
        rows = torch.tensor(tuples, dtype=torch.long, device=device)
    else:
        rows = torch.tensor([_as_tuple(target, "")], dtype=torch.long, device=device).expand(n, -1)
    if rows.shape[1] != len(dims):
        raise ValueError(
            f"target: expected {len(dims)} index(es) per sample for an output of shape "
            f"{tuple(output.shape)}, got {rows.shape[1]}"
        )
    limits = torch.tensor(dims, device=device)
    bad = (rows < 0) | (rows >= limits)
    if bool(bad.any()):
        ranges = ", ".join(f"[0, {d - 1}]" for d in dims)
        raise ValueError(
            f"target: expected class indices in {ranges}, got {rows[bad.any(1)].squeeze(-1).tolist()}"
        )
    return rows


def select_scores(output: Tensor, rows: Tensor) -> Tensor:
    """``output[n, rows[n]]`` for each sample: the target scores ``(N,)``."""
    batch = torch.arange(output.shape[0], device=output.device)
    return output[(batch, *rows.unbind(1))]


def check_normalization(value) -> Optional[str]:
    """``normalize_layers`` as ``"max"``, ``"minmax"`` or ``None``."""
    try:
        return NORMALIZATIONS[value]
    except (KeyError, TypeError):
        raise ValueError(
            "normalize_layers: expected True or 'max' (divide by the maximum), 'minmax', or "
            f"False, got {value!r}"
        ) from None


def _device_memory(device: torch.device) -> Optional[int]:
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_properties(device).total_memory
    if device.type == "cpu":
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
            return None
    return None


def check_map_memory(batch: int, size: Sequence[int], device: torch.device, copies: int) -> None:
    """Refuse an ``output_size`` whose maps cannot fit in the device's memory, before allocating."""
    need = batch * copies * 4
    for s in size:
        need *= int(s)
    have = _device_memory(device)
    if have is not None and need > have:
        raise ValueError(
            f"output_size: maps of (N={batch}, 1, {', '.join(map(str, size))}) need about "
            f"{need / 2**30:.1f} GiB ({copies} float32 maps of that size at once), more than "
            f"the {have / 2**30:.1f} GiB of {device}; ask for a smaller output_size"
        )


def explain_forward_error(exc: Exception, forward_func, clip: Tensor) -> Exception:
    """A clear error for an input whose dtype or device differs from the model's, else ``exc``."""
    owner = owner_module(forward_func)
    params = [] if owner is None else [p for p in owner.parameters() if p.is_floating_point()]
    if not params or isinstance(owner, nn.DataParallel):
        return exc
    p = params[0]
    if p.is_meta:
        return ValueError(
            "forward_func: the model's parameters are on the 'meta' device and hold no values; "
            "materialize and load its weights first (model.to_empty(device=...) then "
            "load_state_dict) — the inputs are on " + str(clip.device)
        )
    if p.device != clip.device:
        return ValueError(
            f"inputs: the clip is on {clip.device} but the model's parameters are on "
            f"{p.device}; move one of them (clip.to({str(p.device)!r}) or model.to(...))"
        )
    if p.dtype != clip.dtype and not torch.is_autocast_enabled(clip.device.type):
        return TypeError(
            f"inputs: the clip has dtype {clip.dtype} but the model's parameters have "
            f"{p.dtype}; convert one of them (clip.to({p.dtype}) or model.to({clip.dtype}))"
        )
    return exc
