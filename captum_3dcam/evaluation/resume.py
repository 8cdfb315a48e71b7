"""What a resumed ``explain-dataset`` re-validates: nothing in ``--out`` is trusted that this run did not write.

    from captum_3dcam.evaluation.resume import prepare_out, redo_reason, video_ids

    ids = video_ids(["walk/a b.avi", "walk/a_b.avi"])      # unique, stable file names
    prepare_out(out, settings, ids)                         # rank 0: the run record checked / written
    why = redo_reason(out, expect, save_maps=True)          # None: the video's files are complete

A per-video ``OUT/videos/<id>.json`` left by an earlier run is reused only when it is what this run
would write for that video: read bounded (size from the video's length, nesting never a
``RecursionError``), every field of the right type (finite numbers, boxes of 4 numbers with
``x1 <= x2``, ``y1 <= y2``, IoUs floats in ``[0, 1]``, booleans), every per-frame list as long as
the video, the frames, label, ground truth and windows those of the dataset and the run's settings,
the class index in the model's range, the IoUs those of the boxes; with ``--save-maps`` its
``OUT/maps/<id>.npz`` complete (header, size, CRC). Anything else is redone, with a line saying why.
``OUT/run.json`` (the run's settings) must be readable and equal in the settings of :data:`FIXED`,
else the run stops with an error naming the file; without it, the video files already there are
not reused.

Lives here: :data:`FIXED` (``full_frame`` included) and :data:`FIXED_DEFAULTS`, :func:`read_json`
(bounded), :func:`video_ids`, :func:`prepare_out`, :func:`check_video`, :func:`check_maps`,
:func:`redo_reason`, :func:`videos_to_do`, :func:`read_done`, :func:`num_outputs`, :func:`expected_windows`.
Does not live here: explaining a video and the summary (:mod:`.dataset_run`), writing the maps
(:class:`captum_3dcam.video.streaming.MapsWriter`).
"""
import hashlib
import json
import math
import os
import stat
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .._utils import log, write_atomic
from ..errors import Captum3DCamError
from ..metrics.localization import box_iou
from ..video.windows import sliding_windows

__all__ = ["FIXED", "FIXED_DEFAULTS", "read_json", "video_ids", "prepare_out", "check_video", "check_maps",
           "redo_reason", "read_done", "num_outputs", "fixed_settings", "videos_to_do", "expected_windows"]

#: Settings a resumed run must share with the files already in ``OUT`` (they change the boxes).
FIXED = ("dataset", "root", "annotations", "split", "model", "checkpoint", "preset", "layers", "dtype",
         "clip_len", "stride", "seed", "full_frame")
#: Settings of :data:`FIXED` newer than some runs, with the value those runs had (read when missing).
FIXED_DEFAULTS = {"full_frame": False}
#: ``run.json`` holds a few settings: anything bigger was not written by a run.
RUN_JSON_BYTES = 1 << 20
#: A per-video file: a fixed part plus at most this many bytes per frame (ours: about 150).
VIDEO_JSON_BYTES, VIDEO_JSON_BYTES_PER_FRAME = 1 << 16, 1 << 10
#: A map larger than this per side was not written by a run (model resolution: a few hundred pixels).
MAX_MAP_SIDE = 4096
_PLAIN_BYTES, _STEM_BYTES = 200, 120  # file names stay below 255 bytes with ".<id>.json.<pid>.tmp"
_IOU_SLACK = 1e-3  # boxes are stored rounded to 4 decimals; the IoUs were computed before rounding


def fixed_settings(settings: Dict[str, Any]) -> Dict[str, Any]:
    """The :data:`FIXED` part of ``settings`` as it reads back from JSON."""
    return json.loads(json.dumps({k: settings[k] for k in FIXED}))


def read_json(path: Path, limit: int) -> Tuple[Any, Optional[str]]:
    """``(data, None)``, or ``(None, why)`` when ``path`` is not a regular file of at most ``limit`` bytes
    holding JSON (too deep a nesting included: never a ``RecursionError``). Reads at most ``limit + 1`` bytes."""
    try:
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):
            return None, "not a regular file"
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except OSError as exc:
        return None, f"unreadable ({exc.strerror or exc})"
    if len(raw) > limit:
        return None, f"larger than {limit} bytes"
    try:
        return json.loads(raw), None
    except RecursionError:
        return None, "nested too deep"
    except (ValueError, MemoryError) as exc:  # UnicodeDecodeError, JSONDecodeError, int digit limit
        return None, f"not JSON ({str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__})"


# ------------------------------------------------------------------------------------------ ids
def _sanitized(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name.replace("/", "__"))


def _cut(text: str, size: int) -> str:
    while len(text.encode("utf-8")) > size:
        text = text[:-1]
    return text


