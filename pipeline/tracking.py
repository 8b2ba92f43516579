"""Colors that hold across a shot: each paint region keeps the color it had in the frame before.

A flat fill alone decides every frame on its own, so a region whose vote wavers between two colors flickers. The
tracker decides frames outward from the keyframe: the keyframe's own drawing, segmented, gives the first colors;
every later frame's regions are matched to the regions of its neighbour nearer the keyframe (by overlap, after the
estimated motion between the two drawings) and a matched region inherits its neighbour's color exactly, unless the
model's vote in the new frame clearly disagrees. A region with no match (newly visible, or a different shape) takes
the model's vote.

Motion is one translation per frame pair (phase correlation of the two drawings' ink): parts that move against the
rest are still matched when they overlap their old place by half; faster parts fall back to the model's vote.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from model.xdog import extract_line_art
from pipeline.region_vote import RegionVote, region_colors, region_vote
from pipeline.regions import segment_regions

# Side of the ink maps that motion is estimated on; enough for the few-pixel moves between neighbouring frames.
MOTION_GRID = 128
# Overlap is counted on at most this many sample points per side of the frame.
MATCH_GRID = 384


@dataclass(frozen=True)
class TrackingOptions:
    """When a region inherits its neighbour's color.

    Args:
        min_overlap: share of a region's pixels that must land on one region of the neighbour for a match.
        max_size_ratio: a match whose areas differ by more than this factor (a region split or merged by lines
            that opened or closed) keeps the old color only when the vote roughly agrees with it.
        disagree_delta_e: a matched region takes the model's vote instead when the two differ by more than this
            (CIE76 Delta E): the evidence clearly disagrees.
        agree_delta_e: the Delta E under which even a loose match (see max_size_ratio) keeps the old color.
    """

    min_overlap: float = 0.5
    max_size_ratio: float = 2.0
    disagree_delta_e: float = 40.0
    agree_delta_e: float = 12.0


@dataclass
class TrackedFrame:
    """A frame whose region colors are decided.

    Args:
        vote: its regions and the model's vote (or, for the keyframe, the keyframe's own colors).
        lab: (N + 1, 3) the decided Lab color of every region.
        ink: (h, w) float32 ink map on a grid of at most MOTION_GRID a side, for motion estimation.
    """

    vote: RegionVote
    lab: np.ndarray
    ink: np.ndarray


def ink_map(lines: np.ndarray) -> np.ndarray:
    """(H, W) uint8 line art -> (h, w) float32 ink density in [0, 1] on a grid of at most MOTION_GRID a side."""
    height, width = lines.shape
    scale = min(1.0, MOTION_GRID / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = Image.fromarray(lines, "L").resize(size, Image.Resampling.BOX) if scale < 1 else Image.fromarray(lines)
    return 1.0 - np.asarray(small, dtype=np.float32) / 255


def estimate_shift(previous: np.ndarray, current: np.ndarray, frame_shape: tuple[int, int]) -> tuple[int, int]:
    """The translation (dy, dx) in frame pixels that carries the `previous` drawing onto the `current` one.

    Phase correlation of the two ink maps: the peak of the normalised cross-power spectrum's inverse. Maps of
    different sizes (frames of different sizes) give no shift.
    """
    if previous.shape != current.shape or not previous.any() or not current.any():
        return 0, 0
    spectrum = np.fft.rfft2(current) * np.conj(np.fft.rfft2(previous))
    spectrum /= np.abs(spectrum) + 1e-9
    correlation = np.fft.irfft2(spectrum, s=current.shape)
    peak_y, peak_x = np.unravel_index(int(np.argmax(correlation)), correlation.shape)
    h, w = current.shape
    dy = peak_y - h if peak_y > h // 2 else peak_y  # the spectrum wraps: large shifts are negative ones
    dx = peak_x - w if peak_x > w // 2 else peak_x
    return round(dy * frame_shape[0] / h), round(dx * frame_shape[1] / w)


def match_regions(previous: TrackedFrame, current: RegionVote, shift: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """For each region of `current`, the region of `previous` most of it lands on after `shift`.

    Counted on a sample grid. Returns (match, overlap): (N + 1,) int label in `previous` (0: none) and the share
    of the region's sampled pixels on that label, among those that land on some region of `previous`.
    """
    labels, old_labels = current.labels, previous.vote.labels
    height, width = labels.shape
    step = max(1, max(height, width) // MATCH_GRID)
    ys, xs = np.mgrid[0:height:step, 0:width:step]
    old_ys, old_xs = ys - shift[0], xs - shift[1]
    inside = (old_ys >= 0) & (old_ys < old_labels.shape[0]) & (old_xs >= 0) & (old_xs < old_labels.shape[1])
    new = labels[ys[inside], xs[inside]].astype(np.int64)
    old = old_labels[old_ys[inside], old_xs[inside]].astype(np.int64)
    keep = current.flat[new] & previous.vote.flat[old]  # ink and tiny regions of either frame carry no color
    new, old = new[keep], old[keep]
    n_new, n_old = len(current.sizes), int(old_labels.max()) + 1
    match = np.zeros(n_new, dtype=np.int64)
    overlap = np.zeros(n_new, dtype=np.float64)
    if len(new) == 0:
        return match, overlap
    pairs = np.bincount(new * n_old + old, minlength=n_new * n_old)
    pair_ids = np.flatnonzero(pairs)
    counts = pairs[pair_ids]
    pair_new, pair_old = pair_ids // n_old, pair_ids % n_old
    totals = np.bincount(pair_new, weights=counts, minlength=n_new)
    # The best partner of each new region: sort pairs by (new, count) and take each new region's last.
    order = np.lexsort((counts, pair_new))
    last = np.flatnonzero(np.r_[pair_new[order][1:] != pair_new[order][:-1], True])
    best = order[last]
    match[pair_new[best]] = pair_old[best]
    overlap[pair_new[best]] = counts[best] / totals[pair_new[best]]
    return match, overlap


def decide_colors(
    previous: TrackedFrame, current: RegionVote, shift: tuple[int, int], options: TrackingOptions
) -> np.ndarray:
    """(N + 1, 3) Lab colors for `current`'s regions: inherited from `previous` where matched, else the vote."""
    match, overlap = match_regions(previous, current, shift)
    decided = current.lab.copy()
    matched = current.flat & (match > 0) & (overlap >= options.min_overlap)
    old_lab = previous.lab[match]
    delta_e = np.sqrt(((current.lab - old_lab) ** 2).sum(axis=1))
    old_sizes = previous.vote.sizes[match].astype(np.float64)
    ratio = np.maximum(current.sizes, 1) / np.maximum(old_sizes, 1)
    same_shape = (ratio <= options.max_size_ratio) & (ratio >= 1 / options.max_size_ratio)
    inherit = matched & ((same_shape & (delta_e <= options.disagree_delta_e)) | (delta_e <= options.agree_delta_e))
    decided[inherit] = old_lab[inherit]
    return decided


