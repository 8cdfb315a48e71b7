"""``captum-3dcam explain-dataset`` / :func:`captum_3dcam.evaluation.dataset_run.run_explain_dataset`:
the files, the metrics against LocalizationMeter, resume, the output folder refused before work,
2 torchrun ranks equal to one process, bfloat16; streaming equal to the whole-video computation
with the frames held bounded by the windows, not the length."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from captum_3dcam import cli
from captum_3dcam.datasets import SyntheticActions
from captum_3dcam.errors import Captum3DCamError
from captum_3dcam.evaluation.dataset_run import run_explain_dataset
from captum_3dcam.metrics.localization import LocalizationMeter, box_iou, pointing_game

REPO = Path(__file__).resolve().parents[1]
KEYS = {"video", "target", "label", "score", "boxes", "hit", "iou", "frame_size", "frames"}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTUM_3DCAM_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def run3(small_checkpoint, tmp_path_factory):
    """3 synthetic videos through the command, maps saved."""
    out = tmp_path_factory.mktemp("run") / "out"
    code = cli.main(["explain-dataset", "--dataset", "synthetic", "--limit", "3", "--checkpoint",
                     str(small_checkpoint), "--device", "cpu", "--save-maps", "-q", "--out", str(out)])
    assert code == 0
    return out


def _videos(out):
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "videos").glob("*.json"))}


def test_files_and_keys(run3):
    videos = _videos(run3)
    assert sorted(videos) == ["synthetic-0000", "synthetic-0001", "synthetic-0002"]
    assert sorted(p.name for p in run3.iterdir()) == ["localization.md", "maps", "run.json", "summary.json", "videos"]
    assert sorted(p.name for p in (run3 / "maps").iterdir()) == [f"{v}.npz" for v in sorted(videos)]
    for vid, data in videos.items():
        assert KEYS <= set(data) and data["video"] == vid
        assert len(data["boxes"]) == data["frames"] == 32  # 2 synthetic clips of 16 frames
        assert 0.0 <= data["score"] <= 1.0 and isinstance(data["target"], int)
        maps = np.load(run3 / "maps" / f"{vid}.npz")["maps"]
        assert maps.dtype == np.float16 and maps.shape == (32, 64, 64)
    assert not list(run3.rglob("*.tmp"))


def test_boxes_in_frame_pixels_or_null(run3):
    boxes = [b for d in _videos(run3).values() for b in d["boxes"]]
    present = [b for b in boxes if b is not None]
    assert present, "every box is null: nothing was localized"
    for x1, y1, x2, y2 in present:
        assert 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 64  # 64 x 64 synthetic frames


def test_boxes_equal_the_preset_on_the_saved_maps(run3):
    """The json boxes are the localize preset's boxes of the maps (float16 copies: a little slack)."""
    from captum_3dcam.localization.boxes import attribution_to_boxes
    from captum_3dcam.attr.presets import get_preset

    for vid, data in _videos(run3).items():
        maps = torch.from_numpy(np.load(run3 / "maps" / f"{vid}.npz")["maps"].astype(np.float32))
        boxes = attribution_to_boxes(maps[None, None], **get_preset("localize")["boxes"])[0]
        got = torch.tensor([[float("nan")] * 4 if b is None else b for b in data["boxes"]])
        close = ((boxes - got).abs() <= 1).all(-1) | (torch.isnan(boxes).all(-1) & torch.isnan(got).all(-1))
        assert close.float().mean() >= 0.9, vid


