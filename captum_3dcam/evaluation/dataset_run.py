"""Explain every video of a dataset into per-video files, resumably, on one process or many (``explain-dataset``).

    from captum_3dcam.evaluation.dataset_run import run_explain_dataset

    summary = run_explain_dataset("synthetic", out="runs/explained", limit=40)   # also under torchrun
    summary["localization"]["pointing"]

Per video (its boxes read by ``torch.utils.data.DataLoader`` workers), the frames stream through
sliding windows (:func:`~captum_3dcam.video.streaming.explain_stream`: decoded and preprocessed a window
buffer at a time, the maps stitched in a rolling sum, memory flat in the length), each frame's box
from the preset's thresholding back in the original frame's pixels as soon as no window is left for
it; ``OUT/videos/<video_id>.json`` is written atomically (``--save-maps``: ``OUT/maps/<video_id>.npz``,
float16, appended as the frames finish). Under torchrun every rank takes
``ctx.shard(videos)``; after a barrier rank 0 reads every video file and writes ``summary.json`` and
``localization.md`` (pointing game, IoU accuracy at 0/0.5/0.6, mean IoU, by
:class:`~captum_3dcam.metrics.localization.LocalizationMeter`). A rerun skips the videos whose files are what
this run would write (:mod:`.resume`: nothing in ``OUT`` is trusted that this run did not write).

Lives here: :func:`run_explain_dataset`, :func:`explain_clip` (one preprocessed video), the
per-video file and the summary. Does not live here: the videos and the model by name
(:mod:`.videos`), the windows and the attribution (:mod:`captum_3dcam.video.windows`,
:mod:`captum_3dcam.attr.attribution`), the process group (:mod:`captum_3dcam.training.distributed`),
the metrics (:mod:`captum_3dcam.metrics.localization`), the command line
(:mod:`captum_3dcam.cli.explain_dataset`).
"""
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from torch.utils.data import DataLoader, Subset

from .._utils import check_output_dir, log, progress_bar, write_atomic
from ..training.distributed import init_distributed
from ..errors import Captum3DCamError
from ..metrics.localization import DEFAULT_IOU_THRESHOLDS, LocalizationMeter, box_iou, pointing_game
from ..models.full_frame import check_full_frame
from ..models.registry import check_layer_names, resolve_model_layers
from ..video.geometry import ClipGeometry
from ..attr.presets import get_preset
from ..video.streaming import MapsWriter, explain_stream
from .resume import expected_windows, fixed_settings, num_outputs, prepare_out, read_done, videos_to_do
from .tables import fmt
from .videos import DATASETS, Videos, dataset_model_spec, dataset_videos, load_dataset_model

__all__ = ["DTYPES", "run_explain_dataset", "explain_clip"]

PathLike = Union[str, os.PathLike]
DTYPES = ("float32", "bfloat16")


def explain_clip(net, layers, clip: torch.Tensor, geometry: ClipGeometry, *, preset: Dict[str, Any],
                 clip_len: int, stride: Optional[int] = None, batch_size: int = 1, dtype: str = "float32",
                 target: Optional[int] = None) -> Dict[str, Any]:
    """3DCam of one preprocessed video held in memory, in sliding windows; boxes in the original frame's pixels.

    :func:`~captum_3dcam.video.streaming.explain_stream` over the clip's frames, its chunks collected
    (``explain-dataset`` streams from the file instead and keeps no maps). With ``target=None``
    the windows go through the model twice (forward only for the class, then explained).

    Returns:
        ``{"maps" (1, 1, T, h, w), "boxes" (T, 4) (NaN: no box), "probs" (K,), "target", "windows"}``.

    Shape:
        ``clip`` ``(1, 3, T, h, w)`` -> maps ``(1, 1, T, h, w)``, boxes ``(T, 4)``
    """
    maps, boxes = [], []
    result = explain_stream(net, layers, lambda: [(clip, geometry)], preset=preset, clip_len=clip_len, stride=stride,
                            batch_size=batch_size, dtype=dtype, target=target,
                            sink=lambda _, m, b, g: (maps.append(m[:, :1]), boxes.append(b)))
    return {"maps": torch.cat(maps, dim=2), "boxes": torch.cat(boxes), "probs": result["probs"],
            "target": result["target"], "windows": result["windows"]}


