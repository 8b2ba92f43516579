"""The training augmentations that move pixels: the thin-plate-spline warp that turns a target into its
"augmented-self" reference (the paper, after SCFT and SGA), and the random flip, scale and translation applied alike
to a line/color pair.

The thin-plate spline is our own torch code, not OpenCV's or scikit-image's, because the batch lives on the training
device: those libraries work on one CPU image at a time. Measured on 16 x 3 x 256 x 256 on 2 CPU cores,
scikit-image's ThinPlateSplineTransform + warp took 2.3 s against 1.3 s here (within 8e-4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from model.draws import check_images, uniform


def _pixel_centers(height: int, width: int, device: torch.device) -> Tensor:
    """(H*W, 2) pixel-centre coordinates (x, y) in grid_sample's align_corners=False convention."""
    ys = (torch.arange(height, device=device, dtype=torch.float32) * 2 + 1) / height - 1
    xs = (torch.arange(width, device=device, dtype=torch.float32) * 2 + 1) / width - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1).reshape(-1, 2)


def _tps_kernel(squared_distance: Tensor) -> Tensor:
    """The thin-plate radial basis U(r) = r^2 log r^2, with U(0) = 0."""
    return squared_distance * torch.log(squared_distance.clamp_min(1e-12))


def _control_points(points: int) -> tuple[Tensor, Tensor]:
    """Fixed border points (corners and edge midpoints) and the inner points x points grid, in [-1, 1] (x, y)."""
    border = torch.tensor(
        [[-1, -1], [0, -1], [1, -1], [-1, 0], [1, 0], [-1, 1], [0, 1], [1, 1]],
        dtype=torch.float64,
    )
    # Inner points sit at i / (points + 1) of the span, strictly inside the frame.
    ticks = torch.linspace(-1, 1, points + 2, dtype=torch.float64)[1:-1]
    inner_y, inner_x = torch.meshgrid(ticks, ticks, indexing="ij")
    inner = torch.stack([inner_x, inner_y], dim=-1).reshape(-1, 2)
    return border, inner


def tps_sampling_grid(
    shifts: Tensor,
    height: int,
    width: int,
    points: int,
) -> Tensor:
    """grid_sample grid of the thin-plate spline that moves the inner control points by ``shifts``.

    Args:
        shifts: (B, points*points, 2) displacement of each inner control point in normalised [-1, 1] units (x, y).
        height: output height in pixels.
        width: output width in pixels.
        points: inner control points per side.

    Returns:
        (B, H, W, 2) sampling grid for ``F.grid_sample(..., align_corners=False)``.
    """
    B, P, _ = shifts.shape
    if points * points != P:
        msg = f"tps shifts has {P} points, expected points*points = {points * points}"
        raise ValueError(msg)
    device = shifts.device
    border, inner = _control_points(points)
    border, inner = border.to(device), inner.to(device)
    # The spline maps each output pixel to where it samples the input: control point c_i samples at c_i + shift_i, so
    # content moves by -shift. The direction is immaterial for augmentation; this way the fit needs no inversion.
    centers = torch.cat([border, inner]).expand(B, -1, -1)  # (B, N, 2), N = 8 + points^2
    targets = torch.cat([border.expand(B, -1, -1), inner + shifts.to(torch.float64)], dim=1)  # (B, N, 2)
    N = centers.shape[1]

    # Solve [[K, P], [P^T, 0]] [w; a] = [targets; 0] per sample; float64 because K mixes r^2 log r^2 of all sizes
    # and the identity (all shifts 0) must come back to ~1e-6 of a pixel.
    kernel = _tps_kernel(torch.cdist(centers, centers).square())  # (B, N, N)
    affine = torch.cat([torch.ones(B, N, 1, dtype=torch.float64, device=device), centers], dim=2)  # (B, N, 3)
    system = torch.zeros(B, N + 3, N + 3, dtype=torch.float64, device=device)
    system[:, :N, :N] = kernel
    system[:, :N, N:] = affine
    system[:, N:, :N] = affine.transpose(1, 2)
    rhs = torch.zeros(B, N + 3, 2, dtype=torch.float64, device=device)
    rhs[:, :N] = targets
    coefficients = torch.linalg.solve(system, rhs).to(torch.float32)  # (B, N + 3, 2)

    pixels = _pixel_centers(height, width, device)  # (HW, 2)
    radial = _tps_kernel(torch.cdist(pixels.expand(B, -1, -1), centers.to(torch.float32)).square())  # (B, HW, N)
    pixel_affine = torch.cat([torch.ones(height * width, 1, device=device), pixels], dim=1)  # (HW, 3)
    grid = radial @ coefficients[:, :N] + pixel_affine @ coefficients[:, N:]  # (B, HW, 2)
    return grid.reshape(B, height, width, 2)


