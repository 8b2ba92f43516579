"""Animated OpenMoji shots: shapes, motion, line/color alignment, agreement with the still render, moving parts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from model.data import openmoji_svg_dir, render_openmoji_pair
from model.synthetic_shots import (
    STILL,
    DrawingPart,
    Motion,
    PartMotion,
    ShotArrays,
    find_parts,
    random_part_motions,
    render_openmoji_shot,
)

FOX = "1F98A"
# The confetti ball: two half shells (each a line outline and two color fills) and three streamers above white.
CONFETTI = "1F38A"
MOVING = Motion(translate_end=(0.1, -0.05), rotate_start=-5.0, rotate_end=10.0, scale_end=0.9, bob=0.02)


def svg_path(name: str) -> Path:
    return openmoji_svg_dir() / f"{name}.svg"


@pytest.fixture(scope="module")
def moving_shot() -> ShotArrays:
    return render_openmoji_shot(svg_path(FOX), frames=5, width=88, height=56, motion=MOVING)


def test_shot_has_the_asked_frames_and_non_square_shape(moving_shot: ShotArrays) -> None:
    assert len(moving_shot) == 5
    assert moving_shot.line.shape == (5, 56, 88) and moving_shot.line.dtype == np.uint8
    assert moving_shot.color.shape == (5, 56, 88, 3) and moving_shot.color.dtype == np.uint8
    assert moving_shot.name == FOX


def test_line_frames_change_with_motion_and_not_without() -> None:
    moving = render_openmoji_shot(svg_path(FOX), frames=4, width=72, height=48, motion=MOVING)
    still = render_openmoji_shot(svg_path(FOX), frames=4, width=72, height=48, motion=STILL)
    for t in range(1, 4):
        assert np.abs(moving.line[t].astype(int) - moving.line[t - 1]).max() > 100
        np.testing.assert_array_equal(still.line[t], still.line[0])
        np.testing.assert_array_equal(still.color[t], still.color[0])


def test_line_pixels_are_dark_in_the_color_frame_of_the_same_time(moving_shot: ShotArrays) -> None:
    for line, color in zip(moving_shot.line, moving_shot.color, strict=True):
        ink = line < 64
        assert ink.mean() > 0.01
        assert (color[ink].max(axis=1) < 128).mean() > 0.97


def test_each_frame_is_aligned_with_its_own_color_frame_better_than_with_its_neighbours(
    moving_shot: ShotArrays,
) -> None:
    def dark_agreement(line: np.ndarray, color: np.ndarray) -> float:
        ink = line < 64
        return float((color[ink].max(axis=1) < 128).mean())

    for t in range(1, len(moving_shot)):
        assert dark_agreement(moving_shot.line[t], moving_shot.color[t]) > dark_agreement(
            moving_shot.line[t], moving_shot.color[t - 1]
        )


def test_frame_zero_without_motion_equals_the_plain_render() -> None:
    plain_line, plain_color = render_openmoji_pair(svg_path(FOX), 64)
    shot = render_openmoji_shot(svg_path(FOX), frames=1, width=64, height=64, motion=STILL)
    assert np.abs(shot.line[0].astype(int) - plain_line).max() <= 2
    assert np.abs(shot.color[0].astype(int) - plain_color).max() <= 2


def test_non_square_canvas_centres_the_drawing_with_its_aspect_kept() -> None:
    plain_line, plain_color = render_openmoji_pair(svg_path(FOX), 48)
    shot = render_openmoji_shot(svg_path(FOX), frames=1, width=80, height=48, motion=STILL)
    assert np.abs(shot.line[0, :, 16:64].astype(int) - plain_line).max() <= 2
    assert np.abs(shot.color[0, :, 16:64].astype(int) - plain_color).max() <= 2
    assert (shot.color[0, :, :16] == 255).all() and (shot.color[0, :, 64:] == 255).all()


def test_rendering_is_deterministic() -> None:
    first = render_openmoji_shot(svg_path(FOX), frames=3, width=40, height=32, motion=MOVING)
    again = render_openmoji_shot(svg_path(FOX), frames=3, width=40, height=32, motion=MOVING)
    np.testing.assert_array_equal(first.line, again.line)
    np.testing.assert_array_equal(first.color, again.color)


@pytest.mark.parametrize(("frames", "width", "height"), [(0, 32, 32), (2, 0, 32), (2, 32, -1)])
def test_bad_sizes_are_rejected_with_the_value(frames: int, width: int, height: int) -> None:
    with pytest.raises(ValueError, match=str(min(frames, width, height))):
        render_openmoji_shot(svg_path(FOX), frames=frames, width=width, height=height, motion=STILL)


def test_non_positive_scale_is_rejected() -> None:
    with pytest.raises(ValueError, match="scale_end=0"):
        Motion(scale_end=0)


def part_disc(part: DrawingPart, pixels_per_unit: float, shift: tuple[float, float], extra: float) -> np.ndarray:
    """(H, W) mask of a disc around a part's centre (moved by `shift` units) on a 72-unit drawing's canvas."""
    size = int(72 * pixels_per_unit)
    rows, cols = np.mgrid[:size, :size] + 0.5
    cx, cy = (part.centre[0] + shift[0]) * pixels_per_unit, (part.centre[1] + shift[1]) * pixels_per_unit
    return np.hypot(cols - cx, rows - cy) <= (part.radius + extra) * pixels_per_unit


def test_the_fox_s_eyes_are_parts_and_its_outline_is_not() -> None:
    parts = find_parts(svg_path(FOX).read_text())
    # The eyes: one filled line element each, on the flat orange face; every other line touches the outline or
    # lies on a color edge (the white muzzle and ears).
    assert len(parts) == 2
    line_group = line_group_index(svg_path(FOX).read_text())
    assert all(len(part.elements) == 1 and part.elements[0][0] == line_group for part in parts)
    left, right = sorted(parts, key=lambda part: part.centre[0])
    assert left.centre[0] < 36 < right.centre[0]
    assert all(0.5 <= part.clearance <= 8 and 2 < part.radius < 6 for part in parts)


def line_group_index(svg_text: str) -> int:
    return next(i for i, group in enumerate(ET.fromstring(svg_text)) if group.get("id") == "line")


def test_a_part_moves_with_its_colors_and_nothing_else_changes() -> None:
    path = svg_path(CONFETTI)
    text = path.read_text()
    parts = find_parts(text)
    assert len(parts) == 5
    part = parts[1]  # the right half shell
    line_group = line_group_index(text)
    assert sum(group == line_group for group, _ in part.elements) == 1
    assert sum(group != line_group for group, _ in part.elements) == 2  # its two fills move with its outline
    assert part.clearance >= 1.5
    # 1.5 drawing units at 2 px per unit: exactly 3 pixels, so the moved part is the first frame's, shifted.
    shot = render_openmoji_shot(path, 3, 144, 144, STILL, [PartMotion(part, translate=(1.5, 0.0))])
    first_color, last_color = shot.color[0].astype(int), shot.color[-1].astype(int)
    first_line, last_line = shot.line[0].astype(int), shot.line[-1].astype(int)
    color_changed = np.abs(last_color - first_color).max(axis=2) > 0
    line_changed = np.abs(last_line - first_line) > 0
    # Nothing changes away from the part ...
    around = part_disc(part, 2, shift=(0.75, 0.0), extra=1.5)
    assert not (color_changed & ~around).any() and not (line_changed & ~around).any()
    # ... and wherever something changed, it shows the first frame shifted by 3 pixels: the shell with its fills
    # where it went, the flat color that was beside it where it left.
    assert np.abs(last_color - np.roll(first_color, 3, axis=1))[color_changed].max() <= 2
    assert np.abs(last_line - np.roll(first_line, 3, axis=1))[line_changed].max() <= 2
    # It did move: the shell and its colors are not where they were.
    assert (np.abs(last_color - first_color).max(axis=2) > 100).sum() > 100
    assert (np.abs(last_line - first_line) > 100).sum() > 50


def test_moving_parts_keep_line_art_and_colors_aligned_over_a_moving_shot() -> None:
    path = svg_path(FOX)
    parts = find_parts(path.read_text())
    motions = [PartMotion(part, translate=(part.clearance / 2, -part.clearance / 4), rotate=8.0) for part in parts]
    shot = render_openmoji_shot(path, 5, 96, 80, MOVING, motions)
    plain = render_openmoji_shot(path, 5, 96, 80, MOVING)
    np.testing.assert_array_equal(shot.line[0], plain.line[0])  # parts are at rest at frame 0
    np.testing.assert_array_equal(shot.color[0], plain.color[0])
    assert np.abs(shot.line[-1].astype(int) - plain.line[-1]).max() > 100  # and not at the end
    for line, color in zip(shot.line, shot.color, strict=True):
        ink = line < 64
        assert (color[ink].max(axis=1) < 128).mean() > 0.97


def test_part_motion_eases_from_rest_and_back() -> None:
    part = DrawingPart(elements=((4, 0),), centre=(10.0, 20.0), radius=2.0, clearance=3.0)
    there = PartMotion(part, translate=(2.0, 0.0), rotate=10.0)
    back = PartMotion(part, translate=(2.0, 0.0), rotate=10.0, cycles=2)
    assert there.transform(0, 9) == "translate(0.000000 0.000000) rotate(0.000000 10.000000 20.000000)"
    assert there.transform(8, 9) == "translate(2.000000 0.000000) rotate(10.000000 10.000000 20.000000)"
    assert back.transform(4, 9) == there.transform(8, 9)
    assert back.transform(8, 9) == there.transform(0, 9)
    assert there.reach == pytest.approx(2.0 + 2.0 * np.radians(10.0))
    with pytest.raises(ValueError, match="cycles must be at least 1, got 0"):
        PartMotion(part, cycles=0)


def test_random_part_motions_are_seeded_and_within_the_clearance() -> None:
    parts = find_parts(svg_path(FOX).read_text())
    first = random_part_motions(parts, np.random.default_rng(3), count=2)
    again = random_part_motions(parts, np.random.default_rng(3), count=2)
    assert first == again
    assert len(first) == 2
    # Two parts move at once: each keeps within half its clearance, so they cannot meet.
    assert all(0 < motion.reach <= motion.part.clearance / 2 + 1e-9 for motion in first)
    (single,) = random_part_motions(parts, np.random.default_rng(3), count=1)
    assert single.reach <= single.part.clearance + 1e-9
    assert random_part_motions([], np.random.default_rng(3)) == []


def test_finding_parts_is_deterministic_and_needs_a_line_group() -> None:
    text = svg_path(CONFETTI).read_text()
    assert find_parts(text) == find_parts(text)
    with pytest.raises(ValueError, match=r'bad\.svg has no <g id="line"> group'):
        find_parts(text.replace('id="line"', 'id="strokes"'), "bad.svg")


def test_moving_a_part_of_another_drawing_is_refused() -> None:
    stranger = DrawingPart(elements=((4, 99),), centre=(36.0, 36.0), radius=1.0, clearance=1.0)
    with pytest.raises(ValueError, match=r"\(4, 99\) is not in this drawing"):
        render_openmoji_shot(svg_path(FOX), 2, 32, 32, STILL, [PartMotion(stranger, translate=(1.0, 0.0))])
