"""The protocol decision and the markdown report of ``benchmarks/faithfulness.py``.

``random_is_last`` / ``decide``: which deletion / insertion protocol can rank attributions (a random
order must come last); ``render``: the RESULTS.md block, its title from the block's name
(``block_title``), with the per-clip tables, the summary over clips and the computed verdict.
"""
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from benchmarks._faithfulness_methods import METHODS

__all__ = ["random_is_last", "decide", "block_title", "render", "label"]

#: The main block's name and what every faithfulness block measures (the rest of its title).
MAIN_BLOCK = "faithfulness"
WHAT = "deletion / insertion AUC and average drop with I3D (no ground truth needed)"


def block_title(block: str) -> str:
    """The block's heading: the main block's plain title, any other block's names the block."""
    return f"## Faithfulness: {WHAT}" if block == MAIN_BLOCK else f"## Faithfulness, block `{block}`: {WHAT}"


def _subheading(block: str, number: int, text: str) -> str:
    """A part of the block: numbered in the main block, named after the block in any other (no heading twice)."""
    return f"### {number}. {text}" if block == MAIN_BLOCK else f"### {text} (block `{block}`)"


def random_is_last(results: Dict[str, Dict]) -> Tuple[bool, bool, float, float]:
    """(random worst on deletion, on insertion, deletion margin, insertion margin) over the attribution orders."""
    r = results["random"]
    others = [v for k, v in results.items() if k != "random"]
    d_margin = r["deletion"] - max(v["deletion"] for v in others)
    i_margin = min(v["insertion"] for v in others) - r["insertion"]
    return d_margin > 0, i_margin > 0, d_margin, i_margin


def decide(table: Dict[str, Dict[str, Dict[str, Dict]]], protocols: List[str], decision: List[str]) -> Tuple[Optional[str], List[str]]:
    """The chosen protocol and the reasoning, from ``table[protocol][clip][method]``."""
    lines, scores = [], {}
    for p in protocols:
        checks = [random_is_last(table[p][c]) for c in decision]
        passed = all(d and i for d, i, _, _ in checks)
        worst = min(min(dm, im) for _, _, dm, im in checks)
        scores[p] = (passed, worst)
        lines.append(f"`{p}`: random last on {sum(d and i for d, i, _, _ in checks)}/{len(checks)} decision clips "
                     f"(both curves); worst-case margin {worst:+.3f}")
    passing = [p for p in protocols if scores[p][0]]
    if not passing:
        return None, lines + ["No protocol puts random last on every decision clip: no ranking below is trustworthy."]
    chosen = max(passing, key=lambda p: scores[p][1])
    return chosen, lines


