"""upsample_to and normalize_max: hand-computed values and errors."""
import pytest
import torch

from captum_3dcam.attr.upsample import normalize_max, upsample_to


def test_upsample_hand_computed_linear_along_width():
    x = torch.tensor([0.0, 1.0]).view(1, 1, 1, 1, 2)
    # align_corners=False: output centres at -0.25, 0.25, 0.75, 1.25 of the input grid
    out = upsample_to(x, (1, 1, 4))
    torch.testing.assert_close(out.flatten(), torch.tensor([0.0, 0.25, 0.75, 1.0]))


def test_upsample_trilinear_is_separable():
    t = torch.tensor([0.0, 1.0]).view(1, 1, 2, 1, 1)
    h = torch.tensor([0.0, 2.0]).view(1, 1, 1, 2, 1)
    w = torch.tensor([0.0, 4.0]).view(1, 1, 1, 1, 2)
    x = t + h + w  # (1, 1, 2, 2, 2), a sum of linear ramps
    out = upsample_to(x, (4, 4, 4))
    ramp = torch.tensor([0.0, 0.25, 0.75, 1.0])
    expected = ramp.view(4, 1, 1) + 2 * ramp.view(1, 4, 1) + 4 * ramp.view(1, 1, 4)
    torch.testing.assert_close(out[0, 0], expected)


def test_upsample_same_size_is_identity_and_keeps_batch_and_channels():
    x = torch.randn(3, 2, 4, 5, 6)
    assert upsample_to(x, (4, 5, 6)) is x
    assert upsample_to(x, (8, 10, 12)).shape == (3, 2, 8, 10, 12)


@pytest.mark.parametrize(
    "x, size, exc",
    [
        (torch.zeros(1, 1, 4, 4), (2, 2, 2), ValueError),
        ("map", (2, 2, 2), TypeError),
        (torch.zeros(1, 1, 2, 2, 2), (2, 2), TypeError),
        (torch.zeros(1, 1, 2, 2, 2), (2, -1, 2), ValueError),
        (torch.zeros(1, 1, 2, 2, 2), (2, 2.5, 2), TypeError),
    ],
)
def test_upsample_bad_input(x, size, exc):
    with pytest.raises(exc, match="x|size"):
        upsample_to(x, size)


def test_normalize_max_per_sample_and_never_nan():
    x = torch.zeros(3, 1, 1, 1, 3)
    x[0, 0, 0, 0] = torch.tensor([1.0, 2.0, 4.0])
    x[2, 0, 0, 0] = torch.tensor([-1.0, -2.0, -4.0])  # no positive value -> zero, no sign flip
    out = normalize_max(x)
    torch.testing.assert_close(out[0].flatten(), torch.tensor([0.25, 0.5, 1.0]))
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    assert torch.equal(out[2], torch.zeros_like(out[2]))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    "shape, size",
    [
        ((2, 3, 4, 7, 7), (16, 112, 112)),
        ((1, 1, 2, 5, 9), (3, 5, 20)),  # one axis unchanged
        ((1, 2, 8, 28, 28), (4, 14, 30)),  # downsampling in time and space
        ((1, 1, 1, 1, 1), (5, 6, 7)),
    ],
)
def test_upsample_equals_torch_trilinear(shape, size):
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=torch.float64)
    ref = torch.nn.functional.interpolate(x, size=size, mode="trilinear", align_corners=False)
    out = upsample_to(x, size)
    assert out.is_contiguous() and out.dtype == x.dtype
    torch.testing.assert_close(out, ref)
