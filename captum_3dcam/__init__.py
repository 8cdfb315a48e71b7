"""captum_3dcam: global-local layer-wise attribution (3DCam) for 3D CNNs, as a Captum plugin."""
__version__ = "0.1.0"
__all__ = ["__version__"]
