"""What ``explain-dataset`` and ``evaluate`` explain: a dataset by name as whole videos, the model by name.

    from captum_3dcam.evaluation.videos import dataset_model_spec, dataset_videos

    spec = dataset_model_spec("ucf101-24", "i3d-kinetics400", None)
    videos, classes = dataset_videos("ucf101-24", spec, root=ROOT, annotations=GT, limit=10, full_frame=True)

Lives here: :data:`DATASETS`, :func:`dataset_model_spec` and :func:`load_dataset_model` (the model
``evaluate`` and ``explain-dataset`` use), :func:`dataset_videos` (a split's whole videos in a fixed
order, each streamed from its file through the model's preprocessing: the centre crop, or with
``full_frame=True`` the whole frame). Does not live here: explaining them and the summary
(:mod:`.dataset_run`), what a resumed run re-validates (:mod:`.resume`), the datasets themselves
(:mod:`captum_3dcam.datasets`).
"""
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch.utils.data import Dataset

from .._utils import as_path, log
from ..datasets import NAMES
from ..errors import Captum3DCamError
from ..models.full_frame import model_preprocess
from ..models.registry import MODELS, ModelSpec, get_model_spec
from ..video.geometry import ClipGeometry
from ..video.io import iter_frames
from ..video.streaming import frame_chunks
from .resume import video_ids

__all__ = ["DATASETS", "Videos", "dataset_videos", "load_dataset_model", "dataset_model_spec"]

PathLike = Union[str, os.PathLike]
DATASETS = NAMES
_SMALL = ("small-synthetic", "small")


def dataset_model_spec(dataset: str, model: Optional[str], checkpoint: Optional[PathLike]) -> ModelSpec:
    """The :class:`ModelSpec` of ``model`` (default ``small-synthetic`` on synthetic data); checks ``checkpoint`` exists."""
    name = model or ("small-synthetic" if dataset == "synthetic" else None)
    if name is None:
        raise Captum3DCamError(f"--model: choose the model to explain on {dataset} ({', '.join(MODELS)})")
    spec = get_model_spec(name)
    if checkpoint is not None and not as_path(checkpoint, "--checkpoint", kind="file").is_file():
        raise Captum3DCamError(f"--checkpoint: no file at {checkpoint}")
    return spec


def load_dataset_model(dataset: str, model: Optional[str], checkpoint: Optional[PathLike], *, seed: int = 0,
                       progress: bool = True) -> Tuple[ModelSpec, torch.nn.Module]:
    """``(spec, net)`` in eval mode: ``model`` (:func:`dataset_model_spec`) from ``checkpoint``.

    ``small-synthetic`` without a checkpoint is the demo's cached model (trained when missing).
    """
    from ..models.small_checkpoint import default_small_checkpoint
    from ..training.small_recipe import load_or_train_small_model

    spec = dataset_model_spec(dataset, model, checkpoint)
    if spec.name == "small-synthetic" and checkpoint is None:
        ckpt = default_small_checkpoint(seed)
        log(f"{'loading' if ckpt.is_file() else 'training'} the small model ({ckpt}) ...", progress)
        return spec, load_or_train_small_model(ckpt, seed=seed, progress=progress).eval()
    return spec, spec.load(None if checkpoint is None else str(checkpoint)).eval()


def _identity_geometry(h: int, w: int, t: int) -> ClipGeometry:
    return ClipGeometry(frame_size=(h, w), resized_size=(h, w), crop_box=(0, 0, w, h), frame_indices=range(t))


