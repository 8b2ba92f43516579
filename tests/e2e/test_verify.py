"""`inkpaint verify`: every planned frame present, decodable and the very file written, checked from the tables."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from cli import main
from jobs.manifest import FRAME_TABLE_NAME, read_records
from pipeline.shot import FrameRecord

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "wave"


def colorize(output: Path, *extra: str):
    args = ["shot", str(SAMPLE / "frames"), "-r", str(SAMPLE / "key.png"), "-o", str(output), *extra]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def verify(output: Path):
    return CliRunner().invoke(main, ["verify", str(output)], catch_exceptions=False)


@pytest.fixture(scope="module")
def colored(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("verify") / "out"
    result = colorize(output, "--resolution", "128")
    assert result.exit_code == 0, result.output
    return output


@pytest.fixture
def copy(colored, tmp_path) -> Path:
    target = tmp_path / "out"
    shutil.copytree(colored, target)
    rows = read_records(str(target / FRAME_TABLE_NAME), FrameRecord)
    assert all(len(row.sha256) == 64 and row.bytes > 0 for row in rows)
    return target


@pytest.mark.slow
def test_a_fresh_shot_verifies(colored) -> None:
    result = verify(colored)
    assert result.exit_code == 0, result.output
    assert "OK: 12 of 12 frames in 1 shots are present and intact" in result.output


@pytest.mark.slow
def test_a_changed_frame_fails_on_its_checksum(colored) -> None:
    table = read_records(str(colored / FRAME_TABLE_NAME), FrameRecord)
    frame3 = next(str(colored / row.output) for row in table if row.output == "frame3.png")  # relative
    original = Path(frame3).read_bytes()
    try:
        Image.open(SAMPLE / "key.png").save(frame3)  # a valid PNG, but not the one written
        result = verify(colored)
        assert result.exit_code == 1
        assert f"{frame3}: checksum differs from the one recorded when it was written" in result.output
        assert "1 PROBLEMS: 11 of 12 frames" in result.output
        Path(frame3).unlink()
        result = verify(colored)
        assert result.exit_code == 1 and f"{frame3}: missing" in result.output
    finally:
        Path(frame3).write_bytes(original)
    assert verify(colored).exit_code == 0


@pytest.mark.slow
def test_resumed_frames_are_recorded_with_their_checksums(copy) -> None:
    (copy / "frame5.png").unlink()
    result = colorize(copy, "--resolution", "128")
    assert result.exit_code == 0, result.output
    rows = read_records(str(copy / FRAME_TABLE_NAME), FrameRecord)
    assert sorted(row.status for row in rows) == ["resumed"] * 11 + ["written"]
    assert all(len(row.sha256) == 64 for row in rows)
    assert verify(copy).exit_code == 0


def test_a_folder_without_tables_is_a_usage_error(tmp_path) -> None:
    result = verify(tmp_path)
    assert result.exit_code == 2
    assert "holds neither an episode plan (inkpaint-plan.parquet) nor a shot's frames table" in result.output
