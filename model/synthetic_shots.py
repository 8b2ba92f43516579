"""Synthetic shots for tests, benchmarks and the sample: an OpenMoji vector drawing moved over several frames, with
exact line-art/color ground truth. Nothing in the coloring pipeline uses it.

A real shot is the same drawing moved, turned and rescaled from frame to frame. Moving the vector drawing (rather
than its pixels) keeps every frame a clean render, and because OpenMoji keeps its black strokes in a
``<g id="line">`` group (see :func:`model.data.openmoji_line_svg`), the line art of every frame is exactly aligned
with its colored frame. Such shots test a colorizer on frames that differ from the keyframe it was given.

Parts of a drawing can also move on their own (:func:`find_parts`, :class:`PartMotion`): an eye that drifts, a
sparkle that turns. OpenMoji's line and color groups do not pair up one to one (one color path fills a whole face
whose outline is four line paths), so a part is found from the pixels: touching line elements form a piece, the color
elements inside its box join it, and it is a part only where the rest of the drawing around it is one flat color.
Moving it there (up to its clearance) never brings its lines into contact with another line and never uncovers or
covers anything but that flat color, so the line art still bounds the colors exactly. The part's transform is applied
to its elements in the full SVG, and the line art is taken from that same moved SVG: line and color stay aligned by
construction.
"""

from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import resvg_py
from PIL import Image

from model.data import openmoji_line_svg

# OpenMoji drawings live on a 72 x 72 viewBox.
_DRAWING_SIZE = 72.0
_SVG_NS = "http://www.w3.org/2000/svg"
# Parts are found on a render of this many pixels per drawing unit (144 x 144 for the whole drawing).
_PART_PIXELS_PER_UNIT = 2
# Lines of a moving part keep at least this far (drawing units) from every other line.
_PART_MARGIN = 1.0
# Clearances are searched up to this (drawing units); farther moves are not needed for a shot.
_PART_MAX_CLEARANCE = 8.0
# Largest 0-255 channel difference from the flat color still counted as that color (PNG rounding, not edges).
_FLAT_TOLERANCE = 12


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


@dataclass(frozen=True)
class DrawingPart:
    """A piece of a drawing that can move on its own; found by :func:`find_parts`.

    Args:
        elements: its top-level elements, each as (index of its group among the SVG root's children, index of the
            element in that group).
        centre: (x, y) centre of its bounding box, in drawing units (the 72-unit viewBox).
        radius: distance from `centre` to its farthest pixel, drawing units.
        clearance: how far (drawing units) any point of it may move while everything it covers or uncovers is one
            flat color of the rest of the drawing and its lines keep clear of every other line.
    """

    elements: tuple[tuple[int, int], ...]
    centre: tuple[float, float]
    radius: float
    clearance: float


@dataclass(frozen=True)
class PartMotion:
    """Extra motion of one part, on top of the drawing's :class:`Motion`, in drawing units.

    The part is at rest at frame 0 and moves with a cosine ease (its speed never jumps): with `cycles` 1 it eases to
    the end pose at the last frame, with 2 it goes there and back, and so on. A part moved no farther than its
    clearance (see :attr:`reach`) stays sound; several parts moving at once each stay within half their clearance,
    so that they cannot meet either.

    Args:
        part: the part that moves.
        translate: (dx, dy) at the end pose, drawing units; positive moves right and down.
        rotate: degrees clockwise about the part's centre at the end pose.
        cycles: half-periods of the ease over the shot, at least 1.
    """

    part: DrawingPart
    translate: tuple[float, float] = (0.0, 0.0)
    rotate: float = 0.0
    cycles: int = 1

    def __post_init__(self) -> None:
        if self.cycles < 1:
            msg = f"PartMotion.cycles must be at least 1, got {self.cycles}"
            raise ValueError(msg)

    @property
    def reach(self) -> float:
        """An upper bound on how far any point of the part gets from its rest position, drawing units."""
        return math.hypot(*self.translate) + self.part.radius * math.radians(abs(self.rotate))

    def transform(self, index: int, frames: int) -> str:
        """The SVG transform of the part at frame `index` of `frames`, in the drawing's coordinates.

        Args:
            index: frame number, 0-based.
            frames: frames in the shot.
        """
        s = index / (frames - 1) if frames > 1 else 0.0
        weight = (1 - math.cos(math.pi * self.cycles * s)) / 2
        cx, cy = self.part.centre
        return (
            f"translate({self.translate[0] * weight:.6f} {self.translate[1] * weight:.6f}) "
            f"rotate({self.rotate * weight:.6f} {cx:.6f} {cy:.6f})"
        )


