r"""Global-local layer-wise 3DCam and its counterfactual, as Captum attributions.

One forward pass records the activations :math:`A_k` of the K selected layers; one backward pass
(``torch.autograd.grad`` with respect to those activations only, never the parameters) gives

.. math::
    G_k = \frac{\partial \sum_n y_n[c_n]}{\partial A_k}

for all of them at once. Each layer becomes a map at the input's resolution by the chosen rule
(:mod:`captum_3dcam.layer_rules`; the default is the paper's eq. 1-2), and the maps are aggregated
(eq. 3):

.. math::
    \beta_k = \sum_c G_{kc}, \quad \alpha_k = \sum_c A_{kc}, \quad
    \mathrm{3DCam}_k = \mathrm{nrm}(\mathrm{ReLU}(\uparrow\beta_k))\,
                       \mathrm{nrm}(\mathrm{ReLU}(\uparrow\alpha_k)), \quad
    P = \mathrm{ReLU}\Big(\sum_k \mathrm{3DCam}_k\Big)
"""
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch
from captum._utils.common import _format_additional_forward_args
from captum._utils.typing import TargetType
from captum.attr import GradientAttribution
from torch import Tensor, nn

from ._capture import LayerCapture, preserve_buffers
from ._validation import (
    _owner_module,
    check_inputs,
    check_layers,
    check_output,
    layer_names,
    resolve_targets,
)
from .layer_rules import AGGREGATIONS, LAYER_RULES, aggregate, layer_map
from .upsample import check_size

__all__ = ["LayerwiseGlobalLocal3DCam", "GlobalLocal3DCam", "Counterfactual3DCam"]


def _device_order(forward_func, device_ids) -> dict:
    ids = device_ids
    if ids is None and isinstance(forward_func, nn.DataParallel):
        ids = forward_func.device_ids
    order = {}
    for pos, dev in enumerate(ids or []):
        dev = torch.device("cuda", dev) if isinstance(dev, int) else torch.device(dev)
        order[dev] = pos
    return order


def _join(pieces: List[Tensor], device: torch.device) -> Tensor:
    """One tensor on ``device`` from per-device pieces (no copy for a single piece there)."""
    if len(pieces) == 1:
        return pieces[0].to(device)
    return torch.cat([p.to(device) for p in pieces])


