"""Private helpers shared by several modules: one copy of each.

Lives here: normalizations that never divide by zero, mask -> box, the box check, the intersection
and union of boxes, the computation dtype of half-precision input, layer-name resolution, path arguments checked
with messages that name them (:func:`as_path`, :func:`check_output_dir`), optional imports with a
clear ``ImportError``, the progress bar, ``torch.autocast`` by dtype name and atomic file writes.
Does not live here: anything with a public contract of its own (that goes in its concept's module:
:func:`captum_3dcam.metrics.localization.box_iou`, :func:`captum_3dcam.localization.boxes.attribution_to_boxes`).
This module imports nothing from the package, so every layer may use it.
"""
import contextlib
import importlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .errors import Captum3DCamError

__all__ = [
    "inverse_max", "normalize_max", "normalize_minmax", "mask_to_boxes", "inter_union", "checked_boxes",
    "compute_dtype", "as_path", "check_output_dir", "resolve_layers", "resolve_device", "optional_import",
    "progress_bar", "log", "autocast", "write_atomic",
]


def inverse_max(x: Tensor, dims: Sequence[int] = (2, 3, 4)) -> Tensor:
    """``1 / max`` over ``dims`` where the maximum is positive, else 0 (never inf, never NaN).

    Shape:
        - x: any, e.g. :math:`(N, C, T, H, W)` with ``dims=(2, 3, 4)``
        - output: ``x``'s shape with ``dims`` kept as size 1
    """
    peak = x.amax(dim=tuple(dims), keepdim=True)
    positive = peak > 0
    return torch.where(positive, 1.0 / torch.where(positive, peak, torch.ones_like(peak)), 0.0)


def normalize_max(x: Tensor, dims: Sequence[int] = (2, 3, 4)) -> Tensor:
    r"""``x / max x`` over ``dims``; a slice with no positive value becomes 0.

    Shape:
        - x: any; output: same as ``x``
    """
    return x * inverse_max(x, dims)


def normalize_minmax(x: Tensor, dims: Sequence[int] = (2, 3, 4)) -> Tensor:
    r"""``(x - min) / (max - min)`` over ``dims``; a constant slice becomes 0 (never NaN).

    Shape:
        - x: any; output: same as ``x``, values in ``[0, 1]``
    """
    dims = tuple(dims)
    low = x.amin(dim=dims, keepdim=True)
    span = x.amax(dim=dims, keepdim=True) - low
    positive = span > 0
    scale = torch.where(positive, 1.0 / torch.where(positive, span, torch.ones_like(span)), 0.0)
    return (x - low) * scale


def mask_to_boxes(mask: Tensor) -> Tensor:
    """Bounding box of the True pixels of each frame, pixel edges; NaN rows for empty frames.

    A frame whose True pixels span columns ``i..j`` and rows ``k..l`` gets ``(i, k, j + 1, l + 1)``.

    Shape:
        - mask: :math:`(..., H, W)` bool (nonzero = inside)
        - output: :math:`(..., 4)` float64 ``(x1, y1, x2, y2)``
    """
    mask = mask != 0
    lead, (h, w) = mask.shape[:-2], mask.shape[-2:]
    flat = mask.reshape(-1, h, w)
    rows, cols = flat.any(dim=2).to(torch.uint8), flat.any(dim=1).to(torch.uint8)
    y1, y2 = rows.argmax(dim=1), h - rows.flip(1).argmax(dim=1)
    x1, x2 = cols.argmax(dim=1), w - cols.flip(1).argmax(dim=1)
    boxes = torch.stack([x1, y1, x2, y2], dim=1).to(torch.float64)
    boxes = torch.where(rows.bool().any(dim=1, keepdim=True), boxes, torch.full_like(boxes, float("nan")))
    return boxes.reshape(*lead, 4)


