"""Property-based fuzz of boxes, metrics, localization and windows (hypothesis).

The number of examples comes from the hypothesis profile (``tests/conftest.py``): ``quick`` by
default (200 per test, seconds, derandomized), ``ci-slow`` for the marked slow run in CI with
10,000 per test:

    HYPOTHESIS_PROFILE=ci-slow python -m pytest -q -m slow tests/test_fuzz.py

Every property holds for any input the strategies can draw: valid input gives answers in range,
in the promised dtype, equal to an exact reference where one is cheap (integer boxes: exact
rational IoU); invalid input raises ``ValueError``/``TypeError`` and nothing else.
"""
import math
from fractions import Fraction

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import assume, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from captum_3dcam.metrics.localization import box_iou, check_boxes, iou_accuracy, pointing_game, temporal_iou  # noqa: E402
from captum_3dcam.video.windows import sliding_windows, stitch_windows  # noqa: E402

pytestmark = pytest.mark.slow  # slow under HYPOTHESIS_PROFILE=ci-slow; seconds under the default profile

NAN = float("nan")
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int32, torch.int64]
HALF = (torch.float16, torch.bfloat16)


def _exact(dtype):
    """The largest integer every smaller one of which ``dtype`` holds exactly."""
    return {torch.float16: 2**11, torch.bfloat16: 2**8, torch.float32: 2**24, torch.float64: 2**53,
            torch.int32: 2**31 - 1, torch.int64: 2**62}[dtype]


@st.composite
def int_box_pairs(draw):
    """Paired integer boxes ``(n, 4)`` exactly representable in the drawn dtype, some GT rows NaN."""
    dtype = draw(st.sampled_from(DTYPES))
    hi = min(_exact(dtype), 2**40)
    n = draw(st.integers(1, 5))
    coord = st.integers(0, hi)
    rows_p, rows_g = [], []
    for _ in range(n):
        a = [sorted([draw(coord), draw(coord)]) for _ in range(4)]
        rows_p.append([a[0][0], a[1][0], a[0][1], a[1][1]])
        rows_g.append([a[2][0], a[3][0], a[2][1], a[3][1]])
    missing = [draw(st.booleans()) and dtype.is_floating_point for _ in range(n)]
    return rows_p, rows_g, missing, dtype


def _fraction_iou(p, g):
    ix = max(0, min(p[2], g[2]) - max(p[0], g[0]))
    iy = max(0, min(p[3], g[3]) - max(p[1], g[1]))
    inter = ix * iy
    union = (p[2] - p[0]) * (p[3] - p[1]) + (g[2] - g[0]) * (g[3] - g[1]) - inter
    return Fraction(inter, union) if union > 0 else Fraction(int(p == g))


@given(int_box_pairs())
def test_box_iou_equals_the_exact_rational_iou_for_every_dtype(pair):
    rows_p, rows_g, missing, dtype = pair
    pred = torch.tensor(rows_p, dtype=torch.float64 if dtype.is_floating_point else dtype).to(dtype)
    gt = torch.tensor(rows_g, dtype=torch.float64 if dtype.is_floating_point else dtype).to(dtype)
    for i, m in enumerate(missing):
        if m:
            gt[i] = NAN
    iou = box_iou(pred, gt)
    assert iou.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    for i in range(len(rows_p)):
        if missing[i]:
            assert math.isnan(float(iou[i]))
            continue
        exact = _fraction_iou(rows_p[i], rows_g[i])
        assert 0.0 <= float(iou[i]) <= 1.0
        tol = 1e-12 if iou.dtype == torch.float64 else 1e-6
        assert abs(float(iou[i]) - float(exact)) <= tol, (rows_p[i], rows_g[i], float(iou[i]), exact)


@given(int_box_pairs(), st.integers(-(2**20), 2**20))
def test_box_iou_is_symmetric_and_translation_invariant(pair, shift):
    rows_p, rows_g, _, _ = pair
    p, g = torch.tensor(rows_p, dtype=torch.float64), torch.tensor(rows_g, dtype=torch.float64)
    assume(float(torch.cat([p, g]).abs().max()) + abs(shift) < 2**52)
    iou = box_iou(p, g)
    assert bool((iou == box_iou(g, p)).all())
    assert float((iou - box_iou(p + shift, g + shift)).abs().max()) <= 1e-12


