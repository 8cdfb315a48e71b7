"""Invariants every attribution class keeps: the user's model is left as it was, batches are
independent, and bad input raises a clear error naming the argument (and leaves no hook)."""
import pytest
import torch
from torch import nn

from captum_3dcam import Counterfactual3DCam, GlobalLocal3DCam
from captum_3dcam.models import Small3DCNN

from _models import seeded

CLASSES = [GlobalLocal3DCam, Counterfactual3DCam]
RULES = ["3dcam", "gradcam", "gradcam++", "xgradcam", "layercam"]
#: the fusions besides the paper's: global-local gating, and with it a temporal margin
FUSIONS = [{}, {"gate": "gradcam"}, {"gate": "layercam", "gate_layers": 2, "gate_mode": "geometric", "temporal_margin": 3}]


def all_hooks(model):
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )


def snapshot(model):
    return {
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grad": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "hooks": all_hooks(model),
        "state": {k: v.clone() for k, v in model.state_dict().items()},
    }


def assert_unchanged(model, before):
    after = snapshot(model)
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    assert after["hooks"] == before["hooks"] == 0
    for g0, g1 in zip(before["grad"], after["grad"]):
        assert (g0 is None and g1 is None) or torch.equal(g0, g1)
    for k in before["state"]:
        assert torch.equal(before["state"][k], after["state"][k]), k


def make_model(training=False, some_grads=True, freeze_first=True):
    model = seeded(Small3DCNN, num_classes=5)
    model.train(training)
    params = list(model.parameters())
    if some_grads:  # a mix of existing grads and None
        for p in params[::2]:
            p.grad = torch.full_like(p, 0.5)
    if freeze_first:
        for p in model.conv1.parameters():
            p.requires_grad_(False)
    return model


def layers_of(model):
    return [model.conv1, model.conv2, model.conv3, model.conv4]


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.filterwarnings("ignore:.*training mode")
def test_model_unchanged_after_success(cls, rule, training, fusion):
    model = make_model(training=training)
    before = snapshot(model)
    out = cls(model, layers_of(model)).attribute(
        torch.randn(2, 3, 8, 32, 32), target=[1, 2], layer_rule=rule, **fusion
    )
    assert out.shape == (2, 1, 8, 32, 32) and torch.isfinite(out).all() and (out >= 0).all()
    assert_unchanged(model, before)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("fusion", FUSIONS)
def test_batch_of_two_equals_two_batches_of_one(cls, rule, fusion):
    model = make_model()
    x = torch.randn(2, 3, 8, 32, 32)
    cam = cls(model, layers_of(model))
    both = cam.attribute(x, target=[4, 0], layer_rule=rule, **fusion)
    one = cam.attribute(x[:1], target=4, layer_rule=rule, **fusion)
    two = cam.attribute(x[1:], target=0, layer_rule=rule, **fusion)
    torch.testing.assert_close(both, torch.cat([one, two]), rtol=1e-4, atol=1e-5)


class TupleOut(nn.Module):
    def forward(self, x):
        return x, x


class WithTupleLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = seeded(Small3DCNN, num_classes=5)
        self.pair = TupleOut()

    def forward(self, x):
        a, _ = self.pair(x)
        return self.net(a)


class ThreeD(nn.Module):
    """Returns (N, 5, 2): not (N, num_classes)."""

    def __init__(self):
        super().__init__()
        self.net = seeded(Small3DCNN, num_classes=10)

    def forward(self, x):
        return self.net(x).view(-1, 5, 2)


class NaNModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = seeded(Small3DCNN, num_classes=5)

    def forward(self, x):
        return self.net(x) * float("nan")


def _x(*shape):
    return torch.randn(*shape) if shape else torch.randn(2, 3, 8, 32, 32)


def _nan_input():
    x = _x()
    x[0, 0, 0, 0, 0] = float("nan")
    return x


def _inf_input():
    x = _x()
    x[1, 2, 3, 4, 5] = float("inf")
    return x