def keyframe_regions(reference: np.ndarray, frame_shape: tuple[int, int], *, gap: int = 3) -> TrackedFrame:
    """The keyframe as the tracker's first decided frame: its own colors per region, at the shot's frame size.

    The keyframe's regions come from line art extracted from it (XDoG), so edges between two fills separate
    regions as lines do; each region's color is the median of the keyframe's own pixels.
    """
    height, width = frame_shape
    if reference.shape[:2] != (height, width):
        reference = np.asarray(Image.fromarray(reference, "RGB").resize((width, height), Image.Resampling.BILINEAR))
    lines = (extract_line_art(reference) * 255).astype(np.uint8)
    vote = region_vote(reference, segment_regions(lines, gap=gap))
    return TrackedFrame(vote=vote, lab=vote.lab, ink=ink_map(lines))


class RegionTracker:
    """Decides the region colors of a shot's frames, each from its neighbour nearer a keyframe.

    Frames must be given to `decide` in an order where that neighbour comes first (outward from the keyframes);
    a neighbour that was never decided (a failed or resumed frame) is skipped over toward the keyframe.

    Args:
        keyframes: (image (H, W, 3) uint8, position) of each keyframe: the frame of the shot its colors are
            first carried to (where it was painted, or 0 for the first frame).
        palette: colors every region is locked to, or None.
        options: the matching rules.
    """

    def __init__(
        self,
        keyframes: list[tuple[np.ndarray, int]],
        palette: np.ndarray | None = None,
        options: TrackingOptions | None = None,
    ) -> None:
        if not keyframes:
            msg = "region tracking needs at least one keyframe"
            raise ValueError(msg)
        self.keyframes = {position: image for image, position in reversed(keyframes)}  # the first one wins a tie
        self.positions = tuple(sorted(self.keyframes))
        self.palette = palette
        self.options = options or TrackingOptions()
        self.decided: dict[int, TrackedFrame] = {}
        self.seeds: dict[tuple[int, tuple[int, int]], TrackedFrame] = {}

    def nearest_keyframe(self, index: int) -> int:
        return min(self.positions, key=lambda position: (abs(index - position), position))

    def predecessor(self, index: int, frame_shape: tuple[int, int]) -> TrackedFrame:
        """The decided frame nearest to `index` on its way to its keyframe; the keyframe itself at the end."""
        keyframe = self.nearest_keyframe(index)
        step = 1 if index < keyframe else -1
        candidate = index + step if index != keyframe else keyframe
        while candidate != keyframe + step and candidate != index:
            if candidate in self.decided:
                return self.decided[candidate]
            candidate += step
        seed = (keyframe, frame_shape)
        if seed not in self.seeds:
            self.seeds[seed] = keyframe_regions(self.keyframes[keyframe], frame_shape)
        return self.seeds[seed]

    def decide(self, index: int, vote: RegionVote, lines: np.ndarray) -> np.ndarray:
        """(N + 1, 3) uint8 colors for the regions of frame `index` (its `vote` over its line art `lines`)."""
        previous = self.predecessor(index, lines.shape)
        ink = ink_map(lines)
        shift = estimate_shift(previous.ink, ink, lines.shape)
        lab = decide_colors(previous, vote, shift, self.options)
        self.decided[index] = TrackedFrame(vote=vote, lab=lab, ink=ink)
        self.forget_behind(index)
        return region_colors(lab, self.palette)

    def forget_behind(self, index: int) -> None:
        """Drop decided frames no later frame will be matched to (memory stays flat over a long shot)."""
        keyframe = self.nearest_keyframe(index)
        behind = index - 1 if index > keyframe else index + 1
        if index != keyframe and behind != keyframe:
            self.decided.pop(behind, None)
