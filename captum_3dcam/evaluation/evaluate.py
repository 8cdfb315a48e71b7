"""The ``evaluate`` command's library entry: the paper's localization tables over a dataset by name.

    from captum_3dcam.evaluation import run_evaluate

    run_evaluate("synthetic", out="eval/")                               # captum-3dcam evaluate

Lives here: :func:`run_evaluate` and :func:`dataset_items` (a dataset by name, a model by name, the
tables written to a folder). Does not live here: what a method is (:mod:`.methods`), running methods
over a dataset (:mod:`.engine`), the tables (:mod:`.tables`), the model by name (:mod:`.videos`),
``explain-dataset`` (:mod:`.dataset_run`).
"""
import json
import os
from typing import Any, Dict, Optional, Sequence, Union

import torch

from .._utils import as_path, check_output_dir, resolve_device
from ..datasets import NAMES
from ..errors import Captum3DCamError
from ..models.full_frame import model_preprocess
from ..models.registry import ModelSpec, check_layer_names, resolve_model_layers
from ..attr.presets import get_preset
from .engine import evaluate_methods
from .methods import get_method, method_layers
from .tables import LOCALIZATION_COLUMNS, fmt, markdown_table
from .videos import dataset_model_spec, load_dataset_model

__all__ = ["run_evaluate", "dataset_items", "DATASETS"]

PathLike = Union[str, os.PathLike]
DATASETS = NAMES[:3]  # the datasets with boxes


def dataset_items(dataset: str, root: Optional[PathLike] = None, max_videos: Optional[int] = None, seed: int = 0,
                  spec: Optional[ModelSpec] = None, split: str = "test", annotations: Optional[PathLike] = None,
                  full_frame: bool = False):
    """``(clip, boxes, label[, geometry])`` items of a localization dataset, by name.

    ``"synthetic"`` gives :class:`~captum_3dcam.datasets.SyntheticActions` test clips. Real datasets
    (``"jhmdb"``, ``"ucf101-24"``) yield uint8 frames with boxes in the original pixels; each clip is
    preprocessed for the model (``spec.preprocess``) and carries its
    :class:`~captum_3dcam.video.geometry.ClipGeometry`, so maps are scored in the original frame;
    ``full_frame=True``: the whole frame at the model's scale, no centre crop (synthetic clips are
    whole frames already).

    Shape:
        - items: clip :math:`(3, T, h, w)`, boxes :math:`(T, 4)`
    """
    from .. import datasets

    if dataset == "synthetic":
        return datasets.SyntheticActions(int(max_videos or 100), "test", seed=seed)
    if dataset not in DATASETS:
        raise Captum3DCamError(f"--dataset: expected one of {', '.join(DATASETS)}, got {dataset!r}")
    if root is None or not as_path(root, "--root", kind="dir").is_dir():
        raise Captum3DCamError(f"--root: the {dataset} dataset needs --root PATH (its folder); got {root}")
    if annotations is not None and not as_path(annotations, "--annotations", kind="file").is_file():
        raise Captum3DCamError(f"--annotations: no file at {annotations}")
    clip_len = spec.clip_len if spec is not None else 16
    preprocess = model_preprocess(spec, full_frame) if spec is not None else None
    if dataset == "ucf101-24":
        if annotations is None:
            raise Captum3DCamError("--annotations: ucf101-24 needs its annotation file (UCF101v2-GT.pkl or pyannot.pkl)")
        data = datasets.UCF101_24(root, annotations, split=split, clip_len=clip_len)
    else:
        data = datasets.JHMDB(root, split=split, clip_len=clip_len, gt=annotations)
    if len(data) == 0:
        raise Captum3DCamError(f"--root: no {dataset} videos of the {split} split under {root}")
    count = len(data) if max_videos is None else min(int(max_videos), len(data))

    def items():
        for i in range(count):
            frames, boxes, label = data[i][:3]
            clip, geometry = preprocess(torch.as_tensor(frames))
            yield clip[0], torch.as_tensor(boxes, dtype=torch.float32), int(label), geometry

    return items()


