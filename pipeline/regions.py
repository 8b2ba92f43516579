"""Flat cel colors: one color per closed paint region of the line art.

The model's colors drift inside a region (a soft gradient, a stray blotch of the neighbour's color); cel painting
wants one flat color per area enclosed by the lines. `segment_regions` finds those areas, closing small gaps in the
lines first, and `flat_fill` gives each area the median of the model's colors inside it, taken in CIELAB so that the
vote is perceptual rather than per sRGB byte.

Pure numpy: scipy, scikit-image and OpenCV are not dependencies, so connected components are found by a union-find
over horizontal runs of paper, which needs a handful of vectorised passes instead of a Python loop over pixels.
"""

from __future__ import annotations

import numpy as np

# D65 white point and the sRGB <-> XYZ matrices (IEC 61966-2-1).
_WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
_RGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]],
    dtype=np.float32,
)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ.astype(np.float64)).astype(np.float32)
_LAB_EPSILON = 216 / 24389
_LAB_KAPPA = 24389 / 27

# Lab values are voted on after quantising to this step: fine enough that the median is exact to well under one
# Lab unit, coarse enough to sort as integers.
_LAB_STEP = 0.05


def _srgb_to_linear_table() -> np.ndarray:
    """Linear-light value of each 8-bit sRGB code, so the per-pixel gamma is one table lookup."""
    c = np.arange(256, dtype=np.float64) / 255
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


_SRGB_TO_LINEAR = _srgb_to_linear_table()


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 sRGB -> (..., 3) float32 CIELAB (D65)."""
    xyz = _SRGB_TO_LINEAR[rgb] @ _RGB_TO_XYZ.T / _WHITE
    f = np.where(xyz > _LAB_EPSILON, np.cbrt(xyz), (_LAB_KAPPA * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """(..., 3) float CIELAB (D65) -> (..., 3) uint8 sRGB, out-of-gamut values clipped."""
    lab = lab.astype(np.float64)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    xyz = np.where(f**3 > _LAB_EPSILON, f**3, (116 * f - 16) / _LAB_KAPPA) * _WHITE
    linear = np.clip(xyz @ _XYZ_TO_RGB.T.astype(np.float64), 0, 1)
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.clip(np.round(srgb * 255), 0, 255).astype(np.uint8)


def _dilate(mask: np.ndarray, size: int) -> np.ndarray:
    """Binary dilation by a `size` x `size` square (separable: a running OR along each axis)."""
    if size <= 1:
        return mask.copy()
    before = (size - 1) // 2  # an even size reaches one pixel further after than before
    out = mask.copy()
    for axis in (0, 1):
        grown = out.copy()
        length = out.shape[axis]
        for shift in range(-before, size - before):
            if shift == 0 or abs(shift) >= length:
                continue
            src = [slice(None)] * 2
            dst = [slice(None)] * 2
            if shift > 0:  # pixel i is covered by ink at i - shift
                src[axis], dst[axis] = slice(0, length - shift), slice(shift, length)
            else:
                src[axis], dst[axis] = slice(-shift, length), slice(0, length + shift)
            grown[tuple(dst)] |= out[tuple(src)]
        out = grown
    return out


def _label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected components of a bool mask -> (int32 labels, 0 outside the mask and 1..N inside; N)."""
    height, width = mask.shape
    padded = np.zeros((height, width + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)  # +1 where a run starts, -1 one past where it ends
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)  # row-major order, so ends pair with starts
    count = len(starts)
    if count == 0:
        return np.zeros((height, width), dtype=np.int32), 0

    # Runs touch across rows when they overlap on some column. Keys row * stride + column sort runs globally; for
    # each run the touching runs of the row above form one contiguous slice of that order, found by binary search.
    stride = width + 1
    start_keys = rows.astype(np.int64) * stride + starts
    end_keys = rows.astype(np.int64) * stride + ends
    above = (rows - 1).astype(np.int64) * stride
    first = np.searchsorted(end_keys, above + starts, side="right")
    last = np.searchsorted(start_keys, above + ends, side="left")
    touching = np.maximum(last - first, 0)
    lower = np.repeat(np.arange(count), touching)
    upper = np.arange(touching.sum()) - np.repeat(np.cumsum(touching) - touching, touching) + np.repeat(first, touching)

    # Union-find by hooking roots onto smaller roots, then full path compression, until every edge is inside a set.
    parent = np.arange(count)
    while True:
        root_a, root_b = parent[lower], parent[upper]
        split = root_a != root_b
        if not split.any():
            break
        root_a, root_b = root_a[split], root_b[split]
        parent[np.maximum(root_a, root_b)] = np.minimum(root_a, root_b)  # any winner works: it only ever decreases
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped

    roots, run_labels = np.unique(parent, return_inverse=True)
    run_labels = run_labels.astype(np.int32) + 1
    # Paint runs with a difference array: +label at the start, -label one past the end, summed along each row.
    delta = np.zeros((height, width + 1), dtype=np.int32)
    delta[rows, starts] = run_labels
    delta[rows, ends] -= run_labels
    return np.cumsum(delta, axis=1, dtype=np.int32)[:, :width], len(roots)


