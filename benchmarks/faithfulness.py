"""Faithfulness benchmark: deletion / insertion AUC and average drop of video attributions with I3D.

    PYTHONPATH=. /work/venv-peers/bin/python benchmarks/faithfulness.py            # everything
    python benchmarks/faithfulness.py --skip-protocol --protocol road:8x32x32 --methods random 3dcam --no-write
    python benchmarks/faithfulness.py --skip-protocol --protocol road:8x32x32 \\
        --method 'localize={"layer_rule": "gradcam++", "normalize_layers": "minmax"}' \\
        --methods random localize 3dcam pgc_gradcampp --block faithfulness-localize   # a preset, by kwargs
    python benchmarks/faithfulness.py --skip-protocol --protocol road:8x32x32 --preset LOCALIZE --block faithfulness-localize

Two questions, one table each (:mod:`captum_3dcam.faithfulness` does the measuring):

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
``captum_3dcam.presets`` with ``"attribute"`` and ``"layers"``). Kwargs the installed core does not
accept are skipped with a note. Peers (pytorch-grad-cam, torch-cam) need torchvision: run the
script with /work/venv-peers/bin/python (see benchmarks/README.md).

Every (clip, protocol, map) result is cached in ``--cache`` (JSON, keyed by content hashes of the
clip and the map and by the protocol and steps), so an interrupted run resumes and a re-run only
measures maps that changed; the table says how many entries came from the cache.
"""
import argparse
import hashlib
import inspect
import json
import math
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # running the script from a checkout without installing it
    sys.path.insert(0, str(REPO))
from benchmarks._results import write_results_block  # noqa: E402

from captum_3dcam.confidence import confidence_scores, random_attribution  # noqa: E402
from captum_3dcam.faithfulness import curve_auc, deletion_insertion_curves  # noqa: E402

RESULTS_BLOCK = "faithfulness"
CLIPS = {  # name: (path under the data dir, window)
    "arm_wrestling": ("kinetics400/arm_wrestling.mp4", "centre"),
    "abseiling": ("kinetics400/abseiling.mp4", "centre"),
    "basketball": ("ucf101_24/v_Basketball_g01_c01.avi", "gt"),
    # validation clips (../shared/data/validation): what select_preset.py chooses on
    "cleaning_pool": ("validation/cleaning_pool.mp4", "centre"),
    "waxing_eyebrows": ("validation/waxing_eyebrows.avi", "centre"),
    "tai_chi": ("validation/tai_chi.mp4", "centre"),
}
# name: (label, kind, spec); kind "ours" -> spec = attribute kwargs
METHODS: Dict[str, Tuple[str, str, object]] = {
    "random": ("random order (control, seed {seed})", "random", None),
    "captum_gradcam": ("Captum LayerGradCam, Mixed_5c", "captum", None),
    "3dcam": ("ours: 3DCam rule (paper default)", "ours", {}),
    "3dcam_gradcam": ("ours: gradcam rule", "ours", {"layer_rule": "gradcam"}),
    "3dcam_layercam": ("ours: layercam rule", "ours", {"layer_rule": "layercam"}),
    "3dcam_gradcampp": ("ours: gradcam++ rule", "ours", {"layer_rule": "gradcam++"}),
    "3dcam_xgradcam": ("ours: xgradcam rule", "ours", {"layer_rule": "xgradcam"}),
    "3dcam_minmax": ("ours: 3DCam rule, min-max layers", "ours", {"normalize_layers": "minmax"}),
    "gradcampp_minmax": ("ours: gradcam++ rule, min-max layers", "ours", {"layer_rule": "gradcam++", "normalize_layers": "minmax"}),
    "gradcampp_raw": ("ours: gradcam++ rule, raw layers", "ours", {"layer_rule": "gradcam++", "normalize_layers": False}),
    "pgc_gradcam": ("pytorch-grad-cam GradCAM", "pgc", "GradCAM"),
    "pgc_gradcampp": ("pytorch-grad-cam GradCAM++", "pgc", "GradCAMPlusPlus"),
    "pgc_layercam": ("pytorch-grad-cam LayerCAM", "pgc", "LayerCAM"),
    "pgc_xgradcam": ("pytorch-grad-cam XGradCAM", "pgc", "XGradCAM"),
    "torchcam_gradcampp": ("torch-cam GradCAMpp (max fusion)", "torchcam", "GradCAMpp"),
    "torchcam_layercam": ("torch-cam LayerCAM (max fusion)", "torchcam", "LayerCAM"),
}
DEFAULT_PROTOCOLS = ["zero:4x16x16", "road:4x16x16", "blur:4x16x16", "mean:4x16x16", "zero:8x32x32", "road:8x32x32"]
PROTOCOL_METHODS = ["random", "3dcam", "captum_gradcam"]


# ---------------------------------------------------------------------------------------------
# data, model, maps


