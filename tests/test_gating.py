"""Tests of captum_3dcam.models.gating: gate values by hand, the sum identity, freezing, round trips."""
import copy
import io
import pickle

import pytest
import torch
from torch import nn

from captum_3dcam.models.gating import PAPER_GATE_LAYERS, LayerGate, LayerwiseGatedClassifier
from captum_3dcam.models.small import Small3DCNN

SMALL_SHAPE = (3, 8, 32, 32)  # (C, T, H, W): conv1..conv4 give T_k = 8, 4, 2, 2


class Tiny(nn.Module):
    """``feat`` (identity on the input), a 1x1x1 conv, global mean, linear head."""

    def __init__(self, channels=2, num_classes=3):
        super().__init__()
        self.feat = nn.Identity()
        self.conv = nn.Conv3d(channels, channels, 1)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.head(self.conv(self.feat(x)).mean(dim=(2, 3, 4)))


def _small(num_classes=5, seed=0, **kwargs):
    torch.manual_seed(seed)
    backbone = Small3DCNN(num_classes=num_classes, widths=(4, 8, 8, 16)).eval()
    layers = kwargs.pop("layers", ["conv1", "conv2", "conv3", "conv4"])
    return LayerwiseGatedClassifier(backbone, layers, num_classes, input_shape=SMALL_SHAPE, **kwargs)


def _hooks(module):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


def _ramp_clip():
    """(1, 2, 4, 1, 2): channel 0 is -3..4 over (T, W), channel 1 its negation."""
    ramp = (torch.arange(8.0) - 3).reshape(1, 1, 4, 1, 2)
    return torch.cat([ramp, -ramp], dim=1)


# ---------------------------------------------------------------------------- gate values
def test_gate_values_by_hand():
    gate = LayerGate(in_channels=1, temporal_size=2, num_classes=3)
    with torch.no_grad():
        gate.fc.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        gate.fc.bias.copy_(torch.tensor([0.0, 0.0, 1.0]))
    # relu(-3..4) = [0,0 | 0,0 | 1,2 | 3,4] over T = 4 frames of W = 2: pooled to T' = 2 -> [0, 2.5]
    out = gate(_ramp_clip()[:, :1])
    torch.testing.assert_close(out, torch.tensor([[0.0, 2.5, 3.5]]))


def test_gate_channel_pool_by_hand():
    gate = LayerGate(in_channels=2, temporal_size=2, num_classes=2, channel_pool=True)
    assert gate.fc.in_features == 2
    with torch.no_grad():
        gate.fc.weight.copy_(torch.eye(2))
        gate.fc.bias.zero_()
    # channel 0 pools to [0, 2.5]; channel 1 = relu(3..-4) pools to [1.5, 0]; mean: [0.75, 1.25]
    torch.testing.assert_close(gate(_ramp_clip()), torch.tensor([[0.75, 1.25]]))


def test_gated_tiny_model_sum_by_hand():
    torch.manual_seed(0)
    backbone = Tiny()
    model = LayerwiseGatedClassifier(backbone, "feat", 3, input_shape=(2, 4, 1, 2))
    assert model.in_channels == [2] and model.temporal_sizes == [2]
    with torch.no_grad():
        model.gates[0].fc.weight.zero_()
        model.gates[0].fc.weight[0, 1] = 1.0  # channel 0, second half of time: 2.5
        model.gates[0].fc.weight[1, 2] = 2.0  # channel 1, first half of time: 1.5
        model.gates[0].fc.bias.copy_(torch.tensor([0.0, 0.0, -1.0]))
    x = _ramp_clip()
    logits, (gate_logits,), backbone_logits = model(x, return_gate_logits=True)
    torch.testing.assert_close(gate_logits, torch.tensor([[2.5, 3.0, -1.0]]))
    torch.testing.assert_close(backbone_logits, backbone(x))
    torch.testing.assert_close(logits, backbone(x) + torch.tensor([[2.5, 3.0, -1.0]]))


