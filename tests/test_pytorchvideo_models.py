"""PyTorchVideo's SlowFast and X3D (and the other hub 3D CNNs): pathways, local weights, presets, explain.

The tests that need pytorchvideo skip where it is not installed; CI runs this file in the venv that
has it (``.ci/run`` step 1). No test downloads anything: models are built with
``pretrained=False`` and saved as local files. The networks of the fast tests are the hub
architectures with a head pool sized for small clips (8 x 64 x 64): the same parameters, so what
holds for them holds for the hub models; the hub sizes themselves (SlowFast 32 x 224 x 224) are
checked on the meta device and in the slow end-to-end tests.
"""
import copy
import importlib.util
import json

import pytest
import torch
from torch import nn

from captum_3dcam.errors import Captum3DCamError

pytestmark = [pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning"),  # fvcore's import
              pytest.mark.filterwarnings("ignore:'saved_variables' is deprecated:DeprecationWarning")]  # X3D's Swish

HAVE_PYTORCHVIDEO = importlib.util.find_spec("pytorchvideo") is not None
needs_pytorchvideo = pytest.mark.skipif(not HAVE_PYTORCHVIDEO, reason="pytorchvideo is not installed")

SLOW_RES5, FAST_RES5 = "blocks.4.multipathway_blocks.0", "blocks.4.multipathway_blocks.1"
SLOW_RES4, FAST_RES4 = "blocks.3.multipathway_blocks.0", "blocks.3.multipathway_blocks.1"


def _randomize_batchnorm(net: nn.Module, seed: int) -> nn.Module:
    """PyTorchVideo initialises every residual block's last BN scale to 0 (each block starts as the
    identity); random scales and statistics make the blocks matter, as trained weights do."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.normal_(0.0, 0.1, generator=g)
            m.running_mean.normal_(0.0, 0.1, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
    return net


def small_slowfast(seed=0):
    """slowfast_r50's parameters, head pools for 8 x 64 x 64 clips (slow 2 frames, res5 2 x 2)."""
    from pytorchvideo.models.hub import slowfast_r50

    torch.manual_seed(seed)
    return _randomize_batchnorm(slowfast_r50(pretrained=False, head_pool_kernel_sizes=((2, 2, 2), (8, 2, 2))),
                                seed).eval()


def small_x3d(seed=0):
    """x3d_m's parameters (X3D-XS, S and M share them), head pool for 4 x 64 x 64 clips, logits out."""
    from pytorchvideo.models.x3d import create_x3d

    torch.manual_seed(seed)
    return _randomize_batchnorm(create_x3d(input_clip_length=4, input_crop_size=64, head_activation=None), seed).eval()


def _grad_cam(model, layer, inputs, target, size):
    """Captum's LayerGradCam (ReLU) brought to ``size`` trilinearly, as tests/test_attribution.py does."""
    from captum.attr import LayerAttribution, LayerGradCam

    theirs = LayerGradCam(model, layer).attribute(inputs, target=target, relu_attributions=True)
    return LayerAttribution.interpolate(theirs, tuple(size), "trilinear")


# ----------------------------------------------------------------------------- no pytorchvideo needed
def test_pytorchvideo_models_are_in_the_registry():
    from captum_3dcam.models import MODELS, PYTORCHVIDEO_MODELS

    assert {"slowfast_r50", "x3d_m"} <= set(PYTORCHVIDEO_MODELS)
    for arch, model in PYTORCHVIDEO_MODELS.items():
        spec = MODELS[f"pytorchvideo:{arch}"]
        assert spec.clip_len == model.frames and spec.min_frames == model.min_frames <= model.frames
        assert spec.fully_convolutional and spec.skeleton is not None
    sf = PYTORCHVIDEO_MODELS["slowfast_r50"]
    assert (sf.file, sf.frames, sf.sampling_rate, sf.short_side, sf.crop_size, sf.alpha) == \
        ("SLOWFAST_8x8_R50.pyth", 32, 2, 256, 256, 4)
    assert PYTORCHVIDEO_MODELS["x3d_m"][:5] == ("X3D_M.pyth", 16, 5, 256, 256)


def test_pytorchvideo_missing_gives_an_install_hint():
    if HAVE_PYTORCHVIDEO:
        pytest.skip("pytorchvideo is installed here")
    from captum_3dcam.models import load_model

    with pytest.raises(ImportError, match="need pytorchvideo: pip install pytorchvideo") as exc:
        load_model("pytorchvideo:x3d_m")
    message = str(exc.value)
    assert len(message.splitlines()) == 1 and "--index-url https://download.pytorch.org/whl/cpu" in message


