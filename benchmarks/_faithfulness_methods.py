"""The clips and the attribution methods of ``benchmarks/faithfulness.py``: what is measured.

``CLIPS`` names the real clips (paths under ``../shared/data``), ``METHODS`` the attribution orders
(ours as keyword arguments of ``GlobalLocal3DCam.attribute``, Captum, the peers, the random
control); ``compute_map`` draws one method's map. ``faithfulness.py`` adds ``--method`` /
``--preset`` entries to ``METHODS`` at run time (the report reads the same dict).
"""
import inspect
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from captum_3dcam.metrics.confidence import random_attribution

__all__ = ["CLIPS", "METHODS", "load_clip", "unavailable_reason", "compute_map"]

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


def load_clip(data_dir: Path, name: str, num_frames: int) -> Tuple[Tensor, Dict]:
    """``(clip (1, 3, T, 224, 224), info)``: the centre window, or for basketball the window centred on its GT tube."""
    from captum_3dcam.video.preprocess import preprocess_i3d
    from captum_3dcam.video.io import read_video

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
    from captum_3dcam.attr.upsample import upsample_to

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
