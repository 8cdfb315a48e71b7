"""Pictures and videos of attention, in one namespace: pixels, figures, GIF/MP4.

    from captum_3dcam import visualization as viz
    viz.save_video(viz.overlay(clip, cam[0]), "attention.gif")

A convenience that gathers :mod:`captum_3dcam.overlays` (pixels: overlays, boxes, tiles),
:mod:`captum_3dcam.figures` (the paper's matplotlib figures) and the display and encoding
functions of :mod:`captum_3dcam.video` (``to_frames``, ``save_gif``, ``save_mp4``,
``save_video``). Nothing is defined here.
"""
from . import figures, overlays
from .figures import *  # noqa: F401,F403  (the names of figures.__all__)
from .overlays import *  # noqa: F401,F403  (the names of overlays.__all__)
from .video import save_gif, save_mp4, save_video, to_frames

__all__ = ["to_frames", "save_gif", "save_mp4", "save_video", *overlays.__all__, *figures.__all__]
