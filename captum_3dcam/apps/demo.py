"""The embedded default, end to end: :func:`run_demo` (``captum-3dcam demo``).

    from captum_3dcam.apps.demo import run_demo

    run_demo("demo/", quick=True)   # synthetic data, small model, 3DCam vs GradCAM, figures, report.md

Lives here: the demo's steps and its ``report.md``. Does not live here: the small model's recipe
and cache (:mod:`captum_3dcam.training.small_recipe`, also :data:`QUICK_RECIPE`), the tables
(:mod:`captum_3dcam.evaluation.tables`), the pictures (:mod:`captum_3dcam.viz.overlays`,
:mod:`captum_3dcam.viz.figures`) and the command line (:mod:`captum_3dcam.cli.demo`).
"""
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch

from ..viz import figures, overlays
from .._utils import as_path, check_output_dir, log, resolve_device
from ..attr.attribution import Counterfactual3DCam, GlobalLocal3DCam
from ..datasets import SyntheticActions
from ..evaluation.tables import LOCALIZATION_COLUMNS, markdown_table
from ..localization.boxes import attribution_to_boxes
from ..metrics.localization import LocalizationMeter, segment_set_iou
from ..models import default_layer_names, default_layers
from ..attr.presets import get_preset
from ..models.small_checkpoint import (QUICK_RECIPE, SMALL_MODEL_RECIPE, default_small_checkpoint,
                                       is_unfinished_small_checkpoint, load_small_checkpoint)
from ..training.small_recipe import load_or_train_small_model
from ..training.loop import check_seed
from ..localization.tubes import attention_to_segments, temporal_attention
from ..video.io import save_gif, save_mp4
from ..video.geometry import ClipGeometry
from ..video.streaming import explain_stream

__all__ = ["run_demo", "QUICK_RECIPE"]

PathLike = Union[str, os.PathLike]


def _batched(fn, x: torch.Tensor, batch: int = 10, **kwargs):
    """``fn`` over ``x`` in batches; returns the concatenation (tuples of outputs concatenated alike)."""
    outs = [fn(x[i : i + batch], **{k: (v[i : i + batch] if isinstance(v, torch.Tensor) else v)
                                     for k, v in kwargs.items()}) for i in range(0, x.shape[0], batch)]
    if isinstance(outs[0], tuple):
        P = torch.cat([o[0] for o in outs])
        layer_maps = [torch.cat([o[1][k] for o in outs]) for k in range(len(outs[0][1]))]
        return P, layer_maps
    return torch.cat(outs)


def _empty_layer_notes(model, names, modules, layer_maps, x, target) -> Dict[str, str]:
    """Why a layer's 3DCam map is empty (all zero), for the figure: ``{layer name: reason}``.

    Rule "3dcam" multiplies ``relu(beta)`` (the channel-summed gradient) by ``relu(alpha)`` (the
    channel-summed activation), so a map is empty when either is <= 0 everywhere. Only the empty
    layers are looked at, with Captum's own gradient utility (one more pass, on one clip).

    Shape:
        - layer_maps: K maps ``(1, T, H, W)``; x: ``(1, C, T, H, W)``
    """
    empty = [k for k, m in enumerate(layer_maps) if not bool((m > 0).any())]
    if not empty:
        return {}
    from captum._utils.gradient import compute_layer_gradients_and_eval

    grads, acts = compute_layer_gradients_and_eval(model, [modules[k] for k in empty], x, target_ind=target)
    notes = {}
    for k, g, a in zip(empty, grads, acts):
        g, a = g[0] if isinstance(g, tuple) else g, a[0] if isinstance(a, tuple) else a
        if float(g.sum(1).max()) <= 0:
            notes[names[k]] = "empty: no positive gradient (summed gradient <= 0 everywhere)"
        elif float(a.sum(1).max()) <= 0:
            notes[names[k]] = "empty: summed activation <= 0 everywhere"
        else:
            notes[names[k]] = "empty: positive gradient and activation never coincide"
    return notes


