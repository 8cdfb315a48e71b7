"""The house rules of docs/ARCHITECTURE.md, checked on the source (ast, nothing is imported).

- the layers are the package's folders (:data:`LAYERS`, low to high); a module imports only from its
  own layer or below, the lazy public names of every ``__init__`` (``_EXPORTS``) included;
- no import cycle between the package's modules, with no exclusion;
- at most 8 modules at the top of the package, at least 6 subpackages, each ``__init__`` saying what
  lives there;
- the library never imports ``benchmarks`` (nor ``tests``);
- no library module over 400 lines (the Kinetics-400 label table aside), every module documented.
"""
import ast
import subprocess
import sys
from pathlib import Path
from typing import Dict, Set

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "captum_3dcam"
MAX_LINES = 400
LONG_DATA = {"captum_3dcam.models.kinetics400_labels"}

#: Layers, low to high: a folder of the package (``"attr"``) or a module at its top (``"errors"``).
#: A module's layer is that of its first path component.
LAYERS = [
    ("base", ["errors", "_lazy", "_utils", "_untrusted", "_safe_load"]),
    ("attribution core", ["attr"]),
    ("localization", ["localization"]),
    ("metrics", ["metrics"]),
    ("video", ["video"]),
    ("datasets", ["datasets"]),
    ("models", ["models"]),
    ("training", ["training"]),
    ("evaluation", ["evaluation"]),
    ("pictures", ["viz"]),
    ("applications", ["apps"]),
    ("command line", ["cli", "__main__", ""]),
]


def _modules() -> Dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _layer(name: str) -> int:
    first = name.split(".")[0]
    for level, (_, places) in enumerate(LAYERS):
        if first in places:
            return level
    raise AssertionError(f"captum_3dcam.{name} has no layer: put it in a folder of LAYERS ({__file__}) "
                         "and docs/ARCHITECTURE.md")


def _resolve(importer: str, node: ast.ImportFrom, lazy: bool = False) -> Set[str]:
    """Package-relative module names an ``import``/``from`` statement of ``importer`` reaches."""
    is_package = MODULES[importer].name == "__init__.py"
    if node.level:
        base = importer.split(".") if importer else []
        base = base if is_package else base[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + (node.module.split(".") if node.module else []))
    elif node.module == "captum_3dcam" or (node.module or "").startswith("captum_3dcam."):
        target = node.module[len("captum_3dcam."):] if node.module != "captum_3dcam" else ""
    else:
        return set()
    found = {target} if lazy else set()
    for alias in node.names:  # "from . import tubes" names a module; "from .x import f" a name
        sub = f"{target}.{alias.name}" if target else alias.name
        found.add(sub if sub in MODULES else target)
    return {m for m in found if m in MODULES}


def _lazy_exports(name: str, tree: ast.Module) -> Set[str]:
    """The modules an ``__init__``'s ``_EXPORTS = {"Name": ".module"}`` serves names from."""
    out = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_EXPORTS" for t in node.targets):
            for value in node.value.values:
                level = len(value.value) - len(value.value.lstrip("."))
                out |= _resolve(name, ast.ImportFrom(module=value.value.lstrip(".") or None, names=[], level=level),
                                lazy=True)
    return out


