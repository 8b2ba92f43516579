"""Animated OpenMoji shots: shapes, motion, line/color alignment, agreement with the still render."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.data import openmoji_svg_dir, render_openmoji_pair
from model.shots import STILL, Motion, ShotArrays, render_openmoji_shot

FOX = "1F98A"
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
