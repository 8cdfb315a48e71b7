"""Capture the activations of several layers in one forward pass, hooks removed in ``finally``.

The captured tensors are the ones gradients are later taken against with
``torch.autograd.grad``. Each hook hands the rest of the network a *clone* of the captured tensor,
so an in-place operation after a hooked layer (``nn.ReLU(inplace=True)``, ``out += identity``)
cannot overwrite the activation or re-route its gradient. Where nothing upstream requires grad (a
frozen model on a plain input), the captured tensor is detached and made a leaf that requires
grad, so the gradient still exists without touching any parameter's ``requires_grad``.
"""
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor, nn

__all__ = ["LayerCapture", "preserve_buffers"]


@contextmanager
def preserve_buffers(model: Optional[nn.Module]):
    """Restore the buffers of ``model``'s modules that are in training mode, on exit.

    A forward pass in training mode updates BatchNorm running statistics; explaining a model must
    not change it, so the buffers are copied before and written back after (also on error).
    """
    training = [] if model is None else [m for m in model.modules() if m.training]
    saved = [(b, b.detach().clone()) for m in training for b in m.buffers(recurse=False)]
    if not saved:
        yield
        return
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


class LayerCapture:
    """Context manager that records each layer's output (or first input) during a forward pass.

    Args:
        layers: the modules to hook, in order.
        names: a readable name per layer, used in error messages.
        attribute_to_layer_input: capture the layer's (single tensor) input instead of its output.

    After the forward pass, ``captured[i]`` lists the tensors layer ``i`` produced: one per call,
    or one per device under ``nn.DataParallel``.
    """

    def __init__(
        self,
        layers: Sequence[nn.Module],
        names: Sequence[str],
        attribute_to_layer_input: bool = False,
    ) -> None:
        self.layers = list(layers)
        self.names = list(names)
        self.attribute_to_layer_input = attribute_to_layer_input
        self.captured: List[List[Tensor]] = [[] for _ in self.layers]
        self._handles: list = []

    def _keep(self, index: int, tensor) -> Tensor:
        what = "input" if self.attribute_to_layer_input else "output"
        if not isinstance(tensor, Tensor):
            raise ValueError(
                f"layers: the {what} of layer '{self.names[index]}' must be a single tensor, "
                f"got {type(tensor).__name__}"
            )
        if not tensor.is_floating_point():
            raise ValueError(
                f"layers: the {what} of layer '{self.names[index]}' must be a floating-point "
                f"tensor to take gradients, got dtype {tensor.dtype}"
            )
        kept = tensor if tensor.requires_grad else tensor.detach().requires_grad_(True)
        self.captured[index].append(kept)
        return kept.clone()

    def _output_hook(self, index: int):
        def hook(module, inputs, output):
            return self._keep(index, output)

        return hook

    def _input_hook(self, index: int):
        def hook(module, inputs):
            if len(inputs) == 0:
                raise ValueError(
                    f"layers: layer '{self.names[index]}' was called without a positional "
                    "input; attribute_to_layer_input needs one tensor input"
                )
            if len(inputs) > 1 and any(isinstance(t, Tensor) for t in inputs[1:]):
                raise ValueError(
                    f"layers: the input of layer '{self.names[index]}' must be a single tensor, "
                    f"got {len(inputs)} positional tensors"
                )
            return (self._keep(index, inputs[0]),) + tuple(inputs[1:])

        return hook

    def __enter__(self) -> "LayerCapture":
        try:
            for i, layer in enumerate(self.layers):
                if self.attribute_to_layer_input:
                    handle = layer.register_forward_pre_hook(self._input_hook(i))
                else:
                    handle = layer.register_forward_hook(self._output_hook(i))
                self._handles.append(handle)
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove every hook this capture registered."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def per_layer(self, device_order: Dict[torch.device, int]) -> List[List[Tensor]]:
        """The captured tensors of each layer, checked: ran once, or once per device.

        Raises:
            ValueError: a layer did not run, or ran more than once on one device.
        """
        what = "input" if self.attribute_to_layer_input else "output"
        result = []
        for name, tensors in zip(self.names, self.captured):
            if not tensors:
                raise ValueError(
                    f"layers: layer '{name}' did not run in the forward pass, so it has no "
                    f"{what} to attribute; pick a layer that forward_func calls"
                )
            devices = [t.device for t in tensors]
            if len(set(devices)) != len(devices):
                raise ValueError(
                    f"layers: layer '{name}' ran {len(tensors)} times in one forward pass; "
                    "3DCam needs exactly one activation per layer (pick a module that is "
                    "called once)"
                )
            result.append(sorted(tensors, key=lambda t: device_order.get(t.device, 0)))
        return result
