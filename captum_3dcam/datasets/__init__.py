"""Datasets with per-frame boxes: SyntheticActions (and its difficulty sweep), JHMDB, UCF101-24 from
the act-detector annotations, and a folder of videos by class.
"""
from .._lazy import lazy_exports

#: The datasets known by name (``--dataset``): the first three have per-frame boxes.
NAMES = ("synthetic", "jhmdb", "ucf101-24", "folder")

_EXPORTS = {
    "VideoAnnotation": ".act_detector",
    "ActDetectorGT": ".act_detector",
    "load_act_detector_gt": ".act_detector",
    "read_annotation_pickle": ".act_detector",
    "tubes_to_boxes": ".act_detector",
    "VideoClipDataset": ".act_detector",
    "VideoFolder": ".folder",
    "folder_classes": ".folder",
    "JHMDB": ".jhmdb",
    "JHMDB_CLASSES": ".jhmdb",
    "boxes_from_puppet_mask": ".jhmdb",
    "boxes_from_masks": ".jhmdb",
    "SyntheticActions": ".synthetic",
    "SyntheticDifficulty": ".synthetic",
    "SYNTHETIC_CLASSES": ".synthetic",
    "MOTIONS": ".synthetic",
    "DIFFICULTIES": ".synthetic",
    "UCF101_24": ".ucf101_24",
    "UCF101_24_CLASSES": ".ucf101_24",
    "load_pyannot": ".ucf101_24",
    "read_split_file": ".ucf101_24",
}
__all__ = ["NAMES", *_EXPORTS]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
