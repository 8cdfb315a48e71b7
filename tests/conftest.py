"""Shared pytest fixtures: devices that skip cleanly, the real data in ../shared/data, and the
hypothesis profiles (``HYPOTHESIS_PROFILE=quick``, the default: a few hundred examples per fuzz
test; ``HYPOTHESIS_PROFILE=ci-slow``: 2,000 per fuzz test (20,000+ cases over the 10 tests), for ``pytest -m slow tests/test_fuzz.py``)."""
import os
import tempfile
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]

try:  # hypothesis is a test dependency; without it the property tests skip themselves
    from hypothesis import HealthCheck, settings

    settings.register_profile("quick", max_examples=200, deadline=None, derandomize=True)
    settings.register_profile("ci-slow", max_examples=2_000, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))
except ImportError:  # pragma: no cover
    pass


def _shared_data_dir():
    env = os.environ.get("CAPTUM_3DCAM_DATA")
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    """Path to ``../shared/data``; the test is skipped where it is absent (a user's clone)."""
    path = _shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real test data not found at {path} (set CAPTUM_3DCAM_DATA)")
    return path


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    """Runs a test on the CPU and, where CUDA is available, on the GPU (skipped otherwise)."""
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("CUDA is not available")
    return torch.device(request.param)


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory):
    """A Small3DCNN trained for one epoch on 20 synthetic videos (seconds): the pipeline, not accuracy.
    Trained once per test session; tests read it and never write to it."""
    from captum_3dcam.models import QUICK_RECIPE
    from captum_3dcam.training.small_recipe import train_small_model

    path = tmp_path_factory.mktemp("model") / "small.pt"
    train_small_model(path, progress=False, **QUICK_RECIPE)
    return path


@pytest.fixture
def torch_hub(tmp_path, monkeypatch):
    """An empty torch hub cache (TORCH_HOME) for this test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture
def unwritable(tmp_path):
    """A folder nobody may create entries in (root ignores permissions: sysfs refuses even root)."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o500)
        yield folder / "out"
        folder.chmod(0o700)
        return
    for folder in (Path("/sys/fs"), Path("/proc/sys")):
        try:
            os.rmdir(tempfile.mkdtemp(dir=folder))
        except OSError:
            yield folder / "captum-3dcam-out"
            return
    pytest.skip("running as root with no folder that refuses writes")
