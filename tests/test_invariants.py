"""Invariants every attribution class keeps: the user's model is left as it was, batches are
independent, and bad input raises a clear error naming the argument (and leaves no hook) — for a
single-input model and for a two-input one (Captum's tuple inputs, one map per input)."""
import pytest
import torch
from torch import nn

from captum_3dcam import Counterfactual3DCam, GlobalLocal3DCam
from captum_3dcam.models import Small3DCNN

from _models import TwoPathway3D, seeded

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


#: the single-input Small3DCNN, and a two-input model (slow and fast clips, a lateral connection)
KINDS = ["one input", "two inputs"]


def make_model(training=False, some_grads=True, freeze_first=True, kind="one input"):
    model = seeded(Small3DCNN if kind == "one input" else TwoPathway3D, num_classes=5)
    model.train(training)
    params = list(model.parameters())
    if some_grads:  # a mix of existing grads and None
        for p in params[::2]:
            p.grad = torch.full_like(p, 0.5)
    if freeze_first:
        for p in (model.conv1 if kind == "one input" else model.slow1).parameters():
            p.requires_grad_(False)
    return model


def layers_of(model):
    if isinstance(model, TwoPathway3D):  # interleaved: which input each belongs to comes from the graph
        return [model.fast1, model.slow1, model.slow2, model.fast2]
    return [model.conv1, model.conv2, model.conv3, model.conv4]


def inputs_of(kind, n=2):
    """A batch of ``n`` for the model ``kind``: a clip, or ``(slow, fast)`` with slow every 2nd frame."""
    clip = torch.randn(n, 3, 8, 32, 32)
    return clip if kind == "one input" else (clip[:, :, ::2].clone(), clip)


def maps_of(out):
    """The maps of a call as a tuple (one per input)."""
    return out if isinstance(out, tuple) else (out,)


def shapes_of(inputs):
    return [(t.shape[0], 1, *t.shape[2:]) for t in maps_of(inputs)]


def batch(inputs, rows):
    return tuple(t[rows] for t in inputs) if isinstance(inputs, tuple) else inputs[rows]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.filterwarnings("ignore:.*training mode")
def test_model_unchanged_after_success(cls, rule, training, fusion, kind):
    model = make_model(training=training, kind=kind)
    before = snapshot(model)
    inputs = inputs_of(kind)
    out = cls(model, layers_of(model)).attribute(inputs, target=[1, 2], layer_rule=rule, **fusion)
    assert isinstance(out, tuple) == isinstance(inputs, tuple)
    assert [m.shape for m in maps_of(out)] == shapes_of(inputs)
    for m in maps_of(out):
        assert torch.isfinite(m).all() and (m >= 0).all() and m.amax() > 0
    assert_unchanged(model, before)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("fusion", FUSIONS)
def test_batch_of_two_equals_two_batches_of_one(cls, rule, fusion, kind):
    model = make_model(kind=kind)
    x = inputs_of(kind)
    cam = cls(model, layers_of(model))
    both = maps_of(cam.attribute(x, target=[4, 0], layer_rule=rule, **fusion))
    one = maps_of(cam.attribute(batch(x, slice(0, 1)), target=4, layer_rule=rule, **fusion))
    two = maps_of(cam.attribute(batch(x, slice(1, 2)), target=0, layer_rule=rule, **fusion))
    assert len(both) == len(one) == len(two) == len(maps_of(x))
    for b, o, t in zip(both, one, two):
        torch.testing.assert_close(b, torch.cat([o, t]), rtol=1e-4, atol=1e-5)


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


def _poison(t, value):
    t = t.clone()
    t[1, 2, 3, 4, 5] = value
    return t


# (name, (slow, fast) -> inputs, attribute kwargs, error type, words the message must hold)
BAD_TWO_INPUT_CALLS = [
    ("second not 5-D", lambda s, f: (s, f[:, :, 0]), {}, ValueError, ["inputs[1]", "5-D", "additional_forward_args"]),
    ("second not a tensor", lambda s, f: (s, [[1.0]]), {}, TypeError, ["inputs", "list", "additional_forward_args"]),
    ("empty tuple", lambda s, f: (), {}, TypeError, ["inputs", "empty tuple"]),
    ("batch sizes differ", lambda s, f: (s, f[:1]), {}, ValueError, ["inputs[1]", "batch size", "(1, 3, 8, 32, 32)"]),
    ("second empty batch", lambda s, f: (s, f[:0]), {}, ValueError, ["inputs[1]", "empty"]),
    ("second integer", lambda s, f: (s, f.to(torch.uint8)), {}, TypeError, ["inputs[1]", "floating"]),
    ("NaN in second", lambda s, f: (s, _poison(f, float("nan"))), {}, ValueError, ["inputs[1]", "NaN"]),
    ("Inf in first", lambda s, f: (_poison(s, float("inf")), f), {}, ValueError, ["inputs[0]", "Inf"]),
    ("target too large", lambda s, f: (s, f), dict(target=5), ValueError, ["target", "[0, 4]"]),
    ("target wrong length", lambda s, f: (s, f), dict(target=[1, 2, 3]), ValueError, ["target", "length"]),
    ("output_size zero", lambda s, f: (s, f), dict(output_size=(8, 0, 32)), ValueError, ["output_size"]),
]


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("name, make, kwargs, exc, words", BAD_TWO_INPUT_CALLS, ids=[b[0] for b in BAD_TWO_INPUT_CALLS])
def test_bad_input_of_a_two_input_model_raises_a_clear_error(cls, name, make, kwargs, exc, words):
    model = make_model(kind="two inputs")
    before = snapshot(model)
    with pytest.raises(exc) as info:
        cls(model, layers_of(model)).attribute(make(*inputs_of("two inputs")), **kwargs)
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


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cls", CLASSES)
def test_invariants_on_gpu(cls, device, kind):
    """The same guarantees on every device (the cuda variant skips without CUDA)."""
    model = make_model(kind=kind).to(device)
    before = snapshot(model)
    x = inputs_of(kind)
    x = tuple(t.to(device) for t in x) if isinstance(x, tuple) else x.to(device)
    out = maps_of(cls(model, layers_of(model)).attribute(x, target=[0, 1]))
    for m, t in zip(out, maps_of(x)):
        assert m.device == t.device and m.dtype == t.dtype
    assert_unchanged(model, before)
    parts = [maps_of(cls(model, layers_of(model)).attribute(batch(x, slice(i, i + 1)), target=i)) for i in range(2)]
    for j, m in enumerate(out):
        torch.testing.assert_close(m, torch.cat([p[j] for p in parts]), rtol=1e-4, atol=1e-5)
