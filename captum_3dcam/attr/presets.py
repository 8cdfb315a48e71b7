"""Named configurations of the attribution and of its boxes: ``LOCALIZE``, ``PAPER``, ``STRICT``.

Each preset is a plain dict with three keys::

    {"attribute": {...keyword arguments of GlobalLocal3DCam.attribute...},
     "boxes":     {...keyword arguments of localization.attribution_to_boxes...},
     "layers":    "all"}        # or a list of layer names, or a description

used as ``cam.attribute(x, **LOCALIZE["attribute"])`` and
``geometry.boxes_to_frame(attribution_to_boxes(maps, **LOCALIZE["boxes"]))``. ``"all"`` means the
model's preset layers (:func:`captum_3dcam.models.default_layers`, shallow to deep).

- ``LOCALIZE`` (the default of every entry point): chosen by the written rule of
  ``benchmarks/select_preset.py`` (selection v2) on validation data only: the video grid pointing
  game with the pretrained I3D on real validation clips (spatial and temporal grids), ROAD deletion
  and insertion on those clips, the synthetic validation split of two small architectures (boxes,
  pointing), and the randomization sanity check, combined as rank sums above floors at twice chance.
  The paper's own global-local idea, made class-aware: the paper's rule (eq. 1-2) on every layer,
  summed without per-layer normalization (the local detail), multiplied by the deepest layer's
  GradCAM (the class evidence, global: :func:`~captum_3dcam.attr.rules.gate_fusion`), with 8
  replicated frames at each end of the clip (``temporal_margin``, away from the model's padding
  in time); boxes from the union of the regions above half of each frame's maximum. Results:
  ``benchmarks/RESULTS.md`` blocks ``select_preset``, ``grid-game``, ``window-edges``,
  ``localization``, ``faithfulness-localize``.
- ``PAPER``: the paper's protocol exactly (eq. 1-3, per-layer max normalization, sum over the
  layers; boxes from the largest region above half of each frame's maximum).
- ``STRICT``: the best configuration of the same procedure whose maps pass a stricter sanity bar
  (Spearman < 0.2 after every layer of the synthetic networks is re-initialized): XGradCAM weights,
  per-layer max normalization, the same gate and margin; union box above 0.6.

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
    "attribute": {"layer_rule": "3dcam", "aggregation": "sum", "normalize_layers": False,
                  "gate": "gradcam", "gate_layers": 1, "temporal_margin": 8},
    "boxes": {"threshold": 0.5, "region": "union", "relative_to": "max"},
    "layers": "all",
}

#: The best configuration of the same procedure whose maps pass a stricter sanity bar (Spearman
#: < 0.2 once every layer of the synthetic networks is re-initialized): XGradCAM layers, gated.
STRICT: Dict[str, Any] = {
    "attribute": {"layer_rule": "xgradcam", "aggregation": "sum", "normalize_layers": True,
                  "gate": "gradcam", "gate_layers": 1, "temporal_margin": 8},
    "boxes": {"threshold": 0.6, "region": "union", "relative_to": "max"},
    "layers": "all",
}

#: The presets by the names the command line uses (``--preset localize|paper|strict``).
PRESETS: Dict[str, Dict[str, Any]] = {"paper": PAPER, "localize": LOCALIZE, "strict": STRICT}


def get_preset(name: str) -> Dict[str, Any]:
    """A deep copy of the preset called ``name`` (``"localize"``, ``"paper"`` or ``"strict"``, any case)."""
    key = name.lower() if isinstance(name, str) else None
    if key not in PRESETS:
        raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {name!r}")
    return copy.deepcopy(PRESETS[key])
