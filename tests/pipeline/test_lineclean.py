"""Line preparation: flat paper, stretched grey ink, speck removal, clean art unchanged, stroke width."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipeline import lineclean
from pipeline.lineclean import clean_line_art, line_thickness, paper_level
from pipeline.regions import segment_regions

HEIGHT, WIDTH = 240, 320
SUPERSAMPLE = 4


def draw_shapes(draw: ImageDraw.ImageDraw, scale: int, width: int, fill: int) -> None:
    """Closed shapes with room between them: 4 boxes, 2 ellipses, a triangle and a dividing stroke."""

    def s(*xy: float) -> list[float]:
        return [v * scale for v in xy]

    for left in (20, 90, 160, 230):
        draw.rectangle(s(left, 20, left + 55, 90), outline=fill, width=width * scale)
    draw.ellipse(s(20, 120, 140, 220), outline=fill, width=width * scale)
    draw.ellipse(s(50, 145, 110, 195), outline=fill, width=width * scale)
    draw.polygon(s(180, 220, 300, 220, 240, 120), outline=fill, width=width * scale)
    draw.line(s(117, 20, 117, 90), fill=fill, width=width * scale)  # splits the second box in two


def clean_drawing(width: int = 3, ink: int = 0, paper: int = 255) -> np.ndarray:
    """(HEIGHT, WIDTH) uint8 anti-aliased line art: drawn 4x larger and box-reduced, as a digital render is."""
    image = Image.new("L", (WIDTH * SUPERSAMPLE, HEIGHT * SUPERSAMPLE), paper)
    draw_shapes(ImageDraw.Draw(image), SUPERSAMPLE, width, ink)
    return np.asarray(image.reduce(SUPERSAMPLE))


def scanned(lines: np.ndarray, seed: int = 0) -> np.ndarray:
    """The drawing on yellowed, unevenly lit paper (170 at the left to 240 at the right) with grain."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    paper = 170 + 70 * xs / WIDTH - 15 * ys / HEIGHT
    grain = rng.normal(0, 5, lines.shape)
    return np.clip(lines / 255 * paper + grain, 0, 255).round().astype(np.uint8)


def test_clean_digital_line_art_comes_back_unchanged() -> None:
    lines = clean_drawing()
    assert len(np.unique(lines)) > 10  # anti-aliased, not binary
    out = clean_line_art(lines)
    assert out.dtype == np.uint8 and out.shape == lines.shape
    assert np.abs(out.astype(int) - lines).max() <= 2


def test_filled_areas_in_clean_art_are_not_mistaken_for_paper() -> None:
    lines = clean_drawing().copy()
    lines[120:220, 180:300] = 128  # a large grey tone
    lines[20:90, 20:75] = 0  # a large solid black fill
    out = clean_line_art(lines)
    assert np.abs(out.astype(int) - lines).max() <= 2


def test_uneven_grainy_paper_becomes_white_and_the_lines_stay() -> None:
    lines = clean_drawing()
    scan = scanned(lines)
    assert (scan[lines == 255] >= 250).mean() < 0.01  # the input's paper is nowhere near white
    out = clean_line_art(scan)
    assert (out[lines == 255] >= 250).mean() > 0.99
    ink = lines < 64
    assert (out[ink] < 100).mean() > 0.99
    assert np.abs(out.astype(int) - lines).mean() < 3


def test_paper_level_follows_the_lighting_under_the_lines() -> None:
    lines = clean_drawing()
    scan = scanned(lines)
    level = paper_level(scan)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    lighting = 170 + 70 * xs / WIDTH - 15 * ys / HEIGHT
    assert np.abs(level - lighting)[8:-8, 8:-8].max() < 12  # grain raises a cell's brightest box a little


def test_segmentation_of_the_cleaned_scan_finds_the_drawing_regions() -> None:
    lines = clean_drawing()
    expected = segment_regions(lines).max()
    assert expected == 9  # outside, 5 inside the boxes, the ring and its hole, the triangle
    assert segment_regions(clean_line_art(scanned(lines))).max() == expected


@pytest.mark.parametrize("ink", [120, 140, 160])
def test_grey_pencil_lines_become_ink(ink: int) -> None:
    lines = clean_drawing(ink=ink, paper=230)
    out = clean_line_art(lines)
    core = lines <= ink
    assert (out[core] < 160).all()
    assert (out[lines == 230] == 255).all()
    assert segment_regions(out).max() == 9


def test_grey_lines_stay_anti_aliased() -> None:
    lines = clean_drawing(ink=140, paper=230)
    out = clean_line_art(lines)
    edges = (lines > 140) & (lines < 230)
    softened = (out[edges] > 10) & (out[edges] < 245)
    assert softened.mean() > 0.5  # the edges keep intermediate levels, not a hard threshold


def test_grainy_grey_lines_become_ink() -> None:
    lines = clean_drawing(width=2, ink=150, paper=225)
    rng = np.random.default_rng(3)
    noisy = np.clip(lines + rng.normal(0, 4, lines.shape), 0, 255).round().astype(np.uint8)
    out = clean_line_art(noisy)
    assert (out[lines <= 150] < 160).mean() > 0.99
    assert (out[lines == 225] >= 250).mean() > 0.99


