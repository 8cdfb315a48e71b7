"""Localization metrics: pointing game, IoU, IoU accuracy, Acc2, temporal IoU, the meter."""
import math

import pytest
import torch

from captum_3dcam.metrics.localization import (
    LocalizationMeter,
    box_iou,
    check_boxes,
    gt_segments,
    hit_rate,
    iou_accuracy,
    pointing_game,
    segment_set_iou,
    temporal_iou,
    valid_frames,
)

NAN = float("nan")


def test_box_iou_hand_values(device):
    pred = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 4.0, 4.0]], device=device)
    gt = torch.tensor([[1.0, 0.0, 3.0, 2.0], [0.0, 0.0, 2.0, 2.0], [2.0, 2.0, 3.0, 3.0], [1.0, 1.0, 3.0, 3.0]], device=device)
    iou = box_iou(pred, gt)
    assert iou.device.type == device.type
    torch.testing.assert_close(iou.cpu(), torch.tensor([2 / 6, 1.0, 0.0, 4 / 16]))


def test_box_iou_nan_rules():
    pred = torch.tensor([[[NAN] * 4, [0.0, 0.0, 1.0, 1.0], [NAN] * 4]])
    gt = torch.tensor([[[0.0, 0.0, 1.0, 1.0], [NAN] * 4, [NAN] * 4]])
    iou = box_iou(pred, gt)
    assert iou.shape == (1, 3)
    assert iou[0, 0] == 0.0  # no prediction on a GT frame: a miss
    assert torch.isnan(iou[0, 1:]).all()  # no GT: excluded


def test_box_iou_touching_and_degenerate():
    a = torch.tensor([[0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 2.0, 5.0], [2.0, 2.0, 2.0, 5.0]])
    b = torch.tensor([[1.0, 0.0, 2.0, 1.0], [2.0, 2.0, 2.0, 5.0], [3.0, 2.0, 3.0, 5.0]])
    torch.testing.assert_close(box_iou(a, b), torch.tensor([0.0, 1.0, 0.0]))


def test_box_iou_integer_boxes():
    a = torch.tensor([[0, 0, 2, 2]])
    torch.testing.assert_close(box_iou(a, a), torch.tensor([1.0]))


@pytest.mark.parametrize(
    "pred, gt, match",
    [
        (torch.zeros(2, 4), torch.zeros(3, 4), "same shape"),
        (torch.zeros(2, 3), torch.zeros(2, 3), r"\(\.\.\., 4\)"),
        (torch.tensor([[2.0, 0.0, 1.0, 1.0]]), torch.tensor([[0.0, 0.0, 1.0, 1.0]]), "x1 <= x2"),
        (torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([[0.0, 3.0, 1.0, 1.0]]), "gt_boxes"),
        (torch.tensor([[0.0, NAN, 1.0, 1.0]]), torch.tensor([[0.0, 0.0, 1.0, 1.0]]), "partly NaN"),
        (torch.tensor([[0.0, 0.0, math.inf, 1.0]]), torch.tensor([[0.0, 0.0, 1.0, 1.0]]), "inf"),
    ],
)
def test_box_iou_bad_input(pred, gt, match):
    with pytest.raises(ValueError, match=match):
        box_iou(pred, gt)


def test_box_iou_type_error():
    with pytest.raises(TypeError, match="pred_boxes"):
        box_iou([[0, 0, 1, 1]], torch.zeros(1, 4))


def test_pointing_game_hand_values(device):
    maps = torch.zeros(1, 1, 4, 4, 5, device=device)
    maps[0, 0, 0, 1, 2] = 1.0  # inside (2,1) of box [2,1,3,2]
    maps[0, 0, 1, 1, 3] = 1.0  # x = 3 == x2: outside (half-open)
    maps[0, 0, 2, 1, 2] = 1.0  # no GT in this frame: never a hit
    # frame 3 all zero: no maximum, not a hit
    gt = torch.tensor([[[2.0, 1.0, 3.0, 2.0], [2.0, 1.0, 3.0, 2.0], [NAN] * 4, [0.0, 0.0, 5.0, 4.0]]], device=device)
    hits = pointing_game(maps, gt)
    assert hits.dtype == torch.bool
    assert hits.cpu().tolist() == [[True, False, False, False]]
    assert hit_rate(hits, gt) == pytest.approx(1 / 3)
    assert hit_rate(hits, gt, correct=torch.tensor([False])) == 0.0


