"""Global-local gating (``gate=``): hand-computed fusion, parity with Captum's LayerGradCam for the
gate, one pass, and argument errors."""
import pytest
import torch
import torch.nn.functional as F
from captum.attr import LayerGradCam

from captum_3dcam import Counterfactual3DCam, GlobalLocal3DCam
from captum_3dcam.attr.rules import gate_fusion
from captum_3dcam.models import Small3DCNN
from captum_3dcam.attr.upsample import normalize_max

from _models import seeded


def minmax(x):
    lo = x.amin(dim=(2, 3, 4), keepdim=True)
    hi = x.amax(dim=(2, 3, 4), keepdim=True)
    return torch.where(hi > lo, (x - lo) / (hi - lo).clamp(min=1e-30), torch.zeros_like(x))


def test_gate_fusion_hand_computed():
    local = torch.tensor([1.0, 3.0, 5.0, 2.0]).view(1, 1, 1, 2, 2)   # minmax: 0, .5, 1, .25
    gate = torch.tensor([-1.0, 2.0, 1.0, 2.0]).view(1, 1, 1, 2, 2)   # relu, minmax: 0, 1, .5, 1
    expected = torch.tensor([0.0, 0.5, 0.5, 0.25]).view(1, 1, 1, 2, 2)
    torch.testing.assert_close(gate_fusion(local, gate), expected)
    torch.testing.assert_close(gate_fusion(local, gate, "geometric"), expected.sqrt())
    assert gate_fusion(local, torch.zeros_like(gate)).abs().sum() == 0  # no class evidence: nothing
    with pytest.raises(ValueError, match="gate_mode"):
        gate_fusion(local, gate, "sum")


@pytest.fixture
def model_and_clip():
    model = seeded(Small3DCNN, num_classes=5)
    torch.manual_seed(1)
    return model, torch.randn(2, 3, 8, 32, 32)


def test_gate_of_the_last_layer_is_captums_layergradcam(model_and_clip):
    model, x = model_and_clip
    layers = [model.conv1, model.conv2, model.conv3, model.conv4]
    cam = GlobalLocal3DCam(model, layers)
    target = [1, 0]
    gated = cam.attribute(x, target=target, layer_rule="layercam", normalize_layers="minmax", gate="gradcam")
    local = cam.attribute(x, target=target, layer_rule="layercam", normalize_layers="minmax")
    g = LayerGradCam(model, model.conv4).attribute(x, target=target, relu_attributions=True)
    g = F.interpolate(g, size=x.shape[2:], mode="trilinear", align_corners=False)
    expected = minmax(g) * minmax(local)
    torch.testing.assert_close(gated, expected, atol=1e-5, rtol=1e-4)
    assert (gated.amax(dim=(1, 2, 3, 4)) > 0).all()  # both samples have class evidence to gate by
    assert gated.min() >= 0 and gated.max() <= 1


def test_gate_of_two_layers_sums_their_minmax_maps_and_geometric_is_the_root(model_and_clip):
    model, x = model_and_clip
    layers = [model.conv1, model.conv2, model.conv3, model.conv4]
    cam = GlobalLocal3DCam(model, layers)
    _, gmaps = cam.attribute(x, target=1, layer_rule="gradcam", normalize_layers="minmax", return_layer_maps=True)
    local = cam.attribute(x, target=1)
    expected = minmax(gmaps[2] + gmaps[3]) * minmax(local)
    got = cam.attribute(x, target=1, gate="gradcam", gate_layers=2)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    geo = cam.attribute(x, target=1, gate="gradcam", gate_layers=2, gate_mode="geometric")
    torch.testing.assert_close(geo, expected.sqrt(), atol=1e-5, rtol=1e-4)


def test_counterfactual_gate_negates_its_gradients_too(model_and_clip):
    model, x = model_and_clip
    layers = [model.conv3, model.conv4]
    cf = Counterfactual3DCam(model, layers)
    g = LayerGradCam(model, model.conv4).attribute(x, target=0)  # no relu: the counterfactual is relu(-...)
    g = F.interpolate(torch.relu(-g), size=x.shape[2:], mode="trilinear", align_corners=False)
    local = cf.attribute(x, target=0)
    got = cf.attribute(x, target=0, gate="gradcam")
    torch.testing.assert_close(got, minmax(g) * minmax(local), atol=1e-5, rtol=1e-4)


def test_gating_leaves_the_model_alone_and_runs_one_pass(model_and_clip):
    model, x = model_and_clip
    calls = []
    handle = model.register_forward_hook(lambda *a: calls.append(1))
    cam = GlobalLocal3DCam(model, [model.conv2, model.conv4])
    cam.attribute(x, gate="layercam", gate_layers=2)
    handle.remove()
    assert len(calls) == 1
    assert all(p.grad is None for p in model.parameters()) and not model.training


@pytest.mark.parametrize("kwargs,match", [
    ({"gate": "nope"}, "gate"),
    ({"gate": 1}, "gate"),
    ({"gate": "gradcam", "gate_layers": 0}, "gate_layers"),
    ({"gate": "gradcam", "gate_layers": 3}, "gate_layers"),
    ({"gate": "gradcam", "gate_layers": True}, "gate_layers"),
    ({"gate": "gradcam", "gate_mode": "sum"}, "gate_mode"),
])
def test_bad_gate_arguments_name_themselves(model_and_clip, kwargs, match):
    model, x = model_and_clip
    cam = GlobalLocal3DCam(model, [model.conv3, model.conv4])
    with pytest.raises(ValueError, match=match):
        cam.attribute(x, **kwargs)


def test_normalize_max_is_unchanged_without_a_gate(model_and_clip):
    model, x = model_and_clip
    cam = GlobalLocal3DCam(model, [model.conv3, model.conv4])
    assert torch.equal(cam.attribute(x, target=1), cam.attribute(x, target=1, gate=None))
    assert normalize_max(cam.attribute(x, target=1, gate="gradcam")).max() <= 1