def find_parts(svg_text: str, source: str = "<svg>") -> list[DrawingPart]:
    """The parts of an OpenMoji drawing that can move on their own, in the order of their first line element.

    A part is a piece of touching line elements plus the color elements (of any other group) that lie inside its
    box, provided the rest of the drawing is one flat color all around it (see the module's docstring). Elements of
    a group that carries its own transform never move: their coordinates are not the drawing's.

    Args:
        svg_text: the drawing's SVG markup.
        source: where it came from, for error messages.
    """
    root = ET.fromstring(svg_text)
    line_group = next((i for i, child in enumerate(root) if child.get("id") == "line"), None)
    if line_group is None:
        msg = f'OpenMoji drawing {source} has no <g id="line"> group'
        raise ValueError(msg)
    masks = {position: _render_alpha(svg_text, {position}) > 0 for position in _movable_positions(root)}
    masks = {position: mask for position, mask in masks.items() if mask.any()}
    lines = [position for position in masks if position[0] == line_group]
    parts = []
    for piece in _touching_pieces([masks[position] for position in lines]):
        if len(piece) == len(lines):
            continue  # all the line art: that is the whole drawing's motion, not a part's
        part = _part_of(svg_text, [lines[i] for i in piece], masks, line_group)
        if part is not None:
            parts.append(part)
    return parts


def _movable_positions(root: ET.Element) -> list[tuple[int, int]]:
    """(group, element) positions of the elements in the root's groups that have no transform of their own."""
    return [
        (group_index, element_index)
        for group_index, group in enumerate(root)
        if group.tag == f"{{{_SVG_NS}}}g" and group.get("transform") is None
        for element_index in range(len(group))
    ]


def _svg_keeping(svg_text: str, keep: set[tuple[int, int]], invert: bool = False) -> str:
    """The SVG with only the group elements at `keep` (with invert: all but those); defs and group styles stay."""
    root = ET.fromstring(svg_text)
    for group_index, child in enumerate(list(root)):
        if child.tag == f"{{{_SVG_NS}}}defs":
            continue
        if child.tag != f"{{{_SVG_NS}}}g":
            if not invert:
                root.remove(child)  # an element outside every group is never part of a part
            continue
        for element_index, element in enumerate(list(child)):
            if ((group_index, element_index) in keep) == invert:
                child.remove(element)
    return ET.tostring(root, encoding="unicode")


def _render_alpha(svg_text: str, keep: set[tuple[int, int]]) -> np.ndarray:
    """Coverage (uint8 alpha) of the elements at `keep`, rendered alone on the part-finding grid."""
    size = int(_DRAWING_SIZE * _PART_PIXELS_PER_UNIT)
    png = resvg_py.svg_to_bytes(svg_string=_svg_keeping(svg_text, keep), width=size, height=size)
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGBA"), dtype=np.uint8)[..., 3]


def _grow(mask: np.ndarray) -> np.ndarray:
    """Binary dilation of an (H, W) mask by one pixel in all 8 directions."""
    tall = mask.copy()
    tall[1:] |= mask[:-1]
    tall[:-1] |= mask[1:]
    wide = tall.copy()
    wide[:, 1:] |= tall[:, :-1]
    wide[:, :-1] |= tall[:, 1:]
    return wide


def _touching_pieces(masks: list[np.ndarray]) -> list[list[int]]:
    """Groups of mask indices that touch (8-connected, directly or through others), each sorted, in first-index
    order."""
    owner = list(range(len(masks)))

    def find(i: int) -> int:
        while owner[i] != i:
            owner[i] = owner[owner[i]]
            i = owner[i]
        return i

    grown = [_grow(mask) for mask in masks]
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            if (grown[i] & masks[j]).any():
                owner[find(j)] = find(i)
    pieces: dict[int, list[int]] = {}
    for i in range(len(masks)):
        pieces.setdefault(find(i), []).append(i)
    return list(pieces.values())


def _part_of(
    svg_text: str, lines: list[tuple[int, int]], masks: dict[tuple[int, int], np.ndarray], line_group: int
) -> DrawingPart | None:
    """The part made of these line elements and the color elements inside their box; None if it cannot move."""
    line_mask = np.logical_or.reduce([masks[position] for position in lines])
    rows, cols = np.nonzero(line_mask)
    margin = int(_PART_MARGIN * _PART_PIXELS_PER_UNIT)
    top, bottom, left, right = rows.min() - margin, rows.max() + margin, cols.min() - margin, cols.max() + margin
    colors = []
    for position, mask in masks.items():
        if position[0] == line_group:
            continue
        inside = mask[max(top, 0) : bottom + 1, max(left, 0) : right + 1].sum()
        if inside >= 0.95 * mask.sum():
            colors.append(position)
    elements = tuple(sorted(lines + colors))
    footprint = np.logical_or.reduce([masks[position] for position in elements])
    rest = rasterise(_svg_keeping(svg_text, set(elements), invert=True), *footprint.shape[::-1], "RGB")
    clearance = _flat_clearance(rest, footprint)
    if clearance < 1 / _PART_PIXELS_PER_UNIT:
        return None
    rows, cols = np.nonzero(footprint)
    centre_px = ((cols.min() + cols.max() + 1) / 2, (rows.min() + rows.max() + 1) / 2)
    # Pixel centres are half a pixel in; the farthest corner of a pixel is a further half diagonal out.
    radius_px = np.hypot(cols + 0.5 - centre_px[0], rows + 0.5 - centre_px[1]).max() + math.sqrt(0.5)
    return DrawingPart(
        elements=elements,
        centre=(float(centre_px[0]) / _PART_PIXELS_PER_UNIT, float(centre_px[1]) / _PART_PIXELS_PER_UNIT),
        radius=float(radius_px / _PART_PIXELS_PER_UNIT),
        clearance=clearance,
    )