def test_pointing_game_four_dim_maps_and_ties():
    maps = torch.ones(1, 1, 3, 3)  # constant: no hit
    maps2 = torch.zeros(1, 1, 3, 3)
    maps2[0, 0, 2, 0] = maps2[0, 0, 0, 2] = 1.0  # tie -> first in raster order: (x=2, y=0)
    gt = torch.tensor([[[2.0, 0.0, 3.0, 1.0]]])
    assert not pointing_game(maps, gt).any()
    assert pointing_game(maps2, gt).all()


def test_pointing_game_shape_mismatch():
    with pytest.raises(ValueError, match="gt_boxes"):
        pointing_game(torch.rand(1, 1, 3, 4, 4), torch.zeros(1, 2, 4))
    bad = torch.rand(1, 1, 2, 4, 4)
    bad[..., 0, 0] = NAN
    with pytest.raises(ValueError, match="NaN"):
        pointing_game(bad, torch.zeros(1, 2, 4))


def test_iou_accuracy_thresholds_and_acc2():
    ious = torch.tensor([[0.0, 0.3, 0.5, NAN], [0.6, 0.7, NAN, NAN]])
    acc = iou_accuracy(ious)
    assert acc[0.0] == pytest.approx(4 / 5)  # IoU > 0
    assert acc[0.5] == pytest.approx(3 / 5)
    assert acc[0.6] == pytest.approx(2 / 5)
    acc2 = iou_accuracy(ious, correct=torch.tensor([True, False]))
    assert acc2[0.0] == pytest.approx(2 / 5)
    assert acc2[0.5] == pytest.approx(1 / 5)
    assert acc2[0.6] == 0.0
    assert math.isnan(iou_accuracy(torch.full((1, 2), NAN))[0.5])
    with pytest.raises(ValueError, match="thresholds"):
        iou_accuracy(ious, thresholds=(1.5,))
    with pytest.raises(ValueError, match="correct"):
        iou_accuracy(ious, correct=torch.tensor([True]))


def test_valid_frames():
    gt = torch.tensor([[[0.0, 0.0, 1.0, 1.0], [NAN] * 4]])
    assert valid_frames(gt).tolist() == [[True, False]]


def test_check_boxes_accepts_nan_rows_and_ints():
    assert check_boxes(torch.tensor([[0, 0, 1, 1]])).dtype == torch.float32
    with pytest.raises(TypeError):
        check_boxes(torch.zeros(1, 4, dtype=torch.bool))


def test_temporal_iou():
    pred = torch.tensor([[0, 10], [5, 15], [20, 30]])
    gt = torch.tensor([[0, 10], [10, 20]])
    tiou = temporal_iou(pred, gt)
    torch.testing.assert_close(
        tiou, torch.tensor([[1.0, 0.0], [5 / 15, 5 / 15], [0.0, 0.0]], dtype=torch.float64)
    )
    assert temporal_iou(torch.tensor([3, 3]), torch.tensor([3, 3])).item() == 1.0
    with pytest.raises(ValueError, match="start <= end"):
        temporal_iou(torch.tensor([[5, 2]]), gt)
    with pytest.raises(ValueError, match=r"\(S, 2\)"):
        temporal_iou(torch.zeros(2, 3), gt)


def test_segment_set_iou_and_gt_segments():
    assert segment_set_iou(torch.tensor([[0, 4], [6, 8]]), torch.tensor([[2, 8]]), 10) == pytest.approx(4 / 8)
    assert math.isnan(segment_set_iou(torch.zeros(0, 2), torch.zeros(0, 2), 5))
    gt = torch.tensor([[NAN] * 4, [0, 0, 1, 1], [0, 0, 1, 1], [NAN] * 4, [0, 0, 1, 1]], dtype=torch.float32)
    assert gt_segments(gt).tolist() == [[1, 3], [4, 5]]