def _fmt(v: Optional[float], digits: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _bold_best(values: Dict[str, Optional[float]], lower: bool, digits: int = 3) -> Dict[str, str]:
    vals = {k: v for k, v in values.items() if v is not None and not math.isnan(v)}
    best = (min if lower else max)(vals.values()) if len(set(vals.values())) > 1 else None  # no winner in a tie of all
    return {k: (f"**{_fmt(v, digits)}**" if v is not None and v == best else _fmt(v, digits)) for k, v in values.items()}


def label(method: str, seed: int) -> str:
    return METHODS[method][0].replace("{seed}", str(seed))


def protocol_table(table, protocols, clips, methods, decision, confirm, seed) -> List[str]:
    head = ["protocol", "clip (role)"] + [f"deletion: {m}" for m in methods] + ["random last?"] + \
        [f"insertion: {m}" for m in methods] + ["random last?"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in protocols:
        for c in clips:
            if c not in table[p]:
                continue
            res = table[p][c]
            d_ok, i_ok, _, _ = random_is_last(res)
            role = "decide" if c in decision else "confirm" if c in confirm else "other"
            dele = _bold_best({m: res[m]["deletion"] for m in methods}, lower=True)
            ins = _bold_best({m: res[m]["insertion"] for m in methods}, lower=False)
            lines.append("| " + " | ".join([f"`{p}`", f"{c} ({role})"] + [dele[m] for m in methods] + ["yes" if d_ok else "**no**"]
                                           + [ins[m] for m in methods] + ["yes" if i_ok else "**no**"]) + " |")
    return lines


def method_table(rows: Dict[str, Dict], seed: int) -> List[str]:
    cols = [("deletion", True, "deletion AUC ↓"), ("insertion", False, "insertion AUC ↑"), ("AD", True, "average drop % ↓"),
            ("IC", False, "increase in confidence % ↑")]
    cells = {key: _bold_best({m: r.get(key) for m, r in rows.items()}, lower, 1 if key in ("AD", "IC") else 3)
             for key, lower, _ in cols}
    lines = ["| method | " + " | ".join(c[2] for c in cols) + " |", "|---|" + "---|" * len(cols)]
    for m, r in rows.items():
        lines.append(f"| {label(m, seed)} | " + " | ".join(cells[key][m] for key, _, _ in cols) + " |")
    return lines



def render(report, args, command, total, cache, methods, skipped, chosen, reasoning) -> str:
    seconds = sum(cache.data[k].get("seconds", 0) for k in cache.used if k.startswith("curves|"))
    out = [
        block_title(args.block),
        "",
        f"Command: `{command}` (torch {torch.__version__}, {torch.get_num_threads()} thread, a 2-core CPU shared with other "
        f"jobs) — {total / 60:.1f} min wall-clock for this invocation: {len(cache.hits)} of its curves / scores came from the "
        f"cache of earlier runs with the same settings (`runs/{Path(args.cache).name}`); computing its curves took "
        f"{seconds / 60:.0f} min in all (sum of the timed curve computations; the average-drop scores are not timed).",
        "",
        "Clips (I3D Kinetics-400, " f"{args.frames} frames, 224x224; target = the predicted class): " + "; ".join(
            f"{c} (frames {i['start']}..{i['start'] + i['frames'] - 1} of {i['video_frames']}: *{i['predicted']}* {i['probability']})"
            for c, i in report["clips"].items()) + ".",
        "",
        f"Curves (`captum_3dcam.metrics.faithfulness.deletion_insertion_curves`): the map is averaged over cubes of TxHxW voxels, "
        f"the cubes are removed (deletion) or revealed (insertion) highest first in {args.steps} equal steps, and the softmax "
        "probability of the target is recorded; AUC by the trapezoid rule over the fraction of cubes, divided by the "
        "probability on the whole clip (relative AUC). Replacement: `zero`; `mean` (the clip's per-channel mean); `blur` "
        "(Gaussian, sigma (t, h, w) = (1, 5, 5)); `road` (ROAD's noisy linear imputation of every removed voxel from its 26 "
        "space-time neighbours, noise 0.01 x channel std, the same noise for every method). "
        f"The random order is `random_attribution(clip, seed={args.seed})` (independent voxels, so scattered cubes).",
        "",
    ]
    if report["protocol_table"]:
        pm = [m for m in args.protocol_methods if m not in skipped]
        out += [_subheading(args.block, 1, "Protocol validation: under which protocol does a random order come last?"), "",
                "Orders: " + ", ".join(f"`{m}` = {label(m, args.seed)}" for m in pm) + ". Bold: the best order in the row "
                "(lowest deletion AUC, highest insertion AUC); a usable protocol has random worst in both.", ""]
        out += protocol_table(report["protocol_table"], list(report["protocol_table"]), args.clips, pm, args.decide, args.confirm, args.seed)
        out += ["", f"Decision (on {', '.join(args.decide)}; rule: random last for both curves on every decision clip, then "
                "the largest worst-case margin = min over clips and curves of random's AUC minus the nearest attribution's, "
                "in the bad direction for random):", ""]
        out += [f"- {line}" for line in reasoning]
        dec = report.get("decision", {})
        if chosen:
            conf = "; ".join(f"{c}: random last on deletion {'yes' if d else 'NO'}, insertion {'yes' if i else 'NO'}"
                             for c, (d, i) in dec.get("confirmation", {}).items())
            out += [f"- **chosen: `{chosen}`**" + (f" (given by --protocol; the rule picked `{dec.get('decided')}`)"
                                                   if dec.get("decided") != chosen else "") + f". Held-out check — {conf}.", ""]
    if report["methods"]:
        out += [_subheading(args.block, 2, f"Faithfulness per method, protocol `{chosen}`"), "",
                "Ours: `GlobalLocal3DCam(model, default_layers(model)).attribute(x, target, **kwargs)` over the 9 Mixed layers; "
                "peers over the same 9 layers. AD / IC: GradCAM++ paper, `E` = the map min-max normalized, "
                "O = probability on `E * clip`, AD = 100 max(0, Y - O) / Y, IC = 100 [O > Y] (one clip each, so IC is 0 or 100). "
                "Bold: the best value of the column (none when all are equal). The random rows use "
                f"`random_attribution(clip, seed=k)`, k = {', '.join(str(k) for k in [args.seed] + [k for k in args.random_seeds if k != args.seed])}.", ""]
        for c, rows in report["methods"].items():
            ok = {m: r for m, r in rows.items() if "error" not in r}
            out += [f"**{c}** (*{report['clips'][c]['predicted']}*)", ""] + method_table(ok, args.seed) + [""]
            bad = {m: r["error"] for m, r in rows.items() if "error" in r}
            out += [f"- `{m}` failed: {e}" for m, e in bad.items()] + ([""] if bad else [])
        out += summary(report["methods"], args.seed)
        out += verdict(report["methods"], [m for m in args.protocol_methods if m != "random"])
    if skipped:
        out += ["Skipped: " + "; ".join(f"`{m}` ({r})" for m, r in skipped.items()) + ".", ""]
    return "\n".join(out)


def verdict(per_clip: Dict[str, Dict[str, Dict]], reference: Sequence[str]) -> List[str]:
    """Computed lines: the random rows' spread, is random last, does the best of ours beat the best peer?"""
    lines = ["**Verdict** (computed from the tables above)", ""]
    for c, rows in per_clip.items():
        ok = {m: r for m, r in rows.items() if "error" not in r}
        randoms = [m for m in ok if METHODS[m][1] == "random"]
        refs = [m for m in reference if m in ok]
        if len(randoms) < 2 or not refs:
            continue
        d = [ok[m]["deletion"] for m in randoms]
        i = [ok[m]["insertion"] for m in randoms]
        last = all(ok[r]["deletion"] > ok[m]["deletion"] and ok[r]["insertion"] < ok[m]["insertion"] for r in randoms for m in refs)
        lines.append(f"- *{c}*, the control itself: {len(randoms)} random orders span deletion {min(d):.3f}-{max(d):.3f}, "
                     f"insertion {min(i):.3f}-{max(i):.3f} (differences between methods smaller than this spread are within "
                     f"the protocol's noise on one clip); every seed is worse than the protocol orders ({', '.join(refs)}) "
                     f"on both curves: {'yes' if last else 'NO'}")
    for c, rows in per_clip.items():
        ok = {m: r for m, r in rows.items() if "error" not in r}
        if "random" not in ok or len(ok) < 2:
            continue
        randoms = [m for m in ok if METHODS[m][1] == "random"]
        others = [m for m in ok if m not in randoms]
        d_beaten = [m for m in others if any(ok[r]["deletion"] <= ok[m]["deletion"] for r in randoms)]
        i_beaten = [m for m in others if any(ok[r]["insertion"] >= ok[m]["insertion"] for r in randoms)]
        parts = [f"every random order ({len(randoms)} seeds) worse than all {len(others)} methods on deletion: "
                 + ("yes" if not d_beaten else f"NO (not worse than {', '.join(f'`{m}`' for m in d_beaten)})")
                 + "; on insertion: " + ("yes" if not i_beaten else f"NO (not worse than {', '.join(f'`{m}`' for m in i_beaten)})")]
        ours = [m for m in others if METHODS[m][1] == "ours"]
        peers = [m for m in others if METHODS[m][1] in ("pgc", "torchcam", "captum")]
        for key, lower in (("deletion", True), ("insertion", False)):
            if not ours or not peers:
                continue
            pick = min if lower else max
            o = pick(ours, key=lambda m: ok[m][key])
            q = pick(peers, key=lambda m: ok[m][key])
            beats = ok[o][key] < ok[q][key] if lower else ok[o][key] > ok[q][key]
            parts.append(f"{key}: best of ours `{o}` {ok[o][key]:.3f} {'beats' if beats else 'does NOT beat'} the best peer "
                         f"`{q}` {ok[q][key]:.3f}")
        lines.append(f"- *{c}*: " + "; ".join(parts))
    return lines + [""]


def summary(per_clip: Dict[str, Dict[str, Dict]], seed: int) -> List[str]:
    """Mean over clips and the mean rank (1 = best) of each method on deletion and insertion."""
    clips = list(per_clip)
    methods = [m for m in per_clip[clips[0]] if all("error" not in per_clip[c].get(m, {"error": 1}) for c in clips)]
    ranks = {m: [] for m in methods}
    for c in clips:
        for key, lower in (("deletion", True), ("insertion", False)):
            ordered = sorted(methods, key=lambda m: per_clip[c][m][key] if lower else -per_clip[c][m][key])
            for i, m in enumerate(ordered, 1):
                ranks[m].append(i)
    rows = {m: {"deletion": sum(per_clip[c][m]["deletion"] for c in clips) / len(clips),
                "insertion": sum(per_clip[c][m]["insertion"] for c in clips) / len(clips),
                "rank": sum(ranks[m]) / len(ranks[m])} for m in methods}
    cells = {k: _bold_best({m: r[k] for m, r in rows.items()}, lower=k != "insertion", digits=2 if k == "rank" else 3)
             for k in ("deletion", "insertion", "rank")}
    lines = [f"**Summary over {len(clips)} clips** (mean relative AUC; mean rank over clips x both curves, 1 = best)", "",
             "| method | deletion AUC ↓ | insertion AUC ↑ | mean rank ↓ |", "|---|---|---|---|"]
    for m in sorted(methods, key=lambda m: rows[m]["rank"]):
        lines.append(f"| {label(m, seed)} | {cells['deletion'][m]} | {cells['insertion'][m]} | {cells['rank'][m]} |")
    return lines + [""]
