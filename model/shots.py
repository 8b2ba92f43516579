"""Animated OpenMoji shots: a vector drawing moved over several frames, with exact line-art/color ground truth.

A real shot is the same drawing moved, turned and rescaled from frame to frame. Moving the vector drawing (rather
than its pixels) keeps every frame a clean render, and because OpenMoji keeps its black strokes in a
``<g id="line">`` group (see :func:`model.data.openmoji_line_svg`), the line art of every frame is exactly aligned
with its colored frame. Such shots test a colorizer on frames that differ from the keyframe it was given.
"""

from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import resvg_py
from PIL import Image

from model.data import openmoji_line_svg

# OpenMoji drawings live on a 72 x 72 viewBox.
_DRAWING_SIZE = 72.0
_SVG_NS = "http://www.w3.org/2000/svg"


@dataclass(frozen=True)
class Motion:
    """How the drawing moves over a shot: start and end poses, interpolated linearly, plus an optional vertical bob.

    The drawing is centred in the canvas at its largest size that keeps its aspect (a 72 x 72 drawing in a 400 x 300
    canvas is 300 px wide, centred). Rotation and scale are about the drawing's centre.

    Args:
        translate_start: (x, y) offset of the drawing's centre at the first frame, as fractions of the canvas width
            and height; positive moves right and down.
        translate_end: the same at the last frame.
        rotate_start: rotation in degrees at the first frame, clockwise.
        rotate_end: rotation in degrees at the last frame.
        scale_start: scale at the first frame (1 = fits the canvas).
        scale_end: scale at the last frame.
        bob: amplitude of a vertical sine bob, as a fraction of the canvas height; 0 = none. It is 0 at frame 0.
        bob_period: frames per bob cycle.
    """

    translate_start: tuple[float, float] = (0.0, 0.0)
    translate_end: tuple[float, float] = (0.0, 0.0)
    rotate_start: float = 0.0
    rotate_end: float = 0.0
    scale_start: float = 1.0
    scale_end: float = 1.0
    bob: float = 0.0
    bob_period: float = 6.0

    def __post_init__(self) -> None:
        if self.scale_start <= 0 or self.scale_end <= 0:
            msg = f"Motion scales must be positive, got scale_start={self.scale_start}, scale_end={self.scale_end}"
            raise ValueError(msg)
        if self.bob_period <= 0:
            msg = f"Motion.bob_period must be positive, got {self.bob_period}"
            raise ValueError(msg)


STILL = Motion()


@dataclass
class ShotArrays:
    """The frames of one animated drawing.

    Args:
        line: (T, H, W) uint8 line art, 255 = paper, 0 = line.
        color: (T, H, W, 3) uint8 RGB frames, exactly aligned with `line`.
        name: the drawing's file stem (e.g. the OpenMoji codepoint "1F98A").
    """

    line: np.ndarray
    color: np.ndarray
    name: str

    def __post_init__(self) -> None:
        if self.line.ndim != 3 or self.line.dtype != np.uint8:
            msg = f"ShotArrays.line must be uint8 (T, H, W), got {self.line.dtype} {self.line.shape}"
            raise ValueError(msg)
        if self.color.shape != (*self.line.shape, 3) or self.color.dtype != np.uint8:
            msg = f"ShotArrays.color must be uint8 {(*self.line.shape, 3)}, got {self.color.dtype} {self.color.shape}"
            raise ValueError(msg)

    def __len__(self) -> int:
        return len(self.line)


