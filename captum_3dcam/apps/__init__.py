"""The applications a user runs: :func:`~.explain.explain_video` (one video file, any length) and
:func:`~.demo.run_demo` (synthetic data end to end). The command line is :mod:`captum_3dcam.cli`.
"""
from .._lazy import lazy_exports

_EXPORTS = {
    "run_demo": ".demo",
    "QUICK_RECIPE": ".demo",
    "explain_video": ".explain",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
