"""Colored guide lines (色トレス): red shadow lines, blue highlight lines, green and other colored strokes.

Production line art mixes black outlines with colored guide lines that mark where a shadow or highlight region
begins. They bound paint regions like black lines do, yet they are not the artist's outline: the model and the
final multiply should see only the black lines, segmentation should see both, and the finished frame either keeps
the guide lines in their own color or paints them over with the region beside them. So:

1. `split_line_art` turns an RGB frame into the black-only `lines` (guide lines become paper), the `boundaries`
   for `segment_regions` (guide lines drawn as ink) and the guide `mask`;
2. the caller colors `lines` and segments `boundaries` as usual;
3. `finish_guide_lines` keeps the guide lines ("keep") or paints them over ("paint") on the finished frame.

Anti-aliased guide pixels are a mixture of the stroke's color, paper and sometimes black ink (where a guide line
touches an outline). Each is unmixed against the most saturated pixel of its stroke nearby, so the black ink in it
stays in `lines`, and "keep" lays only the stroke's share of it over the fill.

A frame without guide lines costs one pass over its channels (see `find_guide_lines`) and comes out unchanged.
With guide lines, the work on them runs on the guide pixels alone (a graph of their 4-neighbours), not the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.files import rgb_to_gray
from pipeline.cielab import rgb_to_lab

GUIDE_LINE_MODES = ("paint", "keep")

# A stroke pixel has CIELAB chroma C* >= 40 and lightness L* <= 95. Black and grey ink, anti-aliased or not, have
# C* ~ 0; the worst chroma measured next to black lines in noisy scans saved as JPEG at quality 30 was 13, a third
# of this. Pale strokes still pass ((255, 150, 150) has C* 43); a sepia or brown pencil line ((150, 100, 60), C* 35)
# does not. The lightness cap leaves out strokes too pale to read on paper (pure yellow, L* 97).
_STROKE_CHROMA = 40.0
_STROKE_MAX_LIGHTNESS = 95.0
# JPEG's half-resolution chroma washes thin strokes out in places (a 2-px blue line at quality 50 dips to C* 19):
# pixels with C* >= 20, still above the noise, are stroke too when they connect to a stroke within this many steps.
_WEAK_STROKE_CHROMA = 20.0
_WEAK_STROKE_STEPS = 8
# Smallest max(R, G, B) - min(R, G, B) of any 8-bit color with L* <= 95 and C* >= 40, or >= 20 (found by trying all
# 2^24): byte-wide tests that clear most pixels, and most frames, before any Lab conversion.
_STROKE_MIN_SPREAD = 55
_WEAK_STROKE_MIN_SPREAD = 24
# Anti-aliased edges: pixels within this many 4-neighbour steps of a stroke pixel with C* >= 3 belong to the guide
# line too (a 1/16 tint of red on paper, (253, 241, 242), has C* 4.3; clean paper 0-2), so no ghost of the stroke
# is left in `lines`. Noise taken in by mistake does no harm: unmixing finds no stroke in it.
_EDGE_CHROMA = 3.0
_EDGE_STEPS = 2
# Black ink mixed into a guide pixel comes from a black line touching it: a pixel at least half covered by ink
# (luma < 128, and not stroke-colored) within two steps. Elsewhere, darkness the stroke's color does not explain is
# JPEG's doing (it keeps luma sharp and blurs chroma) and would leave a grey ghost of the guide line in `lines`.
_BLACK_LUMA = 128
_BLACK_STEPS = 2
# Rec. 601 luma, as `rgb_to_gray` (Pillow's "L") weighs the channels.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class GuideSplit:
    """A line-art frame split into its black lines and its colored guide lines.

    Args:
        lines: (H, W) uint8 gray line art with the guide lines turned into paper (255), black ink mixed into their
            edges kept: what the model and the final multiply see.
        boundaries: (H, W) uint8, `lines` with the guide lines drawn as ink (0): what `segment_regions` should see,
            so that guide lines separate paint regions.
        mask: (H, W) bool, the guide-line pixels, anti-aliased edges included.
    """

    lines: np.ndarray
    boundaries: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class _PixelGraph:
    """Some pixels of a frame in row-major order and, for each, where its up, down, left and right neighbours are in
    that order; a neighbour outside the set points at N, one past the end, where callers keep a neutral value."""

    rows: np.ndarray  # (N,) int
    cols: np.ndarray  # (N,) int
    neighbours: np.ndarray  # (N, 4) int64 in [0, N]


@dataclass(frozen=True)
class _GuideMix:
    """Each guide pixel as alpha * stroke color + ink * black + the rest paper, in mask (row-major) order."""

    alpha: np.ndarray  # (N,) float32 in [0, 1]; exactly 1 on the most saturated pixels of each stroke
    ink: np.ndarray  # (N,) float32 in [0, 1 - alpha]
    stroke: np.ndarray  # (N, 3) float32, the stroke's full color: its most saturated pixel nearby


def _check_rgb(rgb: np.ndarray, name: str) -> None:
    """Raise ValueError unless `rgb` is an (H, W, 3) uint8 frame."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        msg = f"{name} must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}"
        raise ValueError(msg)


