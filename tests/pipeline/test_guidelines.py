from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from model.files import rgb_to_gray
from pipeline.guidelines import GUIDE_LINE_MODES, find_guide_lines, finish_guide_lines, split_line_art
from pipeline.regions import segment_regions

RED = (230, 20, 30)
BLUE = (30, 70, 230)
GREEN = (20, 150, 40)
SIZE = 64
SUPERSAMPLE = 4  # drawn this much larger, then box-averaged: anti-aliased edges like a real render


def draw(strokes: list[tuple[str, list[float], tuple[int, int, int], int]], smooth: bool = True) -> np.ndarray:
    """A SIZE x SIZE white frame with strokes ("line" or "rect" outline, coords in frame pixels, color, width)."""
    scale = SUPERSAMPLE if smooth else 1
    image = Image.new("RGB", (SIZE * scale, SIZE * scale), "white")
    pen = ImageDraw.Draw(image)
    for kind, coords, color, width in strokes:
        scaled = [c * scale for c in coords]
        if kind == "line":
            pen.line(scaled, fill=color, width=width * scale)
        else:
            pen.rectangle(scaled, outline=color, width=width * scale)
    if smooth:
        image = image.resize((SIZE, SIZE), Image.Resampling.BOX)
    return np.array(image)


BOX = ("rect", [4, 4, 59, 59], (0, 0, 0), 3)  # a closed black outline; its inside is rows/cols 7..55


def shadow_frame(smooth: bool = True, color: tuple[int, int, int] = RED) -> np.ndarray:
    """The black box split across its middle by a 3-px colored guide line that ends under the outline."""
    return draw([("line", [5, 31.5, 58, 31.5], color, 3), BOX], smooth)


def inside_regions(labels: np.ndarray) -> set[int]:
    """The region labels inside the black box."""
    inside = labels[8:55, 8:55]
    return set(np.unique(inside[inside > 0]).tolist())


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Round trip through JPEG (4:2:0 chroma, as cameras and scanners save it)."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return np.array(Image.open(buffer).convert("RGB"))


