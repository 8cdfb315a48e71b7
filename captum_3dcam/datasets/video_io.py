"""Deprecated: frame reading moved to :mod:`captum_3dcam.video`, ``frames_to_clip`` to
:mod:`captum_3dcam.preprocess`. This module only re-exports them (with a ``DeprecationWarning``)."""
import warnings

from ..preprocess import frames_to_clip
from ..video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, count_frames, read_frames

__all__ = ["read_frames", "count_frames", "frames_to_clip", "VIDEO_EXTENSIONS", "IMAGE_EXTENSIONS"]

warnings.warn("captum_3dcam.datasets.video_io is deprecated: use captum_3dcam.video (read_frames, count_frames) "
              "and captum_3dcam.preprocess (frames_to_clip)", DeprecationWarning, stacklevel=2)
