"""Named configurations of the attribution and of its boxes: ``PAPER`` and ``LOCALIZE``.

Each preset is a plain dict with three keys::

    {"attribute": {...keyword arguments of GlobalLocal3DCam.attribute...},
     "boxes":     {...keyword arguments of localization.attribution_to_boxes...},
     "layers":    "all"}        # or a list of layer names, or a description

used as ``cam.attribute(x, **LOCALIZE["attribute"])`` and
``attribution_to_boxes(maps, **LOCALIZE["boxes"])``. ``"all"`` means the model's preset layers
(:func:`captum_3dcam.models.default_layers`).

- ``PAPER``: the paper's protocol exactly (eq. 1-3, per-layer max normalization, sum over the
  layers; boxes from the largest region above half of each frame's maximum).
- ``LOCALIZE``: the configuration that localized best on validation data, chosen by the written
  procedure of ``benchmarks/select_preset.py`` (SyntheticActions validation split only, never a
  test split or the real clips): GradCAM++ channel weights, the raw layer maps summed (no per-layer
  normalization), boxes from the largest region above 0.6 of each frame's range
  (``map - min >= 0.6 (max - min)``, so the positive floor that a deep network's summed maps sit
  on does not turn the box into the whole frame). Its results are
  in ``benchmarks/RESULTS.md`` (blocks ``select_preset``, ``localization``, ``faithfulness-localize``).
- ``STRICT``: the same procedure restricted to the configurations that pass the randomization
  sanity check (XGradCAM weights, per-layer max normalization, union box above 0.7): a little
  worse at boxes, but its maps depend on the weights (Spearman 0.16 after every layer is
  re-initialized, against 0.40 for ``LOCALIZE``).

:class:`~captum_3dcam.GlobalLocal3DCam`'s own defaults stay the paper's. Does not live here:
anything that computes (this module holds data only).
"""
import copy
from typing import Any, Dict

__all__ = ["PAPER", "LOCALIZE", "STRICT", "PRESETS", "get_preset"]

PAPER: Dict[str, Any] = {
    "attribute": {"layer_rule": "3dcam", "aggregation": "sum", "normalize_layers": True},
    "boxes": {"threshold": 0.5, "region": "largest"},
    "layers": "all",
}

LOCALIZE: Dict[str, Any] = {
    "attribute": {"layer_rule": "gradcam++", "aggregation": "sum", "normalize_layers": False},
    "boxes": {"threshold": 0.6, "region": "largest", "relative_to": "range"},
    "layers": "all",
}

#: The best configuration whose maps pass the model-randomization sanity check (Spearman < 0.3
#: once every layer is re-initialized), chosen by the same procedure as ``LOCALIZE``.
STRICT: Dict[str, Any] = {
    "attribute": {"layer_rule": "xgradcam", "aggregation": "sum", "normalize_layers": True},
    "boxes": {"threshold": 0.7, "region": "union"},
    "layers": "all",
}

#: The presets by the names the command line uses (``--preset localize|paper|strict``).
PRESETS: Dict[str, Dict[str, Any]] = {"paper": PAPER, "localize": LOCALIZE, "strict": STRICT}


def get_preset(name: str) -> Dict[str, Any]:
    """A deep copy of the preset called ``name`` (``"localize"``, ``"paper"`` or ``"strict"``, any case)."""
    key = str(name).lower() if isinstance(name, str) else name
    if key not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {name!r}")
    return copy.deepcopy(PRESETS[key])