junk = st.sampled_from([NAN, math.inf, -math.inf, -1.0, 0.0, 1.0, 1e30, -1e30, 65504.0, 70000.0, 2.0**24 + 1])


@given(st.lists(st.lists(junk, min_size=4, max_size=4), min_size=1, max_size=4),
       st.lists(st.lists(junk, min_size=4, max_size=4), min_size=1, max_size=4),
       st.sampled_from([torch.float16, torch.bfloat16, torch.float32, torch.float64]))
def test_box_iou_on_any_rows_answers_in_range_or_raises_a_value_error(a, b, dtype):
    n = min(len(a), len(b))
    pred, gt = torch.tensor(a[:n], dtype=torch.float64).to(dtype), torch.tensor(b[:n], dtype=torch.float64).to(dtype)
    try:
        iou = box_iou(pred, gt)
    except ValueError as exc:
        assert "boxes" in str(exc)
        return
    known = iou[~torch.isnan(iou)]
    assert bool(((known >= 0) & (known <= 1)).all())
    assert torch.equal(torch.isnan(iou), torch.isnan(check_boxes(gt)).any(-1))


@st.composite
def maps_and_boxes(draw):
    n, t = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    dtype = draw(st.sampled_from([torch.float16, torch.bfloat16, torch.float32, torch.float64]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    maps = (torch.rand(n, 1, t, h, w, generator=g, dtype=torch.float64) - draw(st.sampled_from([0.0, 0.5]))) * scale
    maps = maps * (torch.rand(n, 1, t, 1, 1, generator=g, dtype=torch.float64) > 0.2)
    xy = torch.randint(0, max(h, w) + 1, (n, t, 4), generator=g).double()
    gt = torch.stack([xy[..., 0].clamp(max=w), xy[..., 1].clamp(max=h), xy[..., 2].clamp(max=w),
                      xy[..., 3].clamp(max=h)], -1)
    gt = torch.cat([torch.minimum(gt[..., :2], gt[..., 2:]), torch.maximum(gt[..., :2], gt[..., 2:])], -1)
    gt[torch.rand(n, t, generator=g) < 0.25] = NAN
    return maps.to(dtype), gt


@given(maps_and_boxes())
def test_pointing_game_matches_a_brute_force_reference(pair):
    maps, gt = pair
    hits = pointing_game(maps, gt)
    frames = maps[:, 0].double()
    for i in range(maps.shape[0]):
        for t in range(maps.shape[2]):
            f = frames[i, t]
            y, x = divmod(int(f.flatten().argmax()), f.shape[1])
            box = gt[i, t].tolist()
            inside = (not math.isnan(box[0]) and box[0] <= x < box[2] and box[1] <= y < box[3]
                      and float(f.max()) > float(f.min()))
            assert bool(hits[i, t]) == inside


@given(maps_and_boxes(), st.one_of(st.floats(0.0, 1.0), st.just("otsu")), st.sampled_from(["largest", "peak", "union"]))
def test_boxes_of_any_map_dtype_are_float32_inside_the_frame(pair, threshold, region):
    pytest.importorskip("scipy")
    from captum_3dcam.localization.boxes import attribution_to_boxes, otsu_thresholds

    maps, _ = pair
    boxes = attribution_to_boxes(maps, threshold, region=region)
    n, _, t, h, w = maps.shape
    assert boxes.dtype == torch.float32 and boxes.shape == (n, t, 4)
    has = ~torch.isnan(boxes).any(-1)
    assert torch.equal(has, maps[:, 0].amax(dim=(-2, -1)) > 0)
    b = boxes[has]
    assert bool((b[:, :2] >= 0).all() and (b[:, 2] <= w).all() and (b[:, 3] <= h).all())
    assert bool((b[:, 2:] > b[:, :2]).all()) and bool((b == b.round()).all())
    th = otsu_thresholds(maps)
    assert bool(((th > 0) & (th <= 1)).all())


@given(st.lists(st.one_of(st.floats(0.0, 1.0), st.just(NAN)), min_size=1, max_size=12),
       st.lists(st.floats(0.0, 1.0), min_size=1, max_size=4))
def test_iou_accuracy_is_a_fraction_and_never_grows_with_tau(values, taus):
    ious = torch.tensor(values, dtype=torch.float64)
    acc = iou_accuracy(ious, sorted(taus))
    got = [acc[float(t)] for t in sorted(taus)]
    if torch.isnan(ious).all():
        assert all(math.isnan(a) for a in got)
    else:
        assert all(0.0 <= a <= 1.0 for a in got)
        assert all(x >= y for x, y in zip(got, got[1:]))


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=8))
def test_iou_accuracy_refuses_values_outside_the_unit_interval(values):
    ious = torch.tensor(values, dtype=torch.float64)
    bad = [v for v in values if not math.isnan(v) and not 0.0 <= v <= 1.0]
    if bad:
        with pytest.raises(ValueError, match=r"ious: expected IoUs in \[0, 1\]"):
            iou_accuracy(ious)
    else:
        iou_accuracy(ious)


