"""benchmarks/shot_quality.py: its scores on tiny synthetic shots whose answers are known, and its baseline."""

from __future__ import annotations

import numpy as np
import pytest

# The benchmark is a script in benchmarks/, imported from the repository root as the tests are (pytest puts the root
# on sys.path because tests/ is a package).
from benchmarks import shot_quality
from tests.pipeline.quality_shots import four_panel_shot


@pytest.fixture
def truth() -> tuple[np.ndarray, np.ndarray, list]:
    return four_panel_shot()


def test_a_perfect_output_scores_full_accuracy_and_no_temporal_error(truth) -> None:
    lines, colors, regions = truth
    score = shot_quality.score_shot(colors.copy(), colors, regions)
    assert score.region_accuracy == 1.0 and score.regions == 16
    assert score.temporal_error == 0.0
    assert score.psnr == pytest.approx(100.0)  # model.metrics.psnr caps a zero error at 100 dB
    assert score.ssim == pytest.approx(1.0)


def test_scores_leave_the_keyframe_s_frame_out_but_not_its_change(truth) -> None:
    lines, colors, regions = truth
    output = colors.copy()
    output[0] = 255 - output[0]
    score = shot_quality.score_shot(output, colors, regions)
    assert score.region_accuracy == 1.0 and score.psnr == pytest.approx(100.0)
    assert score.temporal_error > 0


def test_a_stage_that_hurts_either_score_is_called_out() -> None:
    before = {"region_accuracy": 0.50, "temporal_error": 3.0}
    assert "improves region acc and temporal err, hurts nothing" in shot_quality.stage_verdict(
        before, {"region_accuracy": 0.60, "temporal_error": 2.0}
    )
    assert "HURTS temporal err" in shot_quality.stage_verdict(before, {"region_accuracy": 0.60, "temporal_error": 3.5})
    assert "HURTS region acc" in shot_quality.stage_verdict(before, {"region_accuracy": 0.40, "temporal_error": 2.0})
    assert shot_quality.stage_verdict(before, dict(before)).endswith("no change")


def test_a_variant_this_checkout_cannot_make_stops_the_run_naming_it(monkeypatch) -> None:
    monkeypatch.setitem(shot_quality.VARIANTS, "flat+magic", {"fill": "flat", "magic": True})
    options = shot_quality.variant_options(["baseline", "soft"], 256, 4)
    assert options["baseline"] is None and options["soft"].fill == "soft" and not options["soft"].resume
    with pytest.raises(SystemExit, match=r"variant 'flat\+magic' needs .*magic"):
        shot_quality.variant_options(["soft", "flat+magic"], 256, 4)


@pytest.mark.parametrize(("text", "expected"), [("24", (24, 24)), ("24-48", (24, 48))])
def test_frames_take_a_count_or_a_range(text: str, expected: tuple[int, int]) -> None:
    assert shot_quality.parse_frames(text) == expected


@pytest.mark.parametrize("text", ["1", "48-24", "x"])
def test_bad_frame_ranges_are_refused_with_the_value(text: str) -> None:
    with pytest.raises(Exception, match=repr(text)):
        shot_quality.parse_frames(text)


def test_a_benchmark_shot_has_exact_truth_and_both_line_art_conditions_and_is_seeded() -> None:
    def seeded_shot(seed: int):
        rng = np.random.default_rng(seed)
        [(path, parts)] = shot_quality.pick_drawings(1, rng)
        assert parts
        return shot_quality.build_shot(path, parts, frames=3, size=64, rng=rng)

    shot = seeded_shot(0)
    assert shot.color.shape == (3, 64, 64, 3) and len(shot.regions) == 2 and 1 <= shot.moving_parts <= 2
    assert set(shot.lines) == {"clean", "xdog"}
    assert all(lines.shape == (3, 64, 64) and lines.dtype == np.uint8 for lines in shot.lines.values())
    assert (shot.lines["clean"] < 64).mean() > 0.01 and (shot.lines["xdog"] == 0).mean() > 0.01
    score = shot_quality.score_shot(shot.color, shot.color, shot.regions)
    assert score.region_accuracy == 1.0 and score.temporal_error == 0.0
    again = seeded_shot(0)
    assert again.name == shot.name
    np.testing.assert_array_equal(again.color, shot.color)
    np.testing.assert_array_equal(again.lines["xdog"], shot.lines["xdog"])
