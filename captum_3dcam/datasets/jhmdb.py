"""JHMDB: 21 HMDB51 classes, 928 clips, one actor per clip with a per-frame puppet mask.

Two layouts are read:

- act-detector: ``root/JHMDB-GT.pkl`` (see :mod:`.act_detector`, it carries 3 splits) and the
  frames under ``root/Frames/<class>/<video>/00001.png``.
- the original distribution: frames ``root/Rename_Images/<class>/<video>/00001.png`` (or videos
  ``root/ReCompress_Videos/<class>/<video>.avi``), masks
  ``root/puppet_mask/<class>/<video>/puppet_mask.mat`` and splits
  ``root/splits/<class>_test_split<fold>.txt`` (lines ``<video>.avi 1|2``, 1 = train, 2 = test).
  The box of frame ``t`` is the extent of the nonzero pixels of ``part_mask[:, :, t]``
  (``H x W x T``) in pixel-edge coordinates: columns ``i..j`` give ``x1 = i, x2 = j + 1``.

Does not live here: the clip dataset machinery it shares with UCF101-24 (:mod:`.act_detector`).
"""
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch

from .._utils import as_path, mask_to_boxes, optional_import

from .act_detector import ActDetectorGT, VideoAnnotation, VideoClipDataset

__all__ = ["JHMDB", "JHMDB_CLASSES", "boxes_from_puppet_mask", "boxes_from_masks"]

PathLike = Union[str, Path]

JHMDB_CLASSES = (
    "brush_hair", "catch", "clap", "climb_stairs", "golf", "jump", "kick_ball", "pick", "pour",
    "pullup", "push", "run", "shoot_ball", "shoot_bow", "shoot_gun", "sit", "stand",
    "swing_baseball", "throw", "walk", "wave",
)


def boxes_from_masks(masks: torch.Tensor) -> torch.Tensor:
    """Per-frame box of the nonzero pixels of ``masks``.

    Shape:
        masks ``(T, H, W)`` (any dtype; nonzero = actor) -> boxes ``(T, 4)`` ``(x1, y1, x2, y2)``
        pixel-edge; NaN rows for empty frames.
    """
    masks = torch.as_tensor(masks)
    if masks.dim() != 3:
        raise ValueError(f"masks: expected (T, H, W), got shape {tuple(masks.shape)}")
    return mask_to_boxes(masks != 0).float()


def boxes_from_puppet_mask(path: PathLike) -> torch.Tensor:
    """Boxes ``(T, 4)`` from a JHMDB ``puppet_mask.mat`` (variable ``part_mask``, ``H x W x T``).

    Shape:
        ``part_mask`` ``H x W x T`` -> ``(T, 4)``
    """
    path = as_path(path, "puppet_mask", kind="file")
    if not path.is_file():
        raise FileNotFoundError(f"puppet_mask: no file at {path}")
    loadmat = optional_import("scipy.io", "reading .mat files").loadmat
    try:
        mat = loadmat(str(path))
    except Exception as exc:
        raise ValueError(f"puppet_mask: could not read {path} as a MATLAB file: {exc}") from exc
    if "part_mask" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"puppet_mask: {path} has no 'part_mask' variable (found {keys})")
    mask = mat["part_mask"]
    if mask.ndim == 2:  # a single frame saved without its trailing axis
        mask = mask[:, :, None]
    if mask.ndim != 3:
        raise ValueError(f"puppet_mask: {path}: expected part_mask of shape H x W x T, got {mask.shape}")
    return boxes_from_masks(torch.from_numpy(mask.astype("uint8") != 0).permute(2, 0, 1))


def _boxes_to_tube(boxes: torch.Tensor) -> torch.Tensor:
    """``(T, 4)`` boxes with NaN rows -> a tube ``(M, 5)`` of the annotated frames."""
    keep = ~torch.isnan(boxes[:, 0])
    frames = torch.nonzero(keep).flatten().float() + 1
    return torch.cat([frames[:, None], boxes[keep]], 1)


