"""Structures read from files we do not trust: walked without recursion, each object once, within bounds.

A pickle can share one object many times (40 lists, each holding the previous one twice, is a file
of a few hundred bytes with 2**40 paths), refer to itself, or nest 200000 levels deep; a walk that
follows every path never ends, a recursive one raises ``RecursionError``. So everything here is
iterative, remembers what it has seen by ``id``, and stops with a clear error past
:data:`MAX_DEPTH` levels or :data:`MAX_OBJECTS` references.

Lives here: the limits, :func:`walk_untrusted` (dicts, lists, tuples and sets; the caller sees every
other leaf), :func:`short_repr` (a repr bounded in depth and length, for messages about such
values), :func:`same_kind` and the checks of an optimizer's and a scheduler's state dict read from a
checkpoint (:func:`optimizer_state_problem`, :func:`scheduler_state_problem`: types, finite numbers,
shapes, before ``load_state_dict`` trusts them). Does not live here: reading the files
(:mod:`captum_3dcam._safe_load`), what the fields of our checkpoints mean
(:mod:`captum_3dcam.models.train_checkpoint`, :mod:`captum_3dcam.models.trained`).
"""
import math
import re
import reprlib
from collections.abc import Mapping
from typing import Any, Callable, Optional, Type

import torch

__all__ = ["MAX_DEPTH", "MAX_OBJECTS", "walk_untrusted", "short_repr", "same_kind", "optimizer_state_problem",
           "scheduler_state_problem"]

#: Deepest nesting accepted in a file (checkpoints and annotation pickles nest < 10 levels).
MAX_DEPTH = 100
#: Most references (container entries) accepted in a file (UCF101-24's annotations hold ~10**5).
MAX_OBJECTS = 2_000_000

