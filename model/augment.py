"""Batched training augmentations in torch; they run on whatever device the images are on.

The paper (Cao et al., ICME 2023, after SCFT and SGA) trains on "augmented-self" references: the ground-truth color
image warped by a thin-plate spline is the reference, the unwarped image is the target, so the model has to find
each line-art region's color in a displaced reference instead of copying it pixel by pixel. Added here:
a hue/saturation shift applied to the pair before the reference is made (the colors of a pair differ from epoch to
epoch, so they must come from the reference, not be memorised from the line art), a shared random flip, scale and
translation of each line/color pair, and degradations of the line art alone: real inputs have thicker or thinner,
grey, soft or hard-thresholded (XDoG) lines on textured, unevenly lit paper, and the model should have seen them.

Random numbers are always drawn on the generator's device (CPU by default) and moved to the images' device, so a
seeded CPU generator gives the same augmentation on CPU and GPU.

The color conversion and the thin-plate spline are our own torch code, not OpenCV's or scikit-image's, because the
batch lives on the training device: those libraries work on one CPU image at a time. Measured on 16 x 3 x 256 x 256
on 2 CPU cores, scikit-image's ThinPlateSplineTransform + warp took 2.3 s against 1.3 s here (within 8e-4);
cv2.cvtColor's HSV round trip took 11 ms against 330 ms here (within 3e-5), but on a GPU it would cost two copies
of every batch between devices and a loop over its images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

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
# Line-art degradations: (B, 1, H, W) line art in [0, 1], 1 = white paper


def _per_sample(values: Tensor, like: Tensor) -> Tensor:
    """(B,) per-sample values -> (B, 1, 1, 1) on like's device and dtype, to broadcast over images."""
    return values.to(device=like.device, dtype=like.dtype).view(-1, 1, 1, 1)


def change_line_weight(line: Tensor, amount: Tensor) -> Tensor:
    """Make each sample's lines thicker or thinner by up to a pixel on each side.

    Ink is the minimum of the image, so a 3x3 min-pool grows the strokes by one pixel and a 3x3 max-pool shrinks them;
    blending toward either by a fraction changes the weight by a fraction of a pixel, as a lighter or heavier pen does.

    Args:
        line: (B, 1, H, W) line art in [0, 1], 1 = white.
        amount: (B,) in [-1, 1]; > 0 blends toward the thicker lines, < 0 toward the thinner ones, 0 changes nothing.
    """
    _check_images(line, "change_line_weight line", channels=1)
    thicker = -F.max_pool2d(-line, kernel_size=3, stride=1, padding=1)
    thinner = F.max_pool2d(line, kernel_size=3, stride=1, padding=1)
    weight = _per_sample(amount, line)
    return torch.where(weight >= 0, torch.lerp(line, thicker, weight), torch.lerp(line, thinner, -weight))


def lighten_lines(line: Tensor, strength: Tensor) -> Tensor:
    """Move each sample's ink toward the paper: black becomes the grey of pencil, paper stays white.

    Args:
        line: (B, 1, H, W) line art in [0, 1], 1 = white.
        strength: (B,) in [0, 1]: the fraction of the way to white (0.5 turns black ink into 0.5 grey).
    """
    _check_images(line, "lighten_lines line", channels=1)
    return 1.0 - (1.0 - line) * (1.0 - _per_sample(strength, line))


def blur_lines(line: Tensor, sigma: Tensor, radius: int = 3) -> Tensor:
    """Soften each sample's lines with its own Gaussian blur (a softer anti-aliasing, a slightly defocused scan).

    Args:
        line: (B, 1, H, W) line art in [0, 1], 1 = white.
        sigma: (B,) standard deviation in pixels, > 0.
        radius: the kernel reaches this many pixels each side; the border repeats the edge (paper).
    """
    _check_images(line, "blur_lines line", channels=1)
    B, _, H, W = line.shape
    offsets = torch.arange(-radius, radius + 1, device=line.device, dtype=line.dtype)
    sigma = sigma.to(device=line.device, dtype=line.dtype).clamp_min(1e-3).view(B, 1)
    taps = torch.exp(-0.5 * (offsets / sigma) ** 2)
    taps = (taps / taps.sum(dim=1, keepdim=True)).view(B, 1, 1, -1)  # (B, 1, 1, 2 * radius + 1)
    # Shifted sums rather than a convolution: CUDA convolutions may run in TF32, and a seeded batch should come out
    # the same on the GPU as on the CPU.
    padded = F.pad(line, (radius, radius, radius, radius), mode="replicate")  # (B, 1, H + 2r, W + 2r)
    rows = sum(taps[..., k : k + 1] * padded[..., k : k + W] for k in range(2 * radius + 1))  # (B, 1, H + 2r, W)
    return sum(taps[..., k : k + 1] * rows[..., k : k + H, :] for k in range(2 * radius + 1))  # (B, 1, H, W)


