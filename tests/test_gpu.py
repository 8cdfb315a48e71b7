"""GPU paths a new user takes (README "GPUs"): skipped, not passed, where CUDA is missing.

The same work as on the CPU, on ``cuda``: the README's ``model.to("cuda")`` snippet, ``explain``
with several windows per pass, and every command with ``--device cuda``. Results match the CPU's
to float tolerance; maps stay on the GPU.
"""
import json

import pytest
import torch


pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTUM_3DCAM_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def synthetic_video(tmp_path_factory):
    pytest.importorskip("av")
    from captum_3dcam.datasets import SyntheticActions
    from captum_3dcam.video.io import save_mp4

    ds = SyntheticActions(1, "test", seed=3, clips_per_video=3, size=(48, 80))
    path = tmp_path_factory.mktemp("video") / "actions.mp4"
    save_mp4(SyntheticActions.to_rgb(torch.cat([ds[i][0] for i in range(3)], dim=1)[:, :40]), path, fps=10)
    return path


def test_readme_gpu_snippet_matches_the_cpu():
    from captum_3dcam import GlobalLocal3DCam
    from captum_3dcam.models import Small3DCNN, default_layers

    torch.manual_seed(0)
    model = Small3DCNN(num_classes=5).eval()
    clips = torch.randn(2, 3, 16, 64, 64)
    cam = GlobalLocal3DCam(model, default_layers(model))
    on_cpu = cam.attribute(clips)
    model, clips = model.to("cuda"), clips.to("cuda")
    on_gpu = cam.attribute(clips)
    assert on_gpu.device.type == "cuda" and on_gpu.shape == on_cpu.shape
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-3, atol=1e-4)


def test_explain_on_the_gpu_with_batches_of_windows(small_checkpoint, synthetic_video):
    from captum_3dcam.apps.explain import explain_video

    kwargs = dict(checkpoint=small_checkpoint, clip_len=16, stride=8, progress=False)
    cpu = explain_video(synthetic_video, "small-synthetic", device="cpu", **kwargs)
    gpu = explain_video(synthetic_video, "small-synthetic", device="cuda", batch_size=4, **kwargs)
    assert gpu["maps"].device.type == "cuda" and gpu["target"] == cpu["target"]
    torch.testing.assert_close(gpu["maps"].cpu(), cpu["maps"], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("command", ["demo", "explain", "evaluate"])
def test_every_command_runs_with_device_cuda(command, small_checkpoint, synthetic_video, tmp_path):
    from captum_3dcam import cli

    argv = {"demo": ["demo", "--quick", "--checkpoint", str(small_checkpoint), "--out", str(tmp_path / "d")],
            "explain": ["explain", str(synthetic_video), "--model", "small-synthetic", "--checkpoint",
                        str(small_checkpoint), "--batch-size", "4", "--out", str(tmp_path / "e")],
            "evaluate": ["evaluate", "--dataset", "synthetic", "--model", "small-synthetic", "--checkpoint",
                         str(small_checkpoint), "--max-videos", "2"]}[command]
    assert cli.main([*argv, "--device", "cuda", "-q"]) == 0
    if command == "explain":
        assert json.loads((tmp_path / "e" / "explanation.json").read_text())["device"].startswith("cuda")
