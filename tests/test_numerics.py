"""Numerically right answers: no float16 overflow, no lost integer precision, float64 never computed in
float32 in metrics/localization (only half precision is raised), boxes always float32, and inputs
that would give a silently wrong answer (0-1 frames, std = 0, IoUs outside [0, 1]) refused by name."""
import math

import numpy as np
import pytest
import torch

from captum_3dcam.metrics.localization import (
    LocalizationMeter,
    box_iou,
    check_boxes,
    hit_rate,
    iou_accuracy,
    pointing_game,
    temporal_iou,
)
from captum_3dcam.video.preprocess import frames_to_clip, preprocess_clip, preprocess_i3d, preprocess_resnext

NAN = float("nan")
BIG = 2**24  # float32 holds every integer up to here, not beyond


# ------------------------------------------------------------------ box_iou
def test_box_iou_does_not_overflow_in_float16():
    a = torch.tensor([[0.0, 0.0, 300.0, 300.0]], dtype=torch.float16)  # area 90000 > float16's 65504
    b = torch.tensor([[0.0, 0.0, 300.0, 150.0]], dtype=torch.float16)
    iou = box_iou(a, b)
    assert iou.dtype == torch.float32
    assert float(iou) == 0.5 and float(box_iou(a, a)) == 1.0


def test_box_iou_keeps_integer_precision_beyond_float32():
    a = torch.tensor([[BIG + 1, 0, BIG + 3, 1]], dtype=torch.int64)  # exact IoU 1/3
    b = torch.tensor([[BIG + 2, 0, BIG + 4, 1]], dtype=torch.int64)
    iou = box_iou(a, b)
    assert iou.dtype == torch.float32 and abs(float(iou) - 1 / 3) < 1e-7  # float32 arithmetic gives 0.5


def test_box_iou_float64_is_computed_in_float64():
    a = torch.tensor([[0.0, 0.0, 1.0 + 1e-9, 1.0]], dtype=torch.float64)
    b = torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    iou = box_iou(a, b)
    assert iou.dtype == torch.float64 and float(iou) == pytest.approx(1 / (1 + 1e-9), abs=1e-15) and float(iou) < 1


@pytest.mark.parametrize("dtypes, expected", [
    ((torch.bfloat16, torch.bfloat16), torch.float32), ((torch.float16, torch.float64), torch.float64),
    ((torch.int32, torch.int32), torch.float32), ((torch.float32, torch.int64), torch.float32)])
def test_box_iou_returns_the_promised_dtype(dtypes, expected):
    a = torch.tensor([[0, 0, 4, 4]]).to(dtypes[0])
    b = torch.tensor([[2, 0, 6, 4]]).to(dtypes[1])
    iou = box_iou(a, b)
    assert iou.dtype == expected and float(iou) == pytest.approx(1 / 3, abs=1e-7)


def test_reversed_boxes_beyond_float32_are_caught():
    with pytest.raises(ValueError, match=r"x1 <= x2"):  # x2 < x1 by one: equal once rounded to float32
        check_boxes(torch.tensor([[BIG + 1, 0, BIG, 1]], dtype=torch.int64))


def test_pointing_game_compares_pixels_exactly_with_half_precision_boxes():
    maps = torch.zeros(1, 1, 1, 1, 2100)
    maps[..., 2051] = 1.0  # x = 2051 lies in [2050, 2052); float16 rounds 2051 to 2052
    gt = torch.tensor([[[2050.0, 0.0, 2052.0, 1.0]]], dtype=torch.float16)
    assert pointing_game(maps, gt).tolist() == [[True]]


def test_pointing_game_refuses_nan_maps():
    maps = torch.rand(1, 1, 2, 4, 4)
    maps[0, 0, 1, 2, 2] = NAN
    with pytest.raises(ValueError, match="maps: expected finite values, got 1 NaN/inf"):
        pointing_game(maps, torch.zeros(1, 2, 4))


# ------------------------------------------------------------------ metrics on numbers out of range
@pytest.mark.parametrize("bad", [-0.1, 1.5, math.inf, -math.inf])
def test_iou_accuracy_refuses_ious_outside_the_unit_interval(bad):
    with pytest.raises(ValueError, match=r"ious: expected IoUs in \[0, 1\] .* got values from"):
        iou_accuracy(torch.tensor([0.5, bad, NAN]))


