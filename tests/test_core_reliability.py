"""The core under hostile use: no silent zeros, Captum's conventions, clear messages, thread
safety, model state. After every bad call the model, its hooks, grads and modes are unchanged."""
import threading
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from captum_3dcam import Counterfactual3DCam, GlobalLocal3DCam
from captum_3dcam.models import Small3DCNN

from _models import TinyLinearHead, seeded
from test_invariants import assert_unchanged, make_model, snapshot

CLASSES = [GlobalLocal3DCam, Counterfactual3DCam]


def layers_of(model):
    return [model.conv1, model.conv2, model.conv3, model.conv4]


def clip(n=2):
    torch.manual_seed(1)
    return torch.randn(n, 3, 8, 32, 32)


# ------------------------------------------------------------------ no silent all-zero maps
@pytest.mark.parametrize("cls", CLASSES)
def test_inference_mode_raises_instead_of_zero_maps(cls):
    model = make_model()
    before = snapshot(model)
    with torch.inference_mode():
        x = clip()
        with pytest.raises(RuntimeError, match="inference_mode"):
            cls(model, layers_of(model)).attribute(x)
    assert_unchanged(model, before)


def test_a_clip_made_under_inference_mode_is_explained_outside_it():
    model = make_model()
    with torch.inference_mode():
        x = clip()
    out = GlobalLocal3DCam(model, layers_of(model)).attribute(x, target=1)
    ref = GlobalLocal3DCam(model, layers_of(model)).attribute(x.clone(), target=1)
    torch.testing.assert_close(out, ref)
    assert out.sum() > 0


class IntegerLogits(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = seeded(Small3DCNN, num_classes=5)

    def forward(self, x):
        return (self.net(x) * 100).long()


class DetachedLogits(IntegerLogits):
    def forward(self, x):
        return self.net(x).detach()


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    "factory, exc, words",
    [(IntegerLogits, TypeError, ["forward_func", "floating-point"]),
     (DetachedLogits, RuntimeError, ["forward_func", "no gradient"])],
)
def test_output_without_gradient_raises(cls, factory, exc, words):
    model = factory()
    before = snapshot(model)
    with pytest.raises(exc) as info:
        cls(model, [model.net.conv2]).attribute(clip(), target=0)
    for word in words:
        assert word in str(info.value)
    assert_unchanged(model, before)


# ------------------------------------------------------------------ Captum conventions
def test_tuple_inputs_return_a_tuple_tensor_returns_a_tensor():
    model = make_model()
    cam = GlobalLocal3DCam(model, layers_of(model))
    x = clip()
    single = cam.attribute(x, target=1)
    as_tuple = cam.attribute((x,), target=1)
    assert isinstance(single, torch.Tensor)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 1
    torch.testing.assert_close(as_tuple[0], single)
    total, maps = cam.attribute((x,), target=1, return_layer_maps=True)
    assert isinstance(total, tuple) and len(maps) == 4


@pytest.mark.parametrize(
    "target",
    [3, np.int64(3), np.int32(3), torch.tensor(3), (3,), [3, 3], [(3,), (3,)], [np.int64(3), 3],
     torch.tensor([3, 3]), np.array([3, 3]), np.array(3)],
    ids=["int", "np.int64", "np.int32", "0-d tensor", "1-tuple", "list", "list of tuples",
         "list of numpy", "tensor", "array", "0-d array"],
)
def test_every_captum_target_form_gives_the_same_maps(target):
    model = make_model()
    cam = GlobalLocal3DCam(model, layers_of(model))
    x = clip()
    torch.testing.assert_close(cam.attribute(x, target=target), cam.attribute(x, target=[3, 3]))


