"""Map configurations shared by the selection benchmarks (select_preset.py, grid_game.py): one copy of
how a candidate's final map is made from one capture of every layer's activation and gradient."""
import itertools
from typing import List, Sequence

import torch

from captum_3dcam.attr.rules import aggregate, gate_fusion, layer_map

RULES = ("3dcam", "gradcam", "gradcam++", "xgradcam", "layercam")
NORMS = ("max", "minmax", False)
AGGREGATIONS = ("sum",)  # "mean" boxes and points exactly as "sum"; "max" lost everywhere in a first run
SUBSETS = ("all", "deep")  # "last" lost everywhere in a first run
GATES = (None, "gradcam@1", "gradcam@2")  # global-local gating: the last 1 or 2 layers' GradCAM (all layers only)


def map_configs(rules=RULES, norms=NORMS, aggs=AGGREGATIONS, subsets=SUBSETS, gates=GATES) -> List[tuple]:
    """Map configurations ``(rule, norm, aggregation, layers, gate)``; a gate only over all layers."""
    return [(r, n, a, s, g) for r, n, a, s, g in itertools.product(rules, norms, aggs, subsets, gates)
            if g is None or s == "all"]


def config_label(cfg) -> str:
    rule, norm, agg, sub, gate = cfg
    return f"{rule} / {norm or 'none'} / {agg} / {sub}{' x gate ' + gate if gate else ''}"


def config_kwargs(cfg) -> dict:
    """``GlobalLocal3DCam.attribute`` keyword arguments of a configuration (for layers ``"all"``)."""
    rule, norm, agg, sub, gate = cfg
    kw = {"layer_rule": rule, "aggregation": agg, "normalize_layers": norm}
    if gate:
        g_rule, g_layers = gate.split("@")
        kw.update(gate=g_rule, gate_layers=int(g_layers))
    return kw


def subset(names: Sequence[str], which: str) -> List[int]:
    k = len(names)
    return {"all": list(range(k)), "deep": list(range(k // 2, k)), "last": [k - 1]}[which]


def config_map(maps_of, cfg, num_layers: int) -> torch.Tensor:
    """The final map of configuration ``cfg`` from ``maps_of(rule, norm) -> [map_k]`` (what
    ``GlobalLocal3DCam.attribute(**config_kwargs(cfg))`` returns over the selected layers)."""
    rule, norm, agg, sub, gate = cfg
    names = [str(i) for i in range(num_layers)]
    final = aggregate([maps_of(rule, norm)[i] for i in subset(names, sub)], agg)
    if gate:
        g_rule, g_layers = gate.split("@")
        final = gate_fusion(final, aggregate(maps_of(g_rule, "minmax")[num_layers - int(g_layers):], "sum"))
    return final


def cached_maps(acts, grads, size):
    """``maps_of(rule, norm)``: every layer's map by that rule at ``size``, computed once."""
    memo = {}

    def maps_of(rule, norm):
        if (rule, norm) not in memo:
            memo[(rule, norm)] = [layer_map(a, g, size, rule, False, norm) for a, g in zip(acts, grads)]
        return memo[(rule, norm)]
    return maps_of
