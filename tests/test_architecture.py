"""The house rules of docs/ARCHITECTURE.md, checked on the source (ast, nothing is imported).

- every module has a layer (:data:`LAYERS`); a module imports only from its own layer or below;
- no import cycle between the package's modules;
- the library never imports ``benchmarks`` (nor ``tests``);
- no library module over 400 lines (the Kinetics-400 label table aside), every module documented.

Imports inside a module-level ``__getattr__`` are deprecated lazy re-exports (an old name served
from its new home) and are left out of the graph.
"""
import ast
from pathlib import Path
from typing import Dict, Set

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "captum_3dcam"
MAX_LINES = 400
LONG_DATA = {"captum_3dcam.models.kinetics400_labels"}

#: Layers, low to high (docs/ARCHITECTURE.md). Names are module paths below ``captum_3dcam``;
#: ``"models.*"`` covers a subpackage. A new module gets a row here (the test says so).
LAYERS = [
    ("base", ["errors", "_utils", "_untrusted", "_safe_load", "distributed", "ddp"]),
    ("core", ["upsample", "padding", "layer_rules", "_hooks", "_validation", "attribution", "presets"]),
    ("localization and metrics", ["localization", "tubes", "metrics", "grid_game", "sanity", "faithfulness", "confidence", "imputation"]),
    ("models, video, datasets", ["models", "models.*", "video", "preprocess", "windows", "streaming", "datasets",
                                 "datasets.*", "gates", "gating", "accuracy", "training", "training_checkpoints"]),
    ("evaluation", ["evaluation", "evaluation.dataset_run", "evaluation.*"]),
    ("pictures", ["overlays", "figures", "visualization"]),
    ("applications and CLI", ["explain", "demo", "recognition", "pipeline", "cli", "cli.explain_dataset", "cli.*",
                              "__main__", ""]),
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
    for level, (_, patterns) in enumerate(LAYERS):
        for pattern in patterns:
            if name == pattern or (pattern.endswith(".*") and name.startswith(pattern[:-1])):
                return level
    raise AssertionError(f"captum_3dcam.{name} has no layer: add it to LAYERS in {__file__} "
                         "and to docs/ARCHITECTURE.md")


def _resolve(importer: str, node: ast.ImportFrom) -> Set[str]:
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
    found = set()
    for alias in node.names:  # "from . import tubes" names a module; "from .x import f" a name
        sub = f"{target}.{alias.name}" if target else alias.name
        found.add(sub if sub in MODULES else target)
    return {m for m in found if m in MODULES}


def _imports(name: str) -> Set[str]:
    tree = ast.parse(MODULES[name].read_text())
    lazy = {id(n) for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
            for n in ast.walk(f)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in lazy:
            continue
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
    assert "attribution" in GRAPH["evaluation.engine"]  # from ..attribution import ...
    assert "tubes" in GRAPH["metrics"]
    assert "figures" in GRAPH["visualization"] and "overlays" in GRAPH["visualization"]  # from . import ...
    assert "models.small_recipe" not in GRAPH["training"]  # the lazy __getattr__ re-export is left out
    assert _layer("cli.train") == _layer("cli") > _layer("evaluation.methods") > _layer("video")