def test_tuple_targets_index_outputs_with_more_dimensions():
    class Grid(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = seeded(Small3DCNN, num_classes=6)

        def forward(self, x):
            return self.net(x).view(-1, 2, 3)

    model = Grid()
    x = clip()
    cam = GlobalLocal3DCam(model, [model.net.conv3])
    by_tuple = cam.attribute(x, target=(1, 2))
    flat = GlobalLocal3DCam(model.net, [model.net.conv3]).attribute(x, target=5)
    torch.testing.assert_close(by_tuple, flat)
    per_sample = cam.attribute(x, target=[(1, 2), (0, 0)])
    torch.testing.assert_close(per_sample[:1], by_tuple[:1])
    with pytest.raises(ValueError, match="target.*2 index"):
        cam.attribute(x, target=1)
    with pytest.raises(ValueError, match="target=None.*pass target"):
        cam.attribute(x)


def test_grad_kwargs_are_passed_to_autograd():
    model = make_model()
    cam = GlobalLocal3DCam(model, layers_of(model))
    x = clip()
    ref = cam.attribute(x, target=2)
    torch.testing.assert_close(cam.attribute(x, target=2, grad_kwargs={"retain_graph": True}), ref)
    with pytest.raises(TypeError, match="not_an_autograd_argument"):
        cam.attribute(x, target=2, grad_kwargs={"not_an_autograd_argument": 1})
    assert_unchanged(model, snapshot(model))


def test_layer_input_attribution_never_marks_the_users_clip():
    model = make_model()
    x = clip()
    GlobalLocal3DCam(model, [model.conv1]).attribute(x, target=2, attribute_to_layer_input=True)
    assert not x.requires_grad and x.grad is None


# ------------------------------------------------------------------ messages naming the argument
class FlatLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = seeded(Small3DCNN, num_classes=5)
        self.head = nn.Linear(5, 5)

    def forward(self, x):
        return self.head(self.net(x))


BAD = [
    ("2-D layer output", FlatLayer, lambda m: [m.head], {}, ValueError,
     ["layers", "'head'", "5-D", "(2, 5)"]),
    ("float64 clip, float32 model", None, None, dict(inputs=clip().double()), TypeError,
     ["inputs", "float64", "float32"]),
    ("meta clip", None, None, dict(inputs=torch.empty(2, 3, 8, 32, 32, device="meta")), ValueError,
     ["inputs", "meta"]),
    ("terabyte output_size", None, None, dict(output_size=(10_000, 10_000, 10_000)), ValueError,
     ["output_size", "GiB"]),
    ("bad normalize_layers", None, None, dict(normalize_layers="l2"), ValueError,
     ["normalize_layers", "minmax", "'l2'"]),
    ("numpy float target", None, None, dict(target=np.float64(1.0)), TypeError, ["target"]),
    ("bool target", None, None, dict(target=True), TypeError, ["target"]),
    ("ragged tuple targets", None, None, dict(target=[(1,), (1, 2)]), ValueError,
     ["target", "same length"]),
    ("target tuple too long", None, None, dict(target=(1, 2)), ValueError, ["target", "index"]),
]


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("name, factory, pick, kwargs, exc, words", BAD, ids=[b[0] for b in BAD])
def test_bad_input_message(cls, name, factory, pick, kwargs, exc, words):
    model = factory() if factory else make_model()
    layers = pick(model) if pick else layers_of(model)
    before = snapshot(model)
    kwargs = dict(kwargs)
    inputs = kwargs.pop("inputs", clip())
    with pytest.raises(exc) as info:
        cls(model, layers).attribute(inputs, **kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    assert_unchanged(model, before)


def test_input_on_another_device_than_the_model_is_named():
    model = make_model().to("meta")
    with pytest.raises((ValueError, RuntimeError, NotImplementedError)) as info:
        GlobalLocal3DCam(model, layers_of(model)).attribute(clip(), target=0)
    assert "inputs" in str(info.value) and "meta" in str(info.value)


# ------------------------------------------------------------------ model state and threads
def test_training_mode_warns_once_per_model():
    model = make_model(training=True)
    cam = GlobalLocal3DCam(model, layers_of(model))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cam.attribute(clip(), target=0)
        cam.attribute(clip(), target=0)
    messages = [str(w.message) for w in caught if "training mode" in str(w.message)]
    assert len(messages) == 1 and "model.eval()" in messages[0]
    assert model.training


def test_a_model_without_dropout_or_batchnorm_does_not_warn():
    model = TinyLinearHead()  # nn.Module default: training mode, but nothing depends on it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GlobalLocal3DCam(model, model.conv).attribute(torch.randn(1, 1, 2, 2, 2), target=0)


def test_two_threads_explaining_one_model_get_the_sequential_answers():
    model = make_model()
    layers = layers_of(model)
    xs = [clip(2) * (i + 1) for i in range(4)]
    expected = [GlobalLocal3DCam(model, layers).attribute(x, target=i % 5) for i, x in enumerate(xs)]
    results, errors = {}, []

    def work(i):
        try:
            for _ in range(3):
                results[i] = GlobalLocal3DCam(model, layers).attribute(xs[i], target=i % 5)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i in range(4):
        torch.testing.assert_close(results[i], expected[i])
    assert_unchanged(model, snapshot(model))
