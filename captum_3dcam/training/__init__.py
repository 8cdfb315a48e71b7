"""Training a classifier: the resumable loop (:mod:`.loop`), clip and video accuracy, the
``train`` command's library entry (:mod:`.recognition`), torchrun process groups and the small model's recipe.
"""
from .._lazy import lazy_exports

_EXPORTS = {
    "evaluate": ".accuracy",
    "video_ids_of": ".accuracy",
    "split_batch": ".accuracy",
    "DistributedContext": ".distributed",
    "init_distributed": ".distributed",
    "torchrun_env": ".distributed",
    "is_distributed": ".distributed",
    "get_rank": ".distributed",
    "get_world_size": ".distributed",
    "is_main_process": ".distributed",
    "barrier": ".distributed",
    "all_reduce_sum": ".distributed",
    "broadcast_buffers": ".distributed",
    "wrap_ddp": ".distributed",
    "TrainConfig": ".loop",
    "TrainingDivergedError": ".loop",
    "MAX_SEED": ".loop",
    "check_seed": ".loop",
    "train": ".loop",
    "DATASETS": ".recognition",
    "training_data": ".recognition",
    "pretrained_backbone": ".recognition",
    "run_train": ".recognition",
    "train_small_model": ".small_recipe",
    "load_or_train_small_model": ".small_recipe",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
