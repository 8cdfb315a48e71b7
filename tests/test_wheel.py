"""A wheel that works: built from the sources, installed in a fresh venv outside the checkout, run.

What CI's wheel step does, in one slow test: ``pip wheel`` (no network: ``--no-build-isolation``
with the installed setuptools), check that every module of the package is inside, install it with
``--no-deps`` into a fresh venv whose ``.pth`` file adds this interpreter's package folders (torch,
captum and the extras come from the environment the tests run in: a venv, a conda env or the system
Python; the wheel's own ``captum_3dcam`` must win over the checkout's), and from a
temporary folder run ``captum-3dcam --version``, ``captum-3dcam demo --quick`` and
``captum-3dcam evaluate --dataset synthetic --max-videos 4``.
"""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _run(argv, cwd, env, timeout=900):
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, argv))}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def _dependency_dirs():
    """This interpreter's package folders (torch, captum, ...), whatever it is: the system Python, a
    venv (whose ``--system-site-packages`` would reach the *base* interpreter, not this one) or a conda
    env. The checkout itself is left out: the wheel must be what gets imported."""
    out = []
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if path.is_dir() and path.name in ("site-packages", "dist-packages") and path not in out:
            out.append(path)
    return [p for p in out if p != REPO_ROOT]


def _venv_seeing_this_environment(venv: Path, cwd: Path) -> Path:
    """A fresh venv (no ``--system-site-packages``) whose ``.pth`` file appends this interpreter's package
    folders after its own site-packages; returns its ``bin`` folder."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=cwd, env=os.environ.copy())
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    site = _run([str(bin_dir / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                cwd, os.environ.copy()).stdout.strip()
    (Path(site) / "_outer_environment.pth").write_text("".join(f"{p}\n" for p in _dependency_dirs()))
    return bin_dir


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    pytest.importorskip("setuptools")
    src = tmp_path_factory.mktemp("src")
    for name in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO_ROOT / name, src / name)
    shutil.copytree(REPO_ROOT / "captum_3dcam", src / "captum_3dcam", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)],
         cwd=src, env=os.environ.copy(), timeout=600)
    (path,) = dist.glob("captum_3dcam-*.whl")
    return path


@pytest.mark.slow
def test_wheel_holds_every_module_and_the_command(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "captum_3dcam").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "captum-3dcam = captum_3dcam.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
    assert not any(n.startswith(("tests/", "benchmarks/", "examples/")) for n in names)


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    bin_dir = _venv_seeing_this_environment(venv, tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(CAPTUM_3DCAM_CACHE=str(tmp_path / "cache"), MPLBACKEND="Agg")
    _run([sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "-q", "--no-deps", "--no-index",
          str(wheel)],
         cwd=tmp_path, env=env)
    work = tmp_path / "work"
    work.mkdir()
    where = _run([str(bin_dir / "python"), "-c", "import captum_3dcam; print(captum_3dcam.__file__)"], work, env)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # the wheel, not the checkout
    script = str(bin_dir / "captum-3dcam")
    version = _run([script, "--version"], work, env)
    assert version.stdout.startswith("captum-3dcam ")
    _run([script, "demo", "--quick", "--checkpoint", "quick.pt", "--out", "demo", "-q"], work, env)
    assert (work / "demo" / "report.md").is_file() and (work / "demo" / "fig_layers.png").is_file()
    evaluated = _run([script, "evaluate", "--dataset", "synthetic", "--max-videos", "4", "--checkpoint", "quick.pt",
                      "--out", "eval", "-q"], work, env)
    assert "3DCam, all layers (sum)" in evaluated.stdout and (work / "eval" / "localization.json").is_file()
