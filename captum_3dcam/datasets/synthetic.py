"""SyntheticActions: procedurally generated action clips whose class is the actor's motion.

Every video shows one *actor* and several *distractors* on a textured, noisy background. All
objects are drawn from the same appearance distribution (textured ellipses of random colour,
size and aspect), so no single frame tells the actor from a distractor nor the class: only the
actor's motion over time defines the label. Distractors move too (a smooth random wobble whose
amplitude is a difficulty knob), so "the moving object" is not a shortcut either at the harder
settings.

Motions (the actor's trajectory; ``t`` is the frame index in the video of ``L`` frames, ``v`` a
speed in pixels per frame, ``f`` a frequency in cycles per frame, ``A`` an amplitude in pixels,
``phi`` a random phase). The default classes are the first five:

    move_right/left:   (dx, dy) = (+-v (t - L/2), 0)      the actor crosses the frame
    move_up/down:      (dx, dy) = (0, -+v (t - L/2))
    pulse:             position fixed, radii scaled by 1 + s sin(2 pi f t + phi)
    swing_horizontal:  (dx, dy) = (A sin(2 pi f t + phi), 0)
    swing_vertical:    (dx, dy) = (0, A sin(2 pi f t + phi))
    swing_diagonal:    (dx, dy) = (A sin(.) / sqrt 2) * (1, +-1)
    circle:            (dx, dy) = (A sin(.), +-A cos(.))

Boxes are exact: the actor's silhouette is the set of pixels whose centre lies inside its
ellipse, and the box is that set's extent in pixel-edge coordinates ``(x1, y1, x2, y2)`` (a box
covering pixel columns ``i..j`` has ``x1 = i, x2 = j + 1``), the whole silhouette even where a
distractor occludes part of it. Generation is seeded per video and per clip, so an item is the
same whatever the order of access, and costs a few milliseconds on a CPU.

Lives here: :class:`SyntheticActions`, its classes and rendering. Does not live here: the
difficulty knobs and presets (:mod:`.synthetic_difficulty`, re-exported here).
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from .._utils import mask_to_boxes
from ..video.preprocess import SYNTHETIC_MEAN, SYNTHETIC_STD
from .synthetic_difficulty import DIFFICULTIES, SyntheticDifficulty, resolve_difficulty

__all__ = ["SyntheticActions", "SyntheticDifficulty", "SYNTHETIC_CLASSES", "MOTIONS", "DIFFICULTIES"]

#: Every motion the actor can perform; a dataset's classes are a selection of these.
MOTIONS: Tuple[str, ...] = (
    "move_right",
    "move_left",
    "move_up",
    "move_down",
    "pulse",
    "swing_horizontal",
    "swing_vertical",
    "swing_diagonal",
    "circle",
)

#: The default classes (the first five motions).
SYNTHETIC_CLASSES: Tuple[str, ...] = MOTIONS[:5]

_SPLITS = {"train": 0, "test": 1, "val": 2}

#: Bumped whenever the same arguments start producing different clips (checkpoints trained on an
#: older generator are then retrained by ``load_or_train_small_model``).
GENERATOR_VERSION = 2

#: Intensity mapping of the clips: ``clip = (rgb - MEAN) / STD`` with ``rgb`` in ``[0, 1]``.
MEAN, STD = SYNTHETIC_MEAN, SYNTHETIC_STD


class SyntheticActions(Dataset):
    """Seeded synthetic action clips: the class is the actor's motion, never its appearance.

    Item ``i`` is clip ``i % clips_per_video`` of video ``i // clips_per_video``; the clips of a
    video are consecutive, non-overlapping windows of one continuous motion. The label of video
    ``v`` is ``v % num_classes`` (balanced classes). ``split`` selects an independent stream of
    videos, so ``"train"`` and ``"test"`` never share one.

    Args:
        num_videos: number of generated videos.
        split: ``"train"``, ``"val"`` or ``"test"``.
        seed: base seed; the same arguments always give the same items.
        difficulty: ``"easy"`` (default), ``"medium"``, ``"hard"`` or a
            :class:`SyntheticDifficulty`; keyword overrides (``noise_std=0.1``,
            ``clip_len=8``, ...) replace single knobs.
        clips_per_video: clips cut from each video (for video-wise accuracy).
        size: frame ``(H, W)``.
        classes: the motions used as classes, in label order (default
            :data:`SYNTHETIC_CLASSES`; any of :data:`MOTIONS`).
        num_classes: keep only the first ``num_classes`` of ``classes``.
        cache: keep every generated item in memory (``3 * T * H * W * 4`` bytes per clip, 786 kB
            at the default size), so that later epochs do not render again.

    Attributes:
        classes: class names, index = label.
        video_ids: video index of every item (``len(dataset)`` entries).
        config: the resolved :class:`SyntheticDifficulty`.

    Shape:
        item ``(clip, boxes, label)``: ``clip`` float32 ``(3, T, H, W)`` equal to
        ``(rgb - 0.5) / 0.25``; ``boxes`` float32 ``(T, 4)`` ``(x1, y1, x2, y2)`` in pixel-edge
        coordinates, ``0 <= x1 < x2 <= W``; ``label`` int.

    Example:
        >>> ds = SyntheticActions(num_videos=10, seed=0)
        >>> clip, boxes, label = ds[0]
        >>> clip.shape, boxes.shape, ds.classes[label]
        (torch.Size([3, 16, 64, 64]), torch.Size([16, 4]), 'move_right')
    """

    mean = MEAN
    std = STD

    def __init__(
        self,
        num_videos: int = 500,
        split: str = "train",
        *,
        seed: int = 0,
        difficulty: Union[str, SyntheticDifficulty] = "easy",
        clips_per_video: int = 1,
        size: Tuple[int, int] = (64, 64),
        num_classes: Optional[int] = None,
        classes: Optional[Sequence[str]] = None,
        cache: bool = False,
        **overrides,
    ) -> None:
        if not isinstance(num_videos, int) or num_videos < 1:
            raise ValueError(f"num_videos: expected a positive int, got {num_videos!r}")
        if split not in _SPLITS:
            raise ValueError(f"split: expected one of {sorted(_SPLITS)}, got {split!r}")
        if not isinstance(clips_per_video, int) or clips_per_video < 1:
            raise ValueError(f"clips_per_video: expected a positive int, got {clips_per_video!r}")
        classes = list(SYNTHETIC_CLASSES if classes is None else classes)
        unknown = [c for c in classes if c not in MOTIONS]
        if unknown or len(set(classes)) != len(classes):
            raise ValueError(f"classes: expected distinct names from {MOTIONS}, got {classes}")
        if num_classes is None:
            num_classes = len(classes)
        if not isinstance(num_classes, int) or not 2 <= num_classes <= len(classes):
            raise ValueError(
                f"num_classes: expected an int in 2..{len(classes)}, got {num_classes!r}"
            )
        if len(tuple(size)) != 2 or min(size) < 16:
            raise ValueError(f"size: expected (H, W) with both >= 16, got {size!r}")
        self.num_videos = num_videos
        self.split = split
        self.seed = int(seed)
        self.clips_per_video = clips_per_video
        self.size = (int(size[0]), int(size[1]))
        self.num_classes = num_classes
        self.config = resolve_difficulty(difficulty, overrides)
        self.classes: List[str] = classes[:num_classes]
        self.video_ids: List[int] = [i // clips_per_video for i in range(len(self))]
        self.labels: List[int] = [v % num_classes for v in self.video_ids]
        self._cache = {} if cache else None

    def __len__(self) -> int:
        return self.num_videos * self.clips_per_video

    def video_id(self, index: int) -> int:
        """Video index of item ``index``."""
        return self._check_index(index) // self.clips_per_video

    def _check_index(self, index: int) -> int:
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"index: expected an int, got {type(index).__name__}")
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} items")
        return int(index)

    def __getitem__(self, index: int):
        index = self._check_index(index)
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        video, clip = divmod(index, self.clips_per_video)
        scene = self._scene(video)
        t0 = scene["t0"] + clip * self.config.clip_len
        times = np.arange(t0, t0 + self.config.clip_len, dtype=np.float32)
        rng = np.random.default_rng(self._seed_for(video, clip + 1))
        rgb, boxes = self._render(scene, times, rng)
        clip_t = torch.from_numpy((rgb - np.float32(MEAN)) / np.float32(STD))
        item = (clip_t, torch.from_numpy(boxes), scene["label"])
        if self._cache is not None:
            self._cache[index] = item
        return item

    @staticmethod
    def to_rgb(clip: torch.Tensor) -> torch.Tensor:
        """Undo the normalization: ``(..., 3, T, H, W)`` clip -> RGB in ``[0, 1]`` (clamped).

        Shape:
            ``(3, T, H, W)`` normalized -> ``(T, H, W, 3)`` uint8
        """
        return (clip * STD + MEAN).clamp(0.0, 1.0)

    # -- generation ------------------------------------------------------------------------

    def _seed_for(self, video: int, stream: int) -> int:
        seq = np.random.SeedSequence([self.seed, _SPLITS[self.split], video, stream])
        return int(seq.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))

    def _scene(self, video: int) -> dict:
        """Per-video parameters (appearance, placement, motion) from the video's own seed."""
        cfg = self.config
        rng = np.random.default_rng(self._seed_for(video, 0))
        h, w = self.size
        short = min(h, w)
        label = video % self.num_classes
        n_obj = 1 + int(rng.integers(cfg.num_distractors[0], cfg.num_distractors[1] + 1))

        def u(lo_hi, n=None):
            return rng.uniform(lo_hi[0], lo_hi[1], size=n)

        radius = u(cfg.radius, n_obj) * short
        aspect = rng.uniform(0.75, 1.33, size=n_obj)
        rx, ry = radius * np.sqrt(aspect), radius / np.sqrt(aspect)
        color = rng.uniform(0.05, 0.95, size=(n_obj, 3))
        tex_freq = rng.uniform(0.5, 1.2, size=n_obj)
        tex_angle = rng.uniform(0, math.pi, size=n_obj)
        tex_phase = rng.uniform(0, 2 * math.pi, size=n_obj)
        # motion: per object, per axis, two sinusoids (amp, freq, phase); plus a size wobble
        amp = np.zeros((n_obj, 2, 2))
        freq = u(cfg.frequency, (n_obj, 2, 2))
        phase = rng.uniform(0, 2 * math.pi, size=(n_obj, 2, 2))
        scale_amp = np.zeros(n_obj)
        scale_freq = u(cfg.frequency, n_obj)
        scale_phase = rng.uniform(0, 2 * math.pi, size=n_obj)
        for k in range(1, n_obj):  # distractors: smooth random wobble, split over 2 sinusoids
            total = u(cfg.distractor_motion, 2) * short
            split = rng.uniform(0.3, 0.7, size=2)
            amp[k, :, 0], amp[k, :, 1] = total * split, total * (1 - split)
            scale_amp[k] = u(cfg.distractor_pulse)
        # the actor (object 0): a straight crossing, or one sinusoid whose axes the class decides
        vel = np.zeros((n_obj, 2))
        length = self.clips_per_video * cfg.clip_len
        a = u(cfg.amplitude) * short
        f = u(cfg.frequency)
        ph = rng.uniform(0, 2 * math.pi)
        sign = rng.choice([-1.0, 1.0])
        name = self.classes[label]
        freq[0, :, 0], phase[0, :, 0] = f, ph
        if name.startswith("move_"):
            axis = 0 if name in ("move_right", "move_left") else 1
            room = (w, h)[axis] - 2 * (rx[0], ry[0])[axis] - 2  # the path must stay in the frame
            speed = min(u(cfg.speed) * short, max(room, 0) / max(length - 1, 1))
            vel[0, axis] = speed if name in ("move_right", "move_down") else -speed
        elif name == "swing_horizontal":
            amp[0, 0, 0] = a
        elif name == "swing_vertical":
            amp[0, 1, 0] = a
        elif name == "swing_diagonal":
            amp[0, :, 0] = a / math.sqrt(2)
            phase[0, 1, 0] = ph if sign > 0 else ph + math.pi
        elif name == "circle":
            amp[0, :, 0] = a
            phase[0, 1, 0] = ph + sign * math.pi / 2
        else:  # pulse
            scale_amp[0] = u(cfg.pulse)
            scale_freq[0], scale_phase[0] = f, ph
        # centres: keep each object's full excursion inside the frame
        half = (length - 1) / 2
        reach_x = amp[:, 0].sum(-1) + np.abs(vel[:, 0]) * half + rx * (1 + scale_amp) + 1
        reach_y = amp[:, 1].sum(-1) + np.abs(vel[:, 1]) * half + ry * (1 + scale_amp) + 1
        cx = rng.uniform(np.minimum(reach_x, w / 2), np.maximum(w - reach_x, w / 2))
        cy = rng.uniform(np.minimum(reach_y, h / 2), np.maximum(h - reach_y, h / 2))
        order = rng.permutation(n_obj)  # random z-order: the actor is not always on top
        bg = rng.uniform(-1, 1, size=(3, 6, 6)) * cfg.background_contrast + 0.5
        t0 = 0
        f32 = lambda x: np.asarray(x, dtype=np.float32)  # noqa: E731
        return dict(
            label=label, t0=t0, order=order.tolist(),
            cx=f32(cx), cy=f32(cy), rx=f32(rx), ry=f32(ry), color=f32(color),
            tex_freq=f32(tex_freq), tex_angle=f32(tex_angle), tex_phase=f32(tex_phase),
            amp=f32(amp), freq=f32(freq), phase=f32(phase), vel=f32(vel), half=np.float32(half),
            scale_amp=f32(scale_amp), scale_freq=f32(scale_freq), scale_phase=f32(scale_phase),
            bg=f32(bg),
        )

    def _render(self, s: dict, times: np.ndarray, rng: np.random.Generator):
        """Render frames at ``times``: RGB ``(3, T, H, W)`` in ~[0, 1] and boxes ``(T, 4)``.

        Plain numpy (single-threaded): a few milliseconds per clip even on a busy CPU.
        """
        cfg = self.config
        h, w = self.size
        n_t = times.size
        tau = np.float32(2 * math.pi)
        # trajectories (K, T)
        arg = tau * s["freq"][..., None] * times + s["phase"][..., None]  # (K, 2, 2, T)
        offset = (s["amp"][..., None] * np.sin(arg)).sum(2)  # (K, 2, T)
        offset = offset + s["vel"][..., None] * (times - s["half"])
        cx = s["cx"][:, None] + offset[:, 0]
        cy = s["cy"][:, None] + offset[:, 1]
        scale = 1 + s["scale_amp"][:, None] * np.sin(
            tau * s["scale_freq"][:, None] * times + s["scale_phase"][:, None])
        rx = (s["rx"][:, None] * scale)[..., None, None]  # (K, T, 1, 1)
        ry = (s["ry"][:, None] * scale)[..., None, None]
        xs = np.arange(w, dtype=np.float32) + np.float32(0.5)  # pixel centres
        ys = np.arange(h, dtype=np.float32) + np.float32(0.5)
        dx = xs[None, None, None, :] - cx[..., None, None]  # (K, T, 1, W)
        dy = ys[None, None, :, None] - cy[..., None, None]  # (K, T, H, 1)
        rho = np.sqrt((dx / rx) ** 2 + (dy / ry) ** 2)  # (K, T, H, W)
        # antialiased alpha: 1 inside, 0 outside, a one-pixel ramp across the ellipse's edge
        alpha = np.clip((1 - rho) * np.minimum(rx, ry) + np.float32(0.5), 0, 1)
        ang = s["tex_angle"][:, None, None, None]
        stripes = np.sin(s["tex_freq"][:, None, None, None]
                         * (dx * np.cos(ang) + dy * np.sin(ang))
                         + s["tex_phase"][:, None, None, None])
        shade = 1 + np.float32(cfg.texture) * stripes  # (K, T, H, W)
        frames = np.broadcast_to(_upsample_grid(s["bg"], h, w)[:, None], (3, n_t, h, w)).copy()
        for k in s["order"]:
            obj = s["color"][k][:, None, None, None] * shade[k][None]  # (3, T, H, W)
            frames += alpha[k][None] * (obj - frames)
        if cfg.noise_std > 0:
            frames += np.float32(cfg.noise_std) * rng.standard_normal(frames.shape, dtype=np.float32)
        return frames.astype(np.float32), mask_to_boxes(torch.from_numpy(rho[0] <= 1.0)).numpy().astype(np.float32)


def _upsample_grid(grid: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear upsampling (pixel-centre aligned) of a ``(C, g, g)`` grid to ``(C, h, w)``."""
    def weights(n_out, n_in):
        pos = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
        pos = np.clip(pos, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        frac = pos - lo
        m = np.zeros((n_out, n_in), dtype=np.float32)
        m[np.arange(n_out), lo] += 1 - frac
        m[np.arange(n_out), hi] += frac
        return m
    wy, wx = weights(h, grid.shape[1]), weights(w, grid.shape[2])
    return np.einsum("hi,cij,wj->chw", wy, grid, wx).astype(np.float32)
