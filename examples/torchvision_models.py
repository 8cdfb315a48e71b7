"""3DCam on one of torchvision's Kinetics-400 video models, as a picture (the README's torchvision figure).

    python examples/torchvision_models.py VIDEO --arch r3d_18 --out r3d_18.png
    python examples/torchvision_models.py VIDEO --arch s3d --checkpoint s3d-d76dad2f.pth
    python examples/torchvision_models.py VIDEO --random-weights      # no weights file: says so in the title

Needs torchvision (CPU-only machine: ``pip install torch torchvision --index-url
https://download.pytorch.org/whl/cpu``). The weights come from ``--checkpoint`` or the torch hub
cache (see the README); with ``--random-weights`` the model is ``weights=None`` and the title says
that the picture shows the pipeline (transforms, layers, geometry back to the frames), not what a
trained model looks at. The README's picture was made with:

    python examples/torchvision_models.py ../shared/data/ucf101_24/v_Basketball_g01_c01.avi --random-weights \\
        --out docs/images/torchvision_r3d_18.png
"""
import argparse

import torch

from captum_3dcam import GlobalLocal3DCam
from captum_3dcam.viz.figures import describe_attribution, plot_overlay_rows, save_figure
from captum_3dcam.localization.boxes import attribution_to_boxes
from captum_3dcam.models import default_layer_names, default_layers, load_model
from captum_3dcam.models.torchvision_video import TORCHVISION_VIDEO_MODELS, torchvision_weights
from captum_3dcam.viz.overlays import frame_indices
from captum_3dcam.video.preprocess import preprocess_torchvision
from captum_3dcam.video.io import read_video


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("video")
    p.add_argument("--arch", default="r3d_18", choices=tuple(TORCHVISION_VIDEO_MODELS))
    p.add_argument("--checkpoint", help="weights file (default: the torch hub cache)")
    p.add_argument("--random-weights", action="store_true", help="weights=None (the title says so)")
    p.add_argument("--frames", type=int, default=16, help="centre frames explained (default 16)")
    p.add_argument("--out", default="torchvision_3dcam.png")
    args = p.parse_args(argv)

    weights = torchvision_weights(args.arch)
    if args.random_weights:
        import torchvision.models.video as video

        torch.manual_seed(0)
        model, source = getattr(video, args.arch)(weights=None).eval(), "RANDOM weights (weights=None)"
        model.labels = tuple(weights.meta["categories"])
    else:
        model, source = load_model(f"torchvision:{args.arch}", args.checkpoint), "Kinetics-400 weights"
    frames = read_video(args.video)
    clip, geometry = preprocess_torchvision(frames, weights.transforms(), num_frames=min(args.frames, len(frames)),
                                            min_frames=TORCHVISION_VIDEO_MODELS[args.arch][1])
    with torch.no_grad():
        probs = model(clip).softmax(-1)[0]
    target = int(probs.argmax())
    maps = GlobalLocal3DCam(model, default_layers(model)).attribute(clip, target=target)
    boxes = geometry.boxes_to_frame(attribution_to_boxes(maps))[0]
    shown = frame_indices(clip.shape[2], 4)
    numbers = [geometry.frame_indices[i] for i in shown]
    how = describe_attribution("3dcam", "sum", True, layers=default_layer_names(model))
    title = (f"torchvision {args.arch}, {source}\ntarget {model.labels[target]!r} (p={float(probs[target]):.2f}); "
             f"3DCam, {how}\ninput: weights.transforms(), {clip.shape[3]}x{clip.shape[4]} crop; maps and boxes "
             f"mapped back to the {frames.shape[1]}x{frames.shape[2]} frames")
    if args.random_weights:
        title += "\nrandom weights: this shows the pipeline, not what a trained model attends to"
    fig = plot_overlay_rows(frames[numbers], {"3DCam": geometry.maps_to_frame(maps[:, :, shown])},
                            boxes={"3DCam": boxes[shown]}, frame_numbers=numbers, title=title, cell_size=1.6)
    print("wrote", save_figure(fig, args.out, dpi=80))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
