"""Contour-threshold localization: boxes, regions, Otsu, tubes, temporal segments."""
import math

import pytest
import torch

pytest.importorskip("scipy")

from captum_3dcam.localization.tubes import attention_to_segments, attribution_to_tubes, link_tube, mask_to_segments, temporal_attention
from captum_3dcam.localization.boxes import attribution_to_boxes, attribution_to_regions, otsu_thresholds, threshold_masks

NAN = float("nan")


def two_blobs():
    """One frame 10x12: a 2x2 blob of 1.0 at rows 1-2, cols 1-2 and a 4x5 blob of 0.8 at rows 5-8, cols 6-10."""
    m = torch.zeros(1, 1, 1, 10, 12)
    m[..., 1:3, 1:3] = 1.0
    m[..., 5:9, 6:11] = 0.8
    return m


def test_single_block_pixel_edge_box(device):
    m = torch.zeros(1, 1, 1, 4, 6, device=device)
    m[..., 1:3, 2:5] = 1.0
    boxes = attribution_to_boxes(m)
    assert boxes.device.type == device.type
    torch.testing.assert_close(boxes.cpu(), torch.tensor([[[2.0, 1.0, 5.0, 3.0]]]))


def test_single_pixel_box_is_one_pixel_wide():
    m = torch.zeros(1, 2, 5, 5)
    m[0, 0, 4, 0] = 3.0  # bottom-left corner
    m[0, 1, 0, 4] = 1.0  # top-right corner
    boxes = attribution_to_boxes(m)
    torch.testing.assert_close(boxes, torch.tensor([[[0.0, 4.0, 1.0, 5.0], [4.0, 0.0, 5.0, 1.0]]]))


def test_region_options_largest_peak_union():
    m = two_blobs()
    torch.testing.assert_close(attribution_to_boxes(m, region="largest")[0, 0], torch.tensor([6.0, 5.0, 11.0, 9.0]))
    torch.testing.assert_close(attribution_to_boxes(m, region="peak")[0, 0], torch.tensor([1.0, 1.0, 3.0, 3.0]))
    torch.testing.assert_close(attribution_to_boxes(m, region="union")[0, 0], torch.tensor([1.0, 1.0, 11.0, 9.0]))


def test_threshold_is_relative_to_each_frame_max():
    m = torch.zeros(1, 2, 6, 6)
    m[0, 0, 2, 2] = 10.0
    m[0, 0, 0:6, 5] = 4.0  # 0.4 of the max: dropped at 0.5, kept at 0.3 (largest region then)
    m[0, 1] = m[0, 0] / 100.0  # same frame at another scale: same boxes
    b5 = attribution_to_boxes(m, 0.5)
    b3 = attribution_to_boxes(m, 0.3)
    torch.testing.assert_close(b5[0, 0], torch.tensor([2.0, 2.0, 3.0, 3.0]))
    torch.testing.assert_close(b3[0, 0], torch.tensor([5.0, 0.0, 6.0, 6.0]))
    torch.testing.assert_close(b5[0, 1], b5[0, 0])
    torch.testing.assert_close(b3[0, 1], b3[0, 0])


def test_relative_to_range_thresholds_between_each_frames_min_and_max():
    # hand-computed: a pedestal of 6 everywhere, a blob of 10 at one pixel, a ridge of 8 in column 5
    m = torch.full((1, 2, 6, 6), 6.0)
    m[0, 0, 2, 2] = 10.0
    m[0, 0, 0:6, 5] = 8.0  # range fraction (8 - 6) / (10 - 6) = 0.5; max fraction 0.8
    m[0, 1] = 3.0 * m[0, 0] - 7.0  # another offset and scale: the same boxes under "range"
    whole = torch.tensor([0.0, 0.0, 6.0, 6.0])
    # relative to the max, 0.5 keeps every pixel (6 >= 5): the box is the whole frame
    torch.testing.assert_close(attribution_to_boxes(m, 0.5)[0, 0], whole)
    rng = attribution_to_boxes(m, 0.6, relative_to="range")
    torch.testing.assert_close(rng[0, 0], torch.tensor([2.0, 2.0, 3.0, 3.0]))  # only the blob: 1.0 >= 0.6
    torch.testing.assert_close(attribution_to_boxes(m, 0.5, relative_to="range")[0, 0],
                               torch.tensor([5.0, 0.0, 6.0, 6.0]))  # the ridge (6 px) beats the blob (1 px)
    torch.testing.assert_close(rng[0, 1], rng[0, 0])
    masks = threshold_masks(m, 0.5, relative_to="range")
    assert int(masks[0, 0].sum()) == 7 and bool((masks[0, 0] == masks[0, 1]).all())
    regions = attribution_to_regions(m, 0.5, relative_to="range")[0][0]
    assert regions.areas.tolist() == [6, 1]


