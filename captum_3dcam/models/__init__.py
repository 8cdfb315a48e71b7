"""Models: the compact default 3D CNN (and its recipe), DeepMind's I3D, 3D ResNeXt, layer presets,
and the registry of models known by name (:data:`MODELS`).

Does not live here: the gated classifier (:mod:`captum_3dcam.gating`) and the training loop
(:mod:`captum_3dcam.training`).
"""
from .checkpoints import CheckpointError, UnsafeCheckpointError, load_hara_checkpoint
from .i3d import InceptionI3d, i3d_kinetics400
from .kinetics400_labels import KINETICS400_LABELS
from .presets import default_layer_names, default_layers, get_layers
from .registry import MODELS, ModelSpec, get_model_spec, load_model
from .resnext import ResNeXt3D, resnext3d, resnext3d_from_checkpoint
from .small import Small3DCNN
from .small_recipe import (
    QUICK_RECIPE,
    SMALL_MODEL_RECIPE,
    default_small_checkpoint,
    load_or_train_small_model,
    train_small_model,
)

__all__ = [
    "Small3DCNN",
    "InceptionI3d",
    "i3d_kinetics400",
    "KINETICS400_LABELS",
    "ResNeXt3D",
    "resnext3d",
    "resnext3d_from_checkpoint",
    "load_hara_checkpoint",
    "CheckpointError",
    "UnsafeCheckpointError",
    "default_layers",
    "default_layer_names",
    "get_layers",
    "MODELS",
    "ModelSpec",
    "get_model_spec",
    "load_model",
    "SMALL_MODEL_RECIPE",
    "QUICK_RECIPE",
    "train_small_model",
    "load_or_train_small_model",
    "default_small_checkpoint",
]
