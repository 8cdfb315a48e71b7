"""Shared by the benchmark scripts: each one owns a block of ``benchmarks/RESULTS.md``."""
from pathlib import Path

__all__ = ["write_results_block"]


def write_results_block(path: Path, body: str, block: str) -> None:
    """Replace (or append) the ``<!-- BEGIN block -->`` ... ``<!-- END block -->`` part of ``path``.

    The file is read just before writing, so scripts run one after another keep each other's blocks.
    An existing block is replaced in place: the contents list, the section headings (``# Speed and
    memory``, ...) and the other blocks around it stay as they are. A new block is appended at the
    end of the file; move it under its section (and list it in the contents) by hand.
    """
    path = Path(path)
    begin, end = f"<!-- BEGIN {block} -->", f"<!-- END {block} -->"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    section = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + section + tail
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
