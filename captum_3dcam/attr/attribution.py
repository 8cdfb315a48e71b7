r"""Global-local layer-wise 3DCam and its counterfactual, as Captum attributions.

Lives here: the two attribution classes. Captum's
``captum._utils.gradient.compute_layer_gradients_and_eval`` runs the one forward pass that
captures the activations :math:`A_k` of the K selected layers (hooks removed in ``finally``, a
clone handed to the network so in-place operations are safe, DataParallel pieces gathered in
device order) and the one backward pass (``torch.autograd.grad`` with respect to those
activations only, never the parameters) that gives

.. math::
    G_k = \frac{\partial \sum_n y_n[c_n]}{\partial A_k}

for all of them at once. Each layer becomes a map at the input's resolution by the chosen rule
(:mod:`captum_3dcam.attr.rules`; the default is the paper's eq. 1-2), and the maps are aggregated
(eq. 3):

.. math::
    \beta_k = \sum_c G_{kc}, \quad \alpha_k = \sum_c A_{kc}, \quad
    \mathrm{3DCam}_k = \mathrm{nrm}(\mathrm{ReLU}(\uparrow\beta_k))\,
                       \mathrm{nrm}(\mathrm{ReLU}(\uparrow\alpha_k)), \quad
    P = \mathrm{ReLU}\Big(\sum_k \mathrm{3DCam}_k\Big)

Does not live here: the rules (:mod:`.layer_rules`), the checks of user input
(:mod:`._validation`), the ran-once check, lock and buffer preservation (:mod:`._hooks`).
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from captum._utils.common import _format_additional_forward_args, _format_output
from captum._utils.gradient import compute_layer_gradients_and_eval
from captum._utils.typing import TargetType
from captum.attr import GradientAttribution
from torch import Tensor, nn

from ._hooks import LayerCallCheck, model_lock, preserve_buffers, warn_if_training
from ._validation import (
    check_inputs,
    check_layers,
    check_map_memory,
    check_normalization,
    check_output,
    explain_forward_error,
    layer_names,
    owner_module,
    resolve_targets,
    select_scores,
)
from .layer_inputs import layer_inputs
from .rules import AGGREGATIONS, aggregate, check_gate, check_rule, gate_fusion, layer_map
from .padding import check_margin, crop_time, input_margins, pad_time
from .upsample import check_size, upsample_to

__all__ = ["LayerwiseGlobalLocal3DCam", "GlobalLocal3DCam", "Counterfactual3DCam"]

_GRAD_DEFAULTS = {"allow_unused": True, "materialize_grads": True}  # a layer off the path -> 0


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
    :math:`P = \mathrm{ReLU}(\sum_k \mathrm{map}_k)` (eq. 3). Rules ``"gradcam"``,
    ``"gradcam++"``, ``"xgradcam"`` and ``"layercam"``, the ``"minmax"`` normalization, the
    aggregations ``"mean"``/``"max"`` and global-local gating (``gate=``:
    :math:`P = \mathrm{minmax}(G) \cdot \mathrm{minmax}(P)` with :math:`G` the deepest layers' map
    by the gate's rule) come from the same pass; see :mod:`captum_3dcam.attr.rules`.

    One forward and one backward pass serve all layers; the backward pass stops at the lowest
    selected layer, and no parameter gradient is computed. Nothing of the model is changed:
    ``training``, ``param.grad``, ``requires_grad`` and BatchNorm statistics stay as they were,
    and every hook is removed, also when an error is raised. Calls on the same model from several
    threads run one after the other. A model in training mode is explained as it is, with a
    warning (once per model): dropout and batch statistics make such maps vary between calls.

    Args:
        forward_func: the model (or a function of the model) mapping ``(N, C, T, H, W)`` clips to
            ``(N, num_classes)`` scores.
        layers: a module, or a sequence of modules, of ``forward_func``; each must be called once
            per forward pass and return one 5-D tensor.
        device_ids: for a ``forward_func`` that wraps an ``nn.DataParallel`` model: the order of
            the devices the batch is scattered to (taken from the model itself when it is an
            ``nn.DataParallel``; required otherwise, as in Captum).

    Attributes:
        layer_inputs: after each :meth:`attribute` call, the index of the input each layer
            belongs to (read from that call's forward pass; all 0 for one input).

    Example:
        >>> model = Small3DCNN(num_classes=5).eval()
        >>> cam = GlobalLocal3DCam(model, [model.conv1, model.conv2, model.conv3, model.conv4])
        >>> clip = torch.randn(2, 3, 16, 64, 64)
        >>> cam.attribute(clip).shape            # target=None: the predicted class
        torch.Size([2, 1, 16, 64, 64])

        A model of several clips (Captum's tuple inputs), e.g. SlowFast's two pathways:

        >>> slow_map, fast_map = GlobalLocal3DCam(two_pathways, layers).attribute((slow, fast))
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
        #: after each call: the index of the input each layer belongs to (all 0 for one input)
        self.layer_inputs: Optional[Tuple[int, ...]] = None

    def attribute(
        self,
        inputs: Union[Tensor, Tuple[Tensor, ...]],
        target: TargetType = None,
        additional_forward_args: Any = None,
        attribute_to_layer_input: bool = False,
        relu_attributions: bool = False,
        attr_dim_summation: bool = True,
        grad_kwargs: Optional[Dict[str, Any]] = None,
        *,
        layer_rule: str = "3dcam",
        aggregation: str = "sum",
        normalize_layers: Union[bool, str] = True,
        output_size: Optional[Sequence[int]] = None,
        return_layer_maps: bool = False,
        gate: Optional[str] = None,
        gate_layers: int = 1,
        gate_mode: str = "product",
        temporal_margin: int = 0,
    ):
        r"""Attribute the target class to space-time positions of the input.

        Args:
            inputs: clips ``(N, C, T, H, W)``, or, as in Captum, a tuple of clips
                ``(N, C, T_i, H_i, W_i)`` passed to ``forward_func`` as its positional inputs (e.g.
                SlowFast's slow and fast pathways); one map per input comes back. Must be finite.
                Arguments that are not clips go in ``additional_forward_args``.
            target: Captum's ``TargetType``: ``None`` for the predicted class (argmax of the
                output of the same forward pass), an int (numpy integers too) or a tuple for all
                samples, a list of N ints or tuples, or a 1-D tensor/array of N ints.
            additional_forward_args: further arguments passed to ``forward_func`` after the
                inputs, as in Captum.
            attribute_to_layer_input: use each layer's input instead of its output (Captum's
                fourth positional argument; the first four and ``grad_kwargs`` are
                ``LayerGradCam.attribute``'s, in its order).
            relu_attributions: as in Captum: clamp the final map at 0 (every rule's map already
                is non-negative, so this changes nothing; accepted for drop-in use).
            attr_dim_summation: as in Captum, ``True`` only: a map sums over channels (layers of
                different widths are fused), so ``False`` is refused with a ValueError.
            grad_kwargs: extra keyword arguments of ``torch.autograd.grad``, as in Captum.
            layer_rule: ``"3dcam"`` (paper eq. 1-2), ``"gradcam"``, ``"gradcam++"``, ``"xgradcam"``
                or ``"layercam"``.
            aggregation: ``"sum"`` (paper eq. 3), ``"mean"`` or ``"max"`` over layers.
            normalize_layers: ``True`` or ``"max"``: divide each normalized quantity by its
                per-sample maximum (``nrm``, the paper's); ``"minmax"``: ``(x - min) /
                (max - min)`` instead; ``False``: aggregate the raw maps.
            output_size: ``(T, H, W)`` of the maps; defaults to the input's.
            return_layer_maps: also return the per-layer maps.
            gate: global-local gating: ``None`` (the paper's fusion) or a rule name; the map of
                the last ``gate_layers`` layers by that rule (the deepest, when ``layers`` are
                listed shallow to deep as :func:`~captum_3dcam.models.default_layers` does)
                multiplies the aggregated map: ``P = minmax(gate map) * minmax(P)``.
            gate_layers: how many of the last layers make the gate (default 1).
            gate_mode: ``"product"`` or ``"geometric"`` (the square root of the product).
            temporal_margin: frames ``m``: the clip's first and last frame are repeated ``m``
                times before the pass and the maps cut back to the clip's frames
                (:mod:`captum_3dcam.attr.padding`): the clip's ends then lie away from the model's
                padding in time. The model sees ``T + 2 m`` frames (``target=None``: its
                prediction for them).

        Returns:
            ``P`` of shape ``(N, 1, T, H, W)`` on the input's device and dtype, non-negative; for a
            tuple of inputs a tuple ``(P_1, ..., P_I)``, ``P_i`` of shape ``(N, 1, T_i, H_i, W_i)``
            fusing the layers that belong to input ``i`` (zeros when none does); with
            ``return_layer_maps=True``, ``(P, [map_1, ..., map_K])`` in the order of ``layers``,
            each on the grid of its input.

        Multiple inputs: layer ``k`` belongs to the input its activation was computed from, read
        from the autograd graph of the forward pass (not from names;
        :mod:`captum_3dcam.attr.layer_inputs`); one computed from several (SlowFast's slow pathway
        after a lateral connection) belongs to the one whose ``(T, H, W)`` grid is the closest to
        its own. :attr:`layer_inputs` holds the input index of each layer after every call. The
        gate of input ``i`` is its own last ``gate_layers`` layers (all of them when it has fewer);
        ``temporal_margin`` pads each input in proportion to its frame rate, so inputs at different
        rates stay aligned in time (:func:`~captum_3dcam.attr.padding.input_margins`). Still one forward and one backward pass.

        Raises:
            RuntimeError: called under ``torch.inference_mode()``, or the model output has no
                gradient (detached, integer, computed without autograd).

        Shape:
            - inputs: :math:`(N, C, T, H, W)`
            - output: :math:`(N, 1, T, H, W)` (or ``(N, 1, *output_size)``)
        """
        if torch.is_inference_mode_enabled():
            raise RuntimeError(
                "attribute: gradients cannot be taken inside torch.inference_mode(); call "
                "attribute outside it (under torch.no_grad() it works: gradients are enabled "
                "for the attribution pass only)"
            )
        check_rule(layer_rule)
        if attr_dim_summation is not True:
            raise ValueError("attr_dim_summation: GlobalLocal3DCam's maps always sum over channels (layers of "
                             f"different widths are fused), so only True is accepted, got {attr_dim_summation!r}")
        if aggregation not in AGGREGATIONS:
            raise ValueError(
                f"aggregation: expected one of {sorted(AGGREGATIONS)}, got {aggregation!r}"
            )
        check_normalization(normalize_layers)
        check_gate(gate, gate_layers, gate_mode, len(self.layers))
        margin = check_margin(temporal_margin)
        clips = check_inputs(inputs)
        finals = [tuple(c.shape[2:]) if output_size is None else check_size(output_size, "output_size")
                  for c in clips]
        margins = input_margins(margin, [c.shape[2] for c in clips])
        # maps of the padded clips at the final (H, W), on the input's frames in time
        sizes = [(c.shape[2] + 2 * m, *f[1:]) if m else f for c, m, f in zip(clips, margins, finals)]
        keep_all = return_layer_maps or aggregation == "max"
        full_maps = (len(self.layers) + 1 if keep_all else 3) + (gate is not None)
        for c, size in zip(clips, sizes):
            check_map_memory(c.shape[0], size, c.device, full_maps)

        activations, gradients, owners = self._activations_and_gradients(
            tuple(pad_time(c, m) for c, m in zip(clips, margins)), target, additional_forward_args,
            attribute_to_layer_input, grad_kwargs,
        )
        self.layer_inputs = owners
        fuse = dict(layer_rule=layer_rule, aggregation=aggregation, normalize_layers=normalize_layers,
                    keep_all=keep_all, gate=gate, gate_layers=gate_layers, gate_mode=gate_mode)
        results, layer_maps = [], [None] * len(self.layers)
        for i, clip in enumerate(clips):
            mine = [k for k in range(len(self.layers)) if owners[k] == i]
            result, maps = self._fuse(activations, gradients, mine, (clip.shape[0], 1, *sizes[i]), clips[0].device,
                                      **fuse)
            if relu_attributions:
                result = result.clamp_min(0)

            def back(m: Tensor, i=i, clip=clip) -> Tensor:
                m = upsample_to(crop_time(m, margins[i], clip.shape[2]), finals[i]) if margins[i] else m
                return m.to(device=clip.device, dtype=clip.dtype)

            results.append(back(result))
            if return_layer_maps:
                for k, m in zip(mine, maps):
                    layer_maps[k] = back(m)
        result = _format_output(isinstance(inputs, tuple), tuple(results))
        return (result, layer_maps) if return_layer_maps else result

    def _fuse(self, activations, gradients, mine: List[int], shape, device, *, layer_rule, aggregation,
              normalize_layers, keep_all, gate, gate_layers, gate_mode) -> Tuple[Tensor, List[Tensor]]:
        """The fused map ``(N, 1, T, H, W)`` of the layers ``mine`` (and their maps when kept), each
        layer freed once used; no layer: zeros (nothing of the model was computed from this input)."""
        size = shape[2:]
        if not mine:
            return torch.zeros(shape, device=device), []
        gate_map = None
        if gate is not None:  # before the layers are freed below
            gate_map = aggregate([
                layer_map(activations[k], gradients[k], size, gate, self.counterfactual, "minmax")
                for k in mine[max(0, len(mine) - gate_layers):]
            ], "sum")
        maps, running = [], None
        for k in mine:
            m = layer_map(activations[k], gradients[k], size, layer_rule, self.counterfactual, normalize_layers)
            activations[k] = gradients[k] = None  # free each layer as soon as it is used
            if keep_all:
                maps.append(m)
            else:  # running sum: one full-size map in memory, not K
                running = m if running is None else running.add_(m)
        if running is not None:
            maps = [running / len(mine) if aggregation == "mean" else running]
        result = aggregate(maps, "sum" if running is not None else aggregation)
        if gate_map is not None:
            result = gate_fusion(result, gate_map, gate_mode)
        return result, maps

    def _activations_and_gradients(
        self, all_inputs, target, additional_forward_args, to_layer_input: bool, grad_kwargs
    ) -> Tuple[List[Tensor], List[Tensor], Tuple[int, ...]]:
        """One forward and one backward pass: ``(A_k, G_k)`` for every layer, on the clip's device,
        and the input each layer belongs to (:func:`~captum_3dcam.attr.layer_inputs.layer_inputs`)."""
        clip = all_inputs[0]
        if len(all_inputs) > 1:  # the graph then reaches the inputs (detached aliases: never the user's)
            all_inputs = tuple(x.requires_grad_() for x in all_inputs)
        model = owner_module(self.forward_func)
        device_ids = self.device_ids
        if device_ids is None and isinstance(self.forward_func, nn.DataParallel):
            device_ids = self.forward_func.device_ids
        check = LayerCallCheck(self.layers, self.layer_names, to_layer_input)

        def scores(*args):
            """The model's target scores ``(N,)``: what Captum differentiates."""
            try:
                output = self.forward_func(*args)
            except RuntimeError as exc:
                error = explain_forward_error(exc, self.forward_func, clip)
                if error is exc:
                    raise
                raise error from exc
            check.verify()  # before the backward pass: a layer ran twice or not at all
            output = check_output(output, clip.shape[0])
            return select_scores(output, resolve_targets(target, output))

        kwargs = {**_GRAD_DEFAULTS, **(grad_kwargs or {})}
        warn_if_training(model, type(self).__name__)
        lock = model_lock(model if model is not None else self.layers[0])
        with lock, preserve_buffers(model), check:
            try:
                gradients, activations = compute_layer_gradients_and_eval(
                    scores, self.layers, all_inputs,
                    additional_forward_args=_format_additional_forward_args(additional_forward_args),
                    device_ids=device_ids, attribute_to_layer_input=to_layer_input,
                    grad_kwargs=kwargs,
                )
            except AssertionError as exc:  # Captum's message when the device order is unknown
                if "device" in str(exc).lower():
                    raise ValueError(
                        "device_ids: the layers ran on several devices but the device order is "
                        "unknown; pass device_ids (the DataParallel model's device_ids) as in Captum"
                    ) from exc
                raise
        owners = layer_inputs([a[0] for a in activations], all_inputs)
        return (
            [a[0].detach().to(clip.device) for a in activations],
            [g[0].to(clip.device) for g in gradients],
            owners,
        )


GlobalLocal3DCam = LayerwiseGlobalLocal3DCam
"""Short public name of :class:`LayerwiseGlobalLocal3DCam`."""


class Counterfactual3DCam(LayerwiseGlobalLocal3DCam):
    r"""Counterfactual 3DCam (paper eq. 4): the same maps with the gradients negated.

    .. math::
        \hat\beta_k = -\sum_c \frac{\partial y[c]}{\partial A_{kc}}

    (every rule sees :math:`-G`: ``"gradcam"`` :math:`w = -\mathrm{mean}\,G`, ``"layercam"``
    :math:`\mathrm{ReLU}(-G)`, ``"gradcam++"`` its weights of :math:`-G`). It highlights the
    regions whose activation argues *against* the target class. Arguments and returns are those
    of :class:`LayerwiseGlobalLocal3DCam`.
    """

    counterfactual = True