_SHORT = {"3dcam_sum": "3DCam, all layers (sum)", "3dcam_mean": "3DCam, all layers (mean)"}


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
    preset: Optional[str] = "localize",
    max_videos: Optional[int] = None,
    threshold: float = 0.5,
    seed: int = 0,
    device: str = "auto",
    out: Optional[PathLike] = None,
    progress: bool = True,
    full_frame: bool = False,
) -> Dict[str, Any]:
    """The paper's localization tables (pointing game, IoU accuracy, Acc2) on a dataset.

    Runs :func:`evaluate_methods` (target: the predicted class; boxes by contour thresholding) for
    GradCAM on the last layer, 3DCam of each layer alone (Table 3's ablation) and 3DCam summed and
    averaged over the layers (Tables 4-5), or the ``methods`` asked for (``"preset:localize"``...).

    Args:
        dataset: ``"synthetic"``, ``"jhmdb"`` or ``"ucf101-24"``.
        root: the dataset folder (real datasets).
        annotations: the act-detector ``*-GT.pkl`` (or UCF101-24's ``pyannot.pkl``); required for
            ucf101-24, optional for jhmdb (default ``root/JHMDB-GT.pkl`` or the puppet masks).
            Acc2 compares the model's class index with the dataset's label, so it is meaningful
            only for a model trained on the dataset's classes.
        split: ``"train"``, ``"test"`` or ``"all"`` (real datasets, fold 1).
        model: a key of :data:`~captum_3dcam.models.MODELS` (default ``small-synthetic`` for
            synthetic data).
        checkpoint: weights; for ``small-synthetic`` the demo's cached model is used (or trained).
        layers: layer names (default: the model's preset).
        methods: method names (:func:`available_methods`; default: see above).
        preset: a preset of :mod:`captum_3dcam.attr.presets` whose row (``"preset:<name>"``, with its own
            boxes) joins the default methods and whose name the table's header states; ``None``: none.
        max_videos: evaluate at most this many clips (synthetic: the number of test videos, 100).
        threshold: box threshold.
        seed: synthetic data seed.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available).
        out: folder for ``localization.md`` and ``localization.json``.
        progress: progress bars.
        full_frame: real datasets: explain the whole frame (``--full-frame``, no centre crop); only
            for a fully convolutional model, another is refused before the weights load.

    Returns:
        ``{"results": {method: metrics}, "table": markdown}``.
    """
    if dataset not in DATASETS:
        raise Captum3DCamError(f"--dataset: expected one of {', '.join(DATASETS)}, got {dataset!r}")
    spec = dataset_model_spec(dataset, model, checkpoint)
    model_preprocess(spec, full_frame)  # --full-frame refused for a head of fixed size, before anything else
    if out is not None:
        out = check_output_dir(out, "--out")  # before the model passes, not after
    torch_device = resolve_device(device)  # the cheap checks before the weights load
    check_layer_names(spec, layers)
    items = dataset_items(dataset, root, max_videos, seed, spec, split=split, annotations=annotations,
                          full_frame=full_frame)
    _, net = load_dataset_model(dataset, spec.name, checkpoint, seed=seed, progress=progress)
    net = net.to(torch_device).eval()
    layer_names, layer_modules = resolve_model_layers(net, layers, spec.name)
    if methods is None:
        methods = ["gradcam_last", *[f"3dcam_layer:{n}" for n in layer_names], "3dcam_sum", "3dcam_mean",
                   *([f"preset:{preset}"] if preset else [])]
    results = evaluate_methods(net, layer_modules, items, list(methods), threshold=threshold, batch_size=8,
                               show_progress=progress, on_error="raise")
    rows, skipped = [], [f"- `{m}` skipped: {r['skipped']}" for m, r in results.items() if "skipped" in r]
    for m, r in results.items():
        if "skipped" in r:
            continue
        method = get_method(m, layer_names)
        label = {"gradcam_last": f"GradCAM ({layer_names[-1]})", **_SHORT}.get(m, method.label)
        if m.startswith("3dcam_layer:"):
            label = m.replace("3dcam_layer:", "3DCam, ")
        rows.append({**r, "method": label, "layers": str(len(method_layers(method, layer_names)))})
    if not rows:
        raise Captum3DCamError(f"--methods: none of {list(methods)} could run here")
    table = markdown_table(rows, LOCALIZATION_COLUMNS)
    header = (f"Localization on {dataset} ({int(rows[0]['frames'])} frames with a box, {int(rows[0]['clips'])} clips), "
              f"model {spec.name}, class accuracy {fmt(float(rows[0].get('class_acc', float('nan'))))}, "
              f"threshold {threshold}" + (", the whole frame (--full-frame)" if full_frame else "") + (f", preset `{preset}` (its own boxes: {get_preset(preset)['boxes']})"
                                          if preset else "") + ".")
    text = header + "\n\n" + table + ("\n\n" + "\n".join(skipped) if skipped else "")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "localization.md").write_text(text + "\n")
        (out / "localization.json").write_text(json.dumps(results, indent=1, default=str))
    return {"results": results, "table": text}
