"""Weakly-supervised localization benchmark: the paper's Tables 3, 4 and 5, reproduced by command.

    python benchmarks/localization.py                      # synthetic (3 seeds) + the real clip
    python benchmarks/localization.py --skip-real --seeds 0
    python benchmarks/localization.py --skip-synthetic

For every method the attribution map of the predicted class is thresholded per frame
(``threshold * max``, default 0.5), the largest connected region's box is compared with the ground
truth, and the paper's metrics are reported (:mod:`captum_3dcam.metrics`): hit point / pointing
game (Table 3), IoU accuracy at 0.0 (IoU > 0), 0.5 and 0.6 and mean IoU (Table 4), Acc2 (Table 5,
frames count only where the clip's predicted class is its label).

Data:
  (a) :class:`~captum_3dcam.datasets.SyntheticActions` (exact boxes) with the trained
      :class:`~captum_3dcam.models.Small3DCNN`, one model per seed (trained once, checkpoints in
      ``runs/``), evaluated on the seed's test split;
  (b) the real UCF101 clip ``../shared/data/ucf101_24/v_Basketball_g01_c01.avi`` with its UCF101-24
      boxes, explained by I3D Kinetics-400 (target: the predicted class; Acc2 counts the frames when
      the prediction is "shooting basketball"); maps are mapped back to the 320x240 frame through
      the preprocessing geometry (:class:`~captum_3dcam.video.ClipGeometry`).

Methods (all computed for the same target, the model's predicted class):
  gradcam_last          Captum ``LayerGradCam`` on the last selected layer, trilinear upsampling
  3dcam_layer:<name>    3DCam (eq. 1-2) of one layer
  3dcam_sum             3DCam over all layers, sum (the library's default configuration)
  3dcam_mean / _max     average / element-wise max aggregation
  3dcam_sum_raw         sum without per-layer normalization (``normalize_layers=False``)
  *_sum_minmax          sum of the layer maps after per-layer min-max scaling (as pytorch-grad-cam
                        does), from the same pass
  gradcam_rule_sum      the "gradcam" layer rule, summed over the layers
  layercam_rule_sum     the "layercam" layer rule, summed over the layers
  counterfactual_sum    Counterfactual 3DCam (eq. 4): what argues *against* the class
  pgc_*                 pytorch-grad-cam GradCAM, GradCAM++, LayerCAM with all layers as targets
  torchcam_*            torch-cam GradCAM, GradCAMpp, LayerCAM with all layers, fused by max

The module is also a library: :func:`evaluate_methods` runs any subset of the methods on any
iterable of ``(clip, boxes, label[, geometry])`` items and returns the metrics per method.
"""
import argparse
import json
import math
import sys
import time
import types
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # running the script from a checkout without installing it
    sys.path.insert(0, str(REPO))
from benchmarks._results import write_results_block  # noqa: E402  (shared by every benchmark)

from captum_3dcam.localization import attribution_to_boxes  # noqa: E402
from captum_3dcam.metrics import LocalizationMeter, box_iou, pointing_game  # noqa: E402

__all__ = [
    "available_methods",
    "evaluate_methods",
    "synthetic_items",
    "ucf_sample_items",
    "load_gttubes",
    "peer_status",
    "render",
    "write_results_block",
    "main",
]

DEFAULT_SWEEP = tuple((t, "largest") for t in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, "otsu")) + (
    (0.5, "peak"),
    (0.5, "union"),
)
IOU_THRESHOLDS = (0.0, 0.5, 0.6)
PEER_PACKAGES = {"pgc": "grad-cam (pytorch-grad-cam)", "torchcam": "torchcam"}
RESULTS_BLOCK = "localization"


# ---------------------------------------------------------------------------------------------
# peers