def test_relative_to_range_matches_max_on_maps_that_touch_zero_and_empties_constant_frames():
    g = torch.Generator().manual_seed(0)
    m = torch.rand(2, 1, 3, 8, 9, generator=g)
    m[..., 0, 0] = 0.0  # every frame's minimum is 0
    for thr in (0.3, 0.7, "otsu"):
        for region in ("largest", "peak", "union"):
            torch.testing.assert_close(attribution_to_boxes(m, thr, region=region, relative_to="range"),
                                       attribution_to_boxes(m, thr, region=region), equal_nan=True)
    flat = torch.full((1, 1, 1, 4, 4), 2.5)
    assert torch.isnan(attribution_to_boxes(flat, 0.5, relative_to="range")).all()
    assert not torch.isnan(attribution_to_boxes(flat, 0.5)).any()  # relative to the max: the whole frame


def test_connectivity_diagonal():
    m = torch.zeros(1, 1, 5, 5)
    m[0, 0, 0, 0] = m[0, 0, 1, 1] = m[0, 0, 2, 2] = 1.0
    m[0, 0, 4, 0] = m[0, 0, 4, 1] = 1.0
    # 8-connectivity: the diagonal is one region of 3 pixels (largest)
    torch.testing.assert_close(attribution_to_boxes(m, connectivity=8)[0, 0], torch.tensor([0.0, 0.0, 3.0, 3.0]))
    # 4-connectivity: the pair on the last row is the largest (2 pixels)
    torch.testing.assert_close(attribution_to_boxes(m, connectivity=4)[0, 0], torch.tensor([0.0, 4.0, 2.0, 5.0]))


def test_empty_and_negative_frames_are_nan():
    m = torch.zeros(1, 3, 4, 4)
    m[0, 1] = -1.0
    m[0, 2, 1, 1] = 1.0
    boxes = attribution_to_boxes(m)
    assert torch.isnan(boxes[0, :2]).all()
    torch.testing.assert_close(boxes[0, 2], torch.tensor([1.0, 1.0, 2.0, 2.0]))
    for region in ("peak", "union"):
        assert torch.isnan(attribution_to_boxes(m, region=region)[0, :2]).all()


def test_threshold_zero_keeps_every_positive_pixel_and_one_keeps_the_max():
    m = torch.zeros(1, 1, 5, 5)
    m[0, 0, 0, 0] = 0.01
    m[0, 0, 4, 4] = 1.0
    torch.testing.assert_close(attribution_to_boxes(m, 0.0, region="union")[0, 0], torch.tensor([0.0, 0.0, 5.0, 5.0]))
    torch.testing.assert_close(attribution_to_boxes(m, 1.0)[0, 0], torch.tensor([4.0, 4.0, 5.0, 5.0]))


def test_masks_vectorized_match_definition():
    torch.manual_seed(0)
    m = torch.rand(2, 3, 7, 9)
    mask = threshold_masks(m, 0.6)
    ref = m >= 0.6 * m.amax(dim=(-2, -1), keepdim=True)
    assert torch.equal(mask, ref)


def test_otsu_separates_two_levels():
    # background 0.1 (3/4 of pixels), foreground 0.9: Otsu splits between them
    m = torch.full((1, 1, 8, 8), 0.1)
    m[0, 0, :4, :4] = 0.9
    t = otsu_thresholds(m)
    assert t.shape == (1, 1)
    assert 0.1 / 0.9 < float(t) <= 1.0
    torch.testing.assert_close(attribution_to_boxes(m, "otsu")[0, 0], torch.tensor([0.0, 0.0, 4.0, 4.0]))
    # at a 0.1 relative threshold, everything is kept
    torch.testing.assert_close(attribution_to_boxes(m, 0.1)[0, 0], torch.tensor([0.0, 0.0, 8.0, 8.0]))


def test_otsu_zero_frame_is_empty():
    m = torch.zeros(1, 1, 4, 4)
    assert torch.isnan(attribution_to_boxes(m, "otsu")).all()


def test_regions_sorted_by_area_with_masses():
    regions = attribution_to_regions(two_blobs())
    r = regions[0][0]
    torch.testing.assert_close(r.boxes, torch.tensor([[6.0, 5.0, 11.0, 9.0], [1.0, 1.0, 3.0, 3.0]]))
    assert r.areas.tolist() == [20, 4]
    torch.testing.assert_close(r.masses, torch.tensor([16.0, 4.0]))
    empty = attribution_to_regions(torch.zeros(1, 1, 3, 3))[0][0]
    assert empty.boxes.shape == (0, 4)