def inter_union(a: Tensor, b: Tensor) -> Tuple[Tensor, Tensor]:
    """Intersection and union areas of boxes ``(x1, y1, x2, y2)``, broadcast against each other.

    Shape:
        - a, b: :math:`(..., 4)`, broadcastable (``a[:, None]``, ``b[None]`` for all pairs)
        - output: two tensors of the broadcast shape without the last dimension
    """
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = (a[..., 2:] - a[..., :2]).prod(-1) + (b[..., 2:] - b[..., :2]).prod(-1) - inter
    return inter, union


def checked_boxes(boxes: Tensor, name: str = "boxes") -> Tensor:
    """Boxes ``(..., 4)`` checked (a tensor, real, rows all finite with ``x1 <= x2, y1 <= y2`` or
    all NaN) and returned in float64, exact for every input dtype (int64 up to 2**53): the dtype
    metrics compute in. Public as :func:`captum_3dcam.metrics.localization.check_boxes`.

    Raises:
        TypeError: not a real tensor. ValueError: shape not ``(..., 4)``, inf, partly-NaN or reversed rows.

    Shape:
        ``(..., 4) -> (..., 4)`` float64
    """
    if not isinstance(boxes, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of shape (..., 4), got {type(boxes).__name__}")
    if boxes.dim() == 0 or boxes.shape[-1] != 4:
        raise ValueError(f"{name}: expected shape (..., 4) as (x1, y1, x2, y2), got {tuple(boxes.shape)}")
    if boxes.dtype == torch.bool or boxes.is_complex():
        raise TypeError(f"{name}: expected a real-valued tensor, got dtype {boxes.dtype}")
    boxes = boxes.detach().to(torch.float64)
    nan = torch.isnan(boxes)
    partial = nan.any(-1) & ~nan.all(-1)
    if bool(partial.any()):
        first = tuple(torch.nonzero(partial)[0].tolist())
        raise ValueError(f"{name}: a row must be all finite or all NaN (no box); row {first} is partly NaN")
    if bool(torch.isinf(boxes).any()):
        raise ValueError(f"{name}: expected finite coordinates or NaN rows, got inf")
    bad = (boxes[..., 2] < boxes[..., 0]) | (boxes[..., 3] < boxes[..., 1])
    if bool(bad.any()):
        first = tuple(torch.nonzero(bad)[0].tolist())
        raise ValueError(
            f"{name}: expected x1 <= x2 and y1 <= y2 in (x1, y1, x2, y2); {int(bad.sum())} rows "
            f"break it, first at {first}: {boxes[first].tolist()}"
        )
    return boxes


def compute_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """The dtype to compute (and return) results of inputs of ``dtypes`` in: their promotion,
    with half precision (float16, bfloat16) and integers raised to float32. float64 stays float64."""
    out = dtypes[0]
    for dtype in dtypes[1:]:
        out = torch.promote_types(out, dtype)
    return out if out in (torch.float32, torch.float64) else torch.float32


def as_path(value: Any, name: str, *, kind: Optional[str] = None) -> Path:
    """``value`` as a :class:`~pathlib.Path`, with messages that name the argument ``name``.

    Args:
        value: a ``str`` or ``os.PathLike`` (``bytes`` are refused: decode them with ``os.fsdecode``).
        name: the argument, as the message should name it (``"path"``, ``"--checkpoint"``).
        kind: ``"file"``: an existing folder raises ``IsADirectoryError``; ``"dir"``: an existing
            file raises ``NotADirectoryError``. Whether the path exists is left to the caller.

    Raises:
        TypeError: ``None``, a number, ``bytes`` or anything else that is not a path.
        ValueError: an empty string.
    """
    if isinstance(value, (bytes, bytearray)):
        raise TypeError(f"{name}: expected a path as str or os.PathLike, got bytes {bytes(value)[:60]!r}; "
                        "decode it first, e.g. os.fsdecode(path)")
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a path as str or os.PathLike, got {type(value).__name__} {value!r:.60}")
    try:
        text = os.fspath(value)
    except TypeError as exc:
        raise TypeError(f"{name}: expected a path as str or os.PathLike, got {type(value).__name__} ({exc})") from None
    if not isinstance(text, str):
        raise TypeError(f"{name}: expected a path as str or os.PathLike, got a {type(value).__name__} whose "
                        f"__fspath__ returns {type(text).__name__}")
    if text == "":
        raise ValueError(f"{name}: expected a path, got an empty string")
    path = Path(text)
    if kind == "file" and path.is_dir():
        raise IsADirectoryError(f"{name}: {path} is a folder, expected a file")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{name}: {path} is a file, expected a folder")
    return path


def check_output_dir(value: Any, name: str = "out") -> Path:
    """Make sure the output folder ``value`` can be created and written to, before any work is done.

    Nothing is left behind: the probe folder made in ``value`` (or in its nearest existing
    ancestor, when ``value`` does not exist yet) is removed at once; ``value`` itself is not created.
    The probe writes for real, so read-only file systems and permissions are caught, as root too.

    Raises:
        NotADirectoryError: ``value`` (or a folder above it) is a file.
        PermissionError: the folder cannot be written to.
        TypeError, ValueError: see :func:`as_path`.
    """
    path = as_path(value, name, kind="dir")
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise NotADirectoryError(f"{name}: {path} lies under {existing}, which is a file, not a folder")
    try:
        probe = tempfile.mkdtemp(prefix=".captum-3dcam-write-test-", dir=existing)
    except OSError as exc:
        raise PermissionError(f"{name}: cannot write to {existing}"
                              + ("" if existing == path else f" (to create {path})")
                              + f": {exc.strerror or exc}") from None
    shutil.rmtree(probe, ignore_errors=True)
    return path


def resolve_layers(model: nn.Module, layers: Any, name: str = "layers") -> Tuple[List[str], List[nn.Module]]:
    """Layers given as modules or dotted names (``"Mixed_4f"``, ``"layer3.1.conv2"``, ``"a,b"``).

    Returns ``(names, modules)`` in the given order. Raises :class:`Captum3DCamError` (a
    ``ValueError``) naming ``name`` for an unknown name, a module outside ``model``, the model
    itself, a repeated layer or no layer at all, and ``TypeError`` for entries of another type.
    """
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    try:
        layers = list(layers)
    except TypeError:
        raise TypeError(f"{name}: expected a module, a dotted name, or a sequence of them, "
                        f"got {type(layers).__name__}") from None
    layers = [p for entry in layers for p in (entry.split(",") if isinstance(entry, str) else [entry]) if p != ""]
    if not layers:
        raise Captum3DCamError(f"{name}: expected at least one layer, got an empty sequence")
    modules = dict(model.named_modules(remove_duplicate=False))  # a module shared under two names: both
    by_id = {}
    for key, module in modules.items():
        by_id.setdefault(id(module), key)
    names, unknown = [], []
    for layer in layers:
        if isinstance(layer, str):
            if layer not in modules:
                unknown.append(layer)
            names.append(layer)
        elif isinstance(layer, nn.Module):
            if id(layer) not in by_id:
                raise Captum3DCamError(f"{name}: the module {type(layer).__name__} is not a submodule of "
                                       f"{type(model).__name__}")
            names.append(by_id[id(layer)])
        else:
            raise TypeError(f"{name}: expected nn.Module or str entries, got {type(layer).__name__}")
    if unknown:
        raise Captum3DCamError(f"{name}: {', '.join(map(repr, unknown))} not found in {type(model).__name__} "
                               f"(unknown names {unknown}; any name of model.named_modules() works)")
    if "" in names:
        raise Captum3DCamError(f"{name}: the model itself is not one of its layers; name one of its submodules")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise Captum3DCamError(f"{name}: {', '.join(map(repr, twice))} is given twice")
    return names, [modules[n] for n in names]


def resolve_device(device: Any = "auto") -> torch.device:
    """``"auto"`` (or ``None``): CUDA when available, else the CPU; anything else as ``torch.device``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise Captum3DCamError(f"device: expected 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise Captum3DCamError("device: CUDA was asked for but torch.cuda.is_available() is False here")
    return device


_EXTRAS = {"av": "video", "matplotlib": "viz", "PIL": "viz", "scipy": "localization", "tqdm": "progress"}


def optional_import(module: str, purpose: str):
    """``importlib.import_module(module)``, or an ``ImportError`` that says what to install.

    ``purpose`` completes "... needs <package>", e.g. ``optional_import("av", "reading video")``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRAS.get(top)
        hint = f"pip install captum-3dcam[{extra}]" if extra else f"pip install {top}"
        raise ImportError(f"{purpose} needs {top}: {hint}") from exc


def log(message: str, enabled: bool = True) -> None:
    """One line on stderr (the messages of long commands), when ``enabled``."""
    if enabled:
        print(message, file=sys.stderr, flush=True)


class _Lines:
    """Progress outside a terminal: a plain line on stderr every ``interval`` seconds, no escapes."""

    def __init__(self, iterable: Iterable, desc: str, total: Optional[int], unit: str, initial: int,
                 interval: float, quiet: bool, leave: bool) -> None:
        self.iterable, self.desc, self.unit, self.n, self.leave = iterable, desc, unit, initial, leave
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.interval, self.quiet, self.postfix = interval, quiet, ""
        self._start = self._last = time.monotonic()
        self._printed, self._printed_n = False, None

    def __len__(self) -> int:
        return len(self.iterable)

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update()
        if not self.quiet and (self.leave or self._printed) and self.n != self._printed_n:
            self._print()

    def update(self, n: int = 1) -> None:
        self.n += n
        if not self.quiet and time.monotonic() - self._last >= self.interval:
            self._print()

    def _print(self) -> None:
        of = f"/{self.total}" if self.total is not None else ""
        log(f"{self.desc}: {self.n}{of} {self.unit} ({time.monotonic() - self._start:.0f} s){self.postfix}")
        self._last, self._printed, self._printed_n = time.monotonic(), True, self.n

    def set_postfix(self, ordered_dict=None, **kwargs) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = "".join(f", {k}={v}" for k, v in items.items())

    def close(self) -> None:
        pass


def progress_bar(iterable: Iterable, desc: str = "", *, total: Optional[int] = None, unit: str = "it",
                 enabled: bool = True, leave: bool = True, initial: int = 0, interval: float = 5.0):
    """The one progress bar of the library: ``iterable`` wrapped, with ``set_postfix`` and ``close``.

    - ``enabled=False``, or ``CAPTUM_3DCAM_PROGRESS=0`` in the environment: silent.
    - stderr is a terminal and tqdm is installed: a tqdm bar.
    - otherwise (logs, CI, notebooks' captured stderr): a plain line every ``interval`` seconds
      (``desc: n/total unit (elapsed s)``) and one at the end (with ``leave`` or after any line),
      no escape codes.
    """
    quiet = not enabled or os.environ.get("CAPTUM_3DCAM_PROGRESS", "1") == "0"
    if not quiet and getattr(sys.stderr, "isatty", lambda: False)():
        try:
            from tqdm import tqdm
        except ImportError:  # progress is optional: plain lines instead
            pass
        else:
            return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave, initial=initial, file=sys.stderr)
    return _Lines(iterable, desc, total, unit, initial, interval, quiet, leave)


def autocast(device: torch.device, dtype: str):
    """``torch.autocast`` to bfloat16 for ``dtype="bfloat16"``, nothing for ``"float32"``."""
    if dtype == "bfloat16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def write_atomic(path: Union[str, os.PathLike], text: Union[str, bytes]) -> Path:
    """Write ``text`` (``str``, or ``bytes`` as they are) to ``path`` through a temporary file
    ``.NAME.PID.tmp`` and a rename (readers never see half a file; a kill leaves at most the temporary)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(text, (bytes, bytearray)):
            tmp.write_bytes(bytes(text))
        else:
            tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:  # a full disk, Ctrl-C: neither half a file nor a stray temporary is left
        tmp.unlink(missing_ok=True)
        raise
    return path
