"""captum_3dcam: global-local layer-wise attribution (3DCam) for 3D CNNs, as a Captum plugin.

>>> from captum_3dcam import GlobalLocal3DCam
>>> cam = GlobalLocal3DCam(model, [model.conv1, model.conv2])
>>> maps = cam.attribute(clips)          # (N, 1, T, H, W)
"""
from .attribution import Counterfactual3DCam, GlobalLocal3DCam, LayerwiseGlobalLocal3DCam
from .upsample import normalize_max, upsample_to

__version__ = "0.1.0"

__all__ = [
    "GlobalLocal3DCam",
    "LayerwiseGlobalLocal3DCam",
    "Counterfactual3DCam",
    "upsample_to",
    "normalize_max",
    "__version__",
]
