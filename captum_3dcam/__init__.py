"""captum_3dcam: global-local layer-wise attribution (3DCam) for 3D CNNs, as a Captum plugin.

>>> from captum_3dcam import GlobalLocal3DCam
>>> cam = GlobalLocal3DCam(model, [model.conv1, model.conv2])
>>> maps = cam.attribute(clips)          # (N, 1, T, H, W)

The package is layered, one subpackage per layer (each imports only from those below it):
:mod:`~captum_3dcam.attr` (the attribution core) -> :mod:`~captum_3dcam.localization` ->
:mod:`~captum_3dcam.metrics` -> :mod:`~captum_3dcam.video`, :mod:`~captum_3dcam.datasets`,
:mod:`~captum_3dcam.models` -> :mod:`~captum_3dcam.training` -> :mod:`~captum_3dcam.evaluation` ->
:mod:`~captum_3dcam.viz` -> :mod:`~captum_3dcam.apps` -> :mod:`~captum_3dcam.cli`
(``docs/ARCHITECTURE.md``). ``import captum_3dcam`` imports nothing heavy: each public name below is
imported from its module the first time it is used (``GlobalLocal3DCam`` loads the core only:
torch and captum).
"""
from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "GlobalLocal3DCam": ".attr.attribution",
    "LayerwiseGlobalLocal3DCam": ".attr.attribution",
    "Counterfactual3DCam": ".attr.attribution",
    "PAPER": ".attr.presets",
    "LOCALIZE": ".attr.presets",
    "STRICT": ".attr.presets",
    "get_preset": ".attr.presets",
    "upsample_to": ".attr.upsample",
    "normalize_max": ".attr.upsample",
    "Captum3DCamError": ".errors",
    "attribution_to_boxes": ".localization.boxes",
    "pointing_game": ".metrics.localization",
    "box_iou": ".metrics.localization",
    "iou_accuracy": ".metrics.localization",
    "GridPointingGame": ".metrics.grid_game",
    "class_sensitivity": ".metrics.grid_game",
    "deletion_insertion_curves": ".metrics.faithfulness",
    "deletion_auc": ".metrics.faithfulness",
    "insertion_auc": ".metrics.faithfulness",
    "average_drop": ".metrics.confidence",
    "random_attribution": ".metrics.confidence",
    "LayerwiseGatedClassifier": ".models.gating",
    "i3d_kinetics400": ".models.i3d",
    "resnext3d": ".models.resnext",
    "default_layers": ".models.presets",
    "Small3DCNN": ".models.small",
}
__all__ = [*_EXPORTS, "__version__"]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