def _grow_into(labels: np.ndarray, allowed: np.ndarray, steps: int) -> None:
    """Spread labels in place into unlabelled `allowed` pixels, one 4-neighbour step at a time."""
    for _ in range(steps):
        todo = allowed & (labels == 0)
        if not todo.any():
            return
        neighbour = np.zeros_like(labels)
        neighbour[1:] = labels[:-1]
        np.maximum(neighbour[:-1], labels[1:], out=neighbour[:-1])
        np.maximum(neighbour[:, 1:], labels[:, :-1], out=neighbour[:, 1:])
        np.maximum(neighbour[:, :-1], labels[:, 1:], out=neighbour[:, :-1])
        grown = todo & (neighbour > 0)
        if not grown.any():
            return
        labels[grown] = neighbour[grown]


def segment_regions(lines: np.ndarray, *, gap: int = 3, ink_threshold: int = 160) -> np.ndarray:
    """Closed paint regions of a line-art frame.

    Gaps in the lines narrower than `gap` pixels are closed before labelling, so a stroke that almost meets its
    neighbour still encloses a region; the paper that closing swallowed is then handed back to the region beside it,
    so the labels cover every paper pixel of the input and no ink pixel.

    Args:
        lines: (H, W) uint8 line art, 0 ink and 255 paper.
        gap: gaps of up to `gap - 1` pixels are closed (the ink is dilated by a `gap` x `gap` square); 1 or less
            closes nothing.
        ink_threshold: pixels darker than this are ink.

    Returns:
        (H, W) int32 labels: 0 on ink, 1..N for the regions (4-connected paper).
    """
    if lines.ndim != 2 or lines.dtype != np.uint8:
        msg = f"line art must be (H, W) uint8, got {lines.shape} {lines.dtype}"
        raise ValueError(msg)
    paper = lines >= ink_threshold
    closed_paper = ~_dilate(~paper, gap) if gap > 1 else paper
    labels, count = _label_components(closed_paper)
    # A swallowed pixel lies within `gap` of surviving paper unless the closing ate a whole thin area.
    _grow_into(labels, paper, steps=2 * gap + 2)
    orphans = paper & (labels == 0)
    if orphans.any():  # thin areas the closing filled completely become regions of their own
        extra, _ = _label_components(orphans)
        labels[orphans] = extra[orphans] + count
    return labels


