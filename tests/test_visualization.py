"""Tests of captum_3dcam.viz: frames, colours, boxes, GIF/MP4 and the figures."""
import math

import numpy as np
import pytest
import torch

pytest.importorskip("matplotlib")

from captum_3dcam import viz as V  # noqa: E402

NAN = float("nan")


def _decode(path):
    av = pytest.importorskip("av")
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


# ---------------------------------------------------------------------------------------------
# frames and maps
# ---------------------------------------------------------------------------------------------
def test_to_frames_float_channels_first_in_unit_range():
    clip = torch.tensor([0.0, 0.5, 1.0]).view(1, 3, 1, 1).expand(3, 3, 1, 1)  # (C, T, H, W)
    out = V.to_frames(clip)
    assert out.shape == (3, 1, 1, 3) and out.dtype == torch.uint8
    assert out[:, 0, 0, 0].tolist() == [0, 128, 255]  # round(127.5) -> 128


def test_to_frames_infers_symmetric_range_and_batch_of_one():
    clip = torch.full((1, 3, 2, 4, 4), -1.0)
    clip[..., 1, :, :] = 1.0
    out = V.to_frames(clip)
    assert out.shape == (2, 4, 4, 3)
    assert out[0].max() == 0 and out[1].min() == 255


def test_to_frames_explicit_range_and_grey_and_uint8_passthrough():
    clip = torch.full((1, 2, 3, 3), 2.0)  # grey (C=1) standardized clip
    out = V.to_frames(clip, value_range=(-2.0, 2.0))
    assert out.shape == (2, 3, 3, 3) and int(out[0, 0, 0, 0]) == 255
    u8 = np.random.default_rng(0).integers(0, 256, (4, 5, 6, 3), dtype=np.uint8)
    assert np.array_equal(V.to_frames(u8).numpy(), u8)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4, 5, 6), (4, 5, 6, 7)])
def test_to_frames_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="video"):
        V.to_frames(torch.zeros(shape))


def test_to_frames_rejects_non_arrays():
    with pytest.raises(TypeError, match="video"):
        V.to_frames([[1, 2]])


def test_normalize_maps_clip_and_frame_and_zero():
    m = torch.tensor([[[0.0, 2.0]], [[1.0, -3.0]], [[0.0, 0.0]]])  # (T=3, H=1, W=2)
    torch.testing.assert_close(V.normalize_maps(m), torch.tensor([[[0.0, 1.0]], [[0.5, 0.0]], [[0.0, 0.0]]]))
    torch.testing.assert_close(
        V.normalize_maps(m[None, None], per_frame=True),
        torch.tensor([[[0.0, 1.0]], [[1.0, 0.0]], [[0.0, 0.0]]]),
    )
    assert not torch.isnan(V.normalize_maps(torch.zeros(2, 3, 3))).any()


def test_normalize_maps_rejects_nan_and_batches():
    with pytest.raises(ValueError, match="NaN"):
        V.normalize_maps(torch.tensor([[[NAN]]]))
    with pytest.raises(ValueError, match="one clip"):
        V.normalize_maps(torch.zeros(2, 1, 3, 4, 4))


def test_colorize_uses_the_colormap_ends():
    m = torch.tensor([[[0.0, 1.0, 2.0, -1.0]]])
    rgb = V.colorize(m, "gray")
    assert rgb.shape == (1, 1, 4, 3)
    torch.testing.assert_close(rgb[0, 0, :, 0], torch.tensor([0.0, 1.0, 1.0, 0.0]))
    jet = V.colorize(m, "jet")[0, 0]
    assert jet[0, 2] > 0.4 and jet[0, 0] == 0  # dark blue at 0
    assert jet[1, 0] > 0.4 and jet[1, 2] == 0  # dark red at 1
    with pytest.raises(ValueError, match="cmap"):
        V.colorize(m, "no-such-map")


def test_overlay_blends_with_alpha():
    frames = np.full((2, 4, 4, 3), 100, np.uint8)
    m = torch.zeros(1, 1, 2, 4, 4)
    m[..., 1, 0, 0] = 4.0  # peak of the clip -> 1.0 -> top of the gray colormap
    assert np.array_equal(V.overlay(frames, m, alpha=0.0), frames)
    out = V.overlay(frames, m, alpha=0.5, cmap="gray")
    assert out.dtype == np.uint8 and out.shape == (2, 4, 4, 3)
    assert out[1, 0, 0, 0] == round(0.5 * 100 + 0.5 * 255)
    assert out[0, 0, 0, 0] == 50  # zero attention -> black end of gray
    with pytest.raises(ValueError, match="alpha"):
        V.overlay(frames, m, alpha=1.5)


def test_overlay_resizes_a_coarse_map_to_the_frames():
    frames = np.zeros((8, 32, 48, 3), np.uint8)
    m = torch.zeros(1, 1, 4, 4, 6)
    m[..., :, :2, :3] = 1.0  # top-left quadrant
    out = V.overlay(frames, m, alpha=1.0, cmap="gray")
    assert out.shape == (8, 32, 48, 3)
    assert out[:, :8, :12].min() == 255 and out[:, 24:, 36:].max() == 0


