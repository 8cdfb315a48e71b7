"""One attention gate (paper section 3.5): ReLU, average pool to ``(T', 1, 1)``, flatten, Linear.

Lives here: :class:`LayerGate` (built, or lazy: an ``nn.LazyLinear`` sized by :meth:`LayerGate.
build`) and :data:`PAPER_GATE_LAYERS`. Does not live here: attaching gates to a backbone and
summing their logits (:class:`~captum_3dcam.models.gating.LayerwiseGatedClassifier`).
"""
from typing import Dict, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["LayerGate", "PAPER_GATE_LAYERS"]

#: The layers the paper gates (section 4, "Models"), by backbone family.
PAPER_GATE_LAYERS: Dict[str, Tuple[str, ...]] = {
    "i3d": ("Mixed_3c", "Mixed_4f", "Mixed_5c"),
    "resnext3d": ("conv1", "layer1", "layer2", "layer3", "layer4"),
}


class LayerGate(nn.Module):
    """One gate: ReLU, average-pool to ``(T', 1, 1)``, flatten, Linear.

    ``g(A) = W flatten(avgpool_{(T', 1, 1)}(relu(A))) + b``. With ``channel_pool=True`` the channels
    are averaged too (the paper's literal ``B x T/t x 1 x 1 x 1``), so ``W`` is ``(num_classes, T')``.

    The pooling is adaptive (``torch.nn.functional.adaptive_avg_pool3d``): a clip of another length
    still gives ``T'`` time steps, so a gated model trained on 16-frame clips also runs on 32-frame
    ones; where ``T'`` does not divide ``T_k`` neighbouring time windows may share a frame.

    A *lazy* gate (``in_channels=None, temporal_size=None``) has an ``nn.LazyLinear`` ``fc`` and
    must be sized by :meth:`build` before its first call (:class:`LayerwiseGatedClassifier` does
    that at the end of its first successful forward, from the shapes that forward saw).

    Args:
        in_channels: ``C_k``, channels of the layer's activation (``None``: lazy gate).
        temporal_size: ``T'``, time steps kept by the pooling (>= 1; ``None``: lazy gate).
        num_classes: number of logits.
        channel_pool: also average over channels (the paper's literal text).
        device, dtype: of ``fc``'s parameters.

    Shape:
        input ``(N, C_k, T_k, H_k, W_k)``; output ``(N, num_classes)``.
        ``fc.in_features`` is ``C_k * T'`` (or ``T'`` with ``channel_pool``).
    """

    def __init__(
        self,
        in_channels: Optional[int],
        temporal_size: Optional[int],
        num_classes: int,
        channel_pool: bool = False,
        *,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if (in_channels is None) != (temporal_size is None):
            raise ValueError(
                "in_channels, temporal_size: expected both ints (a built gate) or both None (a "
                f"lazy gate), got in_channels={in_channels!r}, temporal_size={temporal_size!r}"
            )
        if temporal_size is not None and temporal_size < 1:
            raise ValueError(f"temporal_size: expected an int >= 1, got {temporal_size}")
        self.num_classes = int(num_classes)
        self.channel_pool = bool(channel_pool)
        self.in_channels: Optional[int] = None
        self.temporal_size: Optional[int] = None
        if in_channels is None:
            self.fc = nn.LazyLinear(self.num_classes, device=device, dtype=dtype)
        else:
            self.in_channels = int(in_channels)
            self.temporal_size = int(temporal_size)
            self.fc = nn.Linear(self._features(), self.num_classes, device=device, dtype=dtype)

    def _features(self) -> int:
        return self.temporal_size * (1 if self.channel_pool else self.in_channels)

    @property
    def is_built(self) -> bool:
        """``False`` for a lazy gate until :meth:`build`; ``fc`` may already hold loaded weights."""
        return self.temporal_size is not None and not is_lazy(self.fc.weight)

    @property
    def loaded_in_features(self) -> Optional[int]:
        """``fc.in_features`` of a lazy gate whose ``fc`` was filled by ``load_state_dict``."""
        return None if is_lazy(self.fc.weight) else int(self.fc.weight.shape[1])

    def build(self, in_channels: int, temporal_size: int) -> "LayerGate":
        """Sizes a lazy gate: ``fc`` gets ``C_k * T'`` (or ``T'``) inputs, in place.

        ``fc``'s parameters keep their identity (PyTorch's ``UninitializedParameter.materialize``)
        and their device and dtype (the backbone's at construction, or those set by ``.to()``).
        They are created outside ``torch.inference_mode`` so that a first call made under it
        leaves trainable parameters. Weights loaded by ``load_state_dict`` are kept (their width
        must then equal the features). Returns ``self``.
        """
        if temporal_size < 1:
            raise ValueError(f"temporal_size: expected an int >= 1, got {temporal_size}")
        self.in_channels, self.temporal_size = int(in_channels), int(temporal_size)
        features = self._features()
        if is_lazy(self.fc.weight):
            with torch.inference_mode(False), torch.no_grad():
                self.fc.initialize_parameters(torch.empty(0, features, device="meta"))
        elif self.fc.weight.shape[1] != features:
            loaded = int(self.fc.weight.shape[1])
            self.in_channels = self.temporal_size = None
            raise ValueError(
                f"state_dict: the gate's loaded fc has {loaded} inputs, but C_k={in_channels} "
                f"channels x T'={temporal_size} steps give {features}"
            )
        self.fc.in_features = features
        return self

    def pool(self, activation: torch.Tensor, temporal_size: Optional[int] = None) -> torch.Tensor:
        """``flatten(avgpool_{(T', 1, 1)}(relu(A)))``, the features ``fc`` reads.

        ``temporal_size`` overrides ``T'`` (used while a lazy gate is being sized).

        Shape:
            ``(N, C_k, T_k, H_k, W_k) -> (N, C_k * T')`` (``(N, T')`` with ``channel_pool``)
        """
        if activation.dim() != 5:
            raise ValueError(
                "activation: expected a 5-D tensor (N, C, T, H, W), "
                f"got shape {tuple(activation.shape)}"
            )
        pooled = F.adaptive_avg_pool3d(F.relu(activation), (temporal_size or self.temporal_size, 1, 1))
        if self.channel_pool:
            pooled = pooled.mean(dim=1, keepdim=True)
        return torch.flatten(pooled, 1)

    def forward(self, activation: torch.Tensor) -> torch.Tensor:
        """``g(A) = W flatten(avgpool_{(T', 1, 1)}(relu(A))) + b``.

        Shape:
            ``(N, C_k, T_k, H_k, W_k) -> (N, num_classes)``
        """
        if not self.is_built:
            raise RuntimeError(
                "LayerGate: this lazy gate is not built yet; call gate.build(in_channels, "
                "temporal_size) first (LayerwiseGatedClassifier does it on its first forward)"
            )
        return self.fc(self.pool(activation))

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, temporal_size={self.temporal_size}, "
            f"channel_pool={self.channel_pool}"
        )


def is_lazy(param) -> bool:
    return isinstance(param, nn.parameter.UninitializedParameter)


def param_device_dtype(backbone: nn.Module, example: torch.Tensor):
    """Where a gate's parameters go: the backbone's first parameter's device and (float) dtype."""
    for p in backbone.parameters():
        return p.device, (p.dtype if p.is_floating_point() else example.dtype)
    return example.device, example.dtype
