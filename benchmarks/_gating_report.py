"""Statistics and tables of ``benchmarks/gating.py``: paired differences over seeds, the RESULTS.md blocks.

``paired`` / ``verdict``: the per-seed paired difference with its 2-SE interval and t-test;
``summarize``: per variant, accuracy, differences to the baseline and to its control, cost;
``render`` (block ``gating``) and ``render_diagnosis`` (block ``gating-recipe``): the markdown.
"""
import math
import os
import platform
import statistics
from typing import Dict, List, Sequence

import torch

__all__ = ["VARIANTS", "FINE_TUNED", "CONTROLS", "paired", "verdict", "summarize", "render",
           "render_diagnosis"]

VARIANTS = ("baseline", "gated_last", "gated_all", "mlp_head", "gates_on_frozen", "head_on_frozen")
FINE_TUNED = ("gates_on_frozen", "head_on_frozen")
#: Which control each variant is compared with besides the baseline.
CONTROLS = {"gated_all": "mlp_head", "gates_on_frozen": "head_on_frozen"}


def paired(deltas: Sequence[float]) -> Dict[str, float]:
    """Mean, sample std, standard error, the 2-SE interval and a paired t-test p-value."""
    n = len(deltas)
    mean = statistics.fmean(deltas)
    sd = statistics.stdev(deltas) if n > 1 else math.nan
    se = sd / math.sqrt(n) if n > 1 else math.nan
    p = math.nan
    if n > 1:
        from scipy import stats

        p = 1.0 if sd == 0 and mean == 0 else (0.0 if sd == 0 else
                                               float(2 * stats.t.sf(abs(mean / se), n - 1)))
    return {"mean": mean, "sd": sd, "se": se, "lo": mean - 2 * se, "hi": mean + 2 * se, "p": p,
            "wins": sum(d > 0 for d in deltas), "losses": sum(d < 0 for d in deltas), "n": n}


def verdict(s: Dict[str, float]) -> str:
    if s["n"] < 2:
        return "one seed"
    if s["lo"] > 0:
        return "better"
    if s["hi"] < 0:
        return "worse"
    return "no clear difference"


def _ms(values: Sequence[float]) -> str:
    mean = statistics.fmean(values)
    return f"{mean:.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{mean:.3f}"


def _diff(s: Dict[str, float]) -> str:
    if s["n"] < 2:
        return f"{s['mean']:+.3f}"
    return (f"{s['mean']:+.3f} [{s['lo']:+.3f}, {s['hi']:+.3f}] "
            f"({s['wins']}/{s['n']} seeds up, p={s['p']:.2g})")


def summarize(results: Dict[str, List[Dict]]) -> Dict[str, Dict]:
    """Per variant: clip/video mean and std, paired differences to baseline and control, cost."""
    base = results.get("baseline")
    out = {}
    for variant, rows in results.items():
        s = {"clip": [r["clip"] for r in rows], "video": [r["video"] for r in rows],
             "params": rows[0]["params"], "trainable": rows[0]["trainable"],
             "seconds": statistics.median(r["seconds"] for r in rows)}
        if base is not None and variant != "baseline":
            s["vs_baseline"] = paired([r["clip"] - b["clip"] for r, b in zip(rows, base)])
            s["vs_baseline_video"] = paired([r["video"] - b["video"] for r, b in zip(rows, base)])
            if variant in FINE_TUNED:  # its cost: the baseline's training plus the extra epochs
                s["time_ratio"] = statistics.median(
                    (r["seconds"] + b["seconds"]) / b["seconds"] for r, b in zip(rows, base))
            else:
                s["time_ratio"] = statistics.median(
                    r["seconds"] / b["seconds"] for r, b in zip(rows, base))
        control = CONTROLS.get(variant)
        if control in results:
            s["control"] = control
            s["vs_control"] = paired([r["clip"] - c["clip"]
                                      for r, c in zip(rows, results[control])])
        out[variant] = s
    return out


def render_table(results: Dict[str, List[Dict]], summary: Dict[str, Dict], seeds) -> List[str]:
    base = summary.get("baseline")
    lines = ["| model | params (trainable) | clip accuracy | video accuracy | clip: paired "
             "difference to baseline [2-SE interval] | per seed (clip) | train time per seed |",
             "|---|---:|---|---|---|---|---:|"]
    for variant, s in summary.items():
        per_seed = ", ".join(f"{c:.3f}" for c in s["clip"])
        diff = _diff(s["vs_baseline"]) if "vs_baseline" in s else "—"
        if variant in FINE_TUNED:
            cost = f"+{s['seconds']:.0f} s (total x{s['time_ratio']:.2f})"
        elif "time_ratio" in s:
            cost = f"{s['seconds']:.0f} s (x{s['time_ratio']:.2f})"
        else:
            cost = f"{s['seconds']:.0f} s"
        params = f"{s['params']:,}" + (f" ({s['trainable']:,})" if s["trainable"] != s["params"]
                                       else "")
        lines.append(f"| {variant} | {params} | {_ms(s['clip'])} | {_ms(s['video'])} | {diff} | "
                     f"{per_seed} | {cost} |")
    lines.append("")
    if base is not None:
        spread = statistics.stdev(base["clip"]) if len(base["clip"]) > 1 else math.nan
        lines.append(f"Baseline spread over {len(seeds)} seeds: std {spread:.3f} clip accuracy "
                     f"(range {min(base['clip']):.3f}-{max(base['clip']):.3f}).")
        widths = [s["vs_baseline"]["hi"] - s["vs_baseline"]["mean"] for s in summary.values()
                  if "vs_baseline" in s and s["vs_baseline"]["n"] > 1]
        if widths:
            lines.append(f"Paired 2-SE half-widths: {min(widths):.3f}-{max(widths):.3f} (the "
                         "smallest difference this run can tell from zero).")
    pairs = [(v, s) for v, s in summary.items() if "vs_control" in s]
    if pairs:
        lines += ["", "Against the matching control (paired, clip accuracy): " + "; ".join(
            f"{v} - {s['control']}: {_diff(s['vs_control'])}, {verdict(s['vs_control'])}"
            for v, s in pairs) + "."]
    verdicts = [f"{v}: {verdict(s['vs_baseline'])}" for v, s in summary.items()
                if "vs_baseline" in s]
    if verdicts:
        lines += ["", "Verdict against the baseline (better / worse when the 2-SE interval of the "
                      "paired difference excludes 0): " + "; ".join(verdicts) + "."]
    return lines


