"""A finished frame as a cel: its paint and its lines kept apart, so that a compositor can lay it over a background
painted elsewhere, and the files a frame is written as (`cel_images`).

A frame is finished as paint under lines: the line art's darkness (0 ink, 255 paper) blends each pixel from its paint
toward its line color (black, or the keyframe's line colors when they are carried). `Cel` keeps the three apart
beside the frame over white paper, which is what is written by default and what the video shows unless the shot
has a background (`Background`): then each video frame is the cel on transparent paper laid over it.

Paper. A paint region (pipeline/regions.py: the area between lines, small gaps closed) is paper when it reaches the
frame's border and most of its paint is the keyframe's paper, near white (every channel at least PAPER_LEVEL): the
odd pixel there that was carried off-white (a ghost of the keyframe's lines) is paper too. An ink pixel is paper when
the nearest region pixel is (so a line's outer edge lies on the paper and its inner edge on the paint it encloses,
whatever color the paint under the line was carried as). A white shirt or the white of an eye enclosed by lines
stays paint. On transparent paper, paper
is alpha 0 where no line covers it, a line's anti-aliased edge over paper has its coverage (255 minus the line's
darkness) as alpha, and paint is opaque. Line art drawn on transparent paper (`LineArt.drawn`) keeps its own alpha
over the paper, exactly, and its own line colors there unless the keyframe's line colors are carried.

Depth. Coloring runs at 8 bits. At 16 bits the lines are drawn again at 16 bits from the file's own samples
(`LineArt.deep_lines`), so their anti-aliased edges keep their precision; the paint and line colors are the 8-bit
ones times 257. An 8-bit file written at 16 bits has its lines times 257.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from model.files import sixteen_to_eight
from pipeline.lineart import LineArt
from pipeline.regions import nearest_outside, segment_regions

PAPERS = ("white", "transparent")
DEPTHS = ("auto", "8", "16")
# Output formats and their files' extension.
FORMATS = {"png": ".png", "tiff": ".tif", "exr": ".exr"}
# A pixel's paint is paper white when every channel is at least this: scanned or off-white keyframe paper too.
PAPER_LEVEL = 220
# ... and a region is paper when more than this share of its pixels' paint is.
PAPER_SHARE = 0.5
# Off-white paint in a paper region narrower than this (pixels) is a ghost of the keyframe's lines, and paper.
_GHOST_KERNEL = np.ones((5, 5), np.uint8)
# The layers `--layers` writes, each into a folder of its own inside the output folder, under the frame's name.
LAYERS = ("lines", "paint")


@dataclass(frozen=True)
class Cel:
    """A finished frame's parts.

    Args:
        finished: (H, W, 3) uint8, the frame over white paper: paint under lines.
        paint: (H, W, 3) uint8, the colors under the lines.
        art: the frame's line art: its `lines` say how much of each pixel is line (colored guide lines, which are
            finished into the frame, count as paint).
        line_color: (H, W, 3) uint8, the color each line is drawn in; None for black ink.
    """

    finished: np.ndarray
    paint: np.ndarray
    art: LineArt
    line_color: np.ndarray | None = None


@dataclass(frozen=True)
class CelFormat:
    """How a frame is written.

    Args:
        paper: "white": RGB over white paper; "transparent": RGBA, paper transparent.
        layers: also write the lines and the paint as RGBA layers (LAYERS).
        depth: "8", "16", or "auto": 16 for 16-bit line art, else 8.
        file_format: a key of FORMATS.
    """

    paper: str = "white"
    layers: bool = False
    depth: str = "auto"
    file_format: str = "png"

    @property
    def extension(self) -> str:
        return FORMATS[self.file_format]

    def bits(self, art: LineArt) -> int:
        """8 or 16: the bits per sample a frame of this line art is written with (EXR's half floats are made from
        16)."""
        if self.file_format == "exr":
            return 16
        if self.depth == "auto":
            return 16 if art.deep_lines is not None else 8
        return int(self.depth)


def paper_mask(paint: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """(H, W) bool: the paper of a frame whose paint (H, W, 3) and lines (H, W) uint8 are given (the module's rule)."""
    labels = segment_regions(lines)
    count = int(labels.max()) + 1
    sizes = np.bincount(labels.ravel(), minlength=count)
    darkest = cv2.min(cv2.min(paint[..., 0], paint[..., 1]), paint[..., 2])  # numpy's min over axis 2: 25x slower
    white_paint = darkest >= PAPER_LEVEL
    white = np.bincount(labels[white_paint], minlength=count)
    touching = np.zeros(count, bool)
    touching[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = True
    paper_regions = touching & (white > PAPER_SHARE * sizes)
    paper_regions[0] = False
    # Paint thicker than a line's ghost is paint even there: an arm whose outline has a gap the closing missed.
    painted = cv2.morphologyEx((~white_paint).view(np.uint8), cv2.MORPH_OPEN, _GHOST_KERNEL).view(bool)
    paper = np.take(paper_regions, labels) & ~painted
    ink = labels == 0
    if ink.any() and not ink.all():
        inside, nearest = nearest_outside(ink)
        pixels = paper.ravel()
        pixels[inside] = pixels[nearest]
    return paper


def draw_lines_deep(paint: np.ndarray, line_color: np.ndarray, deep_lines: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint16: 8-bit paint and line colors (H, W, 3) blended by 16-bit lines (H, W), 65535 paper, rounded;
    8-bit values count 257 times (255 is 65535)."""
    lines = deep_lines.astype(np.uint32)[..., None]
    mixed = paint.astype(np.uint32) * lines + line_color.astype(np.uint32) * (65535 - lines)  # at most 255 * 65535
    return ((mixed.astype(np.uint64) * 257 + 32767) // 65535).astype(np.uint16)


def at_depth(samples: np.ndarray, bits: int) -> np.ndarray:
    """uint8 or uint16 samples at 8 or 16 bits: times 257 up, value/257 rounded down (model.files' one rule)."""
    if bits == 16:
        return samples if samples.dtype == np.uint16 else samples.astype(np.uint16) * 257
    return samples if samples.dtype == np.uint8 else sixteen_to_eight(samples)


def cel_images(cel: Cel, form: CelFormat) -> dict[str, np.ndarray]:
    """The images a frame is written as: "" the frame itself, and with `form.layers` each of LAYERS (RGBA). With
    white paper at 8 bits the frame is `cel.finished` itself."""
    bits = form.bits(cel.art)
    if form.paper == "white" and not form.layers and bits == 8:
        return {"": cel.finished}
    art = cel.art
    top, scale = (65535, 257) if bits == 16 else (255, 1)
    dtype = np.uint16 if bits == 16 else np.uint8
    line_color = np.zeros_like(cel.paint) if cel.line_color is None else cel.line_color
    paint, lines = cel.paint, art.lines
    if art.guides is not None:  # finished into the frame: paint, with no line over them
        paint = np.where(art.guides[..., None], cel.finished, paint)
        lines = np.where(art.guides, 255, lines).astype(np.uint8)
    if bits == 16:
        deep = lines.astype(np.uint16) * 257 if art.deep_lines is None else art.deep_lines
        deep = deep if art.guides is None else np.where(art.guides, 65535, deep).astype(np.uint16)
        frame = draw_lines_deep(paint, line_color, deep)
        ink = 65535 - deep
    else:
        frame, ink = cel.finished, 255 - lines
    paper = paper_mask(paint, lines)
    color = line_color.astype(dtype) * scale
    if art.drawn is not None:  # the lines over the paper as drawn
        drawn = at_depth(art.drawn, bits)
        if cel.line_color is None:
            color = np.where(paper[..., None], drawn[..., :3], color)
        ink = np.where(paper, drawn[..., 3], ink)
    # Nothing shows where no ink is: black there, so the RGBA files compress (a third of the bytes at 1080p).
    color = np.where((ink > 0)[..., None], color, 0).astype(dtype)
    images = {}
    if form.paper == "transparent":
        alpha = np.where(paper, ink, top).astype(dtype)
        images[""] = np.dstack([np.where(paper[..., None], color, frame), alpha])
    else:
        images[""] = frame
    if form.layers:
        images["lines"] = np.dstack([color, ink.astype(dtype)])
        images["paint"] = np.dstack([paint.astype(dtype) * scale, np.where(paper, 0, top).astype(dtype)])
    return images


class Background:
    """The image a shot's video frames are laid over (`ShotOptions.background`), scaled to each frame size once.

    A video frame is the frame's cel on transparent paper at 8 bits (`video_cel`) over it: the paper shows the
    background, paint is opaque and a line's anti-aliased edge over the paper blends its line color into the
    background by its coverage, whatever paper and depth the files are written with.

    Args:
        rgb: (H, W, 3) uint8, the background at its own size.
    """

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = rgb
        self._fitted: dict[tuple[int, int], np.ndarray] = {}

    def fitted(self, height: int, width: int) -> np.ndarray:
        """(height, width, 3) uint8: the background scaled to that size (area averaging when it shrinks)."""
        if (height, width) not in self._fitted:
            self._fitted[height, width] = cv2.resize(self.rgb, (width, height), interpolation=cv2.INTER_AREA)
        return self._fitted[height, width]

    def under(self, rgba: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8: a cel (H, W, 4) uint8 with straight alpha over the background, rounded."""
        height, width = rgba.shape[:2]
        alpha = rgba[..., 3:].astype(np.uint16)
        mixed = rgba[..., :3] * alpha + self.fitted(height, width) * (255 - alpha)  # at most 255 * 255
        return ((mixed + 127) // 255).astype(np.uint8)


def video_cel(cel: Cel) -> np.ndarray:
    """(H, W, 4) uint8: what a video frame lays over a background, the cel on transparent paper at 8 bits."""
    return cel_images(cel, CelFormat(paper="transparent", depth="8"))[""]