def _import_pytorch_grad_cam():
    """Import pytorch-grad-cam, or return (None, reason).

    pytorch-grad-cam 1.5.x imports torchvision at package import (``utils/model_targets.py``,
    ``utils/image.py``, ``sess.py``), although GradCAM, GradCAM++ and LayerCAM never call it. Where
    torchvision is missing, the import goes through with temporary placeholder modules that raise
    on any use, removed from ``sys.modules`` right after; the methods benchmarked run unchanged.
    """
    try:
        import pytorch_grad_cam  # noqa: F401

        return pytorch_grad_cam, "imported"
    except ModuleNotFoundError as exc:
        if exc.name != "torchvision":
            return None, f"not importable: {exc}"
    stubs = {}

    def _unavailable(*args, **kwargs):
        raise RuntimeError("torchvision is not installed (placeholder used to import pytorch-grad-cam)")

    for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional", "torchvision.ops"):
        mod = types.ModuleType(name)
        mod.__getattr__ = lambda attr, _n=name: _unavailable  # noqa: E731
        stubs[name] = mod
    stubs["torchvision"].transforms = stubs["torchvision.transforms"]
    stubs["torchvision"].ops = stubs["torchvision.ops"]
    stubs["torchvision.transforms"].functional = stubs["torchvision.transforms.functional"]
    for mod_name in [m for m in sys.modules if m.startswith("pytorch_grad_cam")]:
        del sys.modules[mod_name]
    sys.modules.update(stubs)
    try:
        import pytorch_grad_cam
    except Exception as exc:  # noqa: BLE001
        return None, f"not importable even with a torchvision placeholder: {type(exc).__name__}: {exc}"
    finally:
        for name in stubs:
            sys.modules.pop(name, None)
    return pytorch_grad_cam, "imported with a torchvision placeholder (torchvision not installed)"


def _import_torchcam():
    try:
        import torchcam.methods as methods

        return methods, "imported"
    except Exception as exc:  # noqa: BLE001
        return None, f"not importable: {type(exc).__name__}: {exc}"


def peer_status() -> Dict[str, str]:
    """Whether each peer library can be used here, and how it was imported."""
    return {"pytorch-grad-cam": _import_pytorch_grad_cam()[1], "torch-cam": _import_torchcam()[1]}


# ---------------------------------------------------------------------------------------------
# map providers: one model pass each, several named maps


def _captum_gradcam(model, layers, names, x, target):
    from captum.attr import LayerGradCam

    from captum_3dcam.upsample import upsample_to

    cam = LayerGradCam(model, layers[-1]).attribute(x, target=target, relu_attributions=True)
    return {"gradcam_last": upsample_to(cam.detach(), tuple(x.shape[2:]))}


def _minmax(m: Tensor) -> Tensor:
    """Per-sample min-max scaling of a map ``(N, 1, T, H, W)`` to ``[0, 1]`` (a constant map -> 0)."""
    lo = m.amin(dim=(1, 2, 3, 4), keepdim=True)
    span = m.amax(dim=(1, 2, 3, 4), keepdim=True) - lo
    return torch.where(span > 0, (m - lo) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(m))


def _3dcam_all(model, layers, names, x, target):
    from captum_3dcam import GlobalLocal3DCam
    from captum_3dcam.layer_rules import aggregate

    total, maps = GlobalLocal3DCam(model, layers).attribute(x, target=target, return_layer_maps=True)
    out = {"3dcam_sum": total, "3dcam_mean": aggregate(maps, "mean"), "3dcam_max": aggregate(maps, "max"),
           "3dcam_sum_minmax": aggregate([_minmax(m) for m in maps], "sum")}
    for name, m in zip(names, maps):
        out[f"3dcam_layer:{name}"] = torch.relu(m)
    return out


def _rule_call(rule):
    def provider(model, layers, names, x, target):
        from captum_3dcam import GlobalLocal3DCam
        from captum_3dcam.layer_rules import aggregate

        total, maps = GlobalLocal3DCam(model, layers).attribute(x, target=target, layer_rule=rule, return_layer_maps=True)
        return {f"{rule}_rule_sum": total, f"{rule}_rule_sum_minmax": aggregate([_minmax(m) for m in maps], "sum")}

    return provider


def _3dcam_call(key, cls_name="GlobalLocal3DCam", **kwargs):
    def provider(model, layers, names, x, target):
        import captum_3dcam

        cls = getattr(captum_3dcam, cls_name)
        return {key: cls(model, layers).attribute(x, target=target, **kwargs)}

    return provider


def _pgc(method_name, key):
    def provider(model, layers, names, x, target):
        pgc, status = _import_pytorch_grad_cam()
        if pgc is None:
            raise RuntimeError(f"pytorch-grad-cam {status}")
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        cls = getattr(pgc, method_name)
        with cls(model=model, target_layers=list(layers)) as cam:
            maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(c)) for c in target])
        return {key: torch.as_tensor(maps, dtype=x.dtype)[:, None]}

    return provider


def _torchcam(method_name, key):
    def provider(model, layers, names, x, target):
        methods, status = _import_torchcam()
        if methods is None:
            raise RuntimeError(f"torch-cam {status}")
        extractor = getattr(methods, method_name)(model, target_layer=list(names), input_shape=tuple(x.shape[1:]))
        try:
            with torch.enable_grad():
                scores = model(x)
                cams = extractor(class_idx=[int(c) for c in target], scores=scores)
            fused = extractor.fuse_cams([c.detach() for c in cams], target_shape=tuple(x.shape[2:]))
        finally:
            extractor.remove_hooks()
        if fused.dim() == 3 + 1 and len(cams) == 1:  # a single layer is returned as it is
            from captum_3dcam.upsample import upsample_to

            fused = upsample_to(fused[:, None], tuple(x.shape[2:]))[:, 0]
        return {key: fused[:, None].to(x.dtype)}

    return provider


