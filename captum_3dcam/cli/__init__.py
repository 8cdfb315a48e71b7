"""The ``captum-3dcam`` command (also ``python -m captum_3dcam``): one module per subcommand.

    captum-3dcam demo --out demo/                       # synthetic data, small model, figures, report
    captum-3dcam explain clip.mp4 --model i3d-kinetics400 --out clip-3dcam/
    captum-3dcam evaluate --dataset synthetic --out eval/
    captum-3dcam explain-dataset --dataset synthetic --limit 40 --out runs/explained/   # also under torchrun
    captum-3dcam train --dataset synthetic --gates all --epochs 2 --out runs/gated/   # also under torchrun

Lives here: :data:`COMMANDS` (the subcommands, in ``--help`` order), :func:`build_parser` and
:func:`main`. A command is a module with ``NAME``, ``add_parser(subparsers)`` and ``run(args)``
(:mod:`.demo`, :mod:`.explain`, :mod:`.explain_dataset`, :mod:`.evaluate`, :mod:`.train`); adding one is a new module and one entry of
:data:`COMMANDS`. Shared options and error printing are in :mod:`._common`. Does not live here:
what the commands do (library functions notebooks call directly: :func:`captum_3dcam.demo.run_demo`,
:func:`captum_3dcam.explain.explain_video`, :func:`captum_3dcam.evaluation.run_evaluate`,
:func:`captum_3dcam.recognition.run_train`). Errors a
user can cause print one line, ``captum-3dcam COMMAND: error: ...``, exit status 2; ``--debug``
(or ``CAPTUM_3DCAM_DEBUG=1``) shows the traceback instead.
"""
import argparse
import warnings
from typing import Optional, Sequence

from . import demo, evaluate, explain, explain_dataset, train
from ._common import Parser, run_command

__all__ = ["main", "build_parser", "COMMANDS"]

#: The subcommands, in ``--help`` order.
COMMANDS = [demo, explain, explain_dataset, evaluate, train]


def build_parser() -> argparse.ArgumentParser:
    """The ``captum-3dcam`` argument parser, one subparser per entry of :data:`COMMANDS`."""
    from .. import __version__

    parser = Parser(
        prog="captum-3dcam",
        description="Global-local 3DCam attribution for 3D CNN video classifiers: pictures, videos, boxes, metrics.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub).set_defaults(_run=command.run)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``captum-3dcam``; returns the exit status (0 ok, 2 user error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return run_command(args.command, args._run, args)


_MOVED = {
    "explain_video": "captum_3dcam.explain", "run_demo": "captum_3dcam.demo", "run_evaluate": "captum_3dcam.evaluation",
    "MODELS": "captum_3dcam.models.registry", "QUICK_RECIPE": "captum_3dcam.models.small_recipe",
    "default_small_checkpoint": "captum_3dcam.models.small_recipe", "CLIError": "captum_3dcam.errors",
}


def __getattr__(name: str):
    """Deprecated re-exports of library names (``cli.explain_video``, ``cli.CLIError``, ...)."""
    if name in _MOVED:
        import importlib

        home = _MOVED[name]
        warnings.warn(f"captum_3dcam.cli.{name} is deprecated: use {home}"
                      + (".Captum3DCamError" if name == "CLIError" else f".{name}"), DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(home), "Captum3DCamError" if name == "CLIError" else name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
