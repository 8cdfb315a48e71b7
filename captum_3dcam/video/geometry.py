"""Where a clip at model resolution sits in the original video: :class:`ClipGeometry`.

Lives here: :class:`ClipGeometry` (the original frame size, the short-side resize, the crop box, the
original index of each clip frame) and its maps of boxes and maps between model-input pixels and the
original frame's pixels (:meth:`~ClipGeometry.boxes_to_frame`, :meth:`~ClipGeometry.boxes_from_frame`,
:meth:`~ClipGeometry.maps_to_frame`). Does not live here: making a clip and its geometry from
frames (:mod:`captum_3dcam.video.preprocess`), decoding (:mod:`captum_3dcam.video.io`).

Coordinates: pixel-edge convention (SPEC section 4): pixel column ``i`` spans ``[i, i + 1)``; a
box ``(x1, y1, x2, y2)`` covers ``x1 <= x < x2``. Resizing maps a pixel-edge coordinate ``u`` of
the original frame to ``u * resized_w / W``; cropping subtracts the crop's offset. A clip of the
whole frame (``preprocess_*(..., crop=False)``) has ``crop_box = (0, 0, W_r, H_r)``: nothing is
outside it.
"""
from dataclasses import dataclass
from typing import Tuple, Union

import math

import torch
import torch.nn.functional as F

from .._utils import checked_boxes, compute_dtype

__all__ = ["ClipGeometry"]


