"""Layer presets: the layers 3DCam aggregates by default for each supported model."""
import pytest
import torch
from torch import nn

from captum_3dcam.models import InceptionI3d, ResNeXt3D, Small3DCNN, default_layer_names, default_layers, get_layers

I3D_MIXED = ["Mixed_3b", "Mixed_3c", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f", "Mixed_5b", "Mixed_5c"]


def test_i3d_preset_is_every_mixed_block():
    with torch.device("meta"):
        model = InceptionI3d()
    assert default_layer_names(model) == I3D_MIXED
    assert default_layers(model) == [getattr(model, n) for n in I3D_MIXED]


def test_resnext_preset_is_stem_and_four_stages():
    with torch.device("meta"):
        model = ResNeXt3D((3, 4, 6, 3), num_classes=2)
    assert default_layer_names(model) == ["relu", "layer1", "layer2", "layer3", "layer4"]
    assert default_layers(model)[1] is model.layer1


def test_small_model_preset():
    model = Small3DCNN()
    assert default_layers(model) == [model.conv1, model.conv2, model.conv3, model.conv4]


def test_unknown_model_and_bad_names():
    with pytest.raises(TypeError, match="no default layers for Sequential"):
        default_layers(nn.Sequential(nn.Conv3d(3, 4, 3)))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        default_layers("i3d")
    with pytest.raises(ValueError, match=r"\['Mixed_9z'\]"):
        get_layers(Small3DCNN(), ["conv1", "Mixed_9z"])


def test_preset_layers_feed_3dcam():
    from captum_3dcam import GlobalLocal3DCam

    torch.manual_seed(0)
    model = Small3DCNN(num_classes=3).eval()
    maps = GlobalLocal3DCam(model, default_layers(model)).attribute(torch.randn(2, 3, 8, 32, 32))
    assert tuple(maps.shape) == (2, 1, 8, 32, 32) and torch.isfinite(maps).all()


@pytest.mark.parametrize(
    "builder, names, size, deepest",
    [
        ("r3d_18", ["stem", "layer1", "layer2", "layer3", "layer4"], (8, 112), (1, 512, 1, 7, 7)),
        ("mc3_18", ["stem", "layer1", "layer2", "layer3", "layer4"], (8, 112), (1, 512, 8, 7, 7)),
        ("r2plus1d_18", ["stem", "layer1", "layer2", "layer3", "layer4"], (8, 112), (1, 512, 1, 7, 7)),
        pytest.param(
            "s3d", [f"features.{i}" for i in (5, 6, 8, 9, 10, 11, 12, 14, 15)], (16, 224), (1, 1024, 2, 7, 7),
            marks=pytest.mark.slow,
        ),
    ],
)
def test_torchvision_presets(builder, names, size, deepest):
    models = pytest.importorskip("torchvision.models.video")
    torch.manual_seed(0)
    model = getattr(models, builder)(weights=None, num_classes=5).eval()
    assert default_layer_names(model) == names
    layers = default_layers(model)
    x = torch.randn(1, 3, size[0], size[1], size[1])
    shapes = []
    handles = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape))) for m in layers]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    assert len(shapes) == len(names) and shapes[-1] == deepest
    from captum_3dcam import GlobalLocal3DCam

    maps = GlobalLocal3DCam(model, layers).attribute(x)
    assert tuple(maps.shape) == (1, 1, *x.shape[2:]) and torch.isfinite(maps).all() and maps.max() > 0
    if builder == "s3d":  # the preset picks exactly the Inception blocks
        assert all(type(m).__name__ == "SepInceptionBlock3D" for m in layers)
