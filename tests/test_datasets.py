"""Datasets: SyntheticActions (exact boxes, motion-defined classes, determinism) and the real-data
loaders (act-detector GT pickles, UCF101-24 pyannot, JHMDB puppet masks) on fixtures of the exact
formats and the real files in ../shared/data."""
import pickle

import numpy as np
import pytest
import torch

from captum_3dcam.datasets import DIFFICULTIES, JHMDB, MOTIONS, UCF101_24, ActDetectorGT, SyntheticActions, SyntheticDifficulty, boxes_from_masks, boxes_from_puppet_mask, load_pyannot, tubes_to_boxes
from captum_3dcam.video.preprocess import frames_to_clip
from captum_3dcam.video.io import read_frames

BASKETBALL = "Basketball/v_Basketball_g01_c01"


# -- SyntheticActions --------------------------------------------------------------------------


def test_synthetic_item_shapes_and_types():
    ds = SyntheticActions(num_videos=5, seed=0)
    clip, boxes, label = ds[0]
    assert clip.shape == (3, 16, 64, 64) and clip.dtype == torch.float32
    assert boxes.shape == (16, 4) and boxes.dtype == torch.float32
    assert isinstance(label, int) and ds.classes[label] == "move_right"
    assert len(ds) == 5 and ds.video_ids == [0, 1, 2, 3, 4]
    assert [ds[i][2] for i in range(5)] == [0, 1, 2, 3, 4]  # v % num_classes: balanced
    # boxes lie inside the frame and are non-empty
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 64).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()


def test_synthetic_is_deterministic_and_seeded():
    a = SyntheticActions(num_videos=4, seed=3)
    b = SyntheticActions(num_videos=4, seed=3)
    x3, bx3, _ = b[3]  # access order does not matter
    torch.testing.assert_close(a[3][0], x3, rtol=0, atol=0)
    torch.testing.assert_close(a[3][1], bx3, rtol=0, atol=0, equal_nan=True)
    assert not torch.equal(SyntheticActions(num_videos=4, seed=4)[3][0], x3)
    assert not torch.equal(SyntheticActions(num_videos=4, seed=3, split="test")[3][0], x3)


def test_synthetic_boxes_are_exact_silhouette_extent():
    # One object on a flat grey background, no noise/texture: frame = 0.5 + alpha * (colour - 0.5),
    # so alpha = |frame - 0.5| / max_c |colour_c - 0.5|; the box is the extent of alpha >= 0.5.
    ds = SyntheticActions(num_videos=5, seed=1, num_distractors=(0, 0), noise_std=0.0,
                          background_contrast=0.0, texture=0.0)
    for i in range(5):
        clip, boxes, _ = ds[i]
        rgb = ds.to_rgb(clip)  # (3, T, H, W)
        dev = (rgb - 0.5).abs()
        alpha = dev / dev.amax(dim=(1, 2, 3), keepdim=True)  # per channel, max alpha is 1
        alpha = alpha[dev.amax(dim=(1, 2, 3)).argmax()]  # the most contrasted channel, (T, H, W)
        expected = boxes_from_masks(alpha >= 0.5 - 1e-4)
        torch.testing.assert_close(boxes, expected)