def _flat_clearance(rest: np.ndarray, footprint: np.ndarray) -> float:
    """How far (drawing units) the footprint may grow while the rest's render under it stays one flat color, less
    the line margin; negative when it is not flat even under the footprint itself."""
    zone = footprint
    flat_pixels = -1
    for grown_by in range(int((_PART_MAX_CLEARANCE + _PART_MARGIN) * _PART_PIXELS_PER_UNIT) + 1):
        under = rest[zone].astype(np.int16)  # (N, 3)
        if np.abs(under - np.median(under, axis=0)).max() > _FLAT_TOLERANCE:
            break
        flat_pixels = grown_by
        zone = _grow(zone)
    return flat_pixels / _PART_PIXELS_PER_UNIT - _PART_MARGIN if flat_pixels >= 0 else -math.inf


def move_parts(svg_text: str, motions: Sequence[PartMotion], index: int, frames: int) -> str:
    """The SVG with each moving part's elements wrapped in that part's transform at frame `index`.

    Args:
        svg_text: the drawing's SVG markup, the same the parts were found in.
        motions: the parts' motions.
        index: frame number, 0-based.
        frames: frames in the shot.
    """
    root = ET.fromstring(svg_text)
    groups = list(root)
    for motion in motions:
        transform = motion.transform(index, frames)
        for group_index, element_index in motion.part.elements:
            if group_index >= len(groups) or element_index >= len(groups[group_index]):
                msg = f"part element {(group_index, element_index)} is not in this drawing; find parts in this SVG"
                raise ValueError(msg)
            group = groups[group_index]
            element = group[element_index]
            wrapper = ET.Element(f"{{{_SVG_NS}}}g", {"transform": transform})
            group.remove(element)
            wrapper.append(element)
            group.insert(element_index, wrapper)
    return ET.tostring(root, encoding="unicode")


def random_part_motions(parts: Sequence[DrawingPart], rng: np.random.Generator, count: int = 2) -> list[PartMotion]:
    """Smooth motions for up to `count` of the parts, chosen at random, each as far as its clearance allows (half of
    it when several move) and partly turned.

    Args:
        parts: parts of one drawing, from :func:`find_parts`.
        rng: the random source; the same seed gives the same motions.
        count: most parts that move.
    """
    chosen = sorted(rng.choice(len(parts), size=min(count, len(parts)), replace=False)) if parts else []
    share = 0.5 if len(chosen) > 1 else 1.0
    motions = []
    for i in chosen:
        part = parts[i]
        reach = part.clearance * share * rng.uniform(0.6, 1.0)
        turn = min(math.degrees(reach * rng.uniform(0.0, 0.5) / part.radius), 20.0) * rng.choice([-1.0, 1.0])
        distance = reach - part.radius * math.radians(abs(turn))
        direction = rng.uniform(0.0, 2 * math.pi)
        translate = (distance * math.cos(direction), distance * math.sin(direction))
        motions.append(PartMotion(part, translate=translate, rotate=turn, cycles=int(rng.integers(1, 3))))
    return motions


def render_openmoji_shot(
    svg_path: Path | str,
    frames: int,
    width: int,
    height: int,
    motion: Motion,
    parts: Sequence[PartMotion] = (),
) -> ShotArrays:
    """Animate one OpenMoji drawing and render every frame's line art and colors; deterministic.

    Args:
        svg_path: an OpenMoji .svg file.
        frames: number of frames, at least 1.
        width: frame width in pixels.
        height: frame height in pixels.
        motion: how the drawing moves; :data:`STILL` for none.
        parts: parts of the drawing (from :func:`find_parts` on this file) that move on their own as well.
    """
    if frames < 1:
        msg = f"a shot needs at least 1 frame, got frames={frames}"
        raise ValueError(msg)
    if width < 1 or height < 1:
        msg = f"frame size must be positive, got {width}x{height}"
        raise ValueError(msg)
    path = Path(svg_path)
    drawing_svg = path.read_text(encoding="utf-8")
    lines, colors = [], []
    for index in range(frames):
        # The line art is cut from the moved drawing itself, so a part's lines move exactly as its colors do.
        color_svg = move_parts(drawing_svg, parts, index, frames) if parts else drawing_svg
        line_svg = openmoji_line_svg(color_svg, str(path))
        transform = frame_transform(motion, index, frames, width, height)
        lines.append(rasterise(posed_svg(line_svg, transform, width, height), width, height, "L"))
        colors.append(rasterise(posed_svg(color_svg, transform, width, height), width, height, "RGB"))
    return ShotArrays(line=np.stack(lines), color=np.stack(colors), name=path.stem)
