"""Localization metrics of many methods over a dataset, from as few model passes as possible.

Lives here: :func:`evaluate_methods` (the paper's protocol: target = the predicted class, boxes by
contour thresholding, pointing game, IoU accuracy, Acc2, optionally a sweep of box
configurations) and the batching of dataset items. Does not live here: what a method is
(:mod:`captum_3dcam.evaluation.methods`), the tables (:mod:`captum_3dcam.evaluation.tables`),
the metrics themselves (:mod:`captum_3dcam.metrics.localization`).
"""
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .._utils import compute_dtype, normalize_minmax, progress_bar, resolve_layers
from ..attr.attribution import Counterfactual3DCam, GlobalLocal3DCam
from ..errors import Captum3DCamError
from ..attr.rules import aggregate
from ..localization.boxes import attribution_to_boxes
from ..metrics.localization import LocalizationMeter, box_iou, pointing_game
from ..video.windows import sliding_windows, stitch_windows
from .methods import Context, Method, available_methods, get_method, method_layers, unavailable

__all__ = ["evaluate_methods", "IOU_THRESHOLDS", "config_key"]

IOU_THRESHOLDS = (0.0, 0.5, 0.6)


def config_key(threshold, region: str = "largest", **extra) -> str:
    """The name of a box configuration: ``"0.5/largest"`` (``"otsu/peak"``, ``"0.5/largest/connectivity=4"``)."""
    return "/".join([str(threshold), str(region)] + [f"{k}={v}" for k, v in sorted(extra.items())])


def _batches(items: Iterable, batch_size: int):
    """Group ``(clip, boxes, label[, geometry])`` items; items with a geometry go alone."""
    batch = []
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) not in (3, 4):
            raise ValueError("dataset: expected items (clip, boxes, label) or (clip, boxes, label, geometry)")
        geometry = item[3] if len(item) == 4 else None
        if geometry is not None:
            if batch:
                yield batch, None
                batch = []
            yield [item], geometry
            continue
        batch.append(item)
        if len(batch) == batch_size:
            yield batch, None
            batch = []
    if batch:
        yield batch, None


def _stack(batch) -> Tuple[Tensor, Tensor, Tensor]:
    clips, boxes, labels = [], [], []
    for clip, box, label in (item[:3] for item in batch):
        clip = torch.as_tensor(clip)
        clips.append(clip if clip.dim() == 5 else clip[None])
        box = torch.as_tensor(box, dtype=torch.float32)
        boxes.append(box if box.dim() == 3 else box[None])
        labels.append(int(label))
    return torch.cat(clips), torch.cat(boxes), torch.tensor(labels)


def _groups(methods: List[Method], names: List[str]) -> List[Tuple[Any, List[Method]]]:
    """Methods that share a model pass: the same class and ``attribute`` keywords but ``aggregation``."""
    groups: Dict[Any, List[Method]] = {}
    for m in methods:
        gated = m.attribute.get("gate") is not None  # the gate fuses inside attribute: a pass of its own
        key = m.provider if m.provider is not None else (
            m.counterfactual, gated and m.name,
            tuple(sorted((k, repr(v)) for k, v in m.attribute.items() if gated or k != "aggregation")))
        groups.setdefault(key, []).append(m)
    return list(groups.items())


def _pass(group: List[Method], ctx: Context, modules: Dict[str, nn.Module], x: Tensor, target: Tensor):
    """``{method name: maps}`` of one group, from one pass of the model."""
    first = group[0]
    if first.provider is not None:  # methods with the same provider share its maps (e.g. other box settings)
        maps = first.provider(ctx, x, target)
        return {m.name: maps for m in group}
    cls = Counterfactual3DCam if first.counterfactual else GlobalLocal3DCam
    if first.attribute.get("gate") is not None:  # its group is itself: attribute's own fused map
        layers = [modules[n] for n in method_layers(first, ctx.names)]
        return {first.name: cls(ctx.model, layers).attribute(x, target=target, **first.attribute)}
    wanted = {n for m in group for n in method_layers(m, ctx.names)}
    order = [n for n in ctx.names if n in wanted] + sorted(wanted - set(ctx.names))
    kwargs = {k: v for k, v in first.attribute.items() if k != "aggregation"}
    _, maps = cls(ctx.model, [modules[n] for n in order]).attribute(x, target=target, return_layer_maps=True,
                                                                     **kwargs)
    by_name = dict(zip(order, maps))
    out = {}
    for m in group:
        chosen = [by_name[n] for n in method_layers(m, ctx.names)]
        if m.rescale == "minmax":
            chosen = [normalize_minmax(c, (1, 2, 3, 4)) for c in chosen]
        out[m.name] = aggregate(chosen, m.attribute.get("aggregation", "sum"))
    return out


