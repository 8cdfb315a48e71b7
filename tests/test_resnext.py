"""3D ResNeXt (Hara et al.): architecture, shapes, and loading checkpoints in their layout."""
from collections import OrderedDict

import pytest
import torch

from captum_3dcam.models import CheckpointError, ResNeXt3D, load_hara_checkpoint, resnext3d, resnext3d_from_checkpoint


@pytest.fixture(scope="module")
def resnext101():
    torch.manual_seed(0)
    return resnext3d(depth=101, num_classes=5)


def _hara_checkpoint(model, arch):
    """The layout kenshohara/3D-ResNets-PyTorch's main.py saves (DataParallel 'module.' keys)."""
    state = OrderedDict(("module." + k, v.clone()) for k, v in model.state_dict().items() if "num_batches_tracked" not in k)
    return {"epoch": 200, "arch": arch, "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}


def test_resnext101_structure(resnext101):
    assert not resnext101.training
    assert [len(getattr(resnext101, f"layer{i}")) for i in range(1, 5)] == [3, 4, 23, 3]
    block = resnext101.layer1[0]
    assert block.conv2.groups == 32 and block.conv2.in_channels == 128 and block.conv3.out_channels == 256
    assert resnext101.layer4[0].conv2.in_channels == 1024 and resnext101.fc.in_features == 2048
    assert resnext101.conv1.stride == (1, 2, 2) and resnext101.conv1.kernel_size == (7, 7, 7)
    assert isinstance(resnext101.layer2[0].downsample[0], torch.nn.Conv3d)  # shortcut B
    n = sum(p.numel() for p in resnext101.parameters())
    assert n == 47_531_461
    assert n + 395 * 2049 == 48_340_816  # 48.34 M with Kinetics' 400 classes


def test_stage_shapes_on_16x112x112():
    shapes = {}
    with torch.device("meta"):  # shapes only, no arithmetic
        model = ResNeXt3D((3, 4, 23, 3), num_classes=3)
        names = model.layer_names
        handles = [getattr(model, n).register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape))) for n in names]
        out = model(torch.empty(1, 3, 16, 112, 112))
    for h in handles:
        h.remove()
    assert tuple(out.shape) == (1, 3)
    assert shapes == {
        "relu": (1, 64, 16, 56, 56),
        "layer1": (1, 256, 8, 28, 28),
        "layer2": (1, 512, 4, 14, 14),
        "layer3": (1, 1024, 2, 7, 7),
        "layer4": (1, 2048, 1, 4, 4),
    }


def test_bad_arguments():
    with pytest.raises(ValueError, match="depth"):
        resnext3d(depth=34)
    with pytest.raises(ValueError, match=r"\(N, 3, T, H, W\)"):
        resnext3d(depth=50, num_classes=2)(torch.zeros(1, 16, 112, 112))


@pytest.fixture(scope="module")
def resnext50():
    torch.manual_seed(1)
    return resnext3d(depth=50, num_classes=4)


def test_loader_reads_their_layout(resnext50, tmp_path):
    path = tmp_path / "resnext-50-kinetics.pth"
    torch.save(_hara_checkpoint(resnext50, "resnext-50"), path)
    built = resnext3d_from_checkpoint(path)  # depth from 'arch', classes from fc
    assert isinstance(built, ResNeXt3D) and built.fc.out_features == 4 and not built.training
    assert len(built.layer3) == 6
    for (k, a), b in zip(resnext50.state_dict().items(), built.state_dict().values()):
        torch.testing.assert_close(b, a, msg=k)
    x = torch.randn(1, 3, 2, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(built(x), resnext50(x))
    again = resnext3d(depth=50, num_classes=4, checkpoint=path)
    torch.testing.assert_close(again.fc.weight, resnext50.fc.weight)


def test_wrong_or_missing_keys_are_named_and_nothing_is_loaded(resnext50):
    before = {k: v.clone() for k, v in resnext50.state_dict().items()}
    ckpt = _hara_checkpoint(resnext50, "resnext-50")
    ckpt["state_dict"] = OrderedDict((k, torch.zeros_like(v)) for k, v in ckpt["state_dict"].items())
    del ckpt["state_dict"]["module.layer3.2.bn2.running_var"]
    ckpt["state_dict"]["module.layer9.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"missing 1 keys: layer3\.2\.bn2\.running_var.*unexpected 1 keys: layer9\.weight"):
        load_hara_checkpoint(resnext50, ckpt)
    del ckpt["state_dict"]["module.layer9.weight"]
    ckpt["state_dict"]["module.layer3.2.bn2.running_var"] = torch.zeros(512)
    ckpt["state_dict"]["module.fc.weight"] = torch.zeros(400, 2048)
    with pytest.raises(CheckpointError, match=r"fc\.weight: checkpoint \(400, 2048\), model \(4, 2048\)"):
        load_hara_checkpoint(resnext50, ckpt)
    for k, v in resnext50.state_dict().items():
        torch.testing.assert_close(v, before[k], msg=k)


def test_arch_mismatch_and_unreadable_files(resnext50, tmp_path):
    with pytest.raises(CheckpointError, match="'arch' is 'resnet-50'"):
        resnext3d_from_checkpoint(_hara_checkpoint(resnext50, "resnet-50"))
    with pytest.raises(CheckpointError, match="resnext-101"):
        resnext3d(depth=101, num_classes=4, checkpoint=_hara_checkpoint(resnext50, "resnext-50"))
    with pytest.raises(FileNotFoundError, match="3D-ResNets-PyTorch"):
        resnext3d_from_checkpoint(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="weights_only"):
        load_hara_checkpoint(resnext50, bad)


def test_bare_state_dict_without_prefix_also_loads(resnext50):
    target = resnext3d(depth=50, num_classes=4)
    load_hara_checkpoint(target, resnext50.state_dict())
    for (k, a), b in zip(resnext50.state_dict().items(), target.state_dict().values()):
        torch.testing.assert_close(b, a, msg=k)
