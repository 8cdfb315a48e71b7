"""Video I/O, per-model preprocessing with its geometry, sliding windows."""
import math

import numpy as np
import pytest
import torch

from captum_3dcam.video.preprocess import ACTIVITYNET_MEAN, preprocess_clip, preprocess_i3d, preprocess_resnext
from captum_3dcam.video.windows import apply_sliding_windows, sliding_windows, stitch_windows
from captum_3dcam.video.io import read_video

av = pytest.importorskip("av")


def _write_video(path, num_frames, height=48, width=64):
    """Left half red, right half blue; mpeg4 in AVI (like UCF101)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if num_frames == 0:
            container.start_encoding()
        for _ in range(num_frames):
            rgb = np.zeros((height, width, 3), np.uint8)
            rgb[:, : width // 2] = (255, 0, 0)
            rgb[:, width // 2 :] = (0, 0, 255)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# --- read_video ---------------------------------------------------------------------------------


def test_read_video_decodes_rgb_frames(tmp_path):
    frames = read_video(_write_video(tmp_path / "clip.avi", 12))
    assert frames.dtype == torch.uint8 and tuple(frames.shape) == (12, 48, 64, 3)
    left, right = frames[:, 8:40, 4:28].float().mean((0, 1, 2)), frames[:, 8:40, 36:60].float().mean((0, 1, 2))
    assert left[0] > 240 and left[2] < 15 and right[2] > 240 and right[0] < 15  # RGB order, not BGR
    assert tuple(read_video(tmp_path / "clip.avi", max_frames=5).shape) == (5, 48, 64, 3)


def test_read_video_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no video file"):
        read_video(tmp_path / "missing.mp4")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    with pytest.raises(ValueError, match="could not decode"):
        read_video(corrupt)
    with pytest.raises(ValueError, match="zero frames"):
        read_video(_write_video(tmp_path / "empty.avi", 0))
    with pytest.raises(ValueError, match="max_frames"):
        read_video(_write_video(tmp_path / "clip.avi", 2), max_frames=0)


@pytest.mark.data
def test_read_the_ucf_clip(shared_data):
    frames = read_video(shared_data / "ucf101_24" / "v_Basketball_g01_c01.avi")
    assert tuple(frames.shape) == (141, 240, 320, 3) and frames.dtype == torch.uint8


# --- preprocessing and geometry ------------------------------------------------------------------


def test_preprocess_i3d_values_and_geometry():
    frames = torch.zeros(70, 240, 320, 3, dtype=torch.uint8)
    frames[:, :, :, 0] = 255
    clip, geo = preprocess_i3d(frames, num_frames=64)
    assert tuple(clip.shape) == (1, 3, 64, 224, 224) and clip.dtype == torch.float32
    torch.testing.assert_close(clip[0, :, 0, 100, 100], torch.tensor([1.0, -1.0, -1.0]))  # 255 -> 1, 0 -> -1
    assert geo.frame_size == (240, 320) and geo.resized_size == (256, 341)  # 320 * 256 / 240 = 341.3
    assert geo.crop_box == (58, 16, 282, 240) and geo.crop_size == (224, 224)
    assert list(geo.frame_indices) == list(range(3, 67))  # centre 64 of 70
    frames[..., 1] = torch.arange(70, dtype=torch.uint8).view(70, 1, 1)  # green = frame number
    clip, _ = preprocess_i3d(frames, num_frames=64)  # 64 frames: resized in chunks of 32
    torch.testing.assert_close(clip[0, 1, :, 7, 9], torch.arange(3, 67) / 127.5 - 1)


def test_preprocess_resnext_values():
    frames = torch.full((20, 112, 150, 3), 100, dtype=torch.uint8)
    clip, geo = preprocess_resnext(frames)
    assert tuple(clip.shape) == (1, 3, 16, 112, 112)
    torch.testing.assert_close(clip[0, :, 5, 50, 50], 100 - torch.tensor(ACTIVITYNET_MEAN))
    assert geo.resized_size == (112, 150) and geo.crop_box == (19, 0, 131, 112)
    assert list(geo.frame_indices) == list(range(2, 18))


def test_preprocess_errors():
    with pytest.raises(ValueError, match="at least 9 frames"):
        preprocess_i3d(torch.zeros(8, 240, 320, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="needs 64 frames"):
        preprocess_i3d(torch.zeros(40, 240, 320, 3, dtype=torch.uint8), num_frames=64)
    with pytest.raises(ValueError, match="zero frames"):
        preprocess_i3d(torch.zeros(0, 240, 320, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        preprocess_i3d(torch.zeros(16, 3, 240, 320, dtype=torch.uint8))
    with pytest.raises(TypeError, match="frames"):
        preprocess_i3d(np.zeros((16, 240, 320, 3), np.uint8))


def test_maps_to_frame_identity_without_resize_or_crop():
    torch.manual_seed(0)
    _, geo = preprocess_clip(torch.zeros(4, 6, 6, 3), short_side=6, crop_size=6, scale=1, mean=(0,) * 3, std=(1,) * 3)
    maps = torch.rand(2, 1, 4, 6, 6)
    torch.testing.assert_close(geo.maps_to_frame(maps), maps)
    torch.testing.assert_close(geo.maps_to_frame(maps[:, 0]), maps[:, 0])


def test_maps_to_frame_upsampling_hand_values():
    # 8x8 frame -> resized 4x4 = crop; original pixel centre x + 0.5 sits at crop index (x + 0.5) / 2 - 0.5
    _, geo = preprocess_clip(torch.zeros(1, 8, 8, 3), short_side=4, crop_size=4, scale=1, mean=(0,) * 3, std=(1,) * 3)
    maps = torch.zeros(1, 1, 1, 4, 4)
    maps[..., 0] = 1.0  # first column
    row = geo.maps_to_frame(maps)[0, 0, 0, 3]
    torch.testing.assert_close(row, torch.tensor([1.0, 0.75, 0.25, 0, 0, 0, 0, 0]))


def test_maps_to_frame_fills_each_frames_minimum_by_default():
    _, geo = preprocess_i3d(torch.zeros(9, 240, 320, 3, dtype=torch.uint8))
    maps = torch.rand(1, 1, 9, 224, 224) + 0.5
    full = geo.maps_to_frame(maps)
    assert torch.equal(full, geo.maps_to_frame(maps, "min"))
    assert full[0, 0, 3, 100, 0] == maps[0, 0, 3].min()


def test_maps_to_frame_is_zero_outside_the_crop():
    _, geo = preprocess_i3d(torch.zeros(9, 240, 320, 3, dtype=torch.uint8))
    full = geo.maps_to_frame(torch.ones(1, 1, 9, 224, 224), 0.0)
    assert tuple(full.shape) == (1, 1, 9, 240, 320)
    # crop x 58..282 of 341 -> 54.43..264.63 of 320; y 16..240 of 256 -> 15..225 of 240
    cols = full[0, 0, 0, 100]
    assert cols[:54].sum() == 0 and cols[265:].sum() == 0 and torch.all(cols[54:265] == 1)
    rows = full[0, 0, 0, :, 100]
    assert rows[:15].sum() == 0 and rows[225:].sum() == 0 and torch.all(rows[15:225] == 1)


def test_maps_to_frame_outside_value_or_each_frames_minimum():
    from captum_3dcam.localization.boxes import attribution_to_boxes

    _, geo = preprocess_i3d(torch.zeros(9, 240, 320, 3, dtype=torch.uint8))
    maps = torch.full((1, 1, 9, 224, 224), 0.7)  # a floor of 0.7 under a peak of 1.0
    maps[..., 100:140, 80:120] = 1.0
    maps[0, 0, 1] += 2.0  # another frame, another floor
    torch.testing.assert_close(geo.maps_to_frame(maps, 0.25)[0, 0, 0, 100, :54], torch.full((54,), 0.25))
    full = geo.maps_to_frame(maps, "min")
    assert float(full[0, 0, 0, 100, 0]) == pytest.approx(0.7) and float(full[0, 0, 1, 100, 0]) == pytest.approx(2.7)
    # boxes relative to the range of what the model saw: the peak, not the crop
    in_frame = attribution_to_boxes(full, 0.6, relative_to="range")[0]
    torch.testing.assert_close(in_frame, geo.boxes_to_frame(attribution_to_boxes(maps, 0.6, relative_to="range"))[0],
                               atol=1.5, rtol=0)
    with pytest.raises(ValueError, match="outside"):
        geo.maps_to_frame(maps, "max")
    with pytest.raises(TypeError, match="outside"):
        geo.maps_to_frame(maps, None)


def test_boxes_to_frame_and_back():
    _, geo = preprocess_i3d(torch.zeros(9, 240, 320, 3, dtype=torch.uint8))
    boxes = torch.tensor([[[0.0, 0.0, 224.0, 224.0], [float("nan")] * 4]])
    out = geo.boxes_to_frame(boxes)
    s = 320 / 341
    torch.testing.assert_close(out[0, 0], torch.tensor([58 * s, 15.0, 282 * s, 225.0]))
    assert torch.isnan(out[0, 1]).all()
    torch.testing.assert_close(geo.boxes_from_frame(out)[0, 0], boxes[0, 0])
    # a ground-truth box partly outside the crop is clipped to it
    clipped = geo.boxes_from_frame(torch.tensor([0.0, 0.0, 100.0, 100.0]))
    torch.testing.assert_close(clipped, torch.tensor([0.0, 0.0, 100 / s - 58, 100 * 256 / 240 - 16]))
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        geo.boxes_to_frame(torch.zeros(3, 5))


# --- sliding windows ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, expected",
    [
        ((10, 4, 4), [(0, 4), (4, 8), (6, 10)]),
        ((8, 4, 4), [(0, 4), (4, 8)]),
        ((4, 4, 2), [(0, 4)]),
        ((7, 4, 2), [(0, 4), (2, 6), (3, 7)]),
    ],
)
def test_sliding_windows_cover_every_frame(args, expected):
    windows = sliding_windows(*args)
    assert windows == expected
    covered = set().union(*(range(a, b) for a, b in windows))
    assert covered == set(range(args[0]))


def test_sliding_windows_errors():
    with pytest.raises(ValueError, match="fewer than clip_len=4"):
        sliding_windows(3, 4, 1)
    with pytest.raises(ValueError, match="stride"):
        sliding_windows(10, 4, 0)


def test_stitch_windows_averages_overlaps():
    windows = [(0, 4), (4, 8), (6, 10)]
    per_window = torch.stack([torch.full((1, 4, 2, 2), float(i + 1)) for i in range(3)])  # (W, 1, clip_len, h, w)
    out = stitch_windows(per_window, windows, 10, taper=False)
    assert tuple(out.shape) == (1, 10, 2, 2)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([1, 1, 1, 1, 2, 2, 2.5, 2.5, 3, 3]))
    # tapered (the default): frames 6, 7 weigh window 1 by 1/2, 1 (its positions 2, 3 of 4: 1.0, 0.5... )
    tapered = stitch_windows(per_window, windows, 10)[0, :, 0, 0]
    w1, w2 = torch.tensor([1.0, 0.5]), torch.tensor([0.5, 1.0])   # window (4, 8) at 6, 7; window (6, 10) at 6, 7
    torch.testing.assert_close(tapered[6:8], (2 * w1 + 3 * w2) / (w1 + w2))
    torch.testing.assert_close(tapered[:6], torch.tensor([1, 1, 1, 1, 2, 2.0]))


def test_stitch_windows_ignores_nan_boxes():
    windows = [(0, 2), (1, 3)]
    boxes = torch.tensor([[[0.0, 0, 2, 2], [float("nan")] * 4], [[4.0, 4, 6, 6], [float("nan")] * 4]])
    out = stitch_windows(boxes, windows, 3, time_dim=1)
    assert tuple(out.shape) == (3, 4)
    torch.testing.assert_close(out[0], torch.tensor([0.0, 0, 2, 2]))
    torch.testing.assert_close(out[1], torch.tensor([4.0, 4, 6, 6]))  # only window 1 saw a box
    assert torch.isnan(out[2]).all()
    with pytest.raises(ValueError, match="expected 2 windows"):
        stitch_windows(boxes[:1], windows, 3, time_dim=1)


@pytest.mark.parametrize("progress", [False, True])
def test_apply_sliding_windows_reassembles_per_frame_results(progress):
    torch.manual_seed(0)
    clip = torch.rand(1, 3, 11, 4, 5)
    calls = []

    def per_frame(x):
        calls.append(x.shape[2])
        return x.mean(dim=1, keepdim=True)  # (1, 1, clip_len, h, w)

    out = apply_sliding_windows(per_frame, clip, clip_len=4, stride=3, progress=progress)
    assert calls == [4] * len(sliding_windows(11, 4, 3))
    torch.testing.assert_close(out, clip.mean(dim=1, keepdim=True))
    assert math.isclose(float(out.sum()), float(clip.mean(dim=1).sum()), rel_tol=1e-5)
