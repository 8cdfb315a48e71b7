"""The ``captum-3dcam`` command (also ``python -m captum_3dcam``): one module per subcommand (``NAME``,
``add_parser``, ``run``), shared options and one-line errors in :mod:`._common`; ``--help`` imports no torch.
"""
import argparse
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
