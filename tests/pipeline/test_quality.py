"""pipeline/quality.py: the scores against ground truth on tiny synthetic shots whose answers are known, and the
signals without ground truth on the sample's still frames with faults painted in."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import quality
from pipeline.cielab import rgb_to_lab
from tests.pipeline.quality_shots import BLUE, GREEN, RED, four_panel_shot
from tests.reliability.leaking_shot import line_art, region_at
from tests.reliability.leaking_shot import truth as sample_truth


@pytest.fixture
def truth() -> tuple[np.ndarray, np.ndarray, list[quality.FrameRegions]]:
    return four_panel_shot()


def test_the_truth_has_four_scored_regions_per_frame_and_tiny_ones_are_ignored(truth) -> None:
    lines, colors, regions = truth
    assert [frame.count for frame in regions] == [4, 4, 4, 4]
    boxed = lines[0].copy()
    boxed[3:8, 3:8] = 0
    boxed[4:7, 4:7] = 255  # a closed 3 x 3 region: 9 pixels, under the 16 scored
    assert quality.truth_regions(colors[0], boxed).count == 4
    assert quality.truth_regions(colors[0], boxed, min_region=9).count == 5


def test_one_wrongly_colored_region_loses_exactly_that_region(truth) -> None:
    lines, colors, regions = truth
    output = colors.copy()
    output[2, 13:23, 1:11] = GREEN  # frame 2's bottom-left region painted like its neighbour
    accuracy, count = quality.region_accuracy(output[1:], regions)
    assert count == 16
    assert accuracy == pytest.approx(15 / 16)


def test_the_region_color_is_its_median_and_the_threshold_is_delta_e_10(truth) -> None:
    lines, colors, regions = truth
    frame = colors[1].copy()
    frame[1:4, 1:11] = BLUE  # 30 of the top-left region's 100 pixels: the median is still red
    assert quality.regions_right(frame, regions[0]) == 4
    frame[1:8, 1:11] = BLUE  # 70 of them: now blue wins
    assert quality.regions_right(frame, regions[0]) == 3

    def shifted_red(step: int) -> float:
        return float(np.linalg.norm(rgb_to_lab(np.array([RED[0] - step, *RED[1:]], np.uint8)) - rgb_to_lab(
            np.array(RED, np.uint8))))  # fmt: skip

    near = next(step for step in range(1, 100) if shifted_red(step) >= 6)  # a small shade: Delta E 6-10
    far = next(step for step in range(1, 100) if shifted_red(step) >= 10)  # the first shade that is too far
    for step, right in ((near, 4), (far, 3)):
        frame = colors[1].copy()
        frame[1:11, 1:11] = (RED[0] - step, *RED[1:])
        assert quality.regions_right(frame, regions[0]) == right


def test_a_flickering_output_has_a_higher_temporal_error_than_a_steady_one(truth) -> None:
    lines, colors, regions = truth
    steady = colors.copy()
    steady[1:, 13:23, 13:23] = (230, 210, 60)  # wrong by a constant amount from frame 1 on: one change only
    flicker = colors.astype(np.int16).copy()
    flicker[1::2] += 10  # frames 1 and 3 brighter: every pair changes by 10 the truth does not have
    flicker = flicker.clip(0, 255).astype(np.uint8)
    assert quality.temporal_error(flicker, colors) == pytest.approx(10.0)
    assert 0 < quality.temporal_error(steady, colors) < quality.temporal_error(flicker, colors)
    # An output that does not follow the truth's own change (the region turning magenta) is charged for it.
    frozen = np.stack([colors[0]] * 5)
    magenta_change = np.abs(colors[3].astype(int) - colors[2]).sum() / colors[3].size
    assert quality.temporal_error(frozen, colors) == pytest.approx(magenta_change / 4)


def test_the_baseline_lays_each_frame_s_lines_over_the_keyframe_s_colors() -> None:
    keyframe = np.full((4, 5, 3), (200, 100, 50), np.uint8)
    lines = np.full((3, 4, 5), 255, np.uint8)
    lines[1, 2, 3] = 0
    lines[2, 0, 0] = 128
    composite = quality.keyframe_under_lines(keyframe, lines)
    assert composite.shape == (3, 4, 5, 3) and composite.dtype == np.uint8
    np.testing.assert_array_equal(composite[0], keyframe)
    np.testing.assert_array_equal(composite[1, 2, 3], (0, 0, 0))
    np.testing.assert_array_equal(composite[2, 0, 0], (100, 50, 25))
    assert (composite[1].reshape(-1, 3) == (200, 100, 50)).all(axis=1).sum() == 19
    with pytest.raises(ValueError, match=r"line art is \(4, 4\) but the keyframe is \(4, 5\)"):
        quality.keyframe_under_lines(keyframe, lines[:, :, :4])


def test_region_medians_take_each_region_s_middle_value_per_channel() -> None:
    values = np.array([[1, 9], [5, 7], [3, 8], [10, 0], [20, 2]], dtype=np.float64)
    region = np.array([0, 0, 0, 1, 1])
    np.testing.assert_array_equal(quality.region_medians(values, region, 2), [[3, 8], [20, 2]])


def still_signals(colors: list[np.ndarray]) -> quality.QualitySignals:
    """The signals of a still shot: the sample's first line art under each of `colors`, every pair measured."""
    signals = quality.ShotSignals(np.asarray(sample_truth(1)), sampled=range(len(colors)))
    for index, frame in enumerate(colors):
        signals.add(index, f"frame{index + 1}.png", line_art(1), frame)
    return signals.finish()


def test_a_steady_still_shot_has_no_flicker_no_changed_region_and_keeps_the_keyframe_s_palette() -> None:
    signals = still_signals([sample_truth(1)] * 6)
    assert signals.still_pairs == 5 and signals.frames_checked == 6 and signals.flagged == []
    assert signals.flicker == 0 and signals.changed_regions == 0
    assert signals.off_palette < 0.02  # the keyframe's own colors; a little anti-aliasing between them


def test_a_region_recolored_on_one_frame_of_a_still_shot_is_flicker_a_changed_region_and_a_flag() -> None:
    colors = [sample_truth(1) for _ in range(6)]
    shirt = region_at(1, (200, 290))
    colors[3][shirt] = (120, 200, 90)
    signals = still_signals(colors)
    assert signals.flicker > 0.5  # two of the five pairs see the shirt change
    assert signals.changed_regions == pytest.approx(2 / (5 * 4))  # the shirt, in 2 pairs of 4 regions each
    assert [(flag.frame, flag.signal) for flag in signals.flagged] == [("frame4.png", "region color")]
    steady = still_signals([sample_truth(1)] * 6)
    assert signals.suspicion > steady.suspicion + 0.3


def test_paint_in_a_color_the_keyframe_does_not_have_is_off_its_palette() -> None:
    shirt = region_at(1, (200, 290))
    purple = sample_truth(1)
    purple[shirt] = (150, 60, 200)
    signals = still_signals([purple] * 3)
    paper = (line_art(1) >= quality.PAPER_LEVEL).sum()
    assert signals.off_palette == pytest.approx(shirt.sum() / paper, rel=0.15)
    assert signals.flicker == 0 and signals.changed_regions == 0
