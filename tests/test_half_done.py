"""Nothing half-done: a checkpoint that does not fit loads nothing (model, optimizer, scheduler, lazy
gates); every command that writes finds an unusable ``--out`` before any work, with one line and
exit status 2; sliding windows cover every frame or refuse."""

import pytest
import torch
from torch import nn

from captum_3dcam import cli
from captum_3dcam._safe_load import CheckpointError, load_state_dict_exact
from captum_3dcam._utils import check_output_dir
from captum_3dcam.models.gating import LayerwiseGatedClassifier
from captum_3dcam.models.small import Small3DCNN
from captum_3dcam.models.small_checkpoint import load_small_checkpoint
from captum_3dcam.models.train_checkpoint import load_checkpoint
from captum_3dcam.models.train_checkpoint import save_checkpoint
from captum_3dcam.training.loop import train
from captum_3dcam.video.windows import apply_sliding_windows, sliding_windows, stitch_windows

from test_invariants import assert_unchanged, snapshot

SHAPE = (3, 8, 32, 32)


def _model(seed=0, **kwargs):
    torch.manual_seed(seed)
    return Small3DCNN(**{"num_classes": 5, **kwargs}).eval()


def _optimizer_state(optimizer):
    state = optimizer.state_dict()
    return repr(state["param_groups"]), {k: {n: v.clone() if torch.is_tensor(v) else v for n, v in s.items()}
                                         for k, s in state["state"].items()}


