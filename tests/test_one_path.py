"""One preset, one set of boxes: the README's Python path, ``explain_video``, ``evaluate_methods`` and the
streaming driver of ``explain-dataset`` give the same boxes for the same video, and every entry point
defaults to LOCALIZE."""
import inspect

import pytest
import torch

from captum_3dcam import GlobalLocal3DCam, attribution_to_boxes, get_preset
from captum_3dcam.datasets import SyntheticActions
from captum_3dcam.models import default_layers
from captum_3dcam.models.registry import get_model_spec

pytest.importorskip("av")
pytest.importorskip("scipy")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    from captum_3dcam.video.io import save_mp4

    clip, _, _ = SyntheticActions(1, "val", seed=3, size=(64, 80))[0]
    frames = SyntheticActions.to_rgb(clip)  # (T, H, W, 3) uint8, wider than the 64 x 64 crop
    return save_mp4(frames, tmp_path_factory.mktemp("video") / "clip.mp4", fps=8)


def test_readme_path_explain_evaluate_and_streaming_give_the_same_boxes(video, small_checkpoint):
    from captum_3dcam.evaluation import evaluate_methods
    from captum_3dcam.evaluation.dataset_run import explain_clip
    from captum_3dcam.apps.explain import explain_video
    from captum_3dcam.video.io import read_video

    preset = get_preset("localize")
    spec = get_model_spec("small-synthetic")
    net = spec.load(str(small_checkpoint)).eval()
    # the README's path
    clip, geometry = spec.preprocess(read_video(video))
    maps = GlobalLocal3DCam(net, default_layers(net)).attribute(clip, **preset["attribute"])
    readme = geometry.boxes_to_frame(attribution_to_boxes(maps, **preset["boxes"]))[0]
    assert readme.shape == (clip.shape[2], 4) and bool(torch.isfinite(readme).any())
    # explain (the CLI's function), one window
    explained = explain_video(video, "small-synthetic", checkpoint=small_checkpoint, out=None, progress=False,
                              device="cpu", clip_len=clip.shape[2])
    torch.testing.assert_close(explained["boxes"], readme, equal_nan=True, atol=1e-3, rtol=0)
    # explain-dataset's streaming driver
    streamed = explain_clip(net, default_layers(net), clip, geometry, preset=preset, clip_len=clip.shape[2])
    torch.testing.assert_close(streamed["boxes"], readme, equal_nan=True, atol=1e-3, rtol=0)
    # evaluate: with the README's boxes as ground truth, every frame's IoU is 1
    have = torch.isfinite(readme).all(-1)
    gt = torch.where(have[:, None], readme, torch.full_like(readme, float("nan")))
    result = evaluate_methods(net, default_layers(net), [(clip[0], gt, 0, geometry)], ["preset:localize"])
    assert result["preset:localize"]["mean_iou"] == pytest.approx(1.0, abs=1e-4)


def test_every_entry_point_defaults_to_localize():
    from captum_3dcam.apps.demo import run_demo
    from captum_3dcam.evaluation import run_evaluate
    from captum_3dcam.evaluation.dataset_run import run_explain_dataset
    from captum_3dcam.apps.explain import explain_video

    assert inspect.signature(run_demo).parameters["preset"].default == "localize"
    assert inspect.signature(run_evaluate).parameters["preset"].default == "localize"
    assert inspect.signature(run_explain_dataset).parameters["preset"].default == "localize"
    assert inspect.signature(explain_video).parameters["preset"].default in (None, "localize")
    from captum_3dcam.cli import build_parser

    parser = build_parser()
    for command in ("demo", "explain", "evaluate", "explain-dataset"):
        sub = parser._subparsers._group_actions[0].choices[command]
        preset = next(a for a in sub._actions if a.dest == "preset")
        assert preset.default == "localize", command
