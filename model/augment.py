"""Batched training augmentations in torch; they run on whatever device the images are on.

The paper (Cao et al., ICME 2023, after SCFT and SGA) trains on "augmented-self" references: the ground-truth color
image warped by a thin-plate spline is the reference, the unwarped image is the target, so the model has to find
each line-art region's color in a displaced reference instead of copying it pixel by pixel. Added here:
a hue/saturation shift applied to the pair before the reference is made (the colors of a pair differ from epoch to
epoch, so they must come from the reference, not be memorised from the line art) and a shared random flip, scale and
translation of each line/color pair.

Random numbers are always drawn on the generator's device (CPU by default) and moved to the images' device, so a
seeded CPU generator gives the same augmentation on CPU and GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


def _uniform(
    shape: tuple[int, ...],
    low: float,
    high: float,
    generator: torch.Generator | None,
    like: Tensor,
) -> Tensor:
    """Uniform samples in [low, high) drawn on the generator's device, returned in like's device and dtype."""
    device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(shape, generator=generator, device=device, dtype=torch.float32)
    return (low + (high - low) * u).to(device=like.device, dtype=like.dtype)


def _check_images(images: Tensor, name: str, channels: int | None = None) -> None:
    """Raise if images is not a floating (B, C, H, W) batch with the expected channel count."""
    if images.ndim != 4:
        msg = f"{name} must be a (B, C, H, W) batch, got shape {tuple(images.shape)}"
        raise ValueError(msg)
    if channels is not None and images.shape[1] != channels:
        msg = f"{name} must have {channels} channels, got shape {tuple(images.shape)}"
        raise ValueError(msg)
    if not images.is_floating_point():
        msg = f"{name} must be a floating-point tensor in [0, 1], got dtype {images.dtype}"
        raise ValueError(msg)


# ---------------------------------------------------------------------------------------------------------------------
# Thin-plate spline warp


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
    _check_images(images, "tps_warp images")
    if max_shift < 0:
        msg = f"tps_warp max_shift must be >= 0, got {max_shift}"
        raise ValueError(msg)
    if points < 1:
        msg = f"tps_warp points must be >= 1, got {points}"
        raise ValueError(msg)
    B, _, H, W = images.shape
    # A fraction f of the size is 2 * f in normalised units, which span [-1, 1].
    shifts = _uniform((B, points * points, 2), -2 * max_shift, 2 * max_shift, generator, images)
    grid = tps_sampling_grid(shifts, H, W, points).to(images.dtype)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


# ---------------------------------------------------------------------------------------------------------------------
# Color


def rgb_to_hsv(rgb: Tensor) -> Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> HSV with hue in [0, 1) turns, saturation and value in [0, 1]."""
    r, g, b = rgb.unbind(dim=1)
    value, argmax = rgb.max(dim=1)
    delta = value - rgb.min(dim=1).values
    safe_delta = torch.where(delta > 0, delta, torch.ones_like(delta))
    # Hue in sixths of a turn, measured from whichever channel is largest.
    hue = torch.where(
        argmax == 0,
        torch.remainder((g - b) / safe_delta, 6.0),
        torch.where(argmax == 1, (b - r) / safe_delta + 2.0, (r - g) / safe_delta + 4.0),
    )
    hue = torch.where(delta > 0, hue / 6.0, torch.zeros_like(hue))
    saturation = torch.where(value > 0, delta / torch.where(value > 0, value, torch.ones_like(value)), 0.0)
    return torch.stack([hue, saturation, value], dim=1)


