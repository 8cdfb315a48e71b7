"""Explain a video of any length holding a bounded number of frames: decode, preprocess, window, stitch, finalize.

    from captum_3dcam.video.streaming import explain_stream, frame_chunks

    source = lambda: frame_chunks(iter_frames("long.mp4"), spec.preprocess, group=8, pad_to=16)
    result = explain_stream(net, layers, source, preset=get_preset("localize"), clip_len=16,
                            sink=lambda start, maps, boxes, geometry: ...)   # called frame chunk by frame chunk

The same windows, maps and boxes as :func:`~captum_3dcam.video.windows.attribute_windows` followed by
:func:`~captum_3dcam.video.windows.stitch_windows` on the whole video, with memory that does not grow
with its length: a :class:`WindowStream` holds at most ``clip_len + stride`` preprocessed frames
(plus the batch of windows going through the model), the running sum/count of the maps covers the
frames a later window can still reach, and a frame is handed to ``sink`` (its map and its box in
the original frame's pixels) as soon as no window is left that contains it.

Lives here: :func:`frame_chunks` (decoded frames -> preprocessed chunks), :class:`WindowStream`
(the rolling window buffer), :func:`explain_stream`, :class:`MapsWriter` (float16 maps appended to
an ``.npz`` as the frames finish). Does not live here: decoding
(:mod:`captum_3dcam.video.io`), the window schedule and the batched 3DCam pass
(:mod:`captum_3dcam.video.windows`), the boxes (:mod:`captum_3dcam.localization.boxes`).
"""
import dataclasses
import os
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import torch

from .._utils import progress_bar
from ..localization.boxes import attribution_to_boxes
from .geometry import ClipGeometry
from .windows import WindowCam, add_window, sliding_windows, taper_for, window_mean

__all__ = ["frame_chunks", "WindowStream", "explain_stream", "MapsWriter"]

Chunk = Tuple[torch.Tensor, ClipGeometry]


def frame_chunks(frames: Iterable[torch.Tensor], preprocess: Callable, *, group: int, pad_to: int = 1) -> Iterator[Chunk]:
    """``(clip (1, 3, n, h, w), geometry)`` for every ``group`` decoded frames ``(H, W, 3)`` in turn.

    A group shorter than ``pad_to`` (a model's fewest frames, e.g. its clip length) is padded by
    repeating its last frame before ``preprocess`` and cut back after: preprocessing is per frame
    (resize, crop, normalize), so each frame comes out as it would in the whole video.
    """
    held: List[torch.Tensor] = []

    def run():
        n = len(held)
        clip, geometry = preprocess(torch.stack(held + held[-1:] * max(0, pad_to - n)))
        return (clip if clip.shape[2] == n else clip[:, :, :n].clone()), geometry

    for frame in frames:
        held.append(frame)
        if len(held) == group:
            yield run()
            held = []
    if held:
        yield run()


