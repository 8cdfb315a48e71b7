"""Selection v2's written rule (used by select_preset.py): every criterion on validation data, floors, rank sums.

Criteria of a map configuration (rule / normalization / aggregation / layers / gate):

- I3D on real validation clips (``grid_game.py``): spatial grid share and pointing, temporal grid
  share and pointing (the temporal values with ``temporal_margin`` when the margin wins, below);
- synthetic validation split (small networks, two architectures): the best box setting's score
  ``(IoU>=0.5 + pointing) / 2``, and the sanity Spearman after every layer is re-initialized (lower wins);
- stage 2, for the shortlist only (each costs minutes of I3D on the CPU): ROAD deletion (lower) and
  insertion (higher) relative AUC on the three real validation clips (``faithfulness.py``), and
  the sanity Spearman of I3D itself on them (lower).

Floors (no criterion may sit near chance): grid share and pointing >= 2 x chance (0.5) in both grid
modes; synthetic pointing >= 2 x chance (chance: a uniform map's pointing, the mean share of the frame
that the ground-truth box covers, measured per variant by :func:`synthetic_chance`) and synthetic
IoU>=0.5 >= 0.05 (a uniform map's is 0). A first version of this rule used the pytorch-grad-cam-style
multi-layer GradCAM++'s synthetic pointing and IoU>=0.5 as floors: no configuration passed every floor
(every class-sensitive one points 0.1 less often on the small synthetic networks, where the deepest
layer's GradCAM is coarse), so that comparison is reported beside the choice. Stage 1: the configurations
above every floor, ranked by the sum of their ranks over the six stage-1 criteria; the best
``shortlist`` go on. Stage 2: the sum of the nine ranks within the shortlist; the lowest wins (ties:
the fewest settings changed from the paper's). Its box setting: its best on the synthetic split.
The temporal margin: used when it raises both the mean temporal share and the mean temporal
pointing over all configurations.
"""
from typing import Dict, List, Optional, Sequence, Tuple

from _configs import config_label

PAPER_CFG = ("3dcam", "max", "sum", "all", None)
PGC_GRADCAMPP = ("gradcam++", "minmax", "sum", "all", None, 0.5, "largest", "max")
STAGE1 = ("spatial share", "spatial pointing", "temporal share", "temporal pointing", "synthetic score",
          "synthetic sanity")
STAGE2 = ("ROAD deletion", "ROAD insertion", "I3D sanity")
LOWER_IS_BETTER = {"synthetic sanity", "ROAD deletion", "I3D sanity"}


def ranks(values: Dict[tuple, float], lower: bool) -> Dict[tuple, float]:
    """Average ranks (1 = best; ties share the mean rank)."""
    order = sorted(values, key=lambda k: values[k] if lower else -values[k])
    out, i = {}, 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in order[i:j + 1]:
            out[k] = (i + j) / 2 + 1
        i = j + 1
    return out


def margin_wins(grid: Dict, margin: int) -> bool:
    temporal = grid["results"].get("temporal", {})
    pairs = [(v, temporal.get(f"{k} | margin {margin}")) for k, v in temporal.items() if " | margin" not in k]
    pairs = [(a, b) for a, b in pairs if b is not None]
    if not pairs:
        return False
    mean = lambda rows, key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
    return all(mean([b for _, b in pairs], m) > mean([a for a, _ in pairs], m) for m in ("share", "pointing"))


def criteria(mean_synth: Dict[tuple, Dict], spearman: Dict[tuple, float], grid: Dict, margin: int) -> Dict[tuple, Dict]:
    """``{map configuration: {criterion: value, "boxes": best synthetic key}}`` for every configuration measured both ways."""
    suffix = f" | margin {margin}" if margin else ""
    rows = {}
    for cfg in spearman:
        label = config_label(cfg)
        spatial = grid["results"].get("spatial", {}).get(label)
        temporal = grid["results"].get("temporal", {}).get(label + suffix)
        keys = [k for k in mean_synth if k[:5] == cfg]
        if spatial is None or temporal is None or not keys:
            continue
        best = max(keys, key=lambda k: 0.5 * (mean_synth[k]["iou@0.5"] + mean_synth[k]["pointing"]))
        rows[cfg] = {"spatial share": spatial["share"], "spatial pointing": spatial["pointing"],
                     "temporal share": temporal["share"], "temporal pointing": temporal["pointing"],
                     "synthetic score": 0.5 * (mean_synth[best]["iou@0.5"] + mean_synth[best]["pointing"]),
                     "synthetic pointing": mean_synth[best]["pointing"], "synthetic iou@0.5": mean_synth[best]["iou@0.5"],
                     "synthetic sanity": spearman[cfg], "boxes": best}
    return rows


SYNTHETIC_FLOORS = {"pointing": 0.17, "iou@0.5": 0.05}  # pointing: set to 2 x synthetic_chance() by select_preset


