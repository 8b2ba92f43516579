from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipeline.cielab import rgb_to_lab
from pipeline.region_vote import (
    RegionVote,
    flat_fill,
    paint_regions,
    region_colors,
    region_vote,
    vote_regions,
    vote_regions_sampled,
)
from pipeline.regions import segment_regions
from tests.pipeline.line_drawings import BLUE, RED, boxed, pocket_with_opening, region_count


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


def test_colors_not_at_the_frame_size_are_refused() -> None:
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
