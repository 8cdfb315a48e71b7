"""Reliability v3 at the command line: cheap checks before the weights load, one line for every
failure (usage errors, a full disk, a read-only folder), seeds in range.

The hostile files and inputs have their own modules (``test_hostile_files.py``,
``test_hostile_inputs.py``, ``test_resume_hostile.py``).
"""
import dataclasses
import errno

import pytest
import torch

from captum_3dcam import cli
from captum_3dcam._utils import write_atomic
from captum_3dcam.cli._common import run_command
from captum_3dcam.errors import Captum3DCamError
from captum_3dcam.models import registry

av = pytest.importorskip("av")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTUM_3DCAM_CACHE", str(tmp_path / "cache"))


@pytest.fixture()
def weights_never_load(monkeypatch):
    """Every model's ``load`` fails the test: what is checked must be checked before it."""
    def boom(checkpoint):
        raise AssertionError("the weights were loaded before the cheap checks")

    for name, spec in list(registry.MODELS.items()):
        monkeypatch.setitem(registry.MODELS, name, dataclasses.replace(spec, load=boom))


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory):
    from captum_3dcam.video.io import save_mp4

    path = tmp_path_factory.mktemp("video") / "tiny.mp4"
    save_mp4(torch.randint(0, 255, (12, 32, 32, 3), dtype=torch.uint8), path, fps=8)
    return path


def _one_line(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize("model,layers", [("i3d-kinetics400", "Mixed_9z"), ("small-synthetic", "conv9")])
def test_a_bad_layer_name_is_refused_before_the_weights_load(weights_never_load, tiny_video, tmp_path, capsys,
                                                              model, layers):
    argv = ["explain", str(tiny_video), "--model", model, "--layers", layers, "--out", str(tmp_path / "o"), "-q"]
    assert cli.main(argv) == 2
    _one_line(capsys, "--layers", layers)


def test_an_undecodable_video_is_refused_before_the_weights_load(weights_never_load, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    assert cli.main(["explain", str(bad), "--model", "i3d-kinetics400", "--out", str(tmp_path / "o"), "-q"]) == 2
    _one_line(capsys, "broken.mp4")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
@pytest.mark.parametrize("command", [["explain", "{video}", "--model", "small-synthetic"],
                                     ["evaluate", "--dataset", "synthetic", "--max-videos", "2"]])
def test_cuda_without_cuda_is_refused_before_the_weights_load(weights_never_load, tiny_video, tmp_path, capsys,
                                                              command):
    argv = [a.format(video=tiny_video) for a in command] + ["--device", "cuda", "--out", str(tmp_path / "o"), "-q"]
    assert cli.main(argv) == 2
    _one_line(capsys, "CUDA")


def test_evaluate_refuses_a_bad_layer_before_the_weights_load(weights_never_load, tmp_path, capsys):
    argv = ["evaluate", "--dataset", "synthetic", "--max-videos", "2", "--layers", "conv9", "-q"]
    assert cli.main(argv) == 2
    _one_line(capsys, "--layers", "conv9")


@pytest.mark.parametrize("command", [["evaluate", "--dataset", "synthetic"], ["explain-dataset", "--dataset", "synthetic", "--out", "x"],
                                     ["demo"], ["train", "--dataset", "synthetic", "--out", "x"]])
@pytest.mark.parametrize("seed", ["-1", str(2**70), "abc"])
def test_seeds_out_of_range_name_the_option(command, seed, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(command + ["--seed", seed])
    assert stop.value.code == 2
    _one_line(capsys, "--seed", seed, "4294967295")


@pytest.mark.parametrize("argv,needles", [
    (["explain", "v.mp4", "--preset", "garbage"], ["--preset", "garbage", "strict"]),
    (["evaluate", "--dataset", "synthetic", "--preset", "x"], ["--preset", "strict"]),
    (["evaluate"], ["--dataset"]),
    (["nonsense"], ["nonsense", "explain"]),
])
def test_usage_errors_are_one_line(argv, needles, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    _one_line(capsys, *needles)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EDQUOT])
def test_os_errors_are_one_line_naming_the_file(code, capsys):
    def run(args):
        raise OSError(code, __import__("os").strerror(code), "runs/x/videos/a.json")

    assert run_command("explain-dataset", run, None) == 2
    _one_line(capsys, "captum-3dcam explain-dataset: error: runs/x/videos/a.json: ", __import__("os").strerror(code))


def test_a_full_disk_leaves_neither_half_a_file_nor_a_temporary(tmp_path, monkeypatch):
    target = tmp_path / "videos" / "a.json"
    target.parent.mkdir()
    target.write_text("old, complete")

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(type(target), "write_text", full)
    with pytest.raises(OSError):
        write_atomic(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old, complete"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.json"]


def test_a_read_only_output_folder_is_one_line(unwritable, tiny_video, weights_never_load, capsys):
    argv = ["explain", str(tiny_video), "--model", "small-synthetic", "--out", str(unwritable), "-q"]
    assert cli.main(argv) == 2
    _one_line(capsys, "--out")


def test_check_layer_names_needs_no_weights():
    with pytest.raises(Captum3DCamError, match="--layers.*Mixed_9z"):
        registry.check_layer_names(registry.MODELS["i3d-kinetics400"], ["Mixed_5c", "Mixed_9z"])
    registry.check_layer_names(registry.MODELS["i3d-kinetics400"], ["Mixed_5c", "backbone.Mixed_4f", "gates.0"])
    registry.check_layer_names(registry.MODELS["resnext101"], ["anything"])  # no skeleton: checked once loaded


def test_the_rules_of_explain_are_the_library_rules():
    from captum_3dcam.attr.rules import LAYER_RULES
    from captum_3dcam.cli.explain import RULES

    assert RULES == tuple(LAYER_RULES)
