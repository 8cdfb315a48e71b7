"""Models: the compact default 3D CNN, DeepMind's I3D, 3D ResNeXt, and layer presets."""
from .checkpoints import CheckpointError, UnsafeCheckpointError, load_hara_checkpoint
from .i3d import InceptionI3d, i3d_kinetics400
from .kinetics400_labels import KINETICS400_LABELS
from .presets import default_layer_names, default_layers, get_layers
from .resnext import ResNeXt3D, resnext3d, resnext3d_from_checkpoint
from .small import Small3DCNN

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
]
