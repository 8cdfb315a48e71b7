"""Layer-wise attention gating (paper section 3.5, Tables 6-7): classifiers on intermediate layers.

``y = y_backbone + sum_k g_k(A_k)``, where ``g_k`` is a :class:`~captum_3dcam.models.gates.LayerGate` on the
activation ``A_k`` of layer ``k`` (formula and pooling there). The gates are sized from the layers'
activation shapes: by a dry run at construction when ``input_shape``/``example_input`` is given, or
otherwise lazily on the first forward call (the SPEC's ``LayerwiseGatedClassifier(backbone, layers,
num_classes)``; see the class docstring for what that means for optimizers and ``state_dict``). They
are attached with forward hooks that exist only while :meth:`LayerwiseGatedClassifier.forward`
runs (registered and removed in ``try/finally``): the backbone module is never edited, no hook
outlives a call, ``copy.deepcopy``, pickling and ``state_dict`` behave as for any module.

Lives here: :class:`LayerwiseGatedClassifier`. Does not live here: one gate
(:class:`~captum_3dcam.models.gates.LayerGate`, re-exported here), training (:mod:`captum_3dcam.training.loop`).
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .._utils import resolve_layers
from .gates import PAPER_GATE_LAYERS, LayerGate, is_lazy, param_device_dtype

__all__ = ["LayerGate", "LayerwiseGatedClassifier", "PAPER_GATE_LAYERS"]

LayerSpec = Union[str, nn.Module]


class LayerwiseGatedClassifier(nn.Module):
    """A 3D CNN with gated classifiers on intermediate layers; the logits are summed.

    ``y = y_backbone + sum_k g_k(A_k)`` (or ``sum_k g_k(A_k)`` alone with
    ``include_backbone_logits=False``), where ``A_k`` is the output of ``layers[k]`` and ``g_k`` a
    :class:`LayerGate` (ReLU, average pool to ``(T_k // temporal_factor, 1, 1)``, flatten, Linear).

    **When are the gates built?** Their input sizes ``C_k * T_k // t`` depend on the layers'
    activation shapes, which only a forward pass shows:

    * ``input_shape=(C, T, H, W)`` or ``example_input=clips``: one dry forward pass of the backbone
      at construction (eval mode, no gradients; the training flag is restored and BatchNorm
      statistics are untouched). The gates are ordinary ``nn.Linear`` layers at once.
    * neither (the SPEC's ``LayerwiseGatedClassifier(backbone, layers, num_classes)``): the gates
      are *lazy*, like PyTorch's ``nn.LazyLinear``. They are sized on the **first forward call**,
      from the shapes the hooks see in that very call (no extra forward pass), on the device and
      dtype of their placeholders (the backbone's at construction; ``.to()`` moves them), and
      initialized then (from the global RNG). ``built`` tells whether this happened; until then
      ``in_channels``/``temporal_sizes`` hold ``None``. If that first call fails, the gates stay
      lazy. What a lazy model means in practice:

      - **Create the optimizer after the first forward** (``model(x)`` on one batch, e.g. under
        ``torch.no_grad()``) or pass ``input_shape``. Before it, ``parameters()`` and
        ``gate_parameters()`` yield the gates' ``UninitializedParameter`` placeholders: PyTorch
        materializes them in place, so a plain SGD/Adam created on them (as
        ``captum_3dcam.training.loop.train`` does) still trains the gates, but anything that reads
        their shape or values before the first forward (counting or copying parameters,
        gradient clipping, parameter randomization) fails with PyTorch's "uninitialized
        parameter" ``ValueError``.
      - ``load_state_dict`` into a lazy model works: the gates take the checkpoint's weights
        (and its pooled length ``T' = fc.in_features / C_k``, found on the first forward), as
        ``nn.LazyLinear`` does. ``state_dict()`` of a model whose gates hold neither built nor
        loaded weights raises ``RuntimeError`` (run one forward first).
      - ``GlobalLocal3DCam(model, model.gated_layers)`` works (``gated_layers`` is known at
        construction), but its forward pass builds the gates with random weights: explain a
        trained model.

    Built either way, ``state_dict``/``load_state_dict`` round-trip between two instances built
    with the same layers and clip length.

    The backbone becomes the submodule ``backbone`` (the same object, not a copy). Its gates live in
    ``gates`` (an ``nn.ModuleList`` in the order of ``layers``). Hooks are registered on the backbone
    only for the duration of a forward call and removed in ``finally``.

    Args:
        backbone: a 3D CNN whose ``forward`` returns ``(N, num_classes)`` logits.
        layers: the layers to gate: modules of ``backbone`` or their dotted names
            (``"Mixed_4f"``, ``"layer3.1.conv2"``), in any order; each must run exactly once per
            forward and output ``(N, C_k, T_k, H_k, W_k)``.
        num_classes: number of classes; must equal the backbone's output width.
        temporal_factor: ``t``, the gates keep ``T_k // t`` time steps (2 in the paper).
        input_shape: ``(C, T, H, W)`` of one clip, for a dry run at construction (or pass
            ``example_input``; neither: the gates are built on the first forward call).
        example_input: a clip batch ``(N, C, T, H, W)`` for the dry run (or pass ``input_shape``).
        channel_pool: the paper's literal pooling: average the channels too, so each gate sees only
            ``T_k // t`` numbers. Default ``False`` (keep channels: ``C_k * T_k // t`` features).
        include_backbone_logits: add the backbone's logits to the gates' (default ``True``, the
            paper's sum). ``False``: the output is the sum of the gates' logits alone.
        freeze_backbone: train only the gates. This *explicitly changes the backbone*: it sets
            ``requires_grad=False`` on every backbone parameter (the previous flags are kept and
            restored by ``set_backbone_frozen(False)``) and keeps the backbone in eval mode, so
            ``.train()`` updates neither its weights nor its BatchNorm statistics. Default ``False``:
            the backbone's ``requires_grad`` flags are never touched.
        clamp_temporal: a layer with ``T_k < temporal_factor`` keeps ``1`` time step (``True``,
            default, which the paper's ResNeXt needs: its ``layer4`` has ``T_k = 1`` on 16-frame
            clips) or raises ``ValueError`` (``False``). The kept sizes are in ``temporal_sizes``.

    Attributes:
        layer_names: dotted names of the gated layers inside ``backbone``.
        gated_layers: the gated modules themselves (the layers to explain with 3DCam).
        built: whether the gates are sized (``False`` for a lazy model before its first forward).
        temporal_sizes: ``T_k // t`` (clamped) per gate (``None`` entries before it is built).
        in_channels: ``C_k`` per gate (``None`` entries before it is built).

    Shape:
        input ``(N, C, T, H, W)``; output ``(N, num_classes)``. With ``return_gate_logits=True``:
        ``(logits, [gate_logits_1, ..., gate_logits_K], backbone_logits)``, each ``(N, num_classes)``.

    Example:
        >>> from captum_3dcam.models.small import Small3DCNN
        >>> backbone = Small3DCNN(num_classes=5)
        >>> model = LayerwiseGatedClassifier(backbone, ["conv2", "conv3", "conv4"], 5,
        ...                                  input_shape=(3, 16, 64, 64))
        >>> logits, gate_logits, backbone_logits = model(torch.randn(2, 3, 16, 64, 64),
        ...                                              return_gate_logits=True)
        >>> logits.shape, len(gate_logits)
        (torch.Size([2, 5]), 3)
        >>> lazy = LayerwiseGatedClassifier(Small3DCNN(num_classes=5), ["conv3", "conv4"], 5)
        >>> lazy.built, lazy.temporal_sizes
        (False, [None, None])
        >>> _ = lazy(torch.randn(1, 3, 16, 64, 64))  # the first forward sizes the gates
        >>> lazy.built, lazy.temporal_sizes
        (True, [2, 2])
        >>> optimizer = torch.optim.SGD(lazy.parameters(), lr=0.001)  # after the first forward
    """

    def __init__(
        self,
        backbone: nn.Module,
        layers: Union[LayerSpec, Sequence[LayerSpec]],
        num_classes: int,
        temporal_factor: int = 2,
        *,
        input_shape: Optional[Sequence[int]] = None,
        example_input: Optional[torch.Tensor] = None,
        channel_pool: bool = False,
        include_backbone_logits: bool = True,
        freeze_backbone: bool = False,
        clamp_temporal: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"backbone: expected a torch.nn.Module, got {type(backbone).__name__}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes: expected an int >= 1, got {num_classes!r}")
        if (
            isinstance(temporal_factor, bool)
            or not isinstance(temporal_factor, int)
            or temporal_factor < 1
        ):
            raise ValueError(f"temporal_factor: expected an int >= 1, got {temporal_factor!r}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.temporal_factor = temporal_factor
        self.channel_pool = bool(channel_pool)
        self.include_backbone_logits = bool(include_backbone_logits)
        self.layer_names: List[str] = resolve_layers(backbone, layers)[0]

        self.clamp_temporal = bool(clamp_temporal)
        if input_shape is None and example_input is None:
            # lazy: the gates are sized on the first forward call (see the class docstring)
            device, dtype = param_device_dtype(backbone, torch.empty(0))
            self.gates = nn.ModuleList(
                LayerGate(None, None, num_classes, self.channel_pool, device=device, dtype=dtype)
                for _ in self.layer_names
            )
        else:
            example = _example_batch(backbone, input_shape, example_input)
            shapes = self._dry_run(example)
            sizes = [(shape[1], self._temporal_size(name, shape, example.shape))
                     for name, shape in zip(self.layer_names, shapes)]
            device, dtype = param_device_dtype(backbone, example)
            self.gates = nn.ModuleList(LayerGate(c, t, num_classes, self.channel_pool).to(device=device, dtype=dtype)
                                       for c, t in sizes)
        self._saved_requires_grad: Optional[List[bool]] = None
        self.backbone_frozen = False
        if freeze_backbone:
            self.set_backbone_frozen(True)

    # ------------------------------------------------------------------ freezing
    def set_backbone_frozen(self, frozen: bool = True) -> "LayerwiseGatedClassifier":
        """Freeze (``requires_grad=False``, eval mode) or unfreeze the backbone.

        Unfreezing restores the ``requires_grad`` flags the parameters had before freezing and the
        module's current training mode. Returns ``self``.
        """
        params = list(self.backbone.parameters())
        if frozen and not self.backbone_frozen:
            self._saved_requires_grad = [p.requires_grad for p in params]
            for p in params:
                p.requires_grad_(False)
            self.backbone.eval()
        elif not frozen and self.backbone_frozen:
            saved = self._saved_requires_grad or [True] * len(params)
            for p, flag in zip(params, saved):
                p.requires_grad_(flag)
            self._saved_requires_grad = None
            self.backbone.train(self.training)
        self.backbone_frozen = bool(frozen)
        return self

    def train(self, mode: bool = True) -> "LayerwiseGatedClassifier":
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self

    @property
    def built(self) -> bool:
        """Whether every gate is sized (always ``True`` with ``input_shape``/``example_input``)."""
        return all(gate.is_built for gate in self.gates)

    @property
    def in_channels(self) -> List[Optional[int]]:
        """``C_k`` per gate (``None`` for a gate not built yet)."""
        return [gate.in_channels for gate in self.gates]

    @property
    def temporal_sizes(self) -> List[Optional[int]]:
        """``T_k // t`` (clamped) per gate (``None`` for a gate not built yet)."""
        return [gate.temporal_size for gate in self.gates]

    def _temporal_size(self, name: str, shape, input_shape) -> int:
        t_k = shape[2]
        if t_k < self.temporal_factor and not self.clamp_temporal:
            raise ValueError(
                f"layers: layer {name!r} has temporal size T_k={t_k} < temporal_factor="
                f"{self.temporal_factor} for input {tuple(input_shape)}; use a longer clip, a "
                "smaller temporal_factor, or clamp_temporal=True (keeps 1 time step)"
            )
        return max(t_k // self.temporal_factor, 1)

    def _lazy_size(self, i: int, shape, input_shape) -> int:
        """``T'`` of lazy gate ``i`` from its layer's activation shape ``(N, C_k, T_k, H_k, W_k)``.

        A gate whose ``fc`` was loaded by ``load_state_dict`` keeps the checkpoint's pooled length:
        ``T' = fc.in_features / C_k`` (or ``fc.in_features`` with ``channel_pool``).
        """
        gate, name, c_k = self.gates[i], self.layer_names[i], shape[1]
        loaded = gate.loaded_in_features
        if loaded is None:
            return self._temporal_size(name, shape, input_shape)
        per_step = 1 if self.channel_pool else c_k
        if loaded % per_step:
            raise ValueError(
                f"state_dict: the loaded gate of layer {name!r} has fc.in_features={loaded}, not "
                f"a multiple of the layer's {per_step} channel(s): the checkpoint is of another "
                "model (other layers, backbone or channel_pool)"
            )
        return loaded // per_step

    @property
    def gated_layers(self) -> List[nn.Module]:
        """The gated modules of ``backbone``, in order: the layers to give 3DCam.

        ``GlobalLocal3DCam(model, model.gated_layers).attribute(x)`` explains the gated model; the
        gradients reaching each layer then include its gate's path as well as the backbone's.
        """
        return [self.backbone.get_submodule(n) for n in self.layer_names]

    def gate_parameters(self):
        """The gates' parameters (what to give the optimizer when the backbone is frozen).

        On a lazy model before its first forward these are PyTorch ``UninitializedParameter``
        placeholders (see the class docstring): create the optimizer after the first forward.
        """
        return self.gates.parameters()

    def state_dict(self, *args, **kwargs):
        """``nn.Module.state_dict``; raises ``RuntimeError`` while a lazy gate has no weights."""
        unsized = [n for n, g in zip(self.layer_names, self.gates) if is_lazy(g.fc.weight)]
        if unsized:
            raise RuntimeError(
                f"state_dict: the gates of layers {unsized} are not built yet (no input_shape was "
                "given, so they are sized on the first forward call); call the model once on a "
                "batch of clips first, or construct it with input_shape=(C, T, H, W)"
            )
        return super().state_dict(*args, **kwargs)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, *args, return_gate_logits: bool = False, **kwargs):
        """``y = y_backbone + sum_k g_k(A_k)``; extra ``args``/``kwargs`` go to the backbone.

        Returns ``logits`` ``(N, num_classes)``, or with ``return_gate_logits=True`` the tuple
        ``(logits, [gate_logits_k], backbone_logits)``. A lazy gate is sized only once the whole
        first call has succeeded, so a failed first call leaves the model lazy.

        Shape:
            ``x`` ``(N, C, T, H, W)`` -> ``(N, num_classes)``
        """
        backbone_logits, gate_logits = self._run_backbone(x, args, kwargs, gated=True)
        _check_logits(backbone_logits, self.num_classes)
        for i, gate in enumerate(self.gates):
            if isinstance(gate_logits[i], tuple):  # a lazy gate's first call, which succeeded: size it
                c_k, t_k, pooled = gate_logits[i]
                gate_logits[i] = gate.build(c_k, t_k).fc(pooled)
        logits = torch.stack(gate_logits, dim=0).sum(dim=0)
        if self.include_backbone_logits:
            logits = logits + backbone_logits
        if return_gate_logits:
            return logits, gate_logits, backbone_logits
        return logits

    def _run_backbone(self, x, args, kwargs, gated: bool):
        """Runs the backbone once with temporary hooks on the gated layers.

        With ``gated`` the hooks apply each gate to its layer's output as soon as it is produced
        (so a later in-place op of the backbone cannot alter it; a lazy gate records
        ``(C_k, T', pooled features)``); otherwise they record shapes. Returns ``(backbone_output, [per-layer result])``.
        """
        modules = self.gated_layers
        results: List[Optional[object]] = [None] * len(modules)
        calls = [0] * len(modules)

        def make_hook(i: int):
            def hook(_module, _inputs, output):
                calls[i] += 1
                if calls[i] > 1:
                    return None
                if not isinstance(output, torch.Tensor) or output.dim() != 5:
                    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output)
                    raise ValueError(
                        f"layers: layer {self.layer_names[i]!r} must output a 5-D tensor "
                        f"(N, C, T, H, W), got {shape}"
                    )
                if not gated:
                    results[i] = tuple(output.shape)
                    return None
                gate = self.gates[i]
                if gate.is_built:
                    results[i] = gate(output)
                else:  # pooled now, sized and applied once the whole call has succeeded
                    size = self._lazy_size(i, output.shape, x.shape)
                    results[i] = (output.shape[1], size, gate.pool(output, size))
                return None

            return hook

        handles = []
        try:
            for i, module in enumerate(modules):
                handles.append(module.register_forward_hook(make_hook(i)))
            out = self.backbone(x, *args, **kwargs)
        finally:
            for handle in handles:
                handle.remove()
        for name, n_calls in zip(self.layer_names, calls):
            if n_calls != 1:
                raise ValueError(
                    f"layers: layer {name!r} ran {n_calls} times in one forward pass of the "
                    "backbone; a gated layer must run exactly once (pick a module that is not "
                    "reused and lies on the forward path)"
                )
        return out, results

    def _dry_run(self, example: torch.Tensor) -> List[Tuple[int, ...]]:
        was_training = self.backbone.training
        try:
            self.backbone.eval()
            with torch.no_grad():
                out, shapes = self._run_backbone(example, (), {}, gated=False)
        finally:
            self.backbone.train(was_training)
        _check_logits(out, self.num_classes, during="the dry run at construction")
        return shapes  # type: ignore[return-value]

    def extra_repr(self) -> str:
        return (
            f"layers={self.layer_names}, num_classes={self.num_classes}, "
            f"temporal_factor={self.temporal_factor}, temporal_sizes={self.temporal_sizes}, "
            f"include_backbone_logits={self.include_backbone_logits}, "
            f"backbone_frozen={self.backbone_frozen}"
        )


# ---------------------------------------------------------------------- helpers
def _example_batch(backbone, input_shape, example_input) -> torch.Tensor:
    if example_input is not None:
        if not isinstance(example_input, torch.Tensor):
            raise TypeError(f"example_input: expected a torch.Tensor, got {type(example_input).__name__}")
        if example_input.dim() != 5:
            raise ValueError(f"example_input: expected a clip batch (N, C, T, H, W), got shape "
                             f"{tuple(example_input.shape)}")
        return example_input
    if input_shape is None:
        raise TypeError("input_shape: the gates' sizes are found by a dry run of the backbone; pass "
                        "input_shape=(C, T, H, W) of one clip (or example_input=a clip batch)")
    shape = tuple(input_shape)
    if len(shape) != 4 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f"input_shape: expected 4 positive ints (C, T, H, W), got {input_shape!r}")
    device, dtype = param_device_dtype(backbone, torch.empty(0))
    return torch.zeros((1,) + shape, device=device, dtype=dtype)


def _check_logits(out, num_classes: int, during: str = "forward") -> None:
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"backbone: expected its output to be logits (N, num_classes) during {during}, got {shape}")
    if out.shape[1] != num_classes:
        raise ValueError(f"num_classes: the gated classifier was given num_classes={num_classes} but the "
                         f"backbone outputs {out.shape[1]} logits (shape {tuple(out.shape)})")