# ---------------------------------------------------------------------------- shapes, identity
def test_shapes_and_sizes():
    model = _small()
    assert model.layer_names == ["conv1", "conv2", "conv3", "conv4"]
    assert model.in_channels == [4, 8, 8, 16]
    assert model.temporal_sizes == [4, 2, 1, 1]
    assert [g.fc.in_features for g in model.gates] == [16, 16, 8, 16]
    x = torch.randn(3, *SMALL_SHAPE)
    assert model(x).shape == (3, 5)
    logits, gates, backbone_logits = model(x, return_gate_logits=True)
    assert logits.shape == backbone_logits.shape == (3, 5)
    assert len(gates) == 4 and all(g.shape == (3, 5) for g in gates)


@pytest.mark.parametrize("include_backbone", [True, False])
def test_sum_identity(include_backbone):
    model = _small(include_backbone_logits=include_backbone).eval()
    x = torch.randn(2, *SMALL_SHAPE)
    logits, gates, backbone_logits = model(x, return_gate_logits=True)
    expected = sum(gates) + (backbone_logits if include_backbone else 0)
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(backbone_logits, model.backbone(x))  # the backbone is unchanged


def test_layers_as_modules_or_dotted_names():
    backbone = Small3DCNN(num_classes=5, widths=(4, 8, 8, 16))
    by_module = LayerwiseGatedClassifier(
        backbone, [backbone.conv3, backbone.conv2[0]], 5, input_shape=SMALL_SHAPE
    )
    by_name = LayerwiseGatedClassifier(backbone, ["conv3", "conv2.0"], 5, input_shape=SMALL_SHAPE)
    assert by_module.layer_names == by_name.layer_names == ["conv3", "conv2.0"]
    assert by_module.temporal_sizes == [1, 2]
    single = LayerwiseGatedClassifier(backbone, backbone.conv4, 5, input_shape=SMALL_SHAPE)
    assert single.layer_names == ["conv4"]


def test_other_clip_length_and_example_input():
    model = _small(example_input=torch.randn(2, *SMALL_SHAPE))
    assert model.temporal_sizes == [4, 2, 1, 1]
    assert model(torch.randn(1, 3, 16, 32, 32)).shape == (1, 5)  # adaptive pooling keeps T'


def test_temporal_factor_and_channel_pool_sizes():
    model = _small(temporal_factor=1, channel_pool=True)
    assert model.temporal_sizes == [8, 4, 2, 2]
    assert [g.fc.in_features for g in model.gates] == [8, 4, 2, 2]
    assert model(torch.randn(2, *SMALL_SHAPE)).shape == (2, 5)


def test_paper_gate_layers_names():
    assert PAPER_GATE_LAYERS["i3d"] == ("Mixed_3c", "Mixed_4f", "Mixed_5c")
    assert PAPER_GATE_LAYERS["resnext3d"] == ("conv1", "layer1", "layer2", "layer3", "layer4")


# ---------------------------------------------------------------------------- freezing, grads
def test_frozen_backbone_gradients_reach_only_gates():
    model = _small(freeze_backbone=True).train()
    assert not model.backbone.training  # a frozen backbone stays in eval mode
    stats = model.backbone.conv1[1].running_mean.clone()
    loss = model(torch.randn(2, *SMALL_SHAPE)).sum()
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in model.backbone.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.gate_parameters())
    torch.testing.assert_close(model.backbone.conv1[1].running_mean, stats)


def test_unfrozen_backbone_gets_gradients():
    model = _small().train()
    model(torch.randn(2, *SMALL_SHAPE)).sum().backward()
    assert model.backbone.training
    assert model.backbone.conv1[0].weight.grad is not None
    assert all(p.grad is not None for p in model.gate_parameters())


def test_freeze_flags_are_explicit_and_restored():
    backbone = Small3DCNN(num_classes=5, widths=(4, 8, 8, 16))
    backbone.fc.bias.requires_grad_(False)  # the user's own choice
    before = [p.requires_grad for p in backbone.parameters()]
    LayerwiseGatedClassifier(backbone, ["conv2"], 5, input_shape=SMALL_SHAPE)
    assert [p.requires_grad for p in backbone.parameters()] == before  # not frozen: untouched
    assert backbone.training  # dry run restored the training flag
    model = LayerwiseGatedClassifier(
        backbone, ["conv2"], 5, input_shape=SMALL_SHAPE, freeze_backbone=True
    )
    assert not any(p.requires_grad for p in backbone.parameters())
    model.set_backbone_frozen(False)
    assert [p.requires_grad for p in backbone.parameters()] == before
    assert backbone.training


