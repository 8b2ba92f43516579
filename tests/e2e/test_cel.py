"""colorize-shot writing cels (TIFF, transparent paper, layers), then `inkpaint verify` and a resumed rerun."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

from cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "wave"


def colorize(output: Path):
    args = ["shot", str(SAMPLE / "frames"), "-r", str(SAMPLE / "key.png"), "-o", str(output), "--resolution", "128",
            "--format", "tiff", "--paper", "transparent", "--layers"]  # fmt: skip
    return CliRunner().invoke(main, args, catch_exceptions=False)


@pytest.mark.slow
def test_tiff_cels_with_layers_verify_and_resume(tmp_path) -> None:
    output = tmp_path / "out"
    result = colorize(output)
    assert result.exit_code == 0, result.output
    names = sorted(p.with_suffix(".tif").name for p in (SAMPLE / "frames").glob("*.png"))
    assert sorted(p.name for p in output.glob("*.tif")) == names
    for folder in ("lines", "paint"):
        assert sorted(p.name for p in (output / folder).iterdir()) == names
    frame = cv2.imread(str(output / names[0]), cv2.IMREAD_UNCHANGED)
    assert frame.shape[2] == 4 and frame[0, 0, 3] == 0
    verified = CliRunner().invoke(main, ["verify", str(output)], catch_exceptions=False)
    assert verified.exit_code == 0, verified.output
    assert "OK: 12 of 12 frames" in verified.output
    rerun = colorize(output)
    assert rerun.exit_code == 0, rerun.output
    assert "0 frames colored, 12 already done" in rerun.output
