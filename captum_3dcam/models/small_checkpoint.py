"""The small model's files: its recipes, where the demo's trained model is cached, and loading one.

Lives here: :data:`SMALL_MODEL_RECIPE` and :data:`QUICK_RECIPE` (what the cache file's name and
its record say), :func:`default_small_checkpoint`, :func:`is_unfinished_small_checkpoint` and
:func:`load_small_checkpoint` (a finished run only; sizes bounded and checked against the weights
before a model is built). Does not live here: training it (:mod:`captum_3dcam.training.small_recipe`),
the network (:mod:`captum_3dcam.models.small`).

:data:`SMALL_MODEL_RECIPE` fits the model in a couple of minutes on a CPU: ``widths=(8, 16, 32,
64)``, Adam, lr 0.003, x0.1 after epoch 4 of 5, batch 16, 1000 training videos (with a few hundred
videos it tends to memorise appearance instead of learning motion). The paper's recipe (SGD lr
0.001) is sized for hundreds of epochs of fine-tuning a pre-trained network, not for a two-minute
run from scratch. The cache is ``$CAPTUM_3DCAM_CACHE``, else ``$XDG_CACHE_HOME/captum_3dcam``, else
``~/.cache/captum_3dcam``.
"""
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import torch

from .._safe_load import check_state_dict, load_state_dict_exact
from .._untrusted import short_repr
from .._utils import as_path
from ..errors import Captum3DCamError
from .small import Small3DCNN
from .train_checkpoint import load_checkpoint
from .trained import MAX_CLASSES, MAX_WIDTH

__all__ = [
    "SMALL_MODEL_RECIPE", "QUICK_RECIPE", "default_small_checkpoint", "load_small_checkpoint",
    "is_unfinished_small_checkpoint",
]

PathLike = Union[str, os.PathLike]

#: The fast recipe of :func:`train_small_model` (measured: see the module docstring / README).
SMALL_MODEL_RECIPE = dict(
    train_videos=1000,
    test_videos=100,
    clips_per_video=1,
    test_clips_per_video=2,
    difficulty="easy",
    widths=(8, 16, 32, 64),
    epochs=5,
    batch_size=16,
    optimizer="adam",
    lr=0.003,
    momentum=0.9,
    weight_decay=0.0,
    step_size=4,
    gamma=0.1,
    cache=True,
)

#: ``captum-3dcam demo --quick``: a tiny run that exercises every step in seconds (barely trained).
QUICK_RECIPE = dict(train_videos=20, test_videos=5, test_clips_per_video=1, epochs=1)


def plain_recipe(d: Dict[str, Any]) -> Dict[str, Any]:
    """Tuples to lists, so a recipe compares equal to its round trip through a checkpoint."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def partial_path(path: Path) -> Path:
    """Where the epochs of an unfinished run of ``path`` are kept (resumable), never read as a model."""
    return path.with_name(path.name + ".partial")


def is_complete_run(state: Dict[str, Any]) -> bool:
    """Whether a checkpoint of :func:`train_small_model` holds a finished run: marked complete by
    :func:`_finish`, with every epoch of its recipe done."""
    extra = state.get("extra") or {}
    recipe = extra.get("recipe")
    epochs = recipe.get("epochs") if isinstance(recipe, Mapping) else None
    return extra.get("complete") is True and isinstance(epochs, int) and state["epoch"] >= epochs


def is_unfinished_small_checkpoint(path: PathLike) -> bool:
    """Whether ``path`` holds an unfinished run of :func:`train_small_model` (interrupted, or written
    before finished runs were marked): such a file is trained to the end, never used as a model.
    ``False`` for a missing or unreadable file, or one of another origin."""
    path = Path(path)
    try:
        state = load_checkpoint(path) if path.is_file() else None
    except (ValueError, OSError):
        return False
    return state is not None and "recipe" in (state.get("extra") or {}) and not is_complete_run(state)


def small_model_from(state: Dict[str, Any], source: str) -> Small3DCNN:
    """The :class:`Small3DCNN` of a checkpoint: its ``model_kwargs`` bounded and its weights checked
    against them on the meta device BEFORE the model is built (sizes come from the file)."""
    kwargs = (state.get("extra") or {}).get("model_kwargs", {})
    if not isinstance(kwargs, Mapping) or not set(kwargs) <= {"num_classes", "widths"}:
        raise Captum3DCamError(f"{source}: field 'extra.model_kwargs': expected a dict with num_classes and "
                               f"widths, got {short_repr(kwargs)}")
    kwargs = dict(kwargs)
    sizes = [("num_classes", kwargs.get("num_classes", 1), MAX_CLASSES)]
    widths = kwargs.get("widths", [1] * 4)
    if not isinstance(widths, (list, tuple)) or len(widths) != 4:
        raise Captum3DCamError(f"{source}: field 'extra.model_kwargs.widths': expected 4 channel counts, got "
                               f"{short_repr(widths)}")
    sizes += [(f"widths[{i}]", w, MAX_WIDTH) for i, w in enumerate(widths)]
    for name, value, high in sizes:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise Captum3DCamError(f"{source}: field 'extra.model_kwargs.{name}': expected an int in [1, {high}], "
                                   f"got {short_repr(value)}")
    with torch.device("meta"):
        check_state_dict(Small3DCNN(**kwargs), state["model"], source=source)
    model = Small3DCNN(**kwargs)
    load_state_dict_exact(model, state["model"], source=source)
    return model


def _cache_dir() -> Path:
    root = os.environ.get("CAPTUM_3DCAM_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "captum_3dcam"


def default_small_checkpoint(seed: int = 0, **recipe_overrides) -> Path:
    """Where the trained small model is kept: the cache, one file per recipe and seed."""
    recipe = {**SMALL_MODEL_RECIPE, **recipe_overrides, "seed": seed}
    digest = hashlib.sha1(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]
    return _cache_dir() / f"small3dcnn-synthetic-{digest}.pt"


def load_small_checkpoint(checkpoint: Optional[PathLike] = None) -> Small3DCNN:
    """A trained :class:`Small3DCNN` (with ``labels``) from a checkpoint of this recipe, in eval mode.

    ``None`` reads the cached default (:func:`default_small_checkpoint`). Raises
    :class:`~captum_3dcam.errors.Captum3DCamError` for a missing file or another model's checkpoint.
    """
    path = as_path(checkpoint, "--checkpoint", kind="file") if checkpoint is not None else default_small_checkpoint()
    if not path.is_file():
        hint = "" if checkpoint is not None else " (run `captum-3dcam demo` first, or pass --checkpoint)"
        raise Captum3DCamError(f"--checkpoint: no trained small model at {path}{hint}")
    state = load_checkpoint(path)
    extra = state.get("extra") or {}
    if extra.get("model") != "Small3DCNN":
        raise Captum3DCamError(f"--checkpoint: {path} is not a Small3DCNN checkpoint written by captum_3dcam.training.loop")
    if (checkpoint is None or "recipe" in extra) and not is_complete_run(state):
        raise Captum3DCamError(
            f"--checkpoint: {path} holds an unfinished training of the small model (epoch {state['epoch']}: "
            "interrupted, or written before finished runs were marked), not a model to use; run `captum-3dcam demo`"
            + (" to finish it" if checkpoint is None else f" --checkpoint {path} to finish it, or pass another --checkpoint"))
    model = small_model_from(state, f"--checkpoint {path}")
    model.labels = tuple(extra.get("classes") or [f"class {i}" for i in range(model.num_classes)])
    return model.eval()
