"""Video in and out: decoding files and frame folders, encoding GIF and MP4, display frames.

Lives here: :func:`read_video` (a whole file, PyAV), :func:`iter_frames` (one frame at a time),
:func:`read_frames` / :func:`count_frames`
(1-based frame numbers of a file or of a folder of ``00001.jpg`` images, as annotation files
count them), :func:`video_fps`, :func:`to_frames` (any clip -> displayable ``uint8`` RGB),
:func:`save_gif` (Pillow), :func:`save_mp4` (PyAV) and :func:`save_video`. Does not live here:
preprocessing for a model (:mod:`captum_3dcam.video.preprocess`), the coordinates back
(:mod:`captum_3dcam.video.geometry`), sliding windows (:mod:`captum_3dcam.video.windows`) and
anything drawn on frames (:mod:`captum_3dcam.viz.overlays`).

Frames are ``uint8`` tensors ``(T, H, W, 3)``, RGB. PyAV and Pillow are imported where used
(``pip install captum-3dcam[video,viz]``).
"""
import numbers
import operator
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .._utils import as_path, optional_import
from ..errors import Captum3DCamError

__all__ = [
    "read_video", "read_frames", "iter_frames", "count_frames", "video_fps", "to_frames", "save_gif", "save_mp4", "save_video",
    "VIDEO_EXTENSIONS", "IMAGE_EXTENSIONS",
]

ArrayLike = Union[torch.Tensor, np.ndarray]
PathLike = Union[str, Path]
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov")
IMAGE_EXTENSIONS = (".jpg", ".png", ".jpeg")
#: FFmpeg demuxers and codecs that render text (a .txt, .nfo, ANSI art) as video frames: not videos
_TEXT_FORMATS = frozenset({"tty", "bin", "xbin", "adf", "idf"})
_TEXT_CODECS = frozenset({"ansi", "bintext", "xbin", "idf"})


# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------
def _av():
    return optional_import("av", "reading and writing video files")


def _decoded(path: Path) -> Iterator:
    """PyAV frames of the first video stream; undecodable files raise ``ValueError``.

    A file FFmpeg can only read as text drawn into frames (its ``tty`` demuxer takes any text file)
    or without a video stream is refused with :class:`~captum_3dcam.errors.Captum3DCamError`.
    """
    av = _av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise Captum3DCamError(f"{path}: not a video (no video stream; PyAV reads it as format "
                                       f"{container.format.name!r})")
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            if container.format.name in _TEXT_FORMATS or codec in _TEXT_CODECS:
                raise Captum3DCamError(f"{path}: not a video (PyAV reads it as format {container.format.name!r}); "
                                       f"its codec {codec!r} draws text as frames")
            stream.thread_type = "AUTO"
            try:
                yield from container.decode(stream)
            except av.error.EOFError:  # the decoder ran out of data: the frames so far are the video
                pass
    except (av.error.FFmpegError, OSError, RuntimeError) as exc:  # before ValueError: InvalidDataError is one
        raise ValueError(f"path: could not decode {path} as a video ({type(exc).__name__}: {exc})") from exc


def _rgb(frame) -> torch.Tensor:
    return torch.from_numpy(frame.to_ndarray(format="rgb24"))


