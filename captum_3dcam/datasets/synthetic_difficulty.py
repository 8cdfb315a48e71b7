"""The difficulty knobs of :class:`~captum_3dcam.datasets.SyntheticActions` and their presets.

Lives here: :class:`SyntheticDifficulty` (generation parameters, lengths as fractions of the frame's
short side) and :data:`DIFFICULTIES` (``easy``, ``medium``, ``hard``). Does not live here: drawing
the clips (:mod:`captum_3dcam.datasets.synthetic`).
"""
from dataclasses import dataclass, fields, replace
from typing import Tuple

__all__ = ["SyntheticDifficulty", "DIFFICULTIES"]


@dataclass(frozen=True)
class SyntheticDifficulty:
    """Generation parameters of :class:`SyntheticActions` (the difficulty knobs).

    Lengths are fractions of the frame's short side, so a setting means the same at any
    resolution. Ranges are ``(low, high)`` and sampled uniformly per video.

    Args:
        clip_len: frames per clip ``T``.
        speed: ``move_*`` speed range (fraction of the short side per frame); capped per video so
            that the whole video's path stays in the frame.
        noise_std: std of the per-pixel, per-frame Gaussian noise (intensity units, ``[0, 1]``).
        num_distractors: ``(low, high)`` number of distractors per video, inclusive.
        amplitude: actor swing amplitude range (fraction of the short side).
        pulse: ``pulse`` class relative size change range ``s``.
        frequency: motion frequency range, cycles per frame (actor and distractors).
        distractor_motion: distractor wobble amplitude range (fraction of the short side); the
            wobble is a sum of two random sinusoids per axis, so large values resemble the
            actor's classes (the *overlap* knob).
        distractor_pulse: distractor relative size wobble range.
        radius: object radius range (fraction of the short side), the same for all objects.
        background_contrast: amplitude of the smooth background texture around grey.
        texture: amplitude of the stripes on the objects (relative to their colour).
    """

    clip_len: int = 16
    speed: Tuple[float, float] = (0.025, 0.04)
    noise_std: float = 0.03
    num_distractors: Tuple[int, int] = (2, 3)
    amplitude: Tuple[float, float] = (0.1, 0.18)
    pulse: Tuple[float, float] = (0.3, 0.45)
    frequency: Tuple[float, float] = (0.03, 0.06)
    distractor_motion: Tuple[float, float] = (0.0, 0.02)
    distractor_pulse: Tuple[float, float] = (0.0, 0.0)
    radius: Tuple[float, float] = (0.07, 0.11)
    background_contrast: float = 0.15
    texture: float = 0.25


#: Presets: ``easy`` (the default), ``medium`` and ``hard`` (noisier, more and moving
#: distractors, slower and overlapping motions; ``hard`` has 8-frame clips). Measured with
#: ``train_small_model(difficulty=...)`` (one thread, ~1-1.5 CPU minutes each), test clip
#: accuracy: easy 0.95, medium 0.44, hard 0.19 (chance 0.20).
DIFFICULTIES = {
    "easy": SyntheticDifficulty(),
    "medium": SyntheticDifficulty(
        speed=(0.015, 0.03),
        noise_std=0.08,
        num_distractors=(3, 4),
        amplitude=(0.08, 0.16),
        pulse=(0.2, 0.4),
        frequency=(0.04, 0.12),
        distractor_motion=(0.02, 0.06),
        distractor_pulse=(0.0, 0.1),
        background_contrast=0.25,
    ),
    "hard": SyntheticDifficulty(
        clip_len=8,
        speed=(0.008, 0.02),
        noise_std=0.15,
        num_distractors=(4, 6),
        amplitude=(0.05, 0.12),
        pulse=(0.12, 0.3),
        frequency=(0.03, 0.12),
        distractor_motion=(0.04, 0.10),
        distractor_pulse=(0.0, 0.2),
        background_contrast=0.35,
    ),
}


def resolve_difficulty(difficulty, overrides) -> SyntheticDifficulty:
    if isinstance(difficulty, str):
        if difficulty not in DIFFICULTIES:
            raise ValueError(
                f"difficulty: expected one of {sorted(DIFFICULTIES)} or a SyntheticDifficulty, "
                f"got {difficulty!r}"
            )
        base = DIFFICULTIES[difficulty]
    elif isinstance(difficulty, SyntheticDifficulty):
        base = difficulty
    else:
        raise TypeError(
            f"difficulty: expected a str or SyntheticDifficulty, got {type(difficulty).__name__}"
        )
    names = {f.name for f in fields(SyntheticDifficulty)}
    unknown = set(overrides) - names
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {sorted(unknown)}; knobs are {sorted(names)}")
    cfg = replace(base, **overrides)
    if not isinstance(cfg.clip_len, int) or cfg.clip_len < 1:
        raise ValueError(f"clip_len: expected a positive int, got {cfg.clip_len!r}")
    if cfg.noise_std < 0:
        raise ValueError(f"noise_std: expected >= 0, got {cfg.noise_std}")
    for name in ("speed", "num_distractors", "amplitude", "pulse", "frequency", "distractor_motion",
                 "distractor_pulse", "radius"):
        lo, hi = getattr(cfg, name)
        if lo > hi or lo < 0:
            raise ValueError(f"{name}: expected 0 <= low <= high, got {(lo, hi)}")
    if cfg.radius[0] <= 0:
        raise ValueError(f"radius: expected a positive range, got {cfg.radius}")
    return cfg
