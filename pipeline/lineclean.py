"""Messy line art -> clean line art: flat white paper, dark ink, no scan specks.

Real inputs are rarely the clean renders the model was trained on: scanned paper is uneven, yellowed and grainy,
pencil lines are grey, and dust leaves dark specks. `clean_line_art` normalises a frame in three steps:

1. Flatten the paper. The paper level is estimated on a coarse grid of cells, 1/120 of the frame's long side: the
   brightest 4x4 box mean around each cell, so lines vanish from it and the grain is averaged. Lighting changes
   slowly while a thick stroke or a filled area changes abruptly, so a cell much darker than its neighbours' paper
   and the allowed falloff is not paper: it takes the level of the nearest cells that are. The grid is upsampled
   bilinearly; dividing it out leaves every pixel as a fraction of its own paper's brightness.
2. Stretch the levels. The paper's grain is measured on the upper side of its histogram (ink never lies there) and
   everything within three standard deviations of the paper goes to pure white; the darkest ink goes to black when
   the ink is grey. The mapping is linear in between, so anti-aliased edges stay anti-aliased.
3. Remove specks: small isolated marks (at most `speck_size` pixels) become paper.

Clean digital line art (pure white paper, black strokes) has zero grain and black ink, so both ends of the mapping
stay where they are and the frame comes back unchanged.

All of it is integer-friendly numpy: the per-pixel ratio to the paper is quantised to 1/1024 once, and the
histogram, the speck mask and the output lookup table all work on that one index image.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pipeline.regions import label_components

# Ratios to the paper are quantised to 1/_BINS; index _BINS is the paper itself. Grain lies above it, so the
# histogram runs to twice the paper level (anything brighter is clipped to the last bin).
_BINS = 1024
_TOP_BIN = 2 * _BINS - 1
# Paper cells are made of _BOX x _BOX box means: large enough to average the grain, small enough that a box can fit
# between neighbouring strokes.
_BOX = 4
# Paper lighting falls by at most this fraction of the paper's brightness along the frame's long side ...
_PAPER_FALLOFF = 0.7
# ... and a cell this much darker than that allows is covered by ink (a thick stroke, hatching, a filled area).
_PAPER_TOLERANCE = 0.03
# Pixels at least this bright (as a fraction of their paper) count towards the paper's histogram.
_PAPER_FLOOR = 0.75
# Paper within this many standard deviations of its median becomes pure white.
_GRAIN_SIGMAS = 3.0
# The ink level is this percentile of the pixels clearly darker than the paper: by _INK_MARGIN of the white point,
# and by five grain deviations.
_INK_PERCENTILE = 5.0
_INK_MARGIN = 0.15
# Ink darker than _INK_DARK (as a fraction of the paper) is left as it is; from _INK_GREY on it is stretched to black
# in full; in between the stretch fades in, so the mapping never jumps.
_INK_DARK = 0.15
_INK_GREY = 0.4
# Never stretch more than this: ink lighter than this fraction of the white point is too faint to be told from paper.
_MAX_INK_LEVEL = 0.6
# The standard deviation of a normal distribution per unit of median absolute deviation.
_MAD_TO_SIGMA = 1.4826
_SQUARE_3X3 = np.ones((3, 3), np.uint8)


def _check_line_art(gray: np.ndarray) -> None:
    """Raise unless gray is an (H, W) uint8 frame."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        msg = f"line art must be (H, W) uint8, got shape {gray.shape} dtype {gray.dtype}"
        raise ValueError(msg)


def _paper_cell_size(height: int, width: int) -> int:
    """Side of a paper cell in pixels: about 1/120 of the long side (16 px at 1080p), a multiple of _BOX."""
    boxes = max(2, round(max(height, width) / (120 * _BOX)))
    return boxes * _BOX


def _sloped_envelope(values: np.ndarray, slope: float) -> np.ndarray:
    """The lowest surface >= values that falls by at most `slope` per cell (city-block distance) from any cell."""
    for axis in (0, 1):
        shape = [1, 1]
        shape[axis] = values.shape[axis]
        ramp = slope * np.arange(values.shape[axis], dtype=np.float32).reshape(shape)
        # max over j <= i of v[j] - slope * (i - j), and the same from the other end.
        forward = np.maximum.accumulate(values + ramp, axis=axis) - ramp
        backward = np.flip(np.maximum.accumulate(np.flip(values - ramp, axis=axis), axis=axis), axis=axis) + ramp
        values = np.maximum(forward, backward)
    return values


