"""Cascading model-parameter randomization (Adebayo et al. 2018): metrics and model safety."""
import pytest
import torch
from torch import nn

pytest.importorskip("scipy")

from captum_3dcam.metrics.sanity import (
    cascading_randomization,
    default_randomization_order,
    spearman_rank_correlation,
    ssim,
)


class Tiny3D(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv3d(4, 4, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.pool(self.conv2(self.conv1(x))).flatten(1))


def input_gradient(model, x, target):
    """A tiny explainer: |d y_target / d x| as (N, 1, T, H, W)."""
    x = x.clone().requires_grad_(True)
    out = model(x)
    (g,) = torch.autograd.grad(out.gather(1, target[:, None]).sum(), x)
    return g.abs().sum(1, keepdim=True)


def test_spearman_hand_values():
    a = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0]])
    b = torch.tensor([[10.0, 20.0, 30.0, 40.0], [4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0]])
    torch.testing.assert_close(spearman_rank_correlation(a, b), torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(spearman_rank_correlation(a[2:], a[2:]), torch.tensor([1.0], dtype=torch.float64))


def test_ssim_identity_and_scale_invariance():
    torch.manual_seed(0)
    a = torch.rand(2, 1, 3, 16, 16)
    torch.testing.assert_close(ssim(a, a), torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(ssim(a, 5 * a), torch.ones(2, dtype=torch.float64))  # min-max normalized
    b = torch.rand(2, 1, 3, 16, 16)
    s = ssim(a, b)
    assert (s < 0.5).all() and (s > -1).all()
    # small frames shrink the window instead of failing
    assert ssim(torch.rand(1, 4, 4), torch.rand(1, 4, 4)).shape == (1,)
    with pytest.raises(ValueError, match="same shape"):
        ssim(a, b[:, :, :2])


def test_default_order_is_top_down():
    assert default_randomization_order(Tiny3D()) == ["fc", "conv2", "conv1"]


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_cascading_never_changes_the_model_and_decorrelates():
    torch.manual_seed(0)
    model = Tiny3D().train()  # a training-mode model stays in training mode
    for p in model.parameters():
        p.grad = torch.full_like(p, 7.0)
    model.conv1[0].weight.requires_grad_(False)
    before = snapshot(model)
    x = torch.randn(2, 1, 4, 8, 8)
    steps = cascading_randomization(model, input_gradient, x, keep_maps=True)
    assert [s.layer for s in steps] == ["original", "fc", "conv2", "conv1"]
    torch.testing.assert_close(steps[0].spearman, torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(steps[0].ssim, torch.ones(2, dtype=torch.float64))
    # the last step randomized everything: the map must differ from the original
    assert (steps[-1].spearman < 0.9).all()
    assert steps[-1].maps.shape == (2, 1, 4, 8, 8)
    after = snapshot(model)
    for k in before:
        torch.testing.assert_close(after[k], before[k])
    assert model.training
    assert all((p.grad == 7.0).all() for p in model.parameters())
    assert not model.conv1[0].weight.requires_grad and model.fc.weight.requires_grad


def test_target_is_fixed_from_the_trained_model():
    torch.manual_seed(1)
    model = Tiny3D().eval()
    x = torch.randn(3, 1, 4, 8, 8)
    seen = []

    def explain(m, inputs, target):
        seen.append(target.clone())
        return input_gradient(m, inputs, target)

    cascading_randomization(model, explain, x, layers=["fc"])
    assert len(seen) == 2 and torch.equal(seen[0], seen[1])
    assert torch.equal(seen[0], model(x).argmax(1))


def test_independent_mode_and_seed_reproducible():
    torch.manual_seed(2)
    model = Tiny3D().eval()
    x = torch.randn(1, 1, 4, 8, 8)
    a = cascading_randomization(model, input_gradient, x, target=1, mode="independent", seed=3)
    b = cascading_randomization(model, input_gradient, x, target=1, mode="independent", seed=3)
    assert [s.layer for s in a] == ["original", "fc", "conv2", "conv1"]
    for sa, sb in zip(a, b):
        torch.testing.assert_close(sa.spearman, sb.spearman)


def test_bad_arguments():
    model = Tiny3D()
    x = torch.randn(1, 1, 4, 8, 8)
    with pytest.raises(ValueError, match="layers"):
        cascading_randomization(model, input_gradient, x, layers=["nope"])
    with pytest.raises(ValueError, match="mode"):
        cascading_randomization(model, input_gradient, x, mode="top")
    with pytest.raises(TypeError, match="explain"):
        cascading_randomization(model, None, x)
    with pytest.raises(TypeError, match="model"):
        cascading_randomization(lambda x: x, input_gradient, x)


def test_sanity_table_has_a_row_per_rule_and_preset_and_gradcam():
    from captum_3dcam.evaluation import sanity_table
    from captum_3dcam.attr.rules import LAYER_RULES
    from captum_3dcam.models import Small3DCNN

    torch.manual_seed(0)
    model = Small3DCNN(num_classes=3).eval()
    rows = sanity_table(model, [model.conv3, model.conv4], torch.randn(2, 3, 8, 32, 32))
    labels = [r.split(" | ")[0].lstrip("| ") for r in rows[2:]]
    assert labels[0] == "3DCam sum (default)" and labels[-1] == "LayerGradCam last layer"
    assert all(any(f"rule {r}," in lab for lab in labels) for r in LAYER_RULES if r != "3dcam")
    assert any(lab.startswith("preset `localize`") for lab in labels)
    for row in rows[2:]:
        cells = row.strip("| ").split(" | ")[1:]
        assert cells[0] == "1.00 / 1.00"   # step 0: the trained model against itself
        assert all(-1.0 <= float(c.split(" / ")[0]) <= 1.0 for c in cells)
