"""torchvision's video models: weights' own transforms, geometry back, local weights, presets, explain.

Every test here has "torchvision" in its name: CI runs them with ``pytest -k torchvision`` in a venv
that has torchvision (a CUDA torch build is 5.5 GB, so the main environment does not). No test
downloads anything: models are built with ``weights=None`` and saved as local files.
"""
import importlib.util
import json

import pytest
import torch

from captum_3dcam.errors import Captum3DCamError

HAVE_TORCHVISION = importlib.util.find_spec("torchvision") is not None
needs_torchvision = pytest.mark.skipif(not HAVE_TORCHVISION, reason="torchvision is not installed")

ARCHS = ["r3d_18", "mc3_18", "r2plus1d_18", "s3d"]


def test_torchvision_missing_gives_an_install_hint_that_keeps_a_cpu_build(tmp_path, capsys):
    if HAVE_TORCHVISION:
        pytest.skip("torchvision is installed here")
    from captum_3dcam import cli

    video = tmp_path / "v.mp4"
    _write_video(video)
    assert cli.main(["explain", str(video), "--model", "torchvision:r3d_18", "--out", str(tmp_path / "o"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "need torchvision" in err and "--index-url https://download.pytorch.org/whl/cpu" in err
    assert len(err.strip().splitlines()) == 1


def test_torchvision_models_are_in_the_registry():
    from captum_3dcam.models import MODELS

    for arch in ARCHS:
        spec = MODELS[f"torchvision:{arch}"]
        assert spec.clip_len == 16 and spec.min_frames == (14 if arch == "s3d" else 1)


def _frames(t=20, h=90, w=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (t, h, w, 3), generator=g, dtype=torch.uint8)


def _write_video(path, t=24, h=48, w=80):
    pytest.importorskip("av")
    from captum_3dcam.video.io import save_mp4

    save_mp4(_frames(t, h, w), path, fps=8)
    return path


@needs_torchvision
@pytest.mark.parametrize("arch", ARCHS)
def test_torchvision_preprocess_is_the_weights_own_transforms(arch):
    from captum_3dcam.models.torchvision_video import torchvision_weights
    from captum_3dcam.video.preprocess import preprocess_torchvision

    transform = torchvision_weights(arch).transforms()
    frames = _frames(40)  # > 32: two chunks
    clip, geometry = preprocess_torchvision(frames, transform)
    expected = transform(frames.permute(0, 3, 1, 2)).unsqueeze(0)  # (1, C, T, h, w)
    torch.testing.assert_close(clip, expected, rtol=0, atol=0)
    assert geometry.crop_size == tuple(transform.crop_size)
    assert geometry.frame_size == (90, 120) and list(geometry.frame_indices) == list(range(40))


@needs_torchvision
def test_torchvision_geometry_finds_the_crop_torchvision_takes():
    """Frames already at resize_size (no resampling) whose pixels encode their column and row."""
    from captum_3dcam.models.torchvision_video import torchvision_transforms
    from captum_3dcam.video.preprocess import preprocess_torchvision

    transform = torchvision_transforms("r3d_18")  # resize (128, 171), crop 112: offsets (30, 8)
    hr, wr = transform.resize_size
    cols = torch.arange(wr).view(1, 1, wr).expand(2, hr, wr)
    rows = torch.arange(hr).view(1, hr, 1).expand(2, hr, wr)
    frames = torch.stack([cols, rows, torch.zeros_like(cols)], dim=-1).to(torch.uint8)
    clip, geometry = preprocess_torchvision(frames, transform)
    std, mean = torch.tensor(transform.std), torch.tensor(transform.mean)
    raw = (clip[0].permute(1, 2, 3, 0) * std + mean) * 255  # (T, h, w, 3) back to 0..255
    left, top = int(raw[0, 0, 0, 0].round()), int(raw[0, 0, 0, 1].round())
    assert geometry.crop_box == (left, top, left + 112, top + 112) == (30, 8, 142, 120)
    whole = torch.tensor([[0.0, 0.0, 112.0, 112.0]])
    torch.testing.assert_close(geometry.boxes_to_frame(whole), torch.tensor([[30.0, 8.0, 142.0, 120.0]]))


@needs_torchvision
@pytest.mark.parametrize("arch", ARCHS)
def test_torchvision_presets_explain_every_model(arch):
    """weights=None: the preset layers exist, one pass gives non-empty maps of the input's size."""
    import torchvision.models.video as video

    from captum_3dcam import GlobalLocal3DCam
    from captum_3dcam.models import default_layer_names, default_layers

    torch.manual_seed(0)
    model = getattr(video, arch)(weights=None).eval()
    names = default_layer_names(model)
    assert names == (["stem", "layer1", "layer2", "layer3", "layer4"] if arch != "s3d" else
                     ["features.5", "features.6", "features.8", "features.9", "features.10", "features.11",
                      "features.12", "features.14", "features.15"])
    size = (14, 224, 224) if arch == "s3d" else (8, 64, 64)
    x = torch.randn(1, 3, *size)
    maps, layer_maps = GlobalLocal3DCam(model, default_layers(model)).attribute(x, return_layer_maps=True)
    assert maps.shape == (1, 1, *size) and len(layer_maps) == len(names)
    assert bool((maps > 0).any()) and torch.isfinite(maps).all()


@needs_torchvision
def test_torchvision_weights_from_a_local_checkpoint(tmp_path, torch_hub):
    from torchvision.models.video import r3d_18

    from captum_3dcam.models import load_model

    torch.manual_seed(1)
    reference = r3d_18(weights=None)
    path = tmp_path / "r3d.pth"
    torch.save({"state_dict": reference.state_dict()}, path)
    model = load_model("torchvision:r3d_18", checkpoint=path)
    assert not model.training and len(model.labels) == 400 and model.labels[0] == "abseiling"
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value)
    # a fine-tuned head: the number of classes comes from the checkpoint, no Kinetics names
    torch.save(r3d_18(weights=None, num_classes=5).state_dict(), path)
    small = load_model("torchvision:r3d_18", checkpoint=path)
    assert small.fc.out_features == 5 and not hasattr(small, "labels")


@needs_torchvision
def test_torchvision_weights_from_the_hub_cache_and_a_clear_message_without(torch_hub):
    from torchvision.models.video import mc3_18

    from captum_3dcam.models import load_model
    from captum_3dcam.models.torchvision_video import torchvision_weights_file

    with pytest.raises(Captum3DCamError, match="mc3_18-a90a0ba3.pth") as exc:
        load_model("torchvision:mc3_18")
    assert "get_state_dict" in str(exc.value) and "--checkpoint" in str(exc.value)
    path = torchvision_weights_file("mc3_18")
    assert path.parent == torch_hub
    path.parent.mkdir(parents=True)
    torch.save(mc3_18(weights=None).state_dict(), path)
    assert load_model("torchvision:mc3_18").fc.out_features == 400


@needs_torchvision
@pytest.mark.slow
def test_torchvision_explain_command_end_to_end(tmp_path, torch_hub):
    from torchvision.models.video import r3d_18

    from captum_3dcam import cli

    checkpoint = tmp_path / "r3d.pth"
    torch.save(r3d_18(weights=None).state_dict(), checkpoint)
    video = _write_video(tmp_path / "v.mp4")
    out = tmp_path / "out"
    argv = ["explain", str(video), "--model", "torchvision:r3d_18", "--checkpoint", str(checkpoint),
            "--stride", "8", "--batch-size", "2", "--no-gif", "--device", "cpu", "--out", str(out), "-q"]
    assert cli.main(argv) == 0
    summary = json.loads((out / "explanation.json").read_text())
    assert summary["model"] == "torchvision:r3d_18" and summary["layers"][0] == "stem"
    assert summary["windows"] == [[0, 16], [8, 24]] and summary["batch_size"] == 2
    boxes = json.loads((out / "boxes.json").read_text())
    assert boxes["frame_size"] == {"height": 48, "width": 80} and len(boxes["boxes"]) == 24
