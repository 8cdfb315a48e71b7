"""3D ResNeXt (Hara, Kataoka, Satoh, CVPR 2018), parameter-compatible with kenshohara/3D-ResNets-PyTorch.

The CVPR2018 branch's ``ResNeXt``: cardinality 32, shortcut type B (1x1x1 conv + BN where the
shape changes), ``conv1`` 7x7x7 stride ``(1, 2, 2)`` padding 3, ``maxpool`` 3x3x3 stride 2 padding 1,
stages ``layer1..layer4`` of bottlenecks with ``planes = 128, 256, 512, 1024`` and expansion 2
(``mid = cardinality * planes // 32``, grouped 3x3x3 convolution), global average pooling, ``fc``.
Parameter names equal theirs, so their checkpoints load with :func:`load_hara_checkpoint`.

The only departure: the final pooling is adaptive (global), identical to theirs at the
training size (16 x 112 x 112, where layer4 is ``1 x 4 x 4``) and usable at any other size.

Shape:
    input ``(N, 3, T, H, W)``: 0-255 RGB minus the ActivityNet mean, 16 x 112 x 112 as trained
    (see :func:`captum_3dcam.video.preprocess.preprocess_resnext`); output ``(N, num_classes)``.
    For ``(N, 3, 16, 112, 112)``: ``relu (N, 64, 16, 56, 56)``, ``layer1 (N, 256, 8, 28, 28)``,
    ``layer2 (N, 512, 4, 14, 14)``, ``layer3 (N, 1024, 2, 7, 7)``, ``layer4 (N, 2048, 1, 4, 4)``.

Does not live here: reading Hara et al.'s checkpoints (:mod:`.checkpoints`) and preprocessing
(:func:`captum_3dcam.video.preprocess.preprocess_resnext`).
"""
import os
import re
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import torch
from torch import nn

from .checkpoints import CheckpointError, load_hara_checkpoint, read_torch_checkpoint

__all__ = ["ResNeXt3D", "ResNeXtBottleneck3D", "resnext3d", "resnext3d_from_checkpoint", "RESNEXT_DEPTHS"]

#: blocks per stage for each depth, as in Hara et al.
RESNEXT_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