_CONTAINERS = (list, tuple, set, frozenset)
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 3, 60, 60, 5, 5, 5


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to a few levels and items: safe on shared, self-referential or deep values."""
    try:
        return _REPR.repr(value)
    except Exception:  # a hostile __repr__ cannot come from our loaders, but never fail a message
        return f"<{type(value).__name__}>"


def _key_text(key: Any) -> str:
    return key if isinstance(key, str) else short_repr(key)


def walk_untrusted(tree: Any, source: str, *, error: Type[Exception] = ValueError,
                   leaf: Optional[Callable[[Any, str], None]] = None, max_depth: Optional[int] = None,
                   max_objects: Optional[int] = None) -> int:
    """Visit every container of ``tree`` once (by ``id``) without recursion; call ``leaf(value, path)``
    for every other value (a path like ``"params/Conv3d/kernel"``). Returns the references counted.

    ``max_depth`` / ``max_objects`` default to :data:`MAX_DEPTH` / :data:`MAX_OBJECTS` (read at each call).

    Raises:
        error: ``"{source}: too deeply nested ..."`` past ``max_depth`` levels, ``"{source}: too many
            objects ..."`` past ``max_objects`` references (dict keys and values, list items).
    """
    max_depth = MAX_DEPTH if max_depth is None else max_depth
    max_objects = MAX_OBJECTS if max_objects is None else max_objects
    seen = set()
    stack = [(tree, "", 0)]
    count = 0
    while stack:
        value, path, depth = stack.pop()
        count += 1
        if count > max_objects:
            raise error(f"{source}: too many objects (more than {max_objects:,} references); not loaded")
        if isinstance(value, (Mapping,) + _CONTAINERS):
            if id(value) in seen:
                continue
            seen.add(id(value))
            if depth >= max_depth:
                raise error(f"{source}: too deeply nested (more than {max_depth} levels, at "
                            f"{short_repr(path[:200])}); not loaded")
            if isinstance(value, Mapping):
                for key, item in value.items():
                    text = _key_text(key)
                    stack.append((key, f"{path}/<key {text}>", depth + 1))
                    stack.append((item, f"{path}/{text}" if path else text, depth + 1))
            else:
                stack.extend((item, f"{path}/{i}", depth + 1) for i, item in enumerate(value))
        elif leaf is not None:
            leaf(value, path)
    return count


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: Entries of optimizer / scheduler states that must be > 0 or >= 0 (a 0 step size divides by zero).
_POSITIVE = {"lr", "initial_lr", "eps", "step_size", "gamma", "base_lrs", "_last_lr"}
_NON_NEGATIVE = {"momentum", "dampening", "weight_decay", "_step_count"}


def _number_problem(name: str, value: Any, integer: bool) -> Optional[str]:
    if not _is_number(value) or (integer and not isinstance(value, int)):
        return f"{name}: expected {'an int' if integer else 'a number'}, got {short_repr(value)}"
    if not math.isfinite(value):
        return f"{name}: expected a finite number, got {value!r}"
    base = re.split(r"[. ]", name)[-1].split("[")[0]
    if (base in _POSITIVE and not value > 0) or (base in _NON_NEGATIVE and not value >= 0):
        return f"{name}: expected a number {'> 0' if base in _POSITIVE else '>= 0'}, got {value!r}"
    return None


def same_kind(name: str, current: Any, saved: Any) -> Optional[str]:
    """Why ``saved`` (read from a file) cannot replace ``current`` (the live value), or ``None``.

    Numbers stay finite numbers (ints stay ints), bools bools, strings strings, lists/tuples of
    numbers keep their length, tensors their shape; a value the live object lacks must be a plain
    scalar (``None``, bool, finite number, string).
    """
    if isinstance(current, bool) or current is None:
        ok = isinstance(saved, bool) or saved is None or (current is None and (_is_number(saved)
                                                                              or isinstance(saved, str)))
        return None if ok else f"{name}: expected a bool or None, got {short_repr(saved)}"
    if _is_number(current):
        return _number_problem(name, saved, integer=isinstance(current, int) and name.endswith(
            ("step_size", "last_epoch", "_step_count")))
    if isinstance(current, str):
        return None if isinstance(saved, str) and len(saved) <= 1000 else f"{name}: expected a string"
    if isinstance(current, (list, tuple)):
        if not isinstance(saved, (list, tuple)) or len(saved) != len(current):
            return f"{name}: expected a list of {len(current)} values, got {short_repr(saved)}"
        for i, (c, s) in enumerate(zip(current, saved)):
            problem = same_kind(f"{name}[{i}]", c, s)
            if problem:
                return problem
        return None
    if isinstance(current, torch.Tensor):
        if not isinstance(saved, torch.Tensor) or saved.shape != current.shape:
            return f"{name}: expected a tensor of shape {tuple(current.shape)}, got {short_repr(saved)}"
        if (saved.is_floating_point() or saved.is_complex()) and not bool(torch.isfinite(saved).all()):
            return f"{name}: holds values that are not finite"
        return None
    if isinstance(saved, (Mapping, list, tuple, set, torch.Tensor)):
        return f"{name}: expected a plain value, got {type(saved).__name__}"
    return None


def optimizer_state_problem(optimizer: torch.optim.Optimizer, saved: Any) -> Optional[str]:
    """Why ``saved`` is not a state dict ``optimizer.load_state_dict`` can take as it is, or ``None``.

    Checked: the layout, the parameter groups (sizes, ids, and every hyper-parameter of the kind the
    live optimizer has: finite learning rates ...), and every per-parameter state (tensors of the
    parameter's shape, finite; scalar steps; no nested containers).
    """
    if not isinstance(saved, Mapping) or not isinstance(saved.get("state"), Mapping) \
            or not isinstance(saved.get("param_groups"), list):
        return "'optimizer' is not an optimizer state dict"
    groups = saved["param_groups"]
    sizes = [len(g["params"]) for g in optimizer.param_groups]
    saved_sizes = [len(g["params"]) if isinstance(g, Mapping) and isinstance(g.get("params"), (list, tuple))
                   else -1 for g in groups]
    if sizes != saved_sizes:
        return (f"the optimizer's parameter groups hold {sizes} parameters, the checkpoint's {saved_sizes} "
                "(another model or optimizer)")
    params, ids = [], []
    for k, (group, saved_group) in enumerate(zip(optimizer.param_groups, groups)):
        params += list(group["params"])
        ids += list(saved_group["params"])
        for key, value in saved_group.items():
            if key != "params":
                problem = same_kind(f"optimizer param_groups[{k}].{key}", group.get(key), value)
                if problem:
                    return problem
    if any(not isinstance(i, int) or isinstance(i, bool) for i in ids) or len(set(ids)) != len(ids):
        return "optimizer param_groups: the parameter ids are not distinct ints"
    index = {i: n for n, i in enumerate(ids)}
    for pid, entry in saved["state"].items():
        if pid not in index or not isinstance(entry, Mapping):
            return f"optimizer state: an entry {short_repr(pid)} for no parameter of the optimizer"
        param = params[index[pid]]
        for name, value in entry.items():
            where = f"optimizer state[{short_repr(pid)}].{_key_text(name)}"
            if isinstance(value, torch.Tensor):
                if value.dim() > 0 and tuple(value.shape) != tuple(param.shape):
                    return f"{where}: shape {tuple(value.shape)}, the parameter's is {tuple(param.shape)}"
                if (value.is_floating_point() or value.is_complex()) and not bool(torch.isfinite(value).all()):
                    return f"{where}: holds values that are not finite"
            elif value is not None and not isinstance(value, (bool, str)) and _number_problem(where, value, False):
                return _number_problem(where, value, False)
    return None


def scheduler_state_problem(scheduler: Any, saved: Any) -> Optional[str]:
    """Why ``saved`` cannot be given to ``scheduler.load_state_dict`` (which copies every entry into
    the scheduler's attributes), or ``None``: entries of the live state keep their kind, others must
    be plain scalars, and ``optimizer`` (the scheduler's own optimizer) may not be replaced."""
    if not isinstance(saved, Mapping):
        return f"'scheduler' should be a dict, got {type(saved).__name__}"
    current = scheduler.state_dict()
    for key, value in saved.items():
        if not isinstance(key, str) or key == "optimizer" or key.startswith("__"):
            return f"scheduler: an entry {short_repr(key)} that no scheduler state has"
        problem = same_kind(f"scheduler {key}", current.get(key), value)
        if problem:
            return problem
    return None
