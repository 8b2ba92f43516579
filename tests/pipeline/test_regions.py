from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipeline.regions import (
    RegionVote,
    flat_fill,
    keyframe_palette,
    lab_to_rgb,
    label_components,
    paint_regions,
    region_colors,
    region_vote,
    rgb_to_lab,
    segment_regions,
    vote_regions,
    vote_regions_sampled,
)

RED = (255, 0, 0)
BLUE = (0, 0, 255)


def split_line(gap_px: int, height: int = 40, width: int = 40) -> np.ndarray:
    """Paper split top to bottom by a 2-px vertical line with a hole of `gap_px` rows in the middle."""
    lines = np.full((height, width), 255, dtype=np.uint8)
    lines[:, 19:21] = 0
    top = height // 2 - gap_px // 2
    lines[top : top + gap_px, 19:21] = 255
    return lines


def flood_fill_reference(paper: np.ndarray) -> np.ndarray:
    """Plain BFS 4-connected labelling, to check the vectorised one against."""
    height, width = paper.shape
    labels = np.zeros(paper.shape, dtype=np.int32)
    count = 0
    for i in range(height):
        for j in range(width):
            if not paper[i, j] or labels[i, j]:
                continue
            count += 1
            labels[i, j] = count
            queue = deque([(i, j)])
            while queue:
                y, x = queue.popleft()
                for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                    if 0 <= ny < height and 0 <= nx < width and paper[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = count
                        queue.append((ny, nx))
    return labels


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two labellings group the pixels identically (label numbers may differ)."""
    pairs = set(zip(a.ravel().tolist(), b.ravel().tolist(), strict=True))
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


def region_count(labels: np.ndarray) -> int:
    return len(np.unique(labels[labels > 0]))


def test_two_pixel_gap_is_closed_by_default() -> None:
    lines = split_line(2)
    labels = segment_regions(lines)
    assert region_count(labels) == 2
    assert labels[:, :19].max() == labels[:, :19].min() != labels[:, 21:].min()


def test_six_pixel_gap_is_left_open() -> None:
    assert region_count(segment_regions(split_line(6))) == 1


def test_gap_one_closes_nothing() -> None:
    assert region_count(segment_regions(split_line(2), gap=1)) == 1


@pytest.mark.parametrize("gap_px", [2, 6])
def test_labels_cover_paper_and_never_ink(gap_px: int) -> None:
    lines = split_line(gap_px)
    labels = segment_regions(lines)
    assert labels.dtype == np.int32
    assert (labels[lines >= 160] > 0).all()
    assert (labels[lines < 160] == 0).all()


def test_thin_enclosed_strip_swallowed_by_closing_is_its_own_region() -> None:
    lines = np.full((30, 40), 255, dtype=np.uint8)
    lines[10] = 0
    lines[13] = 0  # rows 11-12: a 2-px strip the 3x3 closing fills completely
    labels = segment_regions(lines)
    strip = labels[11:13]
    assert (strip > 0).all()
    assert len(np.unique(strip)) == 1
    assert strip[0, 0] not in (labels[5, 5], labels[20, 5])
    assert region_count(labels) == 3


def test_labelling_matches_flood_fill_on_noise() -> None:
    rng = np.random.default_rng(1)
    lines = np.where(rng.random((70, 90)) < 0.45, 0, 255).astype(np.uint8)
    labels = segment_regions(lines, gap=1)
    reference = flood_fill_reference(lines >= 160)
    assert labels.max() == reference.max() > 50
    assert same_partition(labels, reference)


def test_known_lab_values() -> None:
    rgb = np.array([[255, 255, 255], RED, BLUE, [0, 0, 0]], dtype=np.uint8)
    expected = np.array([[100, 0, 0], [53.24, 80.09, 67.20], [32.30, 79.19, -107.86], [0, 0, 0]])
    np.testing.assert_allclose(rgb_to_lab(rgb), expected, atol=0.02)
    np.testing.assert_array_equal(lab_to_rgb(rgb_to_lab(rgb)), rgb)


def boxed(height: int = 40, width: int = 40) -> np.ndarray:
    """A frame with a 2-px border of ink: one region inside."""
    lines = np.full((height, width), 255, dtype=np.uint8)
    lines[:2], lines[-2:], lines[:, :2], lines[:, -2:] = 0, 0, 0, 0
    return lines


def test_half_red_half_blue_region_takes_the_majority() -> None:
    lines = boxed()
    colors = np.zeros((40, 40, 3), dtype=np.uint8)
    colors[:22] = RED  # rows 2..21 of the region's 36 are red: 20 of 36
    colors[22:] = BLUE
    out = flat_fill(colors, segment_regions(lines))
    inside = out[2:-2, 2:-2].reshape(-1, 3)
    assert (inside == RED).all()


def test_region_color_is_the_median_in_lab() -> None:
    rng = np.random.default_rng(2)
    lines = boxed(41, 41)  # 37 x 37 = 1369 pixels inside: an odd count, so the median is one sample
    palette = np.array([[200, 40, 30], [30, 160, 90], [220, 200, 60], [90, 60, 200], [240, 240, 240]], np.uint8)
    colors = palette[rng.integers(0, len(palette), (41, 41))]
    labels = segment_regions(lines)
    out = flat_fill(colors, labels)
    inside = labels > 0
    expected = np.median(rgb_to_lab(colors[inside]), axis=0)
    # Per-channel medians of a palette mix are not one of the palette colors nor their mean.
    assert not any(np.allclose(expected, rgb_to_lab(c), atol=1) for c in palette)
    got = np.unique(out[inside], axis=0)
    assert len(got) == 1
    np.testing.assert_allclose(rgb_to_lab(got[0]), expected, atol=1.5)


def test_line_pixels_and_tiny_regions_keep_their_colors() -> None:
    rng = np.random.default_rng(3)
    lines = boxed()
    lines[10:15, 10:15] = 0
    lines[11:14, 11:14] = 255  # a 3x3 enclosed region: 9 pixels, under min_region
    colors = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    labels = segment_regions(lines, gap=1)
    out = flat_fill(colors, labels, min_region=16)
    np.testing.assert_array_equal(out[labels == 0], colors[labels == 0])
    np.testing.assert_array_equal(out[11:14, 11:14], colors[11:14, 11:14])
    big = labels == labels[30, 30]
    assert len(np.unique(out[big], axis=0)) == 1
    assert out is not colors


def pocket_with_opening(opening: int) -> np.ndarray:
    """A 120x120 boxed frame holding a 40x40 pocket walled on three sides, its top wall open `opening` px wide."""
    lines = boxed(120, 120)
    lines[40:82, 40:42] = lines[40:82, 80:82] = lines[80:82, 40:82] = 0  # left, right and bottom walls
    lines[40:42, 40:82] = 0
    middle = 61
    lines[40:42, middle - opening // 2 : middle - opening // 2 + opening] = 255
    return lines


def test_a_paint_area_leaking_through_an_open_gap_gets_its_own_color() -> None:
    lines = pocket_with_opening(8)  # wider than the closed gaps: pocket and surroundings are one region
    assert region_count(segment_regions(lines)) == 1
    colors = np.full((120, 120, 3), 250, np.uint8)
    colors[42:80, 42:80] = RED  # the model painted the pocket red, the rest white
    colors[36:44, 57:65] = (250, 130, 130)  # blurred across the opening
    vote = vote_regions(colors, lines)
    out = paint_regions(colors, vote, region_colors(vote.lab))
    assert region_count(vote.labels) == 2
    pocket, outside = out[50:75, 50:75].reshape(-1, 3), out[5:30, 5:115].reshape(-1, 3)
    assert len(np.unique(pocket, axis=0)) == 1 and np.abs(pocket[0].astype(int) - RED).max() <= 2
    assert len(np.unique(outside, axis=0)) == 1 and outside[0].min() >= 245


def test_a_region_split_across_its_middle_stays_one_color() -> None:
    lines = boxed()
    colors = np.zeros((40, 40, 3), dtype=np.uint8)
    colors[:22], colors[22:] = RED, BLUE  # the two halves touch along the whole width: no leak, the vote wins
    vote = vote_regions(colors, lines)
    out = paint_regions(colors, vote, region_colors(vote.lab))
    assert region_count(vote.labels) == 1
    assert (out[2:-2, 2:-2].reshape(-1, 3) == RED).all()


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="uint8"):
        segment_regions(np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="scale the colors"):
        flat_fill(np.zeros((4, 4, 3), np.uint8), np.zeros((8, 8), np.int32))


def test_a_full_hd_frame_with_hundreds_of_regions_is_filled() -> None:
    rng = np.random.default_rng(5)
    img = Image.new("L", (1920, 1080), 255)
    draw = ImageDraw.Draw(img)
    for x in np.linspace(0, 1919, 26):
        draw.line([(x, 0), (x, 1079)], fill=0, width=3)
    for y in np.linspace(0, 1079, 21):
        draw.line([(0, y), (1919, y)], fill=0, width=3)
    for _ in range(40):
        x, y, r = rng.integers(0, 1920), rng.integers(0, 1080), rng.integers(10, 60)
        draw.ellipse([x - r, y - r, x + r, y + r], outline=0, width=2)
    lines = np.asarray(img)
    colors = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    labels = segment_regions(lines)
    out = flat_fill(colors, labels)
    assert labels.max() >= 500
    assert out.shape == colors.shape
    # Every region of at least 16 pixels is one color (its speed is measured in benchmarks/, not here).
    sizes = np.bincount(labels.ravel())
    big = np.flatnonzero(sizes >= 16)[1:]
    for region in big[:: max(1, len(big) // 50)]:
        assert len(np.unique(out[labels == region], axis=0)) == 1


def test_keyframe_palette_keeps_the_painted_colors_not_the_edges():
    key = np.zeros((60, 90, 3), np.uint8)
    key[:, :40] = (250, 200, 150)  # skin, 40 columns
    key[:, 40:70] = (40, 60, 200)  # shirt, 30 columns
    key[:, 70:] = (20, 20, 20)  # hair, 20 columns
    key[:, 39] = (150, 130, 170)  # an anti-aliased edge: a colour of its own, one column wide
    key[5, 5] = (1, 2, 3)  # a stray pixel
    palette = keyframe_palette(key, min_share=0.02)
    assert palette.tolist() == [[250, 200, 150], [40, 60, 200], [20, 20, 20]]  # most used first
    assert keyframe_palette(key, min_share=0.02, max_colors=1).tolist() == [[250, 200, 150]]


def test_palette_lock_gives_regions_only_palette_colors():
    lines = np.full((40, 60), 255, np.uint8)
    lines[:, 20] = lines[:, 40] = 0  # three regions
    rng = np.random.default_rng(3)
    colors = rng.integers(0, 256, size=(40, 60, 3), dtype=np.uint8)
    colors[:, :20] = (235, 190, 160)  # near the palette's skin
    colors[:, 21:40] = (50, 70, 190)  # near its blue
    palette = np.array([[250, 200, 150], [40, 60, 200], [20, 20, 20]], np.uint8)
    out = flat_fill(colors, segment_regions(lines), palette=palette)
    assert out[0, 0].tolist() == [250, 200, 150] and out[0, 30].tolist() == [40, 60, 200]
    regions = out[lines == 255]
    assert all(color in palette.tolist() for color in np.unique(regions, axis=0).tolist())


def test_a_refined_vote_counts_again_only_what_changed_and_equals_a_fresh_vote() -> None:
    rng = np.random.default_rng(9)
    lines = np.full((60, 80), 255, np.uint8)
    lines[:, 26:28], lines[:, 52:54], lines[29:31] = 0, 0, 0  # six closed panels
    labels = segment_regions(lines)
    colors = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    before = region_vote(colors, labels)
    refined = labels.copy()
    refined[2:12, 2:12] = labels.max() + 1  # a new region carved out of the first panel
    incremental = region_vote(colors, refined, previous=before)
    fresh = region_vote(colors, refined)
    np.testing.assert_array_equal(incremental.lab, fresh.lab)
    np.testing.assert_array_equal(incremental.flat, fresh.flat)
    untouched = [label for label in range(2, labels.max() + 1) if label != refined[2, 2]]
    np.testing.assert_array_equal(incremental.lab[untouched], before.lab[untouched])


def sampled(colors: np.ndarray, lines: np.ndarray, step: int = 2) -> RegionVote:
    """`vote_regions_sampled` as `pipeline.composite.vote_frame` calls it, the grid's Lab taken from the colors."""
    labels = segment_regions(lines)
    grid_lab = rgb_to_lab(np.ascontiguousarray(colors[::step, ::step]))
    return vote_regions_sampled(colors, labels, grid_lab, step)


@pytest.mark.parametrize("step", [2, 3])
def test_a_sampled_vote_gives_the_regions_the_colors_of_a_full_vote(step: int) -> None:
    rng = np.random.default_rng(3)
    lines = np.full((200, 240), 255, np.uint8)
    lines[:, 118:121], lines[98:101] = 0, 0  # four panels
    lines[150:190, 40 : 41 + step], lines[150:190, 42 + step : 44 + step] = 0, 0  # and a strip 1 px wide between
    # two lines, on a column the grid skips
    colors = np.empty((200, 240, 3), np.uint8)
    for (rows, columns), color in zip([(slice(0, 100), slice(0, 120)), (slice(0, 100), slice(120, 240)),
                                       (slice(100, 200), slice(0, 120)), (slice(100, 200), slice(120, 240))],
                                      [RED, BLUE, (40, 160, 60), (230, 200, 40)], strict=True):  # fmt: skip
        colors[rows, columns] = color
    colors[150:190, 41 + step] = (120, 40, 160)  # the strip: the grid's columns never see it
    colors = np.clip(colors.astype(int) + rng.integers(-6, 7, colors.shape), 0, 255).astype(np.uint8)
    full, fast = vote_regions(colors, lines), sampled(colors, lines, step)
    np.testing.assert_array_equal(fast.labels, full.labels)
    np.testing.assert_array_equal(fast.flat, full.flat)
    assert np.abs(fast.lab[full.flat] - full.lab[full.flat]).max() < 1.5  # CIELAB units
    strip = fast.labels[170, 41 + step]
    assert fast.flat[strip] and np.abs(fast.lab[strip] - rgb_to_lab(np.array([[120, 40, 160]], np.uint8))[0]).max() < 4


def test_a_leak_split_on_the_grid_is_split_in_the_frame() -> None:
    lines = np.asarray(Image.fromarray(pocket_with_opening(8)).resize((480, 480), Image.Resampling.NEAREST))
    colors = np.full((480, 480, 3), 250, np.uint8)
    colors[168:320, 168:320] = RED  # the pocket, as in the full-resolution test above, four times larger
    colors[144:176, 228:260] = (250, 130, 130)
    vote = sampled(colors, lines)
    out = paint_regions(colors, vote, region_colors(vote.lab))
    assert region_count(vote.labels) == 2
    pocket, outside = out[200:300, 200:300].reshape(-1, 3), out[20:120, 20:460].reshape(-1, 3)
    assert len(np.unique(pocket, axis=0)) == 1 and np.abs(pocket[0].astype(int) - RED).max() <= 2
    assert len(np.unique(outside, axis=0)) == 1 and outside[0].min() >= 245
    full = vote_regions(colors, lines)
    red_full = paint_regions(colors, full, region_colors(full.lab))[..., 1] < 100
    paper = lines == 255
    assert (red_full != (out[..., 1] < 100))[paper].mean() < 0.005  # the same pixels red as a full vote, but a few


def test_components_join_across_rows_where_they_overlap_and_not_where_they_touch_diagonally() -> None:
    mask = np.zeros((4, 8), dtype=bool)
    mask[0, 0:3] = mask[1, 2:5] = True  # overlap at column 2: one component
    mask[2, 5] = True  # touches (1, 4) diagonally only: a component of its own
    mask[3, 0:8] = True  # touches (2, 5) from below: joins it
    labels, count = label_components(mask)
    assert count == 2
    assert labels[0, 0] == labels[1, 4] == 1  # numbered in the raster order of their first pixels
    assert labels[2, 5] == labels[3, 7] == 2
    assert (labels[~mask] == 0).all()


@pytest.mark.parametrize("size", [2, 3, 4])
def test_a_dilation_by_an_even_square_reaches_one_pixel_further_after_than_before(size: int) -> None:
    from pipeline.regions import _dilate

    mask = np.zeros((9, 9), dtype=bool)
    mask[4, 4] = True
    rows, columns = np.nonzero(_dilate(mask, size))
    before = (size - 1) // 2
    assert (rows.min(), rows.max()) == (4 - before, 4 + size - 1 - before)
    assert (columns.min(), columns.max()) == (4 - before, 4 + size - 1 - before)