def test_overlay_is_vectorized_fast_enough_for_long_videos():
    import time

    frames = torch.rand(3, 120, 120, 160)
    m = torch.rand(1, 1, 15, 15, 20)
    start = time.perf_counter()
    out = V.overlay(frames, m)
    assert out.shape == (120, 120, 160, 3)
    assert time.perf_counter() - start < 20.0  # a per-frame Python colormap loop takes minutes


# ---------------------------------------------------------------------------------------------
# boxes
# ---------------------------------------------------------------------------------------------
def test_draw_boxes_outline_hand_computed():
    frames = np.zeros((2, 10, 12, 3), np.uint8)
    boxes = torch.tensor([[2.0, 1.0, 7.0, 5.0], [NAN, NAN, NAN, NAN]])
    out = V.draw_boxes(frames, boxes, color=(255, 0, 0), thickness=1)
    assert frames.max() == 0  # input untouched
    drawn = out[0, :, :, 0] == 255
    expected = np.zeros((10, 12), bool)
    expected[1, 2:7] = expected[4, 2:7] = True  # rows y1 and y2 - 1
    expected[1:5, 2] = expected[1:5, 6] = True  # columns x1 and x2 - 1
    assert np.array_equal(drawn, expected)
    assert out[0, :, :, 1:].max() == 0
    assert out[1].max() == 0  # NaN row: no box


def test_draw_boxes_thick_multi_and_clipped():
    frames = np.zeros((1, 20, 20, 3), np.uint8)
    boxes = torch.tensor([[[0.0, 0.0, 6.0, 6.0], [15.0, 15.0, 40.0, 40.0]]])  # (T, K, 4), 2nd clipped
    out = V.draw_boxes(frames, boxes, color=(0, 0, 255), thickness=2)
    drawn = out[0, :, :, 2] == 255
    assert drawn.sum() == (36 - 4) + (25 - 1)  # 6x6 minus 2x2 core; 5x5 clipped box minus its 1x1 core
    assert drawn[19, 19] and not drawn[3, 3]


def test_draw_boxes_rejects_wrong_frame_count_and_thickness():
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="boxes"):
        V.draw_boxes(frames, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="thickness"):
        V.draw_boxes(frames, torch.zeros(3, 4), thickness=0)


def test_frame_indices():
    assert V.frame_indices(10, 4) == [0, 3, 6, 9]
    assert V.frame_indices(3, 8) == [0, 1, 2]
    with pytest.raises(ValueError, match="num"):
        V.frame_indices(5, 0)


# ---------------------------------------------------------------------------------------------
# GIF / MP4
# ---------------------------------------------------------------------------------------------
def _clip_frames(T=7, H=24, W=30):
    frames = np.zeros((T, H, W, 3), np.uint8)
    for t in range(T):
        frames[t, :, : 4 * (t + 1)] = (230, 40, 20)
    frames[3] = frames[2]  # identical consecutive frames must both survive
    return frames


def test_gif_decodes_to_the_same_frames_and_timing(tmp_path):
    from PIL import Image, ImageSequence

    frames = _clip_frames()
    path = V.save_video(frames, tmp_path / "sub" / "clip.gif", fps=5)
    decoded = _decode(path)
    # Pillow stores the repeated frame 3 once, shown for two frame times: the playback is the same
    assert len(decoded) == len(frames) - 1
    assert decoded[0].shape == frames[0].shape
    assert np.abs(decoded[4].astype(int) - frames[5]).max() <= 8
    with Image.open(path) as im:
        durations = [frame.info["duration"] for frame in ImageSequence.Iterator(im)]
    assert durations == [200, 200, 400, 200, 200, 200]  # ms: 7 frames at 5 fps


def test_mp4_decodes_to_the_same_number_of_frames_odd_size(tmp_path):
    frames = _clip_frames(T=9, H=25, W=31)
    path = V.save_video(frames, tmp_path / "clip.mp4", fps=10)
    decoded = _decode(path)
    assert len(decoded) == 9
    assert decoded[0].shape == (26, 32, 3)  # padded to even for yuv420p
    assert abs(int(decoded[4][12, 2, 0]) - 230) < 30 and int(decoded[4][12, 28, 0]) < 40


def test_save_video_rejects_unknown_suffix_and_bad_fps(tmp_path):
    with pytest.raises(ValueError, match="path"):
        V.save_video(_clip_frames(), tmp_path / "x.avi")
    with pytest.raises(ValueError, match="fps"):
        V.save_gif(_clip_frames(), tmp_path / "x.gif", fps=0)


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------
def _png_size(path):
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        return im.size, np.asarray(im.convert("RGB"))


