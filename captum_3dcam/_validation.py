"""Checks on user input: each raises a TypeError/ValueError naming the argument."""
from typing import List, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

__all__ = ["check_inputs", "check_layers", "layer_names", "check_output", "resolve_targets"]


def check_inputs(inputs) -> Tuple[Tuple[Tensor, ...], Tensor]:
    """Return ``(all_inputs, clip)``: ``inputs`` as a tuple, and the clip ``(N, C, T, H, W)``.

    ``inputs`` is a tensor ``(N, C, T, H, W)`` or a tuple whose first element is one (extra
    tensors are passed to the model as further positional inputs).
    """
    if isinstance(inputs, Tensor):
        all_inputs = (inputs,)
    elif isinstance(inputs, tuple) and inputs and isinstance(inputs[0], Tensor):
        all_inputs = inputs
    else:
        raise TypeError(
            "inputs: expected a torch.Tensor of shape (N, C, T, H, W) (or a tuple whose first "
            f"element is one), got {type(inputs).__name__}"
        )
    clip = all_inputs[0]
    if clip.dim() != 5:
        raise ValueError(
            f"inputs: expected a 5-D tensor (N, C, T, H, W), got shape {tuple(clip.shape)}"
        )
    if clip.shape[0] == 0:
        raise ValueError(f"inputs: expected a non-empty batch, got shape {tuple(clip.shape)}")
    if any(s == 0 for s in clip.shape[1:]):
        raise ValueError(
            f"inputs: expected non-empty (C, T, H, W), got shape {tuple(clip.shape)}"
        )
    if not clip.is_floating_point():
        raise TypeError(f"inputs: expected a floating-point tensor, got dtype {clip.dtype}")
    for i, t in enumerate(all_inputs):
        if isinstance(t, Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            where = "inputs" if len(all_inputs) == 1 else f"inputs[{i}]"
            raise ValueError(f"{where}: contains NaN or Inf values")
    return all_inputs, clip


def _owner_module(forward_func):
    if isinstance(forward_func, nn.Module):
        return forward_func
    owner = getattr(forward_func, "__self__", None)
    return owner if isinstance(owner, nn.Module) else None


def check_layers(layers, forward_func) -> List[nn.Module]:
    """``layers`` as a non-empty list of distinct modules of ``forward_func`` (when it is one)."""
    if isinstance(layers, nn.Module):
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
    owner = _owner_module(forward_func)
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
    owner = _owner_module(forward_func)
    by_id = {}
    if owner is not None:
        for name, module in owner.named_modules():
            by_id.setdefault(id(module), name or type(owner).__name__)
    return [by_id.get(id(layer), type(layer).__name__) for layer in layers]


def check_output(output, batch_size: int) -> Tensor:
    """The model output must be a finite ``(N, num_classes)`` tensor."""
    if not isinstance(output, Tensor):
        raise TypeError(
            "forward_func: expected the model to return a tensor (N, num_classes), "
            f"got {type(output).__name__}"
        )
    if output.dim() != 2 or output.shape[0] != batch_size or output.shape[1] == 0:
        raise ValueError(
            f"forward_func: expected an output of shape (N={batch_size}, num_classes), "
            f"got {tuple(output.shape)}"
        )
    if not bool(torch.isfinite(output).all()):
        raise ValueError("forward_func: the model output contains NaN or Inf values")
    return output


def _as_index(value, what: str) -> int:
    if isinstance(value, Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = value.item()
    if isinstance(value, tuple) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"target: expected an integer class index {what}, got {value!r}")
    return value


def resolve_targets(target, output: Tensor) -> Tensor:
    """Class index per sample, ``(N,)`` long on the output's device.

    ``None`` -> the predicted class (argmax); an int, a 1-tuple or a 0-d tensor -> the same class
    for every sample; a list or 1-D tensor of length N -> one class per sample.
    """
    n, num_classes = output.shape
    device = output.device
    if target is None:
        return output.detach().argmax(dim=1)
    if isinstance(target, Tensor):
        if target.is_floating_point() or target.dtype == torch.bool:
            raise TypeError(f"target: expected an integer tensor, got dtype {target.dtype}")
        if target.numel() == 1:
            idx = torch.full((n,), int(target.item()), dtype=torch.long, device=device)
        elif target.dim() == 1 and target.numel() == n:
            idx = target.to(device=device, dtype=torch.long)
        else:
            raise ValueError(
                f"target: expected a scalar or a tensor of length N={n}, "
                f"got shape {tuple(target.shape)}"
            )
    elif isinstance(target, list):
        if len(target) != n:
            raise ValueError(f"target: expected a list of length N={n}, got length {len(target)}")
        idx = torch.tensor(
            [_as_index(t, f"for sample {i}") for i, t in enumerate(target)],
            dtype=torch.long,
            device=device,
        )
    else:
        idx = torch.full((n,), _as_index(target, ""), dtype=torch.long, device=device)
    bad = (idx < 0) | (idx >= num_classes)
    if bool(bad.any()):
        raise ValueError(
            f"target: expected class indices in [0, {num_classes - 1}], "
            f"got {idx[bad].tolist()}"
        )
    return idx
