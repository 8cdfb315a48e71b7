"""No code runs from a data file: every pickle of the package and the benchmarks goes through the one
restricted unpickler (``captum_3dcam._safe_load``), every torch checkpoint through
``torch.load(weights_only=True)``. A crafted file is refused at every entry point (library, command
line, benchmark) with a clear message, its command never runs, and no message suggests
``weights_only=False``. Python 2 annotation pickles (act-detector, ``pyannot.pkl``) still load."""
import ast
import importlib.util
import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from captum_3dcam import cli
from captum_3dcam._safe_load import CheckpointError, UnsafePickleError, load_numpy_pickle, torch_load_weights_only
from captum_3dcam.datasets import (JHMDB, UCF101_24, ActDetectorGT, load_act_detector_gt, load_pyannot,
                                   read_annotation_pickle)
from captum_3dcam.models import UnsafeCheckpointError, load_hara_checkpoint, resnext3d, resnext3d_from_checkpoint
from captum_3dcam.models.checkpoints import read_torch_checkpoint
from captum_3dcam.models.i3d import i3d_kinetics400
from captum_3dcam.models.small_checkpoint import load_small_checkpoint
from captum_3dcam.models.train_checkpoint import load_checkpoint
from captum_3dcam.video.io import save_mp4

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN_ADVICE = ("weights_only=False", "weights_only` set to `False", "weights_only set to False")


# ------------------------------------------------------------------ crafted files
class RunsCommand:
    """Unpickling this runs ``touch marker`` through ``os.system`` (with plain ``pickle.load``)."""

    def __init__(self, marker, call=os.system):
        self.marker, self.call = str(marker), call

    def __reduce__(self):
        if self.call is os.system:
            return (os.system, (f"touch {self.marker}",))
        return (self.call, (f"open({self.marker!r}, 'w').close()",))


def _gt_layout(payload):
    """An act-detector GT dict (a valid layout) carrying ``payload`` in place of a tube."""
    name = "brush_hair/v1"
    return {"labels": ["brush_hair"], "gttubes": {name: {0: [payload]}}, "nframes": {name: 4},
            "train_videos": [[], [], []], "test_videos": [[name]] * 3, "resolution": {name: (8, 8)}}


def _persistent_id_pickle():
    import io

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return "tensor-0" if isinstance(obj, np.ndarray) else None

    buf = io.BytesIO()
    P(buf, protocol=2).dump({"x": np.zeros(2)})
    return buf.getvalue()


def _codecs_abuse():
    # _codecs.encode is allowed only as str -> bytes: any other use is refused
    return b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00xX\x06\x00\x00\x00rot_13\x86R."


CRAFTED = {
    "os.system, protocol 4": lambda m: pickle.dumps(_gt_layout(RunsCommand(m)), protocol=4),
    "os.system, protocol 2": lambda m: pickle.dumps(_gt_layout(RunsCommand(m)), protocol=2),
    "os.system, protocol 0": lambda m: pickle.dumps(_gt_layout(RunsCommand(m)), protocol=0),
    "builtins.exec": lambda m: pickle.dumps(_gt_layout(RunsCommand(m, call=exec))),
    "builtins.eval at top level": lambda m: pickle.dumps(RunsCommand(m, call=eval)),
    "object array": lambda m: pickle.dumps(_gt_layout(np.array([1, "x"], dtype=object))),
    "persistent id": lambda m: _persistent_id_pickle(),
    "_codecs.encode abuse": lambda m: _codecs_abuse(),
}