def hsv_to_rgb(hsv: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_hsv`."""
    hue, saturation, value = hsv.unbind(dim=1)
    # Branch-free: channel = v - v*s*clamp(min(k, 4 - k), 0, 1), k = (n + 6h) mod 6 with n = 5, 3, 1 for R, G, B.
    n = torch.tensor([5.0, 3.0, 1.0], device=hsv.device, dtype=hsv.dtype).view(1, 3, 1, 1)
    k = torch.remainder(n + 6.0 * hue.unsqueeze(1), 6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)
    return value.unsqueeze(1) * (1.0 - saturation.unsqueeze(1) * ramp)


def hue_saturation_shift(images: Tensor, hue: Tensor, saturation: Tensor) -> Tensor:
    """Rotate each image's hue and scale its saturation; whites, greys and blacks are unchanged.

    Args:
        images: (B, 3, H, W) RGB batch in [0, 1].
        hue: (B,) hue rotation in turns (1.0 = a full turn = no change).
        saturation: (B,) saturation factor; the result is clamped to [0, 1].

    Returns:
        (B, 3, H, W) batch in [0, 1].
    """
    _check_images(images, "hue_saturation_shift images", channels=3)
    B = images.shape[0]
    for name, values in (("hue", hue), ("saturation", saturation)):
        if values.shape != (B,):
            msg = f"hue_saturation_shift {name} must have shape ({B},), got {tuple(values.shape)}"
            raise ValueError(msg)
    h, s, v = rgb_to_hsv(images.clamp(0.0, 1.0)).unbind(dim=1)
    hue = hue.to(device=images.device, dtype=images.dtype).view(B, 1, 1)
    saturation = saturation.to(device=images.device, dtype=images.dtype).view(B, 1, 1)
    h = torch.remainder(h + hue, 1.0)
    s = (s * saturation).clamp(0.0, 1.0)
    return hsv_to_rgb(torch.stack([h, s, v], dim=1))


# ---------------------------------------------------------------------------------------------------------------------
# Geometry shared by a pair


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
    _check_images(line, "random_pair_affine line", channels=1)
    _check_images(color, "random_pair_affine color", channels=3)
    if line.shape[0] != color.shape[0] or line.shape[2:] != color.shape[2:]:
        msg = f"random_pair_affine line {tuple(line.shape)} and color {tuple(color.shape)} differ in batch or size"
        raise ValueError(msg)
    B = line.shape[0]
    flip = torch.where(_uniform((B,), 0.0, 1.0, generator, line) < 0.5, -1.0, 1.0)
    zoom = _uniform((B,), scale[0], scale[1], generator, line)
    shift = _uniform((B, 2), -2 * translate, 2 * translate, generator, line)  # normalised units span 2
    # affine_grid maps output to input coordinates: x_in = flip * (x_out - t_x) / zoom, y_in = (y_out - t_y) / zoom.
    theta = torch.zeros(B, 2, 3, device=line.device, dtype=line.dtype)
    theta[:, 0, 0] = flip / zoom
    theta[:, 0, 2] = -flip * shift[:, 0] / zoom
    theta[:, 1, 1] = 1.0 / zoom
    theta[:, 1, 2] = -shift[:, 1] / zoom
    grid = F.affine_grid(theta, list(color.shape), align_corners=False)
    return _sample_white(line, grid), _sample_white(color, grid)


# ---------------------------------------------------------------------------------------------------------------------
# The whole recipe


@dataclass(frozen=True)
class AugmentConfig:
    """How a training batch is augmented.

    Args:
        max_shift: TPS displacement of the reference's inner control points, as a fraction of the size (paper: 0.25).
        tps_points: inner TPS control points per side.
        hue: rotate each pair's hue by a uniform random fraction of a turn.
        saturation: range of the per-pair saturation factor; (1.0, 1.0) turns it off.
        affine: apply a shared random flip, scale (0.8..1.1) and translation (+-8%) to line art and color.
        noise_std: standard deviation of the zero-mean uniform noise added to the reference, in [0, 1] pixel units
            (SGA adds uniform noise to its reference); 0 turns it off.
    """

    max_shift: float = 0.25
    tps_points: int = 3
    hue: bool = True
    saturation: tuple[float, float] = (0.7, 1.3)
    affine: bool = True
    noise_std: float = 0.02

    def __post_init__(self) -> None:
        if not 0 <= self.saturation[0] <= self.saturation[1]:
            msg = f"AugmentConfig.saturation must be (low, high) with 0 <= low <= high, got {self.saturation}"
            raise ValueError(msg)
        if self.max_shift < 0 or self.noise_std < 0:
            msg = f"AugmentConfig max_shift ({self.max_shift}) and noise_std ({self.noise_std}) must be >= 0"
            raise ValueError(msg)


def _as_unit_float(images: Tensor) -> Tensor:
    """uint8 [0, 255] or float [0, 1] -> float32 [0, 1]."""
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    return images.float()


def make_training_batch(
    line: Tensor,
    color: Tensor,
    config: AugmentConfig,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Turn aligned line/color pairs into a model batch: pair affine -> hue/saturation -> TPS reference (+ noise).

    Args:
        line: (B, 1, H, W) line art, uint8 [0, 255] or float [0, 1], 1 = white.
        color: (B, 3, H, W) color images, uint8 [0, 255] or float [0, 1].
        config: what to apply.
        generator: source of randomness.

    Returns:
        line_in: (B, 1, H, W) float32 in [0, 1], 1 = white (the line-art encoder's input).
        reference: (B, 3, H, W) float32 in [-1, 1], the TPS-warped, noised target (the reference encoder's input).
        target: (B, 3, H, W) float32 in [-1, 1], what the generator (tanh output) should produce.
    """
    line = _as_unit_float(line)
    color = _as_unit_float(color)
    if config.affine:
        line, color = random_pair_affine(line, color, generator)
    else:
        _check_images(line, "make_training_batch line", channels=1)
        _check_images(color, "make_training_batch color", channels=3)
    B = color.shape[0]
    if config.hue or config.saturation != (1.0, 1.0):
        hue = _uniform((B,), 0.0, 1.0, generator, color) if config.hue else torch.zeros(B, device=color.device)
        saturation = _uniform((B,), config.saturation[0], config.saturation[1], generator, color)
        color = hue_saturation_shift(color, hue, saturation)
    target = color
    reference = tps_warp(target, max_shift=config.max_shift, points=config.tps_points, generator=generator)
    if config.noise_std > 0:
        # A uniform distribution on [-a, a] has standard deviation a / sqrt(3).
        half_width = config.noise_std * math.sqrt(3.0)
        noise = _uniform(tuple(reference.shape), -half_width, half_width, generator, reference)
        reference = (reference + noise).clamp(0.0, 1.0)
    return line, reference * 2.0 - 1.0, target * 2.0 - 1.0