def test_dry_run_keeps_batchnorm_statistics():
    backbone = Small3DCNN(num_classes=5, widths=(4, 8, 8, 16)).train()
    state = copy.deepcopy(backbone.state_dict())
    LayerwiseGatedClassifier(backbone, ["conv1"], 5, example_input=torch.randn(2, *SMALL_SHAPE))
    for key, value in backbone.state_dict().items():
        torch.testing.assert_close(value, state[key])


# ---------------------------------------------------------------------------- round trips, hooks
def test_state_dict_round_trip():
    a, b = _small(seed=0).eval(), _small(seed=1).eval()
    x = torch.randn(2, *SMALL_SHAPE)
    assert not torch.allclose(a(x), b(x))
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b.load_state_dict(torch.load(buffer))
    torch.testing.assert_close(a(x), b(x))
    assert any(k.startswith("gates.3.fc.") for k in a.state_dict())
    assert any(k.startswith("backbone.conv1.") for k in a.state_dict())


def test_deepcopy_is_independent_and_no_hooks_leak():
    model = _small().eval()
    x = torch.randn(2, *SMALL_SHAPE)
    assert _hooks(model) == 0
    twin = copy.deepcopy(model)
    torch.testing.assert_close(twin(x), model(x))
    with torch.no_grad():
        twin.gates[0].fc.bias.add_(1.0)  # changes the copy's gate only
    torch.testing.assert_close(twin(x), model(x) + 1.0)
    model(x)
    model(x, return_gate_logits=True)
    assert _hooks(model) == 0 and _hooks(twin) == 0


def test_pickle_round_trip():
    model = _small(freeze_backbone=True).eval()
    twin = pickle.loads(pickle.dumps(model))
    x = torch.randn(1, *SMALL_SHAPE)
    torch.testing.assert_close(twin(x), model(x))
    assert twin.backbone_frozen and twin.layer_names == model.layer_names
    assert _hooks(twin) == 0


def test_no_hooks_left_after_an_error():
    model = _small()
    with pytest.raises(RuntimeError):
        model(torch.randn(1, 4, *SMALL_SHAPE[1:]))  # 4 input channels instead of 3
    assert _hooks(model) == 0


def test_optimizer_trains_gates():
    model = _small(freeze_backbone=True)
    opt = torch.optim.SGD(model.gate_parameters(), lr=0.1)
    x, y = torch.randn(4, *SMALL_SHAPE), torch.tensor([0, 1, 2, 3])
    before = [p.detach().clone() for p in model.backbone.parameters()]
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for p, q in zip(model.backbone.parameters(), before):
        torch.testing.assert_close(p, q)


def test_training_loop_checkpoint_and_resume(tmp_path):
    from torch.utils.data import TensorDataset

    from captum_3dcam.training.loop import TrainConfig, train

    torch.manual_seed(0)
    data = TensorDataset(torch.randn(8, *SMALL_SHAPE), torch.arange(8) % 5)
    cfg = TrainConfig(epochs=2, batch_size=4, lr=0.01, step_size=1, progress=False)
    straight = _small(freeze_backbone=True)
    history = train(straight, data, data, cfg)
    assert len(history) == 2 and "test_video_accuracy" in history[-1]
    # one epoch, a checkpoint, then a fresh gated model resumes it to the same weights
    first = _small(freeze_backbone=True)
    ckpt = tmp_path / "gated.pt"
    train(first, data, None, cfg, checkpoint=ckpt, epochs=1)
    resumed = _small(seed=3, freeze_backbone=True)
    train(resumed, data, None, cfg, checkpoint=ckpt, resume=True)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    assert not any(p.requires_grad for p in resumed.backbone.parameters())


