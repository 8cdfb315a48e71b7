"""Core 3DCam: hand-computed values, Captum parity, counterfactual identity, invariants, errors."""
import copy

import pytest
import torch
from captum.attr import Attribution, LayerAttribution, LayerGradCam
from torch import nn

from captum_3dcam import Counterfactual3DCam, GlobalLocal3DCam, LayerwiseGlobalLocal3DCam
from captum_3dcam.models import Small3DCNN

from _models import TinyLinearHead, TwoBlock3D, seeded

ATTRIBUTION_CLASSES = [LayerwiseGlobalLocal3DCam, Counterfactual3DCam]
RULES = ["3dcam", "gradcam", "gradcam++", "xgradcam", "layercam"]


def tiny_input():
    return torch.arange(8, dtype=torch.float32).view(1, 1, 2, 2, 2)


def as_flat(t):
    return t.flatten().tolist()


# ----------------------------------------------------------------------------- hand-computed
# x = 0..7, A_0 = x, A_1 = 2x, so alpha = 3x and nrm(relu(alpha)) = x / 7.
# Class 0: G_0 = [1,0,0,0,0,0,0,-1], G_1 = [0,1,0,0,0,0,0,0]; beta = [1,1,0,0,0,0,0,-1].
HAND = {
    # (rule, counterfactual, normalize): expected map for class 0
    ("3dcam", False, True): [0, 1 / 7, 0, 0, 0, 0, 0, 0],
    ("3dcam", False, False): [0, 3, 0, 0, 0, 0, 0, 0],
    ("3dcam", True, True): [0, 0, 0, 0, 0, 0, 0, 1],
    ("3dcam", True, False): [0, 0, 0, 0, 0, 0, 0, 21],
    ("gradcam", False, True): [i / 7 for i in range(8)],
    ("gradcam", False, False): [i / 4 for i in range(8)],
    ("gradcam", True, True): [0] * 8,
    ("layercam", False, True): [0, 1, 0, 0, 0, 0, 0, 0],
    ("layercam", False, False): [0, 2, 0, 0, 0, 0, 0, 0],
    ("layercam", True, True): [0, 0, 0, 0, 0, 0, 0, 1],
    ("layercam", True, False): [0, 0, 0, 0, 0, 0, 0, 7],
    # gradcam++: S_0 = sum x = 28, S_1 = 56; a * relu(G) = 1 / (2 + S G) where G > 0:
    # w_0 = 1/30 (position 0), w_1 = 1/58 (position 1); map = x (w_0 + 2 w_1) = x * 59/870.
    ("gradcam++", False, True): [i / 7 for i in range(8)],
    ("gradcam++", False, False): [i * 59 / 870 for i in range(8)],
    # counterfactual: -G_0 = +1 at position 7 -> w_0 = 1/(2 + 28) = 1/30; -G_1 <= 0 -> w_1 = 0
    ("gradcam++", True, True): [i / 7 for i in range(8)],
    ("gradcam++", True, False): [i / 30 for i in range(8)],
    # xgradcam: w_0 = sum(x * G_0) / 28 = -7/28, w_1 = sum(2x * G_1) / 56 = 2/56; map = relu(-5x/28) = 0
    ("xgradcam", False, True): [0] * 8,
    ("xgradcam", True, True): [i / 7 for i in range(8)],
    ("xgradcam", True, False): [i * 5 / 28 for i in range(8)],
    # min-max: every normalized quantity here has minimum 0, so it equals the max normalization
    ("3dcam", False, "minmax"): [0, 1 / 7, 0, 0, 0, 0, 0, 0],
    ("gradcam++", False, "minmax"): [i / 7 for i in range(8)],
}


@pytest.mark.parametrize("rule, counterfactual, normalize", sorted(HAND, key=str))
def test_hand_computed_values(rule, counterfactual, normalize):
    model = TinyLinearHead()
    cls = Counterfactual3DCam if counterfactual else GlobalLocal3DCam
    out = cls(model, model.conv).attribute(
        tiny_input(), target=0, layer_rule=rule, normalize_layers=normalize
    )
    assert out.shape == (1, 1, 2, 2, 2)
    torch.testing.assert_close(out.flatten(), torch.tensor(HAND[(rule, counterfactual, normalize)], dtype=torch.float32))