def render(results, summary, r, seeds, seconds, command, eval_split, render_s) -> str:
    seed_list = ", ".join(str(s) for s in seeds)
    if isinstance(command, str):
        how = (f"Command: `{command}` — wall time {seconds / 60:.1f} min (rendering "
               f"{render_s:.0f} s)")
    else:  # merged runs: [(command, seconds), ...], then the merge command
        runs, merge = command
        how = ("Commands: " + ", ".join(f"`{c}` (wall time {t / 60:.1f} min)" for c, t in runs)
               + f", merged by `{merge}`")
    lines = [
        "## Attention gating (paper Tables 6-7) on SyntheticActions",
        "",
        f"{how} — on {platform.machine()} CPU, {r['jobs']} process(es) x {r['threads']} "
        f"thread(s), torch {torch.__version__}; load average at the end "
        f"{os.getloadavg()[0]:.1f} (the 2 cores are shared: compare times within a row, as "
        "ratios).",
        "",
        f"Recipe (chosen on the validation split, block `gating-recipe`): SyntheticActions "
        f"`{r['difficulty']}`, {r['size']}x{r['size']} frames x 16, {r['train_videos']} training "
        f"videos (1 clip each), Small3DCNN widths {tuple(r['widths'])}, Adam lr {r['lr']} x0.1 "
        f"after epoch {r['lr_drop']} of {r['epochs']}, batch {r['batch_size']}. Variants with "
        f"gates are trained jointly from scratch with the same recipe; `gates_on_frozen` / "
        f"`head_on_frozen` continue the trained baseline for {r['extra_epochs']} more epochs (lr "
        f"{r['lr']} x0.1 after {r['extra_lr_drop']}) with only the gates / only its `fc` trained; "
        f"`mlp_head` is the baseline with a 2-layer MLP head holding as many extra parameters as "
        f"`gated_all`'s gates. {eval_split.capitalize()}: {r['test_videos']} new videos x "
        f"{r['test_clips']} clips. Seeds {seed_list}: per seed every variant sees the same clips, "
        "starts from the same backbone weights and gets the same batch order; mean ± sample std "
        "over seeds; the paired difference is taken per seed, with its mean, its 2-SE interval "
        "(mean ± 2 sd/sqrt(n)), how many seeds went up and the two-sided paired t-test p. Train "
        "time: median seconds of one training per seed (x: median ratio to the baseline of the "
        "same seed; for the frozen variants the extra epochs and the total with the baseline's).",
        "",
    ]
    lines += render_table(results, summary, seeds)
    return "\n".join(lines)


def render_diagnosis(rows, r, command, seconds) -> str:
    lines = [
        "## Attention gating: how the benchmark's recipe was chosen (validation split)",
        "",
        f"Command: `{command}` — wall time {seconds / 60:.1f} min, {r['jobs']} process(es) x "
        f"{r['threads']} thread(s), torch {torch.__version__}.",
        "",
        f"Baseline Small3DCNN (widths {tuple(r['widths'])}) on SyntheticActions `{r['difficulty']}`"
        f", {r['size']}x{r['size']}, Adam lr {r['lr']} x0.1 at the given epoch, batch "
        f"{r['batch_size']}; validation split, {r['test_videos']} videos x {r['test_clips']} clips "
        "(never the test split). Train accuracy is the last epoch's running accuracy.",
        "",
        "| train videos | epochs (lr drop) | val clip accuracy | per seed | last-epoch train "
        "accuracy | time per training |",
        "|---:|---|---|---|---|---:|",
    ]
    for (videos, epochs, drop), seed_rows in rows.items():
        clips = [x["clip"] for x in seed_rows]
        lines.append(
            f"| {videos} | {epochs} ({drop}) | {_ms(clips)} | "
            f"{', '.join(f'{c:.3f}' for c in clips)} | "
            f"{_ms([x['train_accuracy'] for x in seed_rows])} | "
            f"{statistics.median(x['seconds'] for x in seed_rows):.0f} s |")
    return "\n".join(lines)
