"""The whole frame (``crop=False``, ``--full-frame``): preprocessing without the centre crop, maps and boxes that
cover the frame, the refusal of a head of fixed size before any weight is read, the three commands end to end,
and a resumed ``explain-dataset`` that never reuses files made with the other setting.

The videos are 48 x 80 (non-square): the small model's preprocessing resizes them to 64 x 107 and its centre
crop keeps x in [21, 85) of the resized frame, x in [15.7, 63.6) of the original: a bright square moving in
the left 12 columns is outside the crop, inside the whole frame.
"""
import dataclasses
import json
import pickle
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from captum_3dcam import cli
from captum_3dcam.errors import Captum3DCamError
from captum_3dcam.video.geometry import ClipGeometry
from captum_3dcam.video.preprocess import preprocess_clip, preprocess_i3d, preprocess_resnext, preprocess_torchvision

H, W, T = 48, 80, 24
CROP_X1 = 21 * W / 107  # the small model's crop, left edge in the original frame's pixels (15.7)
BORDER = 12  # the square moves in columns 0..11: outside the crop


def _frames(t=T, h=H, w=W, seed=0):
    return torch.randint(0, 256, (t, h, w, 3), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def _border_video(t=T):
    """Dark noise and a bright square moving up and down in the left border; its box per frame."""
    video = (torch.rand(t, H, W, 3, generator=torch.Generator().manual_seed(0)) * 60).to(torch.uint8)
    boxes = []
    for k in range(t):
        y = 2 + (k * 2) % 26
        video[k, y : y + 18, 0:BORDER] = 220
        boxes.append([0.0, float(y), float(BORDER), float(y + 18)])
    return video, torch.tensor(boxes)


@pytest.fixture(scope="module")
def border_mp4(tmp_path_factory):
    from captum_3dcam.video.io import save_mp4

    return save_mp4(_border_video()[0], tmp_path_factory.mktemp("video") / "border.mp4", fps=8)


@pytest.fixture(scope="module")
def jhmdb_root(tmp_path_factory):
    """A one-video JHMDB (frame folder + JHMDB-GT.pkl) whose ground truth is the square in the border."""
    Image = pytest.importorskip("PIL.Image")
    from captum_3dcam.datasets import JHMDB_CLASSES

    root = tmp_path_factory.mktemp("jhmdb") / "JHMDB"
    video, boxes = _border_video()
    folder = root / "Frames" / "pour" / "p1"
    folder.mkdir(parents=True)
    for k, frame in enumerate(video.numpy(), start=1):
        Image.fromarray(frame).save(folder / f"{k:05d}.png")
    tube = np.concatenate([np.arange(1, T + 1, dtype=np.float32)[:, None], boxes.numpy()], axis=1)
    data = {"labels": list(JHMDB_CLASSES), "gttubes": {"pour/p1": {8: [tube]}}, "nframes": {"pour/p1": T},
            "train_videos": [[], [], []], "test_videos": [["pour/p1"]] * 3, "resolution": {"pour/p1": (H, W)}}
    with open(root / "JHMDB-GT.pkl", "wb") as f:
        pickle.dump(data, f)
    return root


# ------------------------------------------------------------------------------------ preprocessing
_SMALL = dict(short_side=64, crop_size=64, scale=1 / 255, mean=(0.5,) * 3, std=(0.25,) * 3)


@pytest.mark.parametrize("name, run, short", [
    ("preprocess_clip", lambda f, **k: preprocess_clip(f, **_SMALL, **k), 64),
    ("preprocess_i3d", lambda f, **k: preprocess_i3d(f, **k), 256),
    ("preprocess_resnext", lambda f, **k: preprocess_resnext(f, None, **k), 112),
])
@pytest.mark.parametrize("h, w", [(48, 80), (80, 48)])
def test_crop_false_keeps_the_whole_resized_frame(name, run, short, h, w):
    frames = _frames(12, h, w)
    cropped, geo_crop = run(frames)
    whole, geo = run(frames, crop=False)
    hr, wr = geo.resized_size
    assert min(hr, wr) == short and geo.resized_size == geo_crop.resized_size  # the same scale either way
    assert whole.shape == (1, 3, 12, hr, wr) and geo.crop_box == (0, 0, wr, hr) and geo.crop_size == (hr, wr)
    assert geo.frame_size == (h, w) and geo.frame_indices == range(12)
    x1, y1, x2, y2 = geo_crop.crop_box  # the centre crop is that window of the whole frame, exactly
    assert (x2 - x1, y2 - y1) != (wr, hr)
    torch.testing.assert_close(cropped, whole[..., y1:y2, x1:x2], rtol=0, atol=0)
    full = torch.tensor([[0.0, 0.0, float(wr), float(hr)]])
    torch.testing.assert_close(geo.boxes_to_frame(full), torch.tensor([[0.0, 0.0, float(w), float(h)]]))


class _VideoClassification(torch.nn.Module):
    """torchvision's ``VideoClassification`` preset (resize, centre crop, /255, normalize), without torchvision."""

    def __init__(self, crop_size=(112, 112), resize_size=(128, 171)):
        super().__init__()
        self.crop_size, self.resize_size = list(crop_size), list(resize_size)
        self.mean, self.std = [0.43216, 0.394666, 0.37645], [0.22803, 0.22145, 0.216989]

    def forward(self, vid):  # (T, C, H, W) uint8 -> (C, T, h, w)
        x = F.interpolate(vid.float(), size=tuple(self.resize_size), mode="bilinear", align_corners=False)
        (hr, wr), (ch, cw) = x.shape[-2:], self.crop_size
        top, left = int(round((hr - ch) / 2.0)), int(round((wr - cw) / 2.0))
        x = x[..., top : top + ch, left : left + cw] / 255
        x = (x - torch.tensor(self.mean).view(1, 3, 1, 1)) / torch.tensor(self.std).view(1, 3, 1, 1)
        return x.permute(1, 0, 2, 3)


def test_torchvision_crop_false_is_the_weights_transform_without_its_crop():
    transform, frames = _VideoClassification(), _frames(40)  # > 32 frames: two chunks
    cropped, geo_crop = preprocess_torchvision(frames, transform)
    whole, geo = preprocess_torchvision(frames, transform, crop=False)
    assert transform.crop_size == [112, 112]  # the caller's transform is left as it was
    assert whole.shape == (1, 3, 40, 128, 171) and geo.crop_box == (0, 0, 171, 128)
    assert geo_crop.crop_box == (30, 8, 142, 120)
    torch.testing.assert_close(cropped, whole[..., 8:120, 30:142], rtol=0, atol=0)


def test_crop_must_be_a_bool():
    with pytest.raises(TypeError, match="crop: expected True .* got str"):
        preprocess_i3d(_frames(12), crop="no")
    with pytest.raises(TypeError, match="crop"):
        preprocess_torchvision(_frames(2), _VideoClassification(), crop=None)


def test_every_fully_convolutional_spec_preprocesses_the_whole_frame():
    """Every spec that may see the whole frame takes ``crop=``; those that need no optional package run it."""
    import inspect

    from captum_3dcam.models import MODELS

    ran = []
    for name, spec in MODELS.items():
        if not spec.fully_convolutional:
            continue
        assert "crop" in inspect.signature(spec.preprocess).parameters, f"{name}: preprocess(frames, *, crop=True)"
        try:
            clip, geometry = spec.preprocess(_frames(max(16, spec.min_frames)), crop=False)
        except ImportError:  # torchvision's transforms need torchvision
            continue
        hr, wr = geometry.resized_size
        assert clip.shape[-2:] == (hr, wr) and geometry.crop_box == (0, 0, wr, hr), name
        ran.append(name)
    assert {"i3d-kinetics400", "small-synthetic", "small"} <= set(ran)
    assert not MODELS["resnext101"].fully_convolutional


def test_small_model_takes_the_whole_frame(small_checkpoint):
    from captum_3dcam.models import get_model_spec

    spec = get_model_spec("small-synthetic")
    net = spec.load(str(small_checkpoint)).eval()
    clip, _ = spec.preprocess(_frames(16), crop=False)
    with torch.no_grad():
        assert clip.shape[-2:] == (64, 107) and net(clip).shape == (1, 5)


# ------------------------------------------------------------------------------------ maps and boxes
def test_whole_frame_geometry_has_no_outside():
    geo = ClipGeometry(frame_size=(H, W), resized_size=(64, 107), crop_box=(0, 0, 107, 64), frame_indices=range(2))
    maps = torch.rand(1, 1, 2, 64, 107, generator=torch.Generator().manual_seed(0)) + 1
    for outside in ("min", -5.0):  # no pixel gets the fill: every one is sampled from the map
        assert geo.maps_to_frame(maps, outside=outside).min() >= 1
    box = geo.boxes_to_frame(torch.tensor([[0.0, 0.0, 10.0, 64.0]]))[0]
    assert box[0] == 0 and box[2] < CROP_X1  # a box the crop could not give: left of the crop's edge


def test_explain_maps_cover_the_frame_and_boxes_pass_the_crop(border_mp4, small_checkpoint):
    from captum_3dcam.apps.explain import explain_video

    kwargs = dict(checkpoint=small_checkpoint, clip_len=16, stride=8, progress=False, device="cpu")
    cropped = explain_video(border_mp4, "small-synthetic", **kwargs)
    whole = explain_video(border_mp4, "small-synthetic", full_frame=True, **kwargs)
    assert cropped["maps"].shape == (1, 1, T, 64, 64) and whole["maps"].shape == (1, 1, T, 64, 107)
    assert whole["full_frame"] is True and whole["geometry"].crop_box == (0, 0, 107, 64)
    in_crop, in_frame = (r["geometry"].maps_to_frame(r["maps"])[0, 0] for r in (cropped, whole))
    assert in_crop.shape == in_frame.shape == (T, H, W)  # the original frame's size either way
    border = slice(0, int(CROP_X1))
    # cropped: the border is each frame's minimum; the whole frame: the map there, where the square is
    assert torch.equal(in_crop[:, :, border], in_crop.amin(dim=(1, 2), keepdim=True).expand(T, H, int(CROP_X1)))
    assert (in_frame[:, :, border] > in_frame.amin(dim=(1, 2), keepdim=True)).any(dim=(1, 2)).all()
    peak_x = in_frame.flatten(1).argmax(1) % W
    assert (peak_x < BORDER).float().mean() >= 0.5
    past = whole["boxes"][:, 0] < CROP_X1 - 1
    assert past.float().mean() >= 0.5 and not (cropped["boxes"][:, 0] < CROP_X1 - 1).any()


def test_overlay_of_the_whole_frame_has_no_dark_border(border_mp4, small_checkpoint):
    from captum_3dcam.apps.explain import explain_video
    from captum_3dcam.viz.overlays import overlay

    kwargs = dict(checkpoint=small_checkpoint, clip_len=16, stride=8, progress=False, device="cpu")
    for full_frame in (False, True):
        r = explain_video(border_mp4, "small-synthetic", full_frame=full_frame, **kwargs)
        maps = r["geometry"].maps_to_frame(r["maps"])[0, 0]  # (T, H, W): what overlay.mp4 and frames.png show
        maps = (maps - maps.min()) / (maps.max() - maps.min())
        shown = overlay(r["frames"].numpy(), maps, normalize=False)
        floor = overlay(r["frames"].numpy(), maps.amin(dim=(1, 2), keepdim=True).expand_as(maps), normalize=False)
        differ = np.abs(shown[:, :, :BORDER].astype(int) - floor[:, :, :BORDER].astype(int)).max()
        assert (differ > 0) == full_frame  # cropped: the border in the minimum's colour; whole: the map there


# ------------------------------------------------------------------------------------ the refusal
def _no_weights(monkeypatch, name="resnext101"):
    from captum_3dcam.models import MODELS

    def fail(checkpoint):
        raise AssertionError("weights were loaded before --full-frame was refused")

    monkeypatch.setitem(MODELS, name, dataclasses.replace(MODELS[name], load=fail))


def _one_line(capsys, code):
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("argv", [
    ["explain", "{video}", "--model", "resnext101", "--checkpoint", "{ckpt}", "--out", "{out}"],
    ["evaluate", "--dataset", "synthetic", "--model", "resnext101", "--checkpoint", "{ckpt}", "--out", "{out}"],
    ["explain-dataset", "--dataset", "synthetic", "--model", "resnext101", "--checkpoint", "{ckpt}", "--out", "{out}"],
])
def test_a_fixed_size_head_is_refused_before_the_weights_load(argv, border_mp4, tmp_path, capsys, monkeypatch):
    _no_weights(monkeypatch)
    ckpt = tmp_path / "resnext.pth"
    ckpt.write_bytes(b"not read")
    fill = dict(video=str(border_mp4), ckpt=str(ckpt), out=str(tmp_path / "out"))
    err = _one_line(capsys, cli.main([a.format(**fill) for a in argv] + ["--full-frame", "--device", "cpu", "-q"]))
    assert err.startswith(f"captum-3dcam {argv[0]}: error: --full-frame: resnext101 has a classifier of fixed input "
                          "size (16 x 112 x 112); it only sees the centre crop"), err
    assert not (tmp_path / "out").exists()


def test_the_functions_refuse_it_too(border_mp4, tmp_path, monkeypatch):
    from captum_3dcam.apps.explain import explain_video
    from captum_3dcam.evaluation import run_evaluate
    from captum_3dcam.evaluation.dataset_run import run_explain_dataset

    _no_weights(monkeypatch)
    for call in (lambda: explain_video(border_mp4, "resnext101", checkpoint=border_mp4, full_frame=True),
                 lambda: run_evaluate("synthetic", model="resnext101", checkpoint=border_mp4, full_frame=True),
                 lambda: run_explain_dataset("synthetic", out=tmp_path / "o", model="resnext101", checkpoint=border_mp4,
                                             full_frame=True, device="cpu")):
        with pytest.raises(Captum3DCamError, match=r"^--full-frame: resnext101 .*fixed input size"):
            call()
    with pytest.raises(TypeError, match="full_frame: expected a bool"):
        explain_video(border_mp4, "small-synthetic", full_frame="yes")


def test_help_names_the_flag_and_the_refused_model(capsys):
    for command in ("explain", "evaluate", "explain-dataset"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--full-frame" in text and "not resnext101" in text, command


# ------------------------------------------------------------------------------------ the commands
def test_explain_command_full_frame(border_mp4, small_checkpoint, tmp_path, capsys):
    out = tmp_path / "explained"
    argv = ["explain", str(border_mp4), "--model", "small-synthetic", "--checkpoint", str(small_checkpoint),
            "--clip-len", "16", "--stride", "8", "--out", str(out), "--no-gif", "--device", "cpu", "-q", "--full-frame"]
    assert cli.main(argv) == 0
    assert "the whole frame (--full-frame)" in capsys.readouterr().out
    summary = json.loads((out / "explanation.json").read_text())
    assert summary["full_frame"] is True and summary["model_input"] == [64, 107]
    boxes = json.loads((out / "boxes.json").read_text())
    assert boxes["frame_size"] == {"height": H, "width": W} and len(boxes["boxes"]) == T
    lefts = [b[0] for b in boxes["boxes"] if b is not None]
    assert lefts and min(lefts) < CROP_X1 - 1 and all(0 <= x for x in lefts)
    assert (out / "overlay.mp4").stat().st_size > 0 and (out / "frames.png").stat().st_size > 0


def _pointing(table_json):
    return json.loads(table_json.read_text())["preset:localize"]["pointing"]


def test_evaluate_command_full_frame_finds_the_action_in_the_border(jhmdb_root, small_checkpoint, tmp_path, capsys):
    base = ["evaluate", "--dataset", "jhmdb", "--root", str(jhmdb_root), "--model", "small-synthetic", "--checkpoint",
            str(small_checkpoint), "--methods", "preset:localize", "--device", "cpu", "-q"]
    assert cli.main(base + ["--out", str(tmp_path / "crop")]) == 0
    assert cli.main(base + ["--out", str(tmp_path / "whole"), "--full-frame"]) == 0
    whole, crop = ((tmp_path / d / "localization.md").read_text() for d in ("whole", "crop"))
    assert "the whole frame (--full-frame)" in whole and "--full-frame" not in crop
    # the ground truth is outside the crop: the cropped map can never point there, the whole frame's does
    assert _pointing(tmp_path / "crop" / "localization.json") == 0.0
    assert _pointing(tmp_path / "whole" / "localization.json") >= 0.5


def _videos(out):
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "videos").glob("*.json"))}