def test_pytorchvideo_pack_pathways_takes_every_alpha_th_frame_as_pytorchvideo_does():
    from captum_3dcam.models import pack_pathways

    clip = torch.arange(2 * 3 * 32 * 2 * 2, dtype=torch.float32).view(2, 3, 32, 2, 2)
    slow, fast = pack_pathways(clip, 4)
    assert fast is clip and slow.shape == (2, 3, 8, 2, 2)
    torch.testing.assert_close(slow, clip[:, :, torch.linspace(0, 31, 8).long()], rtol=0, atol=0)
    assert torch.linspace(0, 31, 8).long().tolist() == [0, 4, 8, 13, 17, 22, 26, 31]  # PackPathway's indices
    with pytest.raises(ValueError, match="alpha"):
        pack_pathways(clip, 0)
    with pytest.raises(ValueError, match="fewer than alpha"):
        pack_pathways(clip[:, :, :3], 4)
    with pytest.raises(ValueError, match="5-D"):
        pack_pathways(clip[0], 4)


def test_pytorchvideo_pathway_inputs_passes_the_clips_as_one_list():
    from captum_3dcam.models import PathwayInputs

    class ListNet(nn.Module):
        def forward(self, x):
            assert isinstance(x, list)
            return torch.cat([t.mean(dim=(2, 3, 4)) for t in x], dim=1)

    a, b = torch.randn(2, 3, 2, 4, 4), torch.randn(2, 3, 8, 4, 4)
    torch.testing.assert_close(PathwayInputs(ListNet())(a, b), ListNet()([a, b]))
    with pytest.raises(TypeError, match="net"):
        PathwayInputs(lambda x: x)


# ----------------------------------------------------------------------------- SlowFastClip
@needs_pytorchvideo
def test_pytorchvideo_slowfast_clip_equals_the_net_on_its_packed_pathways():
    from captum_3dcam.models import SlowFastClip, pack_pathways

    net = small_slowfast()
    before = copy.deepcopy(net.state_dict())
    model = SlowFastClip(net.blocks, alpha=4).eval()
    assert list(model.state_dict()) == list(net.state_dict())  # the hub's names: its state dict loads as is
    assert model.num_frames == 8
    clip = torch.randn(2, 3, 8, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(clip), net(list(pack_pathways(clip, 4))), rtol=0, atol=0)
        longer = model(torch.randn(1, 3, 12, 64, 64))  # 8 + alpha frames: the head pools 2 windows per pathway
    assert longer.shape == (1, 400) and torch.isfinite(longer).all()
    assert net.blocks[5].pool[1].stride == (1, 1, 1)  # the user's net is untouched
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    for frames in (6, 10):  # fewer than the head's 8, not a multiple of alpha
        with pytest.raises(ValueError, match="multiple of alpha=4"):
            model(torch.randn(1, 3, frames, 64, 64))


@needs_pytorchvideo
@pytest.mark.parametrize("arch", ["slowfast_r50", "slowfast_r101", "slow_r50", "i3d_r50", "r2plus1d_r50",
                                  "csn_r101", "x3d_xs", "x3d_s", "x3d_m"])
def test_pytorchvideo_skeleton_sizes_and_presets_on_the_meta_device(arch):
    """min_frames is the fewest the hub network takes, it takes frames larger than its crop
    (fully_convolutional), the preset layers exist and --layers is checked before any weight."""
    from captum_3dcam.models import MODELS, PYTORCHVIDEO_MODELS, default_layer_names
    from captum_3dcam.models.registry import check_layer_names

    spec, info = MODELS[f"pytorchvideo:{arch}"], PYTORCHVIDEO_MODELS[arch]
    with torch.device("meta"):
        model = spec.skeleton().eval()
        assert model(torch.empty(1, 3, info.min_frames, info.crop_size, info.crop_size)).shape == (1, 400)
        assert model(torch.empty(1, 3, info.frames, info.crop_size + 64, info.crop_size + 96)).shape == (1, 400)
        with pytest.raises((RuntimeError, ValueError)):
            model(torch.empty(1, 3, info.min_frames - 1, info.crop_size, info.crop_size))
    names = default_layer_names(model)
    if info.alpha:
        assert names == ["blocks.2.multipathway_blocks.1", "blocks.2.multipathway_blocks.0", FAST_RES4, SLOW_RES4,
                         FAST_RES5, SLOW_RES5]  # the slow res5 last: the gate of the gated presets
    else:  # I3D-R50 has a pool at blocks.2
        assert names == [f"blocks.{i}" for i in ((3, 4, 5) if arch == "i3d_r50" else (2, 3, 4))]
    check_layer_names(spec, names)
    with pytest.raises(Captum3DCamError, match=r"--layers.*blocks\.9") as exc:
        check_layer_names(spec, [names[0], "blocks.9"])
    assert names[0] in str(exc.value)  # the defaults are named


