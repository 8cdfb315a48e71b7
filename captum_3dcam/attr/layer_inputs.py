r"""Which input of a multi-input model each layer belongs to, read from the forward pass's autograd graph.

Lives here: :func:`depends_on` (the inputs an activation was computed from) and
:func:`layer_inputs` (one input per layer). Does not live here: the attribution pass that records
the graph (:mod:`captum_3dcam.attr.attribution`), the maps (:mod:`captum_3dcam.attr.rules`).

A layer belongs to the input its activation :math:`A_k` ``(N, C_k, T_k, H_k, W_k)`` was computed
from: the walk goes from :math:`A_k`'s ``grad_fn`` down ``next_functions`` to the inputs' leaves
(each node visited once for all layers, iteratively: no recursion limit on deep graphs). No name
is read and nothing is run again. A layer computed from several inputs (SlowFast's slow pathway
after a lateral connection from the fast one) goes to the one whose space-time grid
``(T_i, H_i, W_i)`` is the closest to its own,

.. math::
    i^* = \arg\min_i \sum_{d \in \{T, H, W\}} \left|\log \frac{S_{i,d}}{S_{k,d}}\right|

(ties to the first input), the same rule for a layer computed from none of them (it reads only
buffers or parameters). Written here because PyTorch has no public "which leaves does this tensor
depend on" query; the walk touches only the graph objects, no tensor data.
"""
import math
from typing import Dict, List, Sequence, Set, Tuple

from torch import Tensor

__all__ = ["depends_on", "layer_inputs"]


def depends_on(tensors: Sequence[Tensor], inputs: Sequence[Tensor]) -> List[Set[int]]:
    """For each tensor, the indices of the ``inputs`` (leaves that require grad) it was computed from."""
    index = {id(x): i for i, x in enumerate(inputs)}
    memo: Dict[object, frozenset] = {}

    def leaf(node) -> frozenset:
        variable = getattr(node, "variable", None)
        return frozenset((index[id(variable)],)) if variable is not None and id(variable) in index else frozenset()

    result = []
    for t in tensors:
        root = t.grad_fn
        if root is None:  # a leaf: an input itself, or a tensor made without autograd
            result.append({index[id(t)]} if id(t) in index else set())
            continue
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if node in memo:
                continue
            children = [n for n, _ in getattr(node, "next_functions", ()) if n is not None]
            if expanded or not children:
                found = leaf(node)
                for child in children:
                    found = found | memo[child]
                memo[node] = found
            else:
                stack.append((node, True))
                stack.extend((c, False) for c in children if c not in memo)
        result.append(set(memo[root]))
    return result


def _distance(layer_grid: Sequence[int], input_grid: Sequence[int]) -> float:
    return sum(abs(math.log(max(int(s), 1) / max(int(k), 1))) for s, k in zip(input_grid, layer_grid))


def layer_inputs(activations: Sequence[Tensor], inputs: Sequence[Tensor]) -> Tuple[int, ...]:
    """One input index per activation ``(N, C_k, T_k, H_k, W_k)``: the input it was computed from,
    among several (or none) the one whose grid ``(T_i, H_i, W_i)`` is the closest."""
    if len(inputs) == 1:
        return (0,) * len(activations)
    owners = []
    for a, found in zip(activations, depends_on(activations, inputs)):
        candidates = sorted(found) if found else range(len(inputs))
        grid = a.shape[2:]
        owners.append(min(candidates, key=lambda i: (_distance(grid, inputs[i].shape[2:]), i)))
    return tuple(owners)
