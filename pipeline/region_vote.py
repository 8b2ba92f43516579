"""Flat cel colors: the model's colors voted on in each paint region of the line art (pipeline/regions.py).

The model's colors drift inside a region (a soft gradient, a stray blotch of the neighbour's color); `flat_fill`
gives each region the median of the model's colors inside it, taken in CIELAB so that the vote is perceptual rather
than per sRGB byte, and `split_leaks` splits off the areas that leaked into a region through a gap the segmentation
could not close.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.cielab import lab_to_rgb, rgb_to_lab
from pipeline.regions import (
    dilate,
    four_neighbours,
    label_components,
    nearest_in_palette,
    paint_labels,
    segment_regions,
)

# Lab values are voted on after quantising to this step: fine enough that the median is exact to well under one
# Lab unit, coarse enough to sort as integers.
_LAB_STEP = 0.05


@dataclass(frozen=True)
class RegionVote:
    """The model's color for every paint region of a frame: the per-channel median of its pixels, in CIELAB.

    Args:
        labels: (H, W) int32 region labels from `segment_regions`.
        sizes: (N + 1,) pixels per label (label 0 is ink).
        flat: (N + 1,) bool, the regions that take one color (at least `min_region` pixels; never label 0).
        lab: (N + 1, 3) float64 median Lab color per label; rows that are not `flat` are zero.
    """

    labels: np.ndarray
    sizes: np.ndarray
    flat: np.ndarray
    lab: np.ndarray


def region_vote(
    colors: np.ndarray,
    labels: np.ndarray,
    *,
    min_region: int = 16,
    lab: np.ndarray | None = None,
    previous: RegionVote | None = None,
) -> RegionVote:
    """Each region's median color in CIELAB, the vote `flat_fill` paints with.

    The median (rather than the mean) lets the majority win outright: a region painted 60% red and 40% blue comes
    out red, not purple. Regions under `min_region` pixels are not voted on: a tiny region's median is no better
    than its pixels.

    Args:
        colors: (H, W, 3) uint8 colors, already at the frame's size.
        labels: (H, W) int32 region labels from `segment_regions`.
        min_region: smallest region, in pixels, that is flattened.
        lab: (H, W, 3) float CIELAB of `colors`, when already at hand.
        previous: a vote over labels that these refine (some pixels given other or new labels, as `split_leaks`
            does): the regions whose pixels did not change keep their vote, and only the others are counted again.
    """
    if colors.ndim != 3 or colors.shape[2] != 3 or colors.dtype != np.uint8:
        msg = f"colors must be (H, W, 3) uint8, got {colors.shape} {colors.dtype}"
        raise ValueError(msg)
    if labels.shape != colors.shape[:2]:
        msg = f"labels are {labels.shape} but colors are {colors.shape[:2]}; scale the colors to the frame first"
        raise ValueError(msg)
    flat_labels = labels.ravel()
    sizes = np.bincount(flat_labels)
    flat = sizes >= max(min_region, 1)
    flat[0] = False
    region_lab = np.zeros((len(sizes), 3), dtype=np.float64)
    todo = flat
    if previous is not None:
        todo = flat & _changed_regions(labels, previous.labels, len(sizes))
        kept = min(len(sizes), len(previous.sizes))
        region_lab[:kept][~todo[:kept]] = previous.lab[:kept][~todo[:kept]]
        region_lab[~flat] = 0
    pixels = np.flatnonzero(todo[flat_labels])
    if len(pixels) == 0:
        return RegionVote(labels, sizes, flat, region_lab)
    # Compact index over the voted regions only, so the work scales with them and not with every label.
    compact = np.cumsum(todo) - 1
    region = compact[flat_labels[pixels]].astype(np.int64)
    n_regions = int(todo.sum())
    region_sizes = sizes[todo]
    offsets = np.cumsum(region_sizes) - region_sizes
    median_at = offsets + region_sizes // 2  # upper median: with an even split the later value wins

    pixel_lab = rgb_to_lab(colors.reshape(-1, 3)[pixels]) if lab is None else lab.reshape(-1, 3)[pixels]
    medians = np.empty((n_regions, 3), dtype=np.float64)
    for channel in range(3):
        quantised = np.round(pixel_lab[:, channel] / _LAB_STEP).astype(np.int64)
        low = int(quantised.min())
        medians[:, channel] = (_grouped_median(region, quantised - low, median_at) + low) * _LAB_STEP
    region_lab[todo] = medians
    return RegionVote(labels, sizes, flat, region_lab)


def _changed_regions(labels: np.ndarray, before: np.ndarray, count: int) -> np.ndarray:
    """(count,) bool: the labels that gained or lost pixels from `before` to `labels`, and labels new since."""
    changed = np.zeros(count, dtype=bool)
    moved = labels != before
    changed[np.unique(labels[moved])] = True
    old = np.unique(before[moved])
    changed[old[old < count]] = True
    changed[int(before.max()) + 1 :] = True
    return changed


def _grouped_median(group: np.ndarray, values: np.ndarray, median_at: np.ndarray) -> np.ndarray:
    """The value at sorted position `median_at` of each group: `group` (N,) int 0..G-1 and `values` (N,) int >= 0.

    Counting (a histogram per group, then its running sum) is linear in N, where sorting is not; it needs G times
    the value span in memory, so large spans fall back to sorting (group, value) pairs as one integer key.
    """
    groups, span = len(median_at), int(values.max()) + 1
    keys = group * span + values
    if groups * span <= 1 << 24:
        running = np.cumsum(np.bincount(keys, minlength=groups * span))
        return np.searchsorted(running, median_at, side="right") % span
    return np.sort(keys)[median_at] % span


def paint_regions(colors: np.ndarray, vote: RegionVote, region_rgb: np.ndarray) -> np.ndarray:
    """A new (H, W, 3) uint8 frame: every `flat` region of the vote painted its row of `region_rgb` (N + 1, 3)
    uint8; ink and tiny regions keep `colors` (the artist's lines are laid over them afterwards anyway)."""
    return paint_labels(colors, vote.labels, vote.flat, region_rgb[: len(vote.flat)])


def flat_fill(
    colors: np.ndarray, labels: np.ndarray, *, min_region: int = 16, palette: np.ndarray | None = None
) -> np.ndarray:
    """One flat color per region: its `region_vote`, optionally locked to a palette.

    Args:
        colors: (H, W, 3) uint8 colors, already at the frame's size.
        labels: (H, W) int32 region labels from `segment_regions`.
        min_region: smallest region, in pixels, that is flattened.
        palette: (P, 3) uint8 colors (see `keyframe_palette`): each region's color is then the palette color
            nearest to its median (palette lock: studios paint from a fixed color model).

    Returns:
        (H, W, 3) uint8 colors, a new array.
    """
    vote = region_vote(colors, labels, min_region=min_region)
    return paint_regions(colors, vote, region_colors(vote.lab, palette))


def region_colors(lab: np.ndarray, palette: np.ndarray | None = None) -> np.ndarray:
    """(N, 3) Lab colors -> (N, 3) uint8 sRGB, each the nearest `palette` color when a palette is given."""
    if palette is None or len(palette) == 0:
        return lab_to_rgb(lab)
    return nearest_in_palette(lab, palette)


_NEIGHBOUR_SLICES = (
    ((slice(1, None), slice(None)), (slice(None, -1), slice(None))),
    ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
    ((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
    ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
)


def _neighbour_differs(values: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels with a 4-neighbour of another value (the image border does not count)."""
    differs = np.zeros(values.shape, dtype=bool)
    vertical = values[1:] != values[:-1]
    horizontal = values[:, 1:] != values[:, :-1]
    differs[1:] |= vertical
    differs[:-1] |= vertical
    differs[:, 1:] |= horizontal
    differs[:, :-1] |= horizontal
    return differs


def split_leaks(
    lab: np.ndarray,
    vote: RegionVote,
    *,
    wall_width: int = 3,
    leak_delta_e: float = 20.0,
    max_opening: float = 0.2,
    min_leak: int = 64,
) -> np.ndarray:
    """Region labels with the paint areas that leaked into a region through an unclosed gap split off.

    Where two paint areas meet at an opening in the lines wider than the closed gaps, segmentation gives one
    region, and one vote would paint one of them the other's color. The model's colors tell the areas apart: the
    part of a region that differs from its vote by more than `leak_delta_e` is a leak when it is walled by lines
    except for a narrow opening, i.e. when at most `max_opening` of its border touches the rest of the region (the
    rest of its border is ink, or within `wall_width` of ink: the model's colors blur along the lines). A region
    the model colors half one way and half the other, split across its middle, touches along a long border and
    stays one region: there the vote wins, as it should.

    Args:
        lab: (H, W, 3) float CIELAB of the model's colors at the frame's size.
        vote: the vote over the frame's line regions (`region_vote`).
        wall_width: pixels beside the ink that count as wall (about twice the upscaling factor of the colors).
        leak_delta_e: CIE76 distance from the region's vote beyond which a pixel disagrees with it.
        max_opening: largest share of a leak's border that may touch the rest of its region.
        min_leak: smallest leak, in pixels clear of the wall band, split off.

    Returns:
        (H, W) int32 labels: `vote.labels` with each leak given a new label; the same array when none was found.
    """
    labels = vote.labels
    distance = _squared_distance_to_vote(lab, vote)  # squared: compared with squared thresholds below
    # A pixel next to another region's pixel (where a closed gap was handed back) may not link the two.
    flat = vote.flat[labels]
    dissent = flat & (distance > leak_delta_e**2) & ~_neighbour_differs(labels)
    parts, count = label_components(dissent)
    if count == 0:
        return labels
    # Border pixels of each part, and those of them touching their own region's agreeing pixels.
    border = (parts > 0) & _neighbour_differs(parts)
    near_ink = dilate(labels == 0, 2 * wall_width + 1)
    agree = flat & ~dissent & ~near_ink
    touching = np.zeros(labels.shape, dtype=bool)  # next to an agreeing pixel of the same region
    for here, there in _NEIGHBOUR_SLICES:
        touching[here] |= agree[there] & (labels[there] == labels[here])
    touching &= border
    sizes = np.bincount(parts.ravel(), minlength=count + 1)
    borders = np.bincount(parts[border], minlength=count + 1)
    openings = np.bincount(parts[touching], minlength=count + 1)
    # A leak is an area of its own, not the model's blur along a line: most of it lies clear of the lines.
    clear = np.bincount(parts[dissent & ~near_ink], minlength=count + 1)
    leaks = (clear >= min_leak) & (2 * clear >= sizes) & (openings <= max_opening * np.maximum(borders, 1))
    leaks[0] = False
    if not leaks.any():
        return labels
    first = labels.max() + 1
    new_label = np.zeros(count + 1, dtype=np.int32)
    new_label[leaks] = first + np.arange(int(leaks.sum()), dtype=np.int32)
    leak_labels = new_label[parts]
    # The wall band along the lines is blurred between both areas: the leak takes the band pixels that lean its way.
    wall = ~agree & ~dissent & flat & (distance > (leak_delta_e / 2) ** 2)
    # Only around the leaks: growing over the whole frame would cost more than everything else here.
    rows, columns = np.nonzero(leak_labels)
    reach = 2 * wall_width + 1
    around = (slice(max(rows.min() - reach, 0), rows.max() + reach + 1),
              slice(max(columns.min() - reach, 0), columns.max() + reach + 1))  # fmt: skip
    _grow_within_region(leak_labels[around], wall[around], labels[around], steps=2 * wall_width)
    return np.where(leak_labels > 0, leak_labels, labels)


def _squared_distance_to_vote(lab: np.ndarray, vote: RegionVote) -> np.ndarray:
    """(H, W) float32: each pixel's squared CIE76 distance from its region's vote, a channel at a time (one (H, W)
    gather per channel instead of an (H, W, 3) float64 one)."""
    region_lab = vote.lab.astype(np.float32)
    total = np.zeros(vote.labels.shape, dtype=np.float32)
    for channel in range(3):
        difference = lab[..., channel] - region_lab[:, channel][vote.labels]
        total += difference * difference
    return total


def _grow_within_region(grown: np.ndarray, allowed: np.ndarray, regions: np.ndarray, steps: int) -> None:
    """Spread the labels of `grown` in place into unlabelled `allowed` pixels of the same `regions` label (from the
    first labelled neighbour of the same region, looking above, below, left, right), over the pixels still to
    fill only."""
    flat = np.ascontiguousarray(grown).reshape(-1)  # grown itself when contiguous, else written back at the end
    region_of = np.ascontiguousarray(regions).reshape(-1)
    todo = np.flatnonzero(allowed & (grown == 0))
    for _ in range(steps):
        if len(todo) == 0:
            break
        reached = np.zeros(len(todo), dtype=grown.dtype)
        for neighbour, inside in four_neighbours(todo, *grown.shape):
            candidate = flat[neighbour]
            take = inside & (candidate > 0) & (region_of[neighbour] == region_of[todo]) & (reached == 0)
            reached[take] = candidate[take]
        step = reached > 0
        if not step.any():
            break
        flat[todo[step]] = reached[step]
        todo = todo[~step]
    if not np.shares_memory(flat, grown):
        grown[...] = flat.reshape(grown.shape)


def vote_regions(
    colors: np.ndarray,
    lines: np.ndarray,
    *,
    gap: int = 3,
    min_region: int = 16,
    upscale: float = 1.0,
    lab: np.ndarray | None = None,
) -> RegionVote:
    """The paint regions of a frame's line art (H, W) uint8 and the vote of the model's colors (H, W, 3) uint8 in
    each, with leaks through unclosed gaps split off (`split_leaks`).

    Args:
        colors: the model's colors at the frame's size.
        lines: the frame's line art, 0 ink and 255 paper.
        gap: gaps in the lines narrower than this are closed; see `segment_regions`.
        min_region: smallest region, in pixels, that is flattened.
        upscale: how much the colors were enlarged from the model's working resolution (their blur along the lines
            grows with it).
        lab: (H, W, 3) float CIELAB of `colors`, when already at hand.
    """
    lab = rgb_to_lab(colors) if lab is None else lab
    vote = region_vote(colors, segment_regions(lines, gap=gap), min_region=min_region, lab=lab)
    labels = split_leaks(lab, vote, wall_width=max(2, round(2 * upscale)))
    if labels is vote.labels:
        return vote
    return region_vote(colors, labels, min_region=min_region, lab=lab, previous=vote)


def vote_regions_sampled(
    colors: np.ndarray,
    labels: np.ndarray,
    grid_lab: np.ndarray,
    step: int,
    *,
    min_region: int = 16,
    wall_width: int = 2,
) -> RegionVote:
    """`vote_regions` for a frame far larger than its colors' own resolution, on every `step`-th pixel.

    The model's colors were enlarged from a few hundred pixels a side, so a vote over every `step`-th pixel of each
    row and column sees the same colors as one over all of them, for `step` squared times less work; leaks are split
    off on that grid too and brought back to the frame's own labels (the band along the lines, whose samples fell on
    ink, follows the region beside it). Regions the grid misses (thin strips) are voted on their own pixels.

    Args:
        colors: (H, W, 3) uint8 model colors at the frame's size.
        labels: (H, W) int32 paint regions of the frame (`segment_regions`).
        grid_lab: CIELAB of the colors at the grid's size, labels[::step, ::step].shape.
        step: the grid's spacing in pixels.
        min_region: smallest region, in the frame's pixels, that is flattened.
        wall_width: the leak split's wall band, in grid pixels.
    """
    grid_labels = np.ascontiguousarray(labels[::step, ::step])
    grid_colors = np.ascontiguousarray(colors[::step, ::step])
    vote = region_vote(grid_colors, grid_labels, min_region=1, lab=grid_lab)
    split = split_leaks(grid_lab, vote, wall_width=wall_width, min_leak=max(1, 64 // step**2))
    full_labels = labels
    if split is not grid_labels:
        vote = region_vote(grid_colors, split, min_region=1, lab=grid_lab, previous=vote)
        full_labels = _refine_labels(labels, grid_labels, split, step)
    sizes = np.bincount(full_labels.ravel(), minlength=len(vote.sizes))
    region_lab = np.zeros((len(sizes), 3), dtype=np.float64)
    region_lab[: len(vote.lab)] = vote.lab
    voted = np.zeros(len(sizes), dtype=bool)
    voted[: len(vote.flat)] = vote.flat
    flat = sizes >= max(min_region, 1)
    flat[0] = False
    missed = flat & ~voted
    if missed.any():  # regions too thin for the grid: their own pixels vote, gathered as a (pixels, 1) strip
        pixels = np.flatnonzero(missed[full_labels])
        own = region_vote(colors.reshape(-1, 1, 3)[pixels], full_labels.reshape(-1, 1)[pixels], min_region=1)
        region_lab[: len(own.lab)][missed[: len(own.lab)]] = own.lab[missed[: len(own.lab)]]
    return RegionVote(full_labels, sizes, flat, region_lab)


def _refine_labels(labels: np.ndarray, before: np.ndarray, after: np.ndarray, step: int) -> np.ndarray:
    """The frame's labels with the regions split on the grid (`before` -> `after`, both labels[::step, ::step]
    sized) split the same way: a pixel of the parent region takes the new label of its nearest grid sample, and the
    band along the lines, whose samples lay on ink, is grown into from the new label beside it."""
    rows, columns = np.nonzero(after != before)
    reach = step + 1
    top, bottom = max(rows.min() - reach, 0), rows.max() + reach + 1
    left, right = max(columns.min() - reach, 0), columns.max() + reach + 1
    height, width = labels.shape
    box = (slice(top * step, min(bottom * step, height)), slice(left * step, min(right * step, width)))
    crop = labels[box]

    def enlarge(grid: np.ndarray) -> np.ndarray:
        part = grid[top:bottom, left:right]
        return np.repeat(np.repeat(part, step, axis=0), step, axis=1)[: crop.shape[0], : crop.shape[1]]

    up_after, up_before = enlarge(after), enlarge(before)
    grown = np.where((up_after != up_before) & (up_before == crop), up_after, 0).astype(labels.dtype)
    _grow_within_region(grown, (up_before == 0) & (crop > 0), crop, steps=step)
    refined = labels.copy()
    refined[box] = np.where(grown > 0, grown, crop)
    return refined
