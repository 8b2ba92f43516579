"""`inkpaint eval --shots`: finished colored shots (a frame folder, a video, a case folder) colored again and scored.

The shots are animated OpenMoji drawings (CC BY-SA 4.0) rendered by model/synthetic_shots.py; the model runs at 64 px.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cli import main
from jobs.shot_eval import (
    PSNR_CAP,
    VARIANT_NAMES,
    evaluate_case,
    evaluate_shots,
    psnr,
    score_shot,
    select_variants,
    ssim,
)
from jobs.shot_eval_cases import CaseData, find_shots
from model.checkpoint import DEFAULT_WEIGHTS
from model.data import openmoji_svg_dir
from model.synthetic_shots import Motion, render_openmoji_shot
from pipeline.colorize import ShotColorizer
from pipeline.quality import temporal_error
from pipeline.shot import ShotOptions
from pipeline.video import VideoWriter

SIZE = (128, 96)
FOX, CAR = "1F98A", "1F697"
BASELINES = ("keyframe-under-lines", "lines-on-white")


def render(drawing: str, frames: int) -> np.ndarray:
    """(T, H, W, 3) uint8 colored frames of a drawing sliding a little to the right."""
    motion = Motion(translate_start=(-0.05, 0.0), translate_end=(0.05, 0.0))
    return render_openmoji_shot(openmoji_svg_dir() / f"{drawing}.svg", frames, *SIZE, motion).color


def write_frames(frames: np.ndarray, folder: Path, start: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames, start=start):
        Image.fromarray(frame).save(folder / f"frame{index}.png")
    return folder


def write_video(frames: np.ndarray, path: Path) -> Path:
    with VideoWriter(str(path), fps=24) as video:
        for frame in frames:
            video.write(frame)
    return path


def invoke(*args: str):
    return CliRunner().invoke(main, ["eval", *args], catch_exceptions=False)


def table_rows(text: str, first_column: str) -> dict[str, list[str]]:
    """The rows of the Markdown table whose header starts with `first_column`, keyed by their first cell."""
    rows: dict[str, list[str]] = {}
    inside = False
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells is None:
            inside = False
        elif cells[0] == first_column:
            inside = True
        elif inside and not set(cells[0]) <= {"-", ":"}:
            rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture(scope="module")
def colorizer() -> ShotColorizer:
    return ShotColorizer.from_weights(str(DEFAULT_WEIGHTS), "cpu")


@pytest.fixture(scope="module")
def shots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 6-frame clip twice: as a folder of PNG frames and as an H.264 video."""
    root = tmp_path_factory.mktemp("shots")
    clip = render(FOX, 6)
    write_frames(clip, root / "fox_frames")
    write_video(clip, root / "fox.mp4")
    (root / "ATTRIBUTION.txt").write_text("Drawings: OpenMoji (openmoji.org), CC BY-SA 4.0.\n")
    return root