def _centres(boxes):
    return (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2


def test_synthetic_class_is_the_actor_motion():
    ds = SyntheticActions(num_videos=len(MOTIONS), seed=2, clip_len=32, classes=MOTIONS)
    assert ds.classes == list(MOTIONS)
    span = {}
    for i in range(len(ds)):
        _, boxes, label = ds[i]
        cx, cy = _centres(boxes)
        width = boxes[:, 2] - boxes[:, 0]
        span[ds.classes[label]] = (float(cx.max() - cx.min()), float(cy.max() - cy.min()),
                                   float(width.max() - width.min()), cx, cy)
    for name, sign, axis in [("move_right", 1, 0), ("move_left", -1, 0),
                             ("move_down", 1, 1), ("move_up", -1, 1)]:
        sx, sy, sw, cx, cy = span[name]
        along, across = (cx, cy) if axis == 0 else (cy, cx)
        assert (torch.diff(along) * sign >= 0).all()  # monotonic
        assert float(along[-1] - along[0]) * sign > 20  # crosses a good part of the frame
        assert float(across.max() - across.min()) <= 1 and sw <= 1
    sx, sy, _, _, _ = span["swing_horizontal"]
    assert sx > 4 and sy <= 1
    sx, sy, _, _, _ = span["swing_vertical"]
    assert sy > 4 and sx <= 1
    sx, sy, sw, _, _ = span["pulse"]
    assert sx <= 1 and sy <= 1 and sw >= 3
    sx, sy, _, cx, cy = span["swing_diagonal"]
    corr = torch.corrcoef(torch.stack([cx, cy]))[0, 1]
    assert sx > 3 and sy > 3 and abs(corr) > 0.95  # moves along a line
    sx, sy, _, cx, cy = span["circle"]
    corr = torch.corrcoef(torch.stack([cx, cy]))[0, 1]
    assert sx > 3 and sy > 3 and abs(corr) < 0.9  # not along a line


def test_synthetic_actor_looks_like_distractors():
    # Appearance carries no class: actor and distractors draw colour and size alike.
    ds = SyntheticActions(num_videos=200, seed=0)
    scenes = [ds._scene(v) for v in range(200)]
    actor = np.stack([s["color"][0] for s in scenes])
    distractor = np.concatenate([s["color"][1:] for s in scenes])
    assert abs(actor.mean() - distractor.mean()) < 0.05
    radius_a = np.array([s["rx"][0] * s["ry"][0] for s in scenes])
    radius_d = np.concatenate([s["rx"][1:] * s["ry"][1:] for s in scenes])
    assert abs(radius_a.mean() - radius_d.mean()) < 0.1 * radius_d.mean()
    # and the actor's appearance does not depend on its class
    by_class = [actor[[v for v in range(200) if v % 5 == c]].mean() for c in range(5)]
    assert max(by_class) - min(by_class) < 0.1


def test_synthetic_clips_per_video_continue_one_motion():
    long = SyntheticActions(num_videos=2, seed=5, clip_len=16)
    short = SyntheticActions(num_videos=2, seed=5, clip_len=8, clips_per_video=2)
    assert len(short) == 4 and short.video_ids == [0, 0, 1, 1]
    assert short.video_id(3) == 1
    joined = torch.cat([short[2][1], short[3][1]])
    torch.testing.assert_close(joined, long[1][1])
    assert short[2][2] == short[3][2] == long[1][2]


def test_synthetic_difficulty_presets_and_overrides():
    assert set(DIFFICULTIES) == {"easy", "medium", "hard"}
    hard = SyntheticActions(num_videos=2, difficulty="hard")
    assert hard.config.clip_len == 8 and hard[0][0].shape == (3, 8, 64, 64)
    assert hard.config.noise_std > DIFFICULTIES["easy"].noise_std
    custom = SyntheticActions(num_videos=2, difficulty="hard", clip_len=12, size=(32, 48))
    assert custom[1][0].shape == (3, 12, 32, 48)
    cfg = SyntheticDifficulty(clip_len=4)
    assert SyntheticActions(num_videos=1, difficulty=cfg)[0][1].shape == (4, 4)
    assert SyntheticActions(num_videos=10, num_classes=3).classes == [
        "move_right", "move_left", "move_up"]
    assert SyntheticActions(num_videos=3, classes=["circle", "pulse"])[1][2] == 1


def test_synthetic_to_rgb_inverts_normalization():
    ds = SyntheticActions(num_videos=1, noise_std=0.0)
    clip = ds[0][0]
    rgb = ds.to_rgb(clip)
    assert rgb.min() >= 0 and rgb.max() <= 1
    torch.testing.assert_close((rgb - 0.5) / 0.25, clip.clamp(-2, 2))


def test_synthetic_cache_returns_identical_items():
    ds = SyntheticActions(num_videos=2, cache=True)
    assert ds[1] is ds[1]


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        (dict(difficulty="extreme"), ValueError, "difficulty"),
        (dict(difficulty=3), TypeError, "difficulty"),
        (dict(split="dev"), ValueError, "split"),
        (dict(num_videos=0), ValueError, "num_videos"),
        (dict(clips_per_video=0), ValueError, "clips_per_video"),
        (dict(num_classes=7), ValueError, "num_classes"),
        (dict(classes=["move_right", "jump"]), ValueError, "classes"),
        (dict(classes=["pulse", "pulse"]), ValueError, "classes"),
        (dict(noise=0.1), TypeError, "noise"),
        (dict(clip_len=0), ValueError, "clip_len"),
        (dict(amplitude=(0.3, 0.1)), ValueError, "amplitude"),
        (dict(size=(8, 8)), ValueError, "size"),
    ],
)
def test_synthetic_bad_arguments_raise(kwargs, exc, words):
    with pytest.raises(exc, match=words):
        SyntheticActions(**{"num_videos": 2, **kwargs})


