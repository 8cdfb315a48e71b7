"""Faithfulness benchmark: deletion / insertion AUC and average drop of video attributions with I3D.

    python benchmarks/faithfulness.py            # everything (the peers need their venv, see below)
    python benchmarks/faithfulness.py --skip-protocol --protocol road:8x32x32 --methods random 3dcam --no-write
    python benchmarks/faithfulness.py --skip-protocol --protocol road:8x32x32 \\
        --method 'localize={"layer_rule": "gradcam++", "normalize_layers": "minmax"}' \\
        --methods random localize 3dcam pgc_gradcampp --block faithfulness-localize   # a preset, by kwargs
    python benchmarks/faithfulness.py --skip-protocol --protocol road:8x32x32 --preset LOCALIZE --block faithfulness-localize

Two questions, one table each (:mod:`captum_3dcam.metrics.faithfulness` does the measuring):

1. **Which protocol can rank attributions at all?** A deletion / insertion protocol (replacement
   values x cube size) is only usable when a random order comes out *last*: the highest deletion
   AUC and the lowest insertion AUC. Zero-filled 4x16x16 cubes fail that with I3D (random holes are
   out of distribution and remove the class fastest). Each candidate protocol is run with a random
   order and a few attribution orders; the protocol is *decided* on the decision clips (default
   arm_wrestling, abseiling) and *confirmed* on the held-out clip (basketball): among the protocols
   where random is last for both curves on every decision clip, the one with the largest worst-case
   margin (random's AUC minus the nearest attribution's, in relative AUC) is chosen.
2. **How faithful is each method?** Under the chosen protocol, every method's relative deletion
   AUC (lower is better), insertion AUC (higher is better), and the GradCAM++ paper's average drop
   (lower) / increase in confidence (higher), per clip, with the random row in every table.

Methods are named; ours are keyword arguments of ``GlobalLocal3DCam.attribute`` over the 9 Mixed
layers, so a new rule or preset needs no code: ``--method NAME=JSON`` or ``--preset NAME`` (a dict of
``captum_3dcam.attr.presets`` with ``"attribute"`` and ``"layers"``). Kwargs the installed core does not
accept are skipped with a note. Peers (pytorch-grad-cam, torch-cam) need torchvision: run the
script with the Python of the peers' virtual environment (see benchmarks/README.md).

Every (clip, protocol, map) result is cached in ``--cache`` (JSON, keyed by content hashes of the
clip and the map and by the protocol and steps), so an interrupted run resumes and a re-run only
measures maps that changed; the table says how many entries came from the cache.
"""
import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # running the script from a checkout without installing it
    sys.path.insert(0, str(REPO))
from benchmarks._faithfulness_methods import CLIPS, METHODS, compute_map, load_clip, unavailable_reason  # noqa: E402
from benchmarks._faithfulness_report import decide, random_is_last, render  # noqa: E402
from benchmarks._results import write_results_block  # noqa: E402

from captum_3dcam.metrics.confidence import confidence_scores  # noqa: E402
from captum_3dcam.metrics.faithfulness import curve_auc, deletion_insertion_curves  # noqa: E402

RESULTS_BLOCK = "faithfulness"
DEFAULT_PROTOCOLS = ["zero:4x16x16", "road:4x16x16", "blur:4x16x16", "mean:4x16x16", "zero:8x32x32", "road:8x32x32"]
PROTOCOL_METHODS = ["random", "3dcam", "captum_gradcam"]


# ---------------------------------------------------------------------------------------------
# measuring


def parse_protocol(text: str) -> Dict:
    """``"road:4x16x16"`` -> ``{"baseline": "road", "cube": (4, 16, 16)}``."""
    try:
        baseline, cube = text.split(":")
        sizes = tuple(int(c) for c in cube.split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"protocol: expected BASELINE:TxHxW, got {text!r}") from exc
    if len(sizes) != 3 or baseline not in ("zero", "mean", "blur", "road"):
        raise argparse.ArgumentTypeError(f"protocol: expected zero|mean|blur|road:TxHxW, got {text!r}")
    return {"baseline": baseline, "cube": sizes}


