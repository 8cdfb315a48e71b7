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


def _block(cin: int, cout: int, stride=1) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm3d(cout), nn.ReLU())


class TwoPathway3D(nn.Module):
    """SlowFast in miniature, two inputs: ``forward(slow (N, 3, T/2, H, W), fast (N, 3, T, H, W))``.

    The fast pathway (``fast1``, ``fast2``) sees only the fast clip; the slow one (``slow1``,
    ``slow2``) sees the slow clip and, from ``slow2`` on, a lateral connection from ``fast1``
    (time-strided to the slow rate). Both are pooled, concatenated and classified after dropout.
    """

    def __init__(self, num_classes: int = 5):
        super().__init__()
        self.slow1, self.fast1 = _block(3, 8), _block(3, 4)
        self.lateral = nn.Conv3d(4, 4, (3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))
        self.slow2, self.fast2 = _block(12, 16, (1, 2, 2)), _block(4, 8, (1, 2, 2))
        self.dropout = nn.Dropout(0.3)
        self.fc = nn.Linear(24, num_classes)

    def forward(self, slow, fast):
        s, f = self.slow1(slow), self.fast1(fast)
        s = self.slow2(torch.cat([s, self.lateral(f)], dim=1))
        f = self.fast2(f)
        return self.fc(self.dropout(torch.cat([s.mean(dim=(2, 3, 4)), f.mean(dim=(2, 3, 4))], dim=1)))
