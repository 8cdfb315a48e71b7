"""UCF101-24: 24 UCF101 classes with per-frame actor boxes.

Two annotation files are read:

- act-detector ``UCF101v2-GT.pkl`` (see :mod:`.act_detector`): rows ``(frame, x1, y1, x2, y2)``,
  frame 1-based, pixel-edge boxes; it carries the 3 splits.
- the corrected ``pyannot.pkl`` (Singh et al.): ``{video: {"label", "numf", "annotations":
  [{"label", "sf", "ef", "boxes"}]}}`` with ``boxes`` ``(ef - sf, 4)`` rows ``[x, y, w, h]``
  stored as uint8/uint16 and ``ef`` exclusive. Converted exactly as act-detector did:

      frame = sf + i + 1,  x1 = x - 1,  y1 = y - 1,  x2 = x + w - 1,  y2 = y + h - 1

  after casting to int64 (uint8 + uint8 wraps around at 256). It carries no split: pass
  ``videos=`` or a ``split_file`` (UCF101's ``testlist01.txt`` style, one video per line).

Frames are read from a frame folder ``root/<class>/<video>/00001.jpg`` (``rgb-images``) or the
raw ``root/<class>/<video>.avi`` / ``root/<video>.avi`` through PyAV.

Does not live here: the clip dataset machinery it shares with JHMDB (:mod:`.act_detector`).
"""
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from .._utils import as_path
from .act_detector import ActDetectorGT, VideoAnnotation, VideoClipDataset, read_annotation_pickle

__all__ = ["UCF101_24", "UCF101_24_CLASSES", "load_pyannot", "read_split_file"]

PathLike = Union[str, Path]

UCF101_24_CLASSES = (
    "Basketball", "BasketballDunk", "Biking", "CliffDiving", "CricketBowling", "Diving",
    "Fencing", "FloorGymnastics", "GolfSwing", "HorseRiding", "IceDancing", "LongJump",
    "PoleVault", "RopeClimbing", "SalsaSpin", "SkateBoarding", "Skiing", "Skijet",
    "SoccerJuggling", "Surfing", "TennisSwing", "TrampolineJumping", "VolleyballSpiking",
    "WalkingWithDog",
)


def _pyannot_video(name: str, entry, source: str) -> VideoAnnotation:
    if not isinstance(entry, dict) or "annotations" not in entry:
        raise ValueError(f"{source}: video {name!r}: expected a dict with 'annotations', got {entry!r:.80}")
    tubes, labels, last = [], [], 0
    for j, tube in enumerate(entry["annotations"]):
        try:
            sf, ef = int(tube["sf"]), int(tube["ef"])
            boxes = np.asarray(tube["boxes"]).astype(np.int64)  # cast BEFORE adding: uint8 wraps
        except (KeyError, TypeError) as exc:
            raise ValueError(
                f"{source}: video {name!r} tube {j}: expected keys 'sf', 'ef', 'boxes', 'label' ({exc})"
            ) from exc
        if boxes.ndim != 2 or boxes.shape != (ef - sf, 4):
            raise ValueError(
                f"{source}: video {name!r} tube {j}: expected boxes of shape ({ef - sf}, 4) "
                f"(ef - sf rows [x, y, w, h]), got {boxes.shape}"
            )
        frames = sf + np.arange(ef - sf) + 1
        x, y, w, h = boxes.T
        rows = np.stack([frames, x - 1, y - 1, x + w - 1, y + h - 1], 1)
        tubes.append(torch.from_numpy(rows.astype(np.float32)))
        if "label" in tube:
            labels.append(int(tube["label"]))
        last = max(last, ef)
    if "label" in entry:
        label = int(entry["label"])
    elif labels:
        label = labels[0]
    else:
        raise ValueError(f"{source}: video {name!r} has no 'label'")
    num_frames = int(entry.get("numf", last))
    return VideoAnnotation(name=name, label=label, num_frames=num_frames, tubes=tubes)


def load_pyannot(path: PathLike) -> Dict[str, VideoAnnotation]:
    """Read the corrected UCF101-24 ``pyannot.pkl`` into ``{video: VideoAnnotation}``.

    Tubes come out as act-detector rows ``(frame, x1, y1, x2, y2)`` (see the module docstring).
    """
    data = read_annotation_pickle(path, "pyannot")
    if not isinstance(data, dict) or not data:
        raise ValueError(f"pyannot: {path}: expected a non-empty dict {{video: {{...}}}}, got {type(data).__name__}")
    return {str(name): _pyannot_video(str(name), entry, str(path)) for name, entry in data.items()}


def read_split_file(path: PathLike) -> List[str]:
    """Video names listed in a split file (``Basketball/v_Basketball_g01_c01.avi [label]`` lines)."""
    path = as_path(path, "split_file", kind="file")
    if not path.is_file():
        raise FileNotFoundError(f"split_file: no file at {path}")
    names = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            name = line.split()[0]
            names.append(name[:-4] if name.lower().endswith(".avi") else name)
    return names


class UCF101_24(VideoClipDataset):
    """UCF101-24 clips with per-frame boxes: ``(clip, boxes, label)``.

    Args:
        root: frames/videos folder (see :class:`~.act_detector.VideoClipDataset`).
        annotations: ``UCF101v2-GT.pkl`` (act-detector) or ``pyannot.pkl``; the format is
            detected from the content.
        split: ``"train"``, ``"test"`` or ``"all"`` (act-detector file); with a pyannot file,
            ``videos`` / ``split_file`` select the videos (default: all).
        fold: split number 1..3 (act-detector file).
        videos: explicit video names (overrides ``split``).
        split_file: a file listing the video names.
        **kwargs: ``clip_len``, ``stride``, ``transform``, ``multi_actor``.

    Example:
        >>> ds = UCF101_24("UCF101_v2/rgb-images", "UCF101_v2/UCF101v2-GT.pkl", split="test")
        >>> frames, boxes, label = ds[0]      # uint8 (16, 240, 320, 3), (16, 4), int
    """

    def __init__(
        self,
        root: PathLike,
        annotations: PathLike,
        split: str = "test",
        fold: int = 1,
        *,
        videos: Optional[Sequence[str]] = None,
        split_file: Optional[PathLike] = None,
        **kwargs,
    ) -> None:
        data = read_annotation_pickle(annotations, "annotations")
        if isinstance(data, dict) and "gttubes" in data:
            gt = ActDetectorGT(data, source=str(annotations))
            anns, classes = gt.videos, gt.labels
            names = gt.split(split, fold)
        elif isinstance(data, dict) and data and all(
                isinstance(v, dict) and "annotations" in v for v in data.values()):
            anns = {str(k): _pyannot_video(str(k), v, str(annotations)) for k, v in data.items()}
            classes = list(UCF101_24_CLASSES)
            names = sorted(anns)
        else:
            raise ValueError(
                f"annotations: {annotations} is neither an act-detector GT pickle (keys labels, "
                "gttubes, nframes, ...) nor a pyannot.pkl ({video: {'annotations': [...]}})"
            )
        if split_file is not None:
            names = read_split_file(split_file)
        if videos is not None:
            names = [str(v) for v in videos]
        missing = [n for n in names if n not in anns]
        if missing:
            raise ValueError(
                f"videos: {len(missing)} video(s) have no annotation in {annotations}, e.g. {missing[0]!r}")
        super().__init__(root, [anns[n] for n in names], classes, **kwargs)
