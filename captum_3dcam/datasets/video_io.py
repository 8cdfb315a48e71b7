"""Reading frames of real videos: frame folders (``00001.jpg`` ...) or video files via PyAV.

Frames are numbered from 1 as in the annotation files: frame ``k`` is the ``k``-th decoded frame
of a video file, or the image ``{k:05d}.{jpg,png}`` of a frame folder.

Shape:
    frames: uint8 ``(T, H, W, 3)`` RGB.
"""
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import torch

__all__ = ["read_frames", "count_frames", "frames_to_clip", "VIDEO_EXTENSIONS", "IMAGE_EXTENSIONS"]

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov")
IMAGE_EXTENSIONS = (".jpg", ".png", ".jpeg")


def _import_av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is in the test extras
        raise ImportError("reading video files needs PyAV: pip install captum-3dcam[video]") from exc
    return av


def _import_pil():
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover
        raise ImportError("reading frame folders needs Pillow: pip install captum-3dcam[viz]") from exc
    return Image


def _frame_files(folder: Path):
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"frames: no {IMAGE_EXTENSIONS} images in {folder}")
    return files


def count_frames(source: Union[str, Path]) -> int:
    """Number of frames of a video file (decoded, exact) or of a frame folder."""
    source = Path(source)
    if source.is_dir():
        return len(_frame_files(source))
    if not source.is_file():
        raise FileNotFoundError(f"source: no video file or frame folder at {source}")
    av = _import_av()
    with av.open(str(source)) as container:
        return sum(1 for _ in container.decode(video=0))


def read_frames(
    source: Union[str, Path],
    frames: Optional[Sequence[int]] = None,
) -> torch.Tensor:
    """Read frames (1-based numbers) of a video file or a frame folder.

    Args:
        source: a video file (PyAV) or a folder of ``00001.jpg``-style images.
        frames: 1-based frame numbers, in any order, repeats allowed; ``None`` reads all.

    Returns:
        uint8 tensor ``(T, H, W, 3)``, RGB.

    Raises:
        FileNotFoundError: no such file/folder; ``IndexError``: a frame number past the end.
    """
    source = Path(source)
    wanted = None if frames is None else [int(f) for f in frames]
    if wanted is not None and any(f < 1 for f in wanted):
        raise IndexError(f"frames: numbers are 1-based, got {min(wanted)}")
    if source.is_dir():
        import numpy as np

        Image = _import_pil()
        files = _frame_files(source)
        numbers = range(1, len(files) + 1) if wanted is None else wanted
        out = []
        for f in numbers:
            if f > len(files):
                raise IndexError(f"frames: frame {f} past the end of {source} ({len(files)} frames)")
            with Image.open(files[f - 1]) as im:
                out.append(torch.from_numpy(np.asarray(im.convert("RGB")).copy()))
        return torch.stack(out)
    if not source.is_file():
        raise FileNotFoundError(f"source: no video file or frame folder at {source}")
    av = _import_av()
    keep = None if wanted is None else set(wanted)
    last = None if wanted is None else max(wanted)
    decoded = {}
    with av.open(str(source)) as container:
        for k, frame in enumerate(container.decode(video=0), start=1):
            if keep is None or k in keep:
                decoded[k] = torch.from_numpy(frame.to_ndarray(format="rgb24"))
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
    return torch.stack([decoded[f] for f in numbers])


def frames_to_clip(
    frames: torch.Tensor,
    size: Optional[Tuple[int, int]] = None,
    mean: Sequence[float] = (0.5, 0.5, 0.5),
    std: Sequence[float] = (0.5, 0.5, 0.5),
) -> torch.Tensor:
    """uint8 frames ``(T, H, W, 3)`` -> float clip ``(3, T, h, w)``: ``(rgb / 255 - mean) / std``.

    ``size=(h, w)`` resizes every frame bilinearly (no crop, so a box maps back by scaling its x
    by ``W / w`` and its y by ``H / h``). The defaults give RGB in ``[-1, 1]`` (I3D's range).
    """
    if not isinstance(frames, torch.Tensor) or frames.dim() != 4 or frames.shape[-1] != 3:
        raise ValueError(
            f"frames: expected a (T, H, W, 3) tensor, got "
            f"{tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__}"
        )
    x = frames.permute(3, 0, 1, 2).float() / 255.0  # (3, T, H, W)
    if size is not None:
        x = torch.nn.functional.interpolate(
            x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    m = torch.as_tensor(mean, dtype=x.dtype).view(3, 1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype).view(3, 1, 1, 1)
    return (x - m) / s
