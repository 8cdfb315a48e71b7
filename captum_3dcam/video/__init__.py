"""Video in and out (:mod:`.io`), preprocessing for a model (:mod:`.preprocess`) and the geometry back (:mod:`.geometry`),
sliding windows (:mod:`.windows`) and a video of any length in flat memory (:mod:`.streaming`).
"""
from .._lazy import lazy_exports

_EXPORTS = {
    "read_video": ".io",
    "read_frames": ".io",
    "iter_frames": ".io",
    "count_frames": ".io",
    "video_fps": ".io",
    "to_frames": ".io",
    "save_gif": ".io",
    "save_mp4": ".io",
    "save_video": ".io",
    "VIDEO_EXTENSIONS": ".io",
    "IMAGE_EXTENSIONS": ".io",
    "ClipGeometry": ".geometry",
    "centre_frame_indices": ".preprocess",
    "preprocess_clip": ".preprocess",
    "preprocess_i3d": ".preprocess",
    "preprocess_resnext": ".preprocess",
    "preprocess_torchvision": ".preprocess",
    "frames_to_clip": ".preprocess",
    "I3D_MIN_FRAMES": ".preprocess",
    "ACTIVITYNET_MEAN": ".preprocess",
    "frame_chunks": ".streaming",
    "WindowStream": ".streaming",
    "explain_stream": ".streaming",
    "MapsWriter": ".streaming",
    "sliding_windows": ".windows",
    "stitch_windows": ".windows",
    "apply_sliding_windows": ".windows",
    "attribute_windows": ".windows",
    "window_taper": ".windows",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