def load_clip(data_dir: Path, name: str, num_frames: int) -> Tuple[Tensor, Dict]:
    """``(clip (1, 3, T, 224, 224), info)``: the centre window, or for basketball the window centred on its GT tube."""
    from captum_3dcam.video import preprocess_i3d, read_video

    rel, window = CLIPS[name]
    frames = read_video(data_dir / rel)
    total = frames.shape[0]
    start = (total - min(num_frames, total)) // 2
    if window == "gt":  # UCF101-24 tube of v_Basketball_g01_c01: frames 9..52 (1-based), see the data README
        centre = (8 + 51) // 2
        start = min(max(centre - num_frames // 2, 0), max(total - num_frames, 0))
    clip, _ = preprocess_i3d(frames[start:start + num_frames])
    return clip, {"file": rel, "start": start, "frames": clip.shape[2], "video_frames": total}


def _pgc_module():
    try:
        import pytorch_grad_cam

        return pytorch_grad_cam, None
    except Exception as exc:  # noqa: BLE001 - any import failure makes the peer unavailable
        return None, f"pytorch-grad-cam not importable ({type(exc).__name__}: {exc}); run with the peers' venv (see benchmarks/README.md)"


def _torchcam_module():
    try:
        import torchcam.methods as methods

        return methods, None
    except Exception as exc:  # noqa: BLE001
        return None, f"torch-cam not importable ({type(exc).__name__}: {exc})"


def unavailable_reason(model: nn.Module, layers: Sequence[nn.Module], method: str, kind: str, spec) -> Optional[str]:
    """Why a method cannot run here (None when it can): a missing peer, or kwargs the core rejects."""
    if kind == "pgc":
        return _pgc_module()[1]
    if kind == "torchcam":
        return _torchcam_module()[1]
    if kind != "ours":
        return None
    from captum_3dcam import GlobalLocal3DCam

    params = inspect.signature(GlobalLocal3DCam.attribute).parameters
    unknown = [k for k in spec if k not in params]
    if unknown:
        return f"the installed core's attribute() has no argument {unknown}"
    torch.manual_seed(0)  # a tiny model: does the installed core accept these values?
    tiny = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 4, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    x = torch.randn(2, 3, 4, 8, 8)
    try:
        GlobalLocal3DCam(tiny, [tiny[1], tiny[3]]).attribute(x, target=0, **spec)
    except (ValueError, TypeError) as exc:
        return f"the installed core rejects {spec}: {exc}"
    return None


def compute_map(model, layers, method: str, x: Tensor, target: int, seed: int) -> Tensor:
    """The method's map ``(1, 1, T, H, W)`` of the target class, at the clip's resolution."""
    from captum_3dcam.upsample import upsample_to

    _, kind, spec = METHODS[method]
    size = tuple(x.shape[2:])
    if kind == "random":
        return random_attribution(x, seed=seed if spec is None else spec)
    if kind == "captum":
        from captum.attr import LayerGradCam

        cam = LayerGradCam(model, layers[-1]).attribute(x, target=target, relu_attributions=True)
        return upsample_to(cam.detach().float(), size)
    if kind == "ours":
        from captum_3dcam import GlobalLocal3DCam

        return GlobalLocal3DCam(model, layers).attribute(x, target=target, **spec).detach()
    if kind == "pgc":
        pgc, _ = _pgc_module()
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        with getattr(pgc, spec)(model=model, target_layers=list(layers)) as cam:
            maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(target))])
        return torch.as_tensor(maps, dtype=torch.float32)[:, None]
    if kind == "torchcam":
        methods, _ = _torchcam_module()
        names = {id(m): n for n, m in model.named_modules()}
        extractor = getattr(methods, spec)(model, target_layer=[names[id(m)] for m in layers], input_shape=tuple(x.shape[1:]))
        try:
            with torch.enable_grad():
                cams = extractor(class_idx=int(target), scores=model(x))
            fused = extractor.fuse_cams([c.detach() for c in cams], target_shape=size)
        finally:
            extractor.remove_hooks()
        return fused.float().view(1, 1, *size)
    raise ValueError(f"method: unknown kind {kind!r}")


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
# protocol decision


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


# ---------------------------------------------------------------------------------------------
# report


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


# ---------------------------------------------------------------------------------------------
# main


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
    p.add_argument("--preset", action="append", default=[], help="add captum_3dcam.presets.NAME (its 'attribute' kwargs)")
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
            import captum_3dcam.presets as presets  # absent in older checkouts
        except ImportError as exc:
            raise SystemExit(f"--preset {name}: captum_3dcam.presets is not importable here ({exc})")
        preset = getattr(presets, name, None)
        if not isinstance(preset, dict) or not isinstance(preset.get("attribute"), dict):
            raise SystemExit(f"--preset {name}: expected a dict with an 'attribute' dict in captum_3dcam.presets")
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
    command = f"PYTHONPATH=. {sys.executable} benchmarks/faithfulness.py" + ("" if argv is None and len(sys.argv) <= 1 else " " + " ".join(
        sys.argv[1:] if argv is None else argv))
    body = render(report, args, command, total, cache, methods, skipped, chosen, reasoning)
    print(body)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), **report}, indent=1, default=str))
    if not args.no_write:
        write_results_block(Path(args.results), body, args.block)
        print(f"wrote block '{args.block}' of {args.results}")
    return 0


def render(report, args, command, total, cache, methods, skipped, chosen, reasoning) -> str:
    seconds = sum(cache.data[k].get("seconds", 0) for k in cache.used if k.startswith("curves|"))
    out = [
        "## Faithfulness: deletion / insertion AUC and average drop with I3D (no ground truth needed)",
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
        f"Curves (`captum_3dcam.faithfulness.deletion_insertion_curves`): the map is averaged over cubes of TxHxW voxels, "
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
        out += ["### 1. Protocol validation: under which protocol does a random order come last?", "",
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
        out += [f"### 2. Faithfulness per method, protocol `{chosen}`", "",
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


if __name__ == "__main__":
    sys.exit(main())
