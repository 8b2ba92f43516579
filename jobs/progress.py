"""Progress of a run: a bar on a terminal, plain timestamped lines otherwise (logs of unattended runs)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm


class ProgressReporter:
    """Counts frames (and shots) done and shows them with the rate and the time left.

    Args:
        total_frames: frames the run will color.
        stream: where to write; a terminal gets a bar, anything else a line every `interval` seconds.
        interval: seconds between plain lines.
        shots: shots the run will color (0: a single-shot run, not counted).
    """

    def __init__(self, total_frames: int, stream: TextIO | None = None, interval: float = 5.0, shots: int = 0) -> None:
        self.stream = stream or sys.stderr
        self.total = total_frames
        self.total_shots = shots
        self.shots_done: set[str] = set()
        self.interval = interval
        self.done_by_shot: dict[str, int] = {}
        self.started = time.monotonic()
        self.last_line = 0.0
        interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar = tqdm(total=total_frames, unit="frame", file=self.stream, disable=not interactive)
        if shots:
            self.bar.set_postfix_str(f"shots 0/{shots}")

    @property
    def done(self) -> int:
        return sum(self.done_by_shot.values())

    def update(self, shot: str, frames_done: int) -> None:
        """A shot reports how many of its frames are done (a retried shot starts again from zero)."""
        self.done_by_shot[shot] = frames_done
        self.bar.n = self.done
        self.bar.refresh()
        now = time.monotonic()
        if self.bar.disable and (now - self.last_line >= self.interval or self.done == self.total):
            self.last_line = now
            elapsed = now - self.started
            rate = self.done / elapsed if elapsed > 0 else 0.0
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            shots = f"{len(self.shots_done)}/{self.total_shots} shots, " if self.total_shots else ""
            print(f"progress: {shots}{self.done}/{self.total} frames, {rate:.2f} frames/s, ETA {eta:.0f} s",
                  file=self.stream, flush=True)  # fmt: skip

    def shot_done(self, shot: str) -> None:
        """A shot ended (colored or failed)."""
        self.shots_done.add(shot)
        if self.total_shots:
            self.bar.set_postfix_str(f"shots {len(self.shots_done)}/{self.total_shots}")

    def close(self) -> None:
        """Close the bar, or print the last plain line (the final shot may end after the last frame's line)."""
        if self.bar.disable and self.total_shots:
            print(f"progress: {len(self.shots_done)}/{self.total_shots} shots, {self.done}/{self.total} frames done",
                  file=self.stream, flush=True)  # fmt: skip
        self.bar.close()
