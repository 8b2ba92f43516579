"""How well a shot is colored: the measures shared by the run report, `inkpaint eval --shots` and the benchmarks.

Against ground truth (benchmarks/shot_quality.py, jobs/shot_eval.py):
- region accuracy: the closed paint regions of the true line art, each counting once, a region being right when
  the median CIELAB color of the output in it is within `MAX_DELTA_E` (CIE76) of the truth's (`truth_regions`,
  `regions_right`, `region_accuracy`);
- temporal error: frame-to-frame change of the output that the truth does not have (`temporal_error`);
- the baseline without a model: the keyframe's colors under each frame's lines (`keyframe_under_lines`).

Without ground truth (the report, jobs/report.py), `ShotSignals` over a shot's colored frames in order:
- every frame compared with the frames around it after the shot's motion (`pipeline.consistency`), which flags a
  visibly broken frame (paint on paper, paper in paint, a region of another color);
- on sampled pairs of consecutive frames whose line art barely moved: how much the colors changed anyway
  (flicker), and the share of paint regions whose median color moved by more than `MAX_DELTA_E`;
- the share of painted pixels further than `MAX_DELTA_E` from every color of the keyframe's palette.

A region's color is its median in CIELAB in both: the majority of its pixels decides it, not a blend.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

from pipeline.cielab import rgb_to_lab
from pipeline.consistency import ShotConsistency
from pipeline.regions import keyframe_palette, nearest_in_palette, segment_regions

MIN_REGION = 16  # pixels; smaller regions of the true line art are not scored
MAX_DELTA_E = 10.0  # CIE76: two region colors (or a pixel and a palette color) nearer than this are the same color
SIGNAL_SIDE = 384  # long side, in pixels, that frames are reduced to for the still-pair and palette signals
STILL_LINES = 3.0  # mean gray difference (0-255) under which two frames' line art "barely moved"
PAPER_LEVEL = 200  # line art at least this bright (0-255) on both frames of a pair is paint area, not line
STILL_MIN_REGION = 24  # pixels of a reduced frame; smaller regions are not compared between a still pair


# ---------------------------------------------------------------------------------------------------------------------
# Regions and their colors


@dataclass(frozen=True)
class ScoredRegions:
    """Paint regions of one frame, as flat pixel lists.

    Args:
        pixels: (N,) flat pixel indices inside the regions.
        region: (N,) the region (0..R-1) of each of those pixels.
        count: R, the number of regions.
    """

    pixels: np.ndarray
    region: np.ndarray
    count: int

    def median_lab(self, colors: np.ndarray) -> np.ndarray:
        """(R, 3) median CIELAB color of (H, W, 3) uint8 `colors` in each region."""
        return region_medians(rgb_to_lab(colors.reshape(-1, 3)[self.pixels]), self.region, self.count)


def scored_regions(labels: np.ndarray, min_region: int) -> ScoredRegions:
    """The regions of (H, W) int labels (0 on ink) with at least `min_region` pixels, numbered 0..R-1."""
    flat_labels = labels.ravel()
    sizes = np.bincount(flat_labels)
    scored = sizes >= max(min_region, 1)
    scored[0] = False  # ink
    compact = np.cumsum(scored) - 1
    pixels = np.flatnonzero(scored[flat_labels])
    return ScoredRegions(pixels, compact[flat_labels[pixels]].astype(np.int64), int(scored.sum()))


def region_medians(values: np.ndarray, region: np.ndarray, count: int) -> np.ndarray:
    """Per-channel (upper) median of values (N, C) within each region (N,) numbered 0..count-1 -> (count, C).

    Args:
        values: the pixels' values.
        region: each pixel's region; every region must have at least one pixel.
        count: number of regions.
    """
    sizes = np.bincount(region, minlength=count)
    middle = np.cumsum(sizes) - sizes + sizes // 2
    medians = np.empty((count, values.shape[1]), dtype=np.float64)
    for channel in range(values.shape[1]):
        order = np.lexsort((values[:, channel], region))  # by region, then by value within it
        medians[:, channel] = values[order, channel][middle]
    return medians


def color_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CIE76 distance between (..., 3) CIELAB colors, over the last axis."""
    return np.linalg.norm(np.asarray(a, dtype=np.float64) - b, axis=-1)


# ---------------------------------------------------------------------------------------------------------------------
# Against ground truth


@dataclass(frozen=True)
class FrameRegions:
    """The scored paint regions of one true frame and the truth's color in each.

    Args:
        regions: the regions of the frame's clean line art.
        truth_lab: (R, 3) median CIELAB color of the truth in each region.
    """

    regions: ScoredRegions
    truth_lab: np.ndarray

    @property
    def count(self) -> int:
        return self.regions.count


