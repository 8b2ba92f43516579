"""The keyframe's colors carried to each frame along dense correspondences between line drawings.

Two drawings of one shot differ by motion, so where a pixel of a frame comes from in the keyframe can be read off
the line art alone: optical flow between the two drawings. Line art is nearly all flat paper, where flow has no
texture to follow, so the flow runs on a smooth image of each drawing instead: the distance from every pixel to the
nearest line, clipped (`flow_guide`). OpenCV's DIS flow (Kroeger et al., ECCV 2016) follows it; its heavy calls,
like the distance transforms and remaps here, release the GIL, so frames are carried on threads side by side.

Each frame is carried two ways and keeps, pixel by pixel, the better:
- from its neighbour nearer the keyframe, already carried, by composing the flow between the two neighbours with the
  neighbour's own correspondence (small steps that flow follows well; the error adds up along the chain);
- straight from the keyframe (no error to add up, but larger motion).
A forward-backward check scores each: flow from the frame to the source and back again should return to the same
pixel, and how far it misses is the error, in pixels of the flow grid. A pixel whose error stays large (it is
occluded in the keyframe, or newly visible) is not confident, and takes the model's colors instead.

What is carried is the keyframe in two layers, so that a line slightly out of place does not smear dark ink over
the paint: its paint with its lines taken out (each line pixel takes the color of the nearest paint), and the color
of its lines (each pixel takes the color of the nearest line pixel). The frame's own lines are then drawn over the
carried paint in the carried line color (`compose_frame`): the frame keeps its artist's lines exactly, in the
keyframe's colors of line.

Measured on the development set (real anime, ../shared/devset; benchmarks/README.md), where each frame's lines are
XDoG lines of the true frame: the pipeline with these colors scored 22.5 dB PSNR against 14.9 for the keyframe's own
pixels under each frame's lines. Multiplying the frame's lines over the carried paint instead of drawing them in the
keyframe's line colors scored about 6 dB less: binary lines darken every color edge they mark, and even the true
frame under its XDoG lines scores only 19.0. Chained alone, without the choice of the straight flow, scored the same
on average (22.63 against 22.58 dB, carried colors alone): 2-4 dB better on a fast run and a pan, 2 dB worse on a
slow 47-frame turn and a slow close-up, whose chains drift. The straight flow is kept as the guard against drift
over long shots.
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import Future
from dataclasses import dataclass

import cv2
import numpy as np

from model.xdog import extract_line_art

# Flow is estimated on a grid whose long side is at most this; the colors are then sampled at the frame's full size.
# Carried alone, the development set scored the same at 384 as at 512 (22.58 and 22.57 dB), and less at 320 (21.98)
# and 256 (22.08); a 1080p frame's two flows cost about half as much at 384 as at 512.
FLOW_SIDE = 384
# The distance-to-line guide saturates this far from a line, in pixels of the flow grid: beyond it, paper is paper.
GUIDE_CLIP = 12.0
# XDoG's narrow Gaussian for a keyframe's extracted lines; that of the development set's line art.
KEYFRAME_XDOG_SIGMA = 0.5
# A carried pixel whose forward-backward error is above this (flow-grid pixels) is not confident.
CONFIDENT_ERROR = 2.0
# DIS's preset: "fast" scored 0.7 dB below "medium" on the development set.
DIS_PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
INK_LEVEL = 128
# DIS refuses images under 12 pixels a side; below this, frames are carried without motion.
MIN_FLOW_SIDE = 16


def keyframe_line_art(rgb: np.ndarray) -> np.ndarray:
    """Line art (H, W) uint8, 0 ink and 255 paper, extracted from a colored keyframe by the project's binary XDoG;
    for a keyframe whose own line art the studio did not give."""
    return (extract_line_art(rgb, sigma=KEYFRAME_XDOG_SIGMA) * 255).astype(np.uint8)


def flow_shape(frame_shape: tuple[int, int]) -> tuple[int, int]:
    """The flow grid of a frame (height, width): long side at most FLOW_SIDE, never enlarged."""
    height, width = frame_shape
    scale = min(1.0, FLOW_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def flow_guide(lines: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """A drawing (H, W) uint8 (0 ink) as the image flow follows: the distance of each pixel to the nearest line,
    clipped at GUIDE_CLIP and scaled to 0-255, on the flow grid `grid` (height, width). Taken at the frame's own
    size and then reduced, so a thin line still counts."""
    scale = grid[0] / lines.shape[0]
    paper = (lines >= INK_LEVEL).astype(np.uint8)
    distance = cv2.distanceTransform(paper, cv2.DIST_L2, 3)
    clip = GUIDE_CLIP / scale
    guide = cv2.convertScaleAbs(np.minimum(distance, clip), alpha=255.0 / clip)
    if guide.shape != grid:
        guide = cv2.resize(guide, (grid[1], grid[0]), interpolation=cv2.INTER_AREA)
    return guide


@functools.lru_cache(maxsize=8)
def pixel_grid(shape: tuple[int, int]) -> np.ndarray:
    """(h, w, 2) float32 (x, y) of every pixel; read-only, made once per shape (a shot's frames share one)."""
    height, width = shape
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    grid = np.dstack([xs, ys])
    grid.flags.writeable = False
    return grid


def _remap(image: np.ndarray, coords: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    return cv2.remap(image, coords, None, interpolation, borderMode=cv2.BORDER_REPLICATE)


_local = threading.local()


def _dis() -> cv2.DISOpticalFlow:
    """One DIS instance per thread: an instance keeps state between calls and must not be shared."""
    if not hasattr(_local, "dis"):
        _local.dis = cv2.DISOpticalFlow_create(DIS_PRESET)
    return _local.dis


@dataclass(frozen=True)
class PairFlow:
    """Where each pixel of a target drawing is in a source drawing, on the flow grid.

    Args:
        flow: (h, w, 2) float32: target pixel x is at x + flow[x] in the source.
        error: (h, w) float32 forward-backward error, in flow-grid pixels.
    """

    flow: np.ndarray
    error: np.ndarray


def pair_flow(target: np.ndarray, source: np.ndarray) -> PairFlow:
    """Flow from a target drawing's guide to a source's (`flow_guide`), both ways, and its consistency error. Grids
    smaller than DIS can take (MIN_FLOW_SIDE) have no motion to find: zero flow, no error."""
    if min(target.shape) < MIN_FLOW_SIDE:
        zeros = np.zeros(target.shape, np.float32)
        return PairFlow(np.dstack([zeros, zeros]), zeros)
    dis = _dis()
    forward = dis.calc(target, source, None)
    backward = dis.calc(source, target, None)
    back_at_source = _remap(backward, pixel_grid(target.shape) + forward)
    error = cv2.magnitude(forward[..., 0] + back_at_source[..., 0], forward[..., 1] + back_at_source[..., 1])
    return PairFlow(forward, error)


@dataclass(frozen=True)
class Correspondence:
    """Where each pixel of a frame is in its keyframe, on the flow grid.

    Args:
        coords: (h, w, 2) float32 (x, y) in the keyframe's flow grid.
        error: (h, w) float32: the largest forward-backward error along the way (flow-grid pixels).
    """

    coords: np.ndarray
    error: np.ndarray

    @classmethod
    def identity(cls, grid: tuple[int, int]) -> Correspondence:
        """The keyframe's own: every pixel where it is, without error."""
        return cls(pixel_grid(grid), np.zeros(grid, np.float32))

    @property
    def confident(self) -> np.ndarray:
        """(h, w) bool: pixels carried within CONFIDENT_ERROR."""
        return self.error <= CONFIDENT_ERROR


def chain(neighbour: Correspondence, step: PairFlow) -> Correspondence:
    """A frame's correspondence through its neighbour: `step` is the flow from the frame to that neighbour."""
    at_neighbour = pixel_grid(step.flow.shape[:2]) + step.flow
    coords = _remap(neighbour.coords, at_neighbour)
    # The worse of the two, not their sum: a pixel stays unconfident once its way back to the keyframe broke (a
    # newly visible part keeps the model's colors in the frames after), while small errors do not add up along a
    # long chain into no confidence at all (development set: summed, 22.48 dB with 52% of the pixels confident;
    # the worse of the two, 22.57 dB with 57%).
    error = np.maximum(_remap(neighbour.error, at_neighbour), step.error)
    return Correspondence(coords, error)


def direct(step: PairFlow) -> Correspondence:
    """A frame's correspondence straight to the keyframe: `step` is the flow from the frame to the keyframe."""
    return Correspondence(pixel_grid(step.flow.shape[:2]) + step.flow, step.error)


def better(first: Correspondence, second: Correspondence) -> Correspondence:
    """Pixel by pixel, the correspondence with the smaller error (the first at a tie)."""
    take_second = second.error < first.error
    coords = np.where(take_second[..., None], second.coords, first.coords)
    return Correspondence(coords, np.minimum(first.error, second.error))


def _nearest_colors(rgb: np.ndarray, from_pixels: np.ndarray) -> np.ndarray:
    """Every pixel takes the color of the nearest pixel where `from_pixels` (a bool mask) is set."""
    if from_pixels.all() or not from_pixels.any():
        return rgb.copy()
    # distanceTransformWithLabels labels each zero pixel of its input; every pixel gets the label of the nearest.
    _, labels = cv2.distanceTransformWithLabels(
        (~from_pixels).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    sources = rgb[from_pixels]  # in raster order, the order of the labels 1..n
    return sources[labels - 1]


@dataclass(frozen=True)
class KeyframeLayers:
    """A keyframe prepared for carrying.

    Args:
        paint: (H, W, 4) uint8: the paint with the lines taken out (RGB and a spare channel: OpenCV remaps 4
            channels about three times faster than 6, and than 3).
        line_color: (H, W, 4) uint8: the color of the nearest line.
        guide: (h, w) uint8 the keyframe drawing's flow guide.
    """

    paint: np.ndarray
    line_color: np.ndarray
    guide: np.ndarray

    @classmethod
    def build(cls, rgb: np.ndarray, lines: np.ndarray, frame_shape: tuple[int, int]) -> KeyframeLayers:
        """From the colored keyframe and its line art (same size), at the shot's frame size (height, width)."""
        height, width = frame_shape
        if rgb.shape[:2] != frame_shape:
            rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
        if lines.shape != frame_shape:
            lines = cv2.resize(lines, (width, height), interpolation=cv2.INTER_AREA)
        ink = lines < INK_LEVEL
        paint = cv2.cvtColor(_nearest_colors(rgb, ~ink), cv2.COLOR_RGB2RGBA)
        line_color = cv2.cvtColor(_nearest_colors(rgb, ink), cv2.COLOR_RGB2RGBA)
        return cls(paint, line_color, flow_guide(lines, flow_shape(frame_shape)))


@dataclass(frozen=True)
class CarriedFrame:
    """A frame's colors carried from its keyframe, at the frame's size.

    Args:
        paint: (H, W, 3) uint8, the keyframe's paint.
        line_color: (H, W, 3) uint8, the keyframe's color of line.
        confident: (H, W) bool, pixels whose correspondence is confident.
    """

    paint: np.ndarray
    line_color: np.ndarray
    confident: np.ndarray


def carry(keyframe: KeyframeLayers, correspondence: Correspondence, frame_shape: tuple[int, int]) -> CarriedFrame:
    """Sample the keyframe's layers where the frame's pixels correspond, at the frame's full size."""
    height, width = frame_shape
    grid_h, grid_w = correspondence.error.shape
    coords = correspondence.coords
    if (grid_h, grid_w) != frame_shape:
        # Flow-grid coordinates to frame coordinates (both pixel-centred), then enlarged: scaling is linear, so
        # scaling the small grid first gives the same and costs a fraction.
        coords = (coords + 0.5) * np.array([width / grid_w, height / grid_h], np.float32) - 0.5
        coords = cv2.resize(coords, (width, height), interpolation=cv2.INTER_LINEAR)
    fixed, fraction = cv2.convertMaps(coords, None, cv2.CV_16SC2)  # fixed-point maps: remap runs several times faster
    paint, line_color = (
        cv2.cvtColor(cv2.remap(layer, fixed, fraction, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
                     cv2.COLOR_RGBA2RGB)
        for layer in (keyframe.paint, keyframe.line_color)
    )  # fmt: skip
    confident = correspondence.confident.astype(np.uint8)
    if confident.shape != frame_shape:
        confident = cv2.resize(confident, (width, height), interpolation=cv2.INTER_NEAREST)
    return CarriedFrame(paint, line_color, confident.astype(bool))


def compose_frame(paint: np.ndarray, line_color: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """The frame's own lines (H, W) uint8, 0 ink, drawn over paint (H, W, 3) in `line_color` (H, W, 3); a line's
    grey edge blends the two."""
    ink = 255 - lines  # numpy: cv2 reads a scalar beside a 1x1 image as a 4x1 one
    ink = cv2.merge([ink, ink, ink])
    paper = cv2.merge([lines, lines, lines])
    # paint * paper / 255 + line_color * ink / 255, in 8-bit fixed point (cv2 saturates and rounds).
    return cv2.add(cv2.multiply(paint, paper, scale=1 / 255), cv2.multiply(line_color, ink, scale=1 / 255))


@dataclass(frozen=True)
class FrameFlows:
    """The flows a frame is carried by.

    Args:
        neighbour: the frame it is chained through, or None when that is its keyframe itself.
        step: flow to that neighbour (or keyframe).
        direct: flow straight to the keyframe, or None when `step` already goes there.
    """

    neighbour: int | None
    step: PairFlow
    direct: PairFlow | None


class ShotCarrier:
    """Carries a shot's keyframes to its frames, each frame through its neighbour nearer a keyframe.

    Frames must be `planned` in an order where that neighbour comes first (outward from the keyframes), then their
    `flows` may run on any thread (each waits for its neighbour's guide), and `correspond` must run in the planned
    order. A frame that is never planned (failed, or resumed from an earlier run) is stepped over toward the
    keyframe.

    Args:
        keyframes: (colored keyframe (H, W, 3) uint8, its line art (H, W) uint8, position) of each keyframe; the
            position is the index of the frame it was painted on, or -1 for one before the shot's first frame.
    """

    def __init__(self, keyframes: list[tuple[np.ndarray, np.ndarray, int]]) -> None:
        if not keyframes:
            msg = "carrying colors needs at least one keyframe"
            raise ValueError(msg)
        self.keyframes = {position: (rgb, lines) for rgb, lines, position in reversed(keyframes)}  # first wins a tie
        self.positions = tuple(sorted(self.keyframes))
        self.lock = threading.Lock()
        self.layers: dict[tuple[int, tuple[int, int]], KeyframeLayers] = {}
        self.guides: dict[int, Future] = {}
        self.planned: dict[int, int | None] = {}
        self.correspondences: dict[int, Correspondence] = {}

    def nearest_keyframe(self, index: int) -> int:
        return min(self.positions, key=lambda position: (abs(index - position), position))

    def keyframe_layers(self, position: int, frame_shape: tuple[int, int]) -> KeyframeLayers:
        """A keyframe's layers at a frame size, built once (any thread)."""
        with self.lock:
            key = (position, frame_shape)
            if key not in self.layers:
                self.layers[key] = KeyframeLayers.build(*self.keyframes[position], frame_shape)
            return self.layers[key]

    def plan(self, index: int) -> None:
        """Frame `index` will be carried: choose its neighbour among the frames planned before it."""
        keyframe = self.nearest_keyframe(index)
        step = 1 if index < keyframe else -1
        neighbour = None
        candidate = index + step
        while (candidate - keyframe) * step < 0 or (candidate == keyframe and keyframe >= 0):
            if candidate in self.planned:
                neighbour = candidate
                break
            candidate += step
        self.planned[index] = neighbour
        self.guides[index] = Future()

    def unplan(self, index: int) -> None:
        """Frame `index` failed: frames planned from now on step over it."""
        self.planned.pop(index, None)

    def flows(self, index: int, lines: np.ndarray) -> FrameFlows:
        """The flows of a planned frame from its line art (H, W) uint8; any thread. A neighbour of another size
        (a shot of mixed frame sizes) is not chained through: the frame is carried straight from the keyframe."""
        guide_future = self.guides[index]
        try:
            keyframe = self.keyframe_layers(self.nearest_keyframe(index), lines.shape)
            guide = flow_guide(lines, keyframe.guide.shape)
        except BaseException as error:
            guide_future.set_exception(error)  # the next frame out, waiting for this guide, fails too, not hangs
            raise
        guide_future.set_result(guide)
        neighbour = self.planned[index]
        neighbour_guide = None
        if neighbour is not None:
            try:
                neighbour_guide = self.guides[neighbour].result()
            except Exception:  # that frame failed (its own result says why): carried straight from the keyframe
                neighbour_guide = None
        if neighbour_guide is None or neighbour_guide.shape != guide.shape:
            return FrameFlows(None, pair_flow(guide, keyframe.guide), None)
        return FrameFlows(neighbour, pair_flow(guide, neighbour_guide), pair_flow(guide, keyframe.guide))

    def correspond(self, index: int, flows: FrameFlows) -> Correspondence:
        """Frame `index`'s correspondence to its keyframe, in planned order."""
        through = None if flows.neighbour is None else self.correspondences.get(flows.neighbour)
        if flows.neighbour is None:
            found = direct(flows.step)
        elif through is None:  # the neighbour failed after its flows: straight from the keyframe
            found = direct(flows.direct)
        else:
            found = better(chain(through, flows.step), direct(flows.direct))
            # A frame is the neighbour of the next one outward only (a keyframe's own frame, of one on each side):
            # once used, it is not needed again.
            if flows.neighbour not in self.positions:
                self.correspondences.pop(flows.neighbour, None)
                self.guides.pop(flows.neighbour, None)
        self.correspondences[index] = found
        return found

    def carry(self, index: int, correspondence: Correspondence, frame_shape: tuple[int, int]) -> CarriedFrame:
        """The keyframe's colors carried to frame `index`; any thread."""
        return carry(self.keyframe_layers(self.nearest_keyframe(index), frame_shape), correspondence, frame_shape)


def carrier_from(keyframes: list[tuple[np.ndarray, int | None]], painted_on: list[np.ndarray | None]) -> ShotCarrier:
    """What carries a shot's keyframes to its frames, each keyframe with its line art: `painted_on` (H, W) uint8,
    the lines it was painted over, or None for lines extracted from it (`keyframe_line_art`). A keyframe painted on
    none of the shot's frames is carried from before the first."""
    carried = []
    for (image, position), lines in zip(keyframes, painted_on, strict=True):
        lines = keyframe_line_art(image) if lines is None else lines
        carried.append((image, lines, -1 if position is None else position))
    return ShotCarrier(carried)
