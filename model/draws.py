"""What every training augmentation shares: random numbers drawn on the generator's device (CPU by default) and
moved to the images', so that a seeded CPU generator gives the same augmentation on CPU and GPU, and the check that a
batch is a floating (B, C, H, W) tensor."""

from __future__ import annotations

import torch
from torch import Tensor


def uniform(
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


def per_sample(values: Tensor, like: Tensor) -> Tensor:
    """(B,) per-sample values -> (B, 1, 1, 1) on like's device and dtype, to broadcast over images."""
    return values.to(device=like.device, dtype=like.dtype).view(-1, 1, 1, 1)


def check_images(images: Tensor, name: str, channels: int | None = None) -> None:
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
