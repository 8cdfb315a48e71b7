"""captum_3dcam: global-local layer-wise attribution (3DCam) for 3D CNNs, as a Captum plugin.

>>> from captum_3dcam import GlobalLocal3DCam
>>> cam = GlobalLocal3DCam(model, [model.conv1, model.conv2])
>>> maps = cam.attribute(clips)          # (N, 1, T, H, W)

``import captum_3dcam`` needs only torch and captum; the optional dependencies (scipy, PyAV,
matplotlib, tqdm) are imported by the functions that use them. The map of the package (which
module holds what, and which may import which) is ``docs/ARCHITECTURE.md``.
"""
from .attribution import Counterfactual3DCam, GlobalLocal3DCam, LayerwiseGlobalLocal3DCam
from .errors import Captum3DCamError
from .confidence import average_drop, random_attribution
from .faithfulness import deletion_auc, deletion_insertion_curves, insertion_auc
from .gating import LayerwiseGatedClassifier
from .grid_game import GridPointingGame, class_sensitivity
from .localization import attribution_to_boxes
from .metrics import box_iou, iou_accuracy, pointing_game
from .models import Small3DCNN, default_layers, i3d_kinetics400, resnext3d
from .presets import LOCALIZE, PAPER, STRICT, get_preset
from .upsample import normalize_max, upsample_to

__version__ = "0.1.0"

__all__ = [
    "deletion_insertion_curves",
    "deletion_auc",
    "insertion_auc",
    "average_drop",
    "random_attribution",
    "PAPER",
    "LOCALIZE",
    "STRICT",
    "get_preset",
    "GlobalLocal3DCam",
    "LayerwiseGlobalLocal3DCam",
    "Counterfactual3DCam",
    "LayerwiseGatedClassifier",
    "attribution_to_boxes",
    "GridPointingGame",
    "class_sensitivity",
    "pointing_game",
    "box_iou",
    "iou_accuracy",
    "i3d_kinetics400",
    "resnext3d",
    "default_layers",
    "Small3DCNN",
    "upsample_to",
    "normalize_max",
    "Captum3DCamError",
    "__version__",
]