def _digest(key: str, width: int) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:width]


def video_ids(names: Sequence[Any]) -> List[str]:
    """A file-name id for each video name: unique (also ignoring case), the same for the same names.

    A plain name (letters, digits, ``-_.``, ``/``; not starting with ``.``; short) keeps its old id,
    ``/`` written ``__`` (``"walk/v_0001"`` -> ``"walk__v_0001"``), unless another name sanitizes to
    the same id. Any other name, and every name of such a group, gets the sanitized name (shortened)
    plus ``-`` and a hash of the exact name: ``"a b.avi"``, ``"a_b.avi"`` and ``"a\\nb.avi"`` are
    three videos, none of them reusing the one file an earlier version wrote for all three. The ids
    are computed over every video of the dataset, so ``--limit`` does not change them.
    """
    names = [str(n) for n in names]
    seen: Counter = Counter()
    keys = []
    for n in names:  # the same name twice: still two videos
        keys.append(n if not seen[n] else f"{n}\x00{seen[n]}")
        seen[n] += 1
    full = [_sanitized(n) for n in names]
    plain = [s == n.replace("/", "__") and s and not s.startswith(".") and k == n
             and len(s.encode("utf-8")) <= _PLAIN_BYTES for s, n, k in zip(full, names, keys)]
    stems = [_cut("_" + s[1:] if s.startswith(".") else s, _STEM_BYTES) for s in full]  # no hidden files
    alike = Counter(s.casefold() for s in full)  # names that sanitize alike: every one of them hashed, so that
    hashed = [not p or alike[s.casefold()] > 1 for p, s in zip(plain, full)]  # no old file of another is reused
    for width in (8, 16, 64, 64):
        ids = [f"{stems[i]}-{_digest(keys[i], width)}" if hashed[i] else full[i] for i in range(len(names))]
        counts = Counter(x.casefold() for x in ids)
        clash = [counts[x.casefold()] > 1 for x in ids]
        if not any(clash):
            return ids
        hashed = [h or c for h, c in zip(hashed, clash)]
    raise Captum3DCamError(f"--root: could not give the videos distinct file names "
                           f"({[n for n, c in zip(names, clash) if c][:3]})")


# ------------------------------------------------------------------------------------- run record
def prepare_out(out: Path, settings: Dict[str, Any], ids: Sequence[str]) -> None:
    """Rank 0, before the others start: the folders, stale temporaries removed, ``run.json`` checked and written.

    ``run.json`` there but unreadable, or with other :data:`FIXED` settings: :class:`Captum3DCamError`
    naming it. No ``run.json``: the video files of ``ids`` already there are removed (nothing records
    how they were made).
    """
    for sub in ("videos", "maps"):
        folder = out / sub
        if os.path.lexists(folder) and not folder.is_dir():
            raise Captum3DCamError(f"--out: {folder} should be a folder of this run's files, found something else; "
                                   "remove it or give another --out")
        for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
            tmp.unlink(missing_ok=True)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    path = out / "run.json"
    if os.path.lexists(path):
        saved, why = read_json(path, RUN_JSON_BYTES)
        if why is None and not isinstance(saved, dict):
            why = f"a JSON {type(saved).__name__}, not the run's settings"
        if why is not None:
            raise Captum3DCamError(f"--out: {path} is not a run record ({why}); give a fresh --out, or delete "
                                   f"{path} to explain every video again")
        saved = {**FIXED_DEFAULTS, **saved}
        changed = [f"{k} ({repr(saved.get(k))[:80]} -> {settings[k]!r})" for k in FIXED
                   if saved.get(k) != fixed_settings(settings)[k]]
        if changed:
            raise Captum3DCamError(f"--out: {out} holds a run with other settings: {', '.join(changed)}; "
                                   "give the same settings to resume it, or another --out")
    else:
        stale = [p for vid in ids for p in (out / "videos" / f"{vid}.json", out / "maps" / f"{vid}.npz")
                 if os.path.lexists(p)]
        if stale:
            log(f"explain-dataset: {out} has files of videos but no run.json (the run's record): not reused, "
                f"those {len(stale)} files are redone")
        for p in stale:
            p.unlink()
    write_atomic(path, json.dumps(settings, indent=1))


# ------------------------------------------------------------------------------------ video files
def num_outputs(net) -> Optional[int]:
    """The number of classes ``net`` scores (``num_classes`` of it or its first module that has one,
    else its labels), ``None`` when unknown."""
    for module in net.modules():
        k = getattr(module, "num_classes", None)
        if isinstance(k, int) and not isinstance(k, bool) and k > 0:
            return k
    labels = getattr(net, "labels", None)
    return len(labels) if labels else None