def test_link_tube_prefers_temporal_consistency():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    near = torch.tensor([0.0, 0.0, 2.0, 2.0])
    far = torch.tensor([8.0, 8.0, 10.0, 10.0])
    frame1 = torch.stack([far, near])
    # frame 1: the far box scores slightly higher alone, but overlap wins with weight 1
    tube = link_tube([a, frame1, torch.zeros(0, 4), a], [torch.ones(1), torch.tensor([1.0, 0.9]), torch.zeros(0), torch.ones(1)])
    torch.testing.assert_close(tube[1], near)
    assert torch.isnan(tube[2]).all()
    tube0 = link_tube([a, frame1, a], [torch.ones(1), torch.tensor([1.0, 0.9]), torch.ones(1)], overlap_weight=0.0)
    torch.testing.assert_close(tube0[1], far)


def test_link_tube_all_empty():
    tube = link_tube([torch.zeros(0, 4), torch.zeros(0, 4)])
    assert tube.shape == (2, 4) and torch.isnan(tube).all()


def test_attribution_to_tubes_shape():
    m = torch.zeros(2, 3, 10, 12)
    m[:, :, 1:3, 1:3] = 1.0
    tubes = attribution_to_tubes(m)
    assert tubes.shape == (2, 3, 4)
    torch.testing.assert_close(tubes[0, 0], torch.tensor([1.0, 1.0, 3.0, 3.0]))


def test_temporal_attention_and_segments():
    m = torch.zeros(1, 1, 6, 2, 2)
    m[0, 0, 1:3] = 1.0
    m[0, 0, 4] = 0.25
    curve = temporal_attention(m)
    torch.testing.assert_close(curve, torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.25, 0.0]]))
    assert attention_to_segments(curve)[0].tolist() == [[1, 3]]
    assert attention_to_segments(curve, 0.2)[0].tolist() == [[1, 3], [4, 5]]
    assert attention_to_segments(curve, 0.2, max_gap=1)[0].tolist() == [[1, 5]]
    assert attention_to_segments(curve, 0.2, min_length=2)[0].tolist() == [[1, 3]]
    assert attention_to_segments(torch.zeros(4))[0].shape == (0, 2)