def measure(model, x: Tensor, maps: Tensor, target: int, protocol: str, args) -> Dict:
    """Relative deletion / insertion AUC and the curves of one map under one protocol."""
    start = time.perf_counter()
    fr, dele, ins = deletion_insertion_curves(
        model, x, maps, target, **parse_protocol(protocol), steps=args.steps, batch_size=args.batch_size,
        show_progress=args.progress)
    reference = dele[:, 0]
    return {
        "deletion": float(curve_auc(fr, dele, relative=True, reference=reference)[0]),
        "insertion": float(curve_auc(fr, ins, relative=True, reference=reference)[0]),
        "deletion_curve": [round(float(v), 5) for v in dele[0]],
        "insertion_curve": [round(float(v), 5) for v in ins[0]],
        "fractions": [round(float(v), 5) for v in fr],
        "seconds": round(time.perf_counter() - start, 1),
    }


class Cache:
    """``{key: result}`` in a JSON file, written after every new entry."""

    def __init__(self, path: Optional[Path]):
        self.path = path
        self.data = json.loads(path.read_text()) if path is not None and path.exists() else {}
        self.earlier = set(self.data)  # entries of earlier runs
        self.hits = set()
        self.used = set()

    def get(self, key: str, compute):
        self.used.add(key)
        if key in self.data:
            if key in self.earlier:
                self.hits.add(key)
            return self.data[key]
        value = compute()
        self.data[key] = value
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data))
            tmp.replace(self.path)
        return value


def digest(t: Tensor) -> str:
    """A short content hash of a tensor (cache keys follow the data, not the method's name or code version)."""
    return hashlib.sha1(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()).hexdigest()[:16]


class Runner:
    """Maps once per (clip, method); curves once per (clip, protocol, map), through the cache.

    Cache keys hold content hashes of the clip and of the map, so a changed method (a new core, a
    new peer version) is measured again, and two names for the same map share one measurement.
    """

    def __init__(self, model, layers, clips: Dict[str, Tensor], targets: Dict[str, int], args, cache: Cache):
        self.model, self.layers, self.clips, self.targets, self.args, self.cache = model, layers, clips, targets, args, cache
        self.maps: Dict[Tuple[str, str], Tensor] = {}
        self.clip_keys = {c: f"{c}:{digest(x)}:t{targets[c]}" for c, x in clips.items()}

    def key(self, clip: str, method: str) -> str:
        return f"{self.clip_keys[clip]}|map:{digest(self.map(clip, method))}"

    def map(self, clip: str, method: str) -> Tensor:
        if (clip, method) not in self.maps:
            self.maps[(clip, method)] = compute_map(self.model, self.layers, method, self.clips[clip],
                                                    self.targets[clip], self.args.seed).detach().float()
        return self.maps[(clip, method)]

    def curves(self, clip: str, protocol: str, method: str) -> Dict:
        key = f"curves|{self.key(clip, method)}|{protocol}|S{self.args.steps}"
        print(f"  {clip} {protocol} {method}", flush=True)
        return self.cache.get(key, lambda: measure(self.model, self.clips[clip], self.map(clip, method),
                                                   self.targets[clip], protocol, self.args))

    def confidence(self, clip: str, method: str) -> Dict:
        key = f"adic|{self.key(clip, method)}"

        def compute():
            y, o = confidence_scores(self.model, self.clips[clip], self.map(clip, method), self.targets[clip])
            y, o = float(y[0]), float(o[0])
            return {"Y": y, "O": o, "AD": 100 * max(0.0, y - o) / y, "IC": 100.0 * (o > y)}

        return self.cache.get(key, compute)