def _real(value) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _four(value) -> Optional[List[float]]:
    if not isinstance(value, list) or len(value) != 4:
        return None
    box = [_real(v) for v in value]
    return None if any(v is None for v in box) else box


def _box(value) -> Optional[List[float]]:
    box = _four(value)
    return None if box is None or box[0] > box[2] or box[1] > box[3] else box


def _rows(data, key: str, frames: int) -> Optional[str]:
    value = data.get(key)
    if not isinstance(value, list):
        return f"{key}: expected a list, got {type(value).__name__}"
    if len(value) != frames:
        return f"{key}: {len(value)} entries for {frames} frames"
    return None


def check_video(data, expect: Dict[str, Any]) -> Optional[str]:
    """``None`` when ``data`` (a video file's JSON) is what this run writes for the video ``expect`` describes,
    else why not.

    ``expect``: ``video`` (id), ``frames``, ``label``, ``label_name``, ``names`` (the target's names),
    ``num_classes`` (or ``None``), ``windows``, ``settings`` (:func:`fixed_settings`), ``gt``
    (``(T, 4)`` tensor, NaN rows: no box; ``None``: the ground truth and IoUs are not compared).
    """
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not a video record"
    frames = expect["frames"]
    if data.get("video") != expect["video"]:
        return f"video: {str(data.get('video'))[:40]!r}, expected {expect['video']!r}"
    if not _is_int(data.get("frames")) or data["frames"] != frames:
        return f"frames: {str(data.get('frames'))[:20]}, the video has {frames}"
    for key in ("boxes", "gt_boxes", "hit", "iou"):
        why = _rows(data, key, frames)
        if why:
            return why
    size = data.get("frame_size")
    if not isinstance(size, dict) or not all(_is_int(size.get(k)) and size[k] > 0 for k in ("height", "width")):
        return "frame_size: expected positive integer height and width"
    if not _is_int(data.get("label")) or data["label"] != expect["label"] or data.get("label_name") != expect["label_name"]:
        return f"label: {str(data.get('label'))[:20]}, the dataset says {expect['label']}"
    target, k = data.get("target"), expect["num_classes"]
    if not _is_int(target) or target < 0 or (k is not None and target >= k):
        return f"target: {str(target)[:20]}, expected a class index in 0..{'' if k is None else k - 1}"
    names = expect["names"]
    label = names[target] if target < len(names) else str(target)
    if isinstance(label, str) and data.get("target_label") != label:
        return f"target_label: {str(data.get('target_label'))[:40]!r}, class {target} is {label!r}"
    score = _real(data.get("score"))
    if score is None or not 0.0 <= score <= 1.0:
        return f"score: {str(data.get('score'))[:20]}, expected a probability"
    seconds = _real(data.get("seconds"))
    if seconds is None or seconds < 0:
        return f"seconds: {str(data.get('seconds'))[:20]}, expected a duration"
    if data.get("windows") != expect["windows"]:
        return "windows: not those of --clip-len/--stride for this video"
    settings = data.get("settings", expect["settings"])
    if (settings if not isinstance(settings, dict) else {**FIXED_DEFAULTS, **settings}) != expect["settings"]:
        return "settings: written by a run with other settings"
    boxes = [None if b is None else _box(b) for b in data["boxes"]]
    if any(b is None and raw is not None for b, raw in zip(boxes, data["boxes"])):
        return "boxes: expected null or 4 finite numbers with x1 <= x2, y1 <= y2"
    if any(h is not None and not isinstance(h, bool) for h in data["hit"]):
        return "hit: expected true, false or null"
    ious = [None if v is None else (v if isinstance(v, float) and 0.0 <= v <= 1.0 else False) for v in data["iou"]]
    if any(v is False for v in ious):
        return "iou: expected null or a float in [0, 1]"
    gt = expect.get("gt")
    if gt is None:
        return None
    gt = gt.double().reshape(-1, 4)
    want = [r if ok else None for r, ok in zip(gt.tolist(), (~torch.isnan(gt).any(-1)).tolist())]
    got = [None if g is None else _four(g) for g in data["gt_boxes"]]
    if any(g is None and raw is not None for g, raw in zip(got, data["gt_boxes"])) or any(
            (w is None) != (g is None) or (w is not None and max(abs(a - b) for a, b in zip(w, g)) > _IOU_SLACK)
            for w, g in zip(want, got)):
        return "gt_boxes: not the dataset's boxes"
    if any((w is None) != (h is None) for w, h in zip(want, data["hit"])):
        return "hit: not null exactly where the video has no box"
    nan = float("nan")
    pred = torch.tensor([[nan] * 4 if b is None else b for b in boxes], dtype=torch.float64).reshape(-1, 4)
    again = box_iou(pred[None], gt[None])[0].tolist()
    if any((a != a) != (v is None) or (v is not None and abs(a - v) > _IOU_SLACK) for a, v in zip(again, ious)):
        return "iou: not the IoU of the boxes with the dataset's boxes"
    return None


