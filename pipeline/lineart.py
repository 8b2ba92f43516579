"""Frames to model inputs and back: working resolution, padding to the model's stride, full-resolution composite.

The colorizer works at a modest resolution (the long side of `resolution`); the artist's line art is never
resampled for the output: the colors are scaled back to the frame's own size and the original lines are laid over
them by multiplication, so a 4K frame keeps its crisp lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageChops

from pipeline.regions import RegionVote, paint_regions, region_colors, rgb_to_lab, vote_regions


@dataclass(frozen=True)
class FrameGeometry:
    """How a frame maps onto the model's grid.

    Args:
        height: the frame's own height.
        width: the frame's own width.
        scaled_height: height at the working resolution.
        scaled_width: width at the working resolution.
        padded_height: scaled height padded up to the model's stride.
        padded_width: scaled width padded up to the model's stride.
    """

    height: int
    width: int
    scaled_height: int
    scaled_width: int
    padded_height: int
    padded_width: int


def fit_frame(height: int, width: int, resolution: int, stride: int = 16) -> FrameGeometry:
    """Geometry for a frame: long side scaled to `resolution` (never up), short side by the same factor."""
    if height < 1 or width < 1:
        msg = f"frame size {width}x{height} is empty"
        raise ValueError(msg)
    scale = min(1.0, resolution / max(height, width))
    scaled_h, scaled_w = max(1, round(height * scale)), max(1, round(width * scale))
    return FrameGeometry(
        height=height,
        width=width,
        scaled_height=scaled_h,
        scaled_width=scaled_w,
        padded_height=-(-scaled_h // stride) * stride,
        padded_width=-(-scaled_w // stride) * stride,
    )


def resize_and_pad(image: torch.Tensor, geometry: FrameGeometry, fill: float) -> torch.Tensor:
    """(C, H, W) float image -> (C, padded_h, padded_w): area-resized, padded right and bottom with `fill`."""
    target = (geometry.scaled_height, geometry.scaled_width)
    if tuple(image.shape[-2:]) != target:
        image = F.interpolate(image[None], size=target, mode="area")[0]
    pad_h = geometry.padded_height - geometry.scaled_height
    pad_w = geometry.padded_width - geometry.scaled_width
    return F.pad(image, (0, pad_w, 0, pad_h), value=fill)


def to_model_line(gray: np.ndarray, geometry: FrameGeometry) -> torch.Tensor:
    """A frame of line art (H, W) uint8 luma -> model input (1, padded_h, padded_w) in [0, 1], paper white = 1.

    Downscaled by box averaging (area) in 8-bit, where Pillow is several times faster than float work.
    """
    image = Image.fromarray(gray, "L")
    if image.size != (geometry.scaled_width, geometry.scaled_height):
        image = image.resize((geometry.scaled_width, geometry.scaled_height), Image.Resampling.BOX)
    line = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255)[None]
    return resize_and_pad(line, geometry, fill=1.0)


def to_model_reference(rgb: np.ndarray, geometry: FrameGeometry) -> torch.Tensor:
    """A colored keyframe (H, W, 3) uint8 -> model input (3, padded_h, padded_w) in [-1, 1], padding white."""
    image = torch.tensor(rgb).permute(2, 0, 1).float().div(255)  # (3, H, W); a copy: decoded arrays are read-only
    return resize_and_pad(image, geometry, fill=1.0) * 2 - 1


def colors_to_rgb(colors: torch.Tensor, geometry: FrameGeometry) -> np.ndarray:
    """Model colors (3, padded_h, padded_w) in [-1, 1] -> (scaled_h, scaled_w, 3) uint8, the padding cut off."""
    small = colors[:, : geometry.scaled_height, : geometry.scaled_width].float().add(1).mul(127.5)
    return small.round().clamp(0, 255).byte().permute(1, 2, 0).numpy()


FILLS = ("soft", "flat")


def upscale_colors(colors: np.ndarray, frame_shape: tuple[int, int]) -> np.ndarray:
    """Colors (h, w, 3) uint8 at the working resolution -> (H, W, 3) uint8 at the frame's size, bilinear."""
    height, width = frame_shape
    return np.asarray(Image.fromarray(colors, "RGB").resize((width, height), Image.Resampling.BILINEAR))


def upscale_lab(colors: np.ndarray, frame_shape: tuple[int, int]) -> np.ndarray:
    """CIELAB of colors (h, w, 3) uint8, taken at their own size and scaled bilinearly to (H, W, 3) float32: the
    conversion is the costly part, and a small image has far fewer pixels to convert."""
    height, width = frame_shape
    lab = rgb_to_lab(colors)
    if lab.shape[:2] == (height, width):
        return lab
    channels = [Image.fromarray(np.ascontiguousarray(lab[..., i], dtype=np.float32), "F") for i in range(3)]
    resized = [channel.resize((width, height), Image.Resampling.BILINEAR) for channel in channels]
    return np.stack([np.asarray(channel) for channel in resized], axis=-1)


def vote_frame(colors: np.ndarray, lines: np.ndarray, *, gap: int = 3) -> tuple[np.ndarray, RegionVote]:
    """The model's colors (h, w, 3) uint8 at the working resolution over a frame's line art (H, W) uint8 -> the
    colors at the frame's size and the vote of its paint regions (`pipeline.regions.vote_regions`)."""
    frame_shape = lines.shape
    full = upscale_colors(colors, frame_shape)
    lab = upscale_lab(colors, frame_shape)
    return full, vote_regions(full, lines, gap=gap, upscale=frame_shape[0] / colors.shape[0], lab=lab)


def multiply_lines(colors: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Lay the artist's line art (H, W) uint8 over colors (H, W, 3) uint8 by multiplication: a * b / 255."""
    ink = Image.fromarray(lines, "L").convert("RGB")
    return np.asarray(ImageChops.multiply(Image.fromarray(colors, "RGB"), ink))


def composite_lines(
    colors: np.ndarray, lines: np.ndarray, fill: str = "soft", palette: np.ndarray | None = None
) -> np.ndarray:
    """Colors (h, w, 3) uint8 at the working resolution + the frame's line art (H, W) uint8 -> (H, W, 3) uint8.

    The colors are scaled bilinearly to the frame's size and multiplied by the original line art, which is never
    resampled. Done in 8-bit (Pillow's resize, integer multiply): this runs once per frame at full resolution,
    beside the model, and float32 work there cost as much as a third of the model's time. With `fill` "flat",
    every closed paint region between the lines first takes one color, a vote of the model's colors inside it
    (pipeline/regions.py), locked to `palette` when one is given; "soft" keeps the colors as the model predicted.
    """
    if fill not in FILLS:
        msg = f"unknown fill {fill!r}; choose one of {', '.join(FILLS)}"
        raise ValueError(msg)
    if fill == "flat":
        full, vote = vote_frame(colors, lines)
        full = paint_regions(full, vote, region_colors(vote.lab, palette))
    else:
        full = upscale_colors(colors, lines.shape)
    return multiply_lines(full, lines)
