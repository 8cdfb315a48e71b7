"""The attribution core: 3DCam and its layer rules, the fusion of layers and the gate, hooks and
argument checks, upsampling, temporal padding and the named presets. Imports torch and captum only.
"""
from .._lazy import lazy_exports

_EXPORTS = {
    "LayerwiseGlobalLocal3DCam": ".attribution",
    "GlobalLocal3DCam": ".attribution",
    "Counterfactual3DCam": ".attribution",
    "pad_time": ".padding",
    "crop_time": ".padding",
    "check_margin": ".padding",
    "PAPER": ".presets",
    "LOCALIZE": ".presets",
    "STRICT": ".presets",
    "PRESETS": ".presets",
    "get_preset": ".presets",
    "LAYER_RULES": ".rules",
    "AGGREGATIONS": ".rules",
    "NORMALIZE": ".rules",
    "GATE_MODES": ".rules",
    "layer_map": ".rules",
    "aggregate": ".rules",
    "gate_fusion": ".rules",
    "check_gate": ".rules",
    "upsample_to": ".upsample",
    "normalize_max": ".upsample",
    "inverse_max": ".upsample",
    "check_size": ".upsample",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