# ---------------------------------------------------------------------------------------------
# main (the protocol decision and the report: benchmarks/_faithfulness_report.py)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="benchmarks/faithfulness.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--clips", nargs="+", default=["arm_wrestling", "abseiling", "basketball"], choices=list(CLIPS))
    p.add_argument("--decide", nargs="+", default=["arm_wrestling", "abseiling"], help="clips the protocol is chosen on")
    p.add_argument("--confirm", nargs="*", default=["basketball"], help="held-out clips that confirm the choice")
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seed", type=int, default=0, help="seed of the random order")
    p.add_argument("--random-seeds", type=int, nargs="*", default=[1, 2],
                   help="further random orders in the method tables (rows 'random_sK'), to show the control's spread")
    p.add_argument("--protocols", nargs="+", default=DEFAULT_PROTOCOLS, help="candidates BASELINE:TxHxW")
    p.add_argument("--protocol-methods", nargs="+", default=PROTOCOL_METHODS, help="orders of the protocol table (random first)")
    p.add_argument("--confirm-all", action="store_true", help="run every candidate on the held-out clips too "
                   "(default: the chosen one and the first candidate)")
    p.add_argument("--protocol", default=None, help="skip the decision and use this protocol for the method tables")
    p.add_argument("--skip-protocol", action="store_true", help="no protocol table (needs --protocol)")
    p.add_argument("--methods", nargs="+", default=None, help="methods of the tables (default: all known)")
    p.add_argument("--method", action="append", default=[], metavar="NAME=JSON",
                   help="add our method with these attribute() kwargs, e.g. 'mine={\"layer_rule\": \"gradcam++\"}'")
    p.add_argument("--preset", action="append", default=[], help="add captum_3dcam.attr.presets.NAME (its 'attribute' kwargs)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache", default=str(REPO / "runs" / "faithfulness_cache.json"))
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--json", default=None, help="also write every number to this JSON file")
    p.add_argument("--results", default=str(REPO / "benchmarks" / "RESULTS.md"))
    p.add_argument("--block", default=RESULTS_BLOCK, help="the RESULTS.md block to replace (another name keeps the main one)")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--progress", action="store_true")
    return p


