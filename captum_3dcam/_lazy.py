"""Lazy public names of a package: ``import captum_3dcam`` (or a subpackage) imports nothing heavy.

Lives here: :func:`lazy_exports`, the module ``__getattr__``/``__dir__`` pair (PEP 562) through
which each package's ``__init__`` serves its public names from the modules that define them, on
first use. Why our own: the standard library has no such helper, and eager imports made
``import captum_3dcam`` load 40 modules and ``captum-3dcam --help`` import torch. Does not live
here: any name of the library (the ``__init__`` files list theirs). Imports nothing of the package.
"""
import importlib
from typing import Callable, Dict, Iterable, List, Tuple

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Dict[str, str]) -> Tuple[Callable[[str], object], Callable[[], List[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps a public name to the module
    (relative to ``package``, e.g. ``".attribution"``) that defines it; the name is imported from
    there the first time it is asked for and kept in the package's namespace."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        setattr(importlib.import_module(package), name, value)
        return value

    def __dir__() -> List[str]:
        return sorted(set(exports) | set(_module_names(package)))

    return __getattr__, __dir__


def _module_names(package: str) -> Iterable[str]:
    return [k for k in vars(importlib.import_module(package)) if not k.startswith("__")]
