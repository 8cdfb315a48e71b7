"""Shared by the benchmarks that time the command line in subprocesses (explain_dataset, train_ddp):
the environment, a timed run, and the command as written in RESULTS.md. Not here: what is measured."""
import os
import subprocess
import time
from pathlib import Path

__all__ = ["ENV", "REPO", "run_timed", "shown"]

REPO = Path(__file__).resolve().parents[1]
#: one thread per process (2 shared cores), the checkout importable, no progress bars in captured output
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "CAPTUM_3DCAM_PROGRESS": "0"}


def run_timed(cmd: list) -> float:
    """Run ``cmd`` in the repository with :data:`ENV`; its wall-clock seconds, or RuntimeError with its stderr."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def shown(cmd: list, rename=lambda word: word) -> str:
    """``cmd`` as RESULTS.md shows it: ``python -m captum_3dcam ...`` or ``torchrun ...``, ``--out DIR``;
    ``rename`` rewrites single words first (e.g. a temporary checkpoint path)."""
    text = " ".join(rename(w) for w in cmd[1:]).replace("-m torch.distributed.run", "torchrun")
    return ("python " + text if text.startswith("-m captum") else text).split(" --out ")[0] + " --out DIR"
