"""A compact 3D CNN that trains on a CPU in minutes: the embedded default model.

Four Conv3d-BatchNorm-ReLU blocks (``conv1`` ... ``conv4``), global average pooling and a linear
classifier. It is the model the demo, the notebooks and the synthetic benchmarks explain.

Shape:
    input ``(N, C, T, H, W)``; output ``(N, num_classes)``.
    With the defaults and a ``(N, 3, 16, 64, 64)`` input, the blocks give
    ``conv1: (N, 16, 16, 32, 32)``, ``conv2: (N, 32, 8, 16, 16)``, ``conv3: (N, 64, 4, 8, 8)``,
    ``conv4: (N, 128, 4, 8, 8)``.

Does not live here: how it is trained (:mod:`captum_3dcam.training.small_recipe`) and cached (:mod:`.small_checkpoint`).
"""
from typing import Sequence

import torch
from torch import nn

__all__ = ["Small3DCNN"]


def _block(c_in: int, c_out: int, stride) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm3d(c_out),
        nn.ReLU(inplace=True),
    )


class Small3DCNN(nn.Module):
    """Compact 3D CNN: ``conv1..conv4`` blocks, global average pool, ``fc``.

    Args:
        num_classes: number of output logits.
        in_channels: input channels (3 for RGB).
        widths: output channels of ``conv1..conv4``.
        dropout: dropout before ``fc``.

    Example:
        >>> model = Small3DCNN(num_classes=5).eval()
        >>> model(torch.randn(2, 3, 16, 64, 64)).shape
        torch.Size([2, 5])
    """

    def __init__(
        self,
        num_classes: int = 5,
        in_channels: int = 3,
        widths: Sequence[int] = (16, 32, 64, 128),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"widths: expected 4 channel counts, got {len(widths)}")
        w1, w2, w3, w4 = widths
        self.conv1 = _block(in_channels, w1, (1, 2, 2))
        self.conv2 = _block(w1, w2, (2, 2, 2))
        self.conv3 = _block(w2, w3, (2, 2, 2))
        self.conv4 = _block(w3, w4, (1, 1, 1))
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(w4, num_classes)
        self.num_classes = num_classes

    @property
    def layer_names(self):
        """Names of the blocks 3DCam aggregates by default, shallow to deep."""
        return ["conv1", "conv2", "conv3", "conv4"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv4(self.conv3(self.conv2(self.conv1(x))))
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))