def test_specks_disappear_and_short_strokes_and_aliased_diagonals_stay() -> None:
    lines = np.full((HEIGHT, WIDTH), 255, dtype=np.uint8)
    lines[40, 40:50] = 0  # a 10 px dash
    lines[60:62, 40:44] = 0  # a 2 x 4 dot
    diagonal = np.arange(100, 140)
    lines[diagonal, diagonal + 50] = 0  # a one-pixel aliased diagonal, as a binary XDoG gives
    rng = np.random.default_rng(0)
    speck_rows, speck_cols = rng.integers(150, 230, 30), rng.integers(200, 310, 30)
    lines[speck_rows, speck_cols] = 30  # single dust pixels
    lines[160:162, 30:32] = 0  # a 2 x 2 speck
    out = clean_line_art(lines, speck_size=6)
    assert (out[speck_rows, speck_cols] == 255).all()
    assert (out[160:162, 30:32] == 255).all()
    assert (out[40, 40:50] == 0).all() and (out[60:62, 40:44] == 0).all()
    assert (out[diagonal, diagonal + 50] == 0).all()
    kept = clean_line_art(lines, speck_size=0)
    assert (kept[speck_rows, speck_cols] < 60).all()


def test_specks_on_a_scan_are_removed() -> None:
    lines = clean_drawing()
    dusty = lines.copy()
    rng = np.random.default_rng(1)
    rows, cols = rng.integers(100, 220, 40), rng.integers(150, 310, 40)
    far = lines[rows, cols] == 255
    far &= np.array([lines[r - 3 : r + 4, c - 3 : c + 4].min() == 255 for r, c in zip(rows, cols, strict=True)])
    dusty[rows[far], cols[far]] = 20
    out = clean_line_art(scanned(dusty))
    assert far.sum() > 10
    assert (out[rows[far], cols[far]] >= 250).all()


def test_clean_line_art_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        clean_line_art(np.zeros((8, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="uint8"):
        clean_line_art(np.zeros((8, 8, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="speck_size"):
        clean_line_art(np.zeros((8, 8), dtype=np.uint8), speck_size=-1)


def test_blank_and_tiny_frames() -> None:
    assert (clean_line_art(np.full((30, 40), 255, dtype=np.uint8)) == 255).all()
    assert (clean_line_art(np.full((30, 40), 200, dtype=np.uint8)) == 255).all()  # plain grey paper
    assert clean_line_art(np.full((3, 2), 9, dtype=np.uint8)).shape == (3, 2)


@pytest.mark.parametrize("stroke", [2, 3, 6, 9])
def test_line_thickness_measures_straight_and_diagonal_strokes(stroke: int) -> None:
    for x0, y0, x1, y1 in [(20, 40, 300, 40), (20, 20, 220, 220), (40, 200, 300, 120)]:
        image = Image.new("L", (WIDTH, HEIGHT), 255)
        ImageDraw.Draw(image).line((x0, y0, x1, y1), fill=0, width=stroke)
        lines = np.asarray(image)
        # Pillow's strokes are not exactly `stroke` wide at every angle: compare with the drawn area per length.
        drawn_width = (lines < 160).sum() / np.hypot(x1 - x0, y1 - y0)
        assert line_thickness(lines) == pytest.approx(drawn_width, rel=0.1)
    assert line_thickness(np.full((10, 10), 255, dtype=np.uint8)) == 0.0


@pytest.mark.parametrize(("ink", "paper"), [(0, 255), (140, 230), (90, 200)])
def test_digital_paper_is_cleaned_as_the_per_pixel_paper_estimate_cleans_it(
    ink: int, paper: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = clean_drawing(width=2, ink=ink, paper=paper).copy()
    rng = np.random.default_rng(5)
    lines[rng.integers(0, HEIGHT, 20), rng.integers(0, WIDTH, 20)] = 10  # dust, some of it on the strokes
    assert (
        lineclean._digital_paper(lines, lineclean._paper_cells(lines, lineclean._paper_cell_size(*lines.shape)))
        is not None
    )
    by_levels = clean_line_art(lines)
    monkeypatch.setattr(lineclean, "_digital_paper", lambda gray, cells: None)
    per_pixel = clean_line_art(lines)
    difference = np.abs(by_levels.astype(int) - per_pixel)
    assert difference.max() <= 4 and (difference > 0).mean() < 0.01
    assert (by_levels[lines == paper] == 255).all()


def test_grainy_paper_is_not_taken_for_digital_paper() -> None:
    lines = clean_drawing(width=2, ink=150, paper=225)
    grainy = np.clip(lines + np.random.default_rng(3).normal(0, 4, lines.shape), 0, 255).round().astype(np.uint8)
    assert (
        lineclean._digital_paper(grainy, lineclean._paper_cells(grainy, lineclean._paper_cell_size(*grainy.shape)))
        is None
    )
