"""Line art to model inputs and model colors back: line preparation, working resolution, padding to the model's
stride, colors scaled back to the frame's size.

A frame's line art is first prepared (`prepare_line_art`): scanned paper and grey pencil are normalised to white
paper and dark ink (pipeline/lineclean.py), and colored guide lines are told apart from the black outline
(pipeline/guidelines.py). The colorizer works at a modest resolution (the long side of `resolution`): `fit_frame`
says how a frame maps onto it, `to_model_line` and `to_model_reference` make the model's inputs, `colors_to_rgb`
and `resize_bilinear` bring its colors back. Laying the lines over them is pipeline/composite.py's work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from model.files import luma, over_paper_white, rgb_to_gray, sixteen_to_eight
from pipeline.guidelines import GUIDE_LINE_MODES, split_line_art
from pipeline.lineclean import clean_line_art

# "off": colored lines are read as gray ink like any other line.
GUIDE_LINE_OPTIONS = (*GUIDE_LINE_MODES, "off")


@dataclass(frozen=True)
class LineArt:
    """A frame's line art, prepared for coloring (`prepare_line_art`).

    Args:
        lines: (H, W) uint8, 0 ink and 255 paper: what the model sees and what the finished frame is multiplied by.
        boundaries: (H, W) uint8: `lines` with the colored guide lines drawn as ink, what paint regions are
            segmented from; `lines` itself when the frame has none.
        guides: (H, W) bool, the guide-line pixels, or None when the frame has none.
        source: (H, W, 3) uint8, the frame as drawn, when it has guide lines (their own colors are kept from it).
        deep_lines: (H, W) uint16 `lines` at the full depth of a 16-bit file, or None for an 8-bit one: the
            finished frame's lines are drawn from it when it is written at 16 bits (pipeline/cel.py).
        drawn: (H, W, 4) RGBA, straight alpha, at the file's depth: the frame as drawn on transparent paper, whose
            lines keep their own color and alpha over the cel's paper (pipeline/cel.py); None for opaque paper.
    """

    lines: np.ndarray
    boundaries: np.ndarray
    guides: np.ndarray | None = None
    source: np.ndarray | None = None
    deep_lines: np.ndarray | None = None
    drawn: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.lines.shape

    @classmethod
    def plain(cls, lines: np.ndarray) -> LineArt:
        """Line art without guide lines, used as it is."""
        return cls(lines, lines)


def prepare_line_art(image: np.ndarray, *, clean: bool = True, guide_lines: str = "paint") -> LineArt:
    """A decoded line-art frame made ready for coloring: (H, W) gray or (H, W, 3) RGB, or either with alpha last
    ((H, W, 2) or (H, W, 4), straight), uint8 or uint16 (model.files.decode_frame `as_drawn`).

    Coloring works at 8 bits, on the frame over white paper. A 16-bit frame keeps its own luma as
    `LineArt.deep_lines` wherever cleaning left the 8-bit line as it was (value/257, rounded), and the cleaned line
    (times 257) where cleaning changed it; a frame with alpha keeps itself as `LineArt.drawn`.

    Args:
        image: the frame as read.
        clean: normalise the lines (`clean_line_art`): flat white paper, dark ink, scan specks removed. Clean
            digital line art comes through unchanged.
        guide_lines: "paint" or "keep": colored guide lines in an RGB frame separate paint regions and are kept out
            of the model's input (see pipeline/guidelines.py); "off": they are gray ink like the other lines.
    """
    if guide_lines not in GUIDE_LINE_OPTIONS:
        msg = f"unknown guide-line option {guide_lines!r}; choose one of {', '.join(GUIDE_LINE_OPTIONS)}"
        raise ValueError(msg)
    drawn = None
    if image.ndim == 3 and image.shape[2] in (2, 4):
        color, alpha = (image[..., 0], image[..., 1]) if image.shape[2] == 2 else (image[..., :3], image[..., 3])
        drawn = np.dstack([np.repeat(color[..., None], 3, axis=2) if color.ndim == 2 else color, alpha])
        image = over_paper_white(color, alpha)
    deep = None
    if image.dtype == np.uint16:
        deep = image if image.ndim == 2 else luma(image)
        image = sixteen_to_eight(image)
    guides = source = None
    if image.ndim == 3 and guide_lines != "off":
        split = split_line_art(image)
        lines = split.lines
        if split.mask.any():
            guides, source = split.mask, image
    else:
        lines = rgb_to_gray(image) if image.ndim == 3 else image
    drawn_lines = lines
    if clean:
        lines = clean_line_art(lines)
    if deep is not None:
        deep = np.where(lines == drawn_lines, deep, lines.astype(np.uint16) * 257)
    if guides is None:
        return LineArt(lines, lines, deep_lines=deep, drawn=drawn)
    boundaries = lines.copy()
    boundaries[guides] = 0
    return LineArt(lines, boundaries, guides, source, deep, drawn)


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


def fit_frame(height: int, width: int, resolution: int, stride: int = 16, upscale: bool = False) -> FrameGeometry:
    """Geometry for a frame: long side scaled to `resolution` (never up, unless `upscale`: a keyframe smaller than
    the working resolution would give the model too few reference tokens), short side by the same factor."""
    if height < 1 or width < 1:
        msg = f"frame size {width}x{height} is empty"
        raise ValueError(msg)
    scale = resolution / max(height, width)
    scale = scale if upscale else min(1.0, scale)
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
    """(C, H, W) float image -> (C, padded_h, padded_w): area-resized (bilinear when enlarged), padded right and
    bottom with `fill`."""
    target = (geometry.scaled_height, geometry.scaled_width)
    if tuple(image.shape[-2:]) != target:
        enlarge = target[0] > image.shape[-2] or target[1] > image.shape[-1]
        mode = {"mode": "bilinear", "align_corners": False} if enlarge else {"mode": "area"}
        image = F.interpolate(image[None], size=target, **mode)[0]
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


def resize_bilinear(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w, C) uint8 or float32 -> (H, W, C) of the same dtype, bilinear between pixel centres, without
    antialiasing: Pillow's BILINEAR when enlarging, within 2 levels (the same bytes from 512x288 to 1080p). torch's
    kernels, on the image's own channels-last layout: about twice as fast as Pillow on uint8 RGB at 1080p, and 4x
    on float32."""
    if tuple(shape) == image.shape[:2]:
        return image
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    resized = F.interpolate(tensor, size=tuple(shape), mode="bilinear", align_corners=False)
    return resized[0].permute(1, 2, 0).contiguous().numpy()  # torch's transpose: numpy's is slower here
