"""Faithfulness metrics: hand-computed curves and AUCs, baselines, ROAD imputation, controls, input checks."""
import numpy as np
import pytest
import torch
from torch import nn
from torch.testing import assert_close

from captum_3dcam.metrics.confidence import average_drop, confidence_scores, increase_in_confidence, random_attribution
from captum_3dcam.metrics.faithfulness import curve_auc, deletion_auc, deletion_curve, deletion_insertion_curves, insertion_auc, insertion_curve
from captum_3dcam.metrics.imputation import baseline_clip, gaussian_blur3d, noisy_linear_imputation
from captum_3dcam.attr.upsample import upsample_to

from _models import TwoBlock3D

QUIET = {"show_progress": False}


class WeightedSum(nn.Module):
    """logits = [sum(w * x), 0] over a (1, 2, 4, 4) clip: class 0's score is a known weighted sum."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", weight)

    def forward(self, x):
        s = (x * self.weight).flatten(1).sum(1)
        return torch.stack([s, torch.zeros_like(s)], dim=1)


def _cube_weights():
    """Per-voxel weights of a (1, 1, 2, 4, 4) clip: cube (1, 2, 2) number i (raster order) has weight 8 - i."""
    cubes = torch.arange(8, 0, -1, dtype=torch.float32).view(1, 1, 2, 2, 2)
    return cubes.repeat_interleave(2, 3).repeat_interleave(2, 4)


@pytest.fixture
def weighted():
    w = _cube_weights()
    return WeightedSum(w).eval(), torch.ones(1, 1, 2, 4, 4), w


# ---------------------------------------------------------------------------------------------
# hand-computed curves


def test_deletion_curve_hand_computed(weighted):
    model, x, w = weighted
    # cube contributions 4 * (8..1) = 32, 28, ..., 4 (total 144); steps=4 removes two cubes per step
    fr, s = deletion_curve(model, x, w, 0, baseline="zero", steps=4, cube=(1, 2, 2), score="logit", **QUIET)
    assert_close(fr, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    assert_close(s, torch.tensor([[144.0, 84.0, 40.0, 12.0, 0.0]]))
    # trapezoid by hand: 0.25 * (144/2 + 84 + 40 + 12 + 0/2) = 52
    auc = deletion_auc(model, x, w, 0, baseline="zero", steps=4, cube=(1, 2, 2), score="logit", **QUIET)
    assert_close(auc, torch.tensor([52.0]))
    rel = deletion_auc(model, x, w, 0, baseline="zero", steps=4, cube=(1, 2, 2), score="logit", relative=True, **QUIET)
    assert_close(rel, torch.tensor([52.0 / 144.0]))


def test_insertion_curve_hand_computed(weighted):
    model, x, w = weighted
    fr, s = insertion_curve(model, x, w, 0, baseline="zero", steps=4, cube=(1, 2, 2), score="logit", **QUIET)
    assert_close(s, torch.tensor([[0.0, 60.0, 104.0, 132.0, 144.0]]))
    auc = insertion_auc(model, x, w, 0, baseline="zero", steps=4, cube=(1, 2, 2), score="logit", **QUIET)
    assert_close(auc, torch.tensor([0.25 * (0 + 60 + 104 + 132 + 144 / 2)]))
    # the reversed map is the worst order: deletion keeps the large cubes longest
    _, worst = deletion_curve(model, x, -w, 0, baseline="zero", steps=4, cube=(1, 2, 2), score="logit", **QUIET)
    assert_close(worst, torch.tensor([[144.0, 132.0, 104.0, 60.0, 0.0]]))


def test_probability_score_is_softmax_of_the_logit_curve(weighted):
    model, x, w = weighted
    _, s = deletion_curve(model, x * 0.01, w, 0, baseline="zero", steps=4, cube=(1, 2, 2), **QUIET)
    assert_close(s, torch.sigmoid(torch.tensor([[1.44, 0.84, 0.40, 0.12, 0.0]])))


def test_both_curves_in_one_call_match_the_single_ones(weighted):
    model, x, w = weighted
    kw = dict(baseline="mean", steps=4, cube=(1, 2, 2), score="logit", **QUIET)
    x = x + torch.arange(32.0).view(1, 1, 2, 4, 4) / 32
    fr, dele, ins = deletion_insertion_curves(model, x, w, 0, **kw)
    assert_close(dele, deletion_curve(model, x, w, 0, **kw)[1])
    assert_close(ins, insertion_curve(model, x, w, 0, **kw)[1])
    assert_close(dele[:, -1], ins[:, 0])  # both end / start at the all-replaced clip


def test_curve_auc_trapezoid():
    fr = torch.tensor([0.0, 0.5, 1.0])
    scores = torch.tensor([[1.0, 0.5, 0.0], [2.0, 2.0, 2.0]])
    assert_close(curve_auc(fr, scores), torch.tensor([0.5, 2.0]))
    assert_close(curve_auc(fr, scores, relative=True), torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match="reference"):
        curve_auc(fr, torch.tensor([[0.0, 1.0, 1.0]]), relative=True)


def test_target_none_is_the_predicted_class(weighted):
    model, x, w = weighted
    kw = dict(baseline="zero", steps=2, cube=(1, 2, 2), **QUIET)
    assert_close(deletion_curve(model, x, w, **kw)[1], deletion_curve(model, x, w, 0, **kw)[1])
    assert_close(deletion_curve(model, -x, w, **kw)[1], deletion_curve(model, -x, w, 1, **kw)[1])


def test_low_resolution_maps_are_upsampled(weighted):
    model, x, _ = weighted
    small = torch.tensor([[4.0, 3.0], [2.0, 1.0]]).view(1, 1, 1, 2, 2)
    kw = dict(baseline="zero", steps=4, cube=(1, 2, 2), score="logit", **QUIET)
    assert_close(deletion_curve(model, x, small, 0, **kw)[1],
                 deletion_curve(model, x, upsample_to(small, (2, 4, 4)), 0, **kw)[1])
    assert_close(deletion_curve(model, x, small[:, 0], 0, **kw)[1], deletion_curve(model, x, small, 0, **kw)[1])


def test_default_cubes_are_a_4x7x7_grid():
    cubes = torch.randperm(196, generator=torch.Generator().manual_seed(0)).float().view(1, 1, 4, 7, 7)
    w = cubes.repeat_interleave(2, 2).repeat_interleave(2, 3).repeat_interleave(2, 4)  # (1, 1, 8, 14, 14)
    model = WeightedSum(w).eval()
    fr, s = deletion_curve(model, torch.ones_like(w), w, 0, baseline="zero", steps=196, score="logit", **QUIET)
    assert_close(fr, torch.arange(197.0) / 196)
    # one 2x2x2 cube per step, largest first: each drop is 8 voxels x that cube's weight
    assert_close(s[0, :-1] - s[0, 1:], 8 * torch.arange(195.0, -1, -1))


def test_partial_cubes_at_the_edges():
    model = WeightedSum(torch.ones(1, 1, 3, 5, 5)).eval()
    fr, s = deletion_curve(model, torch.ones(1, 1, 3, 5, 5), torch.rand(1, 1, 3, 5, 5), 0, baseline="zero",
                           steps=12, cube=(2, 2, 2), score="logit", **QUIET)
    assert fr.shape == (13,) and s.shape == (1, 13)
    assert s[0, 0] == 75 and s[0, -1] == 0 and bool((s[0, 1:] <= s[0, :-1]).all())


# ---------------------------------------------------------------------------------------------
# baselines and imputation


def test_blur_of_a_constant_clip_is_the_clip():
    x = torch.full((2, 3, 5, 9, 9), 0.7)
    assert_close(gaussian_blur3d(x, (1.0, 2.0, 2.0)), x)
    assert_close(baseline_clip(x, "blur"), x)


def test_blur_is_a_normalized_gaussian():
    x = torch.zeros(1, 1, 9, 21, 21)
    x[0, 0, 4, 10, 10] = 1.0
    y = gaussian_blur3d(x, (1.0, 2.0, 2.0))
    assert_close(y.sum(), torch.tensor(1.0))
    d = torch.arange(-2.0, 3.0)
    g = torch.exp(-0.5 * (d / 2.0) ** 2)
    ratio = y[0, 0, 4, 10, 8:13] / y[0, 0, 4, 10, 10]
    assert_close(ratio, g / g[2])


def test_mean_and_zero_baselines():
    x = torch.arange(2 * 2 * 8, dtype=torch.float32).view(2, 2, 2, 2, 2)
    mean = baseline_clip(x, "mean")
    assert_close(mean[1, 0], torch.full((2, 2, 2), float(x[1, 0].mean())))
    assert_close(baseline_clip(x, "zero"), torch.zeros_like(x))


def test_imputation_of_a_linear_ramp_reproduces_it():
    t, h, w = torch.meshgrid(torch.arange(6.0), torch.arange(12.0), torch.arange(12.0), indexing="ij")
    ramp = (0.5 * t - 0.2 * h + 0.1 * w)[None, None].repeat(1, 2, 1, 1, 1)
    keep = torch.ones(1, 1, 6, 12, 12, dtype=torch.bool)
    keep[..., 1:5, 2:10, 3:11] = False  # interior hole: the clip's border stays known
    out = noisy_linear_imputation(ramp, keep, noise=0.0, tol=1e-6, max_iter=200)
    assert_close(out, ramp, atol=1e-4, rtol=0)


def _exact_imputation(x: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The imputation system solved exactly with scipy (ROAD's way), 26 neighbours 4/2/1."""
    from scipy.sparse import csc_matrix
    from scipy.sparse.linalg import spsolve

    shape = np.array(keep.shape)
    unknown = np.argwhere(~keep)
    index = -np.ones(keep.shape, dtype=np.int64)
    index[~keep] = np.arange(len(unknown))
    rows, cols, vals = list(range(len(unknown))), list(range(len(unknown))), [0.0] * len(unknown)
    rhs = np.zeros((len(unknown), x.shape[0]))
    for off in np.argwhere(np.ones((3, 3, 3))) - 1:
        if not off.any():
            continue
        weight = 2.0 ** (3 - np.abs(off).sum())
        nb = unknown + off
        ok = ((nb >= 0) & (nb < shape)).all(1)
        for r, q in zip(np.nonzero(ok)[0], nb[ok]):
            vals[r] += weight
            if keep[tuple(q)]:
                rhs[r] += weight * x[:, q[0], q[1], q[2]]
            else:
                rows.append(r), cols.append(index[tuple(q)]), vals.append(-weight)
    a = csc_matrix((vals, (rows, cols)), shape=(len(unknown), len(unknown)))
    out = x.copy()
    out[:, ~keep] = np.asarray(spsolve(a, rhs)).reshape(len(unknown), -1).T
    return out


