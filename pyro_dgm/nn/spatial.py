r"""A spatial transformer (Jaderberg et al. 2015) for writing glimpses to and reading them from a canvas.

AIR (Eslami et al. 2016; seed ``004``, "inference: counting and locating") places an object
with ``z_where = (s, x, y)``: the object's square glimpse covers the part of the canvas whose
normalized coordinates ``u`` in ``[-1, 1]^2`` satisfy ``u = s * v + (x, y)`` for glimpse
coordinates ``v`` in ``[-1, 1]^2``. So ``s`` is the glimpse's side as a fraction of the canvas
and ``(x, y)`` its centre (x to the right, y downwards).

- **read** (guide): glimpse pixel ``v`` samples the image at ``s * v + (x, y)``;
- **write** (model): canvas pixel ``u`` samples the glimpse at ``(u - (x, y)) / s``, the
  inverse transform, which divides by the scale: ``s`` is clamped to at least ``min_scale``.

Both use ``F.affine_grid`` / ``F.grid_sample`` with ``align_corners=False`` passed explicitly
(pixel centres at ``(2i + 1) / size - 1``; the default changed in torch 1.3 and warns), and
zero padding outside the image. Any leading batch shape is accepted (flattened internally), so
the model code broadcasts over particle dimensions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ALIGN_CORNERS = False
MIN_SCALE = 0.05


def _theta(scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Affine matrices ``[[s, 0, x], [0, s, y]]`` of shape (B, 2, 3) from scale (B,) and shift (B, 2)."""
    zeros = torch.zeros_like(scale)
    row_x = torch.stack([scale, zeros, shift[:, 0]], -1)
    row_y = torch.stack([zeros, scale, shift[:, 1]], -1)
    return torch.stack([row_x, row_y], -2)


def _sample(images: torch.Tensor, theta: torch.Tensor, out_side: int) -> torch.Tensor:
    """Resample square ``images`` (B, side, side) on the grid ``theta`` of an ``out_side`` square."""
    batch = images.shape[0]
    grid = F.affine_grid(theta, [batch, 1, out_side, out_side], align_corners=ALIGN_CORNERS)
    out = F.grid_sample(images.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros",
                        align_corners=ALIGN_CORNERS)
    return out.squeeze(1)


def write_glimpse(glimpse: torch.Tensor, z_where: torch.Tensor, canvas_side: int,
                  min_scale: float = MIN_SCALE) -> torch.Tensor:
    """Write square glimpses (..., g, g) onto empty canvases (..., C, C) at ``z_where`` (..., 3).

    Uses the inverse transform ``u -> (u - shift) / s``, with ``s`` clamped to ``>= min_scale``.
    """
    batch_shape = z_where.shape[:-1]
    glimpse = glimpse.expand(*batch_shape, *glimpse.shape[-2:]).reshape(-1, *glimpse.shape[-2:])
    z_where = z_where.reshape(-1, 3)
    scale = z_where[:, 0].clamp(min=min_scale)
    theta = _theta(1.0 / scale, -z_where[:, 1:] / scale.unsqueeze(-1))
    return _sample(glimpse, theta, canvas_side).reshape(*batch_shape, canvas_side, canvas_side)


def read_glimpse(image: torch.Tensor, z_where: torch.Tensor, glimpse_side: int,
                 min_scale: float = MIN_SCALE) -> torch.Tensor:
    """Read square glimpses (..., g, g) from images (..., C, C) at ``z_where`` (..., 3)."""
    batch_shape = z_where.shape[:-1]
    image = image.expand(*batch_shape, *image.shape[-2:]).reshape(-1, *image.shape[-2:])
    z_where = z_where.reshape(-1, 3)
    theta = _theta(z_where[:, 0].clamp(min=min_scale), z_where[:, 1:])
    return _sample(image, theta, glimpse_side).reshape(*batch_shape, glimpse_side, glimpse_side)


def box_from_where(z_where: torch.Tensor, canvas_side: int) -> torch.Tensor:
    """The pixel box ``(left, top, width, height)`` (..., 4) covered by glimpses at ``z_where``."""
    scale, x, y = z_where.unbind(-1)
    side = scale * canvas_side
    left = (x + 1) * canvas_side / 2 - side / 2
    top = (y + 1) * canvas_side / 2 - side / 2
    return torch.stack([left, top, side, side], -1)


def where_from_box(box: torch.Tensor, canvas_side: int) -> torch.Tensor:
    """Inverse of :func:`box_from_where` for square boxes: ``z_where`` (..., 3) from (..., 4)."""
    left, top, width, _ = box.unbind(-1)
    scale = width / canvas_side
    x = 2 * (left + width / 2) / canvas_side - 1
    y = 2 * (top + width / 2) / canvas_side - 1
    return torch.stack([scale, x, y], -1)
