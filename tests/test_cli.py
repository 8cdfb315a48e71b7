"""End-to-end tests of the ``captum-3dcam`` command on tiny settings."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("matplotlib")
av = pytest.importorskip("av")
pytest.importorskip("scipy")

from captum_3dcam import cli  # noqa: E402
from captum_3dcam.errors import Captum3DCamError  # noqa: E402
from captum_3dcam.apps.explain import explain_video  # noqa: E402


def _decoded_frames(path):
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def _png_size(path):
    from PIL import Image

    with Image.open(path) as im:
        return im.size


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """No test reads or trains into the user's model cache."""
    monkeypatch.setenv("CAPTUM_3DCAM_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def synthetic_video(tmp_path_factory):
    """A 40-frame, 48 x 80 MP4 of synthetic actions (non-square: the geometry maps boxes back)."""
    from captum_3dcam import viz
    from captum_3dcam.datasets import SyntheticActions

    ds = SyntheticActions(1, "test", seed=3, clips_per_video=3, size=(48, 80))
    clip = torch.cat([ds[i][0] for i in range(3)], dim=1)[:, :40]
    path = tmp_path_factory.mktemp("video") / "actions.mp4"
    viz.save_mp4(SyntheticActions.to_rgb(clip), path, fps=10)
    return path


# ---------------------------------------------------------------------------------------------
# help and usage
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [[], ["demo"], ["explain"], ["evaluate"]])
def test_help_of_every_command(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([*command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "usage: captum-3dcam" in text
    assert {"": "explain", "demo": "--retrain", "explain": "--layers", "evaluate": "--dataset"}[
        command[0] if command else ""] in text


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


@pytest.mark.parametrize("module", ["captum_3dcam.cli", "captum_3dcam"])
def test_console_script_is_installed(module):
    out = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "captum-3dcam" in out.stdout


def test_no_old_names_are_served():
    """0.1.0 keeps no shims: the library names live in their modules only."""
    for name in ("CLIError", "explain_video", "MODELS"):
        assert not hasattr(cli, name)


# ---------------------------------------------------------------------------------------------
# user errors: one line, no traceback, exit status 2
# ---------------------------------------------------------------------------------------------
def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("captum-3dcam ")
    for needle in needles:
        assert needle in err, err


def test_missing_video_file(tmp_path, capsys):
    assert cli.main(["explain", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o")]) == 2
    _one_line_error(capsys, "VIDEO", "nope.mp4")


def test_unknown_model(synthetic_video, tmp_path, capsys):
    assert cli.main(["explain", str(synthetic_video), "--model", "vgg16", "--out", str(tmp_path)]) == 2
    _one_line_error(capsys, "--model", "vgg16", "i3d-kinetics400")


def test_bad_layer_name(synthetic_video, small_checkpoint, tmp_path, capsys):
    argv = ["explain", str(synthetic_video), "--model", "small-synthetic", "--checkpoint", str(small_checkpoint),
            "--layers", "conv1", "conv9", "--out", str(tmp_path), "--no-progress"]
    assert cli.main(argv) == 2
    _one_line_error(capsys, "--layers", "conv9", "conv4")


def test_missing_checkpoint(synthetic_video, tmp_path, capsys):
    argv = ["explain", str(synthetic_video), "--model", "small-synthetic", "--checkpoint", str(tmp_path / "x.pt")]
    assert cli.main(argv) == 2
    _one_line_error(capsys, "--checkpoint", "x.pt")


def test_not_a_video(tmp_path, capsys):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    argv = ["explain", str(bad), "--model", "i3d-kinetics400", "--out", str(tmp_path / "o"), "--no-progress"]
    assert cli.main(argv) == 2
    _one_line_error(capsys, "notes.mp4")


def test_unknown_target_and_bad_threshold(synthetic_video, small_checkpoint, tmp_path, capsys):
    argv = ["explain", str(synthetic_video), "--model", "small-synthetic", "--checkpoint", str(small_checkpoint),
            "--target", "juggling", "--out", str(tmp_path), "--no-progress"]
    assert cli.main(argv) == 2
    _one_line_error(capsys, "--target", "juggling")
    with pytest.raises(SystemExit) as exc:  # argparse rejects it before anything runs
        cli.main(["explain", str(synthetic_video), "--threshold", "1.5"])
    assert exc.value.code == 2


def test_evaluate_real_dataset_needs_root(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CAPTUM_3DCAM_CACHE", str(tmp_path))  # never train into the user's cache
    assert cli.main(["evaluate", "--dataset", "jhmdb", "--model", "small-synthetic", "--no-progress"]) == 2
    _one_line_error(capsys)


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Captum3DCamError):
        cli.main(["explain", str(tmp_path / "nope.mp4"), "--debug"])


# ---------------------------------------------------------------------------------------------
# end to end
# ---------------------------------------------------------------------------------------------
def test_explain_small_model_end_to_end(synthetic_video, small_checkpoint, tmp_path, capsys):
    out = tmp_path / "explained"
    argv = ["explain", str(synthetic_video), "--model", "small-synthetic", "--checkpoint", str(small_checkpoint),
            "--clip-len", "16", "--stride", "8", "--out", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "rank" in printed and "wrote" in printed

    top5 = json.loads((out / "top5.json").read_text())
    assert [r["rank"] for r in top5] == [1, 2, 3, 4, 5]
    probs = [r["probability"] for r in top5]
    assert probs == sorted(probs, reverse=True) and 0.99 < sum(probs) < 1.01  # 5 classes: all of them

    with open(out / "boxes.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 40 and rows[0].keys() == {"frame", "time_s", "x1", "y1", "x2", "y2"}
    boxes = json.loads((out / "boxes.json").read_text())
    assert boxes["frame_size"] == {"height": 48, "width": 80} and len(boxes["boxes"]) == 40
    present = np.array([b for b in boxes["boxes"] if b is not None])
    assert len(present) > 0
    # in original frame pixels: inside the 80 x 48 frame, and wider than the 64-pixel model crop allows
    assert (present[:, 0] >= 0).all() and (present[:, 2] <= 80 + 1e-3).all() and (present[:, 3] <= 48 + 1e-3).all()
    assert (present[:, 2] > present[:, 0]).all() and (present[:, 3] > present[:, 1]).all()

    assert _decoded_frames(out / "overlay.mp4") == 40
    assert _decoded_frames(out / "overlay.gif") == 40
    with open(out / "temporal.csv") as f:
        assert len(list(csv.DictReader(f))) == 40
    w, h = _png_size(out / "temporal.png")
    assert (w, h) == (1000, 460)
    assert (out / "frames.png").stat().st_size > 10_000
    summary = json.loads((out / "explanation.json").read_text())
    assert summary["windows"] == [[0, 16], [8, 24], [16, 32], [24, 40]]
    assert summary["layers"] == ["conv1", "conv2", "conv3", "conv4"]


def test_explain_function_returns_maps_in_frame_geometry(synthetic_video, small_checkpoint):
    res = explain_video(synthetic_video, "small-synthetic", checkpoint=small_checkpoint, layers=["conv3,conv4"],
                            rule="gradcam", target=2, progress=False)
    assert res["frames"].shape == (40, 48, 80, 3)
    assert res["maps"].shape == (1, 1, 40, 64, 64)  # model resolution (short side 48 -> 64, crop 64)
    assert res["target"] == 2 and res["layers"] == ["conv3", "conv4"]
    assert res["boxes"].shape == (40, 4) and res["curve"].shape == (40,)
    assert res["files"] == {}


def test_demo_quick_end_to_end(small_checkpoint, tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--quick", "--checkpoint", str(small_checkpoint), "--out", str(out), "--no-progress"]) == 0
    report = (out / "report.md").read_text()
    assert "| GradCAM | conv4 |" in report and "| 3DCam | conv1+conv2+conv3+conv4 |" in report
    for name in ("fig_layers", "fig_gradcam_vs_3dcam", "fig_top3_counterfactual", "fig_temporal"):
        path = out / f"{name}.png"
        assert path.stat().st_size > 20_000, name
        assert f"({name}.png)" in report
    w, h = _png_size(out / "fig_layers.png")
    assert w == 1320 and h == 940  # 8 frames x 6 rows (input, conv1..conv4, aggregate) + title
    # one clip per class present in the 10 test clips (16 frames each), input | GradCAM | 3DCam
    metrics = json.loads((out / "metrics.json").read_text())
    n_frames = _decoded_frames(out / "attention.gif")
    assert n_frames % 16 == 0 and n_frames >= 16
    assert _decoded_frames(out / "attention.mp4") == n_frames
    assert 0.0 <= metrics["metrics"]["3DCam"]["pointing"] <= 1.0


def test_evaluate_synthetic(small_checkpoint, tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["evaluate", "--dataset", "synthetic", "--model", "small-synthetic", "--checkpoint", str(small_checkpoint),
            "--max-videos", "4", "--out", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "GradCAM (conv4)" in printed and "3DCam, all layers (sum)" in printed and "3DCam, conv2" in printed
    results = json.loads((out / "localization.json").read_text())
    assert results["3dcam_sum"]["frames"] == 4 * 16
    assert (out / "localization.md").read_text().startswith("Localization on synthetic")


# ---------------------------------------------------------------------------------------------
# real data: I3D on the UCF101 clip
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.data
def test_explain_i3d_on_the_ucf101_clip(shared_data, tmp_path, capsys):
    from captum_3dcam.models.checkpoints import find_i3d_checkpoint

    try:
        find_i3d_checkpoint()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    video = shared_data / "ucf101_24" / "v_Basketball_g01_c01.avi"
    out = tmp_path / "i3d"
    argv = ["explain", str(video), "--model", "i3d-kinetics400", "--max-frames", "12", "--layers", "Mixed_4f",
            "Mixed_5c", "--no-gif", "--out", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    top5 = json.loads((out / "top5.json").read_text())
    assert len(top5) == 5 and any("basketball" in r["label"] for r in top5)
    boxes = json.loads((out / "boxes.json").read_text())
    assert boxes["frame_size"] == {"height": 240, "width": 320} and len(boxes["boxes"]) == 12
    assert _decoded_frames(out / "overlay.mp4") == 12


@pytest.mark.parametrize("preset", [None, "paper", "strict"])    # None: the command's default, LOCALIZE
def test_explain_writes_the_preset_it_used(synthetic_video, small_checkpoint, tmp_path, preset):
    from captum_3dcam.attr.presets import get_preset

    chosen = get_preset(preset or "localize")
    rule, normalize = chosen["attribute"]["layer_rule"], chosen["attribute"]["normalize_layers"]
    threshold, region = chosen["boxes"]["threshold"], chosen["boxes"]["region"]
    relative_to = chosen["boxes"].get("relative_to", "max")
    out = tmp_path / "explained"
    argv = ["explain", str(synthetic_video), "--model", "small-synthetic", "--checkpoint", str(small_checkpoint),
            "--clip-len", "16", "--stride", "8", "--out", str(out), "--no-progress", "--no-gif", "--no-mp4"]
    assert cli.main(argv + ([] if preset is None else ["--preset", preset])) == 0
    summary = json.loads((out / "explanation.json").read_text())
    assert summary["preset"] == (preset or "localize")
    assert (summary["rule"], summary["normalize_layers"], summary["threshold"], summary["region"],
            summary["relative_to"]) == (rule, normalize, threshold, region, relative_to)
    assert summary["attribute"] == {**chosen["attribute"], "layer_rule": rule}   # gate, margin and all
    assert cli.main(argv + ["--preset", preset or "localize", "--rule", "layercam", "--threshold", "0.3"]) == 0
    summary = json.loads((out / "explanation.json").read_text())   # explicit options win over the preset
    assert (summary["rule"], summary["threshold"]) == ("layercam", 0.3)


def test_evaluate_adds_and_names_the_preset_row(tmp_path, capsys, small_checkpoint):
    argv = ["evaluate", "--dataset", "synthetic", "--checkpoint", str(small_checkpoint), "--max-videos", "4",
            "--preset", "strict", "--no-progress"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "preset `strict`" in printed and "union" in printed
