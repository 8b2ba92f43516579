"""Storage that fails for a moment, or for good: writes and reads are retried with backoff, then a failure is
reported per frame, and the other frames are written once each."""

from __future__ import annotations

import errno
import io
import threading
from pathlib import Path
from typing import ClassVar

import fsspec
import numpy as np
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from PIL import Image

from jobs.manifest import frame_table, records_from_table
from model import files
from pipeline import frames as frames_module
from pipeline.colorize import ShotColorizer
from pipeline.shot import FrameRecord, Shot, ShotOptions
from pipeline.status import FrameStatus

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "wave"


class FlakyFileSystem(MemoryFileSystem):
    """An in-memory store whose writes fail: the first `transient` of them with a dropped connection, and every
    write of a file whose name contains `broken` with `broken_error`."""

    protocol = "flaky"
    transient = 0
    broken = ""
    broken_error: OSError = ConnectionError("connection reset by peer")
    lock = threading.Lock()
    attempts: ClassVar[list[str]] = []

    def pipe_file(self, path, value, **kwargs):
        with self.lock:
            type(self).attempts.append(path)
            if type(self).transient > 0:
                type(self).transient -= 1
                raise ConnectionError(f"connection reset while writing {path}")
        if self.broken and self.broken in path:
            raise self.broken_error
        return super().pipe_file(path, value, **kwargs)


@pytest.fixture
def flaky(monkeypatch):
    fsspec.register_implementation("flaky", FlakyFileSystem, clobber=True)
    monkeypatch.setattr(files, "RETRY_DELAYS", (0.0, 0.0, 0.0, 0.0, 0.0))
    FlakyFileSystem.store.clear()
    FlakyFileSystem.pseudo_dirs.clear()
    FlakyFileSystem.transient, FlakyFileSystem.broken, FlakyFileSystem.attempts = 0, "", []
    yield FlakyFileSystem
    FlakyFileSystem.store.clear()


@pytest.fixture(scope="module")
def colorizer() -> ShotColorizer:
    return ShotColorizer.from_weights()


def run(colorizer: ShotColorizer, output: str):
    shot = Shot("s", str(SAMPLE / "frames"), str(SAMPLE / "key.png"), output)
    return colorizer.run(shot, ShotOptions(resolution=128, batch_size=4, resume=False))


def stored_pngs(fs: MemoryFileSystem) -> list[str]:
    return sorted(path.rsplit("/", 1)[-1] for path in fs.store if path.endswith(".png"))


def test_writes_that_fail_for_a_moment_are_retried_and_every_frame_lands_once(colorizer, flaky):
    flaky.transient = 5  # the first five writes lose their connection
    result = run(colorizer, "flaky://out")
    assert result.status == "ok" and result.written == 12, result.summary()
    assert len(flaky.attempts) == 12 + 5
    names = stored_pngs(flaky())
    assert names == sorted(f"frame{i}.png" for i in range(1, 13))  # each once, no temporary leftovers
    [frame7] = [path for path in flaky.store if path.endswith("/frame7.png")]
    assert np.asarray(Image.open(io.BytesIO(flaky().cat_file(frame7)))).shape == (300, 400, 3)


@pytest.mark.parametrize(
    ("error", "tries", "needle"),
    [
        pytest.param(ConnectionError("connection reset by peer"), 6, "connection reset by peer", id="never recovers"),
        pytest.param(OSError(errno.ENOSPC, "No space left on device"), 1, "No space left on device", id="disk full"),
    ],
)
def test_a_write_that_keeps_failing_fails_its_frame_alone_and_says_why(colorizer, flaky, error, tries, needle):
    flaky.broken, flaky.broken_error = "frame5.png", error
    result = run(colorizer, "flaky://out")
    assert result.status == "partial" and result.written == 11
    [failure] = result.failures
    assert failure.frame.endswith("frame5.png") and needle in failure.reason and "frame5.png" in failure.reason
    assert sum("frame5.png" in path for path in flaky.attempts) == tries  # retried only when it may pass
    assert "frame5.png" not in stored_pngs(flaky())
    rows = {row.frame.rsplit("/", 1)[-1]: row for row in records_from_table(frame_table([result]), FrameRecord)}
    assert rows["frame5.png"].status is FrameStatus.FAILED and rows["frame5.png"].output == ""
    assert all(rows[f"frame{i}.png"].status is FrameStatus.WRITTEN for i in range(1, 13) if i != 5)


def test_reads_that_fail_for_a_moment_are_retried(monkeypatch, tmp_path):
    monkeypatch.setattr(files, "RETRY_DELAYS", (0.0, 0.0))
    fs = fsspec.filesystem("file")
    original = type(fs).cat_file
    failures = {"left": 2}

    def cat_file(self, path, *args, **kwargs):
        if failures["left"]:
            failures["left"] -= 1
            raise TimeoutError("read timed out")
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(type(fs), "cat_file", cat_file)
    image = frames_module.read_frame(str(SAMPLE / "key.png"))
    assert image.shape == (300, 400, 3) and failures["left"] == 0
    failures["left"] = 3  # one more than the retries
    with pytest.raises(files.FrameError, match=r"key\.png' could not be read: read timed out"):
        frames_module.read_frame(str(SAMPLE / "key.png"))