def _providers(names: Sequence[str]) -> List[Tuple[str, List[str], Callable]]:
    """(provider, produced method names, function), in evaluation order."""
    return [
        ("captum_gradcam", ["gradcam_last"], _captum_gradcam),
        ("3dcam", ["3dcam_sum", "3dcam_mean", "3dcam_max", "3dcam_sum_minmax"] + [f"3dcam_layer:{n}" for n in names],
         _3dcam_all),
        ("3dcam_raw", ["3dcam_sum_raw"], _3dcam_call("3dcam_sum_raw", normalize_layers=False)),
        ("gradcam_rule", ["gradcam_rule_sum", "gradcam_rule_sum_minmax"], _rule_call("gradcam")),
        ("layercam_rule", ["layercam_rule_sum", "layercam_rule_sum_minmax"], _rule_call("layercam")),
        ("counterfactual", ["counterfactual_sum"], _3dcam_call("counterfactual_sum", "Counterfactual3DCam")),
        ("pgc_gradcam", ["pgc_gradcam"], _pgc("GradCAM", "pgc_gradcam")),
        ("pgc_gradcampp", ["pgc_gradcampp"], _pgc("GradCAMPlusPlus", "pgc_gradcampp")),
        ("pgc_layercam", ["pgc_layercam"], _pgc("LayerCAM", "pgc_layercam")),
        ("torchcam_gradcam", ["torchcam_gradcam"], _torchcam("GradCAM", "torchcam_gradcam")),
        ("torchcam_gradcampp", ["torchcam_gradcampp"], _torchcam("GradCAMpp", "torchcam_gradcampp")),
        ("torchcam_layercam", ["torchcam_layercam"], _torchcam("LayerCAM", "torchcam_layercam")),
    ]


def available_methods(layer_names: Sequence[str]) -> List[str]:
    """Every method name :func:`evaluate_methods` knows for these layers (peers included)."""
    return [m for _, produced, _ in _providers(layer_names) for m in produced]


def _layer_names(model: nn.Module, layers: Sequence[nn.Module]) -> List[str]:
    lookup = {id(m): n for n, m in model.named_modules()}
    missing = [i for i, layer in enumerate(layers) if id(layer) not in lookup]
    if missing:
        raise ValueError(f"layers: entries {missing} are not submodules of the model")
    return [lookup[id(layer)] for layer in layers]


# ---------------------------------------------------------------------------------------------
# evaluation


def _config_key(threshold, region) -> str:
    return f"{threshold}/{region}"


def _batches(items: Iterable, batch_size: int):
    """Group (clip, boxes, label[, geometry]) items; items with a geometry go alone."""
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


def _stack(batch):
    clips, boxes, labels = [], [], []
    for item in batch:
        clip, box, label = item[0], item[1], item[2]
        clip = torch.as_tensor(clip)
        clips.append(clip if clip.dim() == 5 else clip[None])
        box = torch.as_tensor(box, dtype=torch.float32)
        boxes.append(box if box.dim() == 3 else box[None])
        labels.append(int(label))
    return torch.cat(clips), torch.cat(boxes), torch.tensor(labels)


