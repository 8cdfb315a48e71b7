"""I3D (DeepMind's Kinetics-400 weights) on a real clip: forward, 3DCam and Captum's LayerGradCam times.

For T = 16 and 64 frames (the centre frames of ``../shared/data/ucf101_24/v_Basketball_g01_c01.avi``,
preprocessed for I3D: short side 256, centre crop 224, RGB in [-1, 1]; a random clip of the same
shape when the data is absent), in interleaved rounds, medians over rounds:

- ``forward``: ``model(x)`` under ``torch.no_grad()``;
- ``3dcam``: :class:`captum_3dcam.GlobalLocal3DCam` over ``default_layers(model)`` (the nine
  ``Mixed_*`` blocks): one forward, one backward, nine maps upsampled to ``(T, 224, 224)``, aggregated;
- ``lgc-5c``: ``captum.attr.LayerGradCam(model, model.Mixed_5c)`` (ReLU'd), plus trilinear
  upsampling of its ``(T/8, 7, 7)`` map to ``(T, 224, 224)`` (``captum_3dcam.attr.upsample.upsample_to``).

Both attribution methods get the same target (the predicted class, computed beforehand).

Usage::

    python benchmarks/models.py                       # writes block 'models' of benchmarks/RESULTS.md
    python benchmarks/models.py --frames 16 --repeats 2 --no-write
"""
import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from _results import write_results_block  # benchmarks/_results.py

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from captum_3dcam import GlobalLocal3DCam  # noqa: E402
from captum_3dcam.models import default_layers, i3d_kinetics400  # noqa: E402
from captum_3dcam.attr.upsample import upsample_to  # noqa: E402

RESULTS_BLOCK = "models"
CLIP = REPO.parent / "shared" / "data" / "ucf101_24" / "v_Basketball_g01_c01.avi"
METHODS = ["forward", "3dcam", "lgc-5c"]


def load_clip(num_frames: int):
    """``(1, 3, T, 224, 224)`` from the basketball clip (centre frames), or random when absent."""
    if CLIP.is_file():
        from captum_3dcam.video.preprocess import preprocess_i3d
        from captum_3dcam.video.io import read_video

        clip, _ = preprocess_i3d(read_video(CLIP), num_frames=num_frames)
        return clip, f"{CLIP.name}, centre {num_frames} frames"
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, num_frames, 224, 224, generator=g) * 2 - 1, f"random clip, {num_frames} frames"


def make_methods(model):
    from captum.attr import LayerGradCam

    cam = GlobalLocal3DCam(model, default_layers(model))
    lgc = LayerGradCam(model, model.Mixed_5c)

    def forward(x, target):
        with torch.no_grad():
            return model(x)

    def threedcam(x, target):
        return cam.attribute(x, target=target)

    def layer_gradcam(x, target):
        maps = lgc.attribute(x, target=target, relu_attributions=True)
        return upsample_to(maps, tuple(x.shape[-3:]))

    return {"forward": forward, "3dcam": threedcam, "lgc-5c": layer_gradcam}


def run(frames, repeats, progress=True):
    model = i3d_kinetics400()
    methods = make_methods(model)
    rows = []
    for t in frames:
        x, source = load_clip(t)
        with torch.no_grad():
            probs = model(x).softmax(-1)[0]
        target = int(probs.argmax())
        methods["forward"](x, target)  # warm-up at this shape (oneDNN primitives), not timed
        times = {m: [] for m in METHODS}
        cpu = {m: [] for m in METHODS}
        rounds = range(repeats)
        if progress:
            try:
                from tqdm.auto import tqdm

                rounds = tqdm(rounds, desc=f"T={t}", unit="round")
            except ImportError:
                pass
        for _ in rounds:
            for name in METHODS:
                start, start_cpu = time.perf_counter(), time.process_time()
                out = methods[name](x, target)
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
                del out
        rows.append(
            {
                "frames": t,
                "source": source,
                "top1": f"{model.labels[target]} {float(probs[target]):.2f}",
                **{m: (statistics.median(v), min(v), max(v)) for m, v in times.items()},
                **{f"{m}-cpu": statistics.median(v) for m, v in cpu.items()},
            }
        )
    return rows


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def format_block(rows, repeats, load_before, load_after, command) -> str:
    lines = [
        "## Real models: I3D (Kinetics-400) forward, 3DCam over 9 Mixed layers, Captum LayerGradCam on Mixed_5c",
        "",
        f"CPU: {cpu_name()}, {os.cpu_count()} cores visible, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads; float32, batch 1, 224x224; one untimed warm-up forward per clip length. "
        f"Wall-clock seconds, median of {repeats} interleaved "
        f"rounds [min-max], and (in parentheses) the median CPU seconds of this process (all threads) "
        f"(it includes OpenMP threads spin-waiting, so it is not clean either). Load average before/after: {load_before:.1f} / {load_after:.1f} "
        "(the CPU was shared with other jobs: treat differences under ~20% as noise).",
        "",
        "| frames | input | I3D top-1 | forward (no grad) | 3DCam, 9 Mixed layers | LayerGradCam Mixed_5c + upsample | 3DCam / LayerGradCam |",
        "|---:|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        cell = {m: f"{r[m][0]:.2f} [{r[m][1]:.2f}-{r[m][2]:.2f}] ({r[m + '-cpu']:.1f})" for m in METHODS}
        ratio = r["3dcam"][0] / r["lgc-5c"][0]
        lines.append(
            f"| {r['frames']} | {r['source']} | {r['top1']} | {cell['forward']} | {cell['3dcam']} | {cell['lgc-5c']} | {ratio:.2f} |"
        )
    lines += [
        "",
        "Both attribution methods do one forward (with autograd) and one backward pass. LayerGradCam's backward",
        "stops at Mixed_5c, i.e. it only crosses the Logits head, so it costs about one forward; 3DCam's goes down",
        "to Mixed_3b (most of the network) and it upsamples and aggregates nine maps instead of one.",
        "",
        f"Reproduce: `{command}`",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", nargs="+", type=int, default=[16, 64])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--results", default=str(HERE / "RESULTS.md"))
    p.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    load_before = os.getloadavg()[0]
    rows = run(args.frames, args.repeats, progress=not args.no_progress)
    load_after = os.getloadavg()[0]
    command = "python benchmarks/models.py " + " ".join(argv if argv is not None else sys.argv[1:])
    body = format_block(rows, args.repeats, load_before, load_after, command.strip())
    print(body)
    if not args.no_write:
        write_results_block(Path(args.results), body, RESULTS_BLOCK)  # re-reads the file first
        print(f"wrote block '{RESULTS_BLOCK}' of {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