def _split_names(root: Path, split: str, fold: int) -> Dict[str, int]:
    """``{"class/video": label}`` of a split of the original distribution."""
    split_dir = root / "splits"
    mask_dir = root / "puppet_mask"
    out: Dict[str, int] = {}
    if split == "all":
        for label, cls in enumerate(JHMDB_CLASSES):
            for video in sorted(p.name for p in (mask_dir / cls).glob("*") if p.is_dir()):
                out[f"{cls}/{video}"] = label
        return out
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train', 'test' or 'all', got {split!r}")
    if fold not in (1, 2, 3):
        raise ValueError(f"fold: expected 1, 2 or 3, got {fold!r}")
    wanted = "1" if split == "train" else "2"
    for label, cls in enumerate(JHMDB_CLASSES):
        f = split_dir / f"{cls}_test_split{fold}.txt"
        if not f.is_file():
            continue
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                if line.strip():
                    raise ValueError(f"splits: {f}: expected '<video>.avi 1|2' lines, got {line!r}")
                continue
            if parts[1] == wanted:
                out[f"{cls}/{Path(parts[0]).stem}"] = label
    if not out:
        raise FileNotFoundError(
            f"splits: no {split} videos for fold {fold} in {split_dir} "
            f"(expected files like brush_hair_test_split{fold}.txt)")
    return out


class JHMDB(VideoClipDataset):
    """JHMDB clips with per-frame actor boxes: ``(clip, boxes, label)``.

    Args:
        root: the dataset folder (either layout of the module docstring).
        split: ``"train"``, ``"test"`` or ``"all"``.
        fold: split number 1..3.
        gt: an act-detector ``JHMDB-GT.pkl``; default ``root/JHMDB-GT.pkl`` when it exists,
            else the puppet masks are read.
        videos: explicit video names (``"class/video"``), overriding ``split``.
        **kwargs: ``clip_len`` (``None``: whole videos, JHMDB's are 15-40 frames), ``stride``,
            ``transform``, ``multi_actor`` (see :class:`~.act_detector.VideoClipDataset`).

    Example:
        >>> ds = JHMDB("JHMDB", split="test", clip_len=16)
        >>> frames, boxes, label = ds[0]      # uint8 (16, 240, 320, 3), (16, 4), int
    """

    def __init__(
        self,
        root: PathLike,
        split: str = "test",
        fold: int = 1,
        *,
        gt: Optional[PathLike] = None,
        videos: Optional[Sequence[str]] = None,
        **kwargs,
    ) -> None:
        root = as_path(root, "root", kind="dir")
        if not root.is_dir():
            raise FileNotFoundError(f"root: no folder at {root}")
        if gt is None and (root / "JHMDB-GT.pkl").is_file():
            gt = root / "JHMDB-GT.pkl"
        if gt is not None:
            table = ActDetectorGT.load(gt)
            names = table.split(split, fold) if videos is None else [str(v) for v in videos]
            missing = [n for n in names if n not in table.videos]
            if missing:
                raise ValueError(f"videos: {len(missing)} video(s) not in {gt}, e.g. {missing[0]!r}")
            frames_root = root / "Frames" if (root / "Frames").is_dir() else root
            super().__init__(frames_root, [table.videos[n] for n in names], table.labels, **kwargs)
            return
        if not (root / "puppet_mask").is_dir():
            raise FileNotFoundError(
                f"root: {root} has neither JHMDB-GT.pkl nor a puppet_mask/ folder")
        if videos is not None:
            labels = {}
            for v in videos:
                cls = str(v).split("/")[0]
                if cls not in JHMDB_CLASSES:
                    raise ValueError(f"videos: {v!r} does not start with a JHMDB class name")
                labels[str(v)] = JHMDB_CLASSES.index(cls)
        else:
            labels = _split_names(root, split, fold)
        anns: List[VideoAnnotation] = []
        for name, label in labels.items():
            boxes = boxes_from_puppet_mask(root / "puppet_mask" / name / "puppet_mask.mat")
            anns.append(VideoAnnotation(name=name, label=label, num_frames=boxes.shape[0],
                                        tubes=[_boxes_to_tube(boxes)]))
        frames_root = root
        for sub in ("Rename_Images", "ReCompress_Videos", "Frames"):
            if (root / sub).is_dir():
                frames_root = root / sub
                break
        super().__init__(frames_root, anns, JHMDB_CLASSES, **kwargs)
