"""Multi-input models the Captum way: a tuple of clips in, one fused map per clip out.

Each layer belongs to the input its activation was computed from (the autograd graph of the forward
pass, not names), a layer computed from several to the one with the closest grid; maps per input
match Captum's LayerGradCam on that input's layers; still one forward and one backward pass. The
model-unchanged, batch and bad-input invariants run over this model in tests/test_invariants.py.
"""
import pytest
import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from captum_3dcam import Counterfactual3DCam, GlobalLocal3DCam
from captum_3dcam.attr.layer_inputs import depends_on, layer_inputs
from captum_3dcam.attr.padding import input_margins

from _models import TwoPathway3D, seeded


def pair(n=2, t=8, size=32):
    fast = torch.randn(n, 3, t, size, size)
    return fast[:, :, ::2].clone(), fast


class Swapped(nn.Module):
    """The same network taking ``(fast, slow)``: the layers' inputs swap with the arguments."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, fast, slow):
        return self.net(slow, fast)


def test_each_layer_belongs_to_the_input_it_is_computed_from():
    model = seeded(TwoPathway3D)
    layers = [model.fast2, model.slow1, model.fast1, model.slow2]
    cam = GlobalLocal3DCam(model, layers)
    slow, fast = pair()
    cam.attribute((slow, fast), target=1)
    assert cam.layer_inputs == (1, 0, 1, 0)
    # the same modules under a wrapper that takes the clips the other way round
    swapped = GlobalLocal3DCam(Swapped(model), layers)
    swapped.attribute((fast, slow), target=1)
    assert swapped.layer_inputs == (0, 1, 0, 1)


def test_a_layer_computed_from_both_inputs_goes_to_the_closest_grid():
    slow = torch.randn(1, 3, 4, 8, 8, requires_grad=True)
    fast = torch.randn(1, 3, 16, 8, 8, requires_grad=True)
    slow_only = slow * 2
    mixed = slow_only + fast[:, :, ::4]  # computed from both, on the slow clip's grid
    fast_only = fast.exp()
    assert depends_on([slow_only, mixed, fast_only], [slow, fast]) == [{0}, {0, 1}, {1}]
    assert layer_inputs([slow_only, mixed, fast_only], [slow, fast]) == (0, 0, 1)
    mixed_fast = fast * slow.mean()  # from both, on the fast grid
    assert layer_inputs([mixed_fast], [slow, fast]) == (1,)
    constant = torch.zeros(1, 4, 16, 8, 8)  # from neither: the closest grid
    assert depends_on([constant], [slow, fast]) == [set()]
    assert layer_inputs([constant], [slow, fast]) == (1,)


def test_the_graph_walk_is_not_recursive():
    x = torch.randn(1, 1, 1, 1, 1, requires_grad=True)
    y = x
    for _ in range(5000):  # deeper than Python's recursion limit
        y = y + 1
    assert depends_on([y], [x]) == [{0}]


def test_one_map_per_input_on_its_own_grid():
    model = seeded(TwoPathway3D)
    slow, fast = pair()
    cam = GlobalLocal3DCam(model, [model.slow1, model.slow2, model.fast1, model.fast2])
    out, maps = cam.attribute((slow, fast), target=[0, 3], return_layer_maps=True)
    assert isinstance(out, tuple) and len(out) == 2
    assert out[0].shape == (2, 1, 4, 32, 32) and out[1].shape == (2, 1, 8, 32, 32)
    assert [m.shape[2] for m in maps] == [4, 4, 8, 8]
    # each input's map is the fusion of its own layers: the same as asking for those layers only
    only_slow = GlobalLocal3DCam(model, [model.slow1, model.slow2]).attribute((slow, fast), target=[0, 3])
    only_fast = GlobalLocal3DCam(model, [model.fast1, model.fast2]).attribute((slow, fast), target=[0, 3])
    torch.testing.assert_close(out[0], only_slow[0])
    torch.testing.assert_close(out[1], only_fast[1])
    assert only_slow[1].abs().max() == 0 and only_fast[0].abs().max() == 0  # no layer of that input
    sized = cam.attribute((slow, fast), target=0, output_size=(8, 16, 16))
    assert [m.shape for m in sized] == [(2, 1, 8, 16, 16)] * 2


@pytest.mark.parametrize("name, index", [("slow1", 0), ("slow2", 0), ("fast1", 1), ("fast2", 1)])
@pytest.mark.parametrize("target", [2, [0, 4]])
def test_each_input_map_matches_captum_layergradcam(name, index, target, device):
    model = seeded(TwoPathway3D).to(device)
    layer = getattr(model, name)
    slow, fast = (t.to(device) for t in pair())
    ours = GlobalLocal3DCam(model, layer).attribute(
        (slow, fast), target=target, layer_rule="gradcam", normalize_layers=False
    )
    theirs = LayerGradCam(model, layer).attribute((slow, fast), target=target, relu_attributions=True)
    clip = (slow, fast)[index]
    theirs = LayerAttribution.interpolate(theirs, tuple(clip.shape[2:]), "trilinear")
    torch.testing.assert_close(ours[index], theirs, rtol=1e-5, atol=1e-6)
    assert ours[1 - index].abs().max() == 0


def test_one_forward_and_one_backward_pass_for_all_layers_of_all_inputs():
    model = seeded(TwoPathway3D)
    calls = {"forward": 0, "backward": 0}
    fwd = model.register_forward_hook(lambda *a: calls.__setitem__("forward", calls["forward"] + 1))
    bwd = model.fc.register_full_backward_hook(lambda *a: calls.__setitem__("backward", calls["backward"] + 1))
    try:
        GlobalLocal3DCam(model, [model.slow1, model.slow2, model.fast1, model.fast2]).attribute(pair())
    finally:
        fwd.remove()
        bwd.remove()
    assert calls == {"forward": 1, "backward": 1}


def test_the_users_inputs_are_not_marked_as_requiring_grad():
    model = seeded(TwoPathway3D)
    slow, fast = pair()
    GlobalLocal3DCam(model, [model.slow2, model.fast2]).attribute((slow, fast))
    assert not slow.requires_grad and not fast.requires_grad


@pytest.mark.parametrize("cls", [GlobalLocal3DCam, Counterfactual3DCam])
def test_gate_and_margin_per_input(cls):
    model = seeded(TwoPathway3D)
    slow, fast = pair()
    cam = cls(model, [model.slow1, model.slow2, model.fast1, model.fast2])
    gated = cam.attribute((slow, fast), target=1, gate="gradcam", gate_layers=1)
    slow_only = cls(model, [model.slow1, model.slow2]).attribute((slow, fast), target=1, gate="gradcam")
    torch.testing.assert_close(gated[0], slow_only[0])  # the slow map's gate is slow2, not fast2
    padded = cam.attribute((slow, fast), target=1, temporal_margin=3)
    assert [m.shape[2] for m in padded] == [4, 8]
    assert input_margins(3, [4, 8]) == [2, 4]  # 3 fast frames are not whole slow frames: 4 and 2


def test_single_input_in_a_tuple_is_unchanged():
    model = seeded(TwoPathway3D)
    slow, fast = pair()
    with pytest.raises(TypeError, match="positional"):  # the model needs both clips
        GlobalLocal3DCam(model, [model.fast1]).attribute((fast,))
    both = GlobalLocal3DCam(model, [model.fast1]).attribute((slow,), additional_forward_args=(fast,))
    assert isinstance(both, tuple) and both[0].shape == (2, 1, 4, 32, 32)


class OneClip(TwoPathway3D):
    """The two-pathway model fed one clip, packed inside (what the registry's SlowFast does)."""

    def split_inputs(self, clip):
        return clip[:, :, ::2], clip

    def forward_inputs(self, slow, fast):
        return TwoPathway3D.forward(self, slow, fast)

    def forward(self, clip):
        return self.forward_inputs(*self.split_inputs(clip))


def test_windows_of_a_one_clip_model_with_pathways_give_one_map_per_pathway():
    from captum_3dcam.video.windows import WindowCam

    model = seeded(OneClip)
    clip = torch.randn(2, 3, 8, 32, 32)
    cam = WindowCam(model, [model.slow1, model.slow2, model.fast1, model.fast2], layer_rule="gradcam")
    try:
        maps, logits = cam.explain(clip, 2)
    finally:
        cam.close()
    assert maps.shape == (2, 3, 8, 32, 32)
    torch.testing.assert_close(maps[:, :1], maps[:, 1:2] + maps[:, 2:3])
    torch.testing.assert_close(logits, model(clip).detach())
    direct = GlobalLocal3DCam(model.forward_inputs, [model.slow1, model.slow2]).attribute(
        model.split_inputs(clip), target=2, layer_rule="gradcam", output_size=(8, 32, 32))
    torch.testing.assert_close(maps[:, 1:2], direct[0])
    assert sum(len(m._forward_hooks) for m in model.modules()) == 0


def test_window_logits_are_those_of_the_attribution_pass_with_a_margin():
    """The class-choosing forward pass sees what the attribution pass sees: each pathway padded alike."""
    from captum_3dcam.video.windows import WindowCam

    model = seeded(OneClip)
    clip = torch.randn(2, 3, 8, 32, 32)
    cam = WindowCam(model, [model.slow2, model.fast2], temporal_margin=3)
    try:
        _, logits = cam.explain(clip, 1)
        torch.testing.assert_close(cam.logits(clip), logits)
    finally:
        cam.close()


def test_explain_writes_each_pathways_maps_boxes_and_pictures(tmp_path, monkeypatch):
    """``explain`` on a one-clip model of two input pathways: the map of all layers, and each pathway's."""
    pytest.importorskip("av")
    pytest.importorskip("matplotlib")
    from captum_3dcam.apps.explain import explain_video
    from captum_3dcam.models import registry
    from captum_3dcam.video.io import save_mp4
    from captum_3dcam.video.preprocess import preprocess_clip

    def load(_checkpoint):
        model = seeded(OneClip)
        model.input_names = ("slow", "fast")
        return model

    def preprocess(frames, crop=True):
        return preprocess_clip(frames, short_side=32, crop_size=32, scale=1 / 255, mean=(0.5,) * 3, std=(0.25,) * 3,
                               crop=crop)

    spec = registry.ModelSpec("test:two-pathways", "two pathways", load, preprocess, clip_len=8, min_frames=2,
                              fully_convolutional=True)
    monkeypatch.setitem(registry.MODELS, spec.name, spec)
    frames = torch.zeros(12, 40, 48, 3, dtype=torch.uint8)
    frames[:, 10:25, 20:35] = 255
    video = save_mp4(frames, tmp_path / "square.mp4", fps=8)
    result = explain_video(video, spec.name, layers=["slow1", "slow2", "fast1", "fast2"], out=tmp_path / "out",
                           progress=False, mp4=False, preset="paper")
    assert list(result["pathways"]) == ["slow", "fast"]
    total = result["maps"]
    assert total.shape == (1, 1, 12, 32, 32)
    for name in ("slow", "fast"):
        p = result["pathways"][name]
        assert p["maps"].shape == total.shape and p["boxes"].shape == (12, 4)
        assert (tmp_path / "out" / f"boxes_{name}.json").is_file()
    # the map of all layers is the sum of the pathways' maps
    torch.testing.assert_close(total, result["pathways"]["slow"]["maps"] + result["pathways"]["fast"]["maps"])
    summary = __import__("json").loads((tmp_path / "out" / "explanation.json").read_text())
    assert summary["pathways"] == ["slow", "fast"]
    assert (tmp_path / "out" / "overlay.gif").is_file() and (tmp_path / "out" / "frames.png").is_file()
