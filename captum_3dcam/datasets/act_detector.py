"""Ground truth in the act-detector ``*-GT.pkl`` layout, and the clip dataset built on it.

``JHMDB-GT.pkl`` and ``UCF101v2-GT.pkl`` (Kalogeiton et al.'s ACT-detector) are (Python 2) pickles of
a dict, read without executing anything (:func:`captum_3dcam._safe_load.load_numpy_pickle`):

    labels        list of class names, index = label
    gttubes       {video: {label: [ndarray (M, 5) float32]}}, rows (frame, x1, y1, x2, y2),
                  frame 1-based (frame 1 = the first decoded frame); one array per actor (tube)
    nframes       {video: int}
    train_videos  [split_1, split_2, split_3], each a list of video names
    test_videos   the same for testing
    resolution    {video: (h, w)}

Boxes are in pixel-edge coordinates of the original frame (``x2 = x + w - 1`` with the 1-based
``x`` of the source annotations, see :mod:`.ucf101_24`).

:class:`VideoClipDataset` cuts the videos of such an annotation into clips of ``clip_len``
consecutive frames (non-overlapping by default, the paper's protocol) and yields
``(clip, boxes, label)``: the frames as read (uint8 ``(T, H, W, 3)``) or passed through
``transform``, the per-frame boxes ``(T, 4)`` at the original resolution (NaN rows where no
actor is annotated), the video's label.

Lives here: the act-detector GT reader and the clip dataset JHMDB and UCF101-24 share. Does not live
here: the datasets' own folder layouts (:mod:`.jhmdb`, :mod:`.ucf101_24`) and decoding (:mod:`captum_3dcam.video.io`).
"""
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from .._safe_load import UnsafePickleError, load_numpy_pickle
from .._utils import as_path
from ..video.io import VIDEO_EXTENSIONS, read_frames

__all__ = [
    "VideoAnnotation",
    "ActDetectorGT",
    "load_act_detector_gt",
    "read_annotation_pickle",
    "tubes_to_boxes",
    "VideoClipDataset",
]

PathLike = Union[str, Path]
_GT_KEYS = ("labels", "gttubes", "nframes", "train_videos", "test_videos", "resolution")


@dataclass
class VideoAnnotation:
    """Ground truth of one video.

    Attributes:
        name: video name as in the annotation (``"Basketball/v_Basketball_g01_c01"``).
        label: class index.
        num_frames: frames in the video.
        tubes: one float tensor ``(M, 5)`` per actor, rows ``(frame, x1, y1, x2, y2)``, frame 1-based.
        resolution: ``(H, W)`` of the original frames, when known.
    """

    name: str
    label: int
    num_frames: int
    tubes: List[torch.Tensor] = field(default_factory=list)
    resolution: Optional[tuple] = None

    def boxes(self, multi_actor: str = "union") -> torch.Tensor:
        """Per-frame boxes ``(num_frames, 4)``, see :func:`tubes_to_boxes`.

        Shape:
            ``(num_frames, 4)``
        """
        return tubes_to_boxes(self.tubes, self.num_frames, multi_actor=multi_actor)


def tubes_to_boxes(tubes: Sequence[torch.Tensor], num_frames: int, multi_actor: str = "union") -> torch.Tensor:
    """One box per frame from the tubes of a video.

    Args:
        tubes: float tensors ``(M, 5)`` with rows ``(frame, x1, y1, x2, y2)``, frame 1-based.
        num_frames: frames in the video.
        multi_actor: where several tubes cover a frame: ``"union"`` (the box enclosing all of
            them) or ``"first"`` (the first tube's box).

    Returns:
        ``(num_frames, 4)``; row ``k - 1`` is frame ``k``; NaN where no tube covers the frame.

    Shape:
        ``K`` tubes ``(M_k, 5)`` -> ``(num_frames, 4)``
    """
    if multi_actor not in ("union", "first"):
        raise ValueError(f"multi_actor: expected 'union' or 'first', got {multi_actor!r}")
    out = torch.full((num_frames, 4), float("nan"))
    for tube in tubes:
        tube = torch.as_tensor(tube, dtype=torch.float32)
        if tube.dim() != 2 or tube.shape[1] != 5:
            raise ValueError(f"tubes: expected (M, 5) rows (frame, x1, y1, x2, y2), got {tuple(tube.shape)}")
        idx = tube[:, 0].long() - 1
        if len(idx) and (idx.min() < 0 or idx.max() >= num_frames):
            raise ValueError(
                f"tubes: frame numbers must lie in 1..{num_frames}, got {int(idx.min()) + 1}..{int(idx.max()) + 1}"
            )
        new = tube[:, 1:]
        old = out[idx]
        empty = torch.isnan(old[:, 0])
        if multi_actor == "first":
            merged = torch.where(empty[:, None], new, old)
        else:
            mins = torch.minimum(torch.where(empty[:, None], new, old), new)[:, :2]
            maxs = torch.maximum(torch.where(empty[:, None], new, old), new)[:, 2:]
            merged = torch.cat([mins, maxs], 1)
        out[idx] = merged
    return out