def _windowed_pass(group, ctx, modules, x: Tensor, target: Tensor, spans) -> Dict[str, Tensor]:
    """:func:`_pass` over each ``[start, stop)`` window of ``x``, the maps stitched back onto every frame."""
    if len(spans) == 1 and spans[0] == (0, x.shape[2]):
        return _pass(group, ctx, modules, x, target)
    per_window = [_pass(group, ctx, modules, x[:, :, a:b], target) for a, b in spans]
    return {name: stitch_windows(torch.stack([w[name].detach() for w in per_window]), spans, x.shape[2])
            for name in per_window[0]}


def _chosen(model: nn.Module, names: List[str], methods) -> List[Method]:
    """The methods asked for (default: every available one), each checked: listed once, its layers in ``model``."""
    if methods is None:
        chosen = [get_method(n, names) for n in available_methods(names)]
        chosen = [m for m in chosen if unavailable(m) is None]
    else:
        chosen = [get_method(m, names) for m in methods]
    order = [m.name for m in chosen]
    if len(set(order)) != len(order):
        raise Captum3DCamError(f"methods: a method is listed twice in {order}")
    modules = dict(model.named_modules())
    for m in chosen:
        missing = [n for n in method_layers(m, names) if n not in modules]
        if missing:
            raise Captum3DCamError(f"methods: {m.name} uses layers {missing} that {type(model).__name__} lacks")
    return chosen


def _score(frame_maps: Tensor, geometry, gt: Tensor, correct: Tensor, configs, meters) -> None:
    """One method's maps of a batch into its meters, for each box configuration of ``configs``.

    Boxes at model resolution, mapped to the frame: the same boxes as explain, explain-dataset and the
    README's path; pointing on the map in the frame's pixels (each frame's minimum outside the crop).
    """
    model_maps = frame_maps.detach().to(compute_dtype(frame_maps.dtype))  # float64 stays float64
    in_frame = (model_maps if geometry is None else geometry.maps_to_frame(model_maps)).cpu()
    hits = pointing_game(in_frame, gt)
    for c in configs:
        boxes = attribution_to_boxes(model_maps, **c).cpu()
        boxes = boxes if geometry is None else geometry.boxes_to_frame(boxes)
        meters[config_key(**c)].add(hits, box_iou(boxes, gt), correct)