# ---------------------------------------------------------------------------- bad input
def test_bad_layers():
    backbone = Small3DCNN(num_classes=5, widths=(4, 8, 8, 16))
    with pytest.raises(ValueError, match="layers: 'conv9'"):
        LayerwiseGatedClassifier(backbone, ["conv9"], 5, input_shape=SMALL_SHAPE)
    with pytest.raises(ValueError, match="not a submodule"):
        LayerwiseGatedClassifier(backbone, [nn.Conv3d(3, 3, 1)], 5, input_shape=SMALL_SHAPE)
    with pytest.raises(ValueError, match="at least one"):
        LayerwiseGatedClassifier(backbone, [], 5, input_shape=SMALL_SHAPE)
    with pytest.raises(ValueError, match="twice"):
        LayerwiseGatedClassifier(backbone, ["conv1", backbone.conv1], 5, input_shape=SMALL_SHAPE)
    with pytest.raises(ValueError, match="5-D"):
        LayerwiseGatedClassifier(backbone, ["fc"], 5, input_shape=SMALL_SHAPE)
    with pytest.raises(TypeError, match="layers"):
        LayerwiseGatedClassifier(backbone, [3], 5, input_shape=SMALL_SHAPE)


def test_reused_layer_is_rejected():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = nn.Conv3d(3, 3, 1)
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(self.block(self.block(x)).mean(dim=(2, 3, 4)))

    with pytest.raises(ValueError, match="ran 2 times"):
        LayerwiseGatedClassifier(Twice(), ["block"], 2, input_shape=(3, 4, 2, 2))


def test_short_temporal_layer_error_or_clamp():
    with pytest.raises(ValueError, match="temporal size T_k=2 < temporal_factor=4"):
        _small(temporal_factor=4, clamp_temporal=False)
    assert _small(temporal_factor=4).temporal_sizes == [2, 1, 1, 1]  # documented clamp


def test_bad_backbone_output_and_num_classes():
    class Video(nn.Module):  # outputs (N, classes, T): not logits
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv3d(3, 5, 1)

        def forward(self, x):
            return self.conv(x).mean(dim=(3, 4))

    with pytest.raises(ValueError, match=r"backbone: expected .*\(N, num_classes\)"):
        LayerwiseGatedClassifier(Video(), ["conv"], 5, input_shape=(3, 4, 2, 2))
    backbone = Small3DCNN(num_classes=5, widths=(4, 8, 8, 16))
    with pytest.raises(ValueError, match="num_classes=7 .* outputs 5 logits"):
        LayerwiseGatedClassifier(backbone, ["conv1"], 7, input_shape=SMALL_SHAPE)


def test_bad_arguments():
    backbone = Small3DCNN(num_classes=5, widths=(4, 8, 8, 16))
    assert not LayerwiseGatedClassifier(backbone, ["conv1"], 5).built  # lazy, see below
    with pytest.raises(ValueError, match="input_shape"):
        LayerwiseGatedClassifier(backbone, ["conv1"], 5, input_shape=(8, 32, 32))
    with pytest.raises(ValueError, match="example_input"):
        LayerwiseGatedClassifier(backbone, ["conv1"], 5, example_input=torch.randn(3, 8, 32, 32))
    with pytest.raises(ValueError, match="temporal_factor"):
        LayerwiseGatedClassifier(backbone, ["conv1"], 5, 0, input_shape=SMALL_SHAPE)
    with pytest.raises(ValueError, match="num_classes"):
        LayerwiseGatedClassifier(backbone, ["conv1"], 0, input_shape=SMALL_SHAPE)
    with pytest.raises(TypeError, match="backbone"):
        LayerwiseGatedClassifier(lambda x: x, ["conv1"], 5, input_shape=SMALL_SHAPE)
    with pytest.raises(ValueError, match="temporal_size"):
        LayerGate(4, 0, 5)


# ------------------------------------------------------------------------ lazy gates (SPEC call)
LAYERS = ["conv1", "conv2", "conv3", "conv4"]


def _lazy(seed=0, **kwargs):
    torch.manual_seed(seed)
    backbone = Small3DCNN(num_classes=5, widths=(4, 8, 8, 16))
    layers, factor = kwargs.pop("layers", LAYERS), kwargs.pop("temporal_factor", 2)
    return LayerwiseGatedClassifier(backbone, layers, 5, factor, **kwargs)