@pytest.fixture(params=sorted(CRAFTED))
def crafted(request, tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pkl"
    path.write_bytes(CRAFTED[request.param](marker))
    yield path, marker
    assert not marker.exists(), "the crafted pickle ran its command"


def _clean_message(exc: BaseException, *words):
    text = str(exc)
    for word in words:
        assert word in text, (word, text)
    for chained in (exc, exc.__cause__):
        if chained is not None:
            assert not any(a in str(chained) for a in FORBIDDEN_ADVICE), str(chained)


def _benchmark():
    spec = importlib.util.spec_from_file_location("_bench_localization_safety", REPO / "benchmarks" / "localization.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _jhmdb_root(tmp_path, gt_bytes=None):
    root = tmp_path / "JHMDB"
    (root / "Frames").mkdir(parents=True)
    if gt_bytes is not None:
        (root / "JHMDB-GT.pkl").write_bytes(gt_bytes)
    return root


ENTRY_POINTS = {
    "load_numpy_pickle": lambda p, tmp: load_numpy_pickle(p),
    "read_annotation_pickle": lambda p, tmp: read_annotation_pickle(p),
    "ActDetectorGT.load": lambda p, tmp: ActDetectorGT.load(p),
    "load_act_detector_gt": lambda p, tmp: load_act_detector_gt(p),
    "JHMDB(gt=...)": lambda p, tmp: JHMDB(_jhmdb_root(tmp), gt=p),
    "JHMDB(root with JHMDB-GT.pkl)": lambda p, tmp: JHMDB(_jhmdb_root(tmp, p.read_bytes())),
    "UCF101_24": lambda p, tmp: UCF101_24(tmp, p),
    "load_pyannot": lambda p, tmp: load_pyannot(p),
    "benchmarks/localization.py load_gttubes": lambda p, tmp: _benchmark().load_gttubes(p, "v", 4),
    "i3d_kinetics400(checkpoint=...)": lambda p, tmp: i3d_kinetics400(checkpoint=p),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_crafted_pickle_is_refused_at_every_library_entry_point(entry, crafted, tmp_path):
    path, marker = crafted
    with pytest.raises(UnsafePickleError) as info:
        ENTRY_POINTS[entry](path, tmp_path)
    shown = "JHMDB-GT.pkl" if "root with" in entry else str(path)
    _clean_message(info.value, shown, "allowed")
    assert isinstance(info.value, ValueError) and isinstance(info.value, pickle.UnpicklingError)
    assert UnsafeCheckpointError is UnsafePickleError  # the old public name still works


def test_refusal_names_what_the_pickle_asked_for(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_gt_layout(RunsCommand(marker))))
    with pytest.raises(UnsafePickleError) as info:
        ActDetectorGT.load(path)
    _clean_message(info.value, "gt:", "posix.system", "nothing was executed")
    assert not marker.exists()


def _evaluate_argv(dataset, root, *extra):
    return ["evaluate", "--dataset", dataset, "--root", str(root), "--model", "small-synthetic", "--no-progress",
            *extra]


CLI_CASES = {
    "evaluate jhmdb --annotations": lambda tmp, p: _evaluate_argv("jhmdb", _jhmdb_root(tmp), "--annotations", str(p)),
    "evaluate jhmdb, root/JHMDB-GT.pkl": lambda tmp, p: _evaluate_argv("jhmdb", _jhmdb_root(tmp, p.read_bytes())),
    "evaluate ucf101-24 --annotations": lambda tmp, p: _evaluate_argv("ucf101-24", tmp, "--annotations", str(p)),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_crafted_annotations_on_the_command_line(case, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CAPTUM_3DCAM_CACHE", str(tmp_path / "cache"))
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil-GT.pkl"
    path.write_bytes(pickle.dumps(_gt_layout(RunsCommand(marker))))
    assert cli.main(CLI_CASES[case](tmp_path, path)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("captum-3dcam evaluate: error:") and "posix.system" in err and "nothing was executed" in err
    assert not any(a in err for a in FORBIDDEN_ADVICE)
    assert not marker.exists()


# ------------------------------------------------------------------ torch checkpoints
@pytest.fixture
def crafted_torch(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "epoch": 1, "extra": RunsCommand(marker),
                "arch": "resnext-50", "state_dict": {"fc.weight": torch.zeros(4, 2048)}}, path)
    yield path, marker
    assert not marker.exists(), "the crafted checkpoint ran its command"


TORCH_ENTRY_POINTS = {
    "torch_load_weights_only": lambda p: torch_load_weights_only(p),
    "training.load_checkpoint": lambda p: load_checkpoint(p),
    "read_torch_checkpoint": lambda p: read_torch_checkpoint(p),
    "load_hara_checkpoint": lambda p: load_hara_checkpoint(torch.nn.Linear(1, 1), p),
    "resnext3d(checkpoint=...)": lambda p: resnext3d(depth=50, num_classes=4, checkpoint=p),
    "resnext3d_from_checkpoint": lambda p: resnext3d_from_checkpoint(p),
    "load_small_checkpoint": lambda p: load_small_checkpoint(p),
}


@pytest.mark.parametrize("entry", sorted(TORCH_ENTRY_POINTS))
def test_crafted_torch_checkpoint_is_refused_without_torchs_advice(entry, crafted_torch):
    path, _ = crafted_torch
    with pytest.raises(CheckpointError) as info:
        TORCH_ENTRY_POINTS[entry](path)
    _clean_message(info.value, str(path), "weights_only=True", "posix.system", "nothing was executed")
    assert info.value.__cause__ is None and info.value.__suppress_context__  # torch's advice is not chained


@pytest.mark.parametrize("command", ["explain", "evaluate", "demo"])
def test_crafted_checkpoint_on_the_command_line(command, crafted_torch, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CAPTUM_3DCAM_CACHE", str(tmp_path / "cache"))
    path, _ = crafted_torch
    video = tmp_path / "clip.mp4"  # a real video: the cheap checks (decoding it) come before the weights load
    save_mp4(torch.randint(0, 255, (8, 32, 32, 3), dtype=torch.uint8), video, fps=8)
    argv = {
        "explain": ["explain", str(video), "--model", "small-synthetic"],
        "evaluate": ["evaluate", "--dataset", "synthetic", "--model", "small-synthetic", "--max-videos", "1"],
        "demo": ["demo", "--quick"],
    }[command] + ["--checkpoint", str(path), "--out", str(tmp_path / "out"), "--no-progress"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "weights_only=True" in err and "posix.system" in err
    assert not any(a in err for a in FORBIDDEN_ADVICE)


def test_garbage_torch_file_reason_without_torchs_advice(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"\x80\x02not a checkpoint")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    _clean_message(info.value, "checkpoint:", "could not read", str(path))


# ------------------------------------------------------------------ nothing else reads pickles
def _sources():
    files = sorted((REPO / "captum_3dcam").rglob("*.py")) + sorted((REPO / "benchmarks").rglob("*.py"))
    files += sorted((REPO / "examples").glob("*.py"))
    return [f for f in files if f.name != "_safe_load.py"]


def _notebook_code():
    for nb in sorted((REPO / "examples").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        yield nb, "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


UNSAFE_CALLS = {("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("torch", "load"),
                ("np", "load"), ("numpy", "load"), ("joblib", "load"), ("dill", "load")}


def _unsafe_calls(source: str):
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            if (node.func.value.id, node.func.attr) in UNSAFE_CALLS:
                found.append(f"{node.func.value.id}.{node.func.attr} (line {node.lineno})")
    return found


def test_only_the_safe_loader_reads_pickles_or_torch_files():
    bad = {str(f.relative_to(REPO)): _unsafe_calls(f.read_text()) for f in _sources()}
    for nb, code in _notebook_code():
        bad[str(nb.relative_to(REPO))] = _unsafe_calls("\n".join(
            line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))))
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"read pickles/torch files through captum_3dcam._safe_load, not directly: {bad}"


def test_no_source_suggests_loading_unsafely():
    files = _sources() + [REPO / "captum_3dcam" / "_safe_load.py", REPO / "README.md"]
    files += sorted((REPO / "docs").glob("*.md")) + sorted((REPO / "examples").glob("*.ipynb"))
    hits = [str(f.relative_to(REPO)) for f in files if any(a in f.read_text() for a in FORBIDDEN_ADVICE)]
    assert not hits


# ------------------------------------------------------------------ Python 2 pickles still load
def _py2(obj) -> bytes:
    """A protocol-2 pickle as Python 2 writes it: ``str`` as BINSTRING, numpy's raw data as a str."""

    def string(b):
        b = b.encode("latin1") if isinstance(b, str) else b
        return (b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + struct.pack("<i", len(b))) + b

    def tup(items):
        body = b"".join(dump(i) for i in items)
        return {0: b")", 1: body + b"\x85", 2: body + b"\x86", 3: body + b"\x87"}.get(len(items), b"(" + body + b"t")

    def dump(o):
        if o is None:
            return b"N"
        if isinstance(o, bool):
            return b"\x88" if o else b"\x89"
        if isinstance(o, (int, np.integer)):
            return b"K" + bytes([int(o)]) if 0 <= o < 256 else b"J" + struct.pack("<i", int(o))
        if isinstance(o, str):
            return string(o)
        if isinstance(o, tuple):
            return tup(o)
        if isinstance(o, list):
            return b"](" + b"".join(map(dump, o)) + b"e"
        if isinstance(o, dict):
            return b"}(" + b"".join(dump(k) + dump(v) for k, v in o.items()) + b"u"
        if isinstance(o, np.ndarray):
            dt = o.dtype
            dtype = (b"cnumpy\ndtype\n" + tup((dt.str[1:], 0, 1)) + b"R"
                     + tup((3, "<" if dt.itemsize > 1 else "|", None, None, None, -1, -1, 0)) + b"b")
            head = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + tup((0,)) + string("b") + b"\x87R"
            return head + b"(" + dump(1) + tup(o.shape) + dtype + b"\x89" + string(o.astype(dt.newbyteorder("<")).tobytes()) + b"tb"
        raise TypeError(type(o))

    return b"\x80\x02" + dump(obj) + b"."


def test_python2_act_detector_pickle_loads(tmp_path):
    tube = np.array([[1, 188, 101, 235, 179], [2, 189, 100, 236, 180]], dtype=np.float32)  # bytes >= 0x80
    data = _gt_layout(tube)
    path = tmp_path / "JHMDB-GT.pkl"
    path.write_bytes(_py2(data))
    with pytest.raises(Exception):  # what Python 3's default (ASCII) decoding would do with it
        pickle.loads(path.read_bytes())
    gt = ActDetectorGT.load(path)
    torch.testing.assert_close(gt.videos["brush_hair/v1"].tubes[0], torch.from_numpy(tube))
    assert gt.labels == ["brush_hair"] and gt.videos["brush_hair/v1"].resolution == (8, 8)
    boxes = _benchmark().load_gttubes(path, "brush_hair/v1", 4)
    torch.testing.assert_close(boxes[:2], torch.from_numpy(tube[:, 1:]))


def test_python2_pyannot_pickle_loads(tmp_path):
    boxes = np.array([[250, 10, 20, 30], [251, 11, 21, 31]], dtype=np.uint8)  # uint8: cast before adding
    data = {"Basketball/v_Basketball_g01_c01": {"label": 0, "numf": 5, "annotations": [
        {"label": 0, "sf": 1, "ef": 3, "boxes": boxes}]}}
    path = tmp_path / "pyannot.pkl"
    path.write_bytes(_py2(data))
    ann = load_pyannot(path)["Basketball/v_Basketball_g01_c01"]
    torch.testing.assert_close(ann.tubes[0][0], torch.tensor([2.0, 249, 9, 269, 39]))


def test_the_shared_annotation_files_load_identically(shared_data):
    files = sorted((shared_data / "ucf101_24").glob("*.pkl"))
    assert files
    for path in files:
        with open(path, "rb") as f:  # our own test data: trusted, compared against
            expected = pickle.load(f, encoding="latin1")
        got = read_annotation_pickle(path)
        assert repr(got) == repr(expected), path