def _stepped(model):
    """An SGD with momentum buffers, one step taken, and its StepLR."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, *SHAPE)).sum().backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, step_size=3)


# ------------------------------------------------------------------ checkpoints: all or nothing
def _checkpoint_of(tmp_path, source, state_edits=None):
    path = tmp_path / "ckpt.pt"
    optimizer, scheduler = _stepped(source)
    save_checkpoint(path, source, optimizer, scheduler, epoch=1)
    if state_edits:
        state = torch.load(path, weights_only=True)
        for key, edit in state_edits.items():
            state[key] = edit(state[key])
        torch.save(state, path)
    return path


def _drop_first(state):
    return {k: v for i, (k, v) in enumerate(state.items()) if i}


def _add_key(state):
    return {**state, "extra.weight": torch.zeros(1)}


def _not_a_tensor(state):
    return {**state, next(iter(state)): [1.0, 2.0]}


def _complex(state):
    key = next(k for k, v in state.items() if v.is_floating_point())
    return {**state, key: state[key].to(torch.complex64)}


MISMATCHES = {
    "another width (shape mismatch)": (dict(widths=(16, 32, 64, 64)), {}, ["shape mismatches", "checkpoint (64,"]),
    "more classes (fc shape)": (dict(num_classes=7), {}, ["fc.", "shape mismatches"]),
    "a key missing": ({}, dict(model=_drop_first), ["missing 1 keys"]),
    "an unexpected key": ({}, dict(model=_add_key), ["unexpected 1 keys: extra.weight"]),
    "a list instead of a tensor": ({}, dict(model=_not_a_tensor), ["not tensors"]),
    "complex weights": ({}, dict(model=_complex), ["complex entries"]),
    "optimizer of another model": ({}, dict(optimizer=lambda o: {**o, "param_groups": [
        {**o["param_groups"][0], "params": o["param_groups"][0]["params"][:-2]}]}), ["parameter groups hold"]),
    "optimizer not a state dict": ({}, dict(optimizer=lambda o: [1, 2]), ["'optimizer' is not an optimizer state"]),
    "scheduler not a dict": ({}, dict(scheduler=lambda s: 3), ["'scheduler' should be a dict"]),
}


@pytest.mark.parametrize("case", sorted(MISMATCHES))
def test_load_checkpoint_is_all_or_nothing(case, tmp_path):
    kwargs, edits, words = MISMATCHES[case]
    path = _checkpoint_of(tmp_path, _model(seed=1, **kwargs), edits)
    model = _model(seed=2)
    optimizer, scheduler = _stepped(model)
    before, opt_before, sched_before = snapshot(model), _optimizer_state(optimizer), scheduler.state_dict()
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, model, optimizer, scheduler)
    assert "nothing was loaded" in str(info.value) and str(path) in str(info.value)
    assert all(w in str(info.value) for w in words), str(info.value)
    assert_unchanged(model, before)
    assert _optimizer_state(optimizer)[0] == opt_before[0] and scheduler.state_dict() == sched_before
    for k, s in opt_before[1].items():
        assert torch.equal(_optimizer_state(optimizer)[1][k]["momentum_buffer"], s["momentum_buffer"])


def test_a_fitting_checkpoint_still_loads_everything(tmp_path):
    source = _model(seed=1)
    path = _checkpoint_of(tmp_path, source)
    model = _model(seed=2)
    optimizer, scheduler = _stepped(model)
    load_checkpoint(path, model, optimizer, scheduler)
    for a, b in zip(source.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)


def test_resuming_from_another_models_checkpoint_changes_nothing(tmp_path):
    from captum_3dcam.datasets import SyntheticActions

    path = _checkpoint_of(tmp_path, _model(seed=1, num_classes=7))
    model = _model(seed=2)
    before = snapshot(model)
    data = SyntheticActions(2, "train", seed=0, size=(32, 32), clip_len=8)
    with pytest.raises(CheckpointError, match="nothing was loaded"):
        train(model, data, epochs=1, batch_size=2, checkpoint=path, resume=True, progress=False)
    assert_unchanged(model, before)


def _gated(layers, lazy, seed=0):
    torch.manual_seed(seed)
    backbone = Small3DCNN(num_classes=5, widths=(4, 8, 8, 16)).eval()
    return LayerwiseGatedClassifier(backbone, layers, 5, **({} if lazy else {"input_shape": SHAPE})).eval()


def test_gated_checkpoint_of_other_layers_loads_nothing_into_an_eager_model(tmp_path):
    path = tmp_path / "gated.pt"
    save_checkpoint(path, _gated(["conv2", "conv4"], lazy=False, seed=1), epoch=1)
    model = _gated(["conv3", "conv4"], lazy=False, seed=2)  # gate 0 sees 8 channels, not 8 x T'
    before = snapshot(model)
    with pytest.raises(CheckpointError, match=r"gates\.0\.fc\.weight: checkpoint"):
        load_checkpoint(path, model)
    assert_unchanged(model, before)  # the backbone's weights were not copied either


def test_gated_checkpoint_into_a_lazy_model_all_or_nothing(tmp_path):
    path = tmp_path / "gated.pt"
    source = _gated(["conv2", "conv4"], lazy=False, seed=1)
    save_checkpoint(path, source, epoch=1)
    wrong = _gated(["conv2", "conv3", "conv4"], lazy=True, seed=2)
    backbone_before = {k: v.clone() for k, v in wrong.backbone.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"missing 2 keys: gates\.2\.fc\.weight"):
        load_checkpoint(path, wrong)
    assert not wrong.built and all(nn.parameter.is_lazy(p) for p in wrong.gates.parameters())
    assert all(torch.equal(v, wrong.backbone.state_dict()[k]) for k, v in backbone_before.items())
    lazy = _gated(["conv2", "conv4"], lazy=True, seed=3)
    load_checkpoint(path, lazy)  # a lazy model takes the checkpoint's gate sizes
    x = torch.randn(1, *SHAPE)
    torch.testing.assert_close(lazy(x), source(x))


def test_small_checkpoint_of_another_width_is_a_clear_error(tmp_path):
    path = tmp_path / "small.pt"
    model = _model(seed=1)
    save_checkpoint(path, model, epoch=1, extra={"model": "Small3DCNN", "model_kwargs": {"num_classes": 7}})
    with pytest.raises(CheckpointError, match=r"--checkpoint .* does not match Small3DCNN \(nothing was loaded\)"):
        load_small_checkpoint(path)


def test_load_state_dict_exact_leaves_the_model_on_any_mismatch():
    model, other = _model(seed=1), _model(seed=2, num_classes=7)
    before = snapshot(model)
    with pytest.raises(CheckpointError, match="nothing was loaded"):
        load_state_dict_exact(model, other.state_dict())
    with pytest.raises(CheckpointError, match="expected a state dict"):
        load_state_dict_exact(model, [1, 2])
    assert_unchanged(model, before)


# ------------------------------------------------------------------ --out checked before any work
def _out_cases(tmp_path, unwritable):
    a_file = tmp_path / "taken.txt"
    a_file.write_text("x")
    return {
        "an existing file": (str(a_file), ["--out", "is a file, expected a folder"]),
        "a path under a file": (str(a_file / "sub"), ["--out", "lies under", "which is a file"]),
        "an empty string": ("", ["--out", "empty string"]),
        "a folder without write permission": (str(unwritable), ["--out", "cannot write to"]),
    }


def _never(*args, **kwargs):
    raise AssertionError("work started before --out was checked")


COMMANDS = {
    "demo": (["demo", "--quick"], "captum_3dcam.apps.demo.load_or_train_small_model"),
    "explain": (["explain", "{video}", "--model", "small-synthetic"], "captum_3dcam.apps.explain.resolve_device"),
    "evaluate": (["evaluate", "--dataset", "synthetic", "--max-videos", "1"], "captum_3dcam.evaluation.dataset_items"),
}


@pytest.mark.parametrize("case", ["an existing file", "a path under a file", "an empty string",
                                  "a folder without write permission"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_unusable_out_is_one_line_before_any_work(command, case, tmp_path, unwritable, capsys, monkeypatch):
    monkeypatch.setenv("CAPTUM_3DCAM_CACHE", str(tmp_path / "cache"))
    if case == "a folder without write permission" and unwritable is None:
        pytest.skip("no unwritable folder")
    out, words = _out_cases(tmp_path, unwritable)[case]
    argv, first_work = COMMANDS[command]
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"never decoded")
    monkeypatch.setattr(first_work, _never)
    assert cli.main([a.format(video=video) for a in argv] + ["--out", out, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"captum-3dcam {command}: error: --out")
    assert all(w in err for w in words), err


def test_a_usable_out_is_neither_created_nor_left_with_a_probe(tmp_path):
    out = tmp_path / "new" / "deeper"
    assert check_output_dir(out) == out
    assert not (tmp_path / "new").exists() and list(tmp_path.iterdir()) == []
    existing = tmp_path / "existing"
    existing.mkdir()
    check_output_dir(existing)
    assert list(existing.iterdir()) == []


# ------------------------------------------------------------------ windows cover every frame
def test_stride_larger_than_the_window_is_refused_naming_the_skipped_frames():
    with pytest.raises(ValueError, match=r"stride: 10 is larger than clip_len=4, so frames 4\.\.9 would lie in no "
                                         r"window; use a stride of at most 4"):
        sliding_windows(20, 4, 10)
    assert sliding_windows(40, 40, 50) == [(0, 40)]  # one window holds the whole video: nothing skipped


def test_stitching_windows_that_leave_frames_out_is_refused():
    windows = [(0, 4), (10, 14), (16, 20)]
    with pytest.raises(ValueError, match="windows: 8 of 20 frames lie in no window"):
        stitch_windows(torch.ones(3, 1, 4, 2, 2), windows, 20)
    with pytest.raises(ValueError, match="num_frames: expected a positive int"):
        stitch_windows(torch.ones(1, 1, 4, 2, 2), [(0, 4)], True)


def test_apply_sliding_windows_refuses_before_running_fn():
    calls = []
    with pytest.raises(ValueError, match="stride: 10 is larger than clip_len=4"):
        apply_sliding_windows(lambda x: calls.append(x) or x, torch.zeros(1, 3, 20, 2, 2), 4, 10, progress=False)
    assert calls == []
    with pytest.raises(ValueError, match="fn: expected a tensor with a leading batch dimension of 1"):
        apply_sliding_windows(lambda x: x[0], torch.zeros(1, 3, 8, 2, 2), 4, 4, progress=False)


def test_explain_with_a_stride_larger_than_the_window_is_one_line(tmp_path, capsys, monkeypatch):
    pytest.importorskip("av")
    from captum_3dcam.datasets import SyntheticActions
    from captum_3dcam.models import QUICK_RECIPE
    from captum_3dcam.training.small_recipe import train_small_model
    from captum_3dcam.video.io import save_mp4

    monkeypatch.setenv("CAPTUM_3DCAM_CACHE", str(tmp_path / "cache"))
    ckpt = tmp_path / "small.pt"
    train_small_model(ckpt, progress=False, **{**QUICK_RECIPE, "epochs": 1})
    clip = SyntheticActions(1, "test", seed=3, clips_per_video=2, size=(32, 32))[0][0]
    video = save_mp4(SyntheticActions.to_rgb(clip), tmp_path / "clip.mp4", fps=10)
    argv = ["explain", str(video), "--model", "small-synthetic", "--checkpoint", str(ckpt), "--clip-len", "4",
            "--stride", "10", "--out", str(tmp_path / "out"), "--no-progress"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "stride: 10 is larger than clip_len=4" in err, err