def _register_extra_methods(args) -> List[str]:
    added = []
    for item in args.method:
        name, _, text = item.partition("=")
        try:
            kwargs = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"--method {item!r}: expected NAME=JSON kwargs ({exc})")
        if not name or not isinstance(kwargs, dict):
            raise SystemExit(f"--method {item!r}: expected NAME={{...}}")
        METHODS[name] = (f"ours: `{name}` {json.dumps(kwargs)}", "ours", kwargs)
        added.append(name)
    for name in args.preset:
        try:
            import captum_3dcam.attr.presets as presets  # absent in older checkouts
        except ImportError as exc:
            raise SystemExit(f"--preset {name}: captum_3dcam.attr.presets is not importable here ({exc})")
        preset = getattr(presets, name, None)
        if not isinstance(preset, dict) or not isinstance(preset.get("attribute"), dict):
            raise SystemExit(f"--preset {name}: expected a dict with an 'attribute' dict in captum_3dcam.attr.presets")
        layers = preset.get("layers", "all")
        if layers != "all" and not isinstance(layers, str):
            raise SystemExit(f"--preset {name}: only layers='all' (the 9 Mixed layers) is supported here, got {layers!r}")
        METHODS[name] = (f"ours: preset `{name}` {json.dumps(preset['attribute'])}", "ours", dict(preset["attribute"]))
        added.append(name)
    return added


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    added = _register_extra_methods(args)
    extra_random = []
    for k in args.random_seeds:
        if k != args.seed:
            METHODS[f"random_s{k}"] = (f"random order (control, seed {k})", "random", k)
            extra_random.append(f"random_s{k}")
    if args.skip_protocol and args.protocol is None:
        raise SystemExit("--skip-protocol needs --protocol BASELINE:TxHxW")
    for p in args.protocols + ([args.protocol] if args.protocol else []):
        parse_protocol(p)
    t_start = time.time()
    from captum_3dcam.models import default_layers, i3d_kinetics400

    model = i3d_kinetics400().eval()
    # channels-last 3-D memory: ~1.8x faster oneDNN convolutions on this CPU, outputs equal to 4e-7
    model = model.to(memory_format=torch.channels_last_3d)
    layers = default_layers(model)
    data_dir = Path(args.data_dir)
    clips, info, targets = {}, {}, {}
    for name in args.clips:
        x, meta = load_clip(data_dir, name, args.frames)
        with torch.no_grad():
            probs = model(x).softmax(-1)[0]
        targets[name] = int(probs.argmax())
        meta.update(predicted=model.labels[targets[name]], probability=round(float(probs.max()), 4))
        clips[name], info[name] = x, meta
        print(f"[{name}] frames {meta['start']}..{meta['start'] + meta['frames'] - 1}: {meta['predicted']} {meta['probability']}", flush=True)

    cache = Cache(None if args.no_cache else Path(args.cache))
    runner = Runner(model, layers, clips, targets, args, cache)
    skipped: Dict[str, str] = {}
    wanted = list(args.methods or [m for m in METHODS if m not in added + extra_random] + added)
    for m in wanted:
        if m not in METHODS:
            raise SystemExit(f"--methods: unknown {m!r}; known: {list(METHODS)}")
        reason = unavailable_reason(model, layers, m, *METHODS[m][1:])
        if reason:
            skipped[m] = reason
            print(f"skip {m}: {reason}", flush=True)
    # the random rows first: seed --seed, then --random-seeds
    methods = ["random"] + extra_random + [m for m in wanted if m not in skipped and m not in extra_random + ["random"]]

    report = {"clips": info, "protocol_table": {}, "methods": {}, "skipped": skipped}
    chosen, reasoning = args.protocol, []
    if not args.skip_protocol:
        pmethods = [m for m in args.protocol_methods if m not in skipped]
        if pmethods[0] != "random":
            raise SystemExit("--protocol-methods: the first entry must be 'random'")
        table = {p: {c: {m: runner.curves(c, p, m) for m in pmethods} for c in args.clips if c in args.decide}
                 for p in args.protocols}
        decided, reasoning = decide(table, args.protocols, [c for c in args.decide if c in args.clips])
        chosen = args.protocol or decided
        confirm = [c for c in args.confirm if c in args.clips]
        # the held-out clips: the chosen protocol and the first candidate (the issue's), or every candidate
        for p in args.protocols if args.confirm_all else [q for q in dict.fromkeys([chosen, args.protocols[0]]) if q]:
            table.setdefault(p, {})
            for c in confirm:
                table[p][c] = {m: runner.curves(c, p, m) for m in pmethods}
        report["protocol_table"] = table
        report["decision"] = {"chosen": chosen, "decided": decided, "reasoning": reasoning,
                              "confirmation": {c: random_is_last(table[chosen][c])[:2] for c in confirm} if chosen else {}}
    if chosen is None:
        print("no protocol passed; method tables not computed")
    else:
        for c in args.clips:
            rows = {}
            for m in methods:
                try:
                    r = dict(runner.curves(c, chosen, m))
                    r.update(runner.confidence(c, m))
                except Exception as exc:  # noqa: BLE001 - a failing peer is reported, the rest goes on
                    r = {"error": f"{type(exc).__name__}: {exc}"}
                    print(f"  {m} failed on {c}: {r['error']}", flush=True)
                rows[m] = r
            report["methods"][c] = rows

    total = time.time() - t_start
    command = "python benchmarks/faithfulness.py" + ("" if argv is None and len(sys.argv) <= 1 else " " + " ".join(
        sys.argv[1:] if argv is None else argv))
    body = render(report, args, command, total, cache, methods, skipped, chosen, reasoning)
    print(body)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), **report}, indent=1, default=str))
    if not args.no_write:
        write_results_block(Path(args.results), body, args.block)
        print(f"wrote block '{args.block}' of {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