def test_mask_to_segments():
    assert mask_to_segments(torch.tensor([1, 1, 0, 1, 0, 0, 1], dtype=torch.bool)).tolist() == [[0, 2], [3, 4], [6, 7]]
    assert mask_to_segments(torch.zeros(3, dtype=torch.bool)).shape == (0, 2)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(threshold=1.5), ValueError, "threshold"),
        (dict(threshold=-0.1), ValueError, "threshold"),
        (dict(threshold=math.nan), ValueError, "threshold"),
        (dict(threshold="mean"), ValueError, "threshold"),
        (dict(threshold=None), TypeError, "threshold"),
        (dict(region="all"), ValueError, "attribution_to_regions"),
        (dict(connectivity=6), ValueError, "connectivity"),
        (dict(relative_to="min"), ValueError, "relative_to"),
        (dict(relative_to=None), ValueError, "relative_to"),
    ],
)
def test_bad_options(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        attribution_to_boxes(torch.rand(1, 1, 2, 4, 4), **kwargs)


def test_bad_maps():
    with pytest.raises(TypeError, match="maps"):
        attribution_to_boxes([[0.0]])
    with pytest.raises(ValueError, match="maps"):
        attribution_to_boxes(torch.rand(1, 2, 2, 4, 4))  # 2 channels
    with pytest.raises(ValueError, match="maps"):
        attribution_to_boxes(torch.rand(4, 4))
    bad = torch.rand(1, 1, 2, 4, 4)
    bad[0, 0, 1, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        attribution_to_boxes(bad)


def test_integer_maps_are_accepted():
    m = torch.zeros(1, 1, 3, 3, dtype=torch.long)
    m[0, 0, 1, 1] = 5
    torch.testing.assert_close(attribution_to_boxes(m)[0, 0], torch.tensor([1.0, 1.0, 2.0, 2.0]))


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def random_maps(draw):
    n = draw(st.integers(1, 2))
    t = draw(st.integers(1, 3))
    h = draw(st.integers(1, 9))
    w = draw(st.integers(1, 9))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(n, t, h, w, generator=g) * draw(st.sampled_from([0.0, 1e-6, 1.0, 1e6]))
    m = m - draw(st.sampled_from([0.0, 0.5]))  # some negative values
    sparse = torch.rand(n, t, h, w, generator=g) < draw(st.floats(0.0, 1.0))
    return torch.where(sparse, m, torch.zeros_like(m))


@settings(max_examples=60, deadline=None)
@given(random_maps(), st.one_of(st.floats(0.0, 1.0), st.just("otsu")), st.sampled_from(["largest", "peak", "union"]))
def test_property_boxes_are_valid(maps, threshold, region):
    boxes = attribution_to_boxes(maps, threshold, region=region)
    n, t, h, w = maps.shape
    assert boxes.shape == (n, t, 4)
    has_box = ~torch.isnan(boxes).any(-1)
    positive = maps.amax(dim=(-2, -1)) > 0
    assert torch.equal(has_box, positive)
    b = boxes[has_box]
    assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
    assert (b[:, 2] <= w).all() and (b[:, 3] <= h).all()
    assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
    # the union box contains the chosen region's box
    union = attribution_to_boxes(maps, threshold, region="union")[has_box]
    assert (union[:, :2] <= b[:, :2]).all() and (union[:, 2:] >= b[:, 2:]).all()


# --- the benchmark's library functions (benchmarks/localization.py) ----------------------------


def _benchmark_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "localization.py"
    spec = importlib.util.spec_from_file_location("_bench_localization", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_load_gttubes_real_annotations(shared_data):
    bench = _benchmark_module()
    boxes = bench.load_gttubes(shared_data / "ucf101_24" / "gt_tubes_sample.pkl", "Basketball/v_Basketball_g01_c01", 141)
    has = ~torch.isnan(boxes).any(-1)
    assert int(has.sum()) == 44
    assert torch.nonzero(has).flatten()[[0, -1]].tolist() == [8, 51]  # 1-based frames 9..52
    torch.testing.assert_close(boxes[8], torch.tensor([188.0, 101.0, 235.0, 179.0]))


def test_load_gttubes_bad_files(tmp_path):
    import pickle

    bench = _benchmark_module()
    with pytest.raises(FileNotFoundError, match="annotations"):
        bench.load_gttubes(tmp_path / "missing.pkl", "v", 10)
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a readable pickle"):
        bench.load_gttubes(bad, "v", 10)
    wrong = tmp_path / "wrong.pkl"
    wrong.write_bytes(pickle.dumps({"v": {0: [[[1, 2, 3]]]}}))
    with pytest.raises(ValueError, match=r"\(M, 5\)"):
        bench.load_gttubes(wrong, "v", 10)
    with pytest.raises(ValueError, match="no video"):
        bench.load_gttubes(wrong, "other", 10)


def test_evaluate_methods_smoke():
    pytest.importorskip("captum_3dcam.attr.attribution")
    from captum_3dcam.models import Small3DCNN

    bench = _benchmark_module()
    torch.manual_seed(0)
    model = Small3DCNN(num_classes=3).eval()
    clips = torch.randn(3, 3, 8, 32, 32)
    boxes = torch.tensor([4.0, 4.0, 20.0, 20.0]).expand(3, 8, 4).clone()
    boxes[0, :2] = float("nan")
    items = [(clips[i], boxes[i], i % 3) for i in range(3)]
    layers = [model.conv3, model.conv4]
    res = bench.evaluate_methods(model, layers, items, ["gradcam_last", "3dcam_sum", "3dcam_layer:conv4"],
                                 sweep=[(0.3, "largest")], batch_size=2, on_error="raise")
    assert set(res) == {"gradcam_last", "3dcam_sum", "3dcam_layer:conv4"}
    for metrics in res.values():
        assert metrics["frames"] == 22 and metrics["clips"] == 3
        assert 0.0 <= metrics["pointing"] <= 1.0 and 0.0 <= metrics["mean_iou"] <= 1.0
        assert metrics["acc2_pointing"] <= metrics["pointing"]
        assert set(metrics["sweep"]) == {"0.5/largest", "0.3/largest"}
    with pytest.raises(ValueError, match="methods"):
        bench.evaluate_methods(model, layers, items, ["nope"])


def test_evaluate_methods_in_sliding_windows_stitches_each_window_map():
    """``windows=(L, S)``: the predicted class from the windows' mean softmax, each window explained,
    the maps averaged back onto the frames -- checked against the same steps written by hand."""
    from captum_3dcam import GlobalLocal3DCam
    from captum_3dcam.evaluation import evaluate_methods
    from captum_3dcam.localization.boxes import attribution_to_boxes
    from captum_3dcam.metrics.localization import box_iou, pointing_game
    from captum_3dcam.models import Small3DCNN
    from captum_3dcam.video.windows import sliding_windows, stitch_windows

    torch.manual_seed(0)
    model = Small3DCNN(num_classes=3).eval()
    clip = torch.randn(1, 3, 12, 32, 32)
    gt = torch.tensor([6.0, 6.0, 22.0, 26.0]).expand(1, 12, 4).clone()
    spans = sliding_windows(12, 8, 4)  # (0, 8), (4, 12)
    with torch.no_grad():
        target = torch.stack([model(clip[:, :, a:b]).softmax(1) for a, b in spans]).mean(0).argmax(1)
    cam = GlobalLocal3DCam(model, [model.conv3, model.conv4])
    maps = stitch_windows(torch.stack([cam.attribute(clip[:, :, a:b], target=target) for a, b in spans]), spans, 12)
    expected_hits = pointing_game(maps, gt).float().mean().item()
    expected_iou = box_iou(attribution_to_boxes(maps, 0.5), gt).mean().item()

    res = evaluate_methods(model, [model.conv3, model.conv4], [(clip[0], gt[0], 0)], ["3dcam_sum"],
                           windows=(8, 4), on_error="raise")["3dcam_sum"]
    assert res["frames"] == 12
    assert res["pointing"] == pytest.approx(expected_hits)
    assert res["mean_iou"] == pytest.approx(expected_iou, abs=1e-6)
    plain = evaluate_methods(model, [model.conv3, model.conv4], [(clip[0], gt[0], 0)], ["3dcam_sum"],
                             on_error="raise")["3dcam_sum"]
    one_window = evaluate_methods(model, [model.conv3, model.conv4], [(clip[0], gt[0], 0)], ["3dcam_sum"],
                                  windows=(12, 6), on_error="raise")["3dcam_sum"]
    assert one_window["mean_iou"] == plain["mean_iou"] and one_window["pointing"] == plain["pointing"]


def test_localize_gate_removes_a_pedestal_the_paper_preset_boxes_whole():
    from captum_3dcam.attr.rules import gate_fusion
    from captum_3dcam.attr.presets import LOCALIZE, PAPER

    m = torch.full((1, 1, 2, 12, 16), 0.7)  # a deep network's floor: 0.7 of the max everywhere
    m[..., 3:7, 4:10] = 1.0
    gate = torch.zeros_like(m)
    gate[..., 2:8, 3:11] = 1.0              # the deep layer's class evidence around the same place
    fused = gate_fusion(m, gate)            # LOCALIZE's fusion: min-max maps multiplied, the floor at 0
    torch.testing.assert_close(attribution_to_boxes(fused, **LOCALIZE["boxes"])[0],
                               torch.tensor([[4.0, 3.0, 10.0, 7.0]] * 2))
    torch.testing.assert_close(attribution_to_boxes(m, **PAPER["boxes"])[0], torch.tensor([[0.0, 0.0, 16.0, 12.0]] * 2))


def test_evaluate_methods_range_boxes_see_only_the_crop_the_model_saw():
    """A map with a floor of 0.7 under a peak, on a 16x24 frame centre-cropped to 16x16: relative to
    the range the box is the peak; the zeros outside the crop must not become the frame's minimum."""
    from captum_3dcam.evaluation import evaluate_methods
    from captum_3dcam.evaluation.methods import Method
    from captum_3dcam.video.preprocess import preprocess_clip

    clip, geometry = preprocess_clip(torch.zeros(4, 16, 24, 3), short_side=16, crop_size=16, scale=1,
                                     mean=(0,) * 3, std=(1,) * 3)
    assert geometry.crop_box[0] == 4  # columns 4..20 of the frame are the crop

    def floor_and_peak(ctx, x, target):
        m = torch.full((x.shape[0], 1, *x.shape[2:]), 0.7)
        m[..., 4:10, 4:10] = 1.0  # crop pixels -> frame columns 8..14
        return m

    gt = torch.tensor([8.0, 4.0, 14.0, 10.0]).expand(4, 4).clone()
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(2)).eval()
    model(clip)
    methods = [Method(name, name, provider=floor_and_peak, boxes=boxes) for name, boxes in
               (("range", {"threshold": 0.6, "relative_to": "range"}), ("max", {"threshold": 0.6}))]
    res = evaluate_methods(model, [model[1]], [(clip[0], gt, 0, geometry)], methods, on_error="raise")
    assert res["range"]["mean_iou"] == pytest.approx(1.0)
    assert res["max"]["mean_iou"] == pytest.approx(36 / 256)  # the whole 16x16 crop