def synthetic_chance(variants: Dict[str, Dict], num_videos: int = 30) -> float:
    """A uniform map's pointing on the synthetic validation split: the mean fraction of the frame covered by
    the ground-truth box, over the frames that have one, averaged over the variants."""
    import torch

    from captum_3dcam.datasets import SyntheticActions

    per = []
    for knobs in variants.values():
        data = SyntheticActions(num_videos, "val", seed=0, **knobs)
        fractions = []
        for i in range(len(data)):
            clip, boxes, _ = data[i]
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / float(clip.shape[-1] * clip.shape[-2])
            fractions.append(area[torch.isfinite(area)])
        per.append(float(torch.cat(fractions).mean()))
    return sum(per) / len(per)


def floors_failed(row: Dict, peer: Dict) -> List[str]:
    failed = [c for c in ("spatial share", "spatial pointing", "temporal share", "temporal pointing") if row[c] < 0.5]
    if row["synthetic pointing"] < SYNTHETIC_FLOORS["pointing"]:
        failed.append("synthetic pointing")
    if row["synthetic iou@0.5"] < SYNTHETIC_FLOORS["iou@0.5"]:
        failed.append("synthetic IoU>=0.5")
    return failed


def select(rows: Dict[tuple, Dict], peer: Dict, stage2: Optional[Dict[tuple, Dict]], shortlist: int):
    """``(ranked survivors, shortlist, winner or None, failed floors per configuration)``."""
    failed = {cfg: floors_failed(row, peer) for cfg, row in rows.items()}
    alive = [cfg for cfg in rows if not failed[cfg]]
    if not alive:
        return [], [], None, failed
    total = {cfg: 0.0 for cfg in alive}
    for c in STAGE1:
        for cfg, r in ranks({k: rows[k][c] for k in alive}, c in LOWER_IS_BETTER).items():
            total[cfg] += r
    ranked = sorted(alive, key=lambda k: (total[k], _changes(k)))
    short = ranked[:shortlist]
    if not stage2 or any(cfg not in stage2 for cfg in short):
        return ranked, short, None, failed
    final = {cfg: 0.0 for cfg in short}
    for c in STAGE1:
        for cfg, r in ranks({k: rows[k][c] for k in short}, c in LOWER_IS_BETTER).items():
            final[cfg] += r
    for c in STAGE2:
        for cfg, r in ranks({k: stage2[k][c] for k in short}, c in LOWER_IS_BETTER).items():
            final[cfg] += r
    for cfg in short:
        rows[cfg]["rank sum"] = final[cfg]
    return ranked, short, min(short, key=lambda k: (final[k], _changes(k))), failed


def _changes(cfg: Sequence) -> int:
    return sum(a != b for a, b in zip(cfg, PAPER_CFG))


def table(rows: Dict[tuple, Dict], cfgs: Sequence[tuple], stage2: Optional[Dict], failed: Dict, tags: Dict) -> List[str]:
    cols = list(STAGE1) + (list(STAGE2) + ["rank sum"] if stage2 else [])
    lines = ["| map configuration | best boxes (synthetic) | " + " | ".join(cols) + " | floors failed |",
             "|---|---|" + "---|" * (len(cols) + 1)]
    for cfg in cfgs:
        row = {**rows[cfg], **((stage2 or {}).get(cfg, {}))}
        vals = " | ".join(f"{row[c]:.3f}" if isinstance(row.get(c), float) else "-" for c in cols)
        box = "/".join(str(v) for v in row["boxes"][5:])
        lines.append(f"| {config_label(cfg)}{tags.get(cfg, '')} | {box} | {vals} | {', '.join(failed[cfg]) or '-'} |")
    return lines


def summary(rows, ranked, short, winner, failed, stage2, margin: int, margin_used: bool, peer) -> Tuple[str, Optional[tuple]]:
    tags = {winner: " **(LOCALIZE)**"} if winner else {}
    tags.setdefault(PAPER_CFG, " (PAPER)")
    lines = [f"Temporal margin: {margin} frames {'wins' if margin_used else 'does not win'} on the temporal grids "
             "(mean share and pointing over every configuration); the temporal criteria below use "
             f"{'it' if margin_used else 'no margin'}.", "",
             f"Floors: grid share and pointing >= 0.5 (chance 0.25); synthetic pointing >= "
             f"{SYNTHETIC_FLOORS['pointing']} and IoU>=0.5 >= {SYNTHETIC_FLOORS['iou@0.5']}. For comparison, the "
             f"pytorch-grad-cam-style GradCAM++ over all layers (0.5 / largest) has synthetic pointing "
             f"{peer['pointing']:.3f} and IoU>=0.5 {peer['iou@0.5']:.3f}. "
             f"{len(ranked)} of {len(rows)} configurations pass every floor.", "",
             "**Stage 1** (every configuration above the floors, by rank sum over the six criteria; then those that fail a floor):", ""]
    shown = ranked + [c for c in rows if failed[c]]
    lines += table(rows, shown, None, failed, tags)
    if stage2:
        lines += ["", f"**Stage 2** (the shortlist of {len(short)}, ranks within it over all nine criteria):", ""]
        lines += table(rows, short, stage2, failed, tags)
    return "\n".join(lines), winner
