"""The validation networks of ``select_preset.py``: the Small3DCNN of the library's recipe and a
residual SmallResNet3D, one per seed, trained once on the SyntheticActions train split and cached.
Not here: the selection procedure (``select_preset.py``) or any test-split data."""
from pathlib import Path

import torch
from torch import nn

__all__ = ["SmallResNet3D", "load_model"]


class _Block(nn.Module):
    """A 3D ResNet basic block: conv-BN-ReLU-conv-BN plus the (projected) input, ReLU."""

    def __init__(self, c_in: int, c_out: int, stride) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv3d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True),
            nn.Conv3d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm3d(c_out))
        self.skip = (nn.Identity() if stride == 1 and c_in == c_out else
                     nn.Sequential(nn.Conv3d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm3d(c_out)))

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


class SmallResNet3D(nn.Module):
    """A second validation architecture: residual, like r3d_18 / ResNeXt (stem, layer1..layer4)."""

    def __init__(self, num_classes: int = 5, widths=(16, 16, 32, 64, 128)) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(3, widths[0], (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
                                  nn.BatchNorm3d(widths[0]), nn.ReLU(inplace=True))
        self.layer1 = _Block(widths[0], widths[1], 1)
        self.layer2 = _Block(widths[1], widths[2], 2)
        self.layer3 = _Block(widths[2], widths[3], 2)
        self.layer4 = _Block(widths[3], widths[4], 2)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(widths[4], num_classes)

    def forward(self, x):
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(torch.flatten(self.pool(x), 1))


def load_model(arch: str, seed: int, checkpoint_dir: Path):
    """``(model, layers)`` of a validation architecture, trained once per seed and cached."""
    from captum_3dcam.models import default_layers
    from captum_3dcam.training.small_recipe import load_or_train_small_model

    if arch == "small":
        model = load_or_train_small_model(checkpoint_dir / f"small3dcnn_seed{seed}.pt", seed=seed, progress=False)
        return model.eval(), default_layers(model)
    from captum_3dcam.datasets import SyntheticActions
    from captum_3dcam.training.loop import TrainConfig, train
    from captum_3dcam.models.train_checkpoint import load_checkpoint

    path = checkpoint_dir / f"smallresnet3d_seed{seed}.pt"
    torch.manual_seed(seed)
    model = SmallResNet3D()
    epochs = 6
    if path.is_file() and load_checkpoint(path)["epoch"] >= epochs:
        model.load_state_dict(load_checkpoint(path)["model"])
    else:
        train_set = SyntheticActions(1000, "train", seed=seed, cache=True)
        cfg = TrainConfig(epochs=epochs, batch_size=16, optimizer="adam", lr=0.003, step_size=5, gamma=0.1,
                          seed=seed, progress=False)
        train(model, train_set, SyntheticActions(100, "test", seed=seed), cfg, checkpoint=path, resume=True)
    model.eval()
    return model, [model.stem, model.layer1, model.layer2, model.layer3, model.layer4]