# (name, model factory, layer picker, attribute kwargs, error type, words the message must hold)
BAD_CALLS = [
    ("input not 5-D", None, None, dict(inputs=torch.randn(2, 3, 32, 32)), ValueError, ["inputs", "5-D"]),
    ("input not tensor", None, None, dict(inputs=[[1.0]]), TypeError, ["inputs"]),
    ("empty batch", None, None, dict(inputs=torch.randn(0, 3, 8, 32, 32)), ValueError, ["inputs", "empty"]),
    ("integer input", None, None, dict(inputs=torch.zeros(1, 3, 8, 32, 32, dtype=torch.uint8)), TypeError, ["inputs", "floating"]),
    ("NaN input", None, None, dict(inputs=_nan_input()), ValueError, ["inputs", "NaN"]),
    ("Inf input", None, None, dict(inputs=_inf_input()), ValueError, ["inputs", "Inf"]),
    ("target too large", None, None, dict(target=5), ValueError, ["target", "[0, 4]"]),
    ("target negative", None, None, dict(target=-1), ValueError, ["target"]),
    ("target wrong length", None, None, dict(target=[1, 2, 3]), ValueError, ["target", "length"]),
    ("target tensor wrong length", None, None, dict(target=torch.tensor([1, 2, 3])), ValueError, ["target"]),
    ("target float", None, None, dict(target=1.5), TypeError, ["target"]),
    ("unknown rule", None, None, dict(layer_rule="gradcam+++"), ValueError, ["layer_rule", "gradcam+++"]),
    ("unknown aggregation", None, None, dict(aggregation="median"), ValueError, ["aggregation", "median"]),
    ("output_size 2 entries", None, None, dict(output_size=(8, 32)), TypeError, ["output_size"]),
    ("output_size zero", None, None, dict(output_size=(8, 0, 32)), ValueError, ["output_size"]),
    ("output_size float", None, None, dict(output_size=(8, 32.0, 32)), TypeError, ["output_size"]),
    ("output not 2-D", ThreeD, lambda m: [m.net.conv2], {}, ValueError, ["forward_func", "num_classes"]),
    ("NaN output", NaNModel, lambda m: [m.net.conv2], {}, ValueError, ["forward_func", "NaN"]),
    ("tuple-output layer", WithTupleLayer, lambda m: [m.pair], {}, ValueError, ["layers", "pair", "single tensor"]),
]


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    "name, factory, pick, kwargs, exc, words", BAD_CALLS, ids=[b[0] for b in BAD_CALLS]
)
def test_bad_input_raises_a_clear_error_and_leaves_model_unchanged(
    cls, name, factory, pick, kwargs, exc, words
):
    model = factory() if factory else make_model()
    layers = pick(model) if pick else layers_of(model)
    before = snapshot(model)
    kwargs = dict(kwargs)
    inputs = kwargs.pop("inputs", _x())
    with pytest.raises(exc) as info:
        cls(model, layers).attribute(inputs, **kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    assert_unchanged(model, before)


@pytest.mark.parametrize("cls", CLASSES)
def test_bad_layers_at_construction(cls):
    model = make_model()
    other = seeded(Small3DCNN, num_classes=5)
    with pytest.raises(ValueError, match="layers.*at least one"):
        cls(model, [])
    with pytest.raises(TypeError, match=r"layers\[1\].*nn.Module"):
        cls(model, [model.conv1, "conv2"])
    with pytest.raises(TypeError, match="layers"):
        cls(model, "conv1")
    with pytest.raises(ValueError, match=r"layers\[0\].*not a submodule"):
        cls(model, [other.conv1])
    with pytest.raises(ValueError, match="more than once"):
        cls(model, [model.conv1, model.conv1])
    with pytest.raises(TypeError, match="forward_func"):
        cls(42, [model.conv1])


@pytest.mark.parametrize("cls", CLASSES)
def test_layer_that_did_not_run(cls):
    class Skips(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = seeded(Small3DCNN, num_classes=5)
            self.spare = nn.Conv3d(3, 3, 1)

        def forward(self, x):
            return self.net(x)

    model = Skips()
    with pytest.raises(ValueError, match="spare.*did not run"):
        cls(model, [model.net.conv1, model.spare]).attribute(_x())
    assert all_hooks(model) == 0


@pytest.mark.parametrize("cls", CLASSES)
def test_layer_called_twice(cls):
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = seeded(Small3DCNN, num_classes=5)
            self.same = nn.Identity()

        def forward(self, x):
            return self.net(self.same(self.same(x)))

    model = Twice()
    with pytest.raises(ValueError, match="same.*ran 2 times"):
        cls(model, [model.same]).attribute(_x())
    assert all_hooks(model) == 0


@pytest.mark.parametrize("cls", CLASSES)
def test_error_inside_the_model_leaves_no_hook(cls):
    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = seeded(Small3DCNN, num_classes=5)

        def forward(self, x):
            self.net.conv2(self.net.conv1(x))
            raise RuntimeError("boom")

    model = Boom()
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="boom"):
        cls(model, [model.net.conv1, model.net.conv2]).attribute(_x())
    assert_unchanged(model, before)


@pytest.mark.parametrize("cls", CLASSES)
def test_invariants_on_gpu(cls, device):
    """The same guarantees on every device (the cuda variant skips without CUDA)."""
    model = make_model().to(device)
    before = snapshot(model)
    x = torch.randn(2, 3, 8, 32, 32, device=device)
    out = cls(model, layers_of(model)).attribute(x, target=[0, 1])
    assert out.device == x.device and out.dtype == x.dtype
    assert_unchanged(model, before)
    both = out
    parts = torch.cat([cls(model, layers_of(model)).attribute(x[i : i + 1], target=i) for i in range(2)])
    torch.testing.assert_close(both, parts, rtol=1e-4, atol=1e-5)
