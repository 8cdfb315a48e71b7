"""Speed and peak memory of 3DCam over K layers vs Captum's LayerGradCam, side by side.

Compared, on the same model and input, in interleaved rounds (medians of the per-round times):

- ``3dcam``: :class:`captum_3dcam.GlobalLocal3DCam` over K layers (one forward, one backward);
- ``lgc-lowest``: ``captum.attr.LayerGradCam`` on the lowest of those layers -- the physical limit,
  one forward plus one backward down to that layer;
- ``lgc-xK``: K separate ``LayerGradCam`` calls, one per layer (what a user would do with Captum);
- ``pgc-multi``: pytorch-grad-cam's ``GradCAM`` with all K target layers, when it is installed;
- ``3dcam-gradcam++``: the same pass with ``layer_rule="gradcam++"``; ``localize-fusion``: with the
  :data:`captum_3dcam.attr.presets.LOCALIZE` preset's fusion (its rule, normalization and gate) but no
  temporal margin; ``localize``: the preset's keyword arguments as they are, margin included (its
  ``2 m`` extra frames cost ``(T + 2 m) / T`` more; the column "vs 3dcam" is the median per-round
  ratio to ``3dcam``: the cost of the rule and the fusion themselves).

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` above the model and input; on the CPU,
each method runs once in a fresh subprocess (model and input built, nothing run yet) and the
peak of the resident set size, sampled every 0.5 ms during that first call, is reported above the
size just before it (freed heap handed back to the OS first): what the process really had to find,
oneDNN's start-up included (the same for every method).

Usage::

    python benchmarks/speed.py                    # CPU (and CUDA when available), writes RESULTS
    python benchmarks/speed.py --repeats 9 --models small --devices cpu --no-write
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from captum_3dcam import GlobalLocal3DCam  # noqa: E402

from _results import write_results_block  # noqa: E402  (benchmarks/_results.py)

METHODS = ["3dcam", "3dcam-gradcam++", "localize-fusion", "localize", "lgc-lowest", "lgc-xK", "pgc-multi"]


class BenchCNN(nn.Module):
    """A small C3D-style 3D CNN: five Conv3d-BN-ReLU blocks, pooling, a linear head."""

    def __init__(self, num_classes=10, widths=(32, 64, 128, 256, 256)):
        super().__init__()
        strides = [(1, 2, 2), (2, 2, 2), (2, 2, 2), (2, 2, 2), (1, 1, 1)]
        blocks, c_in = [], 3
        for i, (w, s) in enumerate(zip(widths, strides)):
            blocks.append(
                nn.Sequential(
                    nn.Conv3d(c_in, w, 3, stride=s, padding=1, bias=False),
                    nn.BatchNorm3d(w),
                    nn.ReLU(inplace=True),
                )
            )
            c_in = w
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(c_in, num_classes))

    def forward(self, x):
        return self.head(self.blocks(x))


def build(model_name):
    """(model, layers, input shape) for a model name, or None when it is unavailable."""
    torch.manual_seed(0)
    if model_name == "small":
        model = BenchCNN()
        return model.eval(), list(model.blocks), (2, 3, 16, 112, 112)
    if model_name == "r3d_18":
        try:
            from torchvision.models.video import r3d_18
        except ImportError:
            return None
        model = r3d_18(weights=None)
        layers = [model.stem, model.layer1, model.layer2, model.layer3, model.layer4]
        return model.eval(), layers, (2, 3, 16, 112, 112)
    if model_name == "i3d":
        try:
            from captum_3dcam.models import default_layers, i3d_kinetics400  # noqa: F401
            from captum_3dcam.models.i3d import InceptionI3d
        except ImportError:
            return None
        model = InceptionI3d()
        return model.eval(), default_layers(model), (1, 3, 16, 224, 224)
    raise ValueError(f"--models: unknown model {model_name!r}")


def make_runner(method, model, layers, target):
    from captum.attr import LayerAttribution, LayerGradCam

    if method in ("3dcam", "3dcam-gradcam++", "localize-fusion", "localize"):
        from captum_3dcam.attr.presets import LOCALIZE

        fusion = {k: v for k, v in LOCALIZE["attribute"].items() if k != "temporal_margin"}
        kwargs = {"3dcam": {}, "3dcam-gradcam++": {"layer_rule": "gradcam++"}, "localize-fusion": fusion,
                  "localize": LOCALIZE["attribute"]}[method]
        cam = GlobalLocal3DCam(model, layers)
        return lambda x: cam.attribute(x, target=target, **kwargs)
    if method == "lgc-lowest":
        lgc = LayerGradCam(model, layers[0])

        def run(x):
            a = lgc.attribute(x, target=target, relu_attributions=True)
            return LayerAttribution.interpolate(a, tuple(x.shape[2:]), "trilinear")

        return run
    if method == "lgc-xK":
        lgcs = [LayerGradCam(model, layer) for layer in layers]

        def run(x):
            return [
                LayerAttribution.interpolate(
                    g.attribute(x, target=target, relu_attributions=True), tuple(x.shape[2:]), "trilinear"
                )
                for g in lgcs
            ]

        return run
    if method == "pgc-multi":
        try:
            from pytorch_grad_cam import GradCAM
            from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
        except ImportError:
            return None
        cam = GradCAM(model=model, target_layers=list(layers))

        def run(x):
            return cam(input_tensor=x, targets=[ClassifierOutputTarget(target)] * x.shape[0])

        return run
    raise ValueError(method)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_methods(model_name, device, repeats, warmup=1):
    built = build(model_name)
    if built is None:
        return None
    model, layers, shape = built
    model.to(device)
    x = torch.randn(*shape, device=device)
    runners = {m: make_runner(m, model, layers, 1) for m in METHODS}
    runners = {m: r for m, r in runners.items() if r is not None}
    for r in runners.values():
        for _ in range(warmup):
            r(x)
    times = {m: [] for m in runners}
    for _ in range(repeats):  # interleaved rounds: noise hits every method alike
        for m, r in runners.items():
            sync(device)
            t0 = time.perf_counter()
            r(x)
            sync(device)
            times[m].append(time.perf_counter() - t0)
    return {"shape": list(shape), "K": len(layers), "times": times}


def peak_memory_child(model_name, method, device_name):
    """Run in a subprocess: peak memory growth of one call, in MiB."""
    device = torch.device(device_name)
    model, layers, shape = build(model_name)
    model.to(device)
    x = torch.randn(*shape, device=device)
    run = make_runner(method, model, layers, 1)
    if run is None:
        return None
    if device.type == "cuda":
        run(x)  # warm up kernels and cuDNN workspaces
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run(x)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    return _cpu_peak_growth_mib(lambda: run(x))


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _cpu_peak_growth_mib(call, interval=0.0005):
    """Peak resident set size during ``call()`` above the RSS just before it (sampled), MiB.

    Freed heap is handed back to the OS first (``malloc_trim``), so the baseline is the memory
    really in use, and the import-time high-water mark does not hide the call's own peak.
    """
    import ctypes
    import threading

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    base = _rss_bytes()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        call()
    finally:
        done.set()
        sampler.join()
    peak[0] = max(peak[0], _rss_bytes())
    return (peak[0] - base) / 2**20


def measure_memory(model_name, device_name, methods):
    out = {}
    for m in methods:
        cmd = [sys.executable, __file__, "--_child", model_name, m, device_name, str(torch.get_num_threads())]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[m] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def summarize(model_name, device_name, timing, memory):
    t = timing["times"]
    base = t["lgc-lowest"]
    rows = []
    for m in t:
        paired = statistics.median(a / b for a, b in zip(t[m], base))
        vs_3dcam = statistics.median(a / b for a, b in zip(t[m], t["3dcam"]))
        mem = memory.get(m)
        mem_ratio = (mem / memory["lgc-lowest"]) if mem is not None and memory.get("lgc-lowest") else None
        rows.append(
            {
                "model": model_name,
                "device": device_name,
                "method": m,
                "median_s": statistics.median(t[m]),
                "ratio_vs_lgc_lowest": paired,
                "ratio_vs_3dcam": vs_3dcam,
                "peak_mib": mem,
                "mem_ratio_vs_lgc_lowest": mem_ratio,
            }
        )
    return rows


def to_markdown(rows, cmd, repeats, env):
    lines = [
        f"Command: `{cmd}` ({repeats} interleaved rounds; time ratio = median of the per-round ratios "
        "to `lgc-lowest`; peak memory = growth of the peak during one call, fresh process per method"
        " on the CPU).",
        "",
        f"Machine: {env}",
        "",
        "| model | input (N,C,T,H,W) | K | method | median time (s) | time vs LayerGradCam lowest | time vs 3dcam | peak mem (MiB) | mem vs LayerGradCam lowest |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mem = "n/a" if r["peak_mib"] is None else f"{r['peak_mib']:.1f}"
        mr = "n/a" if r["mem_ratio_vs_lgc_lowest"] is None else f"{r['mem_ratio_vs_lgc_lowest']:.2f}x"
        lines.append(
            f"| {r['model']} ({r['device']}) | {tuple(r['shape'])} | {r['K']} | {r['method']} | "
            f"{r['median_s']:.3f} | {r['ratio_vs_lgc_lowest']:.3f}x | {r['ratio_vs_3dcam']:.3f}x | {mem} | {mr} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["small", "r3d_18"], help="small, r3d_18 (needs torchvision), i3d (heavy: 16x224x224)")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    all_rows = []
    for device_name in args.devices:
        if device_name == "cuda" and not torch.cuda.is_available():
            print("cuda: not available, skipped")
            continue
        device = torch.device(device_name)
        for model_name in args.models:
            timing = time_methods(model_name, device, args.repeats)
            if timing is None:
                print(f"{model_name}: not available here, skipped")
                continue
            memory = {} if args.no_memory else measure_memory(model_name, device_name, list(timing["times"]))
            rows = summarize(model_name, device_name, timing, memory)
            for r in rows:
                r["shape"], r["K"] = timing["shape"], timing["K"]
            all_rows.extend(rows)
            for r in rows:
                print(
                    f"{model_name:7s} {device_name:4s} {r['method']:11s} {r['median_s']:.3f}s "
                    f"x{r['ratio_vs_lgc_lowest']:.3f}  mem {r['peak_mib']} MiB "
                    f"(x{r['mem_ratio_vs_lgc_lowest'] if r['mem_ratio_vs_lgc_lowest'] is None else round(r['mem_ratio_vs_lgc_lowest'], 3)})"
                )
    cmd = "python benchmarks/speed.py " + " ".join(argv if argv is not None else sys.argv[1:])
    env = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch "
        f"{torch.__version__}, threads {torch.get_num_threads()}"
        + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "")
    )
    md = to_markdown(all_rows, cmd.strip(), args.repeats, env)
    print(md)
    if not args.no_write and all_rows:
        write_results_block(HERE / "RESULTS.md", "## Speed and memory: 3DCam vs Captum LayerGradCam\n\n" + md, "speed")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_child":
        torch.set_num_threads(int(sys.argv[5]))
        print(json.dumps(peak_memory_child(*sys.argv[2:5])))
    else:
        sys.exit(main())