def keyframe_palette(rgb: np.ndarray, *, min_share: float = 0.001, max_colors: int = 64) -> np.ndarray:
    """The flat colors a keyframe is painted with: (P, 3) uint8, most used first.

    A painted cel uses few exact colors over many pixels, while anti-aliased edges spread many colors over few
    pixels each: keeping the colors that cover at least `min_share` of the frame keeps the former.

    Args:
        rgb: (H, W, 3) uint8 keyframe.
        min_share: smallest share of the frame's pixels a palette color covers.
        max_colors: most colors kept.
    """
    packed = rgb.reshape(-1, 3).astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], dtype=np.uint32)
    values, counts = np.unique(packed, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    kept = values[order][counts[order] >= max(1.0, min_share * len(packed))][:max_colors]
    return np.stack([(kept >> 16) & 255, (kept >> 8) & 255, kept & 255], axis=1).astype(np.uint8)


def nearest_in_palette(lab: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(N, 3) Lab colors -> (N, 3) uint8: each replaced by the perceptually nearest palette color."""
    palette_lab = rgb_to_lab(palette).astype(np.float64)
    distances = ((lab[:, None, :] - palette_lab[None, :, :]) ** 2).sum(axis=2)  # (N, P)
    return palette[np.argmin(distances, axis=1)]


def flat_fill(
    colors: np.ndarray, labels: np.ndarray, *, min_region: int = 16, palette: np.ndarray | None = None
) -> np.ndarray:
    """One flat color per region: the per-channel median of the colors inside it, in CIELAB.

    The median (rather than the mean) lets the majority win outright: a region painted 60% red and 40% blue comes
    out red, not purple. Line pixels (label 0) and regions under `min_region` pixels keep the input colors; the
    artist's lines are laid over them afterwards anyway, and a tiny region's median is no better than its pixels.

    Args:
        colors: (H, W, 3) uint8 colors, already at the frame's size.
        labels: (H, W) int32 region labels from `segment_regions`.
        min_region: smallest region, in pixels, that is flattened.
        palette: (P, 3) uint8 colors (see `keyframe_palette`): each region's color is then the palette color
            nearest to its median (palette lock: studios paint from a fixed color model).

    Returns:
        (H, W, 3) uint8 colors, a new array.
    """
    if colors.ndim != 3 or colors.shape[2] != 3 or colors.dtype != np.uint8:
        msg = f"colors must be (H, W, 3) uint8, got {colors.shape} {colors.dtype}"
        raise ValueError(msg)
    if labels.shape != colors.shape[:2]:
        msg = f"labels are {labels.shape} but colors are {colors.shape[:2]}; scale the colors to the frame first"
        raise ValueError(msg)
    out = colors.copy()
    flat_labels = labels.ravel()
    sizes = np.bincount(flat_labels)
    big = sizes >= max(min_region, 1)
    big[0] = False
    # Compact index over the flattened regions only, so the work scales with them and not with every label.
    compact = np.cumsum(big) - 1
    pixels = np.flatnonzero(big[flat_labels])
    if len(pixels) == 0:
        return out
    region = compact[flat_labels[pixels]].astype(np.int64)
    n_regions = int(big.sum())
    region_sizes = sizes[big]
    offsets = np.cumsum(region_sizes) - region_sizes
    median_at = offsets + region_sizes // 2  # upper median: with an even split the later value wins

    lab = rgb_to_lab(colors.reshape(-1, 3)[pixels])
    medians = np.empty((n_regions, 3), dtype=np.float64)
    for channel in range(3):
        # Sort (region, value) pairs as one integer key: each region's values end up contiguous and in order.
        quantised = np.round((lab[:, channel] + 256) / _LAB_STEP).astype(np.int64)
        span = int(quantised.max()) + 1
        keys = region * span + quantised
        if n_regions * span < np.iinfo(np.int32).max:  # 32-bit keys sort about twice as fast
            keys = keys.astype(np.int32)
        keys = np.sort(keys)
        medians[:, channel] = (keys[median_at] % span) * _LAB_STEP - 256

    region_colors = (
        lab_to_rgb(medians) if palette is None or len(palette) == 0 else nearest_in_palette(medians, palette)
    )
    out.reshape(-1, 3)[pixels] = region_colors[region]
    return out


def flat_colors(colors: np.ndarray, lines: np.ndarray, gap: int = 3, palette: np.ndarray | None = None) -> np.ndarray:
    """Colors (H, W, 3) uint8 + the frame's line art (H, W) uint8 -> flat cel colors (H, W, 3) uint8.

    Args:
        colors: the model's colors, already scaled to the line art's size.
        lines: the frame's line art, 0 ink and 255 paper.
        gap: gaps in the lines narrower than this many pixels are closed; see `segment_regions`.
        palette: lock the regions' colors to these (see `flat_fill`).
    """
    return flat_fill(colors, segment_regions(lines, gap=gap), palette=palette)
