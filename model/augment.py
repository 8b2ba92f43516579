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

The warps are in model/warps.py, the line-art degradations in model/line_degradations.py; this module holds the
color shift and the recipe that puts them together. The HSV conversion is our own torch code, not OpenCV's:
cv2.cvtColor's HSV round trip took 11 ms against 330 ms here on 16 x 3 x 256 x 256 on 2 CPU cores (within 3e-5), but
on a GPU it would cost two copies of every batch between devices and a loop over its images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from model.draws import check_images, uniform
from model.line_degradations import (
    random_binarise,
    random_blur,
    random_lighten,
    random_paper_texture,
    random_weight,
)
from model.warps import random_pair_affine, tps_warp

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
    check_images(images, "hue_saturation_shift images", channels=3)
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
# Line-art degradations


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
    check_images(line, "degrade_line_art line", channels=1)
    B = line.shape[0]
    steps = (
        (config.line_weight_prob, random_weight),
        (config.binarise_prob, random_binarise),
        (config.line_blur_prob, random_blur),
        (config.grey_lines_prob, random_lighten),
        (config.paper_texture_prob, random_paper_texture),
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
        check_images(line, "make_training_batch line", channels=1)
        check_images(color, "make_training_batch color", channels=3)
    B = color.shape[0]
    if config.hue or config.saturation != (1.0, 1.0):
        hue = uniform((B,), 0.0, 1.0, generator, color) if config.hue else torch.zeros(B, device=color.device)
        saturation = uniform((B,), config.saturation[0], config.saturation[1], generator, color)
        color = hue_saturation_shift(color, hue, saturation)
    target = color
    reference = tps_warp(target, max_shift=config.max_shift, points=config.tps_points, generator=generator)
    if config.noise_std > 0:
        # A uniform distribution on [-a, a] has standard deviation a / sqrt(3).
        half_width = config.noise_std * math.sqrt(3.0)
        noise = uniform(tuple(reference.shape), -half_width, half_width, generator, reference)
        reference = (reference + noise).clamp(0.0, 1.0)
    # Last, so that the colors and references drawn for a seed are the same with or without them.
    line = degrade_line_art(line, config, generator)
    return line, reference * 2.0 - 1.0, target * 2.0 - 1.0
