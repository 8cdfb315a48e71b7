"""Training the embedded default model: :class:`Small3DCNN` on :class:`SyntheticActions`.

Lives here: :func:`train_small_model` and :func:`load_or_train_small_model`. A model file (the
cache, or a ``path`` given) only ever holds a finished model: the epochs of a run go to
``FILE.partial`` (resumed after a kill), and ``FILE`` is written atomically once the last epoch is
done, marked ``extra["complete"] = True``; a file without that mark, or with fewer epochs than its
recipe, or one that cannot be read, is trained again (with a message). Does not live here: the
recipes, the cache's place and loading a trained model (:mod:`captum_3dcam.models.small_checkpoint`),
the network (:mod:`captum_3dcam.models.small`), the loop (:mod:`captum_3dcam.training.loop`).
"""
import os
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from ..datasets.synthetic import GENERATOR_VERSION, SyntheticActions
from .._safe_load import CheckpointError
from .._utils import as_path, log
from .loop import TrainConfig, check_seed, train
from ..models.train_checkpoint import load_checkpoint
from ..models.small import Small3DCNN
from ..models.small_checkpoint import (SMALL_MODEL_RECIPE, default_small_checkpoint, is_complete_run, partial_path,
                                       plain_recipe, small_model_from)

__all__ = ["train_small_model", "load_or_train_small_model"]

PathLike = Union[str, os.PathLike]

def _matching_checkpoint(path: Path, recipe: Dict[str, Any], seed: int) -> Optional[Dict[str, Any]]:
    """The checkpoint at ``path`` if it was trained with ``recipe`` and ``seed``, else ``None``.

    A checkpoint of another recipe, seed or data generator, or one that cannot be read, is deleted
    with a warning, so that it is trained again rather than resumed.
    """
    if not path.is_file():
        return None
    try:
        state = load_checkpoint(path)
    except CheckpointError as exc:
        warnings.warn(f"{path} cannot be used ({exc}); retraining")
        path.unlink()
        return None
    extra = state.get("extra") or {}
    if extra.get("model") != "Small3DCNN":
        raise ValueError(f"path: {path} is not a Small3DCNN checkpoint of train_small_model")
    if (extra.get("recipe") == plain_recipe(recipe) and extra.get("seed") == seed
            and extra.get("generator_version") == GENERATOR_VERSION):
        return state
    warnings.warn(f"{path} was trained with another recipe, seed or generator; retraining")
    path.unlink()
    return None


def _finish(path: Path) -> None:
    """Write the finished run to ``path`` atomically, marked complete, and drop its partial file."""
    partial = partial_path(path)
    state = load_checkpoint(partial if partial.is_file() else path)
    state["extra"] = {**state["extra"], "complete": True}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    if partial.is_file():
        partial.unlink()


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
        path: the model file, written atomically once training has finished; the epochs go to
            ``path.partial`` (resumed from when it exists); ``None`` keeps nothing on disk.
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
    check_seed(seed)
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
    extra = {"model": "Small3DCNN", "model_kwargs": plain_recipe(model_kwargs),
             "classes": list(train_set.classes), "recipe": plain_recipe(recipe), "seed": seed,
             "generator_version": GENERATOR_VERSION, "complete": False}
    resume = False
    if path is not None:  # drops checkpoints of another recipe; resumes the unfinished run, else the file
        _matching_checkpoint(path, recipe, seed)
        _matching_checkpoint(partial_path(path), recipe, seed)
        resume = next((f for f in (partial_path(path), path) if f.is_file()), False)
    history = train(model, train_set, test_set, cfg, checkpoint=None if path is None else partial_path(path),
                    resume=resume, extra=extra)
    if path is not None:
        _finish(path)
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
    A finished run (marked complete, every epoch of the recipe done) is only loaded; an unfinished
    one is trained to the end (a message says so), never used as it is.
    Returns :class:`Small3DCNN` in ``eval()`` mode on ``device``.
    """
    check_seed(seed)
    path = as_path(path, "path", kind="file") if path is not None else default_small_checkpoint(seed, **recipe_overrides)
    recipe = {**SMALL_MODEL_RECIPE, **recipe_overrides}
    state = _matching_checkpoint(path, recipe, seed)
    if state is not None and is_complete_run(state):
        return small_model_from(state, f"checkpoint {path}").to(device).eval()
    if state is not None:
        message = (f"{path} holds an unfinished training run (epoch {state['epoch']} of {recipe['epochs']}: interrupted, "
                   "or written before finished runs were marked); retraining it to the end instead of using it")
        log(message, progress)
        warnings.warn(message)
    model, _ = train_small_model(path, seed=seed, progress=progress, device=device,
                                 **recipe_overrides)
    return model