def read_annotation_pickle(path: PathLike, what: str = "annotations"):
    """An annotation pickle, read by the package's restricted unpickler: numpy arrays, numbers,
    strings and containers only. Python 2 pickles (act-detector's, ``pyannot.pkl``) are decoded as
    latin1, as numpy needs.

    Raises:
        TypeError: ``path`` is not a ``str`` or ``os.PathLike``.
        FileNotFoundError / IsADirectoryError: no file at ``path``.
        UnsafePickleError: the pickle asks to import anything else (e.g. ``os.system`` through
            ``__reduce__``); nothing of it was executed.
        ValueError: not a readable pickle.
    """
    path = as_path(path, what, kind="file")
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no annotation file at {path}")
    try:
        return load_numpy_pickle(path, what=what, encoding="latin1")
    except UnsafePickleError:
        raise
    except pickle.UnpicklingError as exc:
        raise ValueError(str(exc)) from None  # "<what>: could not unpickle <path>: ..."


class ActDetectorGT:
    """An act-detector ``*-GT.pkl`` (JHMDB-GT.pkl, UCF101v2-GT.pkl), validated.

    Attributes:
        labels: class names.
        videos: ``{name: VideoAnnotation}``.
        train_videos, test_videos: the splits, lists of lists of names.

    Example:
        >>> gt = ActDetectorGT.load("UCF101v2-GT.pkl")
        >>> gt.split("test", fold=1)[:1]
        ['Basketball/v_Basketball_g01_c01']
    """

    def __init__(self, data: dict, source: str = "<dict>") -> None:
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a dict with keys {_GT_KEYS}, got {type(data).__name__}")
        missing = [k for k in _GT_KEYS if k not in data]
        if missing:
            raise ValueError(
                f"{source}: not an act-detector GT file, missing key(s) {missing} "
                f"(expected {list(_GT_KEYS)})"
            )
        self.source = source
        self.labels: List[str] = list(data["labels"])
        self.train_videos = [list(s) for s in data["train_videos"]]
        self.test_videos = [list(s) for s in data["test_videos"]]
        self.videos: Dict[str, VideoAnnotation] = {}
        for name, per_label in data["gttubes"].items():
            if not isinstance(per_label, dict) or not per_label:
                raise ValueError(f"{source}: gttubes[{name!r}]: expected {{label: [tubes]}}, got {per_label!r:.80}")
            if name not in data["nframes"]:
                raise ValueError(f"{source}: video {name!r} has tubes but no nframes entry")
            labels = sorted(int(k) for k in per_label)
            if not 0 <= labels[0] < len(self.labels) or labels[-1] >= len(self.labels):
                raise ValueError(f"{source}: video {name!r}: label {labels} outside 0..{len(self.labels) - 1}")
            tubes = []
            for k, tube_list in per_label.items():
                for tube in tube_list:
                    arr = np.asarray(tube, dtype=np.float64)
                    if arr.ndim != 2 or arr.shape[1] != 5:
                        raise ValueError(
                            f"{source}: video {name!r}: expected tubes of shape (M, 5), got {arr.shape}")
                    tubes.append(torch.from_numpy(arr).float())
            res = data["resolution"].get(name)
            self.videos[name] = VideoAnnotation(
                name=name, label=labels[0], num_frames=int(data["nframes"][name]), tubes=tubes,
                resolution=tuple(int(v) for v in res) if res is not None else None)

    @classmethod
    def load(cls, path: PathLike) -> "ActDetectorGT":
        """Read and validate a ``*-GT.pkl``; clear errors for a missing or malformed file."""
        return cls(read_annotation_pickle(path, "gt"), source=str(path))

    def split(self, split: str = "test", fold: int = 1) -> List[str]:
        """Video names of ``split`` (``"train"``, ``"test"`` or ``"all"``), ``fold`` 1-based."""
        if split == "all":
            return sorted(self.videos)
        if split not in ("train", "test"):
            raise ValueError(f"split: expected 'train', 'test' or 'all', got {split!r}")
        lists = self.train_videos if split == "train" else self.test_videos
        if not 1 <= fold <= len(lists):
            raise ValueError(f"fold: expected 1..{len(lists)}, got {fold!r}")
        return list(lists[fold - 1])


def load_act_detector_gt(path: PathLike) -> ActDetectorGT:
    """Shorthand for :meth:`ActDetectorGT.load`."""
    return ActDetectorGT.load(path)


def _find_source(root: Path, name: str) -> Path:
    """The frame folder or video file of ``name`` under ``root``."""
    stem = Path(name)
    candidates = [root / stem, root / stem.name]
    for base in (root / stem, root / stem.name):
        candidates += [base.with_name(base.name + ext) for ext in VIDEO_EXTENSIONS]
    for c in candidates:
        if c.is_dir() or c.is_file():
            return c
    raise FileNotFoundError(
        f"root: no frame folder or video ({', '.join(VIDEO_EXTENSIONS)}) for {name!r} under {root}"
    )