def check_maps(path: Path, frames: int) -> Optional[str]:
    """``None`` when ``path`` is a complete maps file of ``frames`` frames (what
    :class:`~captum_3dcam.video.streaming.MapsWriter` writes; every byte read, CRC checked), else why not."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return "maps: not a regular file"
        with zipfile.ZipFile(path) as archive:
            if archive.namelist() != ["maps.npy"]:
                return "maps: not a maps file"
            size = archive.getinfo("maps.npy").file_size
            with archive.open("maps.npy") as entry:
                version = np.lib.format.read_magic(entry)
                if version not in ((1, 0), (2, 0)):
                    return f"maps: .npy format {version}, expected 1.0"
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read_header(entry)
                header = entry.tell() if entry.seekable() else None
                if dtype != np.dtype("<f2") or fortran or len(shape) != 3 or shape[0] != frames:
                    return f"maps: {dtype} {shape}, expected float16 ({frames}, h, w)"
                if not all(0 < s <= MAX_MAP_SIDE for s in shape[1:]):
                    return f"maps: {shape}, not a map size"
                want = int(np.prod(shape)) * 2
                if header is not None and size != header + want:
                    return f"maps: {size} bytes, expected {header + want}"
                read = 0
                while True:
                    block = entry.read(1 << 20)
                    if not block:
                        break
                    read += len(block)
                    if read > want:
                        return "maps: more data than its header says"
                if read != want:
                    return f"maps: {read} bytes of data, expected {want}"
    except FileNotFoundError:
        return "maps: missing (asked for by --save-maps)"
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError,
            RuntimeError) as exc:
        return f"maps: unreadable ({str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__})"
    return None


def video_limit(frames: int) -> int:
    """The most bytes a video file of ``frames`` frames may hold."""
    return VIDEO_JSON_BYTES + VIDEO_JSON_BYTES_PER_FRAME * max(0, int(frames))


def redo_reason(out: Path, expect: Dict[str, Any], *, save_maps: bool) -> Optional[str]:
    """``None`` when the video ``expect`` describes is complete in ``out``; ``""`` when it has no file;
    else why its files are not reused (see :func:`check_video`, :func:`check_maps`)."""
    path = out / "videos" / f"{expect['video']}.json"
    if not os.path.lexists(path):
        return ""
    if path.is_dir() and not path.is_symlink():
        raise Captum3DCamError(f"--out: {path} is a folder where the video's file goes; remove it")
    data, why = read_json(path, video_limit(expect["frames"]))
    why = why or check_video(data, expect)
    if why is None and save_maps:
        why = check_maps(out / "maps" / f"{expect['video']}.npz", expect["frames"])
    return why


def videos_to_do(out: Path, indices: Sequence[int], expect: Callable[[int], Dict[str, Any]], *,
                 save_maps: bool, shown: int = 10) -> List[int]:
    """The ``indices`` whose files in ``out`` are missing or not reused (:func:`redo_reason`); one line
    ``redoing <id>: why`` on stderr for each of the first ``shown`` files not reused, then a count."""
    todo, rejected = [], 0
    for i in indices:
        record = expect(i)
        why = redo_reason(out, record, save_maps=save_maps)
        if why is None:
            continue
        todo.append(i)
        if why:
            rejected += 1
            log(f"explain-dataset: redoing {record['video']}: {why}", rejected <= shown)
    if rejected > shown:
        log(f"explain-dataset: redoing {rejected - shown} more videos whose files do not match this run")
    return todo


def read_done(out: Path, expect: Dict[str, Any]) -> Dict[str, Any]:
    """A video file written or checked in this run, read bounded and checked again (without ground truth)."""
    path = out / "videos" / f"{expect['video']}.json"
    data, why = read_json(path, video_limit(expect["frames"]))
    why = why or check_video(data, {**expect, "gt": None})
    if why is not None:
        raise Captum3DCamError(f"--out: {path} changed while the run was writing it ({why}); run the command again")
    return data


def expected_windows(frames: int, clip_len: int, stride: Optional[int]) -> Optional[List[List[int]]]:
    """The windows :func:`~captum_3dcam.video.streaming.explain_stream` takes over ``frames`` frames (``None``: none)."""
    step = int(stride or max(1, int(clip_len) // 2))
    try:
        return [list(w) for w in sliding_windows(frames, min(clip_len, frames), step)]
    except ValueError:
        return None