def _frame_scores(maps: torch.Tensor, geometry: ClipGeometry, boxes: torch.Tensor, gt: torch.Tensor):
    """Per-frame hit (pointing game in the original frame) and IoU of a chunk of frames."""
    hits = pointing_game(geometry.maps_to_frame(maps).float(), gt[None])[0]
    return hits, box_iou(boxes[None].double(), gt[None].double())[0]


def _row(values) -> List[Optional[float]]:
    return [None if v != v else round(float(v), 4) for v in values]


def _identity(item):
    return item


def _summary(out: Path, records: Sequence[Dict[str, Any]], settings: Dict[str, Any], seconds: float,
             world_size: int) -> Dict[str, Any]:
    """Rank 0: every video file (read back and checked: :func:`.resume.read_done`) merged into the metrics,
    ``summary.json`` and ``localization.md``."""
    meter, per_video, has_gt, ids = LocalizationMeter(DEFAULT_IOU_THRESHOLDS), [], False, [r["video"] for r in records]
    for expect in records:
        data = read_done(out, expect)
        nan = float("nan")
        ious = torch.tensor([nan if v is None else v for v in data["iou"]], dtype=torch.float64)
        hits = torch.tensor([bool(v) for v in data["hit"]])
        meter.add(hits[None], ious[None], torch.tensor([data["target"] == data["label"]]))
        has_gt |= bool((~torch.isnan(ious)).any())
        per_video.append(data["seconds"])
    metrics = meter.compute() if has_gt else None
    summary = {
        "num_videos": len(ids), "dataset": settings["dataset"], "model": settings["model"],
        "checkpoint": settings["checkpoint"], "preset": settings["preset"], "layers": settings["layers"],
        "dtype": settings["dtype"], "localization": metrics,
        "timings": {"seconds_this_run": round(seconds, 2), "world_size": world_size,
                    "seconds_per_video_mean": round(sum(per_video) / max(1, len(per_video)), 3),
                    "videos_per_minute_per_rank": round(60 * len(per_video) / max(1e-9, sum(per_video)), 2)},
        "videos": list(ids),
    }
    head = (f"# explain-dataset: {settings['model']} on {settings['dataset']} ({len(ids)} videos), preset "
            f"{settings['preset']}, {settings['dtype']}\n\n")
    if metrics is None:
        table = "No ground-truth boxes in this dataset: no localization metrics.\n"
    else:
        cols = [("pointing", "pointing game"), ("iou@0", "IoU>0"), ("iou@0.5", "IoU>=0.5"), ("iou@0.6", "IoU>=0.6"),
                ("mean_iou", "mean IoU"), ("class_acc", "class accuracy")]
        table = ("| videos | frames with a box | " + " | ".join(t for _, t in cols) + " |\n|" + "---|" * (len(cols) + 2)
                 + f"\n| {len(ids)} | {metrics['frames']} | " + " | ".join(fmt(float(metrics[k])) for k, _ in cols) + " |\n")
    write_atomic(out / "summary.json", json.dumps(summary, indent=1))
    write_atomic(out / "localization.md", head + table)
    return {**summary, "table": head + table}