@dataclass(frozen=True)
class ClipGeometry:
    """How a clip at model resolution sits in the original video.

    Attributes:
        frame_size: original ``(H, W)``.
        resized_size: ``(H_r, W_r)`` after the short-side resize.
        crop_box: ``(x1, y1, x2, y2)`` of the centre crop in resized pixels (pixel edges);
            ``(0, 0, W_r, H_r)`` for a clip of the whole frame (``crop=False``).
        frame_indices: the original frame index of each clip frame (a ``range`` of length ``T``).

    A model-resolution pixel-edge coordinate ``(u, v)`` maps to the original frame's
    ``x = (u + crop_x1) * W / W_r``, ``y = (v + crop_y1) * H / H_r``.
    """

    frame_size: Tuple[int, int]
    resized_size: Tuple[int, int]
    crop_box: Tuple[int, int, int, int]
    frame_indices: range

    @property
    def crop_size(self) -> Tuple[int, int]:
        """``(h, w)`` of the model input."""
        x1, y1, x2, y2 = self.crop_box
        return (y2 - y1, x2 - x1)

    def _scale(self, device, dtype) -> torch.Tensor:
        (h, w), (hr, wr) = self.frame_size, self.resized_size
        return torch.tensor([w / wr, h / hr, w / wr, h / hr], device=device, dtype=dtype)

    def boxes_to_frame(self, boxes: torch.Tensor) -> torch.Tensor:
        """Boxes at model resolution -> original frame pixels.

        Args:
            boxes: ``(..., 4)`` ``(x1, y1, x2, y2)`` in model-input pixel-edge coordinates;
                NaN rows (no box) stay NaN.

        Shape:
            ``(..., 4) -> (..., 4)``, float32 (float64 for float64 boxes; half precision would
            round frame coordinates above 2048).
        """
        boxes = _as_boxes(boxes)
        x1, y1, _, _ = self.crop_box
        offset = torch.tensor([x1, y1, x1, y1], device=boxes.device, dtype=boxes.dtype)
        return (boxes + offset) * self._scale(boxes.device, boxes.dtype)

    def boxes_from_frame(self, boxes: torch.Tensor) -> torch.Tensor:
        """Original-frame boxes (e.g. ground truth) -> model-input coordinates, clipped to the crop.

        A box entirely outside the crop collapses to zero width or height. NaN rows stay NaN.

        Shape:
            ``(..., 4) -> (..., 4)``, float32 (float64 for float64 boxes).
        """
        boxes = _as_boxes(boxes)
        x1, y1, _, _ = self.crop_box
        h, w = self.crop_size
        offset = torch.tensor([x1, y1, x1, y1], device=boxes.device, dtype=boxes.dtype)
        out = boxes / self._scale(boxes.device, boxes.dtype) - offset
        upper = torch.tensor([w, h, w, h], device=boxes.device, dtype=boxes.dtype)
        return torch.minimum(torch.clamp(out, min=0), upper)  # NaN propagates through both

    def maps_to_frame(self, maps: torch.Tensor, outside: Union[float, str] = "min") -> torch.Tensor:
        """Maps at model resolution -> original frame pixels, each frame's minimum outside the crop.

        Each original pixel centre ``x + 0.5`` is mapped into the crop and the map is sampled
        there bilinearly (edge values held up to the crop border); pixels whose centre falls
        outside the crop get ``outside`` (a clip of the whole frame has no such pixel: its map
        covers every pixel of the frame). Maps of another spatial size than the crop are first
        treated as covering the crop exactly. Time is unchanged (see :attr:`frame_indices`).

        Args:
            maps: ``(N, 1, T, h, w)`` or ``(N, T, h, w)``, on any device; sampled in float32 when
                in half precision and returned in their own dtype (float32 for integer maps).
            outside: the value of the pixels the model never saw: ``"min"`` (the default: each
                frame's minimum, so that every box threshold, relative to the maximum or to the
                range as ``attribution_to_boxes(..., relative_to="range")``, sees exactly the
                values of the crop and gives the boxes it gives at model resolution), or a number
                (e.g. ``0.0`` for pictures).

        Shape:
            ``(N, 1, T, h, w) -> (N, 1, T, H, W)``; ``(N, T, h, w) -> (N, T, H, W)``.
        """
        if not isinstance(maps, torch.Tensor):
            raise TypeError(f"maps: expected a torch.Tensor, got {type(maps).__name__}")
        if maps.dim() not in (4, 5) or (maps.dim() == 5 and maps.shape[1] != 1):
            raise ValueError(f"maps: expected (N, 1, T, h, w) or (N, T, h, w), got {tuple(maps.shape)}")
        lead = maps.shape[:-2]
        out_dtype = maps.dtype if maps.is_floating_point() else torch.float32
        flat = maps.reshape(-1, 1, *maps.shape[-2:])
        flat = flat.to(compute_dtype(flat.dtype))  # half-precision pixel coordinates are off by 2 above 2048
        (h, w), (hr, wr) = self.frame_size, self.resized_size
        cx1, cy1, cx2, cy2 = self.crop_box
        dev, dt = flat.device, flat.dtype
        # pixel centres of the original frame, in resized pixels, then normalized to the crop [-1, 1]
        xs = ((torch.arange(w, device=dev, dtype=dt) + 0.5) * (wr / w) - cx1) / (cx2 - cx1) * 2 - 1
        ys = ((torch.arange(h, device=dev, dtype=dt) + 0.5) * (hr / h) - cy1) / (cy2 - cy1) * 2 - 1
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], dim=-1)  # (H, W, 2) as (x, y)
        grid = grid.unsqueeze(0).expand(flat.shape[0], h, w, 2)
        sampled = F.grid_sample(flat, grid, mode="bilinear", padding_mode="border", align_corners=False)
        inside = (xs.abs() <= 1)[None, :] & (ys.abs() <= 1)[:, None]
        if isinstance(outside, str):
            if outside != "min":
                raise ValueError(f"outside: expected a number or 'min', got {outside!r}")
            fill = flat.amin(dim=(-2, -1), keepdim=True) if flat.numel() else flat.new_zeros(())
        elif isinstance(outside, (int, float)) and not isinstance(outside, bool) and math.isfinite(outside):
            fill = torch.full((), float(outside), dtype=dt, device=dev)
        else:
            raise (ValueError if isinstance(outside, float) else TypeError)(
                f"outside: expected a finite number or 'min', got {type(outside).__name__} {outside!r:.40}")
        return torch.where(inside, sampled, fill).reshape(*lead, h, w).to(out_dtype)


def _as_boxes(boxes) -> torch.Tensor:
    """Checked boxes in float32 (float64 stays float64): the frame's pixel coordinates."""
    checked_boxes(boxes, "boxes")
    return boxes.to(compute_dtype(boxes.dtype))
