"""Tiny hand-weighted models shared by the tests."""
import torch
from torch import nn


class TinyLinearHead(nn.Module):
    """x (N, 1, 2, 2, 2) -> conv 1x1x1 (2 channels: x, 2x) -> flatten -> Linear(16, 2).

    Class 0's weights give G = d y_0 / d A with
    channel 0 = [1, 0, 0, 0, 0, 0, 0, -1] and channel 1 = [0, 1, 0, 0, 0, 0, 0, 0]
    (positions in (t, h, w) raster order). Class 1 has all weights 1/16.
    """

    def __init__(self, inplace_relu_after_conv: bool = False):
        super().__init__()
        self.conv = nn.Conv3d(1, 2, kernel_size=1, bias=False)
        self.act = nn.ReLU(inplace=True) if inplace_relu_after_conv else nn.Identity()
        self.fc = nn.Linear(16, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, 2.0]).view(2, 1, 1, 1, 1))
            w0 = torch.zeros(2, 8)
            w0[0, 0], w0[0, 7], w0[1, 1] = 1.0, -1.0, 1.0
            self.fc.weight.copy_(torch.stack([w0.flatten(), torch.full((16,), 1 / 16)]))

    def forward(self, x):
        return self.fc(torch.flatten(self.act(self.conv(x)), 1))


class TwoBlock3D(nn.Module):
    """A small random 3D CNN with an in-place ReLU after a hookable BatchNorm."""

    def __init__(self, inplace: bool = True, num_classes: int = 4):
        super().__init__()
        self.conv1 = nn.Conv3d(3, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm3d(6)
        self.relu1 = nn.ReLU(inplace=inplace)
        self.conv2 = nn.Conv3d(6, 8, 3, stride=2, padding=1)
        self.relu2 = nn.ReLU(inplace=inplace)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.conv2(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def seeded(module_cls, *args, seed=0, **kwargs):
    torch.manual_seed(seed)
    model = module_cls(*args, **kwargs)
    # non-trivial BatchNorm statistics so eval-mode BN is not the identity
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.eval()