def test_summary_metrics_equal_localization_meter(run3):
    summary = json.loads((run3 / "summary.json").read_text())
    assert summary["num_videos"] == 3 and summary["preset"] == "localize" and "timings" in summary
    data = SyntheticActions(3, "test", seed=0, clips_per_video=2)
    meter = LocalizationMeter()
    for v, (vid, video) in enumerate(sorted(_videos(run3).items())):
        gt = torch.cat([torch.as_tensor(data[2 * v + c][1]) for c in range(2)]).float()
        pred = torch.tensor([[float("nan")] * 4 if b is None else b for b in video["boxes"]])
        maps = torch.from_numpy(np.load(run3 / "maps" / f"{vid}.npz")["maps"].astype(np.float32))
        hits = pointing_game(maps[None, None], gt[None])[0]
        stored = torch.tensor([bool(h) for h in video["hit"]])
        assert (hits == stored).float().mean() >= 0.9  # float16 maps may move an argmax
        assert torch.allclose(box_iou(pred[None], gt[None]).double()[0],
                              torch.tensor([float("nan") if i is None else i for i in video["iou"]],
                                           dtype=torch.float64), atol=1e-3, equal_nan=True)
        meter.add(stored[None], box_iou(pred[None], gt[None]), torch.tensor([video["target"] == video["label"]]))
    expected = meter.compute()
    got = summary["localization"]
    for key in ("pointing", "iou@0", "iou@0.5", "iou@0.6", "mean_iou", "frames", "class_acc"):
        assert got[key] == pytest.approx(expected[key], abs=1e-4), key
    table = (run3 / "localization.md").read_text()
    assert "pointing game" in table and f"{got['iou@0.5']:.3f}" in table


