"""Distributed training on 2 gloo ranks (CPU): metrics reduced with all_reduce equal one process's,
DDP keeps the ranks' weights identical, rank 0 alone writes; the torchrun command end to end."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import Dataset

from captum_3dcam._utils import write_atomic
from captum_3dcam.training import distributed as ddp
from captum_3dcam.training.accuracy import evaluate
from captum_3dcam.training.distributed import init_distributed

REPO = Path(__file__).resolve().parents[1]


class LogitsDataset(Dataset):
    """Items whose clip IS the logits, so ``nn.Identity()`` outputs them (hand-computable metrics)."""

    def __init__(self, logits, labels, video_ids):
        self.logits = torch.tensor(logits, dtype=torch.float32)
        self.labels, self.video_ids = labels, video_ids

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.logits[i], self.labels[i]


# 7 clips of 4 videos (A: 3 clips, B: 1, C: 2, D: 1). Clip hits: 1 0 1 | 1 | 1 0 | 0 = 4/7. Videos (mean
# softmax): A (.67, .33) -> 0 hit; B hit; C (.33, .67) -> 1 hit; D [1, 0] -> 0 miss: 3/4.
LOGITS = [[2.0, 0.0], [0.0, 0.4], [1.0, 0.0], [0.0, 1.0], [0.0, 3.0], [0.5, 0.0], [1.0, 0.0]]
LABELS = [0, 0, 0, 1, 1, 1, 1]
VIDEOS = ["A", "A", "A", "B", "C", "C", "D"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, out_dir, task):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    with init_distributed("cpu") as ctx:
        result = {"rank": ctx.rank, "world": ctx.world_size, "backend": ctx.backend,
                  "queries": [ddp.is_distributed(), ddp.get_rank(), ddp.get_world_size(), ddp.is_main_process()]}
        torch.manual_seed(0)  # the same global RNG on both ranks; evaluate must keep it so
        result["metrics"] = evaluate(nn.Identity(), LogitsDataset(LOGITS, LABELS, VIDEOS), batch_size=2)
        result["sum"] = ddp.all_reduce_sum([rank + 1, 10.0])
        # one video: rank 1 scores nothing, yet gets the numbers and draws from the RNG like rank 0
        result["one_video"] = evaluate(nn.Identity(), LogitsDataset(LOGITS[:3], LABELS[:3], VIDEOS[:3]))
        result["rng"] = torch.get_rng_state().tolist()
        if task == "train":  # a tiny MLP with DDP
            from captum_3dcam.training.loop import train

            g = torch.Generator().manual_seed(0)
            x = torch.randn(32, 2, generator=g)
            ds = LogitsDataset(x.tolist(), (x[:, 0] > 0).long().tolist(), list(range(32)))
            torch.manual_seed(rank)  # different initial weights per rank: DDP must broadcast rank 0's
            model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
            hist = train(model, ds, ds, epochs=3, batch_size=4, lr=0.2, progress=False,
                         checkpoint=Path(out_dir) / "ck.pt")
            result["history"] = hist
            result["weights"] = [p.detach().flatten().tolist() for p in model.parameters()]
            ck = Path(out_dir) / ("ck.pt" if rank == 0 else "elsewhere.pt")  # rank 1 cannot see rank 0's file
            try:
                train(model, ds, ds, epochs=4, batch_size=4, lr=0.2, progress=False, checkpoint=ck, resume=True)
            except ValueError as exc:
                result["resume_error"] = str(exc)
    (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(result))


def _spawn(tmp_path, task, world=2):
    mp.start_processes(_worker, args=(world, _free_port(), str(tmp_path), task), nprocs=world,
                       start_method="spawn")
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(world)]


def test_one_process_is_rank_0_of_1_and_collectives_are_no_ops(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    with init_distributed("cpu") as ctx:
        assert (ctx.rank, ctx.world_size, ctx.backend, ctx.is_main) == (0, 1, None, True)
        assert (ddp.is_distributed(), ddp.get_rank(), ddp.get_world_size(), ddp.is_main_process()) == (False, 0, 1, True)
        assert ddp.all_reduce_sum([1, 2.5]) == [1.0, 2.5]
        ddp.barrier()
        model = nn.Linear(2, 2)
        assert ddp.wrap_ddp(model, "cpu") is model
        state = [b.clone() for b in model.buffers()]
        ddp.broadcast_buffers(model)
        assert all(torch.equal(a, b) for a, b in zip(state, model.buffers()))


def test_write_atomic_leaves_no_temporary_file(tmp_path):
    write_atomic(tmp_path / "a" / "m.json", "{}")
    assert (tmp_path / "a" / "m.json").read_text() == "{}"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["m.json"]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """One spawn of 2 gloo ranks (process start-up dominates: ~10-35 s on 2 busy cores)."""
    tmp = tmp_path_factory.mktemp("ranks")
    return tmp, _spawn(tmp, "train")


@pytest.mark.slow
def test_metrics_reduced_across_two_ranks_equal_one_process(two_ranks):
    single = evaluate(nn.Identity(), LogitsDataset(LOGITS, LABELS, VIDEOS), batch_size=2)
    assert single["clip_accuracy"] == pytest.approx(4 / 7) and single["video_accuracy"] == pytest.approx(3 / 4)
    assert single["num_clips"] == 7 and single["num_videos"] == 4
    for r in two_ranks[1]:
        assert r["world"] == 2 and r["backend"] == "gloo"
        assert r["queries"] == [True, r["rank"], 2, r["rank"] == 0]
        assert r["sum"] == [3.0, 20.0]  # (1 + 2, 10 + 10)
        assert r["metrics"]["num_clips"] == 7 and r["metrics"]["num_videos"] == 4
        for key in ("loss", "clip_accuracy", "video_accuracy"):
            assert r["metrics"][key] == pytest.approx(single[key], rel=1e-6), key
        assert r["one_video"]["num_videos"] == 1 and r["one_video"]["clip_accuracy"] == pytest.approx(2 / 3)
    assert two_ranks[1][0]["rng"] == two_ranks[1][1]["rng"]


@pytest.mark.slow
def test_ddp_training_keeps_ranks_identical_and_rank_0_writes(two_ranks):
    tmp_path, (r0, r1) = two_ranks
    assert r0["weights"] == r1["weights"]  # rank 0's initial weights broadcast, gradients averaged
    assert r0["history"] == [{**h, "seconds": r0["history"][i]["seconds"]} for i, h in enumerate(r1["history"])]
    assert r0["history"][-1]["test_clip_accuracy"] > 0.8
    for r in (r0, r1):  # resuming from different epochs is refused on every rank, not a hang
        assert "different epochs" in r["resume_error"]
    from captum_3dcam.models.train_checkpoint import load_checkpoint

    state = load_checkpoint(tmp_path / "ck.pt")
    assert state["epoch"] == 3
    saved = [v.flatten().tolist() for v in state["model"].values()]
    assert [pytest.approx(w) for w in saved] == r0["weights"]
    assert not list(tmp_path.glob("*.tmp"))


def _torchrun(args, tmp_path, timeout=600):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "CAPTUM_3DCAM_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "captum_3dcam", "train", *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_torchrun_two_ranks_one_short_epoch(tmp_path):
    """CI's 2-rank CPU run: ``torchrun --nproc_per_node=2 -m captum_3dcam train`` (gloo), one epoch."""
    out = tmp_path / "run"
    proc = _torchrun(["--dataset", "synthetic", "--gates", "all", "--epochs", "1", "--train-videos", "16",
                      "--test-videos", "4", "--batch-size", "4", "--device", "cpu", "--out", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["run"]["world_size"] == 2 and metrics["run"]["global_batch"] == 8
    assert metrics["epochs_done"] == 1 and metrics["train_clips"] == 16 and metrics["test_clips"] == 8
    assert 0 <= metrics["final"]["test_clip_accuracy"] <= 1
    assert proc.stdout.count("Final (epoch 1)") == 1  # rank 0 prints, rank 1 does not
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "labels.txt", "metrics.json", "results.md"]