def _clip_figures(model, layers, layer_names, k, rgb, x_k, y, probs, pred, gt, P, G, layer_maps, boxes, classes, kw,
                  how, title, out) -> Dict[str, Path]:
    """The figures of one correctly classified test clip ``k``: 3DCam per layer (paper Fig. 2-3), GradCAM
    vs 3DCam (Fig. 4), the top-3 classes and the counterfactual of the top one (Fig. 6)."""
    cam3d = GlobalLocal3DCam(model, layers)
    notes = _empty_layer_notes(model, layer_names, layers, [m[k] for m in layer_maps], x_k, int(pred[k]))
    fig = figures.plot_layer_grid(rgb, [m[k] for m in layer_maps], P[k], layer_names=layer_names,
                                  gt_boxes=gt[k], boxes={"3DCam (all layers)": boxes["3DCam"][k]}, notes=notes,
                                  title=f"3DCam per layer and aggregated, {how}\n{title}; "
                                        "green: ground truth, red: 3DCam box")
    files = {"layers": figures.save_figure(fig, out / "fig_layers.png")}
    fig = figures.plot_gradcam_vs_3dcam(rgb, G[k], P[k], gradcam_boxes=boxes["GradCAM"][k],
                                        cam3d_boxes=boxes["3DCam"][k], gt_boxes=gt[k],
                                        title=f"GradCAM (rule gradcam over conv4) vs 3DCam, {how}\n{title}; "
                                              "green: ground truth, red: predicted box")
    files["gradcam_vs_3dcam"] = figures.save_figure(fig, out / "fig_gradcam_vs_3dcam.png")
    top3 = probs[k].topk(3)
    class_maps = {f"{r + 1}. {classes[int(c)]} ({float(p):.2f})": cam3d.attribute(x_k, target=int(c), **kw)
                  for r, (p, c) in enumerate(zip(top3.values, top3.indices))}
    cf = Counterfactual3DCam(model, layers).attribute(x_k, target=int(top3.indices[0]), **kw)
    fig = figures.plot_class_maps(rgb, class_maps, counterfactual=cf,
                                  counterfactual_name=f"counterfactual of 1. {classes[int(top3.indices[0])]}",
                                  title=f"3DCam, {how}, with each of the top-3 classes as target, and the "
                                        f"counterfactual of the top class\nclip {k}, label {classes[int(y[k])]}")
    files["top3_counterfactual"] = figures.save_figure(fig, out / "fig_top3_counterfactual.png")
    return files


