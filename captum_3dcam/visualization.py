"""Pictures and videos of attention, in one namespace: pixels, figures, GIF/MP4.

    from captum_3dcam import visualization as viz
    viz.save_video(viz.overlay(clip, cam[0]), "attention.gif")

A convenience that gathers :mod:`captum_3dcam.overlays` (pixels: overlays, boxes, tiles),
:mod:`captum_3dcam.figures` (the paper's matplotlib figures) and the display and encoding
functions of :mod:`captum_3dcam.video` (``to_frames``, ``save_gif``, ``save_mp4``,
``save_video``). Nothing is defined here.
"""
from .figures import (
    plot_class_maps,
    plot_gradcam_vs_3dcam,
    plot_layer_grid,
    plot_overlay_rows,
    plot_temporal_curve,
    save_figure,
)
from .overlays import (
    GT_COLOR,
    PRED_COLOR,
    colorize,
    draw_boxes,
    frame_indices,
    normalize_maps,
    overlay,
    resize_frames,
    tile_videos,
)
from .video import save_gif, save_mp4, save_video, to_frames

__all__ = [
    "to_frames",
    "normalize_maps",
    "colorize",
    "overlay",
    "draw_boxes",
    "frame_indices",
    "resize_frames",
    "tile_videos",
    "save_gif",
    "save_mp4",
    "save_video",
    "plot_overlay_rows",
    "plot_layer_grid",
    "plot_gradcam_vs_3dcam",
    "plot_class_maps",
    "plot_temporal_curve",
    "save_figure",
    "PRED_COLOR",
    "GT_COLOR",
]
