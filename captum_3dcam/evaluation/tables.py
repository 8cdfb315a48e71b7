"""Markdown tables of localization results: the paper's Tables 3-5, the sweep, the verdicts.

Lives here: :func:`markdown_table` (rows of metrics, :data:`LOCALIZATION_COLUMNS`), :func:`render`
(Tables 3-5 over several runs, mean ± std, the box-configuration sweep and computed verdicts) and
:func:`sanity_table` (cascading randomization rows). Does not live here: computing the metrics
(:mod:`captum_3dcam.evaluation.engine`) and writing them into a results file (the benchmarks).
"""
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from torch import Tensor, nn

from .methods import METHODS, get_method

__all__ = ["fmt", "markdown_table", "LOCALIZATION_COLUMNS", "render", "sanity_table"]

#: ``(key, title)`` of the localization metrics, as the demo and ``captum-3dcam evaluate`` show them.
LOCALIZATION_COLUMNS = (
    ("method", "method"), ("layers", "layers"), ("pointing", "pointing game"), ("mean_iou", "mean IoU"),
    ("iou@0", "IoU>0"), ("iou@0.5", "IoU>=0.5"), ("iou@0.6", "IoU>=0.6"), ("acc2@0.5", "Acc2 IoU>=0.5"),
)


def _finite(values: Sequence[Optional[float]]) -> List[float]:
    return [float(v) for v in values if v is not None and not math.isnan(float(v))]


def _mean(values) -> float:
    vals = _finite(values)
    return sum(vals) / len(vals) if vals else float("nan")


def fmt(values: Union[float, Sequence[float]], digits: int = 3) -> str:
    """A number (``0.812``), or the mean ± sample std of several (``0.812 ± 0.031``); NaN: ``n/a``."""
    vals = _finite([values] if isinstance(values, (int, float)) else values)
    if not vals:
        return "n/a"
    mean = sum(vals) / len(vals)
    if len(vals) == 1:
        return f"{mean:.{digits}f}"
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown_table(rows: List[Dict[str, Any]], columns: Sequence[Tuple[str, str]] = LOCALIZATION_COLUMNS) -> str:
    """One row per dict; text cells as they are, numbers through :func:`fmt`."""
    head = "| " + " | ".join(title for _, title in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(r[key] if isinstance(r[key], str) else fmt(float(r[key])) for key, _ in columns) + " |"
            for r in rows]
    return "\n".join([head, rule, *body])


def _failed(entry: Optional[Dict]) -> bool:
    return entry is None or "error" in entry or "skipped" in entry


def _label(method: str) -> str:
    try:
        return get_method(method, [method.split(":", 1)[-1]]).label
    except ValueError:
        return method


def _cell(runs: List[Dict], method: str, key: str, config: Optional[str] = None) -> str:
    vals = []
    for r in runs:
        m = r.get(method)
        if m is None:
            continue
        if "error" in m or "skipped" in m:
            return "error" if "error" in m else "skipped"
        vals.append((m["sweep"][config] if config else m).get(key, float("nan")))
    return fmt(vals)