class WindowStream:
    """The windows of :func:`~captum_3dcam.video.windows.sliding_windows` over a stream of chunks, each as it fills.

    Iterating yields ``(start, stop, x)`` (``x`` ``(1, C, stop - start, h, w)``, its own copy) in
    the order of ``sliding_windows(T, min(clip_len, T), stride)``, without knowing ``T`` ahead:
    the frames from the last window's start to the next window's end are held (at most
    ``clip_len + stride``; :attr:`peak_frames` records the most held), the ones before dropped.
    After the iteration :attr:`num_frames`, :attr:`windows` and :attr:`geometry` (the first chunk's,
    with ``frame_indices = range(T)``) are set.
    """

    def __init__(self, chunks: Iterable[Chunk], clip_len: int, stride: int) -> None:
        self.chunks, self.clip_len, self.stride = iter(chunks), int(clip_len), int(stride)
        self.buffer: Optional[torch.Tensor] = None
        self.base, self.left, self.peak_frames = 0, None, 0
        self.num_frames: Optional[int] = None
        self.windows: List[Tuple[int, int]] = []
        self.geometry: Optional[ClipGeometry] = None

    def _held(self) -> int:
        return 0 if self.buffer is None else self.buffer.shape[2]

    def _fill(self, upto: int) -> bool:
        """Pull frames until frame ``upto - 1`` is held; False when the stream ends first."""
        while self.base + self._held() < upto:
            if self.left is None:
                chunk = next(self.chunks, None)
                if chunk is None:
                    return False
                self.left, geometry = chunk
                self.geometry = self.geometry or geometry
            need = upto - self.base - self._held()
            take, rest = self.left[:, :, :need], self.left[:, :, need:]
            self.left = rest if rest.shape[2] else None
            self.buffer = take if self.buffer is None else torch.cat([self.buffer, take], dim=2)
            self.peak_frames = max(self.peak_frames, self._held())
        return True

    def _window(self, start: int, stop: int):
        self.windows.append((start, stop))
        return start, stop, self.buffer[:, :, start - self.base : stop - self.base].clone()

    def __iter__(self):
        length, stride = self.clip_len, self.stride
        if not self._fill(length):  # shorter than one window: the whole video is the window
            total = self.base + self._held()
            if total == 0:
                raise ValueError("frames: the video has no frames")
            length = total
        yield self._window(0, length)
        last = 0
        while self._fill(last + stride + length):
            if stride > length:
                sliding_windows(self.base + self._held(), length, stride)  # raises: frames in no window
            self.buffer, self.base = self.buffer[:, :, last + stride - self.base :], last + stride
            last += stride
            yield self._window(last, last + length)
        total = self.base + self._held()
        if stride > length:
            sliding_windows(total, length, stride)
        if last + length < total:
            yield self._window(total - length, total)
        self.num_frames, self.buffer = total, None
        self.geometry = dataclasses.replace(self.geometry, frame_indices=range(total))