def _max_3x3(values: np.ndarray) -> np.ndarray:
    """Maximum over each cell and its 8 in-image neighbours: a 3x3 dilation. The border is replicated, not padded
    with OpenCV's default (-FLT_MAX, which is finite and would read as a known cell next to -inf ones)."""
    return cv2.dilate(values, _SQUARE_3X3, borderType=cv2.BORDER_REPLICATE)


def _fill_from_neighbours(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """values with each unknown cell set to the brightest of its nearest known cells (grown one ring at a time)."""
    values = np.where(known, values, -np.inf)
    while not known.all():
        grown = _max_3x3(values)
        reached = ~known & np.isfinite(grown)
        values[reached] = grown[reached]
        known = known | reached
    return values


def _paper_cells(gray: np.ndarray, cell: int) -> np.ndarray:
    """(ceil(H / cell), ceil(W / cell)) float32 paper level of each cell of the frame."""
    height, width = gray.shape
    boxes = cell // _BOX
    means = np.asarray(Image.fromarray(gray).reduce(_BOX), dtype=np.float32)  # (ceil(H/4), ceil(W/4)) box means
    rows, cols = -(-means.shape[0] // boxes), -(-means.shape[1] // boxes)
    means = np.pad(means, ((0, rows * boxes - means.shape[0]), (0, cols * boxes - means.shape[1])), mode="edge")
    cells = means.reshape(rows, boxes, cols, boxes).max(axis=(1, 3))  # (rows, cols) brightest box per cell
    # The brightest box of the cell and its 8 neighbours: a cell crowded by strokes takes the paper next to it.
    cells = _max_3x3(cells)
    brightness = float(np.percentile(cells, 90))
    envelope = _sloped_envelope(cells, _PAPER_FALLOFF * brightness * cell / max(height, width))
    # The brightest cell always equals the envelope, so at least one cell is paper.
    filled = _fill_from_neighbours(cells, cells >= envelope - _PAPER_TOLERANCE * brightness)
    return np.maximum(np.maximum(filled, envelope), 1.0)


def paper_level(gray: np.ndarray) -> np.ndarray:
    """Estimate the brightness of the paper under every pixel of a line-art frame.

    Args:
        gray: (H, W) uint8 line art, ink dark on light paper.

    Returns:
        (H, W) float32, the local paper level in [1, 255]: smooth, at least the frame's paper everywhere it shows.
    """
    _check_line_art(gray)
    return _upsample_cells(_paper_cells(gray, _paper_cell_size(*gray.shape)), gray.shape)


def _upsample_cells(cells: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The paper level of every pixel of a frame of `shape`, bilinear between the cells' centres."""
    height, width = shape
    cell = _paper_cell_size(height, width)
    rows, cols = cells.shape
    # align_corners=False puts each cell's value at the centre of its cell of the padded frame.
    grid = torch.from_numpy(cells)[None, None]
    level = F.interpolate(grid, size=(rows * cell, cols * cell), mode="bilinear", align_corners=False)
    return level[0, 0, :height, :width].numpy()


def _ratio_bins(gray: np.ndarray, paper: np.ndarray) -> np.ndarray:
    """(H, W) uint16: each pixel's brightness as a fraction of its paper, in 1/_BINS steps, clipped to _TOP_BIN."""
    bins = gray * (_BINS / paper)
    bins += 0.5
    np.minimum(bins, _TOP_BIN, out=bins)
    return bins.astype(np.uint16)


def _percentile_bin(histogram: np.ndarray, percentile: float, start: int = 0) -> int:
    """The bin at `percentile` of the pixels counted from bin `start` up (start itself when none are)."""
    counts = np.cumsum(histogram[start:])
    if counts[-1] == 0:
        return start
    return start + int(np.searchsorted(counts, counts[-1] * percentile / 100, side="left"))


def _white_bin(histogram: np.ndarray) -> tuple[int, float]:
    """(white point bin, grain standard deviation in bins) of the paper's histogram."""
    floor = int(_PAPER_FLOOR * _BINS)
    median = _percentile_bin(histogram, 50, start=floor)
    # Ink never lies above the paper, so the upper half of the paper's histogram is pure grain.
    deviation = _percentile_bin(histogram, 50, start=median) - median
    sigma = _MAD_TO_SIGMA * deviation
    return min(_BINS, round(median - _GRAIN_SIGMAS * sigma)), sigma


def _ink_bin(histogram: np.ndarray, white: int, sigma: float) -> int:
    """The bin that is stretched to black: 0 for dark ink, the ink's level for grey ink."""
    clearly_ink = max(0, white - round(max(_INK_MARGIN * white, 5 * sigma)))
    counts = histogram[:clearly_ink]
    if counts.sum() < 32:  # no ink to speak of: nothing to measure the stretch by
        return 0
    level = _percentile_bin(counts, _INK_PERCENTILE) / white
    fade_in = np.clip((level - _INK_DARK) / (_INK_GREY - _INK_DARK), 0.0, 1.0)
    return round(min(level, _MAX_INK_LEVEL) * fade_in * white)


def _speck_mask(marks: np.ndarray, speck_size: int) -> np.ndarray:
    """(H, W) bool: the pixels of `marks` in groups of at most `speck_size` pixels.

    Marks that touch, diagonally too, are one group (a one-pixel aliased diagonal stroke stays one stroke), and so
    are marks one pixel apart along a row or a column: growing every mark one pixel down and right joins them, and
    the 4-connected components of the grown marks are the groups.
    """
    grown = marks.copy()
    grown[1:] |= marks[:-1]
    grown[:, 1:] |= grown[:, :-1].copy()
    labels, _ = label_components(grown)
    group = labels[marks]  # only the marks count toward a group's size, not the pixels grown around them
    small = np.bincount(group) <= speck_size
    specks = np.zeros(marks.shape, dtype=bool)
    specks[marks] = small[group]
    return specks


def _level_table(white: int, ink: int) -> np.ndarray:
    """(_TOP_BIN + 1,) uint8: output level of each ratio bin, linear from `ink` (0) to `white` (255)."""
    bins = np.arange(_TOP_BIN + 1, dtype=np.float64)
    levels = (bins - ink) * (255.0 / max(white - ink, 1))
    return np.clip(np.round(levels), 0, 255).astype(np.uint8)


def clean_line_art(gray: np.ndarray, *, speck_size: int = 6) -> np.ndarray:
    """Normalise messy line art: flat white paper, dark ink, anti-aliasing kept, scan specks removed.

    Scanned paper (uneven lighting, yellowing, grain) becomes 255; grey pencil lines are stretched so that their
    darkest part is black; isolated dark specks become paper. Clean digital line art comes back unchanged.

    Args:
        gray: (H, W) uint8 line art, ink dark (0) on light paper (255).
        speck_size: isolated marks of at most this many pixels are removed; 0 keeps them all.
            Dots drawn on purpose are usually larger; raise it for dusty scans at high resolution.

    Returns:
        (H, W) uint8 line art, 0 = ink and 255 = paper.
    """
    _check_line_art(gray)
    if speck_size < 0:
        msg = f"speck_size must be >= 0, got {speck_size}"
        raise ValueError(msg)
    if gray.size == 0:
        return gray.copy()
    cells = _paper_cells(gray, _paper_cell_size(*gray.shape))
    digital = _digital_paper(gray, cells)
    if digital is not None:
        return _clean_on_digital_paper(gray, *digital, speck_size)
    bins = _ratio_bins(gray, _upsample_cells(cells, gray.shape))
    histogram = np.bincount(bins.ravel(), minlength=_TOP_BIN + 1)
    white, sigma = _white_bin(histogram)
    if speck_size > 0:
        # A mark is anything visibly darker than the white point: one output level, or one grain deviation.
        specks = _speck_mask(bins < white - max(sigma, _BINS / 255), speck_size)
        if specks.any():
            histogram -= np.bincount(bins[specks], minlength=_TOP_BIN + 1)
            bins[specks] = _BINS
    ink = _ink_bin(histogram, white, sigma)
    return _level_table(white, ink)[bins]


def _digital_paper(gray: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(the ratio bin of each of the 256 gray levels, the frame's histogram of bins, the white point bin) when its
    paper is one level without grain, as digital line art's is; None for a scan.

    The paper is one level when every paper cell is within the paper tolerance of the brightest (cells crowded by
    strokes come out a little darker than the paper between them), and it has no grain when the upper half of the
    paper's histogram is a single bin. A pixel's ratio to its paper then depends on its own gray level alone.
    """
    if cells.min() < cells.max() * (1 - _PAPER_TOLERANCE):
        return None
    level_bins = _ratio_bins(np.arange(256, dtype=np.uint8), np.full(256, cells.max(), dtype=np.float32))
    level_counts = np.array(Image.fromarray(gray).histogram(), dtype=np.int64)  # Pillow's counts: no int64 copy
    histogram = _bin_histogram(level_bins, level_counts)
    white, sigma = _white_bin(histogram)
    return (level_bins, histogram, white) if sigma == 0 else None


def _bin_histogram(level_bins: np.ndarray, level_counts: np.ndarray) -> np.ndarray:
    """(_TOP_BIN + 1,) int64 pixels per ratio bin, from the pixels per gray level and each level's bin."""
    return np.bincount(level_bins, weights=level_counts, minlength=_TOP_BIN + 1).astype(np.int64)


def _clean_on_digital_paper(
    gray: np.ndarray, level_bins: np.ndarray, histogram: np.ndarray, white: int, speck_size: int
) -> np.ndarray:
    """`clean_line_art` of a frame on grain-free paper of one level (`_digital_paper`; the grain's deviation is 0):
    the same steps on 256-entry tables of the gray levels instead of per-pixel arrays, for about half the work, and
    the anti-aliased edges of strokes crowded together are left exactly as drawn."""
    specks = None
    if speck_size > 0:
        # The bins rise with the level, so "darker than the white point" is "below some gray level".
        darkest_paper = int(np.searchsorted(level_bins, white - _BINS / 255, side="left"))
        specks = _speck_mask(gray < darkest_paper, speck_size)
        if specks.any():
            histogram = histogram - _bin_histogram(level_bins, np.bincount(gray[specks], minlength=256))
        else:
            specks = None
    table = _level_table(white, _ink_bin(histogram, white, 0.0))
    cleaned = Image.fromarray(gray).point(table[level_bins].tolist())
    if specks is None:
        return np.asarray(cleaned)
    cleaned = np.array(cleaned)
    cleaned[specks] = table[_BINS]
    return cleaned


def line_thickness(gray: np.ndarray, *, ink_threshold: int = 160) -> float:
    """Average stroke width of the ink in pixels (0.0 without ink), to compare line weights between sources.

    Twice the ink's area over its perimeter: a stroke of width w and length L has area w * L and perimeter about
    2 * L. The perimeter is measured by counting ink/paper transitions along rows, columns and both diagonals
    (the Cauchy-Crofton formula), which keeps diagonal strokes within about 5% of straight ones.

    Args:
        gray: (H, W) uint8 line art, 0 ink and 255 paper.
        ink_threshold: pixels darker than this are ink.
    """
    _check_line_art(gray)
    ink = np.pad(gray < ink_threshold, 1)  # paper around the frame closes strokes cut by its edge
    area = int(ink.sum())
    if area == 0:
        return 0.0
    straight = np.count_nonzero(ink[1:] != ink[:-1]) + np.count_nonzero(ink[:, 1:] != ink[:, :-1])
    diagonal = np.count_nonzero(ink[1:, 1:] != ink[:-1, :-1]) + np.count_nonzero(ink[1:, :-1] != ink[:-1, 1:])
    # Crofton: perimeter = (1/2) * integral over directions of the crossings; diagonal scan lines are 1/sqrt(2) apart.
    perimeter = (np.pi / 8) * (straight + diagonal / np.sqrt(2))
    return float(2 * area / perimeter)