def test_hand_computed_uniform_gradient_class():
    # class 1: G = 1/16 everywhere -> nrm(relu(beta)) = 1, map = x / 7
    model = TinyLinearHead()
    out = GlobalLocal3DCam(model, model.conv).attribute(tiny_input(), target=1)
    torch.testing.assert_close(out.flatten(), torch.arange(8.0) / 7)


def test_hand_computed_gradcampp_uniform_gradient_class():
    # class 1: G = 1/16 everywhere: w_0 = 8 (1/16) / (2 + 28/16) = 2/15, w_1 = 8 (1/16) / (2 + 56/16) = 1/11
    model = TinyLinearHead()
    out = GlobalLocal3DCam(model, model.conv).attribute(
        tiny_input(), target=1, layer_rule="gradcam++", normalize_layers=False
    )
    torch.testing.assert_close(out.flatten(), torch.arange(8.0) * (2 / 15 + 2 / 11))


def test_minmax_normalization_differs_from_max_where_the_minimum_is_not_zero():
    model = TinyLinearHead()
    x = tiny_input() + 1  # 1..8
    cam = GlobalLocal3DCam(model, model.conv)
    # layercam, class 1: sum_c relu(1/16) A_c = 3 (x + 1) / 16
    by_max = cam.attribute(x, target=1, layer_rule="layercam", normalize_layers="max")
    by_minmax = cam.attribute(x, target=1, layer_rule="layercam", normalize_layers="minmax")
    torch.testing.assert_close(by_max.flatten(), (torch.arange(8.0) + 1) / 8)
    torch.testing.assert_close(by_minmax.flatten(), torch.arange(8.0) / 7)
    torch.testing.assert_close(cam.attribute(x, target=1, layer_rule="layercam", normalize_layers=True), by_max)
    # 3dcam, class 1: beta is constant, so its min-max normalization is 0 (never NaN)
    flat = cam.attribute(x, target=1, normalize_layers="minmax")
    assert torch.equal(flat, torch.zeros_like(flat))


def test_predicted_class_is_the_default_target():
    model = seeded(Small3DCNN, num_classes=5)
    x = torch.randn(3, 3, 8, 32, 32)
    layers = [model.conv2, model.conv4]
    pred = model(x).argmax(1)
    cam = GlobalLocal3DCam(model, layers)
    torch.testing.assert_close(cam.attribute(x), cam.attribute(x, target=pred))


def test_aggregations_and_layer_maps():
    model = seeded(Small3DCNN, num_classes=5)
    x = torch.randn(2, 3, 8, 32, 32)
    cam = GlobalLocal3DCam(model, [model.conv1, model.conv2, model.conv3, model.conv4])
    total, maps = cam.attribute(x, target=1, return_layer_maps=True)
    assert len(maps) == 4 and all(m.shape == (2, 1, 8, 32, 32) for m in maps)
    stack = torch.stack(maps)
    torch.testing.assert_close(total, torch.relu(stack.sum(0)))
    mean = cam.attribute(x, target=1, aggregation="mean")
    torch.testing.assert_close(mean, torch.relu(stack.sum(0)) / 4)
    mx = cam.attribute(x, target=1, aggregation="max")
    torch.testing.assert_close(mx, stack.amax(0))
    # each normalized 3dcam layer map peaks at most at 1 and is non-negative
    assert stack.min() >= 0 and stack.amax(dim=(2, 3, 4, 5)).max() <= 1 + 1e-6