class Videos(Dataset):
    """Whole videos ``{"video", "source", "gt" (T, 4), "label"}``; :meth:`stream` decodes one as it is explained.

    ``preprocess``: the model's (:func:`~captum_3dcam.models.full_frame.model_preprocess`: the centre
    crop, or the whole frame).
    """

    def __init__(self, data, spec: ModelSpec, ids: Sequence[str], indices: Sequence[int], synthetic: bool,
                 preprocess: Callable) -> None:
        self.data, self.spec, self.ids, self.indices, self.synthetic = data, spec, list(ids), list(indices), synthetic
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        if self.synthetic:  # one synthetic video (generated, small): its consecutive clips joined along time
            k = self.data.clips_per_video
            parts = [self.data[self.indices[i] * k + c] for c in range(k)]
            clip = torch.cat([p[0] for p in parts], dim=1)
            gt, label = torch.cat([torch.as_tensor(p[1]) for p in parts]).float(), int(parts[0][2])
            if self.spec.name in _SMALL:  # the whole 64 x 64 frame already: the same either way
                _, t, h, w = clip.shape
                source = (clip[None], _identity_geometry(h, w, t))
            else:
                source = self.preprocess((self.data.to_rgb(clip).permute(1, 2, 3, 0) * 255).round().to(torch.uint8))
        else:  # a file or frame folder: its path and length only; the frames are decoded by stream()
            j = self.indices[i]
            name = self.data.items[j][0]  # clip_len=None: one item per video, frames 1..n
            source = (str(self.data.source(name)), len(self.data.frame_numbers(j)))
            gt, label = self.data.clip_boxes(j).float(), int(self.data.annotations[name].label)
        return {"video": self.ids[i], "source": source, "gt": gt, "label": label}

    def record(self, i: int, gt: bool = True) -> Dict[str, Any]:
        """What the dataset says of video ``i``: ``{"video", "frames", "label", "gt" (T, 4) or None}``."""
        if self.synthetic:
            k = self.data.clips_per_video
            first = self.indices[i] * k
            boxes = torch.cat([torch.as_tensor(self.data[first + c][1]) for c in range(k)]).float() if gt else None
            return {"video": self.ids[i], "frames": k * self.data.config.clip_len, "label": int(self.data.labels[first]),
                    "gt": boxes}
        j = self.indices[i]
        name = self.data.items[j][0]
        return {"video": self.ids[i], "frames": len(self.data.frame_numbers(j)),
                "label": int(self.data.annotations[name].label), "gt": self.data.clip_boxes(j).float() if gt else None}

    def stream(self, item: Dict[str, Any], clip_len: int, device) -> Callable[[], Iterator]:
        """A source for :func:`~captum_3dcam.video.streaming.explain_stream`: the item's preprocessed chunks."""
        first, second = item["source"]
        if isinstance(first, torch.Tensor):  # already preprocessed, in memory
            return lambda: ((first[:, :, s : s + clip_len].to(device), second) for s in range(0, first.shape[2], clip_len))
        return lambda: ((c.to(device), g) for c, g in frame_chunks(iter_frames(first, second), self.preprocess,
                                                                  group=clip_len, pad_to=clip_len))


def dataset_videos(dataset: str, spec: ModelSpec, *, root: Optional[PathLike] = None,
                   annotations: Optional[PathLike] = None, split: str = "test", limit: Optional[int] = None,
                   seed: int = 0, full_frame: bool = False) -> Tuple[Dataset, List[str]]:
    """``(videos, classes)``: the first ``limit`` whole videos of a split, in a fixed order (sorted names).

    Each video goes through ``spec``'s preprocessing: the centre crop, or with ``full_frame=True``
    the whole frame (:func:`~captum_3dcam.models.full_frame.model_preprocess`, which refuses a
    model that is not fully convolutional).

    ``"synthetic"``: :class:`~captum_3dcam.datasets.SyntheticActions` test videos of 2 clips;
    ``"jhmdb"``, ``"ucf101-24"``: the split's videos with their boxes in the original pixels;
    ``"folder"``: ``root/test/<class>/<video>`` (or ``root/<class>/<video>``), no boxes.

    Shape:
        item ``clip`` ``(1, 3, T, h, w)``, ``gt`` ``(T, 4)`` (NaN rows: no box), ``label`` int
    """
    from .. import datasets

    if dataset not in DATASETS:
        raise Captum3DCamError(f"--dataset: expected one of {', '.join(DATASETS)}, got {dataset!r}")
    preprocess = model_preprocess(spec, full_frame)
    if dataset == "synthetic":
        data = datasets.SyntheticActions(int(limit or 100), "test", seed=seed, clips_per_video=2)
        n = data.num_videos
        ids = [f"synthetic-{v:04d}" for v in range(n)]
        return Videos(data, spec, ids, range(n), True, preprocess), list(data.classes)
    if root is None or not as_path(root, "--root", kind="dir").is_dir():
        raise Captum3DCamError(f"--root: the {dataset} dataset needs --root PATH (its folder); got {root}")
    if annotations is not None and not as_path(annotations, "--annotations", kind="file").is_file():
        raise Captum3DCamError(f"--annotations: no file at {annotations}")
    if dataset == "ucf101-24":
        if annotations is None:
            raise Captum3DCamError("--annotations: ucf101-24 needs its annotation file (UCF101v2-GT.pkl or pyannot.pkl)")
        data = datasets.UCF101_24(root, annotations, split=split, clip_len=None)
    elif dataset == "jhmdb":
        data = datasets.JHMDB(root, split=split, clip_len=None, gt=annotations)
    else:
        folder = Path(root) / "test" if (Path(root) / "test").is_dir() else Path(root)
        data = datasets.VideoFolder(folder, clip_len=None)
    order = sorted(range(len(data)), key=lambda i: str(data.video_ids[i]))
    if not order:
        raise Captum3DCamError(f"--root: no videos of the {split} split found in {root}")
    ids = video_ids([data.video_ids[i] for i in order])  # of every video: the same whatever --limit
    order = order[: limit or None]
    return Videos(data, spec, ids[: len(order)], order, False, preprocess), list(data.classes)