def _batches(stream: WindowStream, batch_size: int):
    batch = []
    for window in stream:
        batch.append(window)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def explain_stream(net, layers, source: Callable[[], Iterable[Chunk]], *, preset: Dict[str, Any], clip_len: int,
                   stride: Optional[int] = None, batch_size: int = 1, dtype: str = "float32",
                   target: Optional[int] = None, counterfactual: bool = False,
                   sink: Callable[[int, torch.Tensor, torch.Tensor, ClipGeometry], None],
                   progress: bool = False) -> Dict[str, Any]:
    """3DCam of one video streamed through sliding windows; every frame handed to ``sink`` once final.

    Args:
        source: called once per pass, returns the video's ``(clip chunk, geometry)`` in order
            (e.g. :func:`frame_chunks` over :func:`~captum_3dcam.video.io.iter_frames`).
        preset: a preset (:func:`captum_3dcam.attr.presets.get_preset`): its ``"attribute"`` and ``"boxes"``.
        clip_len, stride, batch_size, dtype, target, counterfactual: as
            :func:`~captum_3dcam.video.windows.attribute_windows` (``stride`` default ``clip_len // 2``).
        sink: ``sink(start, maps (1, C, n, h, w), boxes (n, 4), geometry)`` for frames ``start ..
            start + n - 1``, in order, each frame once: its stitched map at model resolution and its
            box in the original frame's pixels (NaN rows: no box). ``C = 1``, or for a model of
            input pathways (:class:`~captum_3dcam.video.windows.WindowCam`: SlowFast) ``1 + P``:
            the map of all layers (the boxes' map), then one per pathway.
        progress: a progress bar over the explained batches of windows.

    Cost: with ``target=None`` the class is the argmax of every window's mean softmax, known only
    after the last window; so a first pass decodes the video and runs a forward pass per window
    (``no_grad``, ``batch_size`` windows at a time, only the logits kept), and the second decodes it
    again and explains every window once for that class. That is one extra decode and one extra
    forward pass per window, and no window is explained twice (:func:`attribute_windows` explains a
    window again when its own top class differs). With an explicit ``target``, one pass.

    Returns:
        ``{"probs" (K,), "target", "windows", "num_frames", "geometry", "peak_frames"}``
        (``peak_frames``: the most preprocessed frames a window buffer held).
    """
    step = int(stride or max(1, int(clip_len) // 2))
    cam = WindowCam(net, layers, counterfactual=counterfactual, dtype=dtype, **preset["attribute"])
    try:
        logits, peak = [], 0
        if target is None:
            first = WindowStream(source(), clip_len, step)
            for batch in _batches(first, batch_size):
                logits.append(cam.logits(torch.cat([x for _, _, x in batch])))
            probs = torch.cat(logits).softmax(-1).mean(0)
            cls, logits, peak = int(probs.argmax()), None, first.peak_frames
        else:
            cls = int(target)
        stream = WindowStream(source(), clip_len, step)
        total = count = None
        lo = 0  # frames lo .. lo + total.shape[2] - 1 are still accumulating

        def finalize(upto: int) -> None:
            nonlocal total, count, lo
            if total is None or upto <= lo:
                return
            n = upto - lo
            maps = window_mean(total[:, :, :n], count[:, :, :n])
            boxes = stream.geometry.boxes_to_frame(attribution_to_boxes(maps[:, :1], **preset["boxes"]))[0]
            sink(lo, maps, boxes, stream.geometry)
            total, count, lo = total[:, :, n:], count[:, :, n:], upto

        unit = "batch" if batch_size > 1 else "window"
        for batch in progress_bar(_batches(stream, batch_size), "3DCam windows", unit=unit, enabled=progress):
            maps, lg = cam.explain(torch.cat([x for _, _, x in batch]), cls)
            if logits is not None:
                logits.append(lg)
            for k, (start, stop, _) in enumerate(batch):
                value = maps[k : k + 1]
                if total is None:
                    total, count = value.new_zeros(value.shape), value.new_zeros(value.shape)
                grow = stop - lo - total.shape[2]
                if grow > 0:
                    pad = value.new_zeros((*value.shape[:2], grow, *value.shape[3:]))
                    total, count = torch.cat([total, pad], dim=2), torch.cat([count, pad], dim=2)
                add_window(total[:, :, start - lo : stop - lo], count[:, :, start - lo : stop - lo], value,
                           taper_for(value, 2))
            finalize(batch[-1][0] + 1)  # every later window starts after this one
        finalize(stream.num_frames)
        if logits is not None:
            probs = torch.cat(logits).softmax(-1).mean(0)
    finally:
        cam.close()
    return {"probs": probs, "target": cls, "windows": stream.windows, "num_frames": stream.num_frames,
            "geometry": stream.geometry, "peak_frames": max(peak, stream.peak_frames)}


class MapsWriter:
    """A compressed ``.npz`` holding ``maps`` (float16 ``(T, h, w)``), written a chunk of frames at a time.

    What ``np.savez_compressed(path, maps=...)`` writes (``np.load(path)["maps"]`` reads it), without
    holding the maps: the ``.npy`` header (``T = num_frames``, known ahead) then each chunk, into
    ``.NAME.PID.tmp`` beside ``path``, renamed to ``path`` by :meth:`close` once all ``T`` frames are in
    (as :func:`captum_3dcam._utils.write_atomic`: readers never see half a file).
    """

    def __init__(self, path, num_frames: int) -> None:
        self.path, self.num_frames, self.written = Path(path), int(num_frames), 0
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.zip = self.entry = None

    def append(self, maps) -> None:
        """Add frames ``(n, h, w)`` (any float array or tensor) after those already written."""
        data = np.ascontiguousarray(np.asarray(maps), dtype="<f2")
        if self.entry is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.zip = zipfile.ZipFile(self.tmp, "w", zipfile.ZIP_DEFLATED)
            self.entry = self.zip.open("maps.npy", "w", force_zip64=True)
            np.lib.format.write_array_header_1_0(self.entry, {"descr": "<f2", "fortran_order": False,
                                                              "shape": (self.num_frames, *data.shape[1:])})
        self.entry.write(data.tobytes())
        self.written += data.shape[0]

    def close(self) -> Path:
        """Finish the file and move it to ``path``; ``ValueError`` unless exactly ``num_frames`` were written."""
        if self.written != self.num_frames or self.entry is None:
            raise ValueError(f"maps: {self.written} frames written to {self.path.name}, expected {self.num_frames}")
        self.entry.close()
        self.zip.close()
        os.replace(self.tmp, self.path)
        return self.path