def test_meter_matches_functions():
    maps = torch.zeros(2, 1, 2, 4, 4)
    maps[0, 0, 0, 1, 1] = 1.0
    maps[1, 0, 0, 3, 3] = 1.0
    maps[1, 0, 1, 0, 0] = 1.0
    gt = torch.tensor(
        [[[0.0, 0.0, 2.0, 2.0], [NAN] * 4], [[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0]]]
    )
    pred = torch.tensor(
        [[[1.0, 1.0, 2.0, 2.0], [NAN] * 4], [[3.0, 3.0, 4.0, 4.0], [0.0, 0.0, 2.0, 2.0]]]
    )
    meter = LocalizationMeter()
    meter.update(maps[:1], gt[:1], pred[:1], predicted=torch.tensor([1]), labels=torch.tensor([1]))
    meter.update(maps[1:], gt[1:], pred[1:], predicted=torch.tensor([0]), labels=torch.tensor([2]))
    out = meter.compute()
    assert out["frames"] == 3 and out["clips"] == 2
    assert out["pointing"] == pytest.approx(2 / 3)
    assert out["mean_iou"] == pytest.approx((0.25 + 0.0 + 1.0) / 3)
    assert out["iou@0"] == pytest.approx(2 / 3)
    assert out["iou@0.5"] == pytest.approx(1 / 3)
    assert out["acc2_pointing"] == pytest.approx(1 / 3)  # clip 2 is misclassified
    assert out["acc2@0"] == pytest.approx(1 / 3)
    assert out["acc2@0.5"] == 0.0
    assert out["class_acc"] == 0.5
    with pytest.raises(ValueError, match="every batch"):
        meter.update(maps[:1], gt[:1], pred[:1])


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

coord = st.floats(-50, 50, allow_nan=False, width=32)


@st.composite
def boxes(draw, n):
    rows = []
    for _ in range(n):
        if draw(st.booleans()) and draw(st.booleans()):
            rows.append([NAN] * 4)
            continue
        x1, x2 = sorted([draw(coord), draw(coord)])
        y1, y2 = sorted([draw(coord), draw(coord)])
        rows.append([x1, y1, x2, y2])
    return torch.tensor(rows, dtype=torch.float32).reshape(n, 4)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6).flatmap(lambda n: st.tuples(boxes(n), boxes(n))))
def test_property_iou_in_unit_interval_and_symmetric(pair):
    a, b = pair
    iou = box_iou(a, b)
    ok = ~torch.isnan(iou)
    assert ((iou[ok] >= 0) & (iou[ok] <= 1)).all()
    both = ok & ~torch.isnan(a).any(-1)
    torch.testing.assert_close(iou[both], box_iou(b, a)[both])
    assert torch.equal(torch.isnan(iou), torch.isnan(b).any(-1))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6).flatmap(boxes))
def test_property_box_equals_itself(a):
    iou = box_iou(a, a)
    has = ~torch.isnan(a).any(-1)
    assert (iou[has] == 1).all()


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 3), st.integers(1, 7), st.integers(1, 7), st.integers(0, 2**16))
def test_property_pointing_and_iou_never_crash(t, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    maps = torch.rand(2, 1, t, h, w, generator=g) * (torch.rand(2, 1, t, 1, 1, generator=g) > 0.3)
    xy = torch.rand(2, t, 4, generator=g) * torch.tensor([w, h, w, h])
    gt = torch.stack([torch.minimum(xy[..., 0], xy[..., 2]), torch.minimum(xy[..., 1], xy[..., 3]),
                      torch.maximum(xy[..., 0], xy[..., 2]), torch.maximum(xy[..., 1], xy[..., 3])], -1)
    gt[torch.rand(2, t, generator=g) < 0.3] = NAN
    hits = pointing_game(maps, gt)
    assert not (hits & torch.isnan(gt).any(-1)).any()
    from captum_3dcam.localization.boxes import attribution_to_boxes

    pytest.importorskip("scipy")
    iou = box_iou(attribution_to_boxes(maps), gt)
    ok = ~torch.isnan(iou)
    assert ((iou[ok] >= 0) & (iou[ok] <= 1)).all()
    assert 0.0 <= hit_rate(hits, gt) <= 1.0 or math.isnan(hit_rate(hits, gt))