def _explain_one(item, videos: Videos, net, layers, settings, *, batch_size, save_maps: bool, out: Path, classes,
                 device) -> None:
    """One video streamed (:func:`~captum_3dcam.video.streaming.explain_stream`): each frame's box, hit and IoU
    (and float16 map) kept as it is final; the frames and the float32 maps are never held whole."""
    started = time.perf_counter()
    gt, boxes, hits, ious = item["gt"], [], [], []
    writer = MapsWriter(out / "maps" / f"{item['video']}.npz", gt.shape[0]) if save_maps else None

    def sink(start, maps, chunk_boxes, geometry):
        maps, chunk_boxes = maps.cpu(), chunk_boxes.cpu()
        h, i = _frame_scores(maps, geometry, chunk_boxes, gt[start : start + maps.shape[2]])
        boxes.append(chunk_boxes), hits.append(h), ious.append(i)
        if writer is not None:
            writer.append(maps[0, 0].numpy())

    result = explain_stream(net, layers, videos.stream(item, settings["clip_len"], device),
                            preset=get_preset(settings["preset"]), clip_len=settings["clip_len"],
                            stride=settings["stride"], batch_size=batch_size, dtype=settings["dtype"], sink=sink)
    geometry, frames = result["geometry"], result["num_frames"]  # iter_frames: exactly the annotated frames
    boxes, hits, ious = torch.cat(boxes), torch.cat(hits), torch.cat(ious)
    valid = ~torch.isnan(gt).any(-1)
    target, label = result["target"], item["label"]
    names = getattr(net, "labels", None) or classes
    data = {
        "video": item["video"], "frames": int(frames),
        "frame_size": {"height": int(geometry.frame_size[0]), "width": int(geometry.frame_size[1])},
        "label": label, "label_name": classes[label] if 0 <= label < len(classes) else None,
        "target": target, "target_label": names[target] if target < len(names) else str(target),
        "score": round(float(result["probs"][target]), 6), "windows": [list(w) for w in result["windows"]],
        "convention": "(x1, y1, x2, y2) pixel edges of the original frame: x1 <= x < x2; null = no box",
        "boxes": [None if any(v != v for v in r) else _row(r) for r in boxes.double().tolist()],
        "gt_boxes": [_row(r) if ok else None for r, ok in zip(gt.double().tolist(), valid.tolist())],
        "hit": [bool(h) if ok else None for h, ok in zip(hits.tolist(), valid.tolist())],
        "iou": [None if v != v else round(float(v), 6) for v in ious.tolist()],
        "seconds": round(time.perf_counter() - started, 3), "settings": fixed_settings(settings),
    }
    if writer is not None:
        writer.close()
    write_atomic(out / "videos" / f"{item['video']}.json", json.dumps(data))  # last: the video is done