@pytest.mark.parametrize("fraction", [0.2, 0.8])
def test_imputation_matches_the_exact_sparse_solve(fraction):
    gen = torch.Generator().manual_seed(1)
    x = gaussian_blur3d(torch.randn(1, 2, 4, 16, 16, generator=gen), (0.5, 1.5, 1.5))
    keep = (torch.rand(1, 1, 2, 4, 4, generator=gen) >= fraction)
    keep = keep.repeat_interleave(2, 2).repeat_interleave(4, 3).repeat_interleave(4, 4)
    exact = _exact_imputation(x[0].double().numpy(), keep[0, 0].numpy())
    approx = noisy_linear_imputation(x, keep, noise=0.0)
    std = float(x.std(dim=(2, 3, 4)).max())
    err = np.abs(approx[0].numpy() - exact)
    assert err.max() < 0.05 * std and err.mean() < 0.005 * std
    tight = noisy_linear_imputation(x, keep, noise=0.0, tol=1e-7, max_iter=500)
    assert_close(tight[0].double(), torch.from_numpy(exact), atol=1e-4 * std, rtol=0)


def test_imputation_keeps_kept_voxels_noise_and_empty_clip():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 8, 8, generator=gen)
    keep = torch.rand(2, 1, 4, 8, 8, generator=gen) > 0.5
    out = noisy_linear_imputation(x, keep, noise=0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(out[keep.expand_as(out)], x[keep.expand_as(x)])
    nothing = torch.zeros_like(keep)
    flat = noisy_linear_imputation(x, nothing, noise=0.0)
    assert_close(flat, x.mean(dim=(2, 3, 4), keepdim=True).expand_as(x))
    noisy = noisy_linear_imputation(x, nothing, noise=0.1, generator=torch.Generator().manual_seed(3))
    ratio = (noisy - flat).std(dim=(2, 3, 4)) / x.std(dim=(2, 3, 4))
    assert_close(ratio, torch.full_like(ratio, 0.1), atol=0.02, rtol=0)


def test_road_curves_use_the_same_noise_for_every_map():
    torch.manual_seed(0)
    model = TwoBlock3D().eval()
    x = torch.randn(2, 3, 4, 16, 16)
    kw = dict(baseline="road", steps=3, cube=(2, 4, 4), **QUIET)
    a = deletion_insertion_curves(model, x, random_attribution(x, seed=1), **kw)
    b = deletion_insertion_curves(model, x, random_attribution(x, seed=2), **kw)
    assert_close(a[1][:, -1], b[1][:, -1])  # all removed: same imputation, same noise
    assert not torch.equal(a[1][:, 1], b[1][:, 1])


# ---------------------------------------------------------------------------------------------
# controls and invariances


def test_random_attribution_is_seeded():
    like = torch.zeros(2, 3, 4, 8, 8)
    a, b, c = (random_attribution(like, seed=s) for s in (5, 5, 6))
    assert a.shape == (2, 1, 4, 8, 8) and torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0 and float(a.max()) < 1
    blobs = random_attribution(like, seed=5, sigma=(1.0, 2.0, 2.0))
    assert blobs.shape == a.shape and float(blobs.std()) < float(a.std())
    model = TwoBlock3D().eval()
    kw = dict(baseline="blur", steps=3, cube=(2, 4, 4), **QUIET)
    assert_close(deletion_curve(model, like + 1, a, **kw)[1], deletion_curve(model, like + 1, b, **kw)[1])


@pytest.mark.parametrize("baseline", ["zero", "mean", "blur", "road"])
def test_batch_size_does_not_change_the_curves(baseline):
    torch.manual_seed(0)
    model = TwoBlock3D().eval()
    x = torch.randn(3, 3, 4, 16, 16)
    maps = torch.rand(3, 1, 4, 16, 16)
    kw = dict(baseline=baseline, steps=4, cube=(2, 4, 4), **QUIET)
    one = deletion_insertion_curves(model, x, maps, batch_size=1, **kw)
    eight = deletion_insertion_curves(model, x, maps, batch_size=8, **kw)
    for a, b in zip(one, eight):
        assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert all(bool(torch.isfinite(c).all()) for c in one)


def test_model_is_left_untouched():
    torch.manual_seed(0)
    model = TwoBlock3D().eval()
    model.conv1.weight.grad = torch.ones_like(model.conv1.weight)
    model.fc.weight.requires_grad_(False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, 4, 8, 8)
    deletion_insertion_curves(model, x, torch.rand(2, 1, 4, 8, 8), steps=2, cube=(2, 4, 4), baseline="road", **QUIET)
    average_drop(model, x, torch.rand(2, 1, 4, 8, 8))
    assert not model.training
    assert torch.equal(model.conv1.weight.grad, torch.ones_like(model.conv1.weight))
    assert model.conv2.weight.grad is None and not model.fc.weight.requires_grad and model.conv1.weight.requires_grad
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in model.modules())