# ----------------------------------------------------------------------------- weights
@needs_pytorchvideo
def test_pytorchvideo_missing_weights_say_where_to_get_them(torch_hub):
    from captum_3dcam.models import load_model, pytorchvideo_weights_file

    with pytest.raises(Captum3DCamError) as exc:
        load_model("pytorchvideo:slowfast_r50")
    message = str(exc.value)
    assert len(message.splitlines()) == 1 and str(torch_hub / "SLOWFAST_8x8_R50.pyth") in message
    assert "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/SLOWFAST_8x8_R50.pyth" in message
    assert "torch.hub.load_state_dict_from_url" in message and "--checkpoint" in message
    assert pytorchvideo_weights_file("x3d_m") == torch_hub / "X3D_M.pyth"
    with pytest.raises(Captum3DCamError, match="--checkpoint: no file at"):
        load_model("pytorchvideo:x3d_m", checkpoint=torch_hub / "nothing.pyth")


@needs_pytorchvideo
def test_pytorchvideo_slowfast_hub_state_dict_loads_from_a_checkpoint(tmp_path, torch_hub):
    from pytorchvideo.models.hub import slowfast_r50

    from captum_3dcam.models import SlowFastClip, load_model

    torch.manual_seed(1)
    reference = slowfast_r50(pretrained=False)
    path = tmp_path / "RANDOM.pyth"
    torch.save({"model_state": reference.state_dict()}, path)
    model = load_model("pytorchvideo:slowfast_r50", checkpoint=path)
    assert isinstance(model, SlowFastClip) and not model.training and model.alpha == 4 and model.num_frames == 32
    assert len(model.labels) == 400 and model.labels[0] == "abseiling"
    loaded = model.state_dict()
    assert list(loaded) == list(reference.state_dict())
    assert all(torch.equal(loaded[k], v) for k, v in reference.state_dict().items())
    # the same file in the torch hub cache is found without --checkpoint
    torch_hub.mkdir(parents=True)
    path.rename(torch_hub / "SLOWFAST_8x8_R50.pyth")
    assert load_model("pytorchvideo:slowfast_r50").labels[-1] == "zumba"


@needs_pytorchvideo
def test_pytorchvideo_x3d_loads_with_logits_and_a_fine_tuned_head(tmp_path):
    """The hub's X3D ends with a softmax; ours gives the logits of the same weights."""
    from pytorchvideo.models.hub import x3d_xs

    from captum_3dcam.models import load_model

    torch.manual_seed(2)
    hub_model = _randomize_batchnorm(x3d_xs(pretrained=False), 2).eval()
    path = tmp_path / "X3D_XS.pyth"
    torch.save({"model_state": hub_model.state_dict()}, path)
    model = load_model("pytorchvideo:x3d_xs", checkpoint=path)
    assert len(model.labels) == 400
    clip = torch.randn(1, 3, 4, 160, 160)
    with torch.no_grad():
        torch.testing.assert_close(model(clip).softmax(dim=1), hub_model(clip))
    torch.save(x3d_xs(pretrained=False, model_num_class=5).state_dict(), path)  # a bare state dict, 5 classes
    small = load_model("pytorchvideo:x3d_xs", checkpoint=path)
    assert small.blocks[5].proj.out_features == 5 and not hasattr(small, "labels")


@needs_pytorchvideo
def test_pytorchvideo_refuses_a_train_checkpoint_of_another_model(tmp_path):
    from captum_3dcam.models import load_model

    path = tmp_path / "checkpoint.pt"
    torch.save({"model": {"conv1.weight": torch.zeros(1)}, "epoch": 1,
                "extra": {"description": {"format": "captum_3dcam.train/1", "model": "small"}}}, path)
    with pytest.raises(Captum3DCamError, match="written by captum-3dcam train for --model 'small'") as exc:
        load_model("pytorchvideo:x3d_m", checkpoint=path)
    assert len(str(exc.value).splitlines()) == 1


