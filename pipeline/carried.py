"""A frame finished from the colors carried from its keyframe (pipeline/correspondence.py).

Three steps, each only where it is needed:
1. Where no correspondence is confident (a part the keyframe does not show, a disocclusion), the model's colors
   stand in, each snapped to the nearest of the keyframe's own colors (`keyframe_palette`), so the model picks among
   the keyframe's colors instead of inventing its own.
2. With flat fill, a closed paint region takes one color only where the colors carried into it are already flat:
   a cel region whose edges the carrying blurred a little. Where the keyframe has shading, gradients or a painted
   background, the carried colors vary and stay as they are. The confident pixels decide, so a region partly
   uncovered takes its carried color over all of it.
3. The frame's own lines are drawn over the paint in the keyframe's line colors (`compose_frame`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.cel import Cel
from pipeline.cielab import rgb_to_lab
from pipeline.correspondence import CarriedFrame, compose_frame
from pipeline.guidelines import GUIDE_LINE_MODES, finish_guide_lines
from pipeline.lineart import LineArt, resize_bilinear
from pipeline.regions import nearest_in_palette, paint_labels, paint_under_lines, segment_regions

# A region is flat when its confident carried colors spread less than this (RGB standard deviation, channels in
# quadrature, 0-255 levels). Against 8: on the OpenMoji shots (benchmarks/shot_quality.py) the temporal error on
# clean lines fell from 1.09 to 1.01 (the old default's was 1.07), on XDoG lines it rose from 1.60 to 1.63; on the
# development set PSNR 22.40 -> 22.44 dB and temporal error 7.88 -> 7.93. At 14, XDoG lines lost 1.2 dB.
FLAT_SPREAD = 11.0
# Of a region, at least this share of its pixels must be confident for their color to fill the rest.
MIN_CONFIDENT_SHARE = 0.3
# Unconfident pixels still count this much in a region's color, so a region that no correspondence reached takes
# the (snapped) vote of the model's colors.
UNCONFIDENT_WEIGHT = 0.01
MIN_REGION = 16
# Region colors are measured on a grid of every few pixels, at most this many a side; a region flattens only with
# at least MIN_SAMPLES of them.
STATS_SIDE = 640
MIN_SAMPLES = 4
# A flat region's mean color within this CIE76 Delta E of one of the keyframe's colors takes that color exactly.
SNAP_DELTA_E = 10.0
# A region with under this share of its pixels confident, and at least MIN_UNSEEN_REGION of the frame, is one the
# keyframe does not show: the model colors it.
UNSEEN_SHARE = 0.05
MIN_UNSEEN_REGION = 0.001
# ... and at most this share: a larger region where nothing is confident is far more often flow lost over a wide,
# featureless area (a textured floor the lines barely cross) than a new part, and its carried colors beat the model's
# there (on the development set's wide scene, 21.5 dB carried against 11.4 with the model's colors).
MAX_UNSEEN_REGION = 0.05


def snap_to_palette(colors: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Colors (h, w, 3) uint8 -> each the perceptually nearest palette color (P, 3) uint8."""
    if len(palette) == 0:
        return colors
    packed = colors.reshape(-1, 3)
    unique, inverse = np.unique(packed, axis=0, return_inverse=True)
    snapped = nearest_in_palette(rgb_to_lab(unique).astype(np.float64), palette)
    return snapped[inverse.ravel()].reshape(colors.shape)


@dataclass(frozen=True)
class RegionStats:
    """Per region label: `sizes` in pixels, the share of its pixels that are `confident`, the number of `samples`
    the colors were measured on, their `mean` (count, 3) weighted toward the confident pixels, and the `spread` of
    the colors around it (RGB standard deviation, channels in quadrature)."""

    sizes: np.ndarray
    confident: np.ndarray
    samples: np.ndarray
    mean: np.ndarray
    spread: np.ndarray


def _bincount(labels: torch.Tensor, count: int, weights: np.ndarray | None = None) -> np.ndarray:
    """np.bincount's sums, in the same order (so the same float64 bits), by torch's kernel: numpy's holds the GIL
    for its whole loop, torch's lets the frames on other threads run."""
    return torch.bincount(labels, None if weights is None else torch.from_numpy(weights), minlength=count).numpy()


def region_stats(paint: np.ndarray, confident: np.ndarray, labels: np.ndarray) -> RegionStats:
    """The `RegionStats` of `paint` (H, W, 3) uint8 over `labels` (H, W), from whole-array bincounts over a grid of
    every few pixels (at most STATS_SIDE a side: means and spreads of regions large enough to flatten hardly
    change, at a ninth of the cost at 1080p)."""
    count = int(labels.max()) + 1
    sizes = _bincount(torch.from_numpy(labels).view(-1), count)
    step = max(1, round(max(labels.shape) / STATS_SIDE))
    grid_labels = torch.from_numpy(labels[::step, ::step].ravel())
    grid_confident = confident[::step, ::step].ravel()
    samples = _bincount(grid_labels, count)
    share = _bincount(grid_labels, count, grid_confident.astype(np.float64)) / np.maximum(samples, 1)
    weights = np.where(grid_confident, 1.0, UNCONFIDENT_WEIGHT)
    total = np.maximum(_bincount(grid_labels, count, weights), 1e-9)
    pixels = paint[::step, ::step].reshape(-1, 3).astype(np.float64)
    mean = np.empty((count, 3))
    variance = np.zeros(count)
    for channel in range(3):
        weighted = weights * pixels[:, channel]
        mean[:, channel] = _bincount(grid_labels, count, weighted) / total
        variance += _bincount(grid_labels, count, weighted * pixels[:, channel]) / total
        variance -= mean[:, channel] ** 2
    return RegionStats(sizes, share, samples, mean, np.sqrt(np.maximum(variance, 0)))