def test_layer_maps_follow_the_order_of_layers():
    model = seeded(Small3DCNN, num_classes=5)
    x = torch.randn(1, 3, 8, 32, 32)
    _, fwd = GlobalLocal3DCam(model, [model.conv1, model.conv3]).attribute(x, return_layer_maps=True)
    _, rev = GlobalLocal3DCam(model, [model.conv3, model.conv1]).attribute(x, return_layer_maps=True)
    torch.testing.assert_close(fwd[0], rev[1])
    torch.testing.assert_close(fwd[1], rev[0])


def test_output_size():
    model = seeded(Small3DCNN, num_classes=5)
    out = GlobalLocal3DCam(model, [model.conv3]).attribute(
        torch.randn(2, 3, 8, 32, 32), output_size=(4, 10, 12)
    )
    assert out.shape == (2, 1, 4, 10, 12)


# ----------------------------------------------------------------------------- Captum parity
@pytest.mark.parametrize("layer_name", ["conv1", "conv3", "conv4"])
@pytest.mark.parametrize("target", [2, [0, 4]])
def test_gradcam_rule_matches_captum_layergradcam(layer_name, target, device):
    model = seeded(Small3DCNN, num_classes=5).to(device)
    layer = getattr(model, layer_name)
    x = torch.randn(2, 3, 8, 32, 32, device=device)
    ours = GlobalLocal3DCam(model, layer).attribute(
        x, target=target, layer_rule="gradcam", normalize_layers=False
    )
    theirs = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
    theirs = LayerAttribution.interpolate(theirs, tuple(x.shape[2:]), "trilinear")
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- counterfactual
class Negated(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return -self.model(x)


@pytest.mark.parametrize("rule", RULES)
def test_counterfactual_equals_plain_method_on_negated_model(rule):
    model = seeded(Small3DCNN, num_classes=5)
    layers = [model.conv1, model.conv2, model.conv4]
    x = torch.randn(2, 3, 8, 32, 32)
    cf = Counterfactual3DCam(model, layers).attribute(x, target=[3, 1], layer_rule=rule)
    neg = Negated(model)
    plain = GlobalLocal3DCam(neg, layers).attribute(x, target=[3, 1], layer_rule=rule)
    torch.testing.assert_close(cf, plain)
    # and it really differs from the plain map on the original model
    assert not torch.allclose(cf, GlobalLocal3DCam(model, layers).attribute(x, target=[3, 1]))


# ----------------------------------------------------------------------------- model behaviours
@pytest.mark.parametrize("rule", RULES)
def test_inplace_relu_after_hooked_layer_gives_correct_maps(rule):
    inplace = seeded(TwoBlock3D, inplace=True)
    plain = seeded(TwoBlock3D, inplace=False)
    x = torch.randn(2, 3, 4, 8, 8)
    a = GlobalLocal3DCam(inplace, [inplace.bn1, inplace.conv2]).attribute(
        x, target=1, layer_rule=rule, normalize_layers=False
    )
    b = GlobalLocal3DCam(plain, [plain.bn1, plain.conv2]).attribute(
        x, target=1, layer_rule=rule, normalize_layers=False
    )
    torch.testing.assert_close(a, b)
    # the in-place model's output itself is unaffected by the hooks
    torch.testing.assert_close(inplace(x), plain(x))


def test_frozen_model_gives_the_same_maps_and_stays_frozen():
    model = seeded(Small3DCNN, num_classes=5)
    frozen = copy.deepcopy(model)
    for p in frozen.parameters():
        p.requires_grad_(False)
    x = torch.randn(2, 3, 8, 32, 32)
    names = ["conv1", "conv2", "conv3", "conv4"]
    a = GlobalLocal3DCam(model, [getattr(model, n) for n in names]).attribute(x)
    b = GlobalLocal3DCam(frozen, [getattr(frozen, n) for n in names]).attribute(x)
    torch.testing.assert_close(a, b)
    assert not any(p.requires_grad for p in frozen.parameters())


def test_works_under_no_grad_and_leaves_input_untouched():
    model = seeded(Small3DCNN, num_classes=5)
    x = torch.randn(1, 3, 8, 32, 32)
    x_copy = x.clone()
    with torch.no_grad():
        out = GlobalLocal3DCam(model, [model.conv2]).attribute(x)
    assert out.abs().sum() > 0
    assert not x.requires_grad and x.grad is None
    torch.testing.assert_close(x, x_copy)


def test_all_zero_gradients_or_activations_give_zero_maps_not_nan():
    model = TinyLinearHead()
    with torch.no_grad():
        model.fc.weight.zero_()  # zero gradient everywhere
    for rule in RULES:
        for cls in ATTRIBUTION_CLASSES:
            out = cls(model, model.conv).attribute(tiny_input(), target=0, layer_rule=rule)
            assert torch.equal(out, torch.zeros_like(out))
    model = TinyLinearHead()
    zeros = torch.zeros(1, 1, 2, 2, 2)  # zero activation (no bias)
    for rule in RULES:
        out = GlobalLocal3DCam(model, model.conv).attribute(zeros, target=0, layer_rule=rule)
        assert torch.equal(out, torch.zeros_like(out))


def test_layer_off_the_output_path_gives_zero_map():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Conv3d(1, 2, 1)
            self.unused = nn.Conv3d(1, 2, 1)
            self.fc = nn.Linear(16, 3)

        def forward(self, x):
            self.unused(x)
            return self.fc(torch.flatten(self.used(x), 1))

    model = Branchy()
    _, maps = GlobalLocal3DCam(model, [model.used, model.unused]).attribute(
        tiny_input(), target=0, return_layer_maps=True
    )
    assert torch.equal(maps[1], torch.zeros_like(maps[1]))


def test_attribute_to_layer_input():
    model = seeded(Small3DCNN, num_classes=5)
    x = torch.randn(2, 3, 8, 32, 32)
    # conv2's input is conv1's output
    by_input = GlobalLocal3DCam(model, [model.conv2]).attribute(
        x, target=2, attribute_to_layer_input=True
    )
    by_output = GlobalLocal3DCam(model, [model.conv1]).attribute(x, target=2)
    torch.testing.assert_close(by_input, by_output)
    # the model's own input (no grad history) works as a layer input too
    first = GlobalLocal3DCam(model, [model.conv1]).attribute(
        x, target=2, attribute_to_layer_input=True
    )
    assert first.shape == (2, 1, 8, 32, 32) and first.abs().sum() > 0


def test_additional_forward_args():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = seeded(Small3DCNN, num_classes=5)

        def forward(self, x, scale):
            return self.net(x) * scale

    model = Scaled().eval()
    x = torch.randn(1, 3, 8, 32, 32)
    pos = GlobalLocal3DCam(model, [model.net.conv3]).attribute(x, 1, additional_forward_args=(2.0,))
    neg = Counterfactual3DCam(model, [model.net.conv3]).attribute(
        x, 1, additional_forward_args=(-2.0,)
    )
    torch.testing.assert_close(pos, neg)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_maps_come_back_in_the_input_dtype(dtype):
    model = seeded(Small3DCNN, num_classes=5).to(dtype)
    x = torch.randn(1, 3, 8, 32, 32, dtype=dtype)
    out = GlobalLocal3DCam(model, [model.conv2, model.conv4]).attribute(x)
    assert out.dtype == dtype and torch.isfinite(out.float()).all() and out.float().sum() > 0


def test_autocast():
    model = seeded(Small3DCNN, num_classes=5)
    x = torch.randn(1, 3, 8, 32, 32)
    ref = GlobalLocal3DCam(model, [model.conv2, model.conv4]).attribute(x, target=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = GlobalLocal3DCam(model, [model.conv2, model.conv4]).attribute(x, target=0)
    assert out.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(out.flatten(), ref.flatten(), dim=0) > 0.95


def test_one_forward_and_one_backward_pass_for_all_layers():
    model = seeded(Small3DCNN, num_classes=5)
    calls = {"forward": 0, "backward": 0}
    fwd = model.register_forward_hook(lambda *a: calls.__setitem__("forward", calls["forward"] + 1))
    bwd = model.fc.register_full_backward_hook(
        lambda *a: calls.__setitem__("backward", calls["backward"] + 1)
    )
    try:
        GlobalLocal3DCam(model, [model.conv1, model.conv2, model.conv3, model.conv4]).attribute(
            torch.randn(2, 3, 8, 32, 32)
        )
    finally:
        fwd.remove()
        bwd.remove()
    assert calls == {"forward": 1, "backward": 1}


def test_is_a_captum_attribution():
    model = seeded(Small3DCNN, num_classes=5)
    for cls in ATTRIBUTION_CLASSES:
        assert isinstance(cls(model, [model.conv1]), Attribution)
    assert GlobalLocal3DCam is LayerwiseGlobalLocal3DCam
    assert issubclass(Counterfactual3DCam, LayerwiseGlobalLocal3DCam)


def test_forward_func_may_be_a_plain_function():
    model = seeded(Small3DCNN, num_classes=5)
    x = torch.randn(1, 3, 8, 32, 32)
    a = GlobalLocal3DCam(lambda v: model(v), [model.conv2]).attribute(x, target=1)
    b = GlobalLocal3DCam(model, [model.conv2]).attribute(x, target=1)
    torch.testing.assert_close(a, b)


def test_torchvision_r3d_18_parity_and_inplace_relu():
    """torchvision's video ResNets use ReLU(inplace=True) right after hooked BatchNorms."""
    video = pytest.importorskip("torchvision.models.video")
    torch.manual_seed(0)
    model = video.r3d_18(weights=None, num_classes=7).eval()
    x = torch.randn(1, 3, 8, 56, 56)
    bn = model.layer2[0].conv1[1]  # BatchNorm3d, followed by ReLU(inplace=True)
    ours = GlobalLocal3DCam(model, [bn, model.layer4]).attribute(
        x, target=3, layer_rule="gradcam", normalize_layers=False, return_layer_maps=True
    )[1]
    for layer, got in zip([bn, model.layer4], ours):
        ref = LayerGradCam(model, layer).attribute(x, target=3, relu_attributions=True)
        ref = LayerAttribution.interpolate(ref, tuple(x.shape[2:]), "trilinear")
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-6)


def test_attribute_accepts_every_call_layergradcam_accepts():
    """Drop-in for Captum: each way of passing LayerGradCam.attribute's arguments binds to ours, in
    the same order (``attribute_to_layer_input`` is the fourth positional argument)."""
    import inspect

    from captum.attr import LayerGradCam

    from captum_3dcam import GlobalLocal3DCam

    theirs = inspect.signature(LayerGradCam.attribute)
    ours = inspect.signature(GlobalLocal3DCam.attribute)
    positional = [n for n, p in theirs.parameters.items() if p.kind is p.POSITIONAL_OR_KEYWORD and n != "self"]
    assert list(ours.parameters)[1 : len(positional) + 1] == positional
    values = {"inputs": 0, "target": 1, "additional_forward_args": None, "attribute_to_layer_input": True,
              "relu_attributions": True, "attr_dim_summation": True, "grad_kwargs": {}}
    for k in range(1, len(positional) + 1):  # the first k positionally, the rest by keyword
        args = [None] + [values[n] for n in positional[:k]]  # self
        kwargs = {n: values[n] for n in positional[k:]}
        theirs.bind(*args, **kwargs)
        ours.bind(*args, **kwargs)


def test_relu_attributions_and_attr_dim_summation_as_in_captum():
    model = Small3DCNN(num_classes=3, widths=(2, 3, 4, 4)).eval()
    x = torch.randn(1, 3, 4, 16, 16)
    cam = GlobalLocal3DCam(model, [model.conv3, model.conv4])
    plain = cam.attribute(x, 0)
    assert torch.equal(cam.attribute(x, 0, None, False, True), plain)  # maps are non-negative already
    with pytest.raises(ValueError, match="attr_dim_summation"):
        cam.attribute(x, 0, attr_dim_summation=False)
