"""benchmarks/shot_quality.py: its scores on tiny synthetic shots whose answers are known, and its baseline."""

from __future__ import annotations

import numpy as np
import pytest

# The benchmark is a script in benchmarks/, imported from the repository root as the tests are (pytest puts the root
# on sys.path because tests/ is a package).
from benchmarks import shot_quality as quality
from pipeline.regions import rgb_to_lab

SIZE = 24
RED, GREEN, BLUE, YELLOW = (220, 40, 40), (40, 180, 60), (40, 70, 200), (240, 220, 50)


def four_panel_lines() -> np.ndarray:
    """(H, W) line art: a border and a cross of 2-pixel ink, leaving four closed 10 x 10 paint regions."""
    lines = np.full((SIZE, SIZE), 255, np.uint8)
    lines[:1], lines[-1:], lines[:, :1], lines[:, -1:] = 0, 0, 0, 0
    lines[11:13], lines[:, 11:13] = 0, 0
    return lines


def four_panel_colors(lines: np.ndarray, colors: tuple = (RED, GREEN, BLUE, YELLOW)) -> np.ndarray:
    """(H, W, 3) true colors of `four_panel_lines`: one color per quadrant, black ink."""
    rgb = np.zeros((SIZE, SIZE, 3), np.uint8)
    half = SIZE // 2
    for color, (rows, cols) in zip(colors, [(slice(0, half), slice(0, half)), (slice(0, half), slice(half, SIZE)),
                                            (slice(half, SIZE), slice(0, half)),
                                            (slice(half, SIZE), slice(half, SIZE))], strict=True):  # fmt: skip
        rgb[rows, cols] = color
    rgb[lines == 0] = 0
    return rgb


@pytest.fixture
def truth() -> tuple[np.ndarray, np.ndarray, list]:
    """A 5-frame true shot: lines (T, H, W), colors (T, H, W, 3), scored regions of frames 1..4."""
    lines = np.stack([four_panel_lines()] * 5)
    colors = np.stack([four_panel_colors(lines[0])] * 5)
    colors[3:, 1:11, 1:11] = (200, 60, 160)  # the top-left region turns magenta halfway: the truth changes too
    regions = [quality.truth_regions(colors[t], lines[t]) for t in range(1, 5)]
    return lines, colors, regions


def test_the_truth_has_four_scored_regions_per_frame_and_tiny_ones_are_ignored(truth) -> None:
    lines, colors, regions = truth
    assert [frame.count for frame in regions] == [4, 4, 4, 4]
    boxed = lines[0].copy()
    boxed[3:8, 3:8] = 0
    boxed[4:7, 4:7] = 255  # a closed 3 x 3 region: 9 pixels, under the 16 scored
    assert quality.truth_regions(colors[0], boxed).count == 4
    assert quality.truth_regions(colors[0], boxed, min_region=9).count == 5


def test_a_perfect_output_scores_full_accuracy_and_no_temporal_error(truth) -> None:
    lines, colors, regions = truth
    score = quality.score_shot(colors.copy(), colors, regions)
    assert score.region_accuracy == 1.0 and score.regions == 16
    assert score.temporal_error == 0.0
    assert score.psnr == pytest.approx(100.0)  # model.metrics.psnr caps a zero error at 100 dB
    assert score.ssim == pytest.approx(1.0)


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


def test_scores_leave_the_keyframe_s_frame_out_but_not_its_change(truth) -> None:
    lines, colors, regions = truth
    output = colors.copy()
    output[0] = 255 - output[0]
    score = quality.score_shot(output, colors, regions)
    assert score.region_accuracy == 1.0 and score.psnr == pytest.approx(100.0)
    assert score.temporal_error > 0


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


def test_a_stage_that_hurts_either_score_is_called_out() -> None:
    before = {"region_accuracy": 0.50, "temporal_error": 3.0}
    assert "improves region acc and temporal err, hurts nothing" in quality.stage_verdict(
        before, {"region_accuracy": 0.60, "temporal_error": 2.0}
    )
    assert "HURTS temporal err" in quality.stage_verdict(before, {"region_accuracy": 0.60, "temporal_error": 3.5})
    assert "HURTS region acc" in quality.stage_verdict(before, {"region_accuracy": 0.40, "temporal_error": 2.0})
    assert quality.stage_verdict(before, dict(before)).endswith("no change")


def test_a_variant_this_checkout_cannot_make_stops_the_run_naming_it(monkeypatch) -> None:
    monkeypatch.setitem(quality.VARIANTS, "flat+magic", {"fill": "flat", "magic": True})
    options = quality.variant_options(["baseline", "soft"], 256, 4)
    assert options["baseline"] is None and options["soft"].fill == "soft" and not options["soft"].resume
    with pytest.raises(SystemExit, match=r"variant 'flat\+magic' needs .*magic"):
        quality.variant_options(["soft", "flat+magic"], 256, 4)


@pytest.mark.parametrize(("text", "expected"), [("24", (24, 24)), ("24-48", (24, 48))])
def test_frames_take_a_count_or_a_range(text: str, expected: tuple[int, int]) -> None:
    assert quality.parse_frames(text) == expected


@pytest.mark.parametrize("text", ["1", "48-24", "x"])
def test_bad_frame_ranges_are_refused_with_the_value(text: str) -> None:
    with pytest.raises(Exception, match=repr(text)):
        quality.parse_frames(text)


def test_a_benchmark_shot_has_exact_truth_and_both_line_art_conditions_and_is_seeded() -> None:
    def seeded_shot(seed: int):
        rng = np.random.default_rng(seed)
        [(path, parts)] = quality.pick_drawings(1, rng)
        assert parts
        return quality.build_shot(path, parts, frames=3, size=64, rng=rng)

    shot = seeded_shot(0)
    assert shot.color.shape == (3, 64, 64, 3) and len(shot.regions) == 2 and 1 <= shot.moving_parts <= 2
    assert set(shot.lines) == {"clean", "xdog"}
    assert all(lines.shape == (3, 64, 64) and lines.dtype == np.uint8 for lines in shot.lines.values())
    assert (shot.lines["clean"] < 64).mean() > 0.01 and (shot.lines["xdog"] == 0).mean() > 0.01
    score = quality.score_shot(shot.color, shot.color, shot.regions)
    assert score.region_accuracy == 1.0 and score.temporal_error == 0.0
    again = seeded_shot(0)
    assert again.name == shot.name
    np.testing.assert_array_equal(again.color, shot.color)
    np.testing.assert_array_equal(again.lines["xdog"], shot.lines["xdog"])