def binarise_lines(line: Tensor, threshold: Tensor) -> Tensor:
    """Threshold each sample hard, as a binary XDoG extraction of line art from colored frames does.

    Args:
        line: (B, 1, H, W) line art in [0, 1], 1 = white.
        threshold: (B,) pixels at least this bright become 1 (paper), the others 0 (ink).
    """
    _check_images(line, "binarise_lines line", channels=1)
    return (line >= _per_sample(threshold, line)).to(line.dtype)


def add_paper_texture(line: Tensor, paper: Tensor, grain: Tensor) -> Tensor:
    """Put the lines on real paper: ink multiplies the paper's brightness, then the scanner's grain is added.

    Args:
        line: (B, 1, H, W) line art in [0, 1], 1 = white.
        paper: (B, 1, H, W) brightness of the paper in [0, 1] (see `random_paper`).
        grain: (B, 1, H, W) zero-mean noise.

    Returns:
        (B, 1, H, W) in [0, 1].
    """
    _check_images(line, "add_paper_texture line", channels=1)
    return (line * paper + grain).clamp(0.0, 1.0)


def random_paper(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    like: Tensor,
    darkest: float = 0.75,
    gradient: float = 0.2,
    blotches: float = 0.05,
) -> Tensor:
    """Random paper brightness: an overall level (yellowed, dim), a linear lighting gradient and soft blotches.

    Args:
        shape: (B, 1, H, W).
        generator: source of randomness.
        like: a tensor whose device and dtype the paper takes.
        darkest: the lowest overall level (the highest is 1).
        gradient: the largest brightness difference across the frame.
        blotches: the largest amplitude of the low-frequency blotches.

    Returns:
        (B, 1, H, W) in [darkest - gradient / 2 - blotches, 1].
    """
    B, _, H, W = shape
    level = _uniform((B,), darkest, 1.0, generator, like).view(B, 1, 1, 1)
    angle = _uniform((B,), 0.0, 2 * math.pi, generator, like).view(B, 1, 1, 1)
    slope = _uniform((B,), 0.0, gradient, generator, like).view(B, 1, 1, 1)
    ys = torch.linspace(-0.5, 0.5, H, device=like.device, dtype=like.dtype).view(1, 1, H, 1)
    xs = torch.linspace(-0.5, 0.5, W, device=like.device, dtype=like.dtype).view(1, 1, 1, W)
    ramp = slope * (xs * torch.cos(angle) + ys * torch.sin(angle)) / math.sqrt(2)  # within +-slope / 2
    coarse = _uniform((B, 1, 4, 4), -1.0, 1.0, generator, like) * _uniform((B, 1, 1, 1), 0, blotches, generator, like)
    blotch = F.interpolate(coarse, size=(H, W), mode="bilinear", align_corners=True)
    return (level - ramp - blotch).clamp(0.0, 1.0)


def _random_weight(line: Tensor, generator: torch.Generator | None) -> Tensor:
    """Thicker lines (blend 0.4..1 toward the min-pool) or thinner ones (0.3..0.7 toward the max-pool), even odds."""
    B = line.shape[0]
    thicker = _uniform((B,), 0.0, 1.0, generator, line) < 0.5
    magnitude = _uniform((B,), 0.4, 1.0, generator, line)
    # Thinning all the way would erase one-pixel strokes, so it stops at 0.7.
    return change_line_weight(line, torch.where(thicker, magnitude, -0.7 * magnitude))


def _random_binarise(line: Tensor, generator: torch.Generator | None) -> Tensor:
    """Hard threshold at a level in 0.35..0.75."""
    return binarise_lines(line, _uniform((line.shape[0],), 0.35, 0.75, generator, line))


def _random_blur(line: Tensor, generator: torch.Generator | None) -> Tensor:
    """Gaussian blur with sigma in 0.4..1.2 px."""
    return blur_lines(line, _uniform((line.shape[0],), 0.4, 1.2, generator, line))


def _random_lighten(line: Tensor, generator: torch.Generator | None) -> Tensor:
    """Ink lightened 0.3..0.6 of the way to white (75..150 of 255 for black ink)."""
    return lighten_lines(line, _uniform((line.shape[0],), 0.3, 0.6, generator, line))