def truth_regions(truth: np.ndarray, lines: np.ndarray, min_region: int = MIN_REGION) -> FrameRegions:
    """The regions of a true frame that are scored: closed paint regions of its clean line art of at least
    `min_region` pixels, with the truth's median color in each.

    Args:
        truth: (H, W, 3) uint8 true colors.
        lines: (H, W) uint8 clean line art of the same frame.
        min_region: smallest region scored, in pixels.
    """
    regions = scored_regions(segment_regions(lines), min_region)
    return FrameRegions(regions, regions.median_lab(truth))


def regions_right(output: np.ndarray, regions: FrameRegions, max_delta_e: float = MAX_DELTA_E) -> int:
    """How many of a frame's scored regions the output colors right (median within CIE76 < max_delta_e).

    Args:
        output: (H, W, 3) uint8 colored frame.
        regions: the true frame's scored regions.
        max_delta_e: largest color distance, exclusive, that is still right.
    """
    if regions.count == 0:
        return 0
    return int((color_distance(regions.regions.median_lab(output), regions.truth_lab) < max_delta_e).sum())


def region_accuracy(output: Sequence[np.ndarray], regions: Sequence[FrameRegions]) -> tuple[float, int]:
    """Share of the regions colored right, every region of every frame counting once, and how many were scored
    (NaN and 0 when there were none).

    Args:
        output: (H, W, 3) uint8 colored frames, one per entry of `regions`.
        regions: the scored regions of the true frames.
    """
    right = sum(regions_right(frame, frame_regions) for frame, frame_regions in zip(output, regions, strict=True))
    total = sum(frame_regions.count for frame_regions in regions)
    return (right / total if total else float("nan")), total


