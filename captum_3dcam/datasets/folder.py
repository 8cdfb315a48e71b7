"""VideoFolder: a user's own labelled videos, one subfolder per class (torchvision's ImageFolder layout).

    ROOT/
      train/<class>/<video>.mp4          a video file (any of video.VIDEO_EXTENSIONS, read by PyAV)
      train/<class>/<video>/00001.jpg    or a folder of frames (jpg/png, in name order)
      test/<class>/...                   the same classes (val/ is read when there is no test/)

Classes are the subfolder names of the split folder, sorted (index = label), as in
``torchvision.datasets.ImageFolder``; hidden names (``.x``) are skipped. A split's class folder may be
empty or missing as long as the class exists in another split (``classes=`` fixes the list). Every
video is cut into clips of ``clip_len`` frames like JHMDB's and UCF101-24's; there are no boxes
(NaN rows). The frames of each video are counted once at construction (decoding a video file).

Lives here: :class:`VideoFolder` and :func:`folder_classes`. Does not live here: the clip machinery
(:class:`~.act_detector.VideoClipDataset`), decoding (:mod:`captum_3dcam.video.io`).
"""
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Union

from .._utils import as_path
from ..video.io import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, count_frames
from .act_detector import VideoAnnotation, VideoClipDataset

__all__ = ["VideoFolder", "folder_classes"]

PathLike = Union[str, Path]


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def folder_classes(root: PathLike) -> List[str]:
    """The sorted subfolder names of ``root`` (the classes of a :class:`VideoFolder`)."""
    root = as_path(root, "root", kind="dir")
    if not root.is_dir():
        raise FileNotFoundError(f"root: no folder at {root}")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _visible(p))


def _videos(class_dir: Path) -> List[Path]:
    out = []
    for p in sorted(class_dir.iterdir()) if class_dir.is_dir() else []:
        if not _visible(p):
            continue
        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS:
            out.append(p)
        elif p.is_dir() and any(f.suffix.lower() in IMAGE_EXTENSIONS for f in p.iterdir()):
            out.append(p)
    return out


class VideoFolder(VideoClipDataset):
    """Labelled videos in class subfolders: ``(clip, boxes, label)`` (boxes all NaN).

    Args:
        root: the folder of one split, holding one subfolder per class (see the module docstring).
        classes: the class names in label order (default: the sorted subfolders of ``root``).
        **kwargs: ``clip_len`` (default 16; ``None``: each whole video is one clip), ``stride``,
            ``transform`` (see :class:`~.act_detector.VideoClipDataset`).

    Attributes:
        classes, video_ids (``"<class>/<video>"`` of every clip), items.

    Shape:
        ``clip`` uint8 ``(T, H, W, 3)`` (or what ``transform`` returns); ``boxes`` ``(T, 4)`` NaN;
        ``label`` int.

    Example:
        >>> train = VideoFolder("my_videos/train", clip_len=16)
        >>> test = VideoFolder("my_videos/test", classes=train.classes, clip_len=16)
    """

    def __init__(self, root: PathLike, classes: Optional[Sequence[str]] = None, **kwargs) -> None:
        root = as_path(root, "root", kind="dir")
        found = folder_classes(root)
        if classes is not None and (isinstance(classes, (str, bytes)) or not isinstance(classes, Iterable)):
            raise TypeError(f"classes: expected a list of class names, got {type(classes).__name__} {classes!r:.60}")
        classes = list(found if classes is None else classes)
        bad = [c for c in classes if not isinstance(c, str) or not c]
        if bad or len(set(classes)) != len(classes):
            raise ValueError(f"classes: expected distinct non-empty class names (str), got {classes!r:.200}")
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise ValueError(f"root: {root} has class folders {unknown} that are not in classes {classes}")
        annotations = []
        for label, name in enumerate(classes):
            for video in _videos(root / name):
                n = count_frames(video)
                if n > 0:
                    annotations.append(VideoAnnotation(name=f"{name}/{video.name}", label=label, num_frames=n))
        if not annotations:
            raise FileNotFoundError(
                f"root: no videos ({', '.join(VIDEO_EXTENSIONS)}) or frame folders under {root}/<class>/ "
                f"(classes found: {found or 'none'})")
        super().__init__(root, annotations, classes, **kwargs)