def _random_paper_texture(line: Tensor, generator: torch.Generator | None) -> Tensor:
    """Random paper (`random_paper`) and uniform grain with a standard deviation of 0.01..0.05."""
    B = line.shape[0]
    paper = random_paper(tuple(line.shape), generator, line)
    # A uniform distribution on [-a, a] has standard deviation a / sqrt(3).
    half_width = _uniform((B, 1, 1, 1), 0.01, 0.05, generator, line) * math.sqrt(3.0)
    grain = _uniform(tuple(line.shape), -1.0, 1.0, generator, line) * half_width
    return add_paper_texture(line, paper, grain)


def degrade_line_art(line: Tensor, config: AugmentConfig, generator: torch.Generator | None = None) -> Tensor:
    """Apply each line-art degradation to a random part of the batch, each sample deciding on its own.

    The order follows how such line art comes about: the pen's weight, then a hard XDoG threshold, a soft blur, grey
    (pencil) ink and finally the paper it was scanned from. A degradation with probability 0 draws no random
    numbers, so turning them all off reproduces the batch exactly.

    Args:
        line: (B, 1, H, W) line art in [0, 1], 1 = white.
        config: the per-sample probability of each degradation.
        generator: source of randomness.

    Returns:
        (B, 1, H, W) in [0, 1].
    """
    _check_images(line, "degrade_line_art line", channels=1)
    B = line.shape[0]
    steps = (
        (config.line_weight_prob, _random_weight),
        (config.binarise_prob, _random_binarise),
        (config.line_blur_prob, _random_blur),
        (config.grey_lines_prob, _random_lighten),
        (config.paper_texture_prob, _random_paper_texture),
    )
    for probability, degrade in steps:
        if probability <= 0:
            continue
        # Decided on the generator's device, so a seed picks the same samples (and draws as many numbers) anywhere.
        device = generator.device if generator is not None else torch.device("cpu")
        chosen = torch.rand(B, generator=generator, device=device) < probability
        picked = chosen.nonzero().squeeze(1).to(line.device)
        if len(picked) > 0:
            line = line.index_copy(0, picked, degrade(line[picked], generator))
    return line


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
        line_weight_prob: per-sample probability of thicker or thinner lines (`change_line_weight`).
        binarise_prob: per-sample probability of a hard threshold at a random level, as binary XDoG gives.
        line_blur_prob: per-sample probability of a Gaussian blur of the lines (`blur_lines`).
        grey_lines_prob: per-sample probability of ink lightened toward the paper, as pencil is (`lighten_lines`).
        paper_texture_prob: per-sample probability of uneven, yellowed, grainy paper (`add_paper_texture`).
            The line-art degradations touch the line art only; `without_line_degradations()` turns them all off.
    """

    max_shift: float = 0.25
    tps_points: int = 3
    hue: bool = True
    saturation: tuple[float, float] = (0.7, 1.3)
    affine: bool = True
    noise_std: float = 0.02
    line_weight_prob: float = 0.3
    binarise_prob: float = 0.1
    line_blur_prob: float = 0.2
    grey_lines_prob: float = 0.2
    paper_texture_prob: float = 0.2

    def __post_init__(self) -> None:
        if not 0 <= self.saturation[0] <= self.saturation[1]:
            msg = f"AugmentConfig.saturation must be (low, high) with 0 <= low <= high, got {self.saturation}"
            raise ValueError(msg)
        if self.max_shift < 0 or self.noise_std < 0:
            msg = f"AugmentConfig max_shift ({self.max_shift}) and noise_std ({self.noise_std}) must be >= 0"
            raise ValueError(msg)
        for name in LINE_DEGRADATIONS:
            probability = getattr(self, name)
            if not 0 <= probability <= 1:
                msg = f"AugmentConfig.{name} is a probability in [0, 1], got {probability}"
                raise ValueError(msg)

    def without_line_degradations(self) -> AugmentConfig:
        """This config with every line-art degradation turned off (the line art is then only moved by `affine`)."""
        return replace(self, **dict.fromkeys(LINE_DEGRADATIONS, 0.0))


# The AugmentConfig fields that are probabilities of a line-art degradation.
LINE_DEGRADATIONS = ("line_weight_prob", "binarise_prob", "line_blur_prob", "grey_lines_prob", "paper_texture_prob")


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
    """Turn aligned line/color pairs into a model batch: pair affine -> hue/saturation -> TPS reference (+ noise)
    -> line-art degradations.

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
    # Last, so that the colors and references drawn for a seed are the same with or without them.
    line = degrade_line_art(line, config, generator)
    return line, reference * 2.0 - 1.0, target * 2.0 - 1.0