def test_spec_four_argument_call_end_to_end():
    model = _lazy().train()  # SPEC: LayerwiseGatedClassifier(backbone, layers, num_classes, 2)
    assert not model.built
    assert model.temporal_sizes == [None] * 4 and model.in_channels == [None] * 4
    calls = []
    model.backbone.register_forward_pre_hook(lambda *_: calls.append(1))
    x = torch.randn(3, *SMALL_SHAPE)
    logits, gates, backbone_logits = model(x, return_gate_logits=True)
    assert len(calls) == 1  # the gates were sized in that very call: no extra forward pass
    assert model.built
    assert model.in_channels == [4, 8, 8, 16] and model.temporal_sizes == [4, 2, 1, 1]
    assert [g.fc.in_features for g in model.gates] == [16, 16, 8, 16]  # as with input_shape
    assert logits.shape == (3, 5) and len(gates) == 4
    torch.testing.assert_close(logits, backbone_logits + sum(gates))
    nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.gate_parameters())
    assert model.backbone.conv1[0].weight.grad is not None
    assert _hooks(model.gates) == 0 and _hooks(model.backbone) == 1  # only the test's own hook


def test_lazy_state_dict_round_trip_after_first_forward(tmp_path):
    lazy, x = _lazy(seed=0).eval(), torch.randn(2, *SMALL_SHAPE)
    with torch.no_grad():
        lazy(x)
    torch.save(lazy.state_dict(), tmp_path / "gated.pt")
    state = torch.load(tmp_path / "gated.pt")  # weights_only: plain tensors
    eager = _small(seed=1).eval()
    eager.load_state_dict(state)
    fresh = _lazy(seed=2).eval()  # never run: the gates take the checkpoint's weights
    fresh.load_state_dict(state)
    assert not fresh.built
    torch.testing.assert_close(eager(x), lazy(x))
    torch.testing.assert_close(fresh(x), lazy(x))
    assert fresh.built and fresh.temporal_sizes == [4, 2, 1, 1]


def test_checkpoint_sizes_a_lazy_model_whatever_the_first_clip():
    eager = _small(seed=0).eval()  # built on 8-frame clips: T' = 4, 2, 1, 1
    lazy = _lazy(seed=1).eval()
    lazy.load_state_dict(eager.state_dict())
    x16 = torch.randn(1, 3, 16, 32, 32)  # 16 frames would give 8, 4, 2, 2 from scratch
    torch.testing.assert_close(lazy(x16), eager(x16))
    assert lazy.temporal_sizes == [4, 2, 1, 1]


def test_lazy_unbuilt_state_dict_and_gate_are_clear_errors():
    model = _lazy(layers=["conv2", "conv4"])
    with pytest.raises(RuntimeError, match=r"\['conv2', 'conv4'\] are not built yet.*input_shape"):
        model.state_dict()
    params = list(model.gate_parameters())
    assert len(params) == 4
    assert all(isinstance(p, nn.parameter.UninitializedParameter) for p in params)
    with pytest.raises(ValueError, match="uninitialized parameter"):  # PyTorch's own message
        sum(p.numel() for p in model.parameters())
    with pytest.raises(RuntimeError, match="not built yet.*build"):
        LayerGate(None, None, 5)(torch.randn(1, 4, 2, 2, 2))
    with pytest.raises(ValueError, match="in_channels, temporal_size"):
        LayerGate(4, None, 5)
    # a checkpoint of other layers is refused on the first forward, naming the layer
    other = LayerwiseGatedClassifier(
        Small3DCNN(num_classes=5, widths=(4, 8, 8, 16)), ["conv1"], 5, input_shape=(3, 6, 32, 32)
    )  # conv1 gate: C_k = 4 channels x T' = 3 steps = 12 inputs
    lazy = _lazy(layers=["conv2"])
    lazy.load_state_dict(other.state_dict())
    with pytest.raises(ValueError, match="'conv2' has fc.in_features=12, not a multiple"):
        lazy(torch.randn(1, *SMALL_SHAPE))
    assert _hooks(lazy.backbone) == 0 and not lazy.built  # (a LazyLinear has its own hook)


