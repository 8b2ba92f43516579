"""Degradations of the line art alone, as training augmentations: real inputs have thicker or thinner, grey, soft
or hard-thresholded (XDoG) lines on textured, unevenly lit paper, and the model should have seen them.

Each works on a (B, 1, H, W) line-art batch in [0, 1], 1 = white paper; the `random_*` forms draw their strength
per sample (model/augment.py's `degrade_line_art` decides which samples get which).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from model.draws import check_images, per_sample, uniform


def change_line_weight(line: Tensor, amount: Tensor) -> Tensor:
    """Make each sample's lines thicker or thinner by up to a pixel on each side.

    Ink is the minimum of the image, so a 3x3 min-pool grows the strokes by one pixel and a 3x3 max-pool shrinks them;
    blending toward either by a fraction changes the weight by a fraction of a pixel, as a lighter or heavier pen does.

    Args:
        line: (B, 1, H, W) line art in [0, 1], 1 = white.
        amount: (B,) in [-1, 1]; > 0 blends toward the thicker lines, < 0 toward the thinner ones, 0 changes nothing.
    """
    check_images(line, "change_line_weight line", channels=1)
    thicker = -F.max_pool2d(-line, kernel_size=3, stride=1, padding=1)
    thinner = F.max_pool2d(line, kernel_size=3, stride=1, padding=1)
    weight = per_sample(amount, line)
    return torch.where(weight >= 0, torch.lerp(line, thicker, weight), torch.lerp(line, thinner, -weight))


def lighten_lines(line: Tensor, strength: Tensor) -> Tensor:
    """Move each sample's ink toward the paper: black becomes the grey of pencil, paper stays white.

    Args:
        line: (B, 1, H, W) line art in [0, 1], 1 = white.
        strength: (B,) in [0, 1]: the fraction of the way to white (0.5 turns black ink into 0.5 grey).
    """
    check_images(line, "lighten_lines line", channels=1)
    return 1.0 - (1.0 - line) * (1.0 - per_sample(strength, line))


def blur_lines(line: Tensor, sigma: Tensor, radius: int = 3) -> Tensor:
    """Soften each sample's lines with its own Gaussian blur (a softer anti-aliasing, a slightly defocused scan).

    Args:
        line: (B, 1, H, W) line art in [0, 1], 1 = white.
        sigma: (B,) standard deviation in pixels, > 0.
        radius: the kernel reaches this many pixels each side; the border repeats the edge (paper).
    """
    check_images(line, "blur_lines line", channels=1)
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
    check_images(line, "binarise_lines line", channels=1)
    return (line >= per_sample(threshold, line)).to(line.dtype)


def add_paper_texture(line: Tensor, paper: Tensor, grain: Tensor) -> Tensor:
    """Put the lines on real paper: ink multiplies the paper's brightness, then the scanner's grain is added.

    Args:
        line: (B, 1, H, W) line art in [0, 1], 1 = white.
        paper: (B, 1, H, W) brightness of the paper in [0, 1] (see `random_paper`).
        grain: (B, 1, H, W) zero-mean noise.

    Returns:
        (B, 1, H, W) in [0, 1].
    """
    check_images(line, "add_paper_texture line", channels=1)
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
    level = uniform((B,), darkest, 1.0, generator, like).view(B, 1, 1, 1)
    angle = uniform((B,), 0.0, 2 * math.pi, generator, like).view(B, 1, 1, 1)
    slope = uniform((B,), 0.0, gradient, generator, like).view(B, 1, 1, 1)
    ys = torch.linspace(-0.5, 0.5, H, device=like.device, dtype=like.dtype).view(1, 1, H, 1)
    xs = torch.linspace(-0.5, 0.5, W, device=like.device, dtype=like.dtype).view(1, 1, 1, W)
    ramp = slope * (xs * torch.cos(angle) + ys * torch.sin(angle)) / math.sqrt(2)  # within +-slope / 2
    coarse = uniform((B, 1, 4, 4), -1.0, 1.0, generator, like) * uniform((B, 1, 1, 1), 0, blotches, generator, like)
    blotch = F.interpolate(coarse, size=(H, W), mode="bilinear", align_corners=True)
    return (level - ramp - blotch).clamp(0.0, 1.0)


def random_weight(line: Tensor, generator: torch.Generator | None) -> Tensor:
    """Thicker lines (blend 0.4..1 toward the min-pool) or thinner ones (0.3..0.7 toward the max-pool), even odds."""
    B = line.shape[0]
    thicker = uniform((B,), 0.0, 1.0, generator, line) < 0.5
    magnitude = uniform((B,), 0.4, 1.0, generator, line)
    # Thinning all the way would erase one-pixel strokes, so it stops at 0.7.
    return change_line_weight(line, torch.where(thicker, magnitude, -0.7 * magnitude))


def random_binarise(line: Tensor, generator: torch.Generator | None) -> Tensor:
    """Hard threshold at a level in 0.35..0.75."""
    return binarise_lines(line, uniform((line.shape[0],), 0.35, 0.75, generator, line))


def random_blur(line: Tensor, generator: torch.Generator | None) -> Tensor:
    """Gaussian blur with sigma in 0.4..1.2 px."""
    return blur_lines(line, uniform((line.shape[0],), 0.4, 1.2, generator, line))


def random_lighten(line: Tensor, generator: torch.Generator | None) -> Tensor:
    """Ink lightened 0.3..0.6 of the way to white (75..150 of 255 for black ink)."""
    return lighten_lines(line, uniform((line.shape[0],), 0.3, 0.6, generator, line))


def random_paper_texture(line: Tensor, generator: torch.Generator | None) -> Tensor:
    """Random paper (`random_paper`) and uniform grain with a standard deviation of 0.01..0.05."""
    B = line.shape[0]
    paper = random_paper(tuple(line.shape), generator, line)
    # A uniform distribution on [-a, a] has standard deviation a / sqrt(3).
    half_width = uniform((B, 1, 1, 1), 0.01, 0.05, generator, line) * math.sqrt(3.0)
    grain = uniform(tuple(line.shape), -1.0, 1.0, generator, line) * half_width
    return add_paper_texture(line, paper, grain)