@needs_pytorchvideo
def test_pytorchvideo_preprocess_uses_the_zoo_constants_and_keeps_the_whole_frame_on_request():
    from captum_3dcam.models import MODELS

    frames = torch.full((40, 90, 120, 3), 255, dtype=torch.uint8)
    clip, geometry = MODELS["pytorchvideo:slowfast_r50"].preprocess(frames)
    assert clip.shape == (1, 3, 40, 256, 256) and geometry.crop_box == (42, 0, 298, 256)
    torch.testing.assert_close(clip, torch.full_like(clip, (1 - 0.45) / 0.225))
    whole, geometry = MODELS["pytorchvideo:x3d_xs"].preprocess(frames, crop=False)
    assert whole.shape == (1, 3, 40, 182, 243) and geometry.crop_box == (0, 0, 243, 182)


# ----------------------------------------------------------------------------- 3DCam on SlowFast and X3D
def _unchanged(model):
    state = copy.deepcopy(model.state_dict())
    flags = [(p.requires_grad, p.grad) for p in model.parameters()]

    def check():
        assert not model.training
        assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
        assert [(p.requires_grad, p.grad) for p in model.parameters()] == flags
    return check


def _one_pass_each(model, head):  # counts the forward passes of model, the backward passes through head
    calls = {"forward": 0, "backward": 0}
    hooks = [model.register_forward_hook(lambda *a: calls.__setitem__("forward", calls["forward"] + 1)),
             head.register_full_backward_hook(lambda *a: calls.__setitem__("backward", calls["backward"] + 1))]
    return calls, hooks


@needs_pytorchvideo
def test_pytorchvideo_3dcam_on_slowfast_with_layers_of_both_pathways():
    from captum_3dcam import GlobalLocal3DCam
    from captum_3dcam.models import SlowFastClip, default_layers, get_layers

    model = SlowFastClip(small_slowfast().blocks, alpha=4).eval()
    clip = torch.randn(2, 3, 8, 64, 64)
    check = _unchanged(model)
    calls, hooks = _one_pass_each(model, model.blocks[6].proj)
    try:
        maps = GlobalLocal3DCam(model, default_layers(model)).attribute(clip, target=[3, 7])
    finally:
        for h in hooks:
            h.remove()
    assert calls == {"forward": 1, "backward": 1}
    assert maps.shape == (2, 1, 8, 64, 64) and torch.isfinite(maps).all() and maps.min() >= 0 and maps.max() > 0
    check()
    # each pathway's single-layer Grad-CAM map is Captum's, brought to the clip's grid
    for name in (SLOW_RES5, FAST_RES5, SLOW_RES4):
        layer = get_layers(model, [name])[0]
        ours = GlobalLocal3DCam(model, layer).attribute(clip, target=[3, 7], layer_rule="gradcam",
                                                         normalize_layers=False)
        theirs = _grad_cam(model, layer, clip, [3, 7], clip.shape[2:])
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)
        assert ours.max() > 0, name
    check()


@needs_pytorchvideo
def test_pytorchvideo_3dcam_on_x3d_matches_layergradcam():
    from captum_3dcam import GlobalLocal3DCam
    from captum_3dcam.models import default_layers

    model = small_x3d()
    clip = torch.randn(2, 3, 4, 64, 64)
    check = _unchanged(model)
    calls, hooks = _one_pass_each(model, model.blocks[5].proj)
    try:
        maps = GlobalLocal3DCam(model, default_layers(model)).attribute(clip, target=5)
    finally:
        for h in hooks:
            h.remove()
    assert calls == {"forward": 1, "backward": 1}
    assert maps.shape == (2, 1, 4, 64, 64) and torch.isfinite(maps).all() and maps.min() >= 0 and maps.max() > 0
    for layer in (model.blocks[4], model.blocks[3]):
        ours = GlobalLocal3DCam(model, layer).attribute(clip, target=5, layer_rule="gradcam", normalize_layers=False)
        torch.testing.assert_close(ours, _grad_cam(model, layer, clip, 5, clip.shape[2:]), rtol=1e-4, atol=1e-6)
    check()