class VideoClipDataset(Dataset):
    """Clips of annotated real videos: ``(clip, boxes, label)``.

    Args:
        root: folder holding, for each video name ``a/b``, a frame folder ``root/a/b/`` (images
            ``00001.jpg``...), or a video file ``root/a/b.avi`` (or ``root/b.avi``, any of
            :data:`VIDEO_EXTENSIONS`).
        annotations: ``{name: VideoAnnotation}`` (or a list of them).
        classes: class names.
        clip_len: frames per clip; ``None`` gives each whole video as one clip.
        stride: first frames of consecutive clips are ``stride`` apart (default ``clip_len``:
            non-overlapping clips, the paper's protocol). A video shorter than ``clip_len`` gives
            one clip padded by repeating its last frame (those rows' boxes are NaN).
        transform: called on the uint8 frames ``(T, H, W, 3)``; e.g.
            ``lambda f: frames_to_clip(f, size=(112, 112))``. ``None`` returns the frames.
        multi_actor: per-frame box when several actors are annotated, see :func:`tubes_to_boxes`.

    Attributes:
        classes, video_ids (the video name of every item), items (``(name, first_frame)``).

    Shape:
        ``clip`` uint8 ``(T, H, W, 3)`` (or what ``transform`` returns); ``boxes`` ``(T, 4)``
        pixel-edge ``(x1, y1, x2, y2)`` in the original frame; ``label`` int.
    """

    def __init__(
        self,
        root: PathLike,
        annotations: Union[Dict[str, VideoAnnotation], Sequence[VideoAnnotation]],
        classes: Sequence[str],
        *,
        clip_len: Optional[int] = 16,
        stride: Optional[int] = None,
        transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        multi_actor: str = "union",
    ) -> None:
        self.root = as_path(root, "root", kind="dir")
        if not self.root.is_dir():
            raise FileNotFoundError(f"root: no folder at {self.root}")
        if clip_len is not None and (not isinstance(clip_len, int) or clip_len < 1):
            raise ValueError(f"clip_len: expected a positive int or None, got {clip_len!r}")
        stride = clip_len if stride is None else stride
        if clip_len is not None and (not isinstance(stride, int) or stride < 1):
            raise ValueError(f"stride: expected a positive int, got {stride!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform: expected a callable, got {type(transform).__name__}")
        if multi_actor not in ("union", "first"):
            raise ValueError(f"multi_actor: expected 'union' or 'first', got {multi_actor!r}")
        if isinstance(annotations, dict):
            annotations = list(annotations.values())
        self.annotations: Dict[str, VideoAnnotation] = {a.name: a for a in annotations}
        self.classes = list(classes)
        self.clip_len = clip_len
        self.stride = stride
        self.transform = transform
        self.multi_actor = multi_actor
        self.items: List[tuple] = []
        for name, ann in self.annotations.items():
            if clip_len is None or ann.num_frames <= clip_len:
                self.items.append((name, 1))
            else:
                starts = range(1, ann.num_frames - clip_len + 2, stride)
                self.items.extend((name, s) for s in starts)
        self.video_ids: List[str] = [name for name, _ in self.items]
        self._boxes: Dict[str, torch.Tensor] = {}
        self._sources: Dict[str, Path] = {}

    def __len__(self) -> int:
        return len(self.items)

    def video_boxes(self, name: str) -> torch.Tensor:
        """All per-frame boxes ``(num_frames, 4)`` of video ``name`` (row ``k - 1`` = frame ``k``)."""
        if name not in self._boxes:
            self._boxes[name] = self.annotations[name].boxes(self.multi_actor)
        return self._boxes[name]

    def source(self, name: str) -> Path:
        """The frame folder or video file of ``name``."""
        if name not in self._sources:
            self._sources[name] = _find_source(self.root, name)
        return self._sources[name]

    def frame_numbers(self, index: int) -> List[int]:
        """1-based frame numbers of item ``index`` (the last one repeated in a padded clip)."""
        name, start = self.items[index]
        n = self.annotations[name].num_frames
        length = n if self.clip_len is None else self.clip_len
        return [min(start + i, n) for i in range(length)]

    def clip_boxes(self, index: int) -> torch.Tensor:
        """The boxes ``(T, 4)`` of item ``index`` (``index`` in ``0..len - 1``), NaN rows for padded frames."""
        name, start = self.items[index]
        numbers = self.frame_numbers(index)
        boxes = self.video_boxes(name)[torch.tensor(numbers) - 1].clone()
        boxes[torch.arange(len(numbers)) + start > self.annotations[name].num_frames] = float("nan")
        return boxes

    def __getitem__(self, index: int):
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index = index % len(self)
        name = self.items[index][0]
        frames = read_frames(self.source(name), self.frame_numbers(index))
        boxes = self.clip_boxes(index)
        clip = frames if self.transform is None else self.transform(frames)
        return clip, boxes, self.annotations[name].label
