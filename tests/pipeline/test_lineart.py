"""Line preparation in the shot pipeline: scans cleaned, colored guide lines separating regions and kept out of the
model's input; the bilinear resize that brings the model's colors back to the frame's size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.lineart import prepare_line_art, resize_bilinear
from pipeline.regions import segment_regions
from tests.pipeline.guide_line_frames import line_frame


def scanned(gray: np.ndarray, seed: int = 0) -> np.ndarray:
    """Gray line art on yellowed, unevenly lit, grainy paper."""
    rng = np.random.default_rng(seed)
    xs = np.mgrid[0 : gray.shape[0], 0 : gray.shape[1]][1]
    paper = 175 + 60 * xs / gray.shape[1]
    return np.clip(gray / 255 * paper + rng.normal(0, 5, gray.shape), 0, 255).round().astype(np.uint8)


def box_regions(labels: np.ndarray) -> set[int]:
    inside = labels[17:80, 17:66]
    return set(np.unique(inside[inside > 0]).tolist())


def test_guide_lines_bound_regions_but_stay_out_of_the_model_input() -> None:
    art = prepare_line_art(line_frame())
    assert art.guides is not None and art.guides[46:50, 20:60].any(axis=0).all()
    assert art.lines[40:56, 20:60].min() >= 250  # the model sees paper where the guide line runs
    assert len(box_regions(segment_regions(art.boundaries))) == 2
    assert len(box_regions(segment_regions(art.lines))) == 1


def test_guide_lines_off_reads_them_as_ink() -> None:
    art = prepare_line_art(line_frame(), guide_lines="off")
    assert art.guides is None and art.boundaries is art.lines
    assert art.lines[47, 30] < 120  # the red line is dark ink now


def test_gray_and_black_only_frames_have_no_guides() -> None:
    rgb = line_frame(guide=None)
    for image in (rgb, rgb[..., 0].copy()):
        art = prepare_line_art(image)
        assert art.guides is None and art.source is None
        assert np.abs(art.lines.astype(int) - rgb[..., 0]).max() <= 2  # clean art comes through unchanged


def test_a_scan_is_cleaned_unless_raw_lines_are_asked_for() -> None:
    scan = scanned(line_frame(guide=None)[..., 0])
    cleaned = prepare_line_art(scan).lines
    raw = prepare_line_art(scan, clean=False).lines
    paper = line_frame(guide=None)[..., 0] == 255
    assert (cleaned[paper] >= 250).mean() > 0.99
    assert (raw[paper] >= 250).mean() < 0.05


def test_unknown_guide_line_option_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown guide-line option 'erase'"):
        prepare_line_art(line_frame(), guide_lines="erase")


@pytest.mark.parametrize(("source", "target"), [((192, 256), (600, 800)), ((37, 53), (150, 101)), ((5, 5), (5, 5))])
def test_the_bilinear_resize_enlarges_within_two_levels_of_pillow(
    source: tuple[int, int], target: tuple[int, int]
) -> None:
    rng = np.random.default_rng(sum(source))
    colors = rng.integers(0, 256, (*source, 3), dtype=np.uint8)
    pillow = np.asarray(Image.fromarray(colors).resize(target[::-1], Image.Resampling.BILINEAR))
    resized = resize_bilinear(colors, target)
    assert resized.dtype == np.uint8 and resized.flags.c_contiguous
    difference = np.abs(resized.astype(int) - pillow)  # fixed-point weights rounded another way
    assert difference.max() <= 2 and (difference > 0).mean() < 0.03  # (measured: at most 2, 1.9%)
    values = rng.normal(0, 50, (*source, 3)).astype(np.float32)
    planes = [Image.fromarray(np.ascontiguousarray(values[..., i]), "F") for i in range(3)]
    channels = [plane.resize(target[::-1], Image.Resampling.BILINEAR) for plane in planes]
    # float32 weights computed another way: within 0.02 on values of +-150, under the region vote's 0.05 Lab step
    assert np.abs(resize_bilinear(values, target) - np.stack(channels, axis=-1)).max() < 0.02