def _check_count(value, name: str) -> None:
    """``value`` is an int >= 1 or None (``True`` is not a count, nor is ``2.0``)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
        raise ValueError(f"{name}: expected a positive int or None, got {type(value).__name__} {value!r}")


def _same_size(frame: torch.Tensor, first: torch.Tensor, where: str, first_where: str) -> torch.Tensor:
    """``frame``, checked to have the size of the first frame (``torch.stack`` needs one size)."""
    if frame.shape != first.shape:
        raise Captum3DCamError(f"{where}: frame of {frame.shape[1]}x{frame.shape[0]} pixels (WxH), but {first_where} "
                               f"is {first.shape[1]}x{first.shape[0]}: every frame must have the same size")
    return frame


def _stack(frames, names) -> torch.Tensor:
    """``torch.stack`` of frames whose sizes were checked, ``names[i]`` naming frame ``i`` in errors."""
    for frame, name in zip(frames[1:], names[1:]):
        _same_size(frame, frames[0], name, names[0])
    return torch.stack(frames)


def read_video(path: PathLike, *, max_frames: Optional[int] = None) -> torch.Tensor:
    """Decode every frame of a video file to RGB with PyAV.

    Args:
        path: the video file.
        max_frames: stop after this many frames (``None``: all).

    Returns:
        ``uint8`` tensor, RGB, frame 0 = the first decoded frame.

    Raises:
        TypeError: ``path`` is not a ``str`` or ``os.PathLike`` (``None``, ``bytes``, a number).
        FileNotFoundError / IsADirectoryError: no file at ``path`` / a folder.
        ValueError: the file cannot be decoded, has no video stream, or has zero frames.

    Shape:
        - Output: :math:`(T, H, W, 3)`.
    """
    path = as_path(path, "path", kind="file")
    if not path.is_file():
        raise FileNotFoundError(f"path: no video file at {path}")
    _check_count(max_frames, "max_frames")
    frames = []
    for frame in _decoded(path):
        frames.append(_rgb(frame))
        if max_frames is not None and len(frames) >= max_frames:
            break
    if not frames:
        raise ValueError(f"path: {path} decoded to zero frames")
    return _stack(frames, [f"{path} frame {k}" for k in range(1, len(frames) + 1)])


def video_fps(path: PathLike) -> float:
    """Average frame rate of the first video stream (25 when the container does not say)."""
    path = as_path(path, "path", kind="file")
    try:
        with _av().open(str(path)) as container:
            rate = container.streams.video[0].average_rate
            return float(rate) if rate else 25.0
    except Exception:  # the decoder itself reports unreadable files, in read_video
        return 25.0


def _frame_files(folder: Path):
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"frames: no {IMAGE_EXTENSIONS} images in {folder}")
    return files


def _image(path: Path) -> torch.Tensor:
    """One frame image as ``(H, W, 3)`` uint8; a file Pillow cannot read raises :class:`Captum3DCamError`."""
    Image = optional_import("PIL.Image", "reading frame folders")
    try:
        with Image.open(path) as im:
            return torch.from_numpy(np.asarray(im.convert("RGB")).copy())
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:  # UnidentifiedImageError, truncated
        raise Captum3DCamError(f"{path}: not a readable frame image ({type(exc).__name__}: {exc})") from exc


def count_frames(source: PathLike) -> int:
    """Number of frames of a video file (decoded, exact) or of a frame folder."""
    source = as_path(source, "source")
    if source.is_dir():
        return len(_frame_files(source))
    if not source.is_file():
        raise FileNotFoundError(f"source: no video file or frame folder at {source}")
    return sum(1 for _ in _decoded(source))


def read_frames(source: PathLike, frames: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Read frames (1-based numbers) of a video file or a frame folder.

    Args:
        source: a video file (PyAV) or a folder of ``00001.jpg``-style images.
        frames: 1-based frame numbers, in any order, repeats allowed; ``None`` reads all.

    Returns:
        uint8 tensor, RGB.

    Raises:
        FileNotFoundError: no such file/folder; ``IndexError``: a frame number past the end.

    Shape:
        - Output: :math:`(T, H, W, 3)`, ``T = len(frames)``.
    """
    source = as_path(source, "source")
    if frames is not None and (isinstance(frames, (str, bytes)) or not isinstance(frames, Iterable)):
        raise TypeError(f"frames: expected a sequence of 1-based frame numbers, got {type(frames).__name__}")
    wanted = None if frames is None else [_frame_number(f) for f in frames]
    if wanted is not None and any(f < 1 for f in wanted):
        raise IndexError(f"frames: numbers are 1-based, got {min(wanted)}")
    if source.is_dir():
        files = _frame_files(source)
        out, names = [], []
        for f in range(1, len(files) + 1) if wanted is None else wanted:
            if f > len(files):
                raise IndexError(f"frames: frame {f} past the end of {source} ({len(files)} frames)")
            out.append(_image(files[f - 1]))
            names.append(str(files[f - 1]))
        return _stack(out, names)
    if not source.is_file():
        raise FileNotFoundError(f"source: no video file or frame folder at {source}")
    keep = None if wanted is None else set(wanted)
    last = None if wanted is None else max(wanted)
    decoded = {}
    for k, frame in enumerate(_decoded(source), start=1):
        if keep is None or k in keep:
            decoded[k] = _rgb(frame)
        if last is not None and k >= last:
            break
    numbers = sorted(decoded) if wanted is None else wanted
    missing = [f for f in numbers if f not in decoded]
    if missing:
        raise IndexError(
            f"frames: frame {missing[0]} past the end of {source} ({len(decoded) and max(decoded)} frames)"
        )
    if not numbers:
        raise ValueError(f"source: {source} has no video frames")
    return _stack([decoded[f] for f in numbers], [f"{source} frame {f}" for f in numbers])