class LayerwiseGlobalLocal3DCam(GradientAttribution):
    r"""Global-local 3DCam over any list of layers of a 3D CNN (Yudistira et al., eq. 1-3).

    For each selected layer k with activation :math:`A_k` ``(N, C_k, T_k, H_k, W_k)`` and gradient
    :math:`G_k = \partial \sum_n y_n[c_n] / \partial A_k`, rule ``"3dcam"`` computes

    .. math::
        \beta_k = \sum_c G_{kc},\ \alpha_k = \sum_c A_{kc},\
        \mathrm{map}_k = \mathrm{nrm}(\mathrm{ReLU}(\uparrow\beta_k))
                         \cdot \mathrm{nrm}(\mathrm{ReLU}(\uparrow\alpha_k))

    where :math:`\uparrow` is trilinear upsampling to ``(T, H, W)`` and nrm divides each sample's
    map by its maximum (a map with no positive value stays 0). The attribution is
    :math:`P = \mathrm{ReLU}(\sum_k \mathrm{map}_k)` (eq. 3). Rules ``"gradcam"`` and
    ``"layercam"`` and aggregations ``"mean"``/``"max"`` are computed from the same pass; see
    :mod:`captum_3dcam.layer_rules`.

    One forward and one backward pass serve all layers; the backward pass stops at the lowest
    selected layer, and no parameter gradient is computed. Nothing of the model is changed:
    ``training``, ``param.grad`` and ``requires_grad`` stay as they were, and every hook is removed,
    also when an error is raised.

    Args:
        forward_func: the model (or a function of the model) mapping ``(N, C, T, H, W)`` clips to
            ``(N, num_classes)`` scores.
        layers: a module, or a sequence of modules, of ``forward_func``; each must be called once
            per forward pass and return a single tensor.
        device_ids: for a ``forward_func`` that wraps an ``nn.DataParallel`` model: the order of the
            devices the batch is scattered to (taken from the model itself when it is an
            ``nn.DataParallel``). Not needed otherwise.

    Example:
        >>> model = Small3DCNN(num_classes=5).eval()
        >>> cam = GlobalLocal3DCam(model, [model.conv1, model.conv2, model.conv3, model.conv4])
        >>> clip = torch.randn(2, 3, 16, 64, 64)
        >>> cam.attribute(clip).shape            # target=None: the predicted class
        torch.Size([2, 1, 16, 64, 64])
    """

    counterfactual = False

    def __init__(
        self,
        forward_func,
        layers: Union[nn.Module, Sequence[nn.Module]],
        device_ids: Optional[List[int]] = None,
    ) -> None:
        if not callable(forward_func):
            raise TypeError(
                f"forward_func: expected a model or a callable, got {type(forward_func).__name__}"
            )
        GradientAttribution.__init__(self, forward_func)
        self.layers = check_layers(layers, forward_func)
        self.layer_names = layer_names(self.layers, forward_func)
        self.device_ids = device_ids

    def attribute(
        self,
        inputs: Union[Tensor, Tuple[Tensor, ...]],
        target: TargetType = None,
        additional_forward_args: Any = None,
        *,
        layer_rule: str = "3dcam",
        aggregation: str = "sum",
        normalize_layers: bool = True,
        output_size: Optional[Sequence[int]] = None,
        return_layer_maps: bool = False,
        attribute_to_layer_input: bool = False,
    ) -> Union[Tensor, Tuple[Tensor, List[Tensor]]]:
        r"""Attribute the target class to space-time positions of the input.

        Args:
            inputs: clips ``(N, C, T, H, W)`` (or a tuple whose first element is the clip batch
                and the rest further model inputs). Must be finite.
            target: the class per sample: ``None`` for the predicted class (argmax of the output
                of the same forward pass), an int for all samples, or a list / 1-D tensor of N
                ints (Captum's ``TargetType``).
            additional_forward_args: further arguments passed to ``forward_func`` after the
                inputs, as in Captum.
            layer_rule: ``"3dcam"`` (paper eq. 1-2), ``"gradcam"`` or ``"layercam"``.
            aggregation: ``"sum"`` (paper eq. 3), ``"mean"`` or ``"max"`` over layers.
            normalize_layers: divide each layer map by its per-sample maximum (``nrm``); with
                False the raw products are aggregated.
            output_size: ``(T, H, W)`` of the maps; defaults to the input's.
            return_layer_maps: also return the per-layer maps.
            attribute_to_layer_input: use each layer's input instead of its output.

        Returns:
            ``P`` of shape ``(N, 1, T, H, W)`` on the input's device and dtype, non-negative; with
            ``return_layer_maps=True``, ``(P, [map_1, ..., map_K])`` in the order of ``layers``.

        Shape:
            - inputs: :math:`(N, C, T, H, W)`
            - output: :math:`(N, 1, T, H, W)` (or ``(N, 1, *output_size)``)
        """
        if layer_rule not in LAYER_RULES:
            raise ValueError(
                f"layer_rule: expected one of {sorted(LAYER_RULES)}, got {layer_rule!r}"
            )
        if aggregation not in AGGREGATIONS:
            raise ValueError(
                f"aggregation: expected one of {sorted(AGGREGATIONS)}, got {aggregation!r}"
            )
        all_inputs, clip = check_inputs(inputs)
        size = tuple(clip.shape[2:]) if output_size is None else check_size(output_size, "output_size")
        extra = _format_additional_forward_args(additional_forward_args) or ()

        activations, gradients = self._activations_and_gradients(
            all_inputs, clip, target, extra, attribute_to_layer_input
        )
        maps, running = [], None
        for k in range(len(activations)):
            m = layer_map(
                activations[k], gradients[k], size, layer_rule, self.counterfactual, normalize_layers
            )
            activations[k] = gradients[k] = None  # free each layer as soon as it is used
            if return_layer_maps or aggregation not in ("sum", "mean"):
                maps.append(m)
            else:  # running sum: one full-size map in memory, not K
                running = m if running is None else running.add_(m)
        if running is not None:
            maps = [running / len(activations) if aggregation == "mean" else running]
            aggregation = "sum"
        result = aggregate(maps, aggregation).to(device=clip.device, dtype=clip.dtype)
        if return_layer_maps:
            return result, [m.to(device=clip.device, dtype=clip.dtype) for m in maps]
        return result

    def _activations_and_gradients(
        self, all_inputs, clip: Tensor, target, extra: tuple, to_layer_input: bool
    ) -> Tuple[List[Tensor], List[Tensor]]:
        """One forward and one backward pass: ``(A_k, G_k)`` for every layer, on the clip's device."""
        capture = LayerCapture(self.layers, self.layer_names, to_layer_input)
        with torch.enable_grad(), preserve_buffers(_owner_module(self.forward_func)):
            with capture:
                output = self.forward_func(*all_inputs, *extra)
            output = check_output(output, clip.shape[0])
            targets = resolve_targets(target, output)
            per_layer = capture.per_layer(_device_order(self.forward_func, self.device_ids))
            flat = [t for tensors in per_layer for t in tensors]
            score = output.gather(1, targets[:, None]).sum()
            if score.requires_grad:
                grads = torch.autograd.grad(score, flat, allow_unused=True)
            else:  # no selected layer reaches the output: its gradient is zero
                grads = [None] * len(flat)
        grads = [torch.zeros_like(t) if g is None else g for t, g in zip(flat, grads)]

        activations, gradients, pos = [], [], 0
        for tensors in per_layer:
            pieces = range(pos, pos + len(tensors))
            pos += len(tensors)
            activations.append(_join([flat[i].detach() for i in pieces], clip.device))
            gradients.append(_join([grads[i] for i in pieces], clip.device))
        return activations, gradients


GlobalLocal3DCam = LayerwiseGlobalLocal3DCam
"""Short public name of :class:`LayerwiseGlobalLocal3DCam`."""


class Counterfactual3DCam(LayerwiseGlobalLocal3DCam):
    r"""Counterfactual 3DCam (paper eq. 4): the same maps with the gradients negated.

    .. math::
        \hat\beta_k = -\sum_c \frac{\partial y[c]}{\partial A_{kc}}

    (``"gradcam"``: :math:`w = -\mathrm{mean}\,G`; ``"layercam"``: :math:`\mathrm{ReLU}(-G)`).
    It highlights the regions whose activation argues *against* the target class. Arguments and
    returns are those of :class:`LayerwiseGlobalLocal3DCam`.
    """

    counterfactual = True