def test_lazy_failed_first_forward_stays_lazy():
    model = _lazy(temporal_factor=4, clamp_temporal=False)
    with pytest.raises(ValueError, match="'conv3' has temporal size T_k=2 < temporal_factor=4"):
        model(torch.randn(1, *SMALL_SHAPE))  # conv1, conv2 were sized before conv3 failed
    assert not model.built and model.temporal_sizes == [None] * 4
    assert _hooks(model.backbone) == 0
    model(torch.randn(1, 3, 32, 32, 32))  # T_k = 32, 16, 8, 8
    assert model.temporal_sizes == [8, 4, 2, 2]


def test_lazy_optimizer_after_and_before_first_forward():
    x, y = torch.randn(4, *SMALL_SHAPE), torch.tensor([0, 1, 2, 3])
    after = _lazy(freeze_backbone=True)
    with torch.no_grad():
        after(x[:1])  # the documented recipe: one forward, then the optimizer
    before = _lazy(freeze_backbone=True)  # PyTorch materializes the placeholders in place
    early = torch.optim.Adam(before.gate_parameters(), lr=0.1)
    for model, opt in ((after, torch.optim.Adam(after.gate_parameters(), lr=0.1)), (before, early)):
        for _ in range(2):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            snapshot = [p.detach().clone() for p in model.gate_parameters()]
            opt.step()
        assert all(not torch.equal(p, q) for p, q in zip(model.gate_parameters(), snapshot))


def test_lazy_gates_follow_dtype_and_leave_inference_mode():
    model = _lazy(layers=["conv3"]).double()
    assert model.gates[0].fc.weight.dtype == torch.float64
    with torch.inference_mode():
        model(torch.randn(1, *SMALL_SHAPE, dtype=torch.float64))
    weight = model.gates[0].fc.weight
    assert weight.dtype == torch.float64 and not weight.is_inference() and weight.requires_grad
    model(torch.randn(1, *SMALL_SHAPE, dtype=torch.float64)).sum().backward()
    assert weight.grad is not None


def test_lazy_copies_and_pickles_are_independent():
    model = _lazy()
    twin, pickled = copy.deepcopy(model), pickle.loads(pickle.dumps(model))
    x = torch.randn(1, *SMALL_SHAPE)
    model(x)
    assert model.built and not twin.built and not pickled.built
    assert twin(x).shape == pickled(x).shape == (1, 5)
    assert twin.gates[0].fc.weight is not model.gates[0].fc.weight


def test_3dcam_on_a_lazy_model_builds_its_gates():
    from captum_3dcam import GlobalLocal3DCam

    model = _lazy(layers=["conv2", "conv3"]).eval()
    x = torch.randn(1, *SMALL_SHAPE)
    maps = GlobalLocal3DCam(model, model.gated_layers).attribute(x, target=0)
    assert model.built and model.temporal_sizes == [2, 1]
    assert maps.shape == (1, 1, *SMALL_SHAPE[1:]) and torch.isfinite(maps).all()
    torch.testing.assert_close(maps, GlobalLocal3DCam(model, model.gated_layers).attribute(x, 0))


# ---------------------------------------------------------------------------- 3DCam on gates
def _manual_3dcam_one_layer(model, layer, x, target):
    """The SPEC's eq. 1-2 for one layer, by hand: one autograd.grad through the gated model."""
    captured = {}

    def hook(_m, _i, out):
        captured["a"] = out

    handle = layer.register_forward_hook(hook)
    try:
        y = model(x)
    finally:
        handle.remove()
    a = captured["a"]
    (g,) = torch.autograd.grad(y[:, target].sum(), a)
    size = x.shape[2:]

    def nrm(m):
        peak = m.flatten(1).max(dim=1).values.view(-1, 1, 1, 1, 1)
        return torch.where(peak > 0, m / peak.clamp_min(1e-30), torch.zeros_like(m))

    def up(m):
        return nn.functional.interpolate(m, size=size, mode="trilinear", align_corners=False)

    beta, alpha = g.sum(1, keepdim=True), a.sum(1, keepdim=True)
    return nrm(torch.relu(up(beta))) * nrm(torch.relu(up(alpha)))