def test_training_mode_warns_and_stays():
    model = TwoBlock3D().train()
    with pytest.warns(UserWarning, match="training mode"):
        deletion_curve(model, torch.randn(2, 3, 4, 8, 8), torch.rand(2, 1, 4, 8, 8), steps=1, cube=(2, 4, 4), **QUIET)
    assert model.training


def test_runs_on_the_inputs_device(device):
    model = TwoBlock3D().eval().to(device)
    x = torch.randn(2, 3, 4, 8, 8, device=device)
    fr, d, i = deletion_insertion_curves(model, x, random_attribution(x), steps=2, cube=(2, 4, 4), **QUIET)
    assert fr.device.type == d.device.type == i.device.type == device.type


# ---------------------------------------------------------------------------------------------
# average drop / increase in confidence


def test_average_drop_and_increase_in_confidence_hand_computed():
    w = torch.zeros(1, 1, 2, 4, 4)
    w[..., :2, :2] = 1.0  # the model looks at one corner column only
    model = WeightedSum(w).eval()
    x = torch.full((2, 1, 2, 4, 4), 0.5)
    inside = w.expand(2, -1, -1, -1, -1)
    y = torch.sigmoid(torch.tensor(8 * 0.5))  # 8 voxels of 0.5 in the region: Y = softmax([4, 0])[0]
    # E = 1 on the region the model uses: O = Y, no drop, no increase
    assert_close(average_drop(model, x, inside, 0), torch.tensor(0.0))
    assert_close(increase_in_confidence(model, x, inside, 0), torch.tensor(0.0))
    # E = 1 elsewhere: O = softmax([0, 0])[0] = 0.5, AD = 100 (Y - 0.5) / Y
    outside = 1 - inside
    expected = 100 * (y - 0.5) / y
    assert_close(average_drop(model, x, outside, 0), expected)
    ys, os_ = confidence_scores(model, x, outside, 0)
    assert_close(ys, y.expand(2)) and assert_close(os_, torch.full((2,), 0.5))
    # mixed: sample 0 explained well, sample 1 badly; a negative clip gains confidence when masked
    both = torch.stack([inside[0], outside[1]])
    assert_close(average_drop(model, x, both, 0, reduction="none"), torch.stack([torch.tensor(0.0), expected]))
    assert_close(increase_in_confidence(model, -x, outside, 0), torch.tensor(100.0))


