"""Writing finished frames (pipeline/outputs.py): atomic PNG writes, refusals of arrays that are no frame, and the
threaded writer that records a failed write and goes on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.frames import read_frame
from pipeline.outputs import FrameWriter, write_frame


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_write_png_round_trip(tmp_path: Path) -> None:
    rgb, gray = noise(9, 11), noise(9, 11)[..., 0]
    write_frame(rgb, str(tmp_path / "out" / "deep" / "rgb.png"))  # parent folders are created
    write_frame(gray, str(tmp_path / "gray.png"))
    assert np.array_equal(read_frame(str(tmp_path / "out" / "deep" / "rgb.png")), rgb)
    assert np.array_equal(read_frame(str(tmp_path / "gray.png"))[..., 0], gray)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gray.png", "out"]  # no temporary files left


@pytest.mark.parametrize(
    "array", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 2), np.uint8), np.zeros(4, np.uint8)]
)
def test_write_png_refuses_bad_arrays(tmp_path: Path, array: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"bad\.png.*uint8"):
        write_frame(array, str(tmp_path / "bad.png"))
    assert list(tmp_path.iterdir()) == []


# --- writer -----------------------------------------------------------------------------------------------------------


def test_frame_writer_records_errors_and_goes_on(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_bytes(b"a file where a folder should be")
    targets = [str(tmp_path / "out" / f"f{i}.png") for i in range(6)]
    targets[2] = str(tmp_path / "blocker" / "f2.png")
    with FrameWriter(workers=2, max_pending=2) as writer:
        for i, url in enumerate(targets):
            array = np.zeros((4, 4), np.float64) if i == 4 else np.full((4, 5, 3), i, np.uint8)
            writer.submit(array, url)
    results = writer.results
    assert [url for url, _ in results] == targets
    assert [i for i, (_, err) in enumerate(results) if err is not None] == [2, 4]
    assert isinstance(results[4][1], ValueError)
    for i in (0, 1, 3, 5):
        assert (read_frame(targets[i]) == i).all()
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(np.zeros((2, 2), np.uint8), targets[0])
