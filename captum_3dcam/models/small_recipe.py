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

A model file (the cache, or a ``path`` given) only ever holds a finished model: the epochs of a run
go to ``FILE.partial`` (resumed after a kill), and ``FILE`` is written atomically once the last
epoch is done, marked ``extra["complete"] = True``. A file without that mark, or with fewer epochs
than its recipe (interrupted, or written by an older version), or one that cannot be read, is
trained again (with a message) by :func:`load_or_train_small_model` and refused by
:func:`load_small_checkpoint`; its sizes (``model_kwargs``) are bounded and checked against its
weights before a model is built.
"""
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import torch

from ..datasets.synthetic import GENERATOR_VERSION, SyntheticActions
from .._safe_load import CheckpointError, check_state_dict, load_state_dict_exact
from .._untrusted import short_repr
from .._utils import as_path, log
from ..errors import Captum3DCamError
from ..training import TrainConfig, check_seed, load_checkpoint, train
from .small import Small3DCNN
from .trained import MAX_CLASSES, MAX_WIDTH

__all__ = [
    "SMALL_MODEL_RECIPE", "QUICK_RECIPE", "train_small_model", "load_or_train_small_model",
    "default_small_checkpoint", "load_small_checkpoint", "is_unfinished_small_checkpoint",
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


def _partial(path: Path) -> Path:
    """Where the epochs of an unfinished run of ``path`` are kept (resumable), never read as a model."""
    return path.with_name(path.name + ".partial")


def _is_complete(state: Dict[str, Any]) -> bool:
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
    return state is not None and "recipe" in (state.get("extra") or {}) and not _is_complete(state)


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
    if (extra.get("recipe") == _plain(recipe) and extra.get("seed") == seed
            and extra.get("generator_version") == GENERATOR_VERSION):
        return state
    warnings.warn(f"{path} was trained with another recipe, seed or generator; retraining")
    path.unlink()
    return None


def _finish(path: Path) -> None:
    """Write the finished run to ``path`` atomically, marked complete, and drop its partial file."""
    partial = _partial(path)
    state = load_checkpoint(partial if partial.is_file() else path)
    state["extra"] = {**state["extra"], "complete": True}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    if partial.is_file():
        partial.unlink()


def _small_from(state: Dict[str, Any], source: str) -> Small3DCNN:
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
    extra = {"model": "Small3DCNN", "model_kwargs": _plain(model_kwargs),
             "classes": list(train_set.classes), "recipe": _plain(recipe), "seed": seed,
             "generator_version": GENERATOR_VERSION, "complete": False}
    resume = False
    if path is not None:  # drops checkpoints of another recipe; resumes the unfinished run, else the file
        _matching_checkpoint(path, recipe, seed)
        _matching_checkpoint(_partial(path), recipe, seed)
        resume = next((f for f in (_partial(path), path) if f.is_file()), False)
    history = train(model, train_set, test_set, cfg, checkpoint=None if path is None else _partial(path),
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
    if state is not None and _is_complete(state):
        return _small_from(state, f"checkpoint {path}").to(device).eval()
    if state is not None:
        message = (f"{path} holds an unfinished training run (epoch {state['epoch']} of {recipe['epochs']}: interrupted, "
                   "or written before finished runs were marked); retraining it to the end instead of using it")
        log(message, progress)
        warnings.warn(message)
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
    if (checkpoint is None or "recipe" in extra) and not _is_complete(state):
        raise Captum3DCamError(
            f"--checkpoint: {path} holds an unfinished training of the small model (epoch {state['epoch']}: "
            "interrupted, or written before finished runs were marked), not a model to use; run `captum-3dcam demo`"
            + (" to finish it" if checkpoint is None else f" --checkpoint {path} to finish it, or pass another --checkpoint"))
    model = _small_from(state, f"--checkpoint {path}")
    model.labels = tuple(extra.get("classes") or [f"class {i}" for i in range(model.num_classes)])
    return model.eval()