def evaluate_methods(
    model: nn.Module,
    layers: Sequence[nn.Module],
    dataset: Iterable,
    methods: Optional[Sequence[str]] = None,
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
) -> Dict[str, Dict]:
    """Localization metrics of each method on a dataset (the paper's Tables 3-5).

    Args:
        model: the classifier, ``(N, C, T, H, W) -> (N, classes)``; put it in eval mode first.
        layers: its layers, shallow to deep (the last one is GradCAM's layer).
        dataset: iterable of ``(clip (C, T, H, W), boxes (T, 4), label)`` or, for clips whose maps
            must be mapped back to the original frame, ``(clip, boxes, label, geometry)`` with
            ``geometry.maps_to_frame`` (:class:`captum_3dcam.video.ClipGeometry`) and ``boxes`` in
            the original frame's pixels. Boxes are NaN rows where a frame has no ground truth.
        methods: names from :func:`available_methods` (default: all, peers included when their
            package imports).
        threshold, region: the box configuration of the main metrics
            (:func:`captum_3dcam.localization.attribution_to_boxes`).
        sweep: further ``(threshold, region)`` configurations, reported under ``"sweep"``.
        iou_thresholds: IoU accuracy thresholds (0.0 means IoU > 0).
        batch_size: clips per model pass.
        device: where the model runs (default: the model's parameters' device).
        label_match: ``(predicted (N,), labels (N,)) -> (N,) bool`` for Acc2 (default equality).
        show_progress: a tqdm bar over the batches.
        on_error: ``"record"`` stores a method's exception under ``"error"`` and goes on;
            ``"raise"`` re-raises.

    Returns:
        ``{method: metrics}`` where metrics holds ``pointing``, ``mean_iou``, ``iou@t``,
        ``acc2_pointing``, ``acc2@t``, ``class_acc``, ``frames``, ``clips``, ``seconds`` (time in
        the method's model passes), and ``sweep: {"threshold/region": metrics}`` when asked;
        or ``{"error": message}`` for a method that failed.
    """
    if on_error not in ("record", "raise"):
        raise ValueError(f"on_error: expected 'record' or 'raise', got {on_error!r}")
    layers = list(layers)
    names = _layer_names(model, layers)
    known = available_methods(names)
    if methods is None:
        methods = [m for m in known if not _is_unavailable_peer(m)]
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise ValueError(f"methods: unknown {unknown}; known: {known}")
    configs = [tuple(c) for c in (sweep or [])]
    if (threshold, region) not in configs:
        configs.insert(0, (threshold, region))
    device = torch.device(device) if device is not None else next(model.parameters()).device
    wanted = set(methods)
    providers = [(p, [m for m in produced if m in wanted], fn) for p, produced, fn in _providers(names)]
    providers = [p for p in providers if p[1]]
    meters = {m: {_config_key(*c): LocalizationMeter(iou_thresholds) for c in configs} for m in methods}
    seconds = {m: 0.0 for m in methods}
    errors: Dict[str, str] = {}
    match = label_match or (lambda p, y: p == y)

    batches = _batches(dataset, batch_size)
    if show_progress:
        try:
            from tqdm.auto import tqdm
        except ImportError as exc:  # pragma: no cover
            raise ImportError("show_progress=True needs tqdm: pip install captum-3dcam[progress]") from exc
        batches = tqdm(batches, desc="localization", unit="batch")
    for batch, geometry in batches:
        x, gt, labels = _stack(batch)
        x = x.to(device)
        with torch.no_grad():
            predicted = model(x).argmax(dim=1)
        correct = match(predicted.cpu(), labels).bool()
        for pname, produced, fn in providers:
            if all(m in errors for m in produced):
                continue
            start = time.perf_counter()
            try:
                maps = fn(model, layers, names, x, predicted)
            except Exception as exc:  # noqa: BLE001
                if on_error == "raise":
                    raise
                for m in produced:
                    errors[m] = f"{type(exc).__name__}: {exc}"
                continue
            elapsed = time.perf_counter() - start
            for m in produced:
                seconds[m] += elapsed
                frame_maps = maps[m].detach().float()
                if geometry is not None:
                    frame_maps = geometry.maps_to_frame(frame_maps)
                frame_maps = frame_maps.cpu()
                hits = pointing_game(frame_maps, gt)
                for c in configs:
                    boxes = attribution_to_boxes(frame_maps, c[0], region=c[1])
                    meters[m][_config_key(*c)].add(hits, box_iou(boxes, gt), correct)
    results: Dict[str, Dict] = {}
    main_key = _config_key(threshold, region)
    for m in methods:
        if m in errors:
            results[m] = {"error": errors[m]}
            continue
        metrics = dict(meters[m][main_key].compute())
        metrics["seconds"] = seconds[m]
        if sweep:
            metrics["sweep"] = {k: meter.compute() for k, meter in meters[m].items()}
        results[m] = metrics
    return results


def _is_unavailable_peer(method: str) -> bool:
    if method.startswith("pgc_"):
        return _import_pytorch_grad_cam()[0] is None
    if method.startswith("torchcam_"):
        return _import_torchcam()[0] is None
    return False


# ---------------------------------------------------------------------------------------------
# data


def synthetic_items(num_videos: int, seed: int, **kwargs):
    """The test split of :class:`SyntheticActions` as ``(clip, boxes, label)`` items."""
    from captum_3dcam.datasets import SyntheticActions

    return SyntheticActions(num_videos=num_videos, split="test", seed=seed, **kwargs)


