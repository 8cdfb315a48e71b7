"""Hostile inputs to metrics, boxes, faithfulness and video reading: a clear error or a sound answer.

Each case here once gave a raw traceback, a silent NaN, a wrong answer or a huge allocation:
blur sigma NaN / inf / 1e7, a single IoU threshold, probabilities as ``correct``, empty frames,
inverted candidate boxes, integer boxes beyond float32, ROAD on one voxel, NaN clips, boolean frame
counts, corrupt or mismatched frame images, and a text file that FFmpeg renders as a video.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from captum_3dcam.metrics.confidence import average_drop, confidence_scores, increase_in_confidence, random_attribution
from captum_3dcam.errors import Captum3DCamError
from captum_3dcam.metrics.faithfulness import (
    curve_auc,
    deletion_auc,
    deletion_curve,
    deletion_insertion_curves,
    insertion_auc,
    insertion_curve,
)
from captum_3dcam.metrics.imputation import baseline_clip, gaussian_blur3d, noisy_linear_imputation
from captum_3dcam.localization.boxes import (
    attribution_to_boxes,
    attribution_to_regions,
    otsu_thresholds,
    threshold_masks,
)
from captum_3dcam.metrics.localization import LocalizationMeter, box_iou, hit_rate, iou_accuracy, pointing_game
from captum_3dcam.video.preprocess import centre_frame_indices, frames_to_clip
from captum_3dcam.localization.tubes import attention_to_segments, attribution_to_tubes, link_tube, temporal_attention
from captum_3dcam.video.io import count_frames, iter_frames, read_frames, read_video, save_gif, save_mp4

NAN, INF = float("nan"), float("inf")


# ------------------------------------------------------------------ 1. gaussian_blur3d's sigma
def _old_blur(clips, sigma, truncate=3.0):
    """The blur as it was (one full-length kernel per axis, in the clips' dtype): the reference."""
    out = clips
    for axis, s in zip((2, 3, 4), sigma):
        radius = int(math.ceil(truncate * s))
        if s == 0 or radius == 0:
            continue
        d = torch.arange(-radius, radius + 1, dtype=out.dtype)
        kernel = torch.exp(-0.5 * (d / s) ** 2)
        kernel = kernel / kernel.sum()
        moved = out.movedim(axis, -1)
        flat = F.pad(moved.reshape(-1, 1, moved.shape[-1]), (radius, radius), mode="replicate")
        out = F.conv1d(flat, kernel.view(1, 1, -1)).reshape(moved.shape).movedim(-1, axis)
    return out


@pytest.mark.parametrize("sigma", [(NAN, 1.0, 1.0), (1.0, INF, 1.0), (1.0, 1.0, NAN), (True, 1.0, 1.0)])
def test_blur_refuses_a_sigma_that_is_not_three_finite_non_negative_numbers(sigma):
    with pytest.raises(ValueError, match="sigma"):
        gaussian_blur3d(torch.rand(1, 1, 2, 4, 4), sigma)


@pytest.mark.parametrize("truncate", [NAN, INF, -1.0])
def test_blur_refuses_a_truncate_that_is_not_finite_and_non_negative(truncate):
    with pytest.raises(ValueError, match="truncate"):
        gaussian_blur3d(torch.rand(1, 1, 2, 4, 4), (1.0, 1.0, 1.0), truncate)


def test_blur_is_unchanged_for_kernels_shorter_than_the_clip():
    x = torch.rand(2, 3, 16, 40, 40, generator=torch.Generator().manual_seed(0))
    for sigma in [(1.0, 5.0, 5.0), (0.5, 2.0, 3.0), (0.0, 1.0, 0.0)]:
        assert torch.equal(gaussian_blur3d(x, sigma), _old_blur(x, sigma))


@pytest.mark.parametrize("sigma", [(3.0, 40.0, 200.0), (1.0, 5.0, 5.0), (50.0, 9.0, 2.5)])
def test_a_kernel_clamped_to_the_clip_gives_the_full_kernels_result(sigma):
    x = torch.rand(1, 2, 4, 6, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(gaussian_blur3d(x, sigma), _old_blur(x, sigma), rtol=0, atol=1e-12)
    torch.testing.assert_close(gaussian_blur3d(x.float(), sigma), _old_blur(x, sigma).float(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("big", [1e7, 1e300])
def test_a_huge_sigma_is_cheap_and_tends_to_the_mean_of_the_two_edges(big):
    x = torch.rand(1, 1, 3, 4, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out = gaussian_blur3d(x, (0.0, 0.0, big))  # the full kernel would have 6e7 (or 6e300) taps
    edges = (x[..., :1] + x[..., -1:]) / 2
    torch.testing.assert_close(out, edges.expand_as(x), rtol=0, atol=1e-6)
    assert bool(torch.isfinite(gaussian_blur3d(x.float(), (big, big, big))).all())


def test_a_tiny_sigma_leaves_the_clip_alone_instead_of_nan():
    x = torch.rand(1, 1, 3, 4, 5)
    assert torch.equal(gaussian_blur3d(x, (5e-324, 1e-40, 1e-6)), x)


# ------------------------------------------------------------------ 2. iou_accuracy
IOUS = torch.tensor([[0.7, 0.2, NAN], [0.5, 0.0, 0.9]])


def test_iou_accuracy_takes_one_threshold_as_a_number():
    assert iou_accuracy(IOUS, 0.5) == iou_accuracy(IOUS, (0.5,)) == {0.5: pytest.approx(3 / 5)}
    assert iou_accuracy(IOUS, 0) == {0.0: pytest.approx(4 / 5)}
    assert LocalizationMeter(0.5).iou_thresholds == (0.5,)


@pytest.mark.parametrize("thresholds, error", [("0.5", TypeError), (None, TypeError), (True, ValueError),
                                               (1.5, ValueError), (NAN, ValueError)])
def test_iou_accuracy_refuses_thresholds_that_are_not_numbers_in_the_unit_interval(thresholds, error):
    with pytest.raises(error, match="thresholds"):
        iou_accuracy(IOUS, thresholds)


@pytest.mark.parametrize("correct", [torch.tensor([0.7, 0.2]), torch.tensor([NAN, 1.0]), [0.9, 0.0],
                                     torch.tensor([2, 0])])
def test_correct_must_be_bool_or_zero_one_not_probabilities(correct):
    with pytest.raises(ValueError, match="correct: expected a bool tensor"):
        iou_accuracy(IOUS, correct=correct)
    hits = torch.zeros(2, 3, dtype=torch.bool)
    gt = torch.tensor([[0.0, 0.0, 1.0, 1.0]]).expand(2, 3, 4)
    with pytest.raises(ValueError, match="correct: expected a bool tensor"):
        hit_rate(hits, gt, correct)
    with pytest.raises(ValueError, match="correct: expected a bool tensor"):
        LocalizationMeter().add(hits, IOUS, correct)


def test_correct_as_zero_one_floats_is_still_accepted():
    as_bool = iou_accuracy(IOUS, correct=torch.tensor([True, False]))
    assert iou_accuracy(IOUS, correct=torch.tensor([1.0, 0.0])) == as_bool


# ------------------------------------------------------------------ 3. empty frames
EMPTY = [(1, 1, 2, 0, 0), (1, 1, 0, 4, 4), (1, 1, 2, 4, 0), (1, 1, 2, 0, 4), (1, 2, 0, 4)]
MAP_FUNCTIONS = [attribution_to_boxes, attribution_to_regions, threshold_masks, otsu_thresholds,
                 attribution_to_tubes, temporal_attention, lambda m: pointing_game(m, torch.zeros(1, m.shape[-3], 4))]


@pytest.mark.parametrize("shape", EMPTY)
@pytest.mark.parametrize("function", MAP_FUNCTIONS)
def test_maps_without_frames_or_pixels_get_a_value_error_naming_the_shape(function, shape):
    with pytest.raises(ValueError, match=r"maps: expected T, H, W >= 1 .*got shape " + re_shape(shape)):
        function(torch.zeros(shape))


def re_shape(shape):
    return r"\(" + r", ".join(str(s) for s in shape) + r"\)"


def test_an_empty_batch_is_still_an_empty_answer():
    assert attribution_to_boxes(torch.zeros(0, 1, 2, 4, 4)).shape == (0, 2, 4)
    assert otsu_thresholds(torch.zeros(0, 2, 4, 4)).shape == (0, 2)


@pytest.mark.parametrize("curve, error", [(torch.zeros(0), ValueError), (torch.zeros(2, 0), ValueError),
                                          (torch.tensor([1.0, NAN]), ValueError), (torch.tensor([True]), TypeError)])
def test_attention_to_segments_names_the_curve(curve, error):
    with pytest.raises(error, match="curve"):
        attention_to_segments(curve)


# ------------------------------------------------------------------ 4. link_tube
BOX = torch.tensor([[0.0, 0.0, 4.0, 4.0]])


@pytest.mark.parametrize("boxes, match", [
    ([BOX, torch.tensor([[5.0, 0.0, 1.0, 2.0]])], r"boxes\[1\]: expected x1 <= x2"),
    ([torch.tensor([[0.0, 3.0, 1.0, 2.0]])], r"boxes\[0\]: expected x1 <= x2 and y1 <= y2"),
    ([BOX, torch.tensor([[0.0, 0.0, INF, 2.0]])], r"boxes\[1\]: expected finite"),
    ([torch.full((1, 4), NAN)], r"boxes\[0\]: expected finite candidate boxes"),
    ([torch.tensor([[0.0, 0.0, 1.0, NAN]])], r"boxes\[0\]: a row must be all finite"),
])
def test_link_tube_refuses_inverted_or_non_finite_candidates(boxes, match):
    with pytest.raises(ValueError, match=match):
        link_tube(boxes)


@pytest.mark.parametrize("scores, match", [
    ([torch.tensor([NAN])], r"scores\[0\]: expected finite scores >= 0, got nan"),
    ([torch.tensor([-1.0])], r"scores\[0\]: expected finite scores >= 0, got -1.0"),
    ([[1.0]], r"scores\[0\]: expected a tensor of shape \(1,\)"),
])
def test_link_tube_refuses_bad_scores(scores, match):
    with pytest.raises(ValueError, match=match):
        link_tube([BOX], scores)


@pytest.mark.parametrize("weight", [INF, True])
def test_link_tube_refuses_an_overlap_weight_that_is_not_finite(weight):
    with pytest.raises(ValueError, match="overlap_weight"):
        link_tube([BOX], overlap_weight=weight)


def test_a_linked_tube_of_regions_is_never_inverted():
    maps = torch.rand(2, 1, 5, 9, 9, generator=torch.Generator().manual_seed(3))
    tubes = attribution_to_tubes(maps)
    known = tubes[~torch.isnan(tubes).any(-1)]
    assert bool((known[:, 2] > known[:, 0]).all()) and bool((known[:, 3] > known[:, 1]).all())


# ------------------------------------------------------------------ 5. box_iou beyond float32
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32])
def test_distinct_integer_boxes_beyond_float32_never_get_iou_one(dtype):
    a = torch.tensor([[0, 0, 2**25 + 1, 1]], dtype=dtype)
    b = torch.tensor([[0, 0, 2**25, 1]], dtype=dtype)
    iou = box_iou(a, b)
    exact = 2**25 / (2**25 + 1)
    assert iou.dtype == torch.float32 and float(iou) < 1.0 and abs(float(iou) - exact) < 1e-7
    assert float(box_iou(a, a)) == 1.0
    assert float(box_iou(a.double(), b.double())) == pytest.approx(exact, abs=1e-15)


def test_integer_boxes_whose_tiny_overlap_rounds_to_zero_still_overlap():
    a = torch.tensor([[0, 0, 2**40, 2**40]])
    b = torch.tensor([[0, 0, 1, 1]])
    iou = box_iou(a, b)
    assert float(iou) > 0.0 and float(iou_accuracy(iou[None], 0.0)[0.0]) == 1.0


def test_float32_boxes_keep_their_round_to_nearest_iou():
    g = torch.Generator().manual_seed(4)
    lo = torch.randint(0, 50, (200, 2), generator=g).float()
    a = torch.cat([lo, lo + torch.randint(1, 50, (200, 2), generator=g)], 1)
    lo = torch.randint(0, 50, (200, 2), generator=g).float()
    b = torch.cat([lo, lo + torch.randint(1, 50, (200, 2), generator=g)], 1)
    assert torch.equal(box_iou(a, b), box_iou(a.double(), b.double()).float())


# ------------------------------------------------------------------ 6. faithfulness
class _Linear(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.w = torch.linspace(-1, 1, int(np.prod(shape)) * 3).view(3, -1)

    def forward(self, x):
        return x.flatten(1) @ self.w.T


def test_road_works_on_a_one_voxel_clip():
    x = torch.tensor([0.3, -0.2, 0.5]).view(1, 3, 1, 1, 1).repeat(2, 1, 1, 1, 1)
    fractions, dele, ins = deletion_insertion_curves(_Linear((3, 1, 1, 1)).eval(), x, torch.ones(2, 1, 1, 1, 1),
                                                     steps=2, show_progress=False)
    assert bool(torch.isfinite(dele).all()) and bool(torch.isfinite(ins).all())
    keep = torch.zeros(2, 1, 1, 1, 1, dtype=torch.bool)
    assert bool(torch.isfinite(noisy_linear_imputation(x, keep)).all())


X = torch.rand(1, 3, 4, 8, 8, generator=torch.Generator().manual_seed(5))
MAPS = torch.rand(1, 1, 4, 8, 8, generator=torch.Generator().manual_seed(6))
ENTRIES = {
    "deletion_curve": lambda f, x, m, **kw: deletion_curve(f, x, m, show_progress=False, steps=2, **kw),
    "insertion_curve": lambda f, x, m, **kw: insertion_curve(f, x, m, show_progress=False, steps=2, **kw),
    "deletion_insertion_curves": lambda f, x, m, **kw: deletion_insertion_curves(f, x, m, show_progress=False,
                                                                                 steps=2, **kw),
    "deletion_auc": lambda f, x, m, **kw: deletion_auc(f, x, m, show_progress=False, steps=2, **kw),
    "insertion_auc": lambda f, x, m, **kw: insertion_auc(f, x, m, show_progress=False, steps=2, **kw),
    "confidence_scores": confidence_scores,
    "average_drop": average_drop,
    "increase_in_confidence": increase_in_confidence,
}


@pytest.mark.parametrize("entry", sorted(ENTRIES))
@pytest.mark.parametrize("bad", [NAN, INF])
def test_faithfulness_entries_refuse_non_finite_inputs_and_attributions(entry, bad):
    net = _Linear((3, 4, 8, 8)).eval()
    x = X.clone()
    x[0, 1, 2, 3, 4] = bad
    with pytest.raises(ValueError, match="inputs: expected finite values"):
        ENTRIES[entry](net, x, MAPS)
    m = MAPS.clone()
    m[0, 0, 1, 1, 1] = bad
    with pytest.raises(ValueError, match="attributions: expected finite values"):
        ENTRIES[entry](net, X, m)


@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_faithfulness_entries_refuse_a_model_that_answers_nan(entry):
    with pytest.raises(ValueError, match="forward_func: returned non-finite scores"):
        ENTRIES[entry](lambda c: torch.full((c.shape[0], 3), NAN), X, MAPS)


@pytest.mark.parametrize("kwargs, match", [
    (dict(noise=NAN), "noise"), (dict(noise=-1.0), "noise"), (dict(seed=1.5), "seed"), (dict(seed=True), "seed"),
    (dict(seed=2**64), "seed"), (dict(baseline=torch.full((1, 3, 1, 1, 1), NAN)), "baseline"),
    (dict(steps=10**9), "steps"), (dict(baseline="blur", blur_sigma=(1.0, NAN, 1.0)), "sigma"),
])
def test_deletion_curve_refuses_bad_options_by_name(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        deletion_curve(_Linear((3, 4, 8, 8)).eval(), X, MAPS, show_progress=False, **kwargs)


@pytest.mark.parametrize("fractions, scores", [(torch.tensor([0.0, 1.0]), torch.tensor([[1.0, NAN]])),
                                               (torch.tensor([0.0, INF]), torch.tensor([[1.0, 0.5]]))])
def test_curve_auc_refuses_non_finite_curves(fractions, scores):
    with pytest.raises(ValueError, match="fractions, scores: expected finite values"):
        curve_auc(fractions, scores)


@pytest.mark.parametrize("kwargs, match", [(dict(noise=INF), "noise"), (dict(tol=INF), "tol"),
                                           (dict(max_iter=2.5), "max_iter"), (dict(max_iter=True), "max_iter")])
def test_imputation_options_must_be_finite_numbers(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        noisy_linear_imputation(X, torch.ones(1, 1, 4, 8, 8, dtype=torch.bool), **kwargs)


def test_imputation_and_baselines_refuse_nan_clips():
    x = X.clone()
    x[0, 0, 0, 0, 0] = NAN
    with pytest.raises(ValueError, match="clips: expected finite values"):
        baseline_clip(x, "mean")
    with pytest.raises(ValueError, match="clips: expected finite values"):
        noisy_linear_imputation(x, torch.ones(1, 1, 4, 8, 8, dtype=torch.bool))


@pytest.mark.parametrize("seed", [1.5, True, "3", 2**64])
def test_random_attribution_needs_an_int_seed(seed):
    with pytest.raises(ValueError, match="seed"):
        random_attribution(X, seed=seed)


def test_random_attribution_only_needs_the_shape_of_like():
    assert random_attribution(torch.full((1, 3, 2, 2, 2), NAN), seed=np.int64(3)).shape == (1, 1, 2, 2, 2)


# ------------------------------------------------------------------ 7. integer arguments of video and preprocess
@pytest.fixture(scope="module")
def video_file(tmp_path_factory):
    pytest.importorskip("av")
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    frames = torch.zeros(3, 16, 16, 3, dtype=torch.uint8)
    frames[:, :, 8:] = 200
    return save_mp4(frames, path, fps=8.0)


@pytest.mark.parametrize("max_frames", [True])
def test_read_video_max_frames_must_be_an_int_not_a_bool(video_file, max_frames):
    with pytest.raises(ValueError, match="max_frames: expected a positive int"):
        read_video(video_file, max_frames=max_frames)


def test_read_video_still_takes_int_max_frames(video_file):
    assert read_video(video_file, max_frames=np.int64(2)).shape == (2, 16, 16, 3)
    assert read_video(video_file).shape == (3, 16, 16, 3)


@pytest.mark.parametrize("frames", [[True], [1.0], "12", 3, [torch.tensor(True)]])
def test_read_frames_wants_int_frame_numbers(video_file, frames):
    with pytest.raises(TypeError, match="frames"):
        read_frames(video_file, frames)


def test_read_frames_takes_numpy_and_tensor_ints(video_file):
    assert read_frames(video_file, [np.int64(1), torch.tensor(3)]).shape == (2, 16, 16, 3)


@pytest.mark.parametrize("call, match", [
    (lambda: centre_frame_indices(10, True), "num_frames"),
    (lambda: centre_frame_indices(True, 1), "total"), (lambda: centre_frame_indices(-1, None), "total"),
    (lambda: frames_to_clip(torch.zeros(1, 4, 4, 3, dtype=torch.uint8), (True, 4)), "size"),
    (lambda: frames_to_clip(torch.zeros(1, 4, 4, 3, dtype=torch.uint8), (0, 4)), "size"),
    (lambda: frames_to_clip(torch.zeros(1, 4, 4, 3, dtype=torch.uint8), 4), "size"),
])
def test_preprocess_int_arguments_refuse_bools_floats_and_zero(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("fps", [INF, True, 1e-4])
def test_save_gif_refuses_an_fps_it_cannot_store(tmp_path, fps):
    pytest.importorskip("PIL.Image")
    with pytest.raises(ValueError, match="fps"):
        save_gif(torch.zeros(2, 4, 4, 3, dtype=torch.uint8), tmp_path / "x.gif", fps=fps)


@pytest.mark.parametrize("crf", [-5, 52, NAN, True])
def test_save_mp4_refuses_a_crf_outside_x264s_scale(tmp_path, crf):
    pytest.importorskip("av")
    with pytest.raises(ValueError, match="crf"):
        save_mp4(torch.zeros(2, 4, 4, 3, dtype=torch.uint8), tmp_path / "x.mp4", crf=crf)


# ------------------------------------------------------------------ 8. frame folders
def _frame_folder(root, sizes):
    Image = pytest.importorskip("PIL.Image")
    root.mkdir(parents=True)
    for k, (h, w) in enumerate(sizes, start=1):
        Image.fromarray(np.full((h, w, 3), 40 * k, np.uint8)).save(root / f"{k:05d}.jpg")
    return root


READERS = {
    "read_frames": read_frames,
    "read_frames_some": lambda folder: read_frames(folder, [1, 2]),
    "iter_frames": lambda folder: list(iter_frames(folder)),
}


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_corrupt_frame_image_is_named(tmp_path, reader, damage):
    folder = _frame_folder(tmp_path / "v", [(12, 16)] * 3)
    good = (folder / "00001.jpg").read_bytes()
    (folder / "00002.jpg").write_bytes({"garbage": b"not a jpeg at all", "truncated": good[:200], "empty": b""}[damage])
    with pytest.raises(Captum3DCamError, match=r"00002\.jpg: not a readable frame image"):
        READERS[reader](folder)


@pytest.mark.parametrize("reader", sorted(READERS))
def test_a_frame_of_another_size_is_named_with_both_sizes(tmp_path, reader):
    folder = _frame_folder(tmp_path / "v", [(12, 16), (10, 16), (12, 16)])
    with pytest.raises(Captum3DCamError, match=r"00002\.jpg: frame of 16x10 pixels .*00001\.jpg is 16x12"):
        READERS[reader](folder)


def test_a_video_folder_dataset_names_the_corrupt_frame(tmp_path):
    from captum_3dcam.datasets import VideoFolder

    folder = _frame_folder(tmp_path / "train" / "wave" / "v1", [(12, 16)] * 4)
    (folder / "00003.jpg").write_bytes(b"\xff\xd8 broken")
    data = VideoFolder(tmp_path / "train", clip_len=4)
    with pytest.raises(Captum3DCamError, match=r"00003\.jpg"):
        data[0]


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(root=None), TypeError, "root"), (dict(classes="wave"), TypeError, "classes"),
    (dict(classes=["wave", "wave"]), ValueError, "classes"), (dict(classes=["wave", 3]), ValueError, "classes"),
])
def test_a_video_folder_names_bad_arguments(tmp_path, kwargs, error, match):
    from captum_3dcam.datasets import VideoFolder

    _frame_folder(tmp_path / "train" / "wave" / "v1", [(12, 16)] * 4)
    with pytest.raises(error, match=match):
        VideoFolder(**{"root": tmp_path / "train", **kwargs})


# ------------------------------------------------------------------ 9. a text file is not a video
@pytest.fixture()
def text_file(tmp_path):
    pytest.importorskip("av")
    path = tmp_path / "labels.txt"  # FFmpeg's tty demuxer renders this as 25 fps of ANSI text
    path.write_text("\n".join(f"class name number {i}" for i in range(400)) + "\n")
    return path


@pytest.mark.parametrize("reader", [read_video, lambda p: list(iter_frames(p)), read_frames, count_frames,
                                    lambda p: read_frames(p, [1])])
def test_a_text_file_is_not_a_video(text_file, reader):
    with pytest.raises(Captum3DCamError, match=r"labels\.txt: not a video \(PyAV reads it as format 'tty'\)"):
        reader(text_file)


def test_explain_refuses_a_text_file_with_one_line(text_file, tmp_path, capsys):
    from captum_3dcam import cli

    assert cli.main(["explain", str(text_file), "--model", "small-synthetic", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("captum-3dcam explain: error: ") and "not a video" in err[-1]
    assert "Traceback" not in "\n".join(err)