def _frame_number(f) -> int:
    """A frame number: an int (numpy and 0-d tensor ints too), not a bool, float or string."""
    if not isinstance(f, (bool, np.bool_)) and not (isinstance(f, torch.Tensor) and f.dtype == torch.bool):
        try:
            return operator.index(f)
        except TypeError:
            pass
    raise TypeError(f"frames: expected int frame numbers, got {type(f).__name__} {f!r:.40}")


def iter_frames(source: PathLike, count: Optional[int] = None) -> Iterator[torch.Tensor]:
    """Frames 1, 2, ... of a video file or frame folder, one ``(H, W, 3)`` uint8 tensor at a time.

    Decodes sequentially (a file through PyAV, a folder image by image), holding one frame: what a
    long video streams through (:mod:`captum_3dcam.video.streaming`). ``count``: stop after that many
    frames, and ``IndexError`` when the source has fewer (``None``: every frame).
    """
    source = as_path(source, "source")
    _check_count(count, "count")
    if source.is_dir():
        files = _frame_files(source)
        frames = (_image(f) for f in files)
        name = lambda k: str(files[k - 1])  # noqa: E731
    elif source.is_file():
        frames = (_rgb(frame) for frame in _decoded(source))
        name = lambda k: f"{source} frame {k}"  # noqa: E731
    else:
        raise FileNotFoundError(f"source: no video file or frame folder at {source}")
    n, first = 0, None
    for n, frame in enumerate(frames, start=1):
        first = frame if first is None else _same_size(frame, first, name(n), name(1))
        yield frame
        if count is not None and n >= count:
            return
    if count is not None or n == 0:
        raise IndexError(f"frames: frame {n + 1} past the end of {source} ({n} frames)")


# --------------------------------------------------------------------------------------------
# display frames
# --------------------------------------------------------------------------------------------
def as_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    raise TypeError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


def _infer_range(video: torch.Tensor) -> Tuple[float, float]:
    lo, hi = float(video.min()), float(video.max())
    for cand_lo, cand_hi in ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0)):
        if lo >= cand_lo and hi <= cand_hi:
            return cand_lo, cand_hi
    return lo, hi


def to_frames(video: ArrayLike, value_range: Optional[Tuple[float, float]] = None) -> torch.Tensor:
    """Convert a clip to displayable RGB frames.

    Args:
        video: ``(T, H, W, 3)`` / ``(T, H, W)`` uint8, or ``(C, T, H, W)`` / ``(1, C, T, H, W)``
            with ``C`` in {1, 3} (any dtype). A 4-D array whose last axis is 1 or 3 and whose
            first axis is not is read as channels-last.
        value_range: ``(low, high)`` of a float clip, mapped linearly to 0..255 (clamped);
            ``None`` infers it (``[0, 1]``, ``[-1, 1]``, ``[0, 255]``, else the clip's min..max).

    Returns:
        uint8 tensor on the CPU.

    Shape:
        - Output: :math:`(T, H, W, 3)`.
    """
    v = as_tensor(video, "video").cpu()
    if v.dim() == 5:
        if v.shape[0] != 1:
            raise ValueError(f"video: expected a single clip (1, C, T, H, W), got {tuple(v.shape)}")
        v = v[0]
    if v.dim() == 3:  # (T, H, W) grey
        v = v.unsqueeze(-1)
    elif v.dim() == 4:
        channels_last = v.shape[-1] in (1, 3) and (v.shape[0] not in (1, 3) or v.dtype == torch.uint8)
        if not channels_last:
            if v.shape[0] not in (1, 3):
                raise ValueError(
                    f"video: expected (T, H, W, 3) or (C, T, H, W) with C in (1, 3), got {tuple(v.shape)}"
                )
            v = v.permute(1, 2, 3, 0)
    else:
        raise ValueError(f"video: expected 3, 4 or 5 dimensions, got shape {tuple(v.shape)}")
    if v.shape[-1] == 1:
        v = v.expand(*v.shape[:-1], 3)
    if v.dtype == torch.uint8:
        return v.contiguous()
    v = v.float()
    lo, hi = value_range if value_range is not None else _infer_range(v)
    if not hi > lo:
        return torch.zeros(v.shape, dtype=torch.uint8)
    return ((v - lo) / (hi - lo) * 255.0).clamp_(0, 255).round_().to(torch.uint8).contiguous()