def frame_transform(motion: Motion, index: int, frames: int, width: int, height: int) -> str:
    """The SVG transform that places the 72-unit drawing on a width x height pixel canvas at frame `index`.

    Args:
        motion: the shot's motion.
        index: frame number, 0-based.
        frames: frames in the shot; the pose goes from start (frame 0) to end (frame frames - 1).
        width: canvas width in pixels.
        height: canvas height in pixels.
    """
    s = index / (frames - 1) if frames > 1 else 0.0
    dx = _lerp(motion.translate_start[0], motion.translate_end[0], s) * width
    dy = _lerp(motion.translate_start[1], motion.translate_end[1], s) * height
    dy += motion.bob * height * math.sin(2 * math.pi * index / motion.bob_period)
    angle = _lerp(motion.rotate_start, motion.rotate_end, s)
    scale = _lerp(motion.scale_start, motion.scale_end, s) * min(width, height) / _DRAWING_SIZE
    centre = _DRAWING_SIZE / 2
    # Applied right to left: centre the drawing on the origin, scale, rotate, then move it to its place on the canvas.
    return (
        f"translate({width / 2 + dx:.6f} {height / 2 + dy:.6f}) rotate({angle:.6f}) scale({scale:.8f}) "
        f"translate({-centre:g} {-centre:g})"
    )


def _lerp(start: float, end: float, s: float) -> float:
    """Linear interpolation from start (s = 0) to end (s = 1)."""
    return start + (end - start) * s


def posed_svg(svg_text: str, transform: str, width: int, height: int) -> str:
    """The SVG with its drawing wrapped in ``<g transform=...>`` on a width x height canvas in pixel units.

    Definitions (gradients, clip paths) stay where they are, at the top level.

    Args:
        svg_text: an OpenMoji drawing's SVG markup (full or line-only).
        transform: an SVG transform from :func:`frame_transform`.
        width: canvas width in pixels.
        height: canvas height in pixels.
    """
    root = ET.fromstring(svg_text)
    group = ET.Element(f"{{{_SVG_NS}}}g", {"transform": transform})
    for child in list(root):
        if child.tag != f"{{{_SVG_NS}}}defs":
            root.remove(child)
            group.append(child)
    root.append(group)
    # A viewBox of the canvas's own aspect: resvg fits the viewBox into the output size, keeping its aspect.
    root.set("viewBox", f"0 0 {width} {height}")
    root.set("width", str(width))
    root.set("height", str(height))
    return ET.tostring(root, encoding="unicode")


def rasterise(svg_text: str, width: int, height: int, mode: str) -> np.ndarray:
    """Render an SVG string onto white at width x height; mode "L" (H, W) or "RGB" (H, W, 3), uint8.

    Args:
        svg_text: SVG markup whose viewBox has the aspect width : height.
        width: output width in pixels.
        height: output height in pixels.
        mode: PIL mode of the result.
    """
    png = resvg_py.svg_to_bytes(svg_string=svg_text, width=width, height=height, background="#ffffff")
    with Image.open(io.BytesIO(png)) as image:
        if image.size != (width, height):
            msg = f"resvg rendered {image.size[0]}x{image.size[1]}, asked for {width}x{height}"
            raise RuntimeError(msg)
        return np.asarray(image.convert(mode), dtype=np.uint8)


def render_openmoji_shot(svg_path: Path | str, frames: int, width: int, height: int, motion: Motion) -> ShotArrays:
    """Animate one OpenMoji drawing and render every frame's line art and colors; deterministic.

    Args:
        svg_path: an OpenMoji .svg file.
        frames: number of frames, at least 1.
        width: frame width in pixels.
        height: frame height in pixels.
        motion: how the drawing moves; :data:`STILL` for none.
    """
    if frames < 1:
        msg = f"a shot needs at least 1 frame, got frames={frames}"
        raise ValueError(msg)
    if width < 1 or height < 1:
        msg = f"frame size must be positive, got {width}x{height}"
        raise ValueError(msg)
    path = Path(svg_path)
    color_svg = path.read_text(encoding="utf-8")
    line_svg = openmoji_line_svg(color_svg, str(path))
    lines, colors = [], []
    for index in range(frames):
        transform = frame_transform(motion, index, frames, width, height)
        lines.append(rasterise(posed_svg(line_svg, transform, width, height), width, height, "L"))
        colors.append(rasterise(posed_svg(color_svg, transform, width, height), width, height, "RGB"))
    return ShotArrays(line=np.stack(lines), color=np.stack(colors), name=path.stem)