def load_gttubes(path, video: str, num_frames: int) -> Tensor:
    """Per-frame boxes ``(num_frames, 4)`` of ``video`` from an act-detector ``gttubes`` pickle.

    Rows are ``(frame, x1, y1, x2, y2)`` with 1-based frames; frames without a box are NaN. All
    tubes of the video are read; a frame with boxes in several tubes keeps the union box.

    Raises:
        FileNotFoundError, ValueError: a missing file, a malformed layout, or no such video.
    """
    import pickle

    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotations: no file at {path}")
    try:
        with open(path, "rb") as f:
            data = pickle.load(f, encoding="latin1")
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"annotations: {path} is not a readable pickle ({type(exc).__name__}: {exc})") from exc
    tubes = data.get("gttubes", data) if isinstance(data, dict) else None
    if not isinstance(tubes, dict):
        raise ValueError(f"annotations: {path}: expected a dict {{video: {{label: [tubes]}}}}")
    if video not in tubes:
        raise ValueError(f"annotations: {path} has no video {video!r}")
    boxes = torch.full((num_frames, 4), float("nan"))
    for label, tube_list in tubes[video].items():
        for tube in tube_list:
            arr = np.asarray(tube, dtype=np.float64)
            if arr.ndim != 2 or arr.shape[1] != 5:
                raise ValueError(f"annotations: {video}/{label}: expected (M, 5) rows (frame, x1, y1, x2, y2), got {arr.shape}")
            for frame, x1, y1, x2, y2 in arr:
                t = int(frame) - 1
                if not 0 <= t < num_frames:
                    continue
                new = torch.tensor([x1, y1, x2, y2], dtype=torch.float32)
                old = boxes[t]
                boxes[t] = new if torch.isnan(old).any() else torch.cat([torch.minimum(old[:2], new[:2]), torch.maximum(old[2:], new[2:])])
    return boxes


