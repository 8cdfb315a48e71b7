"""Deprecated: the pipelines moved to modules of their own. This module only re-exports them.

=====================================  ========================================================
``explain_video``                      :mod:`captum_3dcam.explain`
``run_demo``                           :mod:`captum_3dcam.demo`
``run_evaluate``                       :mod:`captum_3dcam.evaluation`
``MODELS``, ``ModelSpec``              :mod:`captum_3dcam.models.registry`
``default_small_checkpoint``,          :mod:`captum_3dcam.models.small_recipe`
``QUICK_RECIPE``
``CLIError``, ``PipelineError``        :class:`captum_3dcam.errors.Captum3DCamError`
=====================================  ========================================================
"""
import warnings

from .demo import run_demo
from .errors import Captum3DCamError
from .evaluation import run_evaluate
from .explain import explain_video
from .models.registry import MODELS, ModelSpec
from .models.small_recipe import QUICK_RECIPE, default_small_checkpoint

__all__ = [
    "explain_video", "run_demo", "run_evaluate", "MODELS", "ModelSpec", "default_small_checkpoint",
    "QUICK_RECIPE", "CLIError", "PipelineError",
]

CLIError = PipelineError = Captum3DCamError

warnings.warn("captum_3dcam.pipeline is deprecated: use captum_3dcam.explain, .demo, .evaluation, "
              ".models.registry and .errors (see its docstring)", DeprecationWarning, stacklevel=2)