def _chroma(pixels: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 -> (N,) float32 CIELAB chroma C*."""
    lab = rgb_to_lab(pixels)
    return np.hypot(lab[:, 1], lab[:, 2])


def _is_stroke_color(pixels: np.ndarray, min_chroma: float) -> np.ndarray:
    """(N, 3) uint8 -> (N,) bool: saturated enough, and dark enough, to be a guide stroke's color."""
    lab = rgb_to_lab(pixels)
    return (np.hypot(lab[:, 1], lab[:, 2]) >= min_chroma) & (lab[:, 0] <= _STROKE_MAX_LIGHTNESS)


def _channel_spread(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) uint8 max minus min channel, the HSV chroma in bytes."""
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.maximum(np.maximum(red, green), blue) - np.minimum(np.minimum(red, green), blue)


def _dilate4(mask: np.ndarray) -> np.ndarray:
    """A bool mask grown by one 4-neighbour step."""
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown


def _pixel_graph(active: np.ndarray) -> _PixelGraph:
    """The 4-neighbour graph of the True pixels of an (H, W) bool mask."""
    rows, cols = np.nonzero(active)
    count = len(rows)
    height, width = active.shape
    position = np.full((height + 2, width + 2), count, dtype=np.int64)  # a border of "outside" around the frame
    position[rows + 1, cols + 1] = np.arange(count)
    up, down = position[rows, cols + 1], position[rows + 2, cols + 1]
    left, right = position[rows + 1, cols], position[rows + 1, cols + 2]
    return _PixelGraph(rows=rows, cols=cols, neighbours=np.stack([up, down, left, right], axis=1))


def _spread_nearest(graph: _PixelGraph, seeds: np.ndarray, allowed: np.ndarray, max_steps: int) -> np.ndarray:
    """(N,) position of the seed reached in the fewest steps through `allowed` pixels (ties go to the later seed),
    each seed's own on seeds, -1 where none is reached within `max_steps`."""
    count = len(seeds)
    reach = np.append(np.where(seeds, np.arange(count), -1), -1)  # the extra -1 is the outside
    for _ in range(max_steps):
        candidate = reach[graph.neighbours].max(axis=1)
        grown = allowed & (reach[:count] < 0) & (candidate >= 0)
        if not grown.any():
            break
        reach[:count][grown] = candidate[grown]
    return reach[:count]


def _stroke_colored(rgb: np.ndarray, candidates: np.ndarray, min_chroma: float) -> np.ndarray:
    """(H, W) bool: the `candidates` whose color is a stroke's at `min_chroma` (the rule at the top of this module)."""
    strokes = candidates.copy()
    if strokes.any():
        strokes[strokes] = _is_stroke_color(rgb[strokes], min_chroma)
    return strokes


def _stroke_pixels(rgb: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels of guide strokes, their washed-out stretches included; all False when no pixel is
    strongly colored, decided by one pass over the channels."""
    spread = _channel_spread(rgb)
    strong = _stroke_colored(rgb, spread >= _STROKE_MIN_SPREAD, _STROKE_CHROMA)
    if not strong.any():
        return strong
    weak = _stroke_colored(rgb, (spread >= _WEAK_STROKE_MIN_SPREAD) & ~strong, _WEAK_STROKE_CHROMA)
    if not weak.any():
        return strong
    graph = _pixel_graph(strong | weak)
    is_strong = strong[graph.rows, graph.cols]
    reached = _spread_nearest(graph, is_strong, ~is_strong, max_steps=_WEAK_STROKE_STEPS) >= 0
    strokes = strong.copy()
    strokes[graph.rows[reached], graph.cols[reached]] = True
    return strokes


def find_guide_lines(rgb: np.ndarray) -> np.ndarray:
    """The colored guide-line pixels of a line-art frame.

    A stroke pixel is saturated (CIELAB chroma C* >= 40, or >= 20 where it connects to such pixels within 8 steps)
    and not paler than L* 95; black and grey ink, however anti-aliased, have no chroma and are never found, and JPEG
    noise stays well below the thresholds. Pixels within two steps of a stroke with a faint tint (C* >= 3), reached
    through such pixels, are its anti-aliased edge.

    Args:
        rgb: (H, W, 3) uint8 line art.

    Returns:
        (H, W) bool, all False for a frame with black and grey lines only (decided by one cheap pass).
    """
    _check_rgb(rgb, "line art")
    strokes = _stroke_pixels(rgb)
    if not strokes.any():
        return strokes
    near = strokes
    for _ in range(_EDGE_STEPS):
        near = _dilate4(near)
    edge_candidates = near & ~strokes
    tinted = strokes.copy()
    tinted[edge_candidates] = _chroma(rgb[edge_candidates]) >= _EDGE_CHROMA
    mask = strokes
    for _ in range(_EDGE_STEPS):
        mask = _dilate4(mask) & tinted
    return mask


def _most_saturated_nearby(graph: _PixelGraph, chroma: np.ndarray, steps: int) -> np.ndarray:
    """(N,) position of the most saturated pixel within `steps` steps of each (itself when none is more)."""
    count = len(chroma)
    # Chroma in quarter units above the position: one max over the keys finds the most saturated pixel and where.
    key = np.append(np.round(4 * chroma).astype(np.int64) * count + np.arange(count), -1)
    for _ in range(steps):
        key[:count] = np.maximum(key[:count], key[graph.neighbours].max(axis=1))
    return key[:count] % count


def _near_black_ink(rgb: np.ndarray, mask: np.ndarray, mask_chroma: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels within `_BLACK_STEPS` steps of black ink: dark pixels, less saturated than any stroke
    where they lie in the mask (JPEG tints the black beside a guide line into it); `mask_chroma` in mask order."""
    near = rgb_to_gray(rgb) < _BLACK_LUMA
    near[mask] &= mask_chroma < _WEAK_STROKE_CHROMA
    for _ in range(_BLACK_STEPS):
        near = _dilate4(near)
    return near


def _unmix(rgb: np.ndarray, mask: np.ndarray) -> _GuideMix:
    """Split each guide pixel (of a non-empty mask) into its stroke color, black ink and paper shares.

    A guide pixel p is modelled as alpha * s + (1 - alpha) * (v, v, v): the stroke's full color s (the most
    saturated guide pixel nearby: a stroke's middle is fully covered, its edges are not) over a grey v of paper and
    ink. Alpha comes from the chromatic parts (p and s minus their grey component); the grey's darkness is the ink
    share where a black line is near, and none elsewhere. The most saturated pixels themselves are all stroke: alpha
    exactly 1, no ink.
    """
    graph = _pixel_graph(mask)
    pixels_u8 = rgb[graph.rows, graph.cols]
    chroma = _chroma(pixels_u8)
    reference = _most_saturated_nearby(graph, chroma, steps=_EDGE_STEPS + 1)
    pixels = pixels_u8.astype(np.float32)
    stroke = pixels[reference]
    pixel_chroma = pixels - pixels.mean(axis=1, keepdims=True)
    stroke_chroma = stroke - stroke.mean(axis=1, keepdims=True)
    norm = (stroke_chroma**2).sum(axis=1)
    alpha = np.clip((pixel_chroma * stroke_chroma).sum(axis=1) / np.maximum(norm, 1e-6), 0, 1)
    alpha[reference == np.arange(len(reference))] = 1
    grey = (pixels @ _LUMA - alpha * (stroke @ _LUMA)) / 255  # = (1 - alpha) * v / 255
    ink = np.where(_near_black_ink(rgb, mask, chroma)[mask], np.clip((1 - alpha) - grey, 0, 1 - alpha), 0)
    return _GuideMix(alpha=alpha.astype(np.float32), ink=ink.astype(np.float32), stroke=stroke)


def split_line_art(rgb: np.ndarray) -> GuideSplit:
    """Separate a line-art frame's colored guide lines from its black lines.

    Args:
        rgb: (H, W, 3) uint8 line art.

    Returns:
        A `GuideSplit`. Without guide lines, `lines` and `boundaries` both equal `rgb_to_gray(rgb)` and the mask is
        all False.
    """
    mask = find_guide_lines(rgb)
    lines = rgb_to_gray(rgb)
    if not mask.any():
        return GuideSplit(lines=lines, boundaries=lines.copy(), mask=mask)
    lines = lines.copy()  # Pillow's array may be read-only
    lines[mask] = np.round(255 * (1 - _unmix(rgb, mask).ink)).astype(np.uint8)
    boundaries = lines.copy()
    boundaries[mask] = 0
    return GuideSplit(lines=lines, boundaries=boundaries, mask=mask)


def _nearest_fill(colored: np.ndarray, mask: np.ndarray, painted: np.ndarray) -> np.ndarray:
    """(N, 3) float32 color of the paint pixel nearest to each mask pixel (row-major), reached through the mask; the
    pixel's own color where its guide line touches no paint pixel (enclosed by ink)."""
    graph = _pixel_graph(mask | (_dilate4(mask) & painted & ~mask))
    in_mask = mask[graph.rows, graph.cols]
    nearest = _spread_nearest(graph, ~in_mask, in_mask, max_steps=len(in_mask))
    colors = colored[graph.rows, graph.cols]
    return np.where((nearest >= 0)[:, None], colors[nearest], colors)[in_mask].astype(np.float32)


def finish_guide_lines(
    colored: np.ndarray, rgb_source: np.ndarray, mask: np.ndarray, labels: np.ndarray, mode: str
) -> np.ndarray:
    """Keep or paint over the guide lines of a finished frame.

    Each guide pixel first takes the color of the nearest paint pixel (label > 0, outside the mask) reached through
    the guide line, so each side of a shadow line gets its own region's color. Labels from `segment_regions` of
    either `GuideSplit.boundaries` (guide pixels are then ink, label 0) or `GuideSplit.lines` (they lie inside a
    region) work.

    Args:
        colored: (H, W, 3) uint8 finished frame, colored from `GuideSplit.lines`.
        rgb_source: (H, W, 3) uint8 line art the split was made from.
        mask: (H, W) bool guide pixels, `GuideSplit.mask`.
        labels: (H, W) int region labels, 0 on ink.
        mode: "paint": the guide lines vanish into the fill beside them, black ink mixed into their edges kept;
            "keep": they are laid over that fill in their own color (exactly the source's on fully colored pixels,
            their anti-aliased edges blended by coverage).

    Returns:
        (H, W, 3) uint8, a new frame; `colored` itself when the mask is empty.
    """
    if mode not in GUIDE_LINE_MODES:
        msg = f"unknown guide-line mode {mode!r}; choose one of {', '.join(GUIDE_LINE_MODES)}"
        raise ValueError(msg)
    _check_rgb(colored, "colored frame")
    _check_rgb(rgb_source, "source line art")
    if not (colored.shape == rgb_source.shape and mask.shape == labels.shape == colored.shape[:2]):
        msg = f"frame {colored.shape}, source {rgb_source.shape}, mask {mask.shape} and labels {labels.shape} differ"
        raise ValueError(msg)
    if not mask.any():
        return colored
    fill = _nearest_fill(colored, mask, labels > 0)
    mix = _unmix(rgb_source, mask)
    if mode == "keep":
        paper = 1 - mix.alpha - mix.ink
        painted = mix.alpha[:, None] * mix.stroke + paper[:, None] * fill
    else:
        painted = (1 - mix.ink)[:, None] * fill
    out = colored.copy()
    out[mask] = np.clip(np.round(painted), 0, 255).astype(np.uint8)
    return out