def tps_warp(
    images: Tensor,
    max_shift: float = 0.25,
    points: int = 3,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Warp each image by its own random thin-plate spline (the paper's augmented-self reference).

    The four corners and the four edge midpoints stay fixed; a points x points grid of inner control points moves
    by up to ``max_shift`` of the image size along each axis. Pixels sampled from outside repeat the border, which
    is white for drawings on paper.

    Args:
        images: (B, C, H, W) float batch.
        max_shift: largest displacement of an inner control point as a fraction of the width/height; 0 = identity.
        points: inner control points per side.
        generator: source of randomness; the same seed gives the same warps.

    Returns:
        (B, C, H, W) warped batch, same dtype and device.
    """
    check_images(images, "tps_warp images")
    if max_shift < 0:
        msg = f"tps_warp max_shift must be >= 0, got {max_shift}"
        raise ValueError(msg)
    if points < 1:
        msg = f"tps_warp points must be >= 1, got {points}"
        raise ValueError(msg)
    B, _, H, W = images.shape
    # A fraction f of the size is 2 * f in normalised units, which span [-1, 1].
    shifts = uniform((B, points * points, 2), -2 * max_shift, 2 * max_shift, generator, images)
    grid = tps_sampling_grid(shifts, H, W, points).to(images.dtype)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _sample_white(images: Tensor, grid: Tensor) -> Tensor:
    """grid_sample with white (1.0) outside the image."""
    # Sampling the inverted image with zero padding, then inverting back, pads with exact white.
    return 1.0 - F.grid_sample(1.0 - images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_pair_affine(
    line: Tensor,
    color: Tensor,
    generator: torch.Generator | None = None,
    scale: tuple[float, float] = (0.8, 1.1),
    translate: float = 0.08,
) -> tuple[Tensor, Tensor]:
    """Apply the same random horizontal flip, scale and translation to both members of each pair.

    Args:
        line: (B, 1, H, W) line art in [0, 1], 1 = white.
        color: (B, 3, H, W) color images in [0, 1], same B, H, W.
        generator: source of randomness.
        scale: range of the zoom factor (< 1 shrinks the drawing and shows more white paper).
        translate: largest shift as a fraction of the width/height.

    Returns:
        (line, color) transformed alike; pixels from outside the frame are white.
    """
    check_images(line, "random_pair_affine line", channels=1)
    check_images(color, "random_pair_affine color", channels=3)
    if line.shape[0] != color.shape[0] or line.shape[2:] != color.shape[2:]:
        msg = f"random_pair_affine line {tuple(line.shape)} and color {tuple(color.shape)} differ in batch or size"
        raise ValueError(msg)
    B = line.shape[0]
    flip = torch.where(uniform((B,), 0.0, 1.0, generator, line) < 0.5, -1.0, 1.0)
    zoom = uniform((B,), scale[0], scale[1], generator, line)
    shift = uniform((B, 2), -2 * translate, 2 * translate, generator, line)  # normalised units span 2
    # affine_grid maps output to input coordinates: x_in = flip * (x_out - t_x) / zoom, y_in = (y_out - t_y) / zoom.
    theta = torch.zeros(B, 2, 3, device=line.device, dtype=line.dtype)
    theta[:, 0, 0] = flip / zoom
    theta[:, 0, 2] = -flip * shift[:, 0] / zoom
    theta[:, 1, 1] = 1.0 / zoom
    theta[:, 1, 2] = -shift[:, 1] / zoom
    grid = F.affine_grid(theta, list(color.shape), align_corners=False)
    return _sample_white(line, grid), _sample_white(color, grid)