def test_synthetic_index_errors():
    ds = SyntheticActions(num_videos=2)
    with pytest.raises(IndexError):
        ds[2]
    with pytest.raises(TypeError):
        ds["0"]
    torch.testing.assert_close(ds[-1][0], ds[1][0])


# -- boxes from masks / tubes ------------------------------------------------------------------


def test_boxes_from_masks_pixel_edges():
    m = torch.zeros(3, 5, 6)
    m[0, 1:3, 2:5] = 1  # rows 1..2, columns 2..4
    m[2, 4, 0] = 7
    out = boxes_from_masks(m)
    torch.testing.assert_close(out[0], torch.tensor([2.0, 1.0, 5.0, 3.0]))
    assert torch.isnan(out[1]).all()
    torch.testing.assert_close(out[2], torch.tensor([0.0, 4.0, 1.0, 5.0]))
    with pytest.raises(ValueError, match="masks"):
        boxes_from_masks(torch.zeros(5, 6))


def test_tubes_to_boxes_union_and_first():
    t1 = torch.tensor([[2.0, 10, 10, 20, 20], [3, 10, 10, 20, 20]])
    t2 = torch.tensor([[3.0, 15, 5, 30, 18]])
    union = tubes_to_boxes([t1, t2], 4)
    assert torch.isnan(union[0]).all() and torch.isnan(union[3]).all()
    torch.testing.assert_close(union[1], torch.tensor([10.0, 10, 20, 20]))
    torch.testing.assert_close(union[2], torch.tensor([10.0, 5, 30, 20]))
    first = tubes_to_boxes([t1, t2], 4, multi_actor="first")
    torch.testing.assert_close(first[2], torch.tensor([10.0, 10, 20, 20]))
    with pytest.raises(ValueError, match="frame numbers"):
        tubes_to_boxes([t1], 2)


# -- JHMDB puppet masks --------------------------------------------------------------------------


def _write_puppet_mask(path, masks_thw):
    scipy_io = pytest.importorskip("scipy.io")
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy_io.savemat(str(path), {"part_mask": np.ascontiguousarray(masks_thw.transpose(1, 2, 0))})


def test_boxes_from_puppet_mask_reads_h_w_t(tmp_path):
    m = np.zeros((3, 24, 32), dtype=np.uint8)  # T=3 frames of H=24, W=32
    m[0, 5:10, 7:20] = 1
    m[1, 0:24, 31:32] = 3
    f = tmp_path / "puppet_mask.mat"
    _write_puppet_mask(f, m)
    out = boxes_from_puppet_mask(f)
    torch.testing.assert_close(out[0], torch.tensor([7.0, 5, 20, 10]))
    torch.testing.assert_close(out[1], torch.tensor([31.0, 0, 32, 24]))
    assert torch.isnan(out[2]).all()


