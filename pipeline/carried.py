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

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.correspondence import CarriedFrame, compose_frame
from pipeline.guidelines import GUIDE_LINE_MODES, finish_guide_lines
from pipeline.lineart import LineArt, resize_bilinear
from pipeline.regions import RegionVote, nearest_in_palette, paint_regions, rgb_to_lab, segment_regions

# A region is flat when its confident carried colors spread less than this (RGB standard deviation, summed over
# the channels in quadrature, 0-255 levels): a one-color cel region with its blurred edges measures 2-6, a shaded
# one 15 and more.
FLAT_SPREAD = 8.0
# Of a region, at least this share of its pixels must be confident for their color to fill the rest.
MIN_CONFIDENT_SHARE = 0.3
# Unconfident pixels still count this much in a region's color, so a region that no correspondence reached takes
# the (snapped) vote of the model's colors.
UNCONFIDENT_WEIGHT = 0.01
MIN_REGION = 16
# A flat region's mean color within this CIE76 Delta E of one of the keyframe's colors takes that color exactly.
SNAP_DELTA_E = 10.0
# A region with under this share of its pixels confident, and at least MIN_UNSEEN_REGION of the frame, is one the
# keyframe does not show: the model colors it.
UNSEEN_SHARE = 0.05
MIN_UNSEEN_REGION = 0.001
# An unconfident pixel farther than this from every confident one (in thousandths of the frame's long side) is a
# disocclusion the model colors, even inside a region mostly carried.
FAR_FROM_CONFIDENT = 60.0


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
    """Per region label: `sizes` and `confident` pixel counts, the `mean` color (count, 3) weighted toward the
    confident pixels, and the `spread` of the colors around it (RGB standard deviation, channels in quadrature)."""

    sizes: np.ndarray
    confident: np.ndarray
    mean: np.ndarray
    spread: np.ndarray


def region_stats(paint: np.ndarray, confident: np.ndarray, labels: np.ndarray) -> RegionStats:
    """The `RegionStats` of `paint` (H, W, 3) uint8 over `labels` (H, W), from a few whole-array bincounts."""
    flat_labels = labels.ravel()
    count = int(flat_labels.max()) + 1
    weights = np.where(confident.ravel(), 1.0, UNCONFIDENT_WEIGHT)
    total = np.maximum(np.bincount(flat_labels, weights, minlength=count), 1e-9)
    sizes = np.bincount(flat_labels, minlength=count)
    confident_count = np.bincount(flat_labels, confident.ravel(), minlength=count)
    pixels = paint.reshape(-1, 3).astype(np.float64)
    mean = np.empty((count, 3))
    variance = np.zeros(count)
    for channel in range(3):
        values = pixels[:, channel]
        mean[:, channel] = np.bincount(flat_labels, weights * values, minlength=count) / total
        variance += np.bincount(flat_labels, weights * values * values, minlength=count) / total
        variance -= mean[:, channel] ** 2
    return RegionStats(sizes, confident_count, mean, np.sqrt(np.maximum(variance, 0)))


def model_pixels(confident: np.ndarray, labels: np.ndarray, stats: RegionStats) -> np.ndarray:
    """(H, W) bool: where the model's colors stand in. Unconfident pixels of a region the keyframe does not show
    (under MIN_CONFIDENT_SHARE of it confident), and those far from any confident pixel (a disocclusion in open line
    art, whose paper is one region). Elsewhere an unconfident pixel keeps its carried color: scattered along lines
    and edges, it is nearer the truth than the model (on the development set, standing in for every unconfident
    pixel lost 6 dB on a close-up)."""
    unseen = (stats.confident < UNSEEN_SHARE * stats.sizes) & (stats.sizes >= MIN_UNSEEN_REGION * confident.size)
    unseen[0] = False  # ink
    far_px = FAR_FROM_CONFIDENT * max(confident.shape) / 1000
    far = cv2.distanceTransform((~confident).astype(np.uint8), cv2.DIST_L2, 3) > far_px
    return ~confident & (unseen[labels] | far)


def flat_paint(
    paint: np.ndarray, labels: np.ndarray, stats: RegionStats, palette: np.ndarray | None = None
) -> np.ndarray:
    """Each closed region whose paint is flat (`FLAT_SPREAD`) painted one color: its mean, or the nearest of the
    keyframe's `palette` colors where that is within SNAP_DELTA_E (a cel's flat colors are the keyframe's own,
    exactly) or where the model colored most of the region."""
    flat = (stats.spread < FLAT_SPREAD) & (stats.sizes >= MIN_REGION)
    flat[0] = False
    region_rgb = np.clip(np.round(stats.mean), 0, 255).astype(np.uint8)
    if palette is not None and len(palette) and flat.any():
        lab = rgb_to_lab(region_rgb[flat]).astype(np.float64)
        snapped = nearest_in_palette(lab, palette)
        distance = np.linalg.norm(rgb_to_lab(snapped).astype(np.float64) - lab, axis=1)
        unseen = stats.confident[flat] < UNSEEN_SHARE * stats.sizes[flat]
        region_rgb[flat] = np.where(((distance <= SNAP_DELTA_E) | unseen)[:, None], snapped, region_rgb[flat])
    vote = RegionVote(labels, stats.sizes, flat, np.zeros((len(stats.sizes), 3)))
    return paint_regions(paint, vote, region_rgb)


def finish_carried(
    carried: CarriedFrame,
    art: LineArt,
    model_colors: np.ndarray | None = None,
    palette: np.ndarray | None = None,
    fill: str = "flat",
    guide_lines: str = "paint",
) -> np.ndarray:
    """A frame's finished colors (H, W, 3) uint8 from what was carried into it.

    Args:
        carried: the keyframe's paint and line colors at the frame's size, and where they are confident.
        art: the frame's line art.
        model_colors: (h, w, 3) uint8 model colors at the working resolution, for what nothing corresponds to
            (`model_pixels`); None: the carried colors everywhere.
        palette: (P, 3) uint8 the keyframe's colors the model's and flat regions' colors are snapped to (see
            `flat_paint`); None or empty: not snapped.
        fill: "flat": closed regions whose carried colors are flat take one color; "soft": the colors as carried.
        guide_lines: what becomes of colored guide lines (see `finish_guide_lines`).
    """
    paint = carried.paint
    labels = segment_regions(art.boundaries)
    stats = region_stats(paint, carried.confident, labels)
    if model_colors is not None:
        stand_in_at = model_pixels(carried.confident, labels, stats)
        if stand_in_at.any():
            stand_in = model_colors if palette is None else snap_to_palette(model_colors, palette)
            paint = np.where(stand_in_at[..., None], resize_bilinear(stand_in, art.shape), paint)
            if fill == "flat":
                stats = region_stats(paint, carried.confident, labels)
    if fill == "flat":
        paint = flat_paint(paint, labels, stats, palette)
    finished = compose_frame(paint, carried.line_color, art.lines)
    if art.guides is None:
        return finished
    mode = guide_lines if guide_lines in GUIDE_LINE_MODES else "paint"
    return finish_guide_lines(finished, art.source, art.guides, labels, mode)