def test_average_drop_rejects_non_positive_scores():
    model = WeightedSum(torch.ones(1, 1, 2, 4, 4)).eval()
    with pytest.raises(ValueError, match="positive scores"):
        average_drop(model, -torch.ones(1, 1, 2, 4, 4), torch.rand(1, 1, 2, 4, 4), 0, score="logit")


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(inputs=[1.0]), TypeError, "inputs: expected a torch.Tensor"),
        (dict(inputs=torch.ones(1, 2, 4, 4)), ValueError, r"inputs: expected a non-empty 5-D tensor"),
        (dict(inputs=torch.ones(1, 1, 2, 4, 4, dtype=torch.long)), TypeError, "inputs: expected a floating-point"),
        (dict(attributions=torch.rand(2, 1, 2, 4, 4)), ValueError, r"attributions: expected .* N = 1"),
        (dict(attributions=torch.full((1, 1, 2, 4, 4), float("nan"))), ValueError, "attributions: expected finite"),
        (dict(attributions=np.ones((1, 1, 2, 4, 4))), TypeError, "attributions: expected a torch.Tensor"),
        (dict(steps=0), ValueError, "steps: expected an int >= 1, got 0"),
        (dict(cube=(1, 0, 2)), ValueError, "cube: expected positive sizes"),
        (dict(cube=(4, 2, 2)), ValueError, r"cube: expected sizes <= the clip's"),
        (dict(baseline="noise"), ValueError, "baseline: expected one of"),
        (dict(baseline=torch.ones(3, 3)), ValueError, "baseline: a tensor must broadcast"),
        (dict(baseline=3), TypeError, "baseline: expected a str, a tensor or a callable"),
        (dict(batch_size=0), ValueError, "batch_size: expected an int >= 1"),
        (dict(score="prob"), ValueError, "score: expected 'probability' or 'logit'"),
        (dict(target=5), ValueError, r"target: expected class indices in \[0, 2\)"),
        (dict(target=[0, 1]), ValueError, "target: expected None, an int, or N = 1 ints"),
        (dict(target=0.5), ValueError, "target: expected None, an int"),
        (dict(forward_func="model"), TypeError, "forward_func: expected a callable"),
        (dict(forward_func=lambda x: x), ValueError, r"forward_func: expected an output \(N, classes\)"),
        (dict(modes=("deletion", "deletion")), ValueError, "modes: expected distinct entries"),
    ],
)
def test_bad_input_is_named(weighted, kwargs, error, message):
    model, x, w = weighted
    args = dict(forward_func=model, inputs=x, attributions=w, target=0, steps=2, cube=(1, 2, 2), **QUIET)
    args.update(kwargs)
    with pytest.raises(error, match=message):
        deletion_insertion_curves(**args)


def test_bad_input_of_the_helpers():
    x = torch.ones(1, 1, 2, 4, 4)
    with pytest.raises(ValueError, match="sigma: expected three non-negative"):
        gaussian_blur3d(x, (1.0, -1.0, 1.0))
    with pytest.raises(ValueError, match="keep: expected a bool tensor"):
        noisy_linear_imputation(x, torch.ones(1, 1, 2, 4, 4))
    with pytest.raises(ValueError, match="tol: expected > 0, got 0"):
        noisy_linear_imputation(x, torch.ones(1, 1, 2, 4, 4, dtype=torch.bool), tol=0)
    with pytest.raises(ValueError, match="baseline: expected 'zero'"):
        confidence_scores(WeightedSum(x).eval(), x, x, baseline="road")
    with pytest.raises(ValueError, match="reduction"):
        average_drop(WeightedSum(x).eval(), x, x, reduction="sum")
    with pytest.raises(TypeError, match="like: expected a torch.Tensor"):
        random_attribution([1])
