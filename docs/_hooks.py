"""MkDocs hooks of the documentation site (``hooks:`` in mkdocs.yml): the benchmark results as a page.

``benchmarks/RESULTS.md`` lives beside the scripts that write it, outside ``docs/``. The site shows it
as the page ``results.md``; the guides' links to ``../benchmarks/RESULTS.md`` (which work on GitHub
and in an editor) are pointed at that page, and the page's own relative links (to files beside it in
``benchmarks/``, not pages of the site) become plain text.
"""
import re
from pathlib import Path

from mkdocs.structure.files import File

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "RESULTS.md"
PAGE = "results.md"
_RELATIVE_LINK = re.compile(r"\[([^\]]+)\]\((?!https?:|#)[^)]*\)")


def on_files(files, config):
    files.append(File.generated(config, PAGE, abs_src_path=str(RESULTS)))
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == PAGE:
        return _RELATIVE_LINK.sub(r"\1", markdown)
    return markdown.replace("](../benchmarks/RESULTS.md", f"]({PAGE}")