def temporal_error(outputs: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> float:
    """The change from frame to frame that the output has and the truth does not: the mean over consecutive pairs
    of the mean |(out_t - out_t-1) - (truth_t - truth_t-1)| over pixels and channels, in 0-255 levels; 0 for fewer
    than 2 frames.

    Args:
        outputs: the colored frames in order, (H, W, 3) uint8 each (or one (T, H, W, 3) array).
        truth: the true frames, as many and of the same sizes.
    """
    if len(outputs) != len(truth):
        msg = f"temporal_error needs as many output frames as true frames, got {len(outputs)} and {len(truth)}"
        raise ValueError(msg)
    errors = []
    for index in range(1, len(outputs)):
        if outputs[index].shape != truth[index].shape:
            msg = f"output frame {index} is {outputs[index].shape} but its true frame is {truth[index].shape}"
            raise ValueError(msg)
        output_change = outputs[index].astype(np.int16) - outputs[index - 1].astype(np.int16)
        truth_change = truth[index].astype(np.int16) - truth[index - 1].astype(np.int16)
        errors.append(float(np.abs(output_change - truth_change).mean()))
    return float(np.mean(errors)) if errors else 0.0


def keyframe_under_lines(keyframe: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """The baseline without a model: the keyframe's colors (H, W, 3) uint8 multiplied by a frame's line art (H, W),
    or by several frames' (T, H, W), uint8 (0 ink, 255 paper), rounded -> (H, W, 3) or (T, H, W, 3) uint8."""
    if lines.shape[-2:] != keyframe.shape[:2]:
        msg = f"line art is {lines.shape[-2:]} but the keyframe is {keyframe.shape[:2]}"
        raise ValueError(msg)
    product = keyframe.astype(np.uint16) * lines[..., None].astype(np.uint16)  # at most 255 * 255 + 127: fits
    return ((product + 127) // 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------------------
# Without ground truth


@dataclass(frozen=True)
class FlaggedFrame:
    """A frame a signal of `pipeline.consistency` fired on.

    Args:
        frame: the colored frame's file name.
        signal: "paint on paper", "paper in paint" or "region color".
        pixels: how many of the frame's pixels the signal covers.
    """

    frame: str
    signal: str
    pixels: int


@dataclass
class QualitySignals:
    """What a shot's output says about itself without ground truth (all 0 when nothing could be measured).

    Args:
        still_pairs: sampled consecutive frame pairs whose line art barely moved.
        flicker: mean color change (0-255) over those pairs, where the drawing did not move.
        changed_regions: share (0-1) of the paint regions of those pairs whose color changed.
        off_palette: share (0-1) of painted pixels of the sampled frames whose color is not in the keyframe.
        frames_checked: frames compared with the frames around them (three or more colored in a row).
        flagged: every frame a frame-to-frame signal fired on, in frame order (a frame once per signal).
    """

    still_pairs: int = 0
    flicker: float = 0.0
    changed_regions: float = 0.0
    off_palette: float = 0.0
    frames_checked: int = 0
    flagged: list[FlaggedFrame] = field(default_factory=list)

    @property
    def flagged_frames(self) -> int:
        return len({flag.frame for flag in self.flagged})

    @property
    def suspicion(self) -> float:
        """One number to sort shots by, most likely wrong first."""
        flagged = self.flagged_frames / self.frames_checked if self.frames_checked else 0.0
        return self.flicker / 10 + self.changed_regions + self.off_palette + flagged


def reduced_rgb(image: np.ndarray, side: int = SIGNAL_SIDE) -> np.ndarray:
    """A frame (H, W[, 3]) uint8 reduced to at most `side` pixels a side (box filter), as (h, w, 3) RGB."""
    picture = Image.fromarray(image)
    picture.thumbnail((side, side), Image.Resampling.BOX)
    return np.asarray(picture.convert("RGB"))


def reduced_line_art(gray: np.ndarray, side: int = SIGNAL_SIDE) -> np.ndarray:
    """Line art (H, W) uint8 reduced to at most `side` pixels a side, keeping thin lines: a minimum filter first."""
    picture = Image.fromarray(gray)
    scale = max(picture.size) / side
    if scale > 1.5:
        picture = picture.filter(ImageFilter.MinFilter(3 if scale < 4 else 5))
    picture.thumbnail((side, side), Image.Resampling.BOX)
    return np.asarray(picture)


class ShotSignals:
    """`QualitySignals` of a shot's colored frames, given one at a time in frame order (`add`, then `finish`).

    Args:
        reference: the keyframe (H, W, 3) uint8, whose palette the painted pixels are held against; None when it
            could not be read (no palette signal then).
        sampled: indices of the frames whose pair with the next frame is measured for flicker, changed regions and
            the palette (those signals cost a region segmentation each; the others look at every frame).
    """

    def __init__(self, reference: np.ndarray | None, sampled: Collection[int]) -> None:
        self.palette = keyframe_palette(reduced_rgb(reference)) if reference is not None else None
        self.sampled = set(sampled)
        self.consistency = ShotConsistency()
        self.names: dict[int, str] = {}
        self.flags = []
        self.previous: tuple[int, np.ndarray, np.ndarray] | None = None  # a sampled pair's first frame, reduced
        self.flicker: list[float] = []
        self.changed = self.regions = self.off = self.painted = 0

    def add(self, index: int, name: str, lines: np.ndarray, colors: np.ndarray) -> None:
        """One colored frame: its index in the shot, file name, line art (H, W) uint8 and colors (H, W, 3) uint8.
        Raises ValueError when the colors are not the line art's size."""
        self.flags += self.consistency.add(index, lines, colors)
        self.names[index] = name
        follows = self.previous is not None and self.previous[0] == index - 1
        reduced = None
        if index in self.sampled or follows:
            reduced = (reduced_line_art(lines), reduced_rgb(colors))
        if follows:
            self._add_pair([self.previous[1], reduced[0]], [self.previous[2], reduced[1]])
        self.previous = (index, *reduced) if index in self.sampled else None

    def finish(self) -> QualitySignals:
        """The signals of every frame added."""
        self.flags += self.consistency.finish()
        return QualitySignals(
            still_pairs=len(self.flicker),
            flicker=float(np.mean(self.flicker)) if self.flicker else 0.0,
            changed_regions=self.changed / self.regions if self.regions else 0.0,
            off_palette=self.off / self.painted if self.painted else 0.0,
            frames_checked=self.consistency.compared,
            flagged=[FlaggedFrame(self.names[flag.index], flag.signal, flag.pixels) for flag in self.flags],
        )

    def _add_pair(self, lines: list[np.ndarray], colors: list[np.ndarray]) -> None:
        """One pair of consecutive frames, reduced: line art (gray) and colors."""
        if lines[0].shape != lines[1].shape or colors[0].shape[:2] != lines[0].shape:
            return
        paper = (lines[0] >= PAPER_LEVEL) & (lines[1] >= PAPER_LEVEL)
        if self.palette is not None and len(self.palette) and paper.any():
            lab = rgb_to_lab(colors[0][paper])
            nearest = rgb_to_lab(nearest_in_palette(lab, self.palette))
            self.off += int((color_distance(lab, nearest) > MAX_DELTA_E).sum())
            self.painted += int(paper.sum())
        if np.abs(lines[0].astype(np.int16) - lines[1]).mean() > STILL_LINES:
            return
        self.flicker.append(float(np.abs(colors[0].astype(np.int16) - colors[1])[paper].mean()) if paper.any() else 0.0)
        regions = scored_regions(segment_regions(np.minimum(lines[0], lines[1]), gap=1), STILL_MIN_REGION)
        if regions.count:
            moved = color_distance(regions.median_lab(colors[0]), regions.median_lab(colors[1]))
            self.regions += regions.count
            self.changed += int((moved > MAX_DELTA_E).sum())
