"""Cut detection on animated OpenMoji sequences: cuts exactly at the boundaries, none inside a moving or held shot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.synthetic_shots import STILL, Motion
from pipeline.cuts import detect_cuts, frame_changes, line_change, read_thumbnails, split_sequence, thumbnail
from tests.pipeline.openmoji_lines import CAR, DRIFT, FOX, HEIGHT, TREE, WIDTH, ZOOM, line_frames, write_frames

PAN = Motion(translate_start=(-0.2, 0.02), translate_end=(0.2, -0.02), rotate_end=12.0)
# Across the frame, turning through 45 degrees and growing by half in 16 frames.
FAST = Motion(
    translate_start=(-0.3, 0.05),
    translate_end=(0.3, -0.05),
    rotate_start=-20.0,
    rotate_end=25.0,
    scale_start=0.7,
    scale_end=1.05,
    bob=0.03,
)


def thumbnails_of(frames: np.ndarray) -> list[np.ndarray]:
    return [thumbnail(frame) for frame in frames]


@pytest.fixture(scope="module")
def three_shots() -> list[np.ndarray]:
    """Three different drawings, 8 moving frames each."""
    return [line_frames(FOX, 8, DRIFT), line_frames(CAR, 8, ZOOM), line_frames(TREE, 8, PAN)]


def test_cuts_between_three_openmoji_shots_are_exactly_the_boundaries(three_shots, tmp_path):
    urls = write_frames(tmp_path / "sequence", np.concatenate(three_shots))
    thumbnails = read_thumbnails(urls)
    assert len(thumbnails) == 24
    assert all(t.shape == (64, 64) and t.dtype == np.float32 for t in thumbnails)
    # Every shot really moves, so "no cut inside a shot" is not won by still frames.
    changes = frame_changes(thumbnails)
    assert min(changes[i] for i in range(23) if i not in (7, 15)) > 0.03

    cuts = detect_cuts(thumbnails)

    assert cuts == [8, 16]
    shots = split_sequence(urls, cuts, "sh")
    assert [shot.name for shot in shots] == ["sh001", "sh002", "sh003"]
    assert [len(shot.frames) for shot in shots] == [8, 8, 8]
    assert shots[1].frames[0].endswith("frame0008.png")


def test_no_cut_inside_one_moving_shot(tmp_path):
    frames = line_frames(FOX, 16, FAST)
    thumbnails = read_thumbnails(write_frames(tmp_path / "fast", frames))
    assert min(frame_changes(thumbnails)) > 0.05  # every frame moves
    assert detect_cuts(thumbnails) == []


def test_a_cut_between_still_shots_is_found_by_the_floor_alone():
    thumbnails = thumbnails_of(np.concatenate([line_frames(CAR, 6, STILL), line_frames(TREE, 6, STILL)]))
    changes = frame_changes(thumbnails)
    assert max(changes[:5] + changes[6:]) == 0.0  # nothing moves, so the ratio test alone would pass anything

    assert detect_cuts(thumbnails) == [6]
    assert detect_cuts(thumbnails, floor=min(1.0, changes[5] + 0.01)) == []


def test_drawings_held_on_twos_neither_make_cuts_nor_hide_one():
    fox = np.repeat(line_frames(FOX, 6, DRIFT), 2, axis=0)  # each drawing shown for two frames
    car = np.repeat(line_frames(CAR, 6, ZOOM), 2, axis=0)
    thumbnails = thumbnails_of(np.concatenate([fox, car]))
    assert frame_changes(thumbnails)[0] == 0.0
    assert detect_cuts(thumbnails) == [12]


def test_of_two_cuts_closer_than_min_shot_length_the_stronger_is_kept():
    a, b, c = (line_frames(name, 6, STILL)[0] for name in (FOX, CAR, TREE))
    thumbnails = thumbnails_of(np.stack([a] * 6 + [b] * 2 + [c] * 6))
    changes = frame_changes(thumbnails)

    assert detect_cuts(thumbnails, min_shot_length=1) == [6, 8]
    stronger = 6 if changes[5] > changes[7] else 8
    assert detect_cuts(thumbnails, min_shot_length=3) == [stronger]
    # A cut may not leave a shot shorter than min_shot_length at either end of the sequence.
    assert detect_cuts(thumbnails, min_shot_length=7) == []


def test_line_change_is_zero_for_the_same_ink_and_one_for_none_shared():
    fox = thumbnail(line_frames(FOX, 1, STILL)[0])
    blank = thumbnail(np.full((HEIGHT, WIDTH), 255, np.uint8))
    moved = line_frames(FOX, 2, Motion(translate_end=(0.02, 0.0)))
    tree = thumbnail(line_frames(TREE, 1, STILL)[0])

    assert line_change(fox, fox) == 0.0
    assert line_change(blank, blank) == 0.0
    assert line_change(fox, blank) == pytest.approx(1.0)
    assert line_change(*thumbnails_of(moved)) < 0.05
    assert line_change(fox, tree) > 0.5
    # Forgiving a shift is what keeps a small move small.
    shifted = np.roll(fox, 2, axis=1)
    assert line_change(fox, shifted, max_shift=0) > 0.2
    assert line_change(fox, shifted) < 0.01


def test_thumbnail_and_line_change_refuse_wrong_inputs():
    with pytest.raises(ValueError, match=r"thumbnail expects a \(H, W\) uint8 gray frame, got uint8 \(4, 4, 3\)"):
        thumbnail(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r"got \(64, 64\) and \(32, 32\)"):
        line_change(np.zeros((64, 64), np.float32), np.zeros((32, 32), np.float32))
    with pytest.raises(ValueError, match=r"thumbnail 2 is \(32, 32\), thumbnail 0 is \(64, 64\)"):
        detect_cuts([np.zeros((64, 64), np.float32)] * 2 + [np.zeros((32, 32), np.float32)])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ratio": 0.5}, r"ratio must be >= 1 .*got 0.5"),
        ({"floor": 0.0}, r"floor must be in \(0, 1\] .*got 0.0"),
        ({"floor": 1.5}, r"floor must be in \(0, 1\] .*got 1.5"),
        ({"min_shot_length": 0}, r"min_shot_length must be >= 1 frame, got 0"),
    ],
)
def test_detect_cuts_refuses_bad_settings(options, message):
    with pytest.raises(ValueError, match=message):
        detect_cuts([np.zeros((64, 64), np.float32)] * 3, **options)


def test_a_frame_that_cannot_be_read_is_named(tmp_path):
    urls = write_frames(tmp_path / "broken", line_frames(FOX, 3, DRIFT))
    Path(urls[1]).write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"frame 1 of the sequence, '.*frame0001\.png', could not be read"):
        read_thumbnails(urls)


def test_split_sequence_refuses_cuts_out_of_order_or_range():
    urls = [f"memory://seq/f{i}.png" for i in range(5)]
    assert [s.frames for s in split_sequence(urls, [])] == [tuple(urls)]
    for cuts in ([0], [5], [3, 2], [2, 2]):
        with pytest.raises(ValueError, match=r"must increase strictly and lie in 1\.\.4 for 5 frames"):
            split_sequence(urls, cuts)