# --------------------------------------------------------------------------------------------
# encoding
# --------------------------------------------------------------------------------------------
def check_fps(fps: float, low: float = 0.0) -> float:
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not low < fps < float("inf"):
        raise ValueError(f"fps: expected a finite number > {low:g}, got {type(fps).__name__} {fps!r}")
    return float(fps)


def save_gif(frames: ArrayLike, path: PathLike, fps: float = 8.0) -> Path:
    """Write frames as an animated GIF that loops (Pillow, a 256-colour palette per frame).

    GIF stores delays in hundredths of a second, so ``fps`` is rounded to that. Pillow stores a
    frame identical to the previous one once, shown for both delays (the playback is the same).

    Shape:
        - frames: :math:`(T, H, W, 3)` uint8 (or any video :func:`to_frames` accepts).
    """
    Image = optional_import("PIL.Image", "writing GIF")
    fps = check_fps(fps, 100 / 65535)  # GIF delays are 16-bit hundredths of a second
    path = as_path(path, "path", kind="file")
    pictures = [Image.fromarray(frame) for frame in to_frames(frames).numpy()]
    path.parent.mkdir(parents=True, exist_ok=True)
    pictures[0].save(path, format="GIF", save_all=True, append_images=pictures[1:], duration=1000.0 / fps,
                     loop=0)
    return path


def save_mp4(frames: ArrayLike, path: PathLike, fps: float = 8.0, crf: int = 20) -> Path:
    """Write frames as H.264 MP4 (PyAV; yuv420p, odd sizes padded by one black pixel).

    Falls back to MPEG-4 Part 2 where the PyAV build has no libx264.

    Shape:
        - frames: :math:`(T, H, W, 3)` uint8 (or any video :func:`to_frames` accepts).
    """
    av = _av()
    fps = check_fps(fps)
    if isinstance(crf, bool) or not isinstance(crf, numbers.Real) or not 0 <= crf <= 51:
        raise ValueError(f"crf: expected a number in [0, 51] (x264's quality scale), got {crf!r}")
    path = as_path(path, "path", kind="file")
    img = to_frames(frames).numpy()
    T, H, W, _ = img.shape
    if H % 2 or W % 2:
        img = np.pad(img, ((0, 0), (0, H % 2), (0, W % 2), (0, 0)))
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = img.shape[2], img.shape[1], "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(int(crf)), "preset": "veryfast"}
        for frame in img:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def save_video(frames: ArrayLike, path: PathLike, fps: float = 8.0) -> Path:
    """Write frames to ``path``: ``.gif`` -> :func:`save_gif`, ``.mp4``/``.mkv``/``.mov`` -> :func:`save_mp4`.

    Shape:
        - frames: :math:`(T, H, W, 3)` uint8 (or any video :func:`to_frames` accepts).
    """
    suffix = as_path(path, "path", kind="file").suffix.lower()
    if suffix == ".gif":
        return save_gif(frames, path, fps)
    if suffix in (".mp4", ".mkv", ".mov"):
        return save_mp4(frames, path, fps)
    raise ValueError(f"path: expected a .gif, .mp4, .mkv or .mov file name, got {str(path)!r}")