def test_iou_accuracy_thresholds_numpy_accepted_nan_refused():
    ious = torch.tensor([0.2, 0.7, NAN])
    assert iou_accuracy(ious, [np.float32(0.5)]) == {0.5: 0.5}
    with pytest.raises(ValueError, match="thresholds: expected numbers in"):
        iou_accuracy(ious, [NAN])
    with pytest.raises(TypeError, match="ious: expected a real torch.Tensor"):
        iou_accuracy(torch.tensor([True]))


def test_meter_refuses_bad_ious_when_they_are_added_not_at_compute():
    meter = LocalizationMeter()
    with pytest.raises(ValueError, match=r"ious: expected IoUs in \[0, 1\]"):
        meter.add(torch.ones(1, 2, dtype=torch.bool), torch.tensor([[0.5, 2.0]]))
    with pytest.raises(ValueError, match="hits: expected a bool tensor"):
        meter.add(torch.tensor([[0.5, 1.0]]), torch.tensor([[0.5, 1.0]]))
    assert meter.compute()["frames"] == 0  # nothing half-added


def test_hit_rate_refuses_hits_that_are_not_bool():
    gt = torch.zeros(1, 2, 4)
    with pytest.raises(ValueError, match="hits: expected a bool tensor"):
        hit_rate(torch.tensor([[0.5, 1.0]]), gt)


def test_temporal_iou_refuses_reversed_segments():
    with pytest.raises(ValueError, match=r"pred_segments: expected start <= end"):
        temporal_iou(torch.tensor([[5.0, 2.0]]), torch.tensor([[0.0, 4.0]]))


# ------------------------------------------------------------------ localization dtypes
def test_boxes_of_bfloat16_maps_are_exact_float32():
    pytest.importorskip("scipy")
    from captum_3dcam.localization.boxes import attribution_to_boxes, attribution_to_regions

    maps = torch.zeros(1, 1, 1, 4, 320, dtype=torch.bfloat16)
    maps[..., 1:3, 257:301] = 1.0  # bfloat16 cannot hold 257 or 301
    boxes = attribution_to_boxes(maps)
    assert boxes.dtype == torch.float32 and boxes[0, 0].tolist() == [257.0, 1.0, 301.0, 3.0]
    assert attribution_to_regions(maps)[0][0].boxes.tolist() == [[257.0, 1.0, 301.0, 3.0]]
    assert attribution_to_boxes(maps.double()).dtype == torch.float32


def test_region_masses_and_temporal_curve_of_float16_maps_do_not_overflow():
    pytest.importorskip("scipy")
    from captum_3dcam.localization.boxes import attribution_to_regions
    from captum_3dcam.localization.tubes import attribution_to_tubes, temporal_attention

    maps = torch.ones(1, 1, 2, 300, 300, dtype=torch.float16)  # 90000 pixels of 1: above float16's max
    mass = attribution_to_regions(maps)[0][0].masses
    assert mass.dtype == torch.float32 and float(mass[0]) == 90000.0
    curve = temporal_attention(maps, normalize=False)
    assert curve.dtype == torch.float32 and curve.tolist() == [[90000.0, 90000.0]]
    assert attribution_to_tubes(maps).dtype == torch.float32


def test_otsu_is_exact_in_float16_and_constant_frames_keep_the_whole_frame():
    pytest.importorskip("scipy")
    from captum_3dcam.localization.boxes import attribution_to_boxes, otsu_thresholds

    torch.manual_seed(0)
    maps = torch.rand(1, 1, 1, 100, 100) ** 3  # 10,000 pixels: float16 counts are not exact above 2048
    torch.testing.assert_close(otsu_thresholds(maps.half()), otsu_thresholds(maps.half().float()))
    const = torch.cat([torch.full((1, 1, 1, 5, 6), 2.0), torch.zeros(1, 1, 1, 5, 6), torch.full((1, 1, 1, 5, 6), -1.0)], 2)
    assert otsu_thresholds(const).tolist() == [[1.0, 1.0, 1.0]]
    boxes = attribution_to_boxes(const, "otsu")[0]
    assert boxes[0].tolist() == [0.0, 0.0, 6.0, 5.0] and torch.isnan(boxes[1:]).all()


def test_frame_geometry_of_half_precision_boxes_and_maps_is_exact():
    _, geo = preprocess_i3d(torch.zeros(9, 2160, 3840, 3, dtype=torch.uint8)[:, ::8, ::8])  # 270 x 480
    boxes = torch.tensor([[1.0, 1.0, 223.0, 223.0]], dtype=torch.float16)
    out = geo.boxes_to_frame(boxes)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, geo.boxes_to_frame(boxes.float()))
    maps = torch.rand(1, 1, 2, 224, 224)
    torch.testing.assert_close(geo.maps_to_frame(maps.half()).float(), geo.maps_to_frame(maps.half().float()),
                               atol=1e-3, rtol=1e-3)