def paint_two_regions(split_lines: np.ndarray, labels: np.ndarray, top: tuple, bottom: tuple) -> np.ndarray:
    """A finished frame: `top` above the middle, `bottom` below, multiplied by the black lines as composite_lines
    does; ink pixels keep whatever the model put there (here a green that must not leak into the guide line)."""
    fill = np.empty((SIZE, SIZE, 3), dtype=np.uint8)
    fill[:32], fill[32:] = top, bottom
    fill[labels == 0] = (0, 255, 0)
    return (fill.astype(np.uint16) * split_lines[..., None] // 255).astype(np.uint8)


def test_red_guide_line_splits_a_region_only_in_boundaries() -> None:
    split = split_line_art(shadow_frame())
    assert len(inside_regions(segment_regions(split.boundaries))) == 2
    assert len(inside_regions(segment_regions(split.lines))) == 1


def test_guide_line_is_removed_from_lines_without_a_ghost() -> None:
    frame = shadow_frame()
    split = split_line_art(frame)
    assert split.mask[29:35, 10:54].any(axis=0).all()  # found along its whole length
    assert split.lines[24:40, 10:54].min() >= 250  # no pink edge left to darken the fill
    assert (split.boundaries[split.mask] == 0).all()


def test_black_ink_at_a_guide_line_junction_stays_in_lines() -> None:
    split = split_line_art(shadow_frame())
    black_only = rgb_to_gray(draw([BOX]))
    outline = black_only < 128
    assert np.abs(split.lines[outline].astype(int) - black_only[outline]).max() <= 40


@pytest.mark.parametrize("quality", [50, 75, 90])
def test_jpeg_guide_line_leaves_no_ghost_and_no_hole_in_the_outline(quality: int) -> None:
    split = split_line_art(jpeg(shadow_frame(), quality))
    outline = rgb_to_gray(draw([BOX])) < 64
    assert split.lines[outline].max() < 160  # still ink for segment_regions where the guide line meets it
    assert split.lines[26:38, 12:52].min() >= 240  # JPEG's washed-out chroma does not turn the stroke grey
    assert len(inside_regions(segment_regions(split.boundaries))) == 2


def test_grey_antialiased_black_lines_are_not_guide_lines() -> None:
    frame = draw(
        [BOX, ("line", [6, 10, 57, 50], (0, 0, 0), 1), ("line", [10, 57, 50, 12], (90, 90, 90), 2)],
    )
    assert len(np.unique(frame)) > 10  # really anti-aliased: many greys
    for candidate in (frame, jpeg(frame, 40)):
        assert not find_guide_lines(candidate).any()
        split = split_line_art(candidate)
        np.testing.assert_array_equal(split.lines, rgb_to_gray(candidate))
        np.testing.assert_array_equal(split.boundaries, rgb_to_gray(candidate))


def test_jpeg_noise_beside_black_lines_is_not_found_but_the_guide_line_is() -> None:
    frame = jpeg(draw([BOX, ("line", [6, 10, 57, 50], (0, 0, 0), 2), ("line", [5, 44, 58, 44], RED, 2)]), 40)
    mask = find_guide_lines(frame)
    assert mask[42:47, 8:56].any(axis=0).all()
    assert not mask[:38].any() and not mask[51:].any()


@pytest.mark.parametrize("color", [BLUE, GREEN, (120, 160, 255)])
def test_blue_highlight_and_green_lines_are_found(color: tuple[int, int, int]) -> None:
    frame = draw([BOX, ("line", [10, 48, 50, 14], color, 2)])
    mask = find_guide_lines(frame)
    stroke = np.abs(frame.astype(int) - color).max(axis=2) < 10
    assert stroke.sum() > 30
    assert mask[stroke].all()
    assert not mask[rgb_to_gray(draw([BOX])) < 250].any()  # the black outline is not, nor its grey edges


def test_keep_restores_the_guide_color_exactly_on_the_mask() -> None:
    frame = shadow_frame(smooth=False)
    split = split_line_art(frame)
    labels = segment_regions(split.boundaries)
    colored = paint_two_regions(split.lines, labels, top=(250, 220, 200), bottom=(180, 140, 150))
    out = finish_guide_lines(colored, frame, split.mask, labels, "keep")
    np.testing.assert_array_equal(out[split.mask], frame[split.mask])
    np.testing.assert_array_equal(out[~split.mask], colored[~split.mask])


def test_keep_blends_antialiased_edges_over_the_fill_not_over_paper() -> None:
    frame = shadow_frame()
    split = split_line_art(frame)
    labels = segment_regions(split.boundaries)
    dark = (30, 30, 110)
    colored = paint_two_regions(split.lines, labels, top=dark, bottom=dark)
    out = finish_guide_lines(colored, frame, split.mask, labels, "keep")
    lightest = max(rgb_to_gray(np.array([[RED, dark]], dtype=np.uint8))[0])
    assert rgb_to_gray(out)[split.mask].max() <= lightest + 3  # no pinkish-white halo on a dark fill
    assert (np.abs(out[31:33, 10:54].astype(int) - RED).max(axis=2) <= 2).all()  # the stroke's middle is its color


@pytest.mark.parametrize("smooth", [False, True])
@pytest.mark.parametrize("labels_from", ["boundaries", "lines"])
def test_paint_gives_each_side_its_own_region_color(smooth: bool, labels_from: str) -> None:
    frame = shadow_frame(smooth)
    split = split_line_art(frame)
    labels = segment_regions(getattr(split, labels_from))
    top, bottom = (250, 220, 200), (180, 140, 150)
    colored = paint_two_regions(split.lines, labels, top, bottom)
    out = finish_guide_lines(colored, frame, split.mask, labels, "paint")
    guide = split.mask.copy()
    guide[:, :9] = guide[:, 55:] = False  # ends where it meets the outline: ink is mixed in there
    painted = out[guide].astype(int)
    distance = np.minimum(np.abs(painted - top).max(axis=1), np.abs(painted - bottom).max(axis=1))
    assert distance.max() <= 1  # no white, no red, no green from under the line: one of the two fills
    rows = np.nonzero(guide.any(axis=1))[0]
    np.testing.assert_allclose(out[rows[0], 10:54], np.broadcast_to(top, (44, 3)), atol=1)
    np.testing.assert_allclose(out[rows[-1], 10:54], np.broadcast_to(bottom, (44, 3)), atol=1)
    np.testing.assert_array_equal(out[~split.mask], colored[~split.mask])


def test_frame_without_guide_lines_passes_through_unchanged() -> None:
    frame = draw([BOX, ("line", [6, 10, 57, 50], (0, 0, 0), 2)])
    split = split_line_art(frame)
    assert not split.mask.any()
    np.testing.assert_array_equal(split.lines, rgb_to_gray(frame))
    np.testing.assert_array_equal(split.boundaries, split.lines)
    labels = segment_regions(split.boundaries)
    colored = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    for mode in GUIDE_LINE_MODES:
        out = finish_guide_lines(colored, frame, split.mask, labels, mode)
        assert out is colored  # the early exit: no copy of a 1080p frame that has nothing to finish


def test_unknown_mode_and_mismatched_shapes_are_rejected() -> None:
    frame = shadow_frame()
    split = split_line_art(frame)
    labels = segment_regions(split.boundaries)
    with pytest.raises(ValueError, match="'erase'"):
        finish_guide_lines(frame, frame, split.mask, labels, "erase")
    with pytest.raises(ValueError, match="differ"):
        finish_guide_lines(frame, frame, split.mask, labels[1:], "keep")
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        find_guide_lines(rgb_to_gray(frame))
