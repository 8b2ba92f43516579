"""The finishing threads: frames composited beside the caller, in order, errors raised in the caller; how many
threads a full-resolution stage gets."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pipeline.finishing import FrameFinisher, PendingFrame, frame_threads
from pipeline.lineart import LineArt


class _Emitter:
    """Records emitted frames; raises on one of them."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.emitted: list[int] = []
        self.threads: set[str] = set()
        self.fail_at = fail_at

    def emit(self, pending: PendingFrame) -> None:
        self.threads.add(threading.current_thread().name)
        if pending.index == self.fail_at:
            raise OSError(f"disk full at frame {pending.index}")
        self.emitted.append(pending.index)
        assert pending.finished is None or pending.finished.shape == (6, 8, 3)


def _pending(index: int) -> PendingFrame:
    lines = np.full((6, 8), 255, np.uint8)
    lines[:, 3] = 0  # a vertical line
    colors = np.full((3, 4, 3), 200, np.uint8)
    return PendingFrame(index, f"f{index}.png", f"f{index}", art=LineArt.plain(lines), model_colors=colors)


def test_finisher_composites_beside_the_caller_and_keeps_the_order():
    emitter = _Emitter()
    finisher = FrameFinisher(emitter, depth=2)
    frames = [_pending(i) for i in range(10)]
    for pending in frames:
        finisher.put(pending)
    finisher.close()
    assert emitter.emitted == list(range(10))
    assert emitter.threads == {"frame-finisher"}
    assert frames[0].finished[:, 3].max() == 0 and frames[0].finished[:, 0].min() == 200  # the line over the colors


def test_finisher_error_reaches_the_caller_without_hanging():
    threads_before = set(threading.enumerate())
    finisher = FrameFinisher(_Emitter(fail_at=2), depth=1)
    with pytest.raises(OSError, match="disk full at frame 2"):
        for index in range(50):  # far more than the queue holds: a dead finisher must not block put()
            finisher.put(_pending(index))
        finisher.close()
    finisher.abort()  # as the engine does on an error: its threads stop
    assert set(threading.enumerate()) <= threads_before


@pytest.mark.parametrize(("cores", "threads"), [(1, 2), (2, 2), (6, 3), (16, 8), (64, 8)])
def test_each_full_resolution_stage_gets_half_the_cores_from_2_to_8_threads(cores: int, threads: int) -> None:
    assert frame_threads(cores) == threads
    assert 2 <= frame_threads() <= 8
