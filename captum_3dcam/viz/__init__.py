"""Pictures and videos of attention: overlays, boxes and tiles on frames (:mod:`.overlays`) and the
paper's matplotlib figures (:mod:`.figures`); also serves GIF/MP4 writing from :mod:`captum_3dcam.video.io`.
"""
from .._lazy import lazy_exports

_EXPORTS = {
    "to_frames": "..video.io",
    "save_gif": "..video.io",
    "save_mp4": "..video.io",
    "save_video": "..video.io",
    "plot_overlay_rows": ".figures",
    "plot_layer_grid": ".figures",
    "plot_gradcam_vs_3dcam": ".figures",
    "plot_class_maps": ".figures",
    "plot_temporal_curve": ".figures",
    "save_figure": ".figures",
    "describe_attribution": ".figures",
    "EMPTY_MAP_NOTE": ".figures",
    "normalize_maps": ".overlays",
    "colorize": ".overlays",
    "overlay": ".overlays",
    "draw_boxes": ".overlays",
    "frame_indices": ".overlays",
    "resize_frames": ".overlays",
    "tile_videos": ".overlays",
    "PRED_COLOR": ".overlays",
    "GT_COLOR": ".overlays",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