def _untrimmed(model, layers, seed, recipe, classes, kw, box_kw, how, device, out) -> Tuple[Path, float]:
    """Three synthetic videos of different classes back to back, explained in sliding windows for the
    middle one's class: the temporal figure (paper Fig. 5) and its temporal IoU."""
    untrimmed = SyntheticActions(3, "val", seed=seed, difficulty=recipe["difficulty"], clips_per_video=2)
    video = torch.cat([untrimmed[i][0] for i in range(len(untrimmed))], dim=1)  # (3, T, H, W)
    T = video.shape[1]
    mid = untrimmed.labels[2]
    gt_seg = torch.tensor([[T // 3, 2 * T // 3]])
    clip_len = untrimmed.config.clip_len
    H, W = video.shape[2:]  # the one window driver (explain's, explain-dataset's), for the middle video's class
    whole = ClipGeometry((H, W), (H, W), (0, 0, W, H), range(T))
    pieces = []
    explain_stream(model, layers, lambda: [(video[None].to(device), whole)], preset={"attribute": kw, "boxes": box_kw},
                   clip_len=clip_len, target=mid, sink=lambda start, m, b, g: pieces.append(m))
    umaps = torch.cat(pieces, dim=2).cpu()
    curve = temporal_attention(umaps)[0]
    segments = attention_to_segments(curve[None], box_kw["threshold"])[0]
    t_iou = segment_set_iou(segments, gt_seg, T)
    fig = figures.plot_temporal_curve(curve, segments=segments, gt_segments=gt_seg, threshold=box_kw["threshold"],
                                      video=SyntheticActions.to_rgb(video), num_thumbnails=12,
                                      title=f"untrimmed: {' | '.join(classes[v] for v in untrimmed.labels[::2])}; "
                                            f"target '{classes[mid]}' (temporal IoU {t_iou:.2f})\n3DCam, {how}")
    return figures.save_figure(fig, out / "fig_temporal.png"), t_iou


def _one_clip_per_class(X, gt, y, pred, G, P, boxes, classes) -> torch.Tensor:
    """One correct clip per class (else any), input | GradCAM | 3DCam side by side with the boxes (the
    ground truth green, the prediction red): frames ``(T', H, W, 3)`` uint8 for the GIF and MP4."""
    n_test = X.shape[0]
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

        def boxed(video, predicted=None):  # ground truth in green, the prediction in red
            video = overlays.draw_boxes(video, gt[i], color=overlays.GT_COLOR, thickness=1)
            return video if predicted is None else overlays.draw_boxes(video, predicted, thickness=1)

        plain = boxed(frames)
        gc = boxed(overlays.overlay(frames, G[i]), boxes["GradCAM"][i])
        cm = boxed(overlays.overlay(frames, P[i]), boxes["3DCam"][i])
        segments_video.append(overlays.tile_videos(
            [overlays.resize_frames(v, scale) for v in (plain, gc, cm)],
            [f"{classes[int(y[i])]} (pred {classes[int(pred[i])]})", "GradCAM (conv4)", "3DCam (conv1-4)"]))
    return torch.cat([torch.from_numpy(v) for v in segments_video])


def _report(table: str, *, out, quick, seed, recipe, classes, reused, ckpt, n_test, accuracy, layer_names, preset, how,
            box_kw, metrics, t_iou, seconds) -> str:
    """The text of ``report.md``: how to reproduce, the data, model and attribution, the table, the figures, the time."""
    cmd = "captum-3dcam demo --out " + str(out) + (" --quick" if quick else "")
    return f"""# captum-3dcam demo

Reproduce: `{cmd}` (seed {seed}).

- Data: `SyntheticActions` ({recipe['difficulty']}; classes: {', '.join(classes)}); the class is the
  actor's motion, its exact box is known in every frame.
- Model: `Small3DCNN` ({'loaded from' if reused else 'trained to'} `{ckpt}`; recipe: {recipe['train_videos']}
  training videos, {recipe['epochs']} epochs). Test accuracy on the {n_test} explained clips: {accuracy:.3f}.
- Attribution: target = the predicted class; 3DCam over `{'`, `'.join(layer_names)}` (preset `{preset}`: {how});
  GradCAM on `conv4`. Boxes: 3DCam {box_kw}; GradCAM 0.5 of each frame's maximum, largest region.

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


def run_demo(
    out: PathLike = "captum-3dcam-demo",
    *,
    checkpoint: Optional[PathLike] = None,
    retrain: bool = False,
    quick: bool = False,
    test_videos: Optional[int] = None,
    threshold: Optional[float] = None,
    seed: int = 0,
    preset: str = "localize",
    device: str = "auto",
    progress: bool = True,
) -> Dict[str, Any]:
    """The embedded default, end to end: data, model, 3DCam vs GradCAM, metrics, figures, report.

    1. :class:`~captum_3dcam.datasets.SyntheticActions` (five motion classes with exact boxes);
    2. :class:`~captum_3dcam.models.Small3DCNN` trained with
       :func:`~captum_3dcam.training.loop.load_or_train_small_model` (cached: a second run reuses it);
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
        threshold: box threshold of the 3DCam rows (default: the preset's); GradCAM's boxes use 0.5
            of each frame's maximum.
        preset: the attribution and box settings of 3DCam (:mod:`captum_3dcam.attr.presets`, default
            ``"localize"``; ``"paper"`` for the paper's eq. 1-3).
        seed: seeds data and training.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available) for the explanations.
        progress: progress bars and messages on stderr.

    Returns:
        a dict with ``metrics`` (per method), ``table`` (markdown), ``files``, ``seconds`` (per step)
        and ``accuracy``.
    """
    out = check_output_dir(out, "--out")  # before minutes of training, not after
    chosen = get_preset(preset)  # a bad name fails here, before the training
    kw = chosen["attribute"]
    box_kw = dict(chosen["boxes"], **({} if threshold is None else {"threshold": float(threshold)}))
    out.mkdir(parents=True, exist_ok=True)
    seconds: Dict[str, float] = {}
    t_all = time.perf_counter()
    overrides = dict(QUICK_RECIPE) if quick else {}
    recipe = {**SMALL_MODEL_RECIPE, **overrides}
    check_seed(seed)
    ckpt = (as_path(checkpoint, "--checkpoint", kind="file") if checkpoint is not None
            else default_small_checkpoint(seed, **overrides))
    for stale in (ckpt, ckpt.with_name(ckpt.name + ".partial")) if retrain else ():
        if stale.is_file():
            stale.unlink()

    # 1-2. model ------------------------------------------------------------------------------
    t0 = time.perf_counter()
    reused = ckpt.is_file() and not is_unfinished_small_checkpoint(ckpt)  # an interrupted run is finished
    log(f"[1/5] {'loading' if reused else 'training'} the small model ({ckpt}) ...", progress)
    device = resolve_device(device)
    if checkpoint is not None and reused:  # the user's own model: used as it is, never retrained
        model = load_small_checkpoint(ckpt)
    else:
        model = load_or_train_small_model(ckpt, seed=seed, progress=progress, device=device, **overrides)
    model = model.to(device)
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
    log(f"[2/5] explaining {n_test} test clips with 3DCam and GradCAM ...", progress)
    layer_names = default_layer_names(model)
    layers = default_layers(model)
    cam3d = GlobalLocal3DCam(model, layers)
    gradcam = GlobalLocal3DCam(model, [model.conv4])
    with torch.no_grad():
        probs = model(X.to(device)).softmax(-1).cpu()
    pred = probs.argmax(-1)
    P, layer_maps = _batched(lambda x: cam3d.attribute(x.to(device), return_layer_maps=True, **kw), X)
    G = _batched(lambda x: gradcam.attribute(x.to(device), layer_rule="gradcam"), X)
    P, G, layer_maps = P.cpu(), G.cpu(), [m.cpu() for m in layer_maps]
    methods = {"GradCAM": (G, "conv4"), "3DCam": (P, "+".join(layer_names))}
    metrics, boxes = {}, {}
    for name, (maps, used) in methods.items():
        boxes[name] = attribution_to_boxes(maps, **(box_kw if name == "3DCam" else {"threshold": 0.5}))
        meter = LocalizationMeter()
        meter.update(maps, gt, boxes[name], predicted=pred, labels=y)
        metrics[name] = {"method": name, "layers": used, **meter.compute()}
    accuracy = float((pred == y).double().mean())
    seconds["explain"] = time.perf_counter() - t0

    # 4. figures ---------------------------------------------------------------------------------
    t0 = time.perf_counter()
    log("[3/5] drawing the figures ...", progress)
    files: Dict[str, Path] = {}
    correct = (pred == y).nonzero().flatten().tolist()
    k = correct[0] if correct else 0
    rgb = SyntheticActions.to_rgb(X[k])
    x_k = X[k : k + 1].to(device)
    how = figures.describe_attribution(kw.get("layer_rule", "3dcam"), kw.get("aggregation", "sum"),
                                       kw.get("normalize_layers", True), layers=layer_names,
                                       **{k: v for k, v in kw.items()
                                          if k not in ("layer_rule", "aggregation", "normalize_layers")})
    title = (f"clip {k}, label {classes[int(y[k])]}; target = predicted class {classes[int(pred[k])]} "
             f"(p={float(probs[k, pred[k]]):.2f})")
    files.update(_clip_figures(model, layers, layer_names, k, rgb, x_k, y, probs, pred, gt, P, G, layer_maps, boxes,
                               classes, kw, how, title, out))
    files["temporal"], t_iou = _untrimmed(model, layers, seed, recipe, classes, kw, box_kw, how, device, out)

    # 5. GIF / MP4: one correct clip per class, input | GradCAM | 3DCam, boxes drawn --------------
    log("[4/5] writing the GIF and MP4 ...", progress)
    anim = _one_clip_per_class(X, gt, y, pred, G, P, boxes, classes)
    files["gif"] = save_gif(anim, out / "attention.gif", fps=8)
    files["mp4"] = save_mp4(anim, out / "attention.mp4", fps=8)
    seconds["figures"] = time.perf_counter() - t0

    # report ----------------------------------------------------------------------------------
    seconds["total"] = time.perf_counter() - t_all
    log("[5/5] writing report.md ...", progress)
    table = markdown_table([metrics["GradCAM"], metrics["3DCam"]], LOCALIZATION_COLUMNS)
    report = _report(table, out=out, quick=quick, seed=seed, recipe=recipe, classes=classes, reused=reused, ckpt=ckpt,
                     n_test=n_test, accuracy=accuracy, layer_names=layer_names, preset=preset, how=how, box_kw=box_kw,
                     metrics=metrics, t_iou=t_iou, seconds=seconds)
    (out / "report.md").write_text(report)
    files["report"] = out / "report.md"
    (out / "metrics.json").write_text(json.dumps(
        {"metrics": metrics, "accuracy": accuracy, "temporal_iou": t_iou, "seconds": seconds,
         "checkpoint": str(ckpt), "reused_model": reused}, indent=1))
    files["metrics"] = out / "metrics.json"
    return {"metrics": metrics, "accuracy": accuracy, "temporal_iou": t_iou, "files": files,
            "seconds": seconds, "checkpoint": ckpt, "table": table}
