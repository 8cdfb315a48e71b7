"""The embedded default model's recipe: :class:`Small3DCNN` trained on :class:`SyntheticActions`.

Lives here: :data:`SMALL_MODEL_RECIPE` and :data:`QUICK_RECIPE`, :func:`train_small_model`,
:func:`load_or_train_small_model`, where the trained model is cached
(:func:`default_small_checkpoint`) and :func:`load_small_checkpoint`. Does not live here: the
model itself (:mod:`captum_3dcam.models.small`), the training loop (:mod:`captum_3dcam.training`)
and the data (:mod:`captum_3dcam.datasets.synthetic`).

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
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from ..datasets.synthetic import GENERATOR_VERSION, SyntheticActions
from .._safe_load import load_state_dict_exact
from .._utils import as_path
from ..errors import Captum3DCamError
from ..training import TrainConfig, load_checkpoint, train
from .small import Small3DCNN

__all__ = [
    "SMALL_MODEL_RECIPE", "QUICK_RECIPE", "train_small_model", "load_or_train_small_model",
    "default_small_checkpoint", "load_small_checkpoint",
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


def _plain(d: Dict[str, Any]) -> Dict[str, Any]:
    """Tuples to lists, so a recipe compares equal to its round trip through a checkpoint."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _matching_checkpoint(path: Path, recipe: Dict[str, Any], seed: int) -> Optional[Dict[str, Any]]:
    """The checkpoint at ``path`` if it was trained with ``recipe`` and ``seed``, else ``None``.

    A checkpoint of another recipe, seed or data generator is deleted with a warning, so that
    it is trained again rather than resumed.
    """
    if not path.is_file():
        return None
    state = load_checkpoint(path)
    extra = state.get("extra") or {}
    if extra.get("model") != "Small3DCNN":
        raise ValueError(f"path: {path} is not a Small3DCNN checkpoint of train_small_model")
    if (extra.get("recipe") == _plain(recipe) and extra.get("seed") == seed
            and extra.get("generator_version") == GENERATOR_VERSION):
        return state
    warnings.warn(f"{path} was trained with another recipe, seed or generator; retraining")
    path.unlink()
    return None


def _small_model_datasets(recipe: Dict[str, Any], seed: int):
    train_set = SyntheticActions(recipe["train_videos"], "train", seed=seed,
                                 difficulty=recipe["difficulty"],
                                 clips_per_video=recipe["clips_per_video"], cache=recipe["cache"])
    test_set = SyntheticActions(recipe["test_videos"], "test", seed=seed,
                                difficulty=recipe["difficulty"],
                                clips_per_video=recipe["test_clips_per_video"], cache=recipe["cache"])
    return train_set, test_set


def train_small_model(
    path: Optional[PathLike] = None,
    *,
    seed: int = 0,
    progress: bool = True,
    device: str = "cpu",
    **recipe_overrides,
):
    """Fit :class:`Small3DCNN` on :class:`SyntheticActions` with :data:`SMALL_MODEL_RECIPE`.

    Args:
        path: checkpoint file (written every epoch, resumed from when it exists); ``None``
            keeps nothing on disk.
        seed: seeds the datasets, the initialization and the run.
        progress: tqdm progress bars.
        device: training device.
        **recipe_overrides: replace entries of :data:`SMALL_MODEL_RECIPE` (``epochs=3``,
            ``difficulty="hard"``, ``train_videos=100``, ...).

    Returns:
        ``(model, history)``: the model in ``eval()`` mode on ``device``, the per-epoch metrics.
    """
    unknown = set(recipe_overrides) - set(SMALL_MODEL_RECIPE)
    if unknown:
        raise TypeError(f"unexpected recipe keys {sorted(unknown)}; known: {sorted(SMALL_MODEL_RECIPE)}")
    path = None if path is None else as_path(path, "path", kind="file")  # before the minutes of training
    recipe = {**SMALL_MODEL_RECIPE, **recipe_overrides}
    train_set, test_set = _small_model_datasets(recipe, seed)
    torch.manual_seed(seed)
    model_kwargs = {"num_classes": len(train_set.classes), "widths": tuple(recipe["widths"])}
    model = Small3DCNN(**model_kwargs)
    cfg = TrainConfig(epochs=recipe["epochs"], batch_size=recipe["batch_size"],
                      optimizer=recipe["optimizer"], lr=recipe["lr"],
                      momentum=recipe["momentum"], weight_decay=recipe["weight_decay"],
                      step_size=recipe["step_size"], gamma=recipe["gamma"], device=device,
                      seed=seed, progress=progress)
    extra = {"model": "Small3DCNN", "model_kwargs": _plain(model_kwargs),
             "classes": list(train_set.classes), "recipe": _plain(recipe), "seed": seed,
             "generator_version": GENERATOR_VERSION}
    if path is not None:
        _matching_checkpoint(path, recipe, seed)  # drops a checkpoint of another recipe
    history = train(model, train_set, test_set, cfg, checkpoint=path,
                    resume=path is not None, extra=extra)
    return model.eval(), history


def load_or_train_small_model(
    path: Optional[PathLike] = None,
    *,
    seed: int = 0,
    progress: bool = True,
    device: str = "cpu",
    **recipe_overrides,
):
    """The trained default model: loaded from ``path`` when it holds a finished run, else trained.

    ``path=None`` is the cache that ``captum-3dcam demo`` uses (:func:`default_small_checkpoint`).
    A checkpoint with fewer epochs than the recipe is resumed; a finished one is only loaded.
    Returns :class:`Small3DCNN` in ``eval()`` mode on ``device``.
    """
    path = as_path(path, "path", kind="file") if path is not None else default_small_checkpoint(seed, **recipe_overrides)
    recipe = {**SMALL_MODEL_RECIPE, **recipe_overrides}
    state = _matching_checkpoint(path, recipe, seed)
    if state is not None and state["epoch"] >= recipe["epochs"]:
        model = Small3DCNN(**state["extra"]["model_kwargs"])
        load_state_dict_exact(model, state["model"], source=f"checkpoint {path}")
        return model.to(device).eval()
    model, _ = train_small_model(path, seed=seed, progress=progress, device=device,
                                 **recipe_overrides)
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
        raise Captum3DCamError(f"--checkpoint: {path} is not a Small3DCNN checkpoint written by captum_3dcam.training")
    model = Small3DCNN(**extra.get("model_kwargs", {}))
    load_state_dict_exact(model, state["model"], source=f"--checkpoint {path}")
    model.labels = tuple(extra.get("classes") or [f"class {i}" for i in range(model.num_classes)])
    return model.eval()
