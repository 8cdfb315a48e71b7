"""Measures of an explanation: localization against boxes, the grid pointing game, faithfulness
(deletion, insertion, ROAD), confidence, imputation and the randomization sanity check.
"""
from .._lazy import lazy_exports

_EXPORTS = {
    "confidence_scores": ".confidence",
    "average_drop": ".confidence",
    "increase_in_confidence": ".confidence",
    "random_attribution": ".confidence",
    "deletion_curve": ".faithfulness",
    "insertion_curve": ".faithfulness",
    "deletion_insertion_curves": ".faithfulness",
    "deletion_auc": ".faithfulness",
    "insertion_auc": ".faithfulness",
    "curve_auc": ".faithfulness",
    "spatial_grid": ".grid_game",
    "temporal_grid": ".grid_game",
    "cell_mask": ".grid_game",
    "grid_scores": ".grid_game",
    "Grid": ".grid_game",
    "GridResult": ".grid_game",
    "GridPointingGame": ".grid_game",
    "random_maps": ".grid_game",
    "uniform_maps": ".grid_game",
    "class_sensitivity": ".grid_game",
    "BASELINES": ".imputation",
    "baseline_clip": ".imputation",
    "gaussian_blur3d": ".imputation",
    "noisy_linear_imputation": ".imputation",
    "check_boxes": ".localization",
    "valid_frames": ".localization",
    "box_iou": ".localization",
    "pointing_game": ".localization",
    "iou_accuracy": ".localization",
    "hit_rate": ".localization",
    "temporal_iou": ".localization",
    "segment_set_iou": ".localization",
    "gt_segments": ".localization",
    "LocalizationMeter": ".localization",
    "RandomizationStep": ".sanity",
    "spearman_rank_correlation": ".sanity",
    "ssim": ".sanity",
    "default_randomization_order": ".sanity",
    "cascading_randomization": ".sanity",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
