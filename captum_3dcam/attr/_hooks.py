"""What the core adds around Captum's hook plumbing: the ran-once check, buffer preservation, a
lock per model, and the training-mode warning.

Captum's ``compute_layer_gradients_and_eval`` captures the layers (it hands the network a clone,
so in-place operations after a hooked layer are safe) and takes the gradients. It keeps one
tensor per layer and device and silently overwrites a second call of the same layer, and its
hooks see every forward pass of the model, also one run by another thread. So this module:

- :class:`LayerCallCheck` counts the calls of each selected layer per device and checks each
  activation is a 5-D floating-point tensor, naming the layer when not (hooks removed in
  ``finally``);
- :func:`model_lock` serializes attributions of the same model across threads;
- :func:`preserve_buffers` restores BatchNorm statistics a training-mode forward pass updates;
- :func:`warn_if_training` warns once per model that is explained in training mode.

Does not live here: the gradients themselves (Captum) and the map rules (:mod:`.layer_rules`).
"""
import threading
import warnings
import weakref
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

__all__ = ["LayerCallCheck", "model_lock", "preserve_buffers", "warn_if_training"]


@contextmanager
def preserve_buffers(model: Optional[nn.Module]):
    """Restore the buffers of ``model``'s modules that are in training mode, on exit.

    A forward pass in training mode updates BatchNorm running statistics; explaining a model must
    not change it, so the buffers are copied before and written back after (also on error).
    """
    training = [] if model is None else [m for m in model.modules() if m.training]
    saved = [(b, b.detach().clone()) for m in training for b in m.buffers(recurse=False)]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.Lock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


@contextmanager
def model_lock(module: nn.Module):
    """Hold the lock of ``module`` (one per module, created on first use).

    Hooks live on the shared modules, so two threads explaining one model at once would see each
    other's layer calls; attributions of the same model therefore run one after the other.
    """
    with _LOCKS_GUARD:
        lock = _LOCKS.get(module)
        if lock is None:
            lock = _LOCKS[module] = threading.Lock()
    with lock:
        yield


_MODE_DEPENDENT = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._NormBase)
_WARNED: "weakref.WeakSet[nn.Module]" = weakref.WeakSet()


def warn_if_training(model: Optional[nn.Module], who: str) -> None:
    """Warn once per model whose dropout or batch-norm modules are in training mode."""
    if model is None or model in _WARNED or not any(
        m.training and isinstance(m, _MODE_DEPENDENT) for m in model.modules()
    ):
        return
    _WARNED.add(model)
    warnings.warn(
        f"{who}: the model is in training mode, so dropout and batch statistics make the maps "
        "differ between identical calls (BatchNorm running statistics are restored after each "
        "call). Call model.eval() to explain the model as it predicts.",
        UserWarning,
        stacklevel=3,
    )


class LayerCallCheck:
    """Context manager: count each layer's calls per device and check what it produces.

    Registered before Captum's capture hooks, so a bad activation is reported with the layer's
    name before anything else touches it.

    Args:
        layers: the modules, in order.
        names: their readable names, for messages.
        attribute_to_layer_input: check each layer's input instead of its output.
    """

    def __init__(
        self, layers: Sequence[nn.Module], names: Sequence[str], attribute_to_layer_input: bool
    ) -> None:
        self.layers = list(layers)
        self.names = list(names)
        self.to_input = attribute_to_layer_input
        self.calls: List[Dict[torch.device, int]] = [{} for _ in self.layers]
        self._handles: list = []

    def _check(self, index: int, value) -> None:
        name, what = self.names[index], "input" if self.to_input else "output"
        if self.to_input:
            tensors = [t for t in value if isinstance(t, Tensor)]
            if len(tensors) != 1:
                raise ValueError(
                    f"layers: attribute_to_layer_input needs one tensor input for layer '{name}', "
                    f"got {len(tensors)} tensor inputs"
                )
            value = tensors[0]
        if not isinstance(value, Tensor):
            raise ValueError(
                f"layers: the {what} of layer '{name}' must be a single tensor "
                f"(N, C, T, H, W), got {type(value).__name__}"
            )
        if value.dim() != 5:
            raise ValueError(
                f"layers: the {what} of layer '{name}' has shape {tuple(value.shape)}; 3DCam needs "
                "a 5-D activation (N, C, T, H, W): pick a 3D convolutional block, not a pooled, "
                "flattened or linear layer"
            )
        if not value.is_floating_point():
            raise ValueError(
                f"layers: the {what} of layer '{name}' must be floating-point to take gradients, "
                f"got dtype {value.dtype}"
            )
        counts = self.calls[index]
        counts[value.device] = counts.get(value.device, 0) + 1

    def _hook(self, index: int):
        if self.to_input:
            return lambda module, inputs: self._check(index, inputs)
        return lambda module, inputs, output: self._check(index, output)

    def __enter__(self) -> "LayerCallCheck":
        try:
            for i, layer in enumerate(self.layers):
                register = (
                    layer.register_forward_pre_hook if self.to_input else layer.register_forward_hook
                )
                self._handles.append(register(self._hook(i)))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def verify(self) -> None:
        """Raise when a layer did not run, or ran more than once on one device."""
        what = "input" if self.to_input else "output"
        for name, counts in zip(self.names, self.calls):
            if not counts:
                raise ValueError(
                    f"layers: layer '{name}' did not run in the forward pass, so it has no "
                    f"{what} to attribute; pick a layer that forward_func calls"
                )
            if max(counts.values()) > 1:
                raise ValueError(
                    f"layers: layer '{name}' ran {max(counts.values())} times in one forward "
                    "pass; 3DCam needs exactly one activation per layer (pick a module that is "
                    "called once; if another thread runs the same model outside captum_3dcam "
                    "meanwhile, its calls are seen too)"
                )