def test_boxes_from_puppet_mask_errors(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    with pytest.raises(FileNotFoundError, match="puppet_mask"):
        boxes_from_puppet_mask(tmp_path / "missing.mat")
    scipy_io.savemat(str(tmp_path / "wrong.mat"), {"mask": np.zeros((4, 4, 2))})
    with pytest.raises(ValueError, match="part_mask"):
        boxes_from_puppet_mask(tmp_path / "wrong.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(ValueError, match="MATLAB"):
        boxes_from_puppet_mask(tmp_path / "junk.mat")


def _png_frames(folder, frames):
    Image = pytest.importorskip("PIL.Image")
    folder.mkdir(parents=True, exist_ok=True)
    for k, f in enumerate(frames, start=1):
        Image.fromarray(f).save(folder / f"{k:05d}.png")


def test_jhmdb_original_layout(tmp_path):
    root = tmp_path / "JHMDB"
    rng = np.random.default_rng(0)
    videos = {"clap/v1": 5, "clap/v2": 3, "wave/w1": 4}
    for name, n in videos.items():
        masks = np.zeros((n, 12, 16), dtype=np.uint8)
        for t in range(n):
            masks[t, 2:6, t:t + 4] = 1  # columns t..t+3, rows 2..5
        _write_puppet_mask(root / "puppet_mask" / name / "puppet_mask.mat", masks)
        _png_frames(root / "Rename_Images" / name,
                    [rng.integers(0, 255, (12, 16, 3), dtype=np.uint8) for _ in range(n)])
    (root / "splits").mkdir()
    (root / "splits" / "clap_test_split1.txt").write_text("v1.avi 1\nv2.avi 2\n")
    (root / "splits" / "wave_test_split1.txt").write_text("w1.avi 2\n")
    test = JHMDB(root, split="test", fold=1, clip_len=4)
    assert sorted(set(test.video_ids)) == ["clap/v2", "wave/w1"]
    assert test.classes[2] == "clap" and test.classes[20] == "wave"
    frames, boxes, label = test[test.video_ids.index("wave/w1")]
    assert frames.shape == (4, 12, 16, 3) and frames.dtype == torch.uint8 and label == 20
    torch.testing.assert_close(boxes[1], torch.tensor([1.0, 2, 5, 6]))
    # frame k of the clip is image 0000k.png
    from PIL import Image
    torch.testing.assert_close(
        frames[2], torch.from_numpy(np.array(Image.open(root / "Rename_Images/wave/w1/00003.png"))))
    # the 3-frame video is padded to clip_len by repeating its last frame, with NaN boxes
    f2, b2, _ = test[test.video_ids.index("clap/v2")]
    assert torch.equal(f2[3], f2[2]) and torch.isnan(b2[3]).all() and not torch.isnan(b2[2]).any()
    train = JHMDB(root, split="train", clip_len=None)
    assert train.video_ids == ["clap/v1"] and train[0][0].shape[0] == 5
    with pytest.raises(FileNotFoundError, match="splits"):
        JHMDB(root, split="test", fold=2)


def test_jhmdb_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="root"):
        JHMDB(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="puppet_mask"):
        JHMDB(tmp_path / "empty")


# -- act-detector GT pickles and UCF101-24 ------------------------------------------------------


def _load(path):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def test_act_detector_gt_sample_file(shared_data):
    gt = ActDetectorGT.load(shared_data / "ucf101_24" / "act_detector_gt_sample.pkl")
    assert len(gt.labels) == 24 and gt.labels[0] == "Basketball"
    assert gt.split("test", 1) == ["SalsaSpin/v_SalsaSpin_g11_c02"]
    salsa = gt.videos["SalsaSpin/v_SalsaSpin_g11_c02"]
    assert salsa.label == 14 and salsa.num_frames == 167 and len(salsa.tubes) == 4
    assert salsa.resolution == (240, 320)
    boxes = salsa.boxes()
    assert boxes.shape == (167, 4)
    raw = _load(shared_data / "ucf101_24" / "act_detector_gt_sample.pkl")["gttubes"]
    tubes = raw["SalsaSpin/v_SalsaSpin_g11_c02"][14]
    row = tubes[0][0]  # the union box of a frame contains each actor's box
    k = int(row[0]) - 1
    assert boxes[k, 0] <= row[1] and boxes[k, 1] <= row[2] and boxes[k, 2] >= row[3] and boxes[k, 3] >= row[4]
    with pytest.raises(ValueError, match="fold"):
        gt.split("test", 4)


def _basketball_gt(shared_data, tmp_path):
    """A *-GT.pkl of the exact layout holding the real Basketball tubes (141-frame video)."""
    sample = _load(shared_data / "ucf101_24" / "act_detector_gt_sample.pkl")
    tubes = _load(shared_data / "ucf101_24" / "gt_tubes_sample.pkl")
    data = dict(sample, gttubes=tubes, nframes={k: 141 for k in tubes},
                resolution={k: (240, 320) for k in tubes},
                train_videos=[[]] * 3, test_videos=[[BASKETBALL]] * 3)
    path = tmp_path / "UCF101v2-GT.pkl"
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path, tubes


def test_ucf101_24_basketball_real_video_and_boxes(shared_data, tmp_path):
    gt_path, _ = _basketball_gt(shared_data, tmp_path)
    ds = UCF101_24(shared_data / "ucf101_24", gt_path, split="test")
    assert len(ds) == 141 // 16 and set(ds.video_ids) == {BASKETBALL}
    boxes = ds.video_boxes(BASKETBALL)
    annotated = (~torch.isnan(boxes[:, 0])).nonzero().flatten() + 1
    assert annotated.tolist() == list(range(9, 53))  # 44 boxes, frames 9..52
    torch.testing.assert_close(boxes[8], torch.tensor([188.0, 101, 235, 179]))
    frames, clip_boxes, label = ds[0]  # frames 1..16
    assert frames.shape == (16, 240, 320, 3) and frames.dtype == torch.uint8 and label == 0
    torch.testing.assert_close(clip_boxes[8], torch.tensor([188.0, 101, 235, 179]))
    assert torch.isnan(clip_boxes[:8]).all()
    # frame 9 of the clip is the 9th decoded frame of the avi
    torch.testing.assert_close(frames[8], read_frames(shared_data / "ucf101_24" / "v_Basketball_g01_c01.avi", [9])[0])
    clip = frames_to_clip(frames, size=(112, 112))
    assert clip.shape == (3, 16, 112, 112) and -1 <= clip.min() and clip.max() <= 1


def _to_pyannot(tubes_by_video, numf=141, dtype=np.uint16):
    """Inverse of the documented conversion: act-detector rows -> pyannot sf/ef/[x, y, w, h]."""
    out = {}
    for video, per_label in tubes_by_video.items():
        anns = []
        for label, tubes in per_label.items():
            for t in tubes:
                frames = t[:, 0].astype(int)
                x1, y1, x2, y2 = t[:, 1:].astype(int).T
                boxes = np.stack([x1 + 1, y1 + 1, x2 - x1, y2 - y1], 1).astype(dtype)
                anns.append({"label": int(label), "sf": int(frames[0] - 1), "ef": int(frames[-1]),
                             "boxes": boxes})
        out[video] = {"label": int(label), "numf": numf, "annotations": anns}
    return out


def test_pyannot_conversion_matches_act_detector(shared_data, tmp_path):
    tubes = _load(shared_data / "ucf101_24" / "gt_tubes_sample.pkl")
    path = tmp_path / "pyannot.pkl"
    with open(path, "wb") as f:
        pickle.dump(_to_pyannot(tubes), f)
    anns = load_pyannot(path)
    for video, per_label in tubes.items():
        (label, [tube]), = per_label.items()
        assert anns[video].label == int(label) and anns[video].num_frames == 141
        torch.testing.assert_close(anns[video].tubes[0], torch.from_numpy(tube))
    b = anns[BASKETBALL].boxes()
    torch.testing.assert_close(b[8], torch.tensor([188.0, 101, 235, 179]))
    assert int((~torch.isnan(b[:, 0])).sum()) == 44
    ds = UCF101_24(shared_data / "ucf101_24", path, videos=[BASKETBALL], clip_len=8, stride=4)
    assert len(ds) == (141 - 8) // 4 + 1
    _, clip_boxes, label = ds[2]  # frames 9..16
    torch.testing.assert_close(clip_boxes[0], torch.tensor([188.0, 101, 235, 179]))


def test_pyannot_uint8_is_cast_before_adding(tmp_path):
    # x = 200, w = 100 as uint8: x + w wraps to 44 unless cast first.
    data = {"C/v": {"label": 3, "numf": 5, "annotations": [
        {"label": 3, "sf": 1, "ef": 3,
         "boxes": np.array([[200, 150, 100, 90], [201, 151, 100, 90]], dtype=np.uint8)}]}}
    path = tmp_path / "pyannot.pkl"
    with open(path, "wb") as f:
        pickle.dump(data, f)
    tube = load_pyannot(path)["C/v"].tubes[0]
    torch.testing.assert_close(tube, torch.tensor([[2.0, 199, 149, 299, 239], [3, 200, 150, 300, 240]]))


def test_annotation_files_missing_or_malformed(tmp_path):
    with pytest.raises(FileNotFoundError, match="annotation"):
        ActDetectorGT.load(tmp_path / "JHMDB-GT.pkl")
    (tmp_path / "junk.pkl").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="unpickle"):
        ActDetectorGT.load(tmp_path / "junk.pkl")
    with open(tmp_path / "partial.pkl", "wb") as f:
        pickle.dump({"labels": ["a"], "gttubes": {}}, f)
    with pytest.raises(ValueError, match="nframes"):
        ActDetectorGT.load(tmp_path / "partial.pkl")
    with pytest.raises(ValueError, match="missing key"):
        UCF101_24(tmp_path, tmp_path / "partial.pkl")
    with open(tmp_path / "list.pkl", "wb") as f:
        pickle.dump([1, 2, 3], f)
    with pytest.raises(ValueError, match="neither"):
        UCF101_24(tmp_path, tmp_path / "list.pkl")
    bad = {"C/v": {"label": 0, "annotations": [{"sf": 0, "ef": 3, "boxes": np.zeros((2, 4))}]}}
    with open(tmp_path / "bad_pyannot.pkl", "wb") as f:
        pickle.dump(bad, f)
    with pytest.raises(ValueError, match="shape"):
        load_pyannot(tmp_path / "bad_pyannot.pkl")
    with pytest.raises(FileNotFoundError, match="pyannot"):
        load_pyannot(tmp_path / "none.pkl")


