"""Training loop: accuracies (clip- and video-wise, hand-computed), LR schedule, checkpoints,
exact resume, determinism, errors, and the small-model convenience on a tiny recipe."""
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

import captum_3dcam.training.small_recipe as small_recipe
from captum_3dcam.datasets import SyntheticActions
from captum_3dcam.models.small import Small3DCNN
from captum_3dcam.training.small_recipe import load_or_train_small_model, train_small_model
from captum_3dcam.models.train_checkpoint import save_checkpoint
from captum_3dcam.training.accuracy import evaluate, video_ids_of
from captum_3dcam.training.loop import TrainConfig, train
from captum_3dcam.models.train_checkpoint import load_checkpoint


class LogitsDataset(Dataset):
    """Items whose 'clip' IS the logits vector, so an identity model outputs it unchanged."""

    def __init__(self, logits, labels, video_ids):
        self.logits = torch.tensor(logits, dtype=torch.float32)
        self.labels = labels
        self.video_ids = video_ids

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.logits[i], torch.full((1, 4), float("nan")), self.labels[i]


def test_evaluate_clip_and_video_accuracy_hand_computed():
    # video A (label 0): clips predict 0 (p=.9) and 1 (p~.6): clip acc 1/2, mean prob favours 0.
    # video B (label 1): one clip predicting 0: wrong both ways.
    big, small = 2.1972246, 0.4054651  # softmax([big, 0]) = (.9, .1); softmax([0, small]) = (.4, .6)
    ds = LogitsDataset([[big, 0.0], [0.0, small], [1.0, 0.0]], [0, 0, 1], ["A", "A", "B"])
    m = evaluate(nn.Identity(), ds, batch_size=2)
    assert m["clip_accuracy"] == pytest.approx(1 / 3)
    assert m["video_accuracy"] == pytest.approx(1 / 2)  # A: mean(.9,.4)=.65 for class 0 -> hit
    assert m["num_clips"] == 3 and m["num_videos"] == 2
    expected_loss = (-torch.log(torch.tensor(0.9)) - torch.log(torch.tensor(0.4))
                     - torch.log_softmax(torch.tensor([1.0, 0.0]), 0)[1]) / 3
    assert m["loss"] == pytest.approx(expected_loss.item(), rel=1e-5)


def test_evaluate_restores_mode_and_rejects_mixed_labels():
    model = nn.Identity().train()
    ds = LogitsDataset([[1.0, 0.0], [0.0, 1.0]], [0, 1], ["A", "A"])
    with pytest.raises(ValueError, match="different labels"):
        evaluate(model, ds)
    assert model.training


def test_video_ids_of_subset_and_fallbacks():
    ds = SyntheticActions(num_videos=3, clips_per_video=2)
    assert video_ids_of(Subset(ds, [5, 0, 3])) == [2, 0, 1]

    class NoIds(Dataset):
        def __len__(self):
            return 3

    assert video_ids_of(NoIds()) == [0, 1, 2]


def _tiny(seed=0):
    tr = SyntheticActions(num_videos=6, seed=seed, clip_len=4, size=(16, 16), cache=True)
    te = SyntheticActions(num_videos=3, split="test", seed=seed, clip_len=4, size=(16, 16),
                          clips_per_video=2, cache=True)
    torch.manual_seed(0)
    return Small3DCNN(widths=(4, 4, 4, 4)), tr, te


def _cfg(**kw):
    base = dict(epochs=2, batch_size=4, lr=0.1, step_size=1, gamma=0.1, progress=False, seed=1)
    return TrainConfig(**{**base, **kw})


def test_train_history_schedule_and_checkpoint(tmp_path):
    model, tr, te = _tiny()
    ck = tmp_path / "run.pt"
    hist = train(model, tr, te, _cfg(), checkpoint=ck)
    assert [h["epoch"] for h in hist] == [1, 2]
    assert [h["lr"] for h in hist] == pytest.approx([0.1, 0.01])  # x gamma every step_size epochs
    for h in hist:
        assert 0 <= h["test_clip_accuracy"] <= 1 and 0 <= h["test_video_accuracy"] <= 1
        assert h["train_loss"] > 0
    state = load_checkpoint(ck)
    assert state["epoch"] == 2 and state["config"]["lr"] == 0.1 and len(state["history"]) == 2
    assert set(state) >= {"model", "optimizer", "scheduler", "rng_state", "extra"}
    fresh = Small3DCNN(widths=(4, 4, 4, 4))
    load_checkpoint(ck, fresh)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[k], v)