def model_pixels(confident: np.ndarray, labels: np.ndarray, stats: RegionStats) -> tuple[np.ndarray, np.ndarray]:
    """Where the model's colors stand in: (H, W) bool pixels, and (count,) bool the regions it colors whole.

    Unconfident pixels of a closed region the keyframe does not show (under UNSEEN_SHARE of it confident, and
    between MIN_UNSEEN_REGION and MAX_UNSEEN_REGION of the frame). Elsewhere an unconfident pixel keeps its carried
    color: scattered along lines and edges, or over a wide area the flow lost, it is nearer the truth than the
    model's (on the development set, standing in for every unconfident pixel lost 6 dB on a close-up, and for those
    far from any confident pixel 10 dB on a wide scene).
    """
    share_of_frame = stats.sizes / confident.size
    unseen = (stats.confident < UNSEEN_SHARE) & (share_of_frame >= MIN_UNSEEN_REGION)
    unseen &= share_of_frame <= MAX_UNSEEN_REGION
    unseen[0] = False  # ink
    return ~confident & unseen[labels], unseen


def flat_paint(
    paint: np.ndarray,
    labels: np.ndarray,
    stats: RegionStats,
    palette: np.ndarray | None = None,
    model_regions: np.ndarray | None = None,
) -> np.ndarray:
    """Each closed region whose paint is flat (`FLAT_SPREAD`) painted one color: its mean, or the nearest of the
    keyframe's `palette` colors where that is within SNAP_DELTA_E (a cel's flat colors are the keyframe's own,
    exactly) or where the model colored the region (`model_regions`, a bool per label)."""
    flat = (stats.spread < FLAT_SPREAD) & (stats.sizes >= MIN_REGION) & (stats.samples >= MIN_SAMPLES)
    flat[0] = False
    region_rgb = np.clip(np.round(stats.mean), 0, 255).astype(np.uint8)
    if palette is not None and len(palette) and flat.any():
        lab = rgb_to_lab(region_rgb[flat]).astype(np.float64)
        snapped = nearest_in_palette(lab, palette)
        distance = np.linalg.norm(rgb_to_lab(snapped).astype(np.float64) - lab, axis=1)
        snap = distance <= SNAP_DELTA_E
        if model_regions is not None:
            snap |= model_regions[flat]
        region_rgb[flat] = np.where(snap[:, None], snapped, region_rgb[flat])
    return paint_labels(paint, labels, flat, region_rgb)


def finish_carried(
    carried: CarriedFrame,
    art: LineArt,
    model_colors: Callable[[], np.ndarray] | None = None,
    palette: np.ndarray | None = None,
    fill: str = "flat",
    guide_lines: str = "paint",
) -> Cel:
    """A frame finished (with its parts, a `Cel`) from what was carried into it.

    Args:
        carried: the keyframe's paint and line colors at the frame's size, and where they are confident.
        art: the frame's line art.
        model_colors: gives the model's colors (h, w, 3) uint8 at the working resolution for the frame, called only
            when some region needs them (`model_pixels`); None: the carried colors everywhere.
        palette: (P, 3) uint8 the keyframe's colors the model's and flat regions' colors are snapped to (see
            `flat_paint`); None or empty: not snapped.
        fill: "flat": closed regions whose carried colors are flat take one color; "soft": the colors as carried.
        guide_lines: what becomes of colored guide lines (see `finish_guide_lines`).
    """
    paint = carried.paint
    if fill != "flat" and model_colors is None and art.guides is None:  # soft carried colors need no regions
        paint = paint_under_lines(paint, art.lines)
        return Cel(compose_frame(paint, carried.line_color, art.lines), paint, art, carried.line_color)
    labels = segment_regions(art.boundaries)
    stats = region_stats(paint, carried.confident, labels) if fill == "flat" or model_colors is not None else None
    model_regions = None
    if model_colors is not None:
        stand_in_at, model_regions = model_pixels(carried.confident, labels, stats)
        if stand_in_at.any():
            colors = model_colors()
            stand_in = colors if palette is None else snap_to_palette(colors, palette)
            paint = np.where(stand_in_at[..., None], resize_bilinear(stand_in, art.shape), paint)
            if fill == "flat":
                stats = region_stats(paint, carried.confident, labels)
    if fill == "flat":
        paint = flat_paint(paint, labels, stats, palette, model_regions)
    paint = paint_under_lines(paint, art.lines)
    finished = compose_frame(paint, carried.line_color, art.lines)
    if art.guides is not None:
        mode = guide_lines if guide_lines in GUIDE_LINE_MODES else "paint"
        finished = finish_guide_lines(finished, art.source, art.guides, labels, mode)
    return Cel(finished, paint, art, carried.line_color)
