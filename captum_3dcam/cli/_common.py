"""What every ``captum-3dcam`` command shares: argument types, the common options, error lines.

Lives here: :func:`add_command` (a subcommand with ``--quiet`` (alias ``--no-progress``), ``--debug``
and ``--device``), :func:`add_full_frame` (``--full-frame``), the argument types :func:`positive_int`, :func:`seed`, :func:`fraction`, :func:`device`, and
:func:`run_command` (a user's mistake, or an ``OSError`` such as a full disk, becomes one line on
stderr and exit status 2). Does not
live here: any command (one module each in :mod:`captum_3dcam.cli`) or library logic.
"""
import argparse
import os
import pickle
import sys

from ..errors import Captum3DCamError

__all__ = ["Parser", "add_command", "add_full_frame", "positive_int", "non_negative_int", "seed", "fraction", "device", "run_command", "USER_ERRORS"]

#: Exceptions printed as one line (exit status 2) unless ``--debug``.
USER_ERRORS = (Captum3DCamError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError,
               ValueError, ImportError, pickle.UnpicklingError)


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are one line, as every other error of the
    command: ``captum-3dcam explain: error: argument --seed: expected ... (see --help)``, exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """An ``argparse`` type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An ``argparse`` type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def seed(text: str) -> int:
    """An ``argparse`` type: a random seed, an integer in ``[0, MAX_SEED]``
    (:data:`captum_3dcam.training.loop.MAX_SEED`, imported here only when ``--seed`` is given)."""
    from ..training.loop import MAX_SEED

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, {MAX_SEED}], got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, {MAX_SEED}], got {text!r}")
    return value


def fraction(text: str) -> float:
    """An ``argparse`` type: a number in ``[0, 1]``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def device(text: str) -> str:
    """An ``argparse`` type: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")


def add_command(subparsers, name: str, *, help: str, description: str, with_device: bool = True):
    """A subcommand parser with the options every command has; returns it for the command's own.

    Every command gets ``-q/--quiet`` (also spelled ``--no-progress``; both set ``args.no_progress``:
    no progress bars and no step messages on stderr, results still printed), ``--debug`` and
    ``--device auto|cpu|cuda|cuda:N``. ``with_device=False`` is for a command that runs no model.
    """
    parser = subparsers.add_parser(name, help=help, description=description)
    parser.add_argument("-q", "--quiet", "--no-progress", dest="no_progress", action="store_true",
                        help="no progress bars or step messages on stderr (results are still printed)")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    if with_device:
        parser.add_argument("--device", type=device, default="auto",
                            help="auto (CUDA when available, the default), cpu, cuda or cuda:N")
    return parser


def add_full_frame(parser) -> None:
    """``--full-frame`` (``args.full_frame``): the whole frame at the model's scale instead of the centre crop.

    The models refused (a head of fixed input size) are named from the registry, without torch.
    """
    from ..models.registry import MODELS

    fixed = [name for name, spec in MODELS.items() if not spec.fully_convolutional]
    parser.add_argument("--full-frame", action="store_true",
                        help="explain the whole frame: the short side resized to the model's scale, no centre crop, "
                             "so maps and boxes cover every pixel (fully convolutional models only"
                             + (f"; not {', '.join(fixed)}" if fixed else "") + ")")


def run_command(command: str, run, args) -> int:
    """``run(args)``; a user's mistake prints ``captum-3dcam COMMAND: error: ...`` and returns 2."""
    debug = getattr(args, "debug", False) or os.environ.get("CAPTUM_3DCAM_DEBUG") == "1"
    try:
        return int(run(args) or 0)
    except KeyboardInterrupt:
        print("captum-3dcam: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS + (OSError,) as exc:
        if debug:
            raise
        print(f"captum-3dcam {command}: error: {error_line(exc)}", file=sys.stderr)
        return 2


def error_line(exc: BaseException) -> str:
    """One line for ``exc``: its message, or for an ``OSError`` (disk full, read-only file system,
    ...) the file and the system's reason, e.g. ``runs/x/videos/a.json: No space left on device``."""
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, USER_ERRORS):
        where = exc.filename if exc.filename is not None else ""
        message = f"{where}: {exc.strerror}" if where != "" else exc.strerror
    else:
        message = str(exc)
    return " ".join(message.split()) or type(exc).__name__
