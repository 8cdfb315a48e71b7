"""Models: the compact default 3D CNN, DeepMind's I3D, 3D ResNeXt, and layer presets."""
from .small import Small3DCNN

__all__ = ["Small3DCNN"]