def run_explain_dataset(
    dataset: str = "synthetic",
    *,
    out: PathLike,
    root: Optional[PathLike] = None,
    annotations: Optional[PathLike] = None,
    split: str = "test",
    model: Optional[str] = None,
    checkpoint: Optional[PathLike] = None,
    preset: str = "localize",
    layers: Optional[Sequence[str]] = None,
    device: str = "auto",
    batch_size: int = 1,
    limit: Optional[int] = None,
    save_maps: bool = False,
    dtype: str = "float32",
    clip_len: Optional[int] = None,
    stride: Optional[int] = None,
    workers: Optional[int] = None,
    seed: int = 0,
    progress: bool = True,
    full_frame: bool = False,
) -> Dict[str, Any]:
    """Explain the first ``limit`` videos of ``dataset`` into ``out`` (see the module docstring); resumable.

    Args:
        dataset, root, annotations, split, limit, seed: the videos (:func:`dataset_videos`).
        model, checkpoint: :func:`load_dataset_model`; layers: default the model's preset.
        preset: ``"localize"`` or ``"paper"`` (:func:`captum_3dcam.attr.presets.get_preset`).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` (under torchrun ``cuda:LOCAL_RANK``).
        batch_size: windows per forward pass; clip_len, stride: the windows (default the model's,
            half of it).
        save_maps: also ``out/maps/<video>.npz`` (float16 maps at model resolution).
        dtype: ``"float32"`` or ``"bfloat16"`` (``torch.autocast``).
        workers: DataLoader workers reading videos' annotations ahead (default 2 for files, 0 for
            synthetic); the frames are decoded in this process as they stream.
        full_frame: explain the whole frame at the model's scale, no centre crop (``--full-frame``;
            a fully convolutional model only, another is refused before the weights load). Recorded
            in ``run.json``: a rerun with the other setting is refused, its files are not reused.

    Returns:
        the summary (``summary.json``'s content and ``"table"``) on rank 0; ``{"rank": r}`` elsewhere.
    """
    if dataset not in DATASETS:
        raise Captum3DCamError(f"--dataset: expected one of {', '.join(DATASETS)}, got {dataset!r}")
    if dtype not in DTYPES:
        raise Captum3DCamError(f"--dtype: expected one of {', '.join(DTYPES)}, got {dtype!r}")
    try:
        get_preset(preset)
    except ValueError:
        raise Captum3DCamError(f"--preset: expected localize, paper or strict, got {preset!r}") from None
    for name, value in (("--batch-size", batch_size), ("--limit", limit), ("--clip-len", clip_len), ("--stride", stride)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise Captum3DCamError(f"{name}: expected a positive integer, got {value!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise Captum3DCamError(f"--workers: expected an integer >= 0, got {workers!r}")
    out = check_output_dir(out, "--out")  # before any model pass
    started = time.perf_counter()
    with init_distributed(device) as ctx:
        show = progress and ctx.is_main
        spec = dataset_model_spec(dataset, model, checkpoint)
        check_full_frame(spec, full_frame)  # before the weights load, as the layers
        check_layer_names(spec, layers)
        videos, classes = dataset_videos(dataset, spec, root=root, annotations=annotations, split=split,
                                         limit=limit, seed=seed, full_frame=full_frame)
        with ctx.main_first():  # rank 0 may train the cached small model; the others then load it
            _, net = load_dataset_model(dataset, spec.name, checkpoint, seed=seed, progress=show)
        net = net.to(ctx.device)
        layer_names, layer_modules = resolve_model_layers(net, layers, spec.name)
        settings = {"dataset": dataset, "root": None if root is None else str(Path(root).resolve()),
                    "annotations": None if annotations is None else str(Path(annotations).resolve()),
                    "split": split, "model": spec.name,
                    "checkpoint": None if checkpoint is None else str(Path(checkpoint).resolve()),
                    "preset": str(preset).lower(), "layers": layer_names, "dtype": dtype,
                    "clip_len": int(clip_len or spec.clip_len), "stride": stride, "seed": seed, "full_frame": full_frame}
        if ctx.is_main:  # raises before the barrier: torchrun then stops the other ranks
            prepare_out(out, settings, videos.ids)
        ctx.barrier()
        names = getattr(net, "labels", None) or classes
        run_record = {"names": list(names), "num_classes": num_outputs(net), "settings": fixed_settings(settings)}

        def expect(i: int, gt: bool = True) -> Dict[str, Any]:
            record = videos.record(i, gt)
            label = record["label"]
            return {**run_record, **record, "label_name": classes[label] if 0 <= label < len(classes) else None,
                    "windows": expected_windows(record["frames"], settings["clip_len"], settings["stride"])}

        mine = ctx.shard(range(len(videos)))
        todo = videos_to_do(out, mine, expect, save_maps=save_maps)  # every file re-checked against this run
        log(f"explaining {len(videos)} videos of {dataset} with {spec.name} ({len(layer_names)} layers, preset "
            f"{preset}, {dtype}) on {ctx.world_size} rank(s); this rank: {len(todo)} to do, "
            f"{len(mine) - len(todo)} already done", show)
        n_workers = (0 if dataset == "synthetic" else 2) if workers is None else workers
        loader = DataLoader(Subset(videos, todo), batch_size=None, collate_fn=_identity, num_workers=n_workers)
        for item in progress_bar(loader, "explain-dataset", total=len(todo), unit="video", enabled=show):
            _explain_one(item, videos, net, layer_modules, settings, batch_size=batch_size, save_maps=save_maps, out=out,
                         classes=classes, device=ctx.device)
        ctx.barrier()
        if not ctx.is_main:
            return {"rank": ctx.rank}
        records = [expect(i, gt=False) for i in range(len(videos))]
        summary = _summary(out, records, settings, time.perf_counter() - started, ctx.world_size)
        return {**summary, "rank": 0}
