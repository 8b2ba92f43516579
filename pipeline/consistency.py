"""Frame-to-frame consistency of a colored shot, without ground truth: paint that comes and goes between frames.

A painted cel keeps its colors while the drawing moves: after the shot's motion is taken out, a spot of a frame is
painted (or paper) as it is in the frames around it, and a closed region of the line art keeps its color. Three
signals look for where one frame breaks that, each on the frame's closed regions of line art
(`pipeline.regions.segment_regions`):

- "paint on paper": paint in a region that is mostly paper, on spots that are paper in a frame near it (one or two
  frames before or after). Paint is judged against the least painted frame within reach, so that a leak two or
  three frames long (frames 8, 9 and 10) still has a clean frame to be seen against;
- "paper in paint": the reverse, paper in a region that is mostly painted, on spots painted in a frame near it;
- "region color": a paint region whose color (its mean, CIE76) differs from the regions it overlaps most in the
  frames around it while those agree with each other: frame k is odd when k-1 and k+1 agree and k differs from
  both, or when k agrees with k+1 while k-1 and k+2 agree with each other and not with k (and the mirror of that);
  a frame at an end of the shot, when its two nearest frames agree and it differs from them. A color has no "clean"
  side as paper does, so a wrong color that lasts three frames or more is not seen.

The motion between neighbours is DIS optical flow (Kroeger et al., ECCV 2016) on each drawing's distance to its
nearest line (as in `pipeline.correspondence`), at a reduced size (`SIDE`); two frames away, the two one-frame flows
are composed. Whole-array numpy and OpenCV, whose calls release the GIL: a 1080p frame costs about 30 ms on one core
once decoded (`benchmarks/consistency_speed.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.regions import segment_regions

SIDE = 384  # long side, in pixels, the signals are measured at
INK_LEVEL = 160  # darker than this (0-255) on the reduced line art is ink
PAPER_DELTA_E = 10.0  # a pixel nearer than this (CIE76) to white is paper
REGION_DELTA_E = 10.0  # two region colors further apart than this differ
MIN_REGION_SHARE = 0.0005  # regions smaller than this share of the frame are too small to judge by their color
MIN_FLAG_SHARE = 0.002  # a frame is flagged when a signal covers at least this share of it
GUIDE_CLIP = 12.0  # the flow guide's distance to the nearest line saturates here (reduced pixels)
REACH = 2  # frames before and after a frame that it is compared with
PAPER, PAINT, UNKNOWN = 0, 1, 2  # what a pixel is
SIGNALS = ("paint on paper", "paper in paint", "region color")


@dataclass(frozen=True)
class FrameFlag:
    """A frame a signal fired on.

    Args:
        index: the frame's index, as given to `ShotConsistency.add`.
        signal: one of SIGNALS.
        pixels: how many of the frame's pixels (at its own size) the signal covers.
    """

    index: int
    signal: str
    pixels: int


@dataclass
class _Frame:
    """One frame reduced to what the signals need (N regions)."""

    index: int
    scale: float  # pixels of the frame at its own size per reduced pixel
    guide: np.ndarray  # (h, w) uint8 distance to the nearest line, what the flow follows
    labels: np.ndarray  # (h, w) int32 closed regions 1..N, 0 on ink
    state: np.ndarray  # (h, w) uint8 PAPER, PAINT, or UNKNOWN on and beside the lines
    region_lab: np.ndarray  # (N + 1, 3) float32 mean Lab of each region, away from its lines
    region_judged: np.ndarray  # (N + 1,) bool: the region is large enough to judge by its color
    paper_share: np.ndarray  # (N + 1,) float32 share of each region that is paper
    forward: np.ndarray | None = None  # (h, w, 2) float32 flow to the next frame: x here is at x + flow there
    backward: np.ndarray | None = None  # the same to the frame before


def _reduced_size(shape: tuple[int, int]) -> tuple[int, int]:
    height, width = shape
    scale = min(1.0, SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _prepare(index: int, lines: np.ndarray, colors: np.ndarray) -> _Frame:
    """Reduce one frame: its line art (H, W) uint8 (0 ink) and its colors (H, W, 3) uint8 RGB."""
    height, width = _reduced_size(lines.shape)
    scale = lines.shape[0] * lines.shape[1] / (height * width)
    if (height, width) != lines.shape:
        ratio = lines.shape[0] / height
        if ratio > 1.5:  # a minimum filter first, so that a thin line survives the reduction as ink
            lines = cv2.erode(lines, np.ones((3, 3) if ratio < 4 else (5, 5), np.uint8))
        lines = cv2.resize(lines, (width, height), interpolation=cv2.INTER_AREA)
        colors = cv2.resize(colors, (width, height), interpolation=cv2.INTER_AREA)
    ink = lines < INK_LEVEL
    labels = segment_regions(lines, gap=1, ink_threshold=INK_LEVEL)
    count = int(labels.max()) + 1
    # A line's own pixels and those beside it hold the line's color and its anti-aliasing, not the paint's.
    beside = cv2.dilate(ink.view(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    interior = ~beside & (labels > 0)
    lab = cv2.cvtColor(colors.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)  # (h, w, 3), L 0-100
    paper = np.square(lab - np.array([100.0, 0.0, 0.0], np.float32)).sum(axis=2) <= PAPER_DELTA_E**2
    state = np.where(interior, np.where(paper, PAPER, PAINT), UNKNOWN).astype(np.uint8)
    inside = labels[interior]
    sizes = np.maximum(np.bincount(inside, minlength=count), 1)
    region_lab = np.stack([np.bincount(inside, lab[..., c][interior], minlength=count) for c in range(3)], axis=1)
    region_judged = sizes >= max(4.0, MIN_REGION_SHARE * height * width)
    region_judged[0] = False
    paper_share = np.bincount(inside, paper[interior], minlength=count) / sizes
    distance = cv2.distanceTransform((~ink).view(np.uint8), cv2.DIST_L2, 3)
    guide = cv2.convertScaleAbs(np.minimum(distance, GUIDE_CLIP), alpha=255.0 / GUIDE_CLIP)
    return _Frame(index, scale, guide, labels, state, (region_lab / sizes[:, None]).astype(np.float32),
                  region_judged, paper_share.astype(np.float32))  # fmt: skip


def _grid(shape: tuple[int, int]) -> np.ndarray:
    """(h, w, 2) float32 (x, y) of every pixel."""
    height, width = shape
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return np.dstack([xs, ys])


def _sample(image: np.ndarray, coords: np.ndarray, outside: float) -> np.ndarray:
    """`image` at the (x, y) `coords`, nearest pixel; `outside` beyond its edges."""
    return cv2.remap(image, coords, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=outside)


def _follow(coords: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Positions `coords` (in one frame) carried one frame further along that frame's `flow`."""
    return coords + cv2.remap(flow, coords, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _most_overlapping(labels: np.ndarray, other: np.ndarray, count: int) -> np.ndarray:
    """For each label 0..count-1 of `labels`, the label of `other` (at the same pixels) it overlaps most; 0 for
    none."""
    keep = other > 0
    stride = int(other.max(initial=0)) + 1
    pairs, overlap = np.unique(labels[keep].astype(np.int64) * stride + other[keep], return_counts=True)
    mine, theirs = np.divmod(pairs, stride)
    order = np.lexsort((overlap, mine))  # by label, its largest overlap last
    best = np.zeros(count, dtype=np.int64)
    best[mine[order]] = theirs[order]  # a later (larger) overlap overwrites an earlier one
    return best


def _odd_one_out(same: dict, differs: dict, offsets: set[int], count: int) -> np.ndarray:
    """(count,) bool: where frame 0 disagrees with the frames around it while they agree (the module's rule).

    `same[a, b]` / `differs[a, b]`: (count,) bool, where the frames at offsets a and b are known to agree /
    disagree (both False where either is unknown). `offsets`: the frames there are (an end of a shot has fewer).
    """
    odd = np.zeros(count, dtype=bool)
    if {-1, 1} <= offsets:
        odd |= same[-1, 1] & differs[0, -1] & differs[0, 1]
    if {-1, 1, 2} <= offsets:
        odd |= same[0, 1] & same[-1, 2] & differs[0, -1]
    if {-2, -1, 1} <= offsets:
        odd |= same[0, -1] & same[-2, 1] & differs[0, 1]
    for side in (-1, 1):
        if {side, 2 * side} <= offsets and -side not in offsets:  # an end of the shot
            odd |= same[side, 2 * side] & differs[0, side]
    return odd


class ShotConsistency:
    """Takes a shot's frames in order and says which frames disagree with the frames around them.

    `add` takes each frame and returns the flags of the frames that could be judged by then (a frame waits for the
    REACH frames after it); `finish` returns the rest. A frame whose index does not follow the last one's (a failed
    frame between them) or whose size differs starts a new run: frames are only compared within a run. Keeps
    2 * REACH + 1 reduced frames; one DIS instance (it keeps state between calls, so one per thread). `compared`
    counts the frames judged so far; a run of fewer than three frames is not judged.
    """

    def __init__(self) -> None:
        self.compared = 0
        self._run: list[_Frame] = []
        self._judged = 0  # frames of the run judged so far
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def add(self, index: int, lines: np.ndarray, colors: np.ndarray) -> list[FrameFlag]:
        """Take frame `index`: its line art (H, W) uint8, 0 ink, and its colors (H, W, 3) uint8 RGB."""
        if colors.shape[:2] != lines.shape:
            msg = f"frame {index}: colors of {colors.shape[:2]} and line art of {lines.shape} differ in size"
            raise ValueError(msg)
        frame = _prepare(index, lines, colors)
        flags: list[FrameFlag] = []
        last = self._run[-1] if self._run else None
        if last is not None and (last.index + 1 != index or last.labels.shape != frame.labels.shape):
            flags = self.finish()
            last = None
        if last is not None:
            last.forward = self._dis.calc(last.guide, frame.guide, None)
            frame.backward = self._dis.calc(frame.guide, last.guide, None)
        self._run.append(frame)
        while self._judged + REACH < len(self._run):
            flags += self._judge(self._judged)
        return flags

    def finish(self) -> list[FrameFlag]:
        """The flags of the frames still waiting for the frames after them; the run ends."""
        flags: list[FrameFlag] = []
        while self._judged < len(self._run):
            flags += self._judge(self._judged)
        self._run, self._judged = [], 0
        return flags

    def _judge(self, position: int) -> list[FrameFlag]:
        """Flag the run's frame at `position`, then forget the frames no later frame needs."""
        frames = {offset: self._run[position + offset] for offset in range(-REACH, REACH + 1)
                  if 0 <= position + offset < len(self._run)}  # fmt: skip
        self._judged += 1
        here = frames[0]
        coords = self._positions(frames)
        if len(coords) < 2:
            return []  # a run of one or two frames: too little to tell a fault from a change
        self.compared += 1
        states = [_sample(frames[offset].state, xy, UNKNOWN) for offset, xy in coords.items()]
        paper_near = np.logical_or.reduce([state == PAPER for state in states])
        paint_near = np.logical_or.reduce([state == PAINT for state in states])
        mostly_paper = (here.paper_share >= 0.5)[here.labels]
        signals = {
            "paint on paper": (here.state == PAINT) & mostly_paper & paper_near,
            "paper in paint": (here.state == PAPER) & ~mostly_paper & paint_near,
        }
        pixels = {
            signal: int(cv2.morphologyEx(mask.view(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).sum())
            for signal, mask in signals.items()
        }  # the opening drops slivers along edges the flow moved a pixel off
        pixels["region color"] = self._region_color(frames, coords)
        drop = self._judged - REACH
        if drop > 0:
            del self._run[:drop]
            self._judged -= drop
        minimum = MIN_FLAG_SHARE * here.labels.size
        return [FrameFlag(here.index, signal, round(count * here.scale)) for signal, count in pixels.items()
                if count >= minimum]  # fmt: skip

    @staticmethod
    def _positions(frames: dict[int, _Frame]) -> dict[int, np.ndarray]:
        """Where each pixel of frame 0 is in each other frame (by offset), along the one-frame flows."""
        grid = _grid(frames[0].labels.shape)
        coords: dict[int, np.ndarray] = {}
        for side in (-1, 1):
            position, offset = grid, 0
            while offset + side in frames:
                flow = frames[offset].forward if side == 1 else frames[offset].backward
                position = position + flow if offset == 0 else _follow(position, flow)
                offset += side
                coords[offset] = position
        return coords

    @staticmethod
    def _region_color(frames: dict[int, _Frame], coords: dict[int, np.ndarray]) -> int:
        """Reduced pixels of frame 0's regions whose color is the odd one out among the frames around."""
        here = frames[0]
        count = len(here.region_lab)
        judged = here.labels > 0
        inside = here.labels[judged]
        lab, known = {0: here.region_lab}, {0: here.region_judged}
        for offset, xy in coords.items():
            there = frames[offset]
            theirs = _sample(there.labels.astype(np.float32), xy, 0).astype(np.int32)  # exact below 2**24 labels
            match = _most_overlapping(inside, theirs[judged], count)
            lab[offset], known[offset] = there.region_lab[match], there.region_judged[match] & (match > 0)
        same, differs = {}, {}
        for a in lab:
            for b in lab:
                both = known[a] & known[b] & here.region_judged
                close = np.square(lab[a] - lab[b]).sum(axis=1) <= REGION_DELTA_E**2
                same[a, b], differs[a, b] = both & close, both & ~close
        odd = _odd_one_out(same, differs, set(lab), count)
        return int(np.bincount(inside, minlength=count)[odd].sum())


def frame_flags(frames: list[tuple[np.ndarray, np.ndarray]]) -> list[FrameFlag]:
    """Every flag of a shot given as (line art, colors) pairs in order, indexed from 0 (see `ShotConsistency`)."""
    checker = ShotConsistency()
    flags: list[FrameFlag] = []
    for index, (lines, colors) in enumerate(frames):
        flags += checker.add(index, lines, colors)
    return flags + checker.finish()
