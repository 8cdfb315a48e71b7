"""Window edges: does a long video's map light up at every window's end, and what removes it?

    python benchmarks/window_edges.py                       # validation clips + the basketball test clip
    python benchmarks/window_edges.py --presets localize --no-write

A long video is explained in windows of 64 frames every 32 (what ``captum-3dcam explain`` does with
I3D) and stitched back. Per configuration (preset x ``temporal_margin`` x stitching) and video:

- **corner frames**: frames whose box (at model resolution, the preset's box rule) touches two
  adjacent sides of the 224 x 224 crop: the symptom of a map that lights up the whole crop (GT-free,
  so it is measured on the validation clips too);
- **end share**: the share of the stitched temporal attention in the 8 frames before each window's end
  (over the frames that are not also the video's own end), divided by that of an even spread (1 = no
  excess; GT-free);
- on the basketball **test** clip only (reported, never chosen on): IoU>=0.5 and mean IoU over its 44
  ground-truth frames, and the temporal IoU of the action segments (``attention_to_segments`` at the
  preset's threshold) against frames 8-51.

The choice (``temporal_margin``, tapered stitching) is made on the validation clips' corner frames and
end share, and on the temporal grids of ``grid_game.py``.
"""
import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _results import write_results_block  # noqa: E402

from captum_3dcam import attribution_to_boxes, get_preset  # noqa: E402
from captum_3dcam.metrics.localization import box_iou, segment_set_iou  # noqa: E402
from captum_3dcam.localization.tubes import attention_to_segments, temporal_attention  # noqa: E402
from captum_3dcam.video.windows import attribute_windows, sliding_windows, stitch_windows  # noqa: E402

VIDEOS = {"cleaning_pool (val)": "validation/cleaning_pool.mp4", "waxing_eyebrows (val)": "validation/waxing_eyebrows.avi",
          "tai_chi (val)": "validation/tai_chi.mp4", "basketball (test)": "ucf101_24/v_Basketball_g01_c01.avi"}


def corner_frames(boxes: torch.Tensor, size: int = 224, tol: float = 1.0) -> int:
    """Frames whose box touches two adjacent sides of the crop."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    left, top, right, bottom = x1 <= tol, y1 <= tol, x2 >= size - tol, y2 >= size - tol
    pinned = (left & top) | (top & right) | (right & bottom) | (bottom & left)
    return int((pinned & torch.isfinite(boxes).all(-1)).sum())


def end_share(curve: torch.Tensor, windows, num_frames: int, width: int = 8) -> float:
    ends = torch.zeros(num_frames, dtype=torch.bool)
    for _, stop in windows:
        if stop < num_frames:
            ends[max(0, stop - width):stop] = True
    if not ends.any() or curve.sum() <= 0:
        return float("nan")
    return float(curve[ends].sum() / curve.sum() / ends.float().mean())


def gt_boxes(data_dir: Path, num_frames: int) -> torch.Tensor:
    from localization import load_gttubes

    return load_gttubes(data_dir / "ucf101_24" / "gt_tubes_sample.pkl", "Basketball/v_Basketball_g01_c01", num_frames)


def measure(model, layers, clip, geometry, preset, margin: int, tapers, gt=None) -> Dict[str, Dict]:
    total = clip.shape[2]
    windows = sliding_windows(total, min(64, total), 32)
    kwargs = dict(preset["attribute"], temporal_margin=margin)
    maps_w, probs, cls = attribute_windows(model, layers, clip, windows, **kwargs)
    out = {}
    for taper in tapers:
        maps = stitch_windows(maps_w, windows, total, taper=taper).unsqueeze(0)
        boxes = attribution_to_boxes(maps, **preset["boxes"])[0]
        curve = temporal_attention(maps)[0]
        row = {"corner frames": corner_frames(boxes), "end share": end_share(curve, windows, total),
               "frames": total, "class": int(cls)}
        if gt is not None:
            have = torch.isfinite(gt).all(-1)
            iou = box_iou(geometry.boxes_to_frame(boxes)[have], gt[have]).nan_to_num(0.0)
            segments = attention_to_segments(curve[None], preset["boxes"].get("threshold", 0.5))[0]
            row.update({"iou@0.5": float((iou >= 0.5).float().mean()), "mean iou": float(iou.mean()),
                        "segments": segments.tolist(),
                        "temporal iou": segment_set_iou(segments, torch.tensor([[8, 52]]), total)})
        out[f"margin {margin}, {'tapered' if taper else 'plain mean'}"] = row
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--presets", nargs="+", default=["localize", "paper"])
    p.add_argument("--margins", type=int, nargs="+", default=[0, 8])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=str(REPO / "runs" / "window_edges.json"))
    p.add_argument("--merge-json", nargs="*", default=[], help="also show the rows of these earlier --json runs")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--results", default=str(REPO / "benchmarks" / "RESULTS.md"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from captum_3dcam.models import default_layers, i3d_kinetics400
    from captum_3dcam.video.preprocess import preprocess_i3d
    from captum_3dcam.video.io import read_video

    t0 = time.time()
    command = f"python benchmarks/window_edges.py {' '.join(argv if argv is not None else sys.argv[1:])}".strip()
    data = Path(args.data_dir)
    model = i3d_kinetics400().eval()
    layers = default_layers(model)
    results: Dict[str, Dict[str, Dict]] = {}
    for video, rel in VIDEOS.items():
        frames = read_video(data / rel)
        clip, geometry = preprocess_i3d(frames)
        gt = gt_boxes(data, frames.shape[0]) if "test" in video else None
        for name in args.presets:
            for margin in args.margins:
                rows = measure(model, layers, clip, geometry, get_preset(name), margin, (False, True), gt)
                for k, row in rows.items():
                    results.setdefault(f"{name}, {k}", {})[video] = row
                print(f"[{video}] {name} margin {margin}: {time.time() - t0:.0f} s", flush=True)
    for path in args.merge_json:  # rows of earlier runs (e.g. another preset), unless measured again
        for key, per in json.loads(Path(path).read_text()).items():
            results.setdefault(key, per)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1))
    vids = list(VIDEOS)
    lines = ["## Window edges: long videos in 64-frame windows every 32 (I3D)", "",
             f"Command: `{command}` ({(time.time() - t0) / 60:.0f} min, torch {torch.__version__}, CPU). Per video: "
             "frames whose box touches two adjacent sides of the crop (corner frames), and the temporal attention "
             "in the 8 frames before each window's end relative to an even spread (end share, 1 = none); "
             "basketball (test, reported only): IoU>=0.5 / mean IoU over its 44 GT frames, temporal IoU of the "
             "segments against frames 8-51, the segments.", "",
             "| configuration | " + " | ".join(f"{v} corner / end share" for v in vids) + " | basketball IoU>=0.5 / mean IoU | "
             "basketball temporal IoU | basketball segments |",
             "|---|" + "---|" * (len(vids) + 3)]
    for key, per in results.items():
        cells = [f"{per[v]['corner frames']}/{per[v]['frames']} / {per[v]['end share']:.2f}" for v in vids]
        b = per[vids[-1]]
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {b['iou@0.5']:.3f} / {b['mean iou']:.3f} | "
                     f"{b['temporal iou']:.3f} | {b['segments']} |")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_results_block(Path(args.results), text, "window-edges")
    return 0


if __name__ == "__main__":
    sys.exit(main())