def test_train_is_deterministic_and_resume_is_exact(tmp_path):
    model_a, tr, te = _tiny()
    train(model_a, tr, te, _cfg(), checkpoint=tmp_path / "a.pt")
    model_b, _, _ = _tiny()
    train(model_b, tr, te, _cfg(epochs=1), checkpoint=tmp_path / "b.pt")
    assert load_checkpoint(tmp_path / "b.pt")["epoch"] == 1
    torch.manual_seed(123)  # global RNG disturbed between the runs: the checkpoint restores it
    model_c, _, _ = _tiny()
    hist = train(model_c, tr, te, _cfg(), checkpoint=tmp_path / "b.pt", resume=True)
    assert [h["epoch"] for h in hist] == [1, 2]
    sa, sc = model_a.state_dict(), model_c.state_dict()
    for k in sa:
        torch.testing.assert_close(sc[k], sa[k], rtol=0, atol=0)
    # a second identical run reproduces the first one exactly
    model_d, _, _ = _tiny()
    train(model_d, tr, te, _cfg())
    for k in sa:
        torch.testing.assert_close(model_d.state_dict()[k], sa[k], rtol=0, atol=0)


def test_train_learns_a_separable_toy_problem():
    # logits = W x on 2-D points labelled by the sign of x0 (margin 0.5): SGD must reach 100 %.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=g)
    x[:, 0] = x[:, 0].sign() * (0.5 + x[:, 0].abs())
    y = (x[:, 0] > 0).long().tolist()
    ds = LogitsDataset(x.tolist(), y, list(range(64)))
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    hist = train(model, ds, ds, epochs=6, batch_size=16, lr=0.5, progress=False)
    assert hist[-1]["test_clip_accuracy"] == 1.0 and hist[-1]["test_video_accuracy"] == 1.0
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]


def test_train_restores_mode_and_accepts_overrides():
    model, tr, _ = _tiny()
    model.eval()
    hist = train(model, tr, None, _cfg(), epochs=1, optimizer="adam", lr=1e-3)
    assert not model.training and len(hist) == 1 and hist[0]["lr"] == 1e-3
    assert "test_clip_accuracy" not in hist[0]


def test_progress_bars_run(capsys):
    pytest.importorskip("tqdm")
    model, tr, te = _tiny()
    train(model, tr, te, _cfg(epochs=1, progress=True))
    assert "epoch" in capsys.readouterr().err


@pytest.mark.parametrize(
    "kw, words",
    [(dict(epochs=0), "epochs"), (dict(batch_size=-1), "batch_size"), (dict(lr=0.0), "lr"),
     (dict(optimizer="rmsprop"), "optimizer"), (dict(gamma=0.0), "gamma"),
     (dict(step_size=0), "step_size")],
)
def test_config_rejects_bad_values(kw, words):
    with pytest.raises(ValueError, match=words):
        TrainConfig(**kw)


def test_train_and_checkpoint_errors(tmp_path):
    model, tr, te = _tiny()
    with pytest.raises(TypeError, match="config"):
        train(model, tr, te, config={"lr": 0.1})
    with pytest.raises(TypeError, match="model"):
        train(lambda x: x, tr, te, _cfg())
    with pytest.raises(ValueError, match="checkpoint"):
        train(model, tr, te, _cfg(), resume=True)
    with pytest.raises(FileNotFoundError, match="resume"):
        train(model, tr, te, _cfg(), resume=tmp_path / "none.pt")
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not read"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a captum_3dcam"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_save_checkpoint_is_atomic_and_loadable(tmp_path):
    model = nn.Linear(2, 2)
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, epoch=3, extra={"k": "v"})
    assert path.is_file() and not (tmp_path / "sub" / "m.pt.tmp").exists()
    state = load_checkpoint(path)
    assert state["epoch"] == 3 and state["extra"] == {"k": "v"} and state["optimizer"] is None


TINY_RECIPE = dict(train_videos=5, test_videos=5, epochs=1, batch_size=5)


def test_train_small_model_and_load_or_train(tmp_path, monkeypatch):
    path = tmp_path / "small.pt"
    model, hist = train_small_model(path, progress=False, **TINY_RECIPE)
    assert isinstance(model, Small3DCNN) and not model.training and len(hist) == 1
    state = load_checkpoint(path)
    assert state["extra"]["model"] == "Small3DCNN" and state["extra"]["classes"][4] == "pulse"

    def no_training(*a, **k):
        raise AssertionError("a finished checkpoint must be loaded, not retrained")

    monkeypatch.setattr(small_recipe, "train", no_training)
    loaded = load_or_train_small_model(path, progress=False, **TINY_RECIPE)
    assert not loaded.training
    x = torch.randn(2, 3, 16, 64, 64)
    torch.testing.assert_close(loaded(x), model(x))
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="retraining"):  # another recipe: trained again
        other = load_or_train_small_model(path, progress=False, **{**TINY_RECIPE, "lr": 0.01})
    assert load_checkpoint(path)["extra"]["recipe"]["lr"] == 0.01
    assert not torch.equal(other(x), model(x))
    with pytest.raises(TypeError, match="recipe"):
        train_small_model(None, progress=False, lr_decay=3)
    torch.save({"model": {}, "epoch": 1, "extra": {"model": "Other"}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="Small3DCNN"):
        load_or_train_small_model(tmp_path / "other.pt")