def ucf_sample_items(data_dir, num_frames: int = 64, start: Optional[int] = None):
    """The UCF101-24 basketball clip as one ``(clip, boxes, label, geometry)`` item for I3D.

    The window of ``num_frames`` frames starts at ``start`` or, by default, is centred on the
    ground-truth tube (clamped to the video), so every annotated frame that fits is scored. The
    label is Kinetics-400's "shooting basketball" (296).
    """
    from captum_3dcam.video import preprocess_i3d, read_video

    data_dir = Path(data_dir)
    video = data_dir / "ucf101_24" / "v_Basketball_g01_c01.avi"
    frames = read_video(video)
    gt = load_gttubes(data_dir / "ucf101_24" / "gt_tubes_sample.pkl", "Basketball/v_Basketball_g01_c01", frames.shape[0])
    total = frames.shape[0]
    num_frames = min(num_frames, total)
    if start is None:
        have = torch.nonzero(~torch.isnan(gt).any(-1)).flatten()
        centre = int(have.float().mean().round()) if have.numel() else total // 2
        start = min(max(centre - num_frames // 2, 0), total - num_frames)
    clip, geometry = preprocess_i3d(frames[start : start + num_frames])
    return [(clip[0], gt[start : start + num_frames], 296, geometry)], {"start": start, "num_frames": num_frames, "video_frames": total}


def sanity_table(model: nn.Module, layers: Sequence[nn.Module], clips: Tensor, seed: int = 0) -> List[str]:
    """Cascading randomization (Adebayo et al. 2018) of 3DCam and last-layer GradCAM, as markdown rows."""
    from captum.attr import LayerGradCam

    from captum_3dcam import GlobalLocal3DCam
    from captum_3dcam.sanity import cascading_randomization
    from captum_3dcam.upsample import upsample_to

    names = _layer_names(model, layers)

    def cam3d(m, x, t):
        mods = dict(m.named_modules())
        return GlobalLocal3DCam(m, [mods[n] for n in names]).attribute(x, target=t)

    def gradcam(m, x, t):
        layer = dict(m.named_modules())[names[-1]]
        return upsample_to(LayerGradCam(m, layer).attribute(x, target=t, relu_attributions=True).detach(), tuple(x.shape[2:]))

    rows = {}
    for label, fn in (("3DCam sum (default)", cam3d), ("LayerGradCam last layer", gradcam)):
        rows[label] = cascading_randomization(model, fn, clips, seed=seed)
    steps = [s.layer for s in next(iter(rows.values()))]
    lines = ["| Method | " + " | ".join(f"+`{s}`" if i else s for i, s in enumerate(steps)) + " |",
             "|" + "---|" * (len(steps) + 1)]
    for label, result in rows.items():
        cells = [f"{float(s.spearman.mean()):.2f} / {float(s.ssim.mean()):.2f}" for s in result]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


# ---------------------------------------------------------------------------------------------
# report


def _fmt(values: List[float], digits: int = 3) -> str:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return "n/a"
    mean = sum(vals) / len(vals)
    if len(vals) == 1:
        return f"{mean:.{digits}f}"
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _mean(values):
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return sum(vals) / len(vals) if vals else float("nan")


LABELS = {
    "gradcam_last": "Captum LayerGradCam, last layer (baseline)",
    "3dcam_sum": "**3DCam sum, all layers (default)**",
    "3dcam_mean": "3DCam avg, all layers",
    "3dcam_max": "3DCam max, all layers",
    "3dcam_sum_raw": "3DCam sum, no per-layer normalization",
    "3dcam_sum_minmax": "3DCam sum, per-layer min-max normalization",
    "gradcam_rule_sum_minmax": "rule gradcam, sum of min-max normalized layers",
    "layercam_rule_sum_minmax": "rule layercam, sum of min-max normalized layers",
    "gradcam_rule_sum": "rule gradcam, sum of layers",
    "layercam_rule_sum": "rule layercam, sum of layers",
    "counterfactual_sum": "Counterfactual 3DCam (eq. 4), sum",
    "pgc_gradcam": "pytorch-grad-cam GradCAM, all layers",
    "pgc_gradcampp": "pytorch-grad-cam GradCAM++, all layers",
    "pgc_layercam": "pytorch-grad-cam LayerCAM, all layers",
    "torchcam_gradcam": "torch-cam GradCAM, all layers",
    "torchcam_gradcampp": "torch-cam GradCAMpp, all layers",
    "torchcam_layercam": "torch-cam LayerCAM, all layers",
}


def _label(method: str) -> str:
    if method.startswith("3dcam_layer:"):
        return f"3DCam single layer `{method.split(':', 1)[1]}`"
    return LABELS.get(method, method)


def _cell(runs: List[Dict], method: str, key: str, config: Optional[str] = None) -> str:
    vals = []
    for r in runs:
        m = r.get(method)
        if m is None:
            continue
        if "error" in m:
            return "error"
        src = m["sweep"][config] if config else m
        vals.append(src.get(key, float("nan")))
    return _fmt(vals)


def _table(columns: Dict[str, List[Dict]], methods: List[str], keys: List[Tuple[str, str]], title: str) -> List[str]:
    head = ["Method"] + [f"{col}: {name}" for col in columns for _, name in keys]
    lines = [f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in methods:
        row = [_label(m)]
        for runs in columns.values():
            row += [_cell(runs, m, k) for k, _ in keys]
        lines.append("| " + " | ".join(row) + " |")
    return lines + [""]


def _best(runs: List[Dict], methods: List[str], key: str, peers: bool):
    """(method, config, value) with the highest mean of ``key`` over runs, among ours or the peers."""
    best = None
    for m in methods:
        if m.startswith(("pgc_", "torchcam_")) != peers or m == "counterfactual_sum":
            continue
        if any("error" in r.get(m, {"error": 1}) for r in runs):
            continue
        for config in runs[0][m].get("sweep", {}):
            v = _mean([r[m]["sweep"][config][key] for r in runs])
            if best is None or v > best[2]:
                best = (m, config, v)
    return best


def _verdict(name: str, runs: List[Dict], methods: List[str], main_config: str) -> List[str]:
    lines = [f"*{name}*:"]
    d = {k: _mean([r["3dcam_sum"][k] for r in runs]) for k in ("pointing", "iou@0.5", "mean_iou")}
    g = {k: _mean([r["gradcam_last"][k] for r in runs]) for k in ("pointing", "iou@0.5", "mean_iou")}
    for k in ("pointing", "iou@0.5", "mean_iou"):
        verdict = "beats" if d[k] > g[k] else ("ties" if d[k] == g[k] else "does NOT beat")
        lines.append(f"- default 3DCam ({main_config}) {verdict} last-layer GradCAM on {k}: {d[k]:.3f} vs {g[k]:.3f} ({d[k] - g[k]:+.3f})")
    for key in ("iou@0.5", "mean_iou"):
        ours = _best(runs, methods, key, peers=False)
        peer = _best(runs, methods, key, peers=True)
        if ours is None:
            continue
        line = f"- best of ours on {key} over the sweep: `{ours[0]}` at {ours[1]}: {ours[2]:.3f}"
        if peer is not None:
            verdict = "beats" if ours[2] > peer[2] else ("ties" if ours[2] == peer[2] else "does NOT beat")
            line += f"; {verdict} the best peer `{peer[0]}` at {peer[1]}: {peer[2]:.3f} ({ours[2] - peer[2]:+.3f})"
        lines.append(line)
    point = {m: _mean([r[m]["pointing"] for r in runs]) for m in methods if all("error" not in r.get(m, {"error": 1}) for r in runs)}
    top = max(point, key=point.get)
    lines.append(f"- best pointing game: `{top}` {point[top]:.3f}")
    return lines + [""]


def _sweep_table(columns: Dict[str, List[Dict]], methods: List[str], key: str) -> List[str]:
    configs = list(next(iter(next(iter(columns.values())))).get("3dcam_sum", {}).get("sweep", {}).keys())
    if not configs:
        return []
    lines = [f"**Box configuration sweep ({key}; threshold/region)**", ""]
    head = ["Data", "Method"] + configs
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for col, runs in columns.items():
        for m in methods:
            if any("error" in r.get(m, {"error": 1}) for r in runs):
                continue
            lines.append("| " + " | ".join([col, _label(m)] + [_cell(runs, m, key, c) for c in configs]) + " |")
    return lines + [""]


def render(columns: Dict[str, List[Dict]], methods: List[str], meta: Dict, main_config: str) -> str:
    """Markdown of Tables 3-5, the sweep and the verdicts."""
    out = []
    out += _table(columns, methods, [("pointing", "hit point")], "Table 3 — pointing game (hit point), fraction of GT frames")
    out += _table(columns, methods, [("iou@0", "IoU>0"), ("iou@0.5", "IoU≥0.5"), ("iou@0.6", "IoU≥0.6"), ("mean_iou", "mean IoU")],
                  f"Table 4 — IoU accuracy (boxes: {main_config})")
    out += _table(columns, methods, [("acc2_pointing", "Acc2 hit"), ("acc2@0", "Acc2 IoU>0"), ("acc2@0.5", "Acc2 ≥0.5"), ("acc2@0.6", "Acc2 ≥0.6")],
                  "Table 5 — Acc2 (a frame counts only when the clip is classified correctly)")
    key_methods = [m for m in methods if not m.startswith("3dcam_layer:")]
    out += _sweep_table(columns, key_methods, "iou@0.5")
    out += _sweep_table(columns, key_methods, "mean_iou")
    out += ["**Verdict** (computed from the numbers above)", ""]
    for col, runs in columns.items():
        if all("3dcam_sum" in r and "gradcam_last" in r for r in runs):
            out += _verdict(col, runs, methods, main_config)
    errors = sorted({f"`{m}`: {r[m]['error']}" for runs in columns.values() for r in runs for m in r if "error" in r[m]})
    if errors:
        out += ["Methods that failed:", ""] + [f"- {e}" for e in errors] + [""]
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="benchmarks/localization.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="synthetic: one trained model per seed")
    p.add_argument("--num-videos", type=int, default=100, help="synthetic: test videos per seed")
    p.add_argument("--checkpoint-dir", default=str(REPO / "runs"), help="synthetic: where the trained models are cached")
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"), help="the shared test data")
    p.add_argument("--real-frames", type=int, default=64, help="real clip: frames fed to I3D")
    p.add_argument("--threshold", default="0.5", help="box threshold (fraction of the frame max) or 'otsu'")
    p.add_argument("--region", default="largest", choices=["largest", "peak", "union"])
    p.add_argument("--methods", nargs="+", default=None, help="subset of methods (default: all available)")
    p.add_argument("--no-sweep", action="store_true", help="only the main box configuration")
    p.add_argument("--skip-synthetic", action="store_true")
    p.add_argument("--skip-real", action="store_true")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--json", default=None, help="also write every number to this JSON file")
    p.add_argument("--results", default=str(REPO / "benchmarks" / "RESULTS.md"), help="markdown file whose block is replaced")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--sanity-clips", type=int, default=8,
                   help="synthetic: clips of the cascading randomization check (first seed; 0 to skip)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (1 is much faster on a CPU shared by other processes)")
    return p


def _parse_threshold(s: str):
    return s if s == "otsu" else float(s)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threshold = _parse_threshold(args.threshold)
    sweep = None if args.no_sweep else list(DEFAULT_SWEEP)
    main_config = _config_key(threshold, args.region)
    columns: Dict[str, List[Dict]] = {}
    meta: Dict = {"peers": peer_status(), "torch": torch.__version__, "threads": torch.get_num_threads()}
    methods_seen: List[str] = []
    t_start = time.time()

    if not args.skip_synthetic:
        from captum_3dcam.models import default_layers
        from captum_3dcam.training import load_or_train_small_model

        runs = []
        for seed in args.seeds:
            ckpt = Path(args.checkpoint_dir) / f"small3dcnn_seed{seed}.pt"
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            model = load_or_train_small_model(ckpt, seed=seed, progress=args.progress).eval()
            t0 = time.time()
            res = evaluate_methods(model, default_layers(model), synthetic_items(args.num_videos, seed), args.methods,
                                   threshold=threshold, region=args.region, sweep=sweep, batch_size=args.batch_size,
                                   show_progress=args.progress)
            print(f"[synthetic seed {seed}] {time.time() - t0:.1f} s, class accuracy "
                  f"{res['3dcam_sum'].get('class_acc', float('nan')) if '3dcam_sum' in res else 'n/a'}", flush=True)
            runs.append(res)
            methods_seen += [m for m in res if m not in methods_seen]
        if args.sanity_clips > 0:
            model = load_or_train_small_model(Path(args.checkpoint_dir) / f"small3dcnn_seed{args.seeds[0]}.pt",
                                              seed=args.seeds[0], progress=False).eval()
            data = synthetic_items(args.num_videos, args.seeds[0])
            clips = torch.stack([data[i][0] for i in range(min(args.sanity_clips, len(data)))])
            meta["sanity"] = sanity_table(model, default_layers(model), clips)
        columns[f"Synthetic ({len(args.seeds)} seed{'s' if len(args.seeds) > 1 else ''})"] = runs
        meta["synthetic"] = {"seeds": args.seeds, "test_videos": args.num_videos, "model": "Small3DCNN (train_small_model)"}

    if not args.skip_real:
        from captum_3dcam.models import default_layers, i3d_kinetics400

        items, info = ucf_sample_items(args.data_dir, args.real_frames)
        model = i3d_kinetics400().eval()
        t0 = time.time()
        res = evaluate_methods(model, default_layers(model), items, args.methods, threshold=threshold,
                               region=args.region, sweep=sweep, batch_size=1, show_progress=args.progress)
        with torch.no_grad():
            probs = model(items[0][0][None]).softmax(-1)[0]
        top = int(probs.argmax())
        info.update(predicted=model.labels[top], probability=round(float(probs[top]), 3))
        print(f"[real clip] {time.time() - t0:.1f} s, predicted {info['predicted']} {info['probability']}", flush=True)
        columns["UCF101-24 basketball (I3D)"] = [res]
        meta["real"] = info
        methods_seen += [m for m in res if m not in methods_seen]

    if not columns:
        print("nothing to do (both --skip-synthetic and --skip-real)")
        return 1
    command = "python benchmarks/localization.py" + ("" if argv is None and len(sys.argv) <= 1 else " " + " ".join(sys.argv[1:] if argv is None else argv))
    header = [
        "## Weakly-supervised localization (paper Tables 3-5)",
        "",
        f"Command: `{command}` (total {time.time() - t_start:.0f} s on this CPU, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads).",
        "",
        "Target = the model's predicted class. Boxes: per frame, threshold at `threshold x frame max`, connected regions "
        "(8-connectivity, scipy), the chosen region's box, compared with the GT box in the frame's pixels; frames without "
        "GT are excluded. Synthetic cells are mean ± std over seeds (one trained Small3DCNN and one test split of "
        f"{args.num_videos} videos x 16 frames per seed).",
    ]
    if "real" in meta:
        r = meta["real"]
        header.append(
            f"Real clip: frames {r['start']}..{r['start'] + r['num_frames'] - 1} of {r['video_frames']} of v_Basketball_g01_c01 "
            f"(the window centred on the GT tube), I3D Kinetics-400 predicts *{r['predicted']}* ({r['probability']}); "
            "Acc2 counts it correct when the prediction is 'shooting basketball'. Maps at 224x224 are mapped back to 320x240."
        )
    header += ["", "Peers: " + "; ".join(f"{k}: {v}" for k, v in meta["peers"].items()) + ".", ""]
    body = "\n".join(header) + "\n" + render(columns, methods_seen, meta, main_config)
    if "sanity" in meta:
        body += ("\n**Sanity check — cascading randomization** (Adebayo et al. 2018; synthetic seed "
                 f"{args.seeds[0]}, {args.sanity_clips} test clips, predicted class fixed): Spearman rank correlation / SSIM "
                 "between the trained model's maps and the maps after re-initializing the named block and every block above it "
                 "(lower = the method depends on the weights, as it should).\n\n" + "\n".join(meta["sanity"]) + "\n")
    print(body)
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": columns}, indent=1, default=str))
    if not args.no_write:
        write_results_block(Path(args.results), body, RESULTS_BLOCK)
        print(f"wrote block '{RESULTS_BLOCK}' of {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
