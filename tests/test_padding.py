"""Temporal margins: pad_time / crop_time by hand, and attribute(temporal_margin=m) equal to the maps of
the padded clip cut back, for every output size."""
import pytest
import torch

from captum_3dcam import GlobalLocal3DCam
from captum_3dcam.models import Small3DCNN
from captum_3dcam.attr.padding import crop_time, pad_time
from captum_3dcam.attr.upsample import upsample_to
from captum_3dcam.video.windows import stitch_windows, window_taper

from _models import seeded


def test_pad_time_repeats_the_end_frames():
    x = torch.arange(3.0).view(1, 1, 3, 1, 1)
    assert pad_time(x, 2).flatten().tolist() == [0, 0, 0, 1, 2, 2, 2]
    assert pad_time(x, 0) is x
    assert torch.equal(crop_time(pad_time(x, 2), 2, 3), x)
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="temporal_margin"):
            pad_time(x, bad)


@pytest.mark.parametrize("output_size", [None, (4, 16, 16)])
def test_temporal_margin_is_the_padded_clips_map_cut_back(output_size):
    model = seeded(Small3DCNN, num_classes=5)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 32, 32)
    cam = GlobalLocal3DCam(model, [model.conv2, model.conv3, model.conv4])
    got = cam.attribute(x, target=[1, 3], temporal_margin=3, output_size=output_size, layer_rule="gradcam++")
    full = cam.attribute(pad_time(x, 3), target=[1, 3], layer_rule="gradcam++", output_size=(14, *(output_size or (8, 32, 32))[1:]))
    expected = full[:, :, 3:11]
    if output_size is not None:
        expected = upsample_to(expected, output_size)
    torch.testing.assert_close(got, expected)
    assert got.shape == (2, 1, *(output_size or (8, 32, 32)))
    with pytest.raises(ValueError, match="temporal_margin"):
        cam.attribute(x, temporal_margin=-2)


def test_window_taper_hand_values_and_stitching():
    assert window_taper(4).tolist() == [0.5, 1.0, 1.0, 0.5]
    assert window_taper(5).tolist() == pytest.approx([1 / 3, 2 / 3, 1.0, 2 / 3, 1 / 3])
    # two windows of 4 over 6 frames: frames 2, 3 are window 0's last two and window 1's first two
    per_window = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]).view(2, 1, 4, 1, 1)
    tapered = stitch_windows(per_window, [(0, 4), (2, 6)], 6).flatten().tolist()
    plain = stitch_windows(per_window, [(0, 4), (2, 6)], 6, taper=False).flatten().tolist()
    # frame 2: window 0 weight 1.0 (value 0), window 1 weight 0.5 (value 1) -> 1/3; frame 3 -> 2/3
    assert tapered == pytest.approx([0, 0, 1 / 3, 2 / 3, 1, 1])
    assert plain == pytest.approx([0, 0, 0.5, 0.5, 1, 1])