def _toy():
    g = torch.Generator().manual_seed(0)
    clip = torch.rand(3, 12, 32, 40, generator=g)
    maps = [torch.rand(1, 1, 12, 32, 40, generator=g) for _ in range(3)]
    return clip, maps


def test_layer_grid_png_written_with_expected_size(tmp_path):
    clip, maps = _toy()
    gt = torch.tensor([[5.0, 5.0, 20.0, 25.0]]).repeat(12, 1)
    fig = V.plot_layer_grid(clip, maps, sum(maps), layer_names=["conv1", "conv2", "conv3"],
                            num_frames=4, gt_boxes=gt, title="layers")
    path = V.save_figure(fig, tmp_path / "grid.png", dpi=50)
    (w, h), pixels = _png_size(path)
    assert path.stat().st_size > 5000
    # 4 frame columns of 1.5 in * 40/32 + 1.2 in; 5 rows (input, 3 layers, aggregate) of 1.5 in + title
    assert w == round(50 * (1.5 * 4 * 40 / 32 + 1.2))
    assert h == round(50 * (1.5 * 5 + 0.4))
    assert pixels.std() > 20  # not a blank canvas


def test_layer_grid_rejects_mismatched_names():
    clip, maps = _toy()
    with pytest.raises(ValueError, match="layer_names"):
        V.plot_layer_grid(clip, maps, maps[0], layer_names=["a"])


def test_gradcam_vs_3dcam_and_class_maps_figures(tmp_path):
    clip, maps = _toy()
    boxes = torch.tensor([[1.0, 2.0, 10.0, 12.0]]).repeat(12, 1)
    fig = V.plot_gradcam_vs_3dcam(clip, maps[0], maps[1], cam3d_boxes=boxes, num_frames=3)
    (w, h), _ = _png_size(V.save_figure(fig, tmp_path / "cmp.png", dpi=40))
    assert h == round(40 * (1.5 * 3 + 0.1))
    fig = V.plot_class_maps(clip, {"1. a (0.9)": maps[0], "2. b (0.1)": maps[1]}, counterfactual=maps[2],
                            frames=[0, 11])
    (w, h), _ = _png_size(V.save_figure(fig, tmp_path / "classes.png", dpi=40))
    assert h == round(40 * (1.5 * 4 + 0.1))
    with pytest.raises(ValueError, match="frames"):
        V.plot_overlay_rows(clip, {"a": maps[0]}, frames=[12])
    with pytest.raises(ValueError, match="boxes"):
        V.plot_overlay_rows(clip, {"a": maps[0]}, boxes={"b": boxes})


def test_temporal_curve_figure(tmp_path):
    T = 50
    curve = torch.sin(torch.linspace(0, math.pi, T))
    video = np.random.default_rng(0).integers(0, 256, (T, 24, 32, 3), dtype=np.uint8)
    fig = V.plot_temporal_curve(curve, segments=torch.tensor([[10, 40]]), gt_segments=[(12, 38)],
                                threshold=0.5, fps=25, video=video, title="untrimmed")
    (w, h), pixels = _png_size(V.save_figure(fig, tmp_path / "curve.png", dpi=40))
    assert (w, h) == (400, round(40 * 4.6))
    assert pixels.std() > 10
    with pytest.raises(ValueError, match="video"):
        V.plot_temporal_curve(curve, video=video[:10])
    with pytest.raises(ValueError, match="segments"):
        V.plot_temporal_curve(curve, segments=[(5, 2)])


def test_resize_frames_nearest_and_bilinear():
    frames = np.arange(2 * 2 * 3 * 3, dtype=np.uint8).reshape(2, 2, 3, 3)
    big = V.resize_frames(frames, 2)
    assert big.shape == (2, 4, 6, 3)
    assert np.array_equal(big[:, ::2, ::2], frames) and np.array_equal(big[:, 1::2, 1::2], frames)
    half = V.resize_frames(np.full((1, 8, 8, 3), 77, np.uint8), 0.5)
    assert half.shape == (1, 4, 4, 3) and (half == 77).all()
    with pytest.raises(ValueError, match="scale"):
        V.resize_frames(frames, 0)


def test_tile_videos_side_by_side_with_caption():
    a = np.zeros((3, 10, 6, 3), np.uint8)
    b = np.full((3, 10, 4, 3), 200, np.uint8)
    out = V.tile_videos([a, b], gap=2)
    assert out.shape == (3, 10, 12, 3)
    assert (out[:, :, :6] == 0).all() and (out[:, :, 6:8] == 255).all() and (out[:, :, 8:] == 200).all()
    captioned = V.tile_videos([a, b], ["a", "b"], gap=2)
    assert captioned.shape == (3, 24, 12, 3) and np.array_equal(captioned[:, 14:], out)
    assert np.array_equal(captioned[0, :14], captioned[2, :14])  # the caption is the same on every frame
    with pytest.raises(ValueError, match="videos"):
        V.tile_videos([a, b[:2]])
