"""Datasets that yield ``(clip, boxes, label)``: synthetic actions, JHMDB, UCF101-24.

- :class:`SyntheticActions`: the embedded default, generated on the fly, no download.
- :class:`JHMDB`, :class:`UCF101_24`: real videos (frame folders or video files via PyAV) with
  per-frame boxes at the original resolution, from the act-detector ``*-GT.pkl`` files, JHMDB's
  ``puppet_mask.mat`` or UCF101-24's corrected ``pyannot.pkl``.
- :class:`VideoFolder`: a user's own videos, one subfolder per class (no boxes).

Every dataset has ``classes`` (names, index = label) and ``video_ids`` (the video of each item,
for video-wise accuracy). Boxes are ``(x1, y1, x2, y2)`` in pixel-edge coordinates, NaN rows
where a frame has no box.

Does not live here: decoding video files (:mod:`captum_3dcam.video`) and preprocessing for a model
(:mod:`captum_3dcam.preprocess`).
"""
from .act_detector import (ActDetectorGT, VideoAnnotation, VideoClipDataset, load_act_detector_gt,
                           read_annotation_pickle, tubes_to_boxes)
from .folder import VideoFolder, folder_classes
from .jhmdb import JHMDB, JHMDB_CLASSES, boxes_from_masks, boxes_from_puppet_mask
from .synthetic import DIFFICULTIES, MOTIONS, SYNTHETIC_CLASSES, SyntheticActions, SyntheticDifficulty
from .ucf101_24 import UCF101_24, UCF101_24_CLASSES, load_pyannot, read_split_file
from ..preprocess import frames_to_clip
from ..video import count_frames, read_frames

__all__ = [
    "SyntheticActions",
    "VideoFolder",
    "folder_classes",
    "SyntheticDifficulty",
    "SYNTHETIC_CLASSES",
    "MOTIONS",
    "DIFFICULTIES",
    "JHMDB",
    "JHMDB_CLASSES",
    "boxes_from_puppet_mask",
    "boxes_from_masks",
    "UCF101_24",
    "UCF101_24_CLASSES",
    "load_pyannot",
    "read_split_file",
    "ActDetectorGT",
    "VideoAnnotation",
    "VideoClipDataset",
    "load_act_detector_gt",
    "read_annotation_pickle",
    "tubes_to_boxes",
    "read_frames",
    "count_frames",
    "frames_to_clip",
]