def _table(columns: Dict[str, List[Dict]], methods: List[str], keys: List[Tuple[str, str]], title: str) -> List[str]:
    head = ["Method"] + [f"{col}: {name}" for col in columns for _, name in keys]
    lines = [f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in methods:
        row = [_label(m)]
        for runs in columns.values():
            row += [_cell(runs, m, k) for k, _ in keys]
        lines.append("| " + " | ".join(row) + " |")
    return lines + [""]


def _is_peer(method: str) -> bool:
    return method in METHODS and METHODS[method].is_peer


def _best(runs: List[Dict], methods: List[str], key: str, peers: bool):
    """(method, config, value) with the highest mean of ``key`` over runs, among ours or the peers."""
    best = None
    for m in methods:
        if _is_peer(m) != peers or m in ("counterfactual_sum", "random"):
            continue
        if any(_failed(r.get(m)) for r in runs):
            continue
        for config in runs[0][m].get("sweep", {}):
            v = _mean([r[m]["sweep"][config][key] for r in runs])
            if best is None or v > best[2]:
                best = (m, config, v)
    return best


def _verdict(name: str, runs: List[Dict], methods: List[str], main_config: str) -> List[str]:
    lines = [f"*{name}*:"]
    keys = ("pointing", "iou@0.5", "mean_iou")
    d = {k: _mean([r["3dcam_sum"][k] for r in runs]) for k in keys}
    g = {k: _mean([r["gradcam_last"][k] for r in runs]) for k in keys}
    for k in keys:
        verdict = "beats" if d[k] > g[k] else ("ties" if d[k] == g[k] else "does NOT beat")
        lines.append(f"- default 3DCam ({main_config}) {verdict} last-layer GradCAM on {k}: {d[k]:.3f} vs "
                     f"{g[k]:.3f} ({d[k] - g[k]:+.3f})")
    for key in ("iou@0.5", "mean_iou"):
        ours, peer = _best(runs, methods, key, peers=False), _best(runs, methods, key, peers=True)
        if ours is None:
            continue
        line = f"- best of ours on {key} over the sweep: `{ours[0]}` at {ours[1]}: {ours[2]:.3f}"
        if peer is not None:
            verdict = "beats" if ours[2] > peer[2] else ("ties" if ours[2] == peer[2] else "does NOT beat")
            line += f"; {verdict} the best peer `{peer[0]}` at {peer[1]}: {peer[2]:.3f} ({ours[2] - peer[2]:+.3f})"
        lines.append(line)
    point = {m: _mean([r[m]["pointing"] for r in runs]) for m in methods if not any(_failed(r.get(m)) for r in runs)}
    top = max(point, key=point.get)
    lines.append(f"- best pointing game: `{top}` {point[top]:.3f}")
    return lines + [""]


def _sweep_table(columns: Dict[str, List[Dict]], methods: List[str], key: str) -> List[str]:
    configs = list(next(iter(next(iter(columns.values())))).get("3dcam_sum", {}).get("sweep", {}).keys())
    if not configs:
        return []
    lines = [f"**Box configuration sweep ({key}; threshold/region)**", ""]
    head = ["Data", "Method"] + configs
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for col, runs in columns.items():
        for m in methods:
            if any(_failed(r.get(m)) for r in runs):
                continue
            lines.append("| " + " | ".join([col, _label(m)] + [_cell(runs, m, key, c) for c in configs]) + " |")
    return lines + [""]


def render(columns: Dict[str, List[Dict]], methods: List[str], main_config: str) -> str:
    """Markdown of Tables 3-5, the sweep and the verdicts.

    Args:
        columns: ``{data set title: [results of evaluate_methods, one per run (seed)]}``.
        methods: the rows, in order.
        main_config: the main box configuration's name (e.g. ``"0.5/largest"``), for the text.
    """
    out = []
    out += _table(columns, methods, [("pointing", "hit point")], "Table 3 — pointing game (hit point), fraction of GT frames")
    out += _table(columns, methods, [("iou@0", "IoU>0"), ("iou@0.5", "IoU≥0.5"), ("iou@0.6", "IoU≥0.6"),
                                     ("mean_iou", "mean IoU")], f"Table 4 — IoU accuracy (boxes: {main_config})")
    out += _table(columns, methods, [("acc2_pointing", "Acc2 hit"), ("acc2@0", "Acc2 IoU>0"), ("acc2@0.5", "Acc2 ≥0.5"),
                                     ("acc2@0.6", "Acc2 ≥0.6")],
                  "Table 5 — Acc2 (a frame counts only when the clip is classified correctly)")
    key_methods = [m for m in methods if not m.startswith("3dcam_layer:")]
    out += _sweep_table(columns, key_methods, "iou@0.5")
    out += _sweep_table(columns, key_methods, "mean_iou")
    out += ["**Verdict** (computed from the numbers above)", ""]
    for col, runs in columns.items():
        if all(not _failed(r.get("3dcam_sum")) and not _failed(r.get("gradcam_last")) for r in runs):
            out += _verdict(col, runs, methods, main_config)
    errors = sorted({f"`{m}`: {r[m].get('error') or r[m].get('skipped')}" for runs in columns.values() for r in runs
                     for m in r if _failed(r[m])})
    if errors:
        out += ["Methods that failed or were skipped:", ""] + [f"- {e}" for e in errors] + [""]
    return "\n".join(out)


def _sanity_configs() -> Dict[str, Dict[str, Any]]:
    """``{row label: attribute keywords}``: the paper's default, every rule, every preset."""
    from ..attr.rules import LAYER_RULES
    from ..attr.presets import PRESETS

    configs: Dict[str, Dict[str, Any]] = {"3DCam sum (default)": {}}
    configs.update({f"rule {r}, sum": {"layer_rule": r} for r in LAYER_RULES if r != "3dcam"})
    configs.update({f"preset `{k}` {dict(v['attribute'])}": dict(v["attribute"]) for k, v in PRESETS.items()
                    if k != "paper"})
    return configs


def sanity_table(model: nn.Module, layers: Sequence[nn.Module], clips: Tensor, seed: int = 0,
                 configs: Optional[Dict[str, Dict[str, Any]]] = None) -> List[str]:
    """Cascading randomization (Adebayo et al. 2018) of 3DCam configurations and last-layer GradCAM,
    as markdown rows (cells: mean Spearman / mean SSIM with the trained model's maps).

    Args:
        configs: ``{row label: keyword arguments of attribute}``; default: the paper's 3DCam, every
            other rule, and every preset but ``paper`` (:mod:`captum_3dcam.attr.presets`).

    Shape:
        - clips: :math:`(N, C, T, H, W)`
    """
    from captum.attr import LayerGradCam

    from .._utils import resolve_layers
    from ..attr.attribution import GlobalLocal3DCam
    from ..metrics.sanity import cascading_randomization
    from ..attr.upsample import upsample_to

    names = resolve_layers(model, list(layers))[0]

    def ours(kwargs):
        def explain(m, x, t):
            return GlobalLocal3DCam(m, resolve_layers(m, names)[1]).attribute(x, target=t, **kwargs)

        return explain

    def gradcam(m, x, t):
        layer = m.get_submodule(names[-1])
        return upsample_to(LayerGradCam(m, layer).attribute(x, target=t, relu_attributions=True).detach(),
                           tuple(x.shape[2:]))

    explainers = {label: ours(kw) for label, kw in (configs if configs is not None else _sanity_configs()).items()}
    explainers["LayerGradCam last layer"] = gradcam
    rows = {label: cascading_randomization(model, fn, clips, seed=seed) for label, fn in explainers.items()}
    steps = [s.layer for s in next(iter(rows.values()))]
    lines = ["| Method | " + " | ".join(f"+`{s}`" if i else s for i, s in enumerate(steps)) + " |",
             "|" + "---|" * (len(steps) + 1)]
    for label, result in rows.items():
        cells = [f"{float(s.spearman.mean()):.2f} / {float(s.ssim.mean()):.2f}" for s in result]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines
