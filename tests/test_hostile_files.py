"""Hostile files, checkpoints and training runs: each case ends in one clear error that names the file
and the field (or in a complete model), at once: never a hang, a ``RecursionError``, a crash, an
allocation of the size a file asks for, a silent NaN, or a half-trained model used as a finished one.

1. pickles/torch files that share one object 2**40 ways, refer to themselves, nest 200000 deep, hold
   too many objects, or ask numpy to allocate or to read bytes as object pointers;
2. a ``captum-3dcam train`` checkpoint whose description asks for 10**8 classes or 2e6 channels;
3. training checkpoints with wrong fields (``history=5``, ``epoch='abc'``, ``epoch=-5``, a wrong
   ``rng_state``, optimizer / scheduler states of the wrong kind);
4. ``train --out`` a file or an unwritable folder; 5. seeds outside ``[0, 2**32 - 1]``;
6. ``--lr inf``, a learning rate that blows the weights up, NaN clips;
7. the small model's cache after an interrupted run.
"""
import contextlib
import io
import math
import os
import pickle
import re
import shutil
import signal
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import captum_3dcam._untrusted as untrusted
import captum_3dcam.training.small_recipe as small_recipe
from captum_3dcam import cli
from captum_3dcam._safe_load import CheckpointError, UnsafePickleError, load_numpy_pickle, torch_load_weights_only
from captum_3dcam.errors import Captum3DCamError
from captum_3dcam.models.i3d import i3d_kinetics400
from captum_3dcam.models.registry import load_model
from captum_3dcam.models.small import Small3DCNN
from captum_3dcam.models.small_checkpoint import default_small_checkpoint, load_small_checkpoint
from captum_3dcam.training.small_recipe import load_or_train_small_model, train_small_model
from captum_3dcam.training.recognition import run_train
from captum_3dcam.models.train_checkpoint import save_checkpoint
from captum_3dcam.training.loop import TrainConfig, TrainingDivergedError, train
from captum_3dcam.models.train_checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTUM_3DCAM_CACHE", str(tmp_path / "cache"))