def test_3dcam_explains_a_gated_model():
    from captum_3dcam import GlobalLocal3DCam

    model = _small().eval()
    layers = model.gated_layers
    assert layers == [model.backbone.conv1, model.backbone.conv2, model.backbone.conv3,
                      model.backbone.conv4]
    x = torch.randn(2, *SMALL_SHAPE)
    maps = GlobalLocal3DCam(model, layers).attribute(x, target=None)
    assert maps.shape == (2, 1, *SMALL_SHAPE[1:])
    assert torch.isfinite(maps).all() and (maps >= 0).all()
    assert _hooks(model) == 0
    # one layer against the formula by hand: the gradient must include the gate's path
    target = 1
    (one,) = GlobalLocal3DCam(model, [layers[1]]).attribute(
        x, target=target, return_layer_maps=True
    )[1]
    torch.testing.assert_close(one, _manual_3dcam_one_layer(model, layers[1], x, target))
    backbone_only = _manual_3dcam_one_layer(model.backbone, layers[1], x, target)
    assert not torch.allclose(one, backbone_only)


def test_3dcam_explains_a_frozen_gated_model():
    from captum_3dcam import GlobalLocal3DCam

    model = _small(freeze_backbone=True, layers=["conv2", "conv3"]).eval()
    x = torch.randn(1, *SMALL_SHAPE)
    maps = GlobalLocal3DCam(model, model.gated_layers).attribute(x)
    assert maps.shape == (1, 1, *SMALL_SHAPE[1:]) and maps.max() > 0
    assert all(p.grad is None and not p.requires_grad for p in model.backbone.parameters())


# ---------------------------------------------------------------------------- other backbones
def test_torchvision_video_resnet():
    video = pytest.importorskip("torchvision.models.video")
    torch.manual_seed(0)
    backbone = video.r3d_18(num_classes=4).eval()
    model = LayerwiseGatedClassifier(
        backbone, ["stem", "layer1", "layer2", "layer3", "layer4"], 4, input_shape=(3, 8, 32, 32)
    )
    assert model.temporal_sizes == [4, 4, 2, 1, 1]
    logits, gates, backbone_logits = model(torch.randn(1, 3, 8, 32, 32), return_gate_logits=True)
    torch.testing.assert_close(logits, backbone_logits + sum(gates))


@pytest.mark.slow
def test_i3d_paper_gates():
    from captum_3dcam.models.i3d import InceptionI3d

    torch.manual_seed(0)
    backbone = InceptionI3d(num_classes=4).eval()
    shape = (3, 9, 193, 193)  # the smallest clip I3D takes: T_k = 5, 3, 2 at the paper's gates
    model = LayerwiseGatedClassifier(
        backbone, list(PAPER_GATE_LAYERS["i3d"]), 4, input_shape=shape
    ).eval()
    assert model.in_channels == [480, 832, 1024]
    assert model.temporal_sizes == [2, 1, 1]
    with torch.no_grad():
        logits, gates, backbone_logits = model(torch.randn(1, *shape), return_gate_logits=True)
    assert logits.shape == (1, 4)
    torch.testing.assert_close(logits, backbone_logits + sum(gates))
    assert _hooks(model) == 0


@pytest.mark.slow
def test_resnext_paper_gates():
    from captum_3dcam.models.resnext import ResNeXt3D

    torch.manual_seed(0)
    backbone = ResNeXt3D((1, 1, 1, 1), num_classes=4).eval()
    shape = (3, 16, 32, 32)  # the paper's 16 frames: layer4 has T_k = 1 < t = 2 -> clamped to 1
    model = LayerwiseGatedClassifier(
        backbone, list(PAPER_GATE_LAYERS["resnext3d"]), 4, input_shape=shape
    ).eval()
    assert model.in_channels == [64, 256, 512, 1024, 2048]
    assert model.temporal_sizes == [8, 4, 2, 1, 1]
    with pytest.raises(ValueError, match="'layer4' has temporal size T_k=1"):
        LayerwiseGatedClassifier(backbone, ["layer4"], 4, input_shape=shape, clamp_temporal=False)
    with torch.no_grad():
        logits, gates, backbone_logits = model(torch.randn(1, *shape), return_gate_logits=True)
    torch.testing.assert_close(logits, backbone_logits + sum(gates))
    assert _hooks(model) == 0