def test_resume_skips_complete_files_and_redoes_a_broken_one(run3, small_checkpoint, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(run3, out)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "videos").iterdir()}
    reference = (out / "videos" / "synthetic-0001.json").read_text()
    (out / "videos" / "synthetic-0001.json").write_text(reference[: len(reference) // 2])  # a torn file
    (out / "videos" / ".synthetic-0002.json.999.tmp").write_text("{")  # a killed writer's temporary
    summary = run_explain_dataset("synthetic", out=out, limit=3, checkpoint=small_checkpoint, device="cpu",
                                  save_maps=True, progress=False)
    after = {p.name: p.stat().st_mtime_ns for p in (out / "videos").iterdir()}
    assert sorted(after) == sorted(before)  # the temporary is gone
    assert after["synthetic-0000.json"] == before["synthetic-0000.json"]
    assert after["synthetic-0002.json"] == before["synthetic-0002.json"]
    assert after["synthetic-0001.json"] != before["synthetic-0001.json"]
    assert json.loads((out / "videos" / "synthetic-0001.json").read_text())["boxes"] == json.loads(reference)["boxes"]
    assert summary["localization"] == json.loads((run3 / "summary.json").read_text())["localization"]


def test_resume_with_other_settings_is_refused(run3, small_checkpoint, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(run3, out)
    with pytest.raises(Captum3DCamError, match="--out: .*preset"):
        run_explain_dataset("synthetic", out=out, limit=3, checkpoint=small_checkpoint, device="cpu",
                            preset="paper", progress=False)


def test_unusable_out_refused_before_any_work(small_checkpoint, tmp_path, capsys, monkeypatch):
    import captum_3dcam.evaluation.dataset_run as dr

    def fail(*a, **k):
        raise AssertionError("the model was loaded before --out was checked")

    monkeypatch.setattr(dr, "load_dataset_model", fail)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = cli.main(["explain-dataset", "--dataset", "synthetic", "--limit", "1", "--checkpoint",
                     str(small_checkpoint), "--device", "cpu", "--out", str(blocker / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--out" in err and "Traceback" not in err, err


@pytest.mark.parametrize("argv, needle", [
    (["--dataset", "jhmdb", "--model", "small-synthetic"], "--root"),
    (["--dataset", "synthetic", "--checkpoint", "/no/such/file.pt"], "--checkpoint"),
    (["--dataset", "synthetic", "--model", "nope"], "--model"),
])
def test_bad_arguments_one_line_exit_2(argv, needle, tmp_path, capsys):
    code = cli.main(["explain-dataset", *argv, "--device", "cpu", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err and "Traceback" not in err, err
    assert err.startswith("captum-3dcam explain-dataset: error:")


def test_library_errors_name_the_argument(tmp_path):
    for kwargs, needle in (({"dtype": "float16"}, "--dtype"), ({"preset": "x"}, "--preset"),
                           ({"batch_size": 0}, "--batch-size"), ({"limit": -1}, "--limit")):
        with pytest.raises(Captum3DCamError, match=needle):
            run_explain_dataset("synthetic", out=tmp_path / "o", **kwargs)


def test_bfloat16_runs_and_stays_close(run3, small_checkpoint, tmp_path):
    out = tmp_path / "bf16"
    summary = run_explain_dataset("synthetic", out=out, limit=3, checkpoint=small_checkpoint, device="cpu",
                                  dtype="bfloat16", progress=False)
    assert summary["dtype"] == "bfloat16" and json.loads((out / "run.json").read_text())["dtype"] == "bfloat16"
    a, b = _videos(run3), _videos(out)
    ious = []
    for vid in a:
        for p, q in zip(a[vid]["boxes"], b[vid]["boxes"]):
            if p is not None and q is not None:
                ious.append(float(box_iou(torch.tensor(p), torch.tensor(q))))
    assert ious and sum(ious) / len(ious) > 0.7  # autocast moves the maps a little, not the boxes' place


@pytest.mark.slow
def test_torchrun_two_ranks_equal_one_process(run3, small_checkpoint, tmp_path):
    out = tmp_path / "two"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "CAPTUM_3DCAM_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "captum_3dcam",
           "explain-dataset", "--dataset", "synthetic", "--limit", "3", "--checkpoint", str(small_checkpoint),
           "--device", "cpu", "--save-maps", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("wrote ") == 1  # rank 0 prints, rank 1 does not
    one, two = _videos(run3), _videos(out)
    assert sorted(one) == sorted(two)
    for vid in one:
        assert (one[vid]["target"], one[vid]["label"]) == (two[vid]["target"], two[vid]["label"])
        assert two[vid]["score"] == pytest.approx(one[vid]["score"], abs=1e-5)
        for p, q in zip(one[vid]["boxes"], two[vid]["boxes"]):
            assert (p is None) == (q is None)
            if p is not None:
                assert max(abs(u - v) for u, v in zip(p, q)) <= 1e-3
    s1, s2 = (json.loads((d / "summary.json").read_text()) for d in (run3, out))
    assert s2["timings"]["world_size"] == 2
    assert {k: v for k, v in s1.items() if k != "timings"} == {k: v for k, v in s2.items() if k != "timings"}
    assert not list(out.rglob("*.tmp"))


def _long_video(tmp_path, frames=70):
    """A synthetic video of ``frames`` frames (a moving square) written as MP4 in ``root/test/<class>/``."""
    from captum_3dcam.video.io import save_mp4

    g = torch.Generator().manual_seed(0)
    video = (torch.rand(frames, 48, 80, 3, generator=g) * 60).to(torch.uint8)
    for t in range(frames):
        x = 4 + (t * 3) % 50
        video[t, 12:36, x : x + 20] = 220
    root = tmp_path / "data"
    path = save_mp4(video, root / "test" / "walk" / "long.mp4")
    (root / "test" / "run").mkdir()
    return root, path


def _whole_video_reference(net, layers, spec, path, clip_len, stride, batch_size):
    """The non-streaming computation: decode all, preprocess all, every window, stitch, boxes."""
    from captum_3dcam.localization.boxes import attribution_to_boxes
    from captum_3dcam.attr.presets import get_preset
    from captum_3dcam.video.io import read_video
    from captum_3dcam.video.windows import attribute_windows, sliding_windows, stitch_windows

    clip, geometry = spec.preprocess(read_video(path))
    windows = sliding_windows(clip.shape[2], clip_len, stride)
    preset = get_preset("localize")
    maps, probs, target = attribute_windows(net, layers, clip, windows, batch_size=batch_size, **preset["attribute"])
    maps = stitch_windows(maps, windows, clip.shape[2]).unsqueeze(0)
    return maps, geometry.boxes_to_frame(attribution_to_boxes(maps, **preset["boxes"]))[0], probs, target, windows


def test_streaming_equals_the_whole_video(small_checkpoint, tmp_path):
    """explain-dataset on a 70-frame file (8 windows of 16, stride 8) = the whole-video computation."""
    from captum_3dcam.models.registry import get_model_spec, resolve_model_layers

    root, path = _long_video(tmp_path)
    out = tmp_path / "out"
    run_explain_dataset("folder", root=root, out=out, checkpoint=small_checkpoint, model="small-synthetic",
                        device="cpu", batch_size=3, save_maps=True, workers=0, progress=False)
    spec = get_model_spec("small-synthetic")
    net = spec.load(str(small_checkpoint)).eval()
    _, layers = resolve_model_layers(net, None, spec.name)
    maps, boxes, probs, target, windows = _whole_video_reference(net, layers, spec, path, 16, 8, 3)
    data = _videos(out)["walk__long.mp4"]
    assert data["frames"] == 70 and [tuple(w) for w in data["windows"]] == windows and len(windows) > 5
    assert data["target"] == target and data["score"] == pytest.approx(round(float(probs[target]), 6), abs=1e-6)
    got = torch.tensor([[float("nan")] * 4 if b is None else b for b in data["boxes"]], dtype=torch.float64)
    assert torch.equal(torch.isnan(got), torch.isnan(boxes))
    assert torch.nan_to_num((got - boxes.double()).abs()).max() <= 1e-4
    saved = np.load(out / "maps" / "walk__long.mp4.npz")["maps"]
    assert np.array_equal(saved, maps[0, 0].numpy().astype(np.float16))


@pytest.mark.parametrize("clip_len, stride, batch_size", [(16, 8, 1), (16, 5, 2), (12, 12, 1)])
def test_streaming_holds_a_bounded_number_of_frames(small_checkpoint, clip_len, stride, batch_size):
    """Frames decoded but not yet finalized stay below a bound set by the windows, not the length."""
    from captum_3dcam.models.registry import get_model_spec, resolve_model_layers
    from captum_3dcam.attr.presets import get_preset
    from captum_3dcam.video.streaming import explain_stream, frame_chunks

    spec = get_model_spec("small-synthetic")
    net = spec.load(str(small_checkpoint)).eval()
    _, layers = resolve_model_layers(net, None, spec.name)
    worst = {}
    for length in (40, 160):
        state = {"decoded": 0, "done": 0, "worst": 0, "calls": 0, "passes": 1}

        def frames():
            for _ in range(length):
                state["decoded"] += 1
                if state["calls"] == state["passes"]:  # the explaining pass: frames leave through the sink
                    state["worst"] = max(state["worst"], state["decoded"] - state["done"])
                yield torch.full((40, 60, 3), 100, dtype=torch.uint8)

        def source():
            state.update(decoded=0, done=0, calls=state["calls"] + 1)
            return frame_chunks(frames(), spec.preprocess, group=stride, pad_to=clip_len)

        def sink(start, maps, boxes, geometry):
            assert start == state["done"] and maps.shape[2] == boxes.shape[0]
            state["done"] += maps.shape[2]

        for target in (None, 1):
            state.update(calls=0, passes=2 if target is None else 1)
            result = explain_stream(net, layers, source, preset=get_preset("localize"), clip_len=clip_len,
                                    stride=stride, batch_size=batch_size, target=target, sink=sink)
            assert state["done"] == result["num_frames"] == length and state["calls"] == state["passes"]
            assert result["peak_frames"] <= clip_len + stride  # the window buffer, both passes
        worst[length] = state["worst"]
    # in flight: the window buffer, the windows of one batch, one decoded group; not the length
    assert worst[160] == worst[40] <= clip_len + batch_size * stride + stride, worst


def test_maps_writer_appends_and_refuses_a_short_file(tmp_path):
    from captum_3dcam.video.streaming import MapsWriter

    maps = np.random.default_rng(0).random((10, 5, 7)).astype(np.float32)
    writer = MapsWriter(tmp_path / "v.npz", 10)
    for s in range(0, 10, 4):
        writer.append(maps[s : s + 4])
    writer.close()
    assert np.array_equal(np.load(tmp_path / "v.npz")["maps"], maps.astype(np.float16))
    short = MapsWriter(tmp_path / "w.npz", 10)
    short.append(maps[:3])
    with pytest.raises(ValueError, match="3 frames"):
        short.close()
    assert not (tmp_path / "w.npz").exists()