def evaluate_methods(
    model: nn.Module,
    layers: Sequence[nn.Module],
    dataset: Iterable,
    methods: Optional[Sequence[Union[str, Method]]] = None,
    *,
    threshold=0.5,
    region: str = "largest",
    sweep: Optional[Sequence[Tuple[object, str]]] = None,
    iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
    batch_size: int = 8,
    device=None,
    label_match: Optional[Callable[[Tensor, Tensor], Tensor]] = None,
    show_progress: bool = False,
    on_error: str = "record",
    seed: int = 0,
    windows: Optional[Tuple[int, int]] = None,
) -> Dict[str, Dict]:
    """Localization metrics of each method on a dataset (the paper's Tables 3-5).

    Args:
        model: the classifier, ``(N, C, T, H, W) -> (N, classes)``; put it in eval mode first.
        layers: its layers, shallow to deep (the last one is GradCAM's layer).
        dataset: iterable of ``(clip (C, T, H, W), boxes (T, 4), label)`` or, for clips whose maps
            must be mapped back to the original frame, ``(clip, boxes, label, geometry)`` with
            ``geometry.maps_to_frame`` (:class:`captum_3dcam.video.geometry.ClipGeometry`) and ``boxes``
            in the original frame's pixels. Boxes are NaN rows where a frame has no ground truth.
        methods: names from :func:`available_methods` (``"preset:localize"`` included) or
            :class:`Method` objects; default: all, peers included when their package imports.
        threshold, region: the box configuration of the main metrics
            (:func:`captum_3dcam.localization.boxes.attribution_to_boxes`); a method's own ``boxes``
            replace them for that method.
        sweep: further ``(threshold, region)`` configurations, reported under ``"sweep"``.
        iou_thresholds: IoU accuracy thresholds (0.0 means IoU > 0).
        batch_size: clips per model pass.
        device: where the clips go (default: the model's parameters' device).
        label_match: ``(predicted (N,), labels (N,)) -> (N,) bool`` for Acc2 (default equality).
        show_progress: a progress bar over the batches.
        on_error: ``"record"`` stores a method's exception under ``"error"`` and goes on;
            ``"raise"`` re-raises.
        seed: seeds the ``"random"`` baseline.
        windows: ``(clip_len, stride)``: clips longer than ``clip_len`` frames go through the model
            in sliding windows (:func:`~captum_3dcam.video.windows.sliding_windows`); the predicted class
            is the argmax of the windows' mean softmax, every method explains it in each window and
            its maps are averaged back onto the frames (:func:`~captum_3dcam.video.windows.stitch_windows`),
            as ``captum-3dcam explain`` does with a long video. ``None``: each clip in one pass.

    Returns:
        ``{method: metrics}`` where metrics holds ``pointing``, ``mean_iou``, ``iou@t``,
        ``acc2_pointing``, ``acc2@t``, ``class_acc``, ``frames``, ``clips``, ``seconds`` (time in
        the method's model passes), and ``sweep: {"threshold/region": metrics}`` when asked;
        ``{"error": message}`` for a method that failed, ``{"skipped": reason}`` for a peer
        asked for by name whose package does not import here.

    Shape:
        - dataset items: clip :math:`(C, T, H, W)`, boxes :math:`(T, 4)`
    """
    if on_error not in ("record", "raise"):
        raise ValueError(f"on_error: expected 'record' or 'raise', got {on_error!r}")
    names, layers = resolve_layers(model, list(layers))
    chosen = _chosen(model, names, methods)
    order, modules = [m.name for m in chosen], dict(model.named_modules())
    results: Dict[str, Dict] = {m.name: {"skipped": unavailable(m)} for m in chosen if unavailable(m)}
    chosen = [m for m in chosen if m.name not in results]
    configs = [{"threshold": t, "region": r} for t, r in (sweep or [])]
    main = {"threshold": threshold, "region": region}
    own = {m.name: dict(main, **(m.boxes or {})) for m in chosen}
    per_method = {m.name: configs if own[m.name] in configs else [own[m.name]] + configs for m in chosen}
    meters = {m: {config_key(**c): LocalizationMeter(iou_thresholds) for c in cs} for m, cs in per_method.items()}
    seconds = {m.name: 0.0 for m in chosen}
    errors: Dict[str, str] = {}
    match = label_match or (lambda p, y: p == y)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    ctx = Context(model, layers, names, torch.Generator().manual_seed(seed))
    groups = _groups(chosen, names)

    for batch, geometry in progress_bar(_batches(dataset, batch_size), "localization", unit="batch",
                                        enabled=show_progress):
        x, gt, labels = _stack(batch)
        x = x.to(device)
        length = x.shape[2]
        spans = [(0, length)] if windows is None or length <= windows[0] else sliding_windows(length, *windows)
        with torch.no_grad():
            predicted = torch.stack([model(x[:, :, a:b]).softmax(dim=1) for a, b in spans]).mean(dim=0).argmax(dim=1)
        correct = match(predicted.cpu(), labels).bool()
        for _, group in groups:
            if all(m.name in errors for m in group):
                continue
            start = time.perf_counter()
            try:
                maps = _windowed_pass(group, ctx, modules, x, predicted, spans)
            except Exception as exc:  # noqa: BLE001  (recorded per method, the others go on)
                if on_error == "raise":
                    raise
                errors.update({m.name: f"{type(exc).__name__}: {exc}" for m in group})
                continue
            elapsed = time.perf_counter() - start
            for name, frame_maps in maps.items():
                seconds[name] += elapsed
                _score(frame_maps, geometry, gt, correct, per_method[name], meters[name])
    for m in chosen:
        if m.name in errors:
            results[m.name] = {"error": errors[m.name]}
            continue
        metrics = dict(meters[m.name][config_key(**own[m.name])].compute(), seconds=seconds[m.name])
        if sweep:
            metrics["sweep"] = {k: meter.compute() for k, meter in meters[m.name].items()}
        results[m.name] = metrics
    return {name: results[name] for name in order}