@contextlib.contextmanager
def within(seconds: float):
    """Fail (instead of hanging) when the body runs longer than ``seconds`` (interrupts Python loops)."""
    def timeout(signum, frame):
        raise TimeoutError(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    start = time.perf_counter()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.perf_counter() - start < seconds


def one_line(capsys, command, *needles):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith(f"captum-3dcam {command}: error:"), err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


# ================================================================== 1. pickles and torch files
def shared_lists(n: int = 40) -> bytes:
    """``n`` lists, each holding the previous one twice: 2**n paths, n + 1 objects, ~300 bytes."""
    ops = [b"\x80\x02]q\x00"]
    for i in range(1, n + 1):
        ops.append(b"](h" + bytes([i - 1]) + b"h" + bytes([i - 1]) + b"eq" + bytes([i]))
    return b"".join(ops) + b"."


def deep_lists(n: int = 200_000) -> bytes:
    """A list in a list ... ``n`` deep (``pickle.dumps`` itself could not write it)."""
    return b"\x80\x02" + b"]" * n + b"a" * (n - 1) + b"."


def self_referential() -> bytes:
    a = []
    a.append(a)
    return pickle.dumps(a, protocol=2)


def shared_flax(n: int = 40) -> bytes:
    """An I3D-looking ``{"params", "batch_stats"}`` whose dicts share one sub-tree 2**n ways."""
    d = {"Conv_0": {"kernel": np.zeros((1, 1, 1, 1, 1), np.float32)}}
    for _ in range(n):
        d = {"a": d, "b": d}
    return pickle.dumps({"params": d, "batch_stats": {}}, protocol=2)


def cyclic_flax() -> bytes:
    d = {"batch_stats": {}}
    d["params"] = d
    return pickle.dumps(d, protocol=2)


PICKLES = {  # name: (bytes, what load_numpy_pickle does: None = loads, else a words of its error)
    "2**40 shared paths": (shared_lists, None),
    "a self-referential list": (self_referential, None),
    "200000-deep lists": (deep_lists, "too deeply nested"),
    "a Flax tree sharing dicts 2**40 ways": (shared_flax, None),
    "a Flax tree that contains itself": (cyclic_flax, None),
}


@pytest.mark.parametrize("case", sorted(PICKLES))
def test_hostile_pickle_structures_load_or_fail_at_once(case, tmp_path):
    make, error = PICKLES[case]
    path = tmp_path / "evil.pkl"
    path.write_bytes(make())
    with within(5):
        if error is None:
            load_numpy_pickle(path)
        else:
            with pytest.raises(UnsafePickleError, match=error) as info:
                load_numpy_pickle(path)
            assert str(path) in str(info.value)
    with within(5), pytest.raises((CheckpointError, UnsafePickleError)) as info:  # never a RecursionError
        i3d_kinetics400(checkpoint=path)
    assert str(path) in str(info.value) and isinstance(info.value, ValueError)


def test_too_many_objects_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(untrusted, "MAX_OBJECTS", 1000)
    path = tmp_path / "many.pkl"
    path.write_bytes(pickle.dumps(list(range(5000)), protocol=2))
    with pytest.raises(UnsafePickleError, match="too many objects") as info:
        load_numpy_pickle(path)
    assert str(path) in str(info.value)


class _Reduce:
    """Pickles as ``func(*args)`` (then ``BUILD`` with ``state`` when given): numpy's own ops, any arguments."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def _reconstruct():
    core = getattr(np, "_core", None) or np.core
    return core.multiarray._reconstruct


ALLOCATIONS = {  # a pickle of a few bytes asking numpy for memory: refused before numpy allocates it
    "numpy.ndarray called directly": (lambda: _Reduce(np.ndarray, ((2**27,), "b")), "numpy.ndarray directly"),
    "_reconstruct of a 128 MB shape": (lambda: _Reduce(_reconstruct(), (np.ndarray, (2**27,), b"b")),
                                      "more than the file could hold"),
    "array data shorter than its shape": (lambda: _Reduce(_reconstruct(), (np.ndarray, (0,), b"b"),
                                                          (1, (10**6,), np.dtype("f8"), False, b"xx")), "instead of"),
}


@pytest.mark.parametrize("case", sorted(ALLOCATIONS))
def test_pickle_cannot_make_numpy_allocate(case, tmp_path):
    make, words = ALLOCATIONS[case]
    path = tmp_path / "alloc.pkl"
    path.write_bytes(pickle.dumps(make(), protocol=2))
    with pytest.raises(UnsafePickleError, match=words) as info:
        load_numpy_pickle(path)
    assert str(path) in str(info.value)


def _object_array():
    """An object array of 10 items whose pickle holds none: numpy would read past the list."""
    return _Reduce(_reconstruct(), (np.ndarray, (0,), b"b"), (1, (10,), np.dtype("O"), False, []))


def _flagged_array():
    """Raw bytes under a dtype whose pickled flags say "holds objects": numpy would follow them as pointers."""
    flagged = _Reduce(np.dtype, ("V8", False, True), (3, "|", None, None, None, 8, 1, 63))
    return _Reduce(_reconstruct(), (np.ndarray, (0,), b"b"), (1, (2,), flagged, False, b"\0" * 16))


@pytest.mark.parametrize("make", [_object_array, _flagged_array])
def test_pickle_cannot_make_numpy_read_bytes_as_objects(make, tmp_path):
    """numpy trusts a pickle's dtype: both files crash the interpreter unless refused before numpy sees them
    (pytest's faulthandler then names this test)."""
    path = tmp_path / "objects.pkl"
    path.write_bytes(pickle.dumps(make(), protocol=2))
    with pytest.raises(UnsafePickleError, match="object or structured dtype|dtype state") as info:
        load_numpy_pickle(path)
    assert str(path) in str(info.value) and "allowed" in str(info.value)


def torch_file_with(pkl: bytes, path: Path) -> Path:
    """A ``torch.save`` zip whose ``data.pkl`` is ``pkl`` (torch.save itself could not write 200000 levels)."""
    buf = io.BytesIO()
    torch.save({"x": 1}, buf)
    buf.seek(0)
    with zipfile.ZipFile(buf) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(info, pkl if info.filename.endswith("data.pkl") else zin.read(info.filename))
    return path


@pytest.mark.parametrize("entry", ["torch_load_weights_only", "load_checkpoint"])
def test_a_deeply_nested_torch_file_fails_at_once(entry, tmp_path):
    """(Shared and cyclic structures load from torch files: every later walk is bounded, see 3.)"""
    path = torch_file_with(deep_lists(), tmp_path / "evil.pt")
    with within(5), pytest.raises(CheckpointError, match="too deeply nested") as info:
        {"torch_load_weights_only": torch_load_weights_only, "load_checkpoint": load_checkpoint}[entry](path)
    assert str(path) in str(info.value)


# ================================================================== a tiny run of captum-3dcam train, edited
TINY = dict(train_videos=10, test_videos=3, clip_len=8, batch_size=4, progress=False, device="cpu")
RESUME = ["--epochs", "2", "--train-videos", "10", "--test-videos", "3", "--clip-len", "8", "--batch-size", "4",
          "--device", "cpu", "--no-progress"]


@contextlib.contextmanager
def cache_in(folder: Path):
    """``$CAPTUM_3DCAM_CACHE`` = ``folder`` (for module fixtures, set up before the autouse one)."""
    old = os.environ.get("CAPTUM_3DCAM_CACHE")
    os.environ["CAPTUM_3DCAM_CACHE"] = str(folder)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("CAPTUM_3DCAM_CACHE")
        else:
            os.environ["CAPTUM_3DCAM_CACHE"] = old


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One epoch of Small3DCNN (no gates, SGD) on 10 tiny synthetic videos (seconds)."""
    out = tmp_path_factory.mktemp("run")
    with cache_in(tmp_path_factory.mktemp("cache")):
        run_train("synthetic", out=out, model="small", epochs=1, **TINY)
    return out


def edited_run(tiny_run, tmp_path, edit) -> Path:
    """A copy of the tiny run whose checkpoint ``edit(state)`` changed (in place)."""
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    edit(state)
    torch.save(state, out / "checkpoint.pt")
    return out


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def edit(state):
        d = state
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value(d[keys[-1]]) if callable(value) else value
    return edit


def _description(field, value):
    return _set("extra", "description", field, value)


# ================================================================== 2. sizes read from a checkpoint
DESCRIPTIONS = {
    "num_classes 1e8": (_description("num_classes", 10**8), "'num_classes'"),
    "num_classes a float": (_description("num_classes", 5.0), "'num_classes'"),
    "num_classes a bool": (_description("num_classes", True), "'num_classes'"),
    "a width of 2e6": (_description("model_kwargs", {"widths": [2_000_000, 16, 32, 64]}), "widths[0]"),
    "a width the weights do not have": (_description("model_kwargs", {"widths": [60_000, 60_000, 32, 64]}),
                                        "do not match"),
    "a gigantic input shape": (_description("input_shape", [3, 10**5, 10**5, 10**5]), "input_shape"),
    "a temporal factor of 1e9": (_description("temporal_factor", 10**9), "temporal_factor"),
    "labels of another length": (_description("labels", ["a"]), "'labels'"),
    "a resnext depth of 1e6": (_description("model_kwargs", {"depth": 10**6}), "model_kwargs"),
}


@pytest.mark.parametrize("case", sorted(DESCRIPTIONS))
def test_checkpoint_sizes_are_bounded_before_any_allocation(case, tiny_run, tmp_path):
    edit, words = DESCRIPTIONS[case]
    out = edited_run(tiny_run, tmp_path, edit)
    with within(10), pytest.raises(Captum3DCamError, match=re.escape(words)) as info:
        load_model("small", str(out / "checkpoint.pt"))
    assert str(out / "checkpoint.pt") in str(info.value)


@pytest.mark.parametrize("case", sorted(DESCRIPTIONS) + ["another input shape than the data's"])
def test_resuming_a_checkpoint_with_hostile_sizes_is_one_line(case, tiny_run, tmp_path, capsys):
    edit, words = DESCRIPTIONS.get(case) or (_description("input_shape", [3, 16, 64, 64]), "input_shape")
    out = edited_run(tiny_run, tmp_path, edit)
    with within(30):
        assert cli.main(["train", "--out", str(out), *RESUME]) == 2
    one_line(capsys, "train", words, str(out / "checkpoint.pt"))


@pytest.mark.parametrize("kwargs, words", [({"num_classes": 10**8, "widths": [2, 2, 2, 2]}, "num_classes"),
                                           ({"num_classes": 5, "widths": [2, 2, 2, 2_000_000]}, "widths[3]"),
                                           ({"num_classes": 5, "widths": [2, 2, 60_000, 60_000]}, "does not match"),
                                           ({"num_classes": 5, "depth": 3}, "model_kwargs")])
def test_small_model_sizes_are_bounded(kwargs, words, tmp_path):
    path = save_checkpoint(tmp_path / "small.pt", Small3DCNN(num_classes=5, widths=(2, 2, 2, 2)), epoch=1,
                           extra={"model": "Small3DCNN", "model_kwargs": kwargs})
    with within(10), pytest.raises(Captum3DCamError, match=re.escape(words)) as info:
        load_small_checkpoint(path)
    assert str(path) in str(info.value)


# ================================================================== 3. the fields a resumed run reads
def _param_group(key, value):
    return _set("optimizer", "param_groups", 0, key, value)


def _momentum(state):
    first = next(iter(state["optimizer"]["state"].values()))
    first["momentum_buffer"] = torch.zeros(3)


FIELDS = {
    "history=5": (_set("history", 5), "'history'"),
    "a history longer than the epochs": (_set("history", lambda h: h * 3), "'history'"),
    "a history record that is not a dict": (_set("history", [5]), "history[0]"),
    "epoch='abc'": (_set("epoch", "abc"), "'epoch'"),
    "epoch=-5": (_set("epoch", -5), "'epoch'"),
    "epoch=True": (_set("epoch", True), "'epoch'"),
    "epoch=10**30": (_set("epoch", 10**30), "'epoch'"),
    "rng_state of another size": (_set("rng_state", torch.zeros(10, dtype=torch.uint8)), "'rng_state'"),
    "rng_state a string": (_set("rng_state", "abc"), "'rng_state'"),
    "rng_state not a generator state": (_set("rng_state", (torch.arange(5056) % 256).to(torch.uint8)), "'rng_state'"),
    "model a list": (_set("model", [1, 2]), "'model'"),
    "extra a string": (_set("extra", "abc"), "'extra'"),
    "optimizer lr 'abc'": (_param_group("lr", "abc"), "lr"),
    "optimizer lr nan": (_param_group("lr", math.nan), "lr"),
    "optimizer lr 0": (_param_group("lr", 0.0), "lr"),
    "optimizer momentum a list": (_param_group("momentum", [1, 2]), "momentum"),
    "momentum buffer of another shape": (_momentum, "momentum_buffer"),
    "scheduler replacing its optimizer": (_set("scheduler", "optimizer", 5), "optimizer"),
    "scheduler step size 0": (_set("scheduler", "step_size", 0), "step_size"),
    "scheduler gamma inf": (_set("scheduler", "gamma", math.inf), "gamma"),
}


@pytest.mark.parametrize("case", sorted(FIELDS))
def test_wrong_checkpoint_fields_are_one_line_on_resume(case, tiny_run, tmp_path, capsys):
    edit, words = FIELDS[case]
    out = edited_run(tiny_run, tmp_path, edit)
    before = (out / "checkpoint.pt").read_bytes()
    with within(30):
        assert cli.main(["train", "--out", str(out), *RESUME]) == 2
    one_line(capsys, "train", words, str(out / "checkpoint.pt"))
    assert (out / "checkpoint.pt").read_bytes() == before  # refused before any epoch ran


@pytest.mark.parametrize("case", [c for c in sorted(FIELDS) if not c.startswith(("optimizer", "momentum", "scheduler"))])
def test_wrong_checkpoint_fields_are_refused_by_load_checkpoint(case, tiny_run, tmp_path):
    edit, words = FIELDS[case]
    path = edited_run(tiny_run, tmp_path, edit) / "checkpoint.pt"
    with pytest.raises(CheckpointError, match=re.escape(words)) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "field" in str(info.value)


def test_a_shared_structure_in_a_checkpoint_is_named_not_printed(tiny_run, tmp_path, capsys):
    shared = []
    for _ in range(40):
        shared = [shared, shared]
    out = edited_run(tiny_run, tmp_path, _set("extra", "run", "gates", shared))
    with within(30):
        assert cli.main(["train", "--out", str(out), *RESUME]) == 2
    err = one_line(capsys, "train", "gates")
    assert len(err) < 1000


# ================================================================== 4. --out checked before any training
def _never(*args, **kwargs):
    raise AssertionError("work started before --out was checked")


@pytest.mark.parametrize("case", ["an existing file", "a path under a file", "an unwritable folder"])
def test_train_out_is_checked_before_any_work(case, tmp_path, unwritable, capsys, monkeypatch):
    a_file = tmp_path / "taken.txt"
    a_file.write_text("x")
    out, words = {"an existing file": (a_file, "is a file"), "a path under a file": (a_file / "sub", "lies under"),
                  "an unwritable folder": (unwritable, "cannot write to")}[case]
    monkeypatch.setattr("captum_3dcam.training.recognition.training_data", _never)
    assert cli.main(["train", "--out", str(out), "--no-progress"]) == 2
    one_line(capsys, "train", "--out", words)
    with pytest.raises((NotADirectoryError, PermissionError), match="--out"):
        run_train("synthetic", out=out, progress=False)


# ================================================================== 5. seeds
@pytest.mark.parametrize("command", ["train", "demo"])
@pytest.mark.parametrize("value", ["-1", str(2**70), str(2**32), "1.5"])
def test_cli_seed_outside_the_range_is_a_usage_error(command, value, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("captum_3dcam.training.recognition.training_data", _never)
    monkeypatch.setattr("captum_3dcam.apps.demo.load_or_train_small_model", _never)
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--out", str(tmp_path / "o"), "--seed", value, "--no-progress"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) <= 2 and "--seed" in err and "4294967295" in err, err


SEED_CALLS = {
    "run_train": lambda s, tmp: run_train("synthetic", out=tmp / "o", seed=s, progress=False),
    "TrainConfig": lambda s, tmp: TrainConfig(seed=s),
    "train": lambda s, tmp: train(nn.Linear(2, 2), [(torch.zeros(2), 0)], seed=s, progress=False),
    "train_small_model": lambda s, tmp: train_small_model(None, seed=s, progress=False),
    "load_or_train_small_model": lambda s, tmp: load_or_train_small_model(tmp / "m.pt", seed=s, progress=False),
}


@pytest.mark.parametrize("seed", [-1, 2**32, 2**70, True, 1.0])
@pytest.mark.parametrize("call", sorted(SEED_CALLS))
def test_library_seed_outside_the_range_is_refused(call, seed, tmp_path, monkeypatch):
    monkeypatch.setattr("captum_3dcam.training.recognition.training_data", _never)
    monkeypatch.setattr(small_recipe, "SyntheticActions", _never)
    with pytest.raises(ValueError, match=r"seed: expected an integer in \[0, 4294967295\]"):
        SEED_CALLS[call](seed, tmp_path)
    TrainConfig(seed=2**32 - 1)  # the largest seed is fine


# ================================================================== 6. learning rates and non-finite training
@pytest.mark.parametrize("option", ["--lr", "--gamma", "--momentum", "--weight-decay"])
@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_cli_non_finite_rates_are_usage_errors(option, value, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("captum_3dcam.training.recognition.training_data", _never)
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--out", str(tmp_path / "o"), f"{option}={value}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert option in err and "finite" in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("field", ["lr", "gamma", "momentum", "weight_decay"])
@pytest.mark.parametrize("value", [math.inf, math.nan, "0.1"])
def test_library_non_finite_rates_are_refused(field, value):
    with pytest.raises(ValueError, match=f"{field}: expected a finite number"):
        TrainConfig(**{field: value})


def _clips(n=8, fill=None):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 4, 8, 8, generator=g)
    if fill is not None:
        x[:] = fill
    return [(x[i], i % 2) for i in range(n)]


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 8 * 8, 2))


@pytest.mark.parametrize("fill", [math.nan, math.inf])
def test_training_on_non_finite_clips_stops_before_the_weights_change(fill, tmp_path):
    net = _net()
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(TrainingDivergedError, match=r"epoch 1, step 1: the training loss is .* data .*--lr"):
        train(net, _clips(fill=fill), epochs=2, batch_size=4, progress=False, checkpoint=tmp_path / "c.pt")
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert not (tmp_path / "c.pt").exists()


@pytest.mark.parametrize("lr, words", [(1e38, r"\d+ weights are no longer finite"),
                                       (1e39, "the optimizer's update is not finite")])
def test_a_learning_rate_that_blows_the_weights_up_stops_training(lr, words, tmp_path):
    clips = [(x * 100, y) for x, y in _clips()]  # gradients of ~10: lr x gradient overflows float32
    with pytest.raises(TrainingDivergedError, match=rf"epoch 1, step 1: {words}.*--lr"):
        train(_net(), clips, epochs=2, batch_size=4, lr=lr, progress=False, checkpoint=tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()


def test_train_command_with_a_huge_lr_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--out", str(out), "--lr", "1e39", "--epochs", "1", "--train-videos", "4", "--test-videos", "1",
            "--clip-len", "8", "--batch-size", "4", "--device", "cpu", "--no-progress"]
    assert cli.main(argv) == 2
    one_line(capsys, "train", "epoch 1, step 1", "finite", "--lr")
    assert not (out / "checkpoint.pt").exists()


# ================================================================== 7. the small model's cache
RECIPE = dict(train_videos=5, test_videos=5, epochs=2, batch_size=5)


def _killed_after_first_epoch(monkeypatch):
    real = small_recipe.train

    def killed(*args, **kwargs):
        def kill(history):
            raise KeyboardInterrupt

        return real(*args, on_epoch_end=kill, **kwargs)

    monkeypatch.setattr(small_recipe, "train", killed)


def test_a_killed_run_leaves_no_model_and_is_finished_next_time(tmp_path, monkeypatch):
    path = tmp_path / "small.pt"
    _killed_after_first_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train_small_model(path, progress=False, **RECIPE)
    monkeypatch.undo()
    assert not path.exists() and path.with_name("small.pt.partial").is_file()
    model = load_or_train_small_model(path, progress=False, **RECIPE)
    state = load_checkpoint(path)
    assert state["epoch"] == 2 and state["extra"]["complete"] is True and len(state["history"]) == 2
    assert not path.with_name("small.pt.partial").exists() and not model.training


def _unfinished(state):  # what an interrupted run of an older version left at the model's path
    state["extra"] = {k: v for k, v in state["extra"].items() if k != "complete"}
    state["epoch"], state["history"] = 1, state["history"][:1]


CACHES = {
    "1 of 2 epochs, no mark": _unfinished,
    "all epochs but no mark": lambda s: s["extra"].pop("complete"),
    "marked but 1 of 2 epochs": lambda s: s.update(epoch=1, history=s["history"][:1]),
    "marked incomplete": lambda s: s["extra"].update(complete=False),
}


@pytest.fixture(scope="module")
def finished_small(tmp_path_factory):
    path = tmp_path_factory.mktemp("small") / "small.pt"
    with cache_in(tmp_path_factory.mktemp("cache")):
        train_small_model(path, progress=False, **RECIPE)
    return path


def _cache_like(finished_small, edit, path):
    state = torch.load(finished_small, weights_only=True)
    edit(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


@pytest.mark.parametrize("case", sorted(CACHES))
def test_an_unfinished_cache_is_never_used(case, finished_small, tmp_path):
    path = _cache_like(finished_small, CACHES[case], default_small_checkpoint())
    with pytest.raises(Captum3DCamError, match="unfinished") as info:
        load_small_checkpoint()
    assert str(path) in str(info.value) and "captum-3dcam demo" in str(info.value)
    with pytest.raises(Captum3DCamError, match="unfinished"):
        load_small_checkpoint(path)  # a file of train_small_model given by name: refused too


@pytest.mark.parametrize("case", sorted(CACHES) + ["unreadable"])
def test_an_unfinished_or_unreadable_cache_is_trained_to_the_end(case, finished_small, tmp_path):
    path = tmp_path / "small.pt"
    if case == "unreadable":
        path.write_bytes(b"\x80\x02garbage")
    else:
        _cache_like(finished_small, CACHES[case], path)
    with pytest.warns(UserWarning, match="retraining"):
        load_or_train_small_model(path, progress=False, **RECIPE)
    state = load_checkpoint(path)
    assert state["epoch"] == 2 and state["extra"]["complete"] is True


def test_explain_with_an_unfinished_cache_is_one_line(finished_small, tmp_path, capsys):
    pytest.importorskip("av")
    from captum_3dcam.datasets import SyntheticActions
    from captum_3dcam.video.io import save_mp4

    _cache_like(finished_small, _unfinished, default_small_checkpoint())
    clip = SyntheticActions(1, "test", seed=3, clips_per_video=2, size=(32, 32))[0][0]
    video = save_mp4(SyntheticActions.to_rgb(clip), tmp_path / "clip.mp4", fps=10)
    argv = ["explain", str(video), "--model", "small-synthetic", "--out", str(tmp_path / "out"), "--no-progress"]
    assert cli.main(argv) == 2
    one_line(capsys, "explain", "unfinished", str(default_small_checkpoint()))