# ------------------------------------------------------------------ frames and normalization
@pytest.mark.parametrize("fn", [preprocess_i3d, preprocess_resnext, lambda f: frames_to_clip(f)],
                         ids=["preprocess_i3d", "preprocess_resnext", "frames_to_clip"])
def test_float_frames_in_0_1_are_refused_with_the_conversion(fn):
    frames = torch.rand(16, 32, 40, 3)
    with pytest.raises(ValueError, match=r"frames: float values .* look like the 0-1 scale.*\(frames \* 255\)"):
        fn(frames)


def test_float_frames_on_the_0_255_scale_equal_uint8():
    frames = torch.randint(0, 256, (9, 32, 40, 3), dtype=torch.uint8)
    torch.testing.assert_close(preprocess_i3d(frames.float())[0], preprocess_i3d(frames)[0])
    torch.testing.assert_close(preprocess_i3d(torch.zeros(9, 32, 40, 3))[0], preprocess_i3d(torch.zeros(9, 32, 40, 3,
                               dtype=torch.uint8))[0])  # an all-black float clip is not refused


@pytest.mark.parametrize("frames, exc, words", [
    (torch.full((9, 8, 8, 3), 300.0), ValueError, ["frames", "0-255", "300"]),
    (torch.full((9, 8, 8, 3), -1.0), ValueError, ["frames", "0-255", "-1"]),
    (torch.full((9, 8, 8, 3), NAN), ValueError, ["frames", "NaN"]),
    (torch.full((9, 8, 8, 3), math.inf), ValueError, ["frames", "inf"]),
    (torch.ones(9, 8, 8, 3, dtype=torch.bool), TypeError, ["frames", "uint8", "bool"]),
    (torch.full((9, 8, 8, 3), 1000, dtype=torch.int64), ValueError, ["frames", "0-255", "1000"]),
], ids=["above 255", "negative", "NaN", "inf", "bool", "int64 1000"])
def test_frames_outside_the_0_255_scale_are_refused(frames, exc, words):
    with pytest.raises(exc) as info:
        preprocess_i3d(frames)
    assert all(w in str(info.value) for w in words), str(info.value)


GOOD = dict(short_side=8, crop_size=8, scale=1.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


BAD_SIZES = [
    (dict(crop_size=0), ValueError, ["crop_size", "positive int", "0"]),
    (dict(crop_size=-4), ValueError, ["crop_size", "positive int"]),
    (dict(crop_size=2.5), ValueError, ["crop_size", "positive int", "2.5"]),
    (dict(short_side=0, crop_size=0), ValueError, ["short_side", "positive int"]),
    (dict(crop_size=16), ValueError, ["crop_size", "must not exceed short_side"]),
    (dict(std=(0.0, 1.0, 1.0)), ValueError, ["std", "> 0"]),
    (dict(std=(1.0, -1.0, 1.0)), ValueError, ["std", "> 0"]),
    (dict(std=(1.0, 1.0)), ValueError, ["std", "3 finite numbers"]),
    (dict(mean=(0.5, 0.5)), ValueError, ["mean", "3 finite numbers", "[0.5, 0.5]"]),
    (dict(mean=(0.5, NAN, 0.5)), ValueError, ["mean", "3 finite numbers"]),
    (dict(mean="abc"), TypeError, ["mean", "3 numbers"]),
    (dict(mean=0.5), TypeError, ["mean", "3 numbers"]),
    (dict(scale=0.0), ValueError, ["scale", "> 0"]),
    (dict(scale=math.inf), ValueError, ["scale", "finite"]),
    (dict(min_frames=0), ValueError, ["min_frames", "positive int"]),
]


@pytest.mark.parametrize("override, exc, words", BAD_SIZES, ids=[str(c[0]) for c in BAD_SIZES])
def test_preprocess_clip_refuses_bad_sizes_and_normalizations(override, exc, words):
    with pytest.raises(exc) as info:
        preprocess_clip(torch.zeros(2, 8, 8, 3, dtype=torch.uint8), **{**GOOD, **override})
    assert all(w in str(info.value) for w in words), str(info.value)


def test_frames_to_clip_refuses_a_zero_std():
    with pytest.raises(ValueError, match=r"std: expected 3 finite numbers > 0"):
        frames_to_clip(torch.zeros(2, 4, 4, 3, dtype=torch.uint8), std=(0.5, 0.0, 0.5))
