"""From attention to places: per-frame boxes and regions (:mod:`.boxes`), action tubes, the
temporal attention curve and its segments (:mod:`.tubes`).
"""
from .._lazy import lazy_exports

_EXPORTS = {
    "Regions": ".boxes",
    "threshold_masks": ".boxes",
    "otsu_thresholds": ".boxes",
    "attribution_to_boxes": ".boxes",
    "attribution_to_regions": ".boxes",
    "link_tube": ".tubes",
    "attribution_to_tubes": ".tubes",
    "temporal_attention": ".tubes",
    "mask_to_segments": ".tubes",
    "attention_to_segments": ".tubes",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