@pytest.fixture(scope="module")
def cli_run(shots_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    before = sorted(path.relative_to(shots_dir) for path in shots_dir.rglob("*"))
    html = tmp_path_factory.mktemp("html") / "page"
    result = invoke("--shots", str(shots_dir), "--variants", "model,carry", "--resolution", "64", "--device", "cpu",
                    "--html", str(html))  # fmt: skip
    after = sorted(path.relative_to(shots_dir) for path in shots_dir.rglob("*"))
    return result, html, before, after


def test_every_requested_variant_and_both_baselines_score_every_shot(cli_run) -> None:
    result, _, _, _ = cli_run
    assert result.exit_code == 0, result.output
    summary = table_rows(result.stdout, "variant")
    assert list(summary) == [*BASELINES, "model", "carry"]
    for name, cells in summary.items():
        shots, mean_psnr, ssim_value, temporal = int(cells[0]), float(cells[1]), float(cells[3]), float(cells[4])
        assert shots == 2, name
        assert 5 < mean_psnr < 100, name
        assert 0 < ssim_value <= 1, name
        assert 0 <= temporal < 255, name
    assert summary["keyframe-under-lines"][2] == "n/a"  # the baseline the others are compared with
    per_shot = table_rows(result.stdout, "shot")
    assert {"fox_frames", "fox.mp4"} <= set(per_shot)
    for cells in table_rows(result.stdout.split("PSNR (dB) per shot:")[1].split("SSIM and")[0], "shot").values():
        assert len(cells) == 4
        assert all(5 < float(cell) < 100 for cell in cells)


def test_the_title_names_the_weights_resolution_shots_and_frames(cli_run) -> None:
    result, _, _, _ = cli_run
    title = result.stdout.splitlines()[0]
    assert "inkpaint-lite.safetensors" in title
    assert "resolution 64" in title
    assert "2 shots, 10 frames" in title  # 5 targets each: frame 0 is the keyframe


def test_nothing_is_written_into_the_shots_folder(cli_run) -> None:
    _, _, before, after = cli_run
    assert after == before


def test_the_html_page_shows_strips_that_exist(cli_run) -> None:
    result, html, _, _ = cli_run
    page = (html / "index.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 2 * 3  # first, middle and last target of each shot
    for source in sources:
        assert not Path(source).is_absolute()
        strip = np.asarray(Image.open(html / source))
        assert strip.shape[0] == SIZE[1] and strip.shape[1] > 4 * SIZE[0]
    assert "fox_frames" in page and "fox.mp4" in page


def test_identical_frames_score_the_cap_full_ssim_and_no_temporal_error() -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(4)]
    assert psnr(frames[1], frames[1]) == PSNR_CAP
    assert ssim(frames[1], frames[1]) == pytest.approx(1.0)
    assert temporal_error(frames, frames) == 0.0
    score = score_shot(frames[1:], frames[1:], frames[0])
    assert score.psnr == PSNR_CAP and score.ssim == pytest.approx(1.0) and score.temporal_error == 0.0


def test_a_steady_offset_costs_psnr_but_no_temporal_error_and_flicker_costs_both() -> None:
    rng = np.random.default_rng(1)
    truth = [rng.integers(20, 200, (24, 32, 3), dtype=np.uint8) for _ in range(5)]
    steady = [frame + 10 for frame in truth]
    assert temporal_error(steady, truth) == 0.0
    assert psnr(steady[2], truth[2]) == pytest.approx(20 * math.log10(255 / 10))
    flicker = [frame + (10 if index % 2 else 0) for index, frame in enumerate(truth)]
    assert temporal_error(flicker, truth) == pytest.approx(10.0)  # every pair jumps by 10 levels the truth lacks
    # Scored as a shot, the keyframe is frame 0 of both: a steady offset now shows once, in the first pair.
    assert score_shot(steady[1:], truth[1:], truth[0]).temporal_error == pytest.approx(10 / 4)


def test_a_frame_folder_is_scored_up_to_its_first_cut(tmp_path: Path, colorizer: ShotColorizer) -> None:
    write_frames(render(FOX, 4), tmp_path / "shots" / "two_shots")  # frames 0-3: the fox
    write_frames(render(CAR, 4), tmp_path / "shots" / "two_shots", start=5)  # frames 4-7: a car
    result = evaluate_shots(find_shots(tmp_path / "shots"), colorizer, ShotOptions(resolution=64),
                            select_variants("model"))  # fmt: skip
    (case,) = result.cases
    assert case.error is None and case.ok
    assert case.frames == 3  # frames 1-3 after the keyframe; the car is another shot
    assert case.scores["model"].frames == 3


def test_max_frames_caps_a_shot_without_a_cut(tmp_path: Path, colorizer: ShotColorizer) -> None:
    write_frames(render(FOX, 6), tmp_path / "shots" / "fox")
    result = evaluate_shots(find_shots(tmp_path / "shots"), colorizer, ShotOptions(resolution=64),
                            select_variants("model"), max_frames=3)  # fmt: skip
    assert result.cases[0].frames == 2


def test_bad_shots_are_named_with_why_and_the_others_scored(tmp_path: Path) -> None:
    clip = render(FOX, 3)
    write_frames(clip, tmp_path / "good")
    no_truth = tmp_path / "no_truth"
    write_frames(clip[1:], no_truth / "lines")
    Image.fromarray(clip[0]).save(no_truth / "reference.png")
    (tmp_path / "garbage.mp4").write_bytes(b"this is not a video" * 10)
    result = invoke("--shots", str(tmp_path), "--variants", "model", "--resolution", "64", "--device", "cpu")
    assert result.exit_code == 1, result.output
    assert "good" in table_rows(result.stdout, "shot")
    assert re.search(r"- no_truth: .*has no truth/ folder", result.stdout)
    assert re.search(r"- garbage\.mp4: .*garbage\.mp4", result.stdout)
    assert "failed shots: garbage.mp4, no_truth" in result.stderr


class BrokenColorizer:
    """A colorizer whose pipeline raises, like a stage in the middle of a change."""

    info = None
    device = "cpu"

    def run(self, shot, options):
        raise RuntimeError("carry is not implemented yet")


def test_a_variant_that_raises_fails_alone() -> None:
    truth = render(FOX, 3)
    lines = [np.full(SIZE[::-1], 255, np.uint8)] * 2
    case = CaseData("fox", "case", Path("/nonexistent"), truth[0], ["1.png", "2.png"], lines, list(truth[1:]))
    result = evaluate_case(case, BrokenColorizer(), ShotOptions(), select_variants("carry"), "carry")
    assert set(result.scores) == set(BASELINES)
    assert result.failures == {"carry": "RuntimeError: carry is not implemented yet"}
    assert not result.ok and result.strips == []


def test_unknown_variants_empty_folders_and_openmoji_options_are_usage_errors(tmp_path: Path, shots_dir: Path) -> None:
    result = invoke("--shots", str(shots_dir), "--variants", "model,sparkle")
    assert result.exit_code == 2
    assert "'sparkle'" in result.output and all(name in result.output for name in VARIANT_NAMES)
    result = invoke("--shots", str(tmp_path))
    assert result.exit_code == 2 and "holds no shot" in result.output
    result = invoke("--shots", str(shots_dir), "--limit", "3")
    assert result.exit_code == 2 and "--limit" in result.output
    result = invoke("--variants", "model")
    assert result.exit_code == 2 and "--shots only" in result.output