class ResNeXtBottleneck3D(nn.Module):
    """1x1x1 -> grouped 3x3x3 (stride) -> 1x1x1, each with BN; ReLU after the residual sum.

    Shape:
        ``(N, C_in, T, H, W) -> (N, 2 * planes, T / s, H / s, W / s)``.
    """

    expansion = 2

    def __init__(self, inplanes: int, planes: int, cardinality: int, stride: int = 1, downsample: Optional[nn.Module] = None):
        super().__init__()
        mid = cardinality * (planes // 32)
        self.conv1 = nn.Conv3d(inplanes, mid, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm3d(mid)
        self.conv2 = nn.Conv3d(mid, mid, kernel_size=3, stride=stride, padding=1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm3d(mid)
        self.conv3 = nn.Conv3d(mid, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


class ResNeXt3D(nn.Module):
    """Hara et al.'s 3D ResNeXt (shortcut B).

    Args:
        layers: bottlenecks per stage, e.g. ``(3, 4, 23, 3)`` for ResNeXt-101.
        num_classes: logits.
        cardinality: groups of the 3x3x3 convolutions (32).
        labels: optional class names, stored as ``self.labels``.

    Submodules: ``conv1``, ``bn1``, ``relu`` (the stem's output), ``maxpool``, ``layer1..layer4``,
    ``avgpool``, ``fc``.

    Shape:
        ``(N, 3, T, H, W) -> (N, num_classes)``.
    """

    def __init__(
        self,
        layers: Sequence[int],
        num_classes: int = 400,
        cardinality: int = 32,
        labels: Optional[Sequence[str]] = None,
    ) -> None:
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"layers: expected 4 stage depths, got {tuple(layers)}")
        if labels is not None and len(labels) != num_classes:
            raise ValueError(f"labels: expected {num_classes} names (num_classes), got {len(labels)}")
        self.num_classes = num_classes
        self.labels = tuple(labels) if labels is not None else None
        self.inplanes = 64
        self.conv1 = nn.Conv3d(3, 64, kernel_size=7, stride=(1, 2, 2), padding=(3, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_stage(128, layers[0], cardinality, stride=1)
        self.layer2 = self._make_stage(256, layers[1], cardinality, stride=2)
        self.layer3 = self._make_stage(512, layers[2], cardinality, stride=2)
        self.layer4 = self._make_stage(1024, layers[3], cardinality, stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(cardinality * 32 * ResNeXtBottleneck3D.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_stage(self, planes: int, blocks: int, cardinality: int, stride: int) -> nn.Sequential:
        out_planes = planes * ResNeXtBottleneck3D.expansion
        downsample = None
        if stride != 1 or self.inplanes != out_planes:
            downsample = nn.Sequential(
                nn.Conv3d(self.inplanes, out_planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm3d(out_planes)
            )
        stage = [ResNeXtBottleneck3D(self.inplanes, planes, cardinality, stride, downsample)]
        self.inplanes = out_planes
        stage += [ResNeXtBottleneck3D(self.inplanes, planes, cardinality) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    @property
    def layer_names(self):
        """The stem output and the four stages (the paper's layers 1-5), shallow to deep."""
        return ["relu", "layer1", "layer2", "layer3", "layer4"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x: expected a torch.Tensor (N, 3, T, H, W), got {type(x).__name__}")
        if x.dim() != 5 or x.shape[1] != 3:
            raise ValueError(f"x: expected shape (N, 3, T, H, W), got {tuple(x.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnext3d(
    depth: int = 101,
    num_classes: int = 400,
    *,
    checkpoint: Optional[Union[str, Path, Mapping]] = None,
    labels: Optional[Sequence[str]] = None,
) -> ResNeXt3D:
    """3D ResNeXt-``depth`` (50, 101 or 152), optionally with Hara et al.'s weights; eval mode.

    Args:
        depth: 50, 101 or 152.
        num_classes: logits (must equal the checkpoint's: 400 Kinetics, 101 UCF101, 51 HMDB51, ...).
        checkpoint: a ``{"arch", "state_dict"}`` file or dict (see :func:`load_hara_checkpoint`).
        labels: optional class names for ``model.labels``.

    Raises:
        ValueError: unknown depth.
        CheckpointError: the checkpoint's ``arch`` or keys/shapes do not match (named); nothing loaded.

    Example:
        >>> model = resnext3d(depth=101, num_classes=51)
        >>> model(torch.zeros(1, 3, 16, 112, 112)).shape
        torch.Size([1, 51])

    Shape:
        input ``(N, 3, 16, 112, 112)`` -> logits ``(N, num_classes)``
    """
    if depth not in RESNEXT_DEPTHS:
        raise ValueError(f"depth: expected one of {sorted(RESNEXT_DEPTHS)}, got {depth!r}")
    model = ResNeXt3D(RESNEXT_DEPTHS[depth], num_classes=num_classes, labels=labels)
    if checkpoint is not None:
        if isinstance(checkpoint, (str, os.PathLike)):
            checkpoint = read_torch_checkpoint(checkpoint)
        if isinstance(checkpoint, Mapping):
            _check_arch(checkpoint.get("arch"), depth)
        load_hara_checkpoint(model, checkpoint)
    return model.eval()


def _check_arch(arch, depth: int) -> None:
    if arch is None:
        return
    match = re.fullmatch(r"resnext-?(\d+)", str(arch).lower())
    if match is None or int(match.group(1)) != depth:
        raise CheckpointError(f"checkpoint: 'arch' is {arch!r}, expected 'resnext-{depth}'")


def resnext3d_from_checkpoint(checkpoint: Union[str, Path, Mapping], *, labels: Optional[Sequence[str]] = None) -> ResNeXt3D:
    """Build the 3D ResNeXt a Hara et al. checkpoint describes (depth from ``arch``, classes from ``fc``).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: no ``arch``/``state_dict``, an arch that is not ``resnext-<depth>``, or
            mismatched keys (named).

    Shape:
        input ``(N, 3, 16, 112, 112)`` -> logits ``(N, num_classes)``
    """
    if not isinstance(checkpoint, (Mapping, str, os.PathLike)):
        raise TypeError(f"checkpoint: expected a path (str or os.PathLike) or a dict with 'arch' and "
                        f"'state_dict', got {type(checkpoint).__name__}")
    if isinstance(checkpoint, (str, os.PathLike)):
        checkpoint = read_torch_checkpoint(checkpoint)
    if not isinstance(checkpoint, Mapping) or "arch" not in checkpoint or "state_dict" not in checkpoint:
        got = sorted(checkpoint) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise CheckpointError(f"checkpoint: expected a dict with 'arch' and 'state_dict', got {got}")
    match = re.fullmatch(r"resnext-?(\d+)", str(checkpoint["arch"]).lower())
    if match is None or int(match.group(1)) not in RESNEXT_DEPTHS:
        raise CheckpointError(f"checkpoint: 'arch' is {checkpoint['arch']!r}, expected resnext-50, -101 or -152")
    fc = checkpoint["state_dict"].get("module.fc.weight", checkpoint["state_dict"].get("fc.weight"))
    if fc is None:
        raise CheckpointError("checkpoint: 'state_dict' has no fc.weight (module.fc.weight)")
    return resnext3d(int(match.group(1)), num_classes=int(fc.shape[0]), checkpoint=checkpoint, labels=labels)
