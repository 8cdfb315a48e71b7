"""Shared pytest fixtures: devices that skip cleanly, and the real data in ../shared/data."""
import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


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