@given(st.integers(1, 400), st.integers(1, 64), st.integers(1, 64))
def test_sliding_windows_cover_every_frame_or_refuse(num_frames, clip_len, stride):
    if num_frames < clip_len:
        with pytest.raises(ValueError, match="fewer than clip_len"):
            sliding_windows(num_frames, clip_len, stride)
        return
    if stride > clip_len and num_frames > clip_len:
        with pytest.raises(ValueError, match="stride: .* larger than clip_len"):
            sliding_windows(num_frames, clip_len, stride)
        return
    windows = sliding_windows(num_frames, clip_len, stride)
    assert all(b - a == clip_len and 0 <= a and b <= num_frames for a, b in windows)
    assert [a for a, _ in windows] == sorted({a for a, _ in windows})
    covered = torch.zeros(num_frames, dtype=torch.bool)
    for a, b in windows:
        covered[a:b] = True
    assert bool(covered.all())
    frames = torch.arange(num_frames, dtype=torch.float64)
    per_window = torch.stack([frames[a:b] for a, b in windows])[:, None, :]  # (W, 1, clip_len)
    assert torch.equal(stitch_windows(per_window, windows, num_frames, time_dim=-1)[0], frames)


@given(st.integers(2, 60), st.integers(1, 20), st.data())
def test_stitch_windows_refuses_windows_that_leave_frames_out(num_frames, clip_len, data):
    assume(clip_len < num_frames)
    starts = data.draw(st.lists(st.integers(0, num_frames - clip_len), min_size=1, max_size=6, unique=True))
    windows = [(s, s + clip_len) for s in sorted(starts)]
    covered = set().union(*(range(a, b) for a, b in windows))
    per_window = torch.ones(len(windows), 1, clip_len)
    if covered == set(range(num_frames)):
        assert bool((stitch_windows(per_window, windows, num_frames, time_dim=-1) == 1).all())
    else:
        with pytest.raises(ValueError, match="lie in no window"):
            stitch_windows(per_window, windows, num_frames, time_dim=-1)


@given(st.lists(st.tuples(st.integers(-50, 50), st.integers(0, 50)), min_size=1, max_size=5),
       st.lists(st.tuples(st.integers(-50, 50), st.integers(0, 50)), min_size=1, max_size=5))
def test_temporal_iou_in_unit_interval_symmetric_and_reversed_segments_refused(a, b):
    sa = torch.tensor([[s, s + d] for s, d in a], dtype=torch.float64)
    sb = torch.tensor([[s, s + d] for s, d in b], dtype=torch.float64)
    t = temporal_iou(sa, sb)
    assert bool(((t >= 0) & (t <= 1)).all())
    assert torch.equal(t, temporal_iou(sb, sa).T)
    assert bool((torch.diagonal(temporal_iou(sa, sa)) == 1).all())
    if any(d > 0 for _, d in a):
        with pytest.raises(ValueError, match="start <= end"):
            temporal_iou(sa.flip(-1), sb)