def test_explain_dataset_full_frame_and_its_resume(jhmdb_root, small_checkpoint, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["explain-dataset", "--dataset", "jhmdb", "--root", str(jhmdb_root), "--model", "small-synthetic",
            "--checkpoint", str(small_checkpoint), "--device", "cpu", "--workers", "0", "--save-maps", "-q",
            "--out", str(out)]
    assert cli.main(argv + ["--full-frame"]) == 0
    assert json.loads((out / "run.json").read_text())["full_frame"] is True
    (data,) = _videos(out).values()
    assert data["settings"]["full_frame"] is True and data["frame_size"] == {"height": H, "width": W}
    assert np.load(out / "maps" / "pour__p1.npz")["maps"].shape == (T, 64, 107)
    lefts = [b[0] for b in data["boxes"] if b is not None]
    assert min(lefts) < CROP_X1 - 1 and sum(data["hit"]) >= T // 2
    capsys.readouterr()
    written = (out / "videos" / "pour__p1.json").stat().st_mtime_ns
    assert cli.main(argv + ["--full-frame"]) == 0  # the same setting: reused
    assert (out / "videos" / "pour__p1.json").stat().st_mtime_ns == written
    err = _one_line(capsys, cli.main(argv))  # the other setting: refused, nothing reused or touched
    assert "--out:" in err and "full_frame (True -> False)" in err
    assert (out / "videos" / "pour__p1.json").stat().st_mtime_ns == written


def test_a_video_file_of_the_other_setting_is_redone(jhmdb_root, small_checkpoint, tmp_path):
    from captum_3dcam.evaluation.dataset_run import run_explain_dataset

    kwargs = dict(root=jhmdb_root, model="small-synthetic", checkpoint=small_checkpoint, device="cpu", workers=0,
                  progress=False)
    whole, cropped = tmp_path / "whole", tmp_path / "cropped"
    run_explain_dataset("jhmdb", out=whole, full_frame=True, **kwargs)
    run_explain_dataset("jhmdb", out=cropped, **kwargs)
    reference = _videos(cropped)["pour__p1"]
    shutil.copy(whole / "videos" / "pour__p1.json", cropped / "videos" / "pour__p1.json")  # a whole-frame file
    run_explain_dataset("jhmdb", out=cropped, **kwargs)
    again = _videos(cropped)["pour__p1"]
    assert again["settings"]["full_frame"] is False and again["boxes"] == reference["boxes"]
    assert again["boxes"] != _videos(whole)["pour__p1"]["boxes"]


def test_a_run_recorded_before_full_frame_existed_resumes_as_cropped(jhmdb_root, small_checkpoint, tmp_path):
    from captum_3dcam.evaluation.dataset_run import run_explain_dataset

    kwargs = dict(root=jhmdb_root, model="small-synthetic", checkpoint=small_checkpoint, device="cpu", workers=0,
                  progress=False)
    out = tmp_path / "old"
    run_explain_dataset("jhmdb", out=out, **kwargs)
    for path in (out / "run.json", out / "videos" / "pour__p1.json"):  # as an older version wrote them
        data = json.loads(path.read_text())
        (data.get("settings", data)).pop("full_frame")
        path.write_text(json.dumps(data))
    written = (out / "videos" / "pour__p1.json").stat().st_mtime_ns
    run_explain_dataset("jhmdb", out=out, **kwargs)
    assert (out / "videos" / "pour__p1.json").stat().st_mtime_ns == written  # reused: it was cropped
    with pytest.raises(Captum3DCamError, match=r"full_frame \(False -> True\)"):
        run_explain_dataset("jhmdb", out=out, full_frame=True, **kwargs)