def _imports(name: str) -> Set[str]:
    tree = ast.parse(MODULES[name].read_text())
    out = _lazy_exports(name, tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            out |= _resolve(name, node)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("captum_3dcam."):
                    out.add(alias.name[len("captum_3dcam."):])
                elif alias.name.split(".")[0] in ("benchmarks", "tests"):
                    out.add(alias.name)
    return out - {name}


GRAPH = {name: _imports(name) for name in MODULES}


def test_every_module_has_a_layer():
    for name in MODULES:
        _layer(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_upward_import(name):
    upward = sorted(f"{dep} ({LAYERS[_layer(dep)][0]})" for dep in GRAPH[name]
                    if dep in MODULES and _layer(dep) > _layer(name))
    assert not upward, f"captum_3dcam.{name} ({LAYERS[_layer(name)][0]}) imports from above: {upward}"


def test_library_never_imports_benchmarks_or_tests():
    for name, deps in GRAPH.items():
        bad = [d for d in deps if d.split(".")[0] in ("benchmarks", "tests")]
        assert not bad, f"captum_3dcam.{name} imports {bad}"
        code = [n.value for n in ast.walk(ast.parse(MODULES[name].read_text()))
                if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        docs = {ast.get_docstring(n, clean=False) for n in ast.walk(ast.parse(MODULES[name].read_text()))
                if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef))}
        assert not any("benchmarks/" in c for c in code if c not in docs), name  # no path into benchmarks


def test_no_import_cycle():
    state: Dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node, path):
        state[node] = 1
        for dep in sorted(GRAPH[node]):
            if dep not in MODULES:
                continue
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(f"captum_3dcam.{m}" for m in cycle))
            if dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for name in sorted(MODULES):
        if name not in state:
            visit(name, [name])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size_and_docstring(name):
    text = MODULES[name].read_text()
    if f"captum_3dcam.{name}" not in LONG_DATA:
        lines = len(text.splitlines())
        assert lines <= MAX_LINES, f"captum_3dcam.{name} has {lines} lines (> {MAX_LINES}): split it by concept"
    assert ast.get_docstring(ast.parse(text)), f"captum_3dcam.{name}: say in a docstring what lives there"


def test_the_checker_sees_upward_imports_and_cycles():
    """A check that cannot fail is a defect: the graph must contain edges this package has."""
    assert "attr.attribution" in GRAPH["evaluation.engine"]  # from ..attr.attribution import ...
    assert "localization.boxes" in GRAPH["metrics.localization"]
    assert "viz.figures" in GRAPH["viz"] and "video.io" in GRAPH["viz"]  # lazy _EXPORTS are edges too
    assert "attr.attribution" in GRAPH[""]
    assert _layer("cli.train") == _layer("cli") > _layer("evaluation.methods") > _layer("video.io")


def test_the_top_of_the_package_is_small_and_every_package_says_what_lives_there():
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert len(top) <= 8, f"{len(top)} modules at the top of captum_3dcam: {top}"
    packages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    assert len(packages) >= 6, packages
    for name in packages:
        doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text()))
        assert doc and len(doc.splitlines()) <= 3, f"captum_3dcam.{name}: two lines on what lives there"
    folders = {p.parent.name for p in PACKAGE.rglob("*.py")} - {"captum_3dcam"}
    placed = {place for _, places in LAYERS for place in places}
    assert folders <= placed, f"folders without a layer: {sorted(folders - placed)}"


def _loaded_after(code: str) -> Set[str]:
    out = subprocess.run([sys.executable, "-c", code + "; import sys; print(' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, cwd=PACKAGE.parent).stdout.split()
    return set(out)


def test_import_captum_3dcam_loads_the_core_only():
    loaded = _loaded_after("import captum_3dcam")
    assert "torch" not in loaded and not any(m.startswith("captum_3dcam.") for m in loaded - {"captum_3dcam._lazy"})
    loaded = _loaded_after("from captum_3dcam import GlobalLocal3DCam")
    ours = {m for m in loaded if m.startswith("captum_3dcam.")}
    heavy = ("training", "datasets", "evaluation", "apps", "models", "video", "viz", "metrics", "cli")
    assert not {m for m in ours if m.split(".")[1] in heavy}, sorted(ours)


def test_help_does_not_import_torch():
    code = ("import sys; from captum_3dcam.cli import build_parser\n"
            "for c in (None, 'demo', 'explain', 'explain-dataset', 'evaluate', 'train'):\n"
            "    try: build_parser().parse_args(['--help'] if c is None else [c, '--help'])\n"
            "    except SystemExit: pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=PACKAGE.parent)
