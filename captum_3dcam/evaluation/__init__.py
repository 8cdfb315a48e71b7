"""Evaluation over datasets: what a localization method is (:mod:`.methods`), running methods (:mod:`.engine`),
the tables (:mod:`.tables`), ``evaluate`` (:mod:`.evaluate`) and ``explain-dataset`` with its videos and its
resume (:mod:`.dataset_run`, :mod:`.videos`, :mod:`.resume`).
"""
from .._lazy import lazy_exports

_EXPORTS = {
    "DTYPES": ".dataset_run",
    "run_explain_dataset": ".dataset_run",
    "explain_clip": ".dataset_run",
    "DATASETS": ".videos",
    "dataset_videos": ".videos",
    "load_dataset_model": ".videos",
    "dataset_model_spec": ".videos",
    "evaluate_methods": ".engine",
    "IOU_THRESHOLDS": ".engine",
    "config_key": ".engine",
    "run_evaluate": ".evaluate",
    "dataset_items": ".evaluate",
    "Method": ".methods",
    "Context": ".methods",
    "METHODS": ".methods",
    "get_method": ".methods",
    "available_methods": ".methods",
    "method_layers": ".methods",
    "unavailable": ".methods",
    "peer_status": ".methods",
    "FIXED": ".resume",
    "FIXED_DEFAULTS": ".resume",
    "read_json": ".resume",
    "video_ids": ".resume",
    "prepare_out": ".resume",
    "check_video": ".resume",
    "check_maps": ".resume",
    "redo_reason": ".resume",
    "read_done": ".resume",
    "num_outputs": ".resume",
    "fixed_settings": ".resume",
    "videos_to_do": ".resume",
    "expected_windows": ".resume",
    "fmt": ".tables",
    "markdown_table": ".tables",
    "LOCALIZATION_COLUMNS": ".tables",
    "render": ".tables",
    "sanity_table": ".tables",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