def test_ucf101_24_missing_video_file(shared_data, tmp_path):
    gt_path, _ = _basketball_gt(shared_data, tmp_path)
    ds = UCF101_24(tmp_path, gt_path, split="test")  # tmp_path holds no video
    with pytest.raises(FileNotFoundError, match="v_Basketball_g01_c01"):
        ds[0]
    with pytest.raises(ValueError, match="videos"):
        UCF101_24(tmp_path, gt_path, videos=["Nope/v_Nope"])


def test_read_frames_errors(shared_data, tmp_path):
    avi = shared_data / "ucf101_24" / "v_Basketball_g01_c01.avi"
    with pytest.raises(IndexError, match="past the end"):
        read_frames(avi, [142])
    with pytest.raises(IndexError, match="1-based"):
        read_frames(avi, [0])
    with pytest.raises(FileNotFoundError):
        read_frames(tmp_path / "none.avi")
    with pytest.raises(ValueError, match="frames"):
        frames_to_clip(torch.zeros(3, 4, 4))


def test_jhmdb_act_detector_layout(tmp_path):
    root = tmp_path / "JHMDB"
    rng = np.random.default_rng(1)
    name = "pour/p1"
    _png_frames(root / "Frames" / name, [rng.integers(0, 255, (12, 16, 3), dtype=np.uint8) for _ in range(6)])
    tube = np.array([[2, 1, 2, 9, 11], [3, 2, 2, 10, 11]], dtype=np.float32)
    labels = list(__import__("captum_3dcam.datasets", fromlist=["JHMDB_CLASSES"]).JHMDB_CLASSES)
    data = {"labels": labels, "gttubes": {name: {8: [tube]}}, "nframes": {name: 6},
            "train_videos": [[], [], []], "test_videos": [[name]] * 3, "resolution": {name: (12, 16)}}
    with open(root / "JHMDB-GT.pkl", "wb") as f:
        pickle.dump(data, f)
    ds = JHMDB(root, split="test", fold=2, clip_len=None)
    frames, boxes, label = ds[0]
    assert frames.shape == (6, 12, 16, 3) and label == 8 and ds.classes[label] == "pour"
    torch.testing.assert_close(boxes[1:3], torch.from_numpy(tube[:, 1:]))
    assert torch.isnan(boxes[0]).all() and torch.isnan(boxes[3:]).all()
    assert len(JHMDB(root, split="train")) == 0