# ----------------------------------------------------------------------------- Captum's multi-input way
@needs_pytorchvideo
def test_pytorchvideo_slowfast_as_two_inputs_one_map_per_pathway():
    """The raw Net through PathwayInputs: slow layers belong to input 0 (their lateral input from the
    fast pathway notwithstanding: the closest grid), fast layers to input 1."""
    from captum_3dcam import GlobalLocal3DCam
    from captum_3dcam.models import PathwayInputs, default_layer_names, get_layers, pack_pathways

    net = small_slowfast()
    model = PathwayInputs(net)
    slow, fast = pack_pathways(torch.randn(2, 3, 8, 64, 64), 4)
    names = default_layer_names(model)
    assert names[-2:] == [f"net.{FAST_RES5}", f"net.{SLOW_RES5}"]
    cam = GlobalLocal3DCam(model, get_layers(model, names))
    check = _unchanged(net)
    calls, hooks = _one_pass_each(model, net.blocks[6].proj)
    try:
        (slow_map, fast_map), layer_maps = cam.attribute((slow, fast), target=[1, 2], return_layer_maps=True)
    finally:
        for h in hooks:
            h.remove()
    assert calls == {"forward": 1, "backward": 1}
    assert cam.layer_inputs == (1, 0, 1, 0, 1, 0)
    assert slow_map.shape == (2, 1, 2, 64, 64) and fast_map.shape == (2, 1, 8, 64, 64)
    assert [m.shape[2] for m in layer_maps] == [8, 2, 8, 2, 8, 2]
    for m in (slow_map, fast_map):
        assert torch.isfinite(m).all() and m.min() >= 0 and m.max() > 0
    check()
    for index, name in ((0, SLOW_RES5), (1, FAST_RES5)):
        layer = get_layers(model, [f"net.{name}"])[0]
        ours = GlobalLocal3DCam(model, layer).attribute((slow, fast), target=[1, 2], layer_rule="gradcam",
                                                         normalize_layers=False)
        theirs = _grad_cam(model, layer, (slow, fast), [1, 2], (slow, fast)[index].shape[2:])
        torch.testing.assert_close(ours[index], theirs, rtol=1e-4, atol=1e-6)
        assert ours[1 - index].abs().max() == 0  # the other pathway has no layer here
    check()


# ----------------------------------------------------------------------------- end to end
@needs_pytorchvideo
@pytest.mark.slow
@pytest.mark.parametrize("arch, builder, frames", [("slowfast_r50", "slowfast_r50", 32), ("x3d_m", "x3d_m", 16)])
def test_pytorchvideo_explain_command_end_to_end(arch, builder, frames, tmp_path, torch_hub, shared_data):
    """``captum-3dcam explain`` with random weights on a real clip: one window (the default preset's
    temporal margin: SlowFast sees 32 + 2 x 8 frames), maps to boxes, pictures and the summary."""
    import pytorchvideo.models.hub as hub

    from captum_3dcam import cli

    video = shared_data / "ucf101_24" / "v_Basketball_g01_c01.avi"
    if not video.is_file():
        pytest.skip(f"{video.name} is not in the data folder")
    torch.manual_seed(0)
    checkpoint = tmp_path / "RANDOM.pyth"
    torch.save({"model_state": getattr(hub, builder)(pretrained=False).state_dict()}, checkpoint)
    out = tmp_path / "out"
    argv = ["explain", str(video), "--model", f"pytorchvideo:{arch}", "--checkpoint", str(checkpoint),
            "--max-frames", str(frames), "--no-mp4", "--device", "cpu", "--out", str(out), "-q"]
    assert cli.main(argv) == 0
    summary = json.loads((out / "explanation.json").read_text())
    assert summary["model"] == f"pytorchvideo:{arch}" and summary["windows"] == [[0, frames]]
    assert summary["layers"][-1] == (SLOW_RES5 if arch.startswith("slowfast") else "blocks.4")
    boxes = json.loads((out / "boxes.json").read_text())
    assert boxes["frame_size"] == {"height": 240, "width": 320} and len(boxes["boxes"]) == frames
    for picture in ("frames.png", "temporal.png", "overlay.gif"):
        assert (out / picture).stat().st_size > 1000, picture
    top5 = json.loads((out / "top5.json").read_text())
    assert len(top5) == 5 and isinstance(top5[0]["label"], str)
    # SlowFast: both pathways explained, each with its own boxes (and a row of frames.png, a panel of the GIF)
    pathways = ["slow", "fast"] if arch.startswith("slowfast") else []
    assert summary["pathways"] == pathways
    for name in pathways:
        own = json.loads((out / f"boxes_{name}.json").read_text())
        assert len(own["boxes"]) == frames and any(b is not None for b in own["boxes"])
