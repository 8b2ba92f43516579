"""Progress of a run: a bar on a terminal, plain timestamped lines otherwise (logs of unattended runs)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm


def stamp() -> str:
    """The wall-clock time, as the log lines show it."""
    return time.strftime("%H:%M:%S")


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
        # The rate's clock starts at the first report of a shot (its start, or its first frames), not here: Ray's
        # start-up and the workers' model loading would otherwise count as coloring time in the first ETAs.
        self.started: float | None = None
        self.done_at_start = 0
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
        now = time.monotonic()
        if self.started is None:
            self.started, self.done_at_start = now, self.done
            self.bar.reset(total=self.total)  # the bar's own rate and ETA start now too
        self.bar.n = self.done
        self.bar.refresh()
        if self.bar.disable and self.done > 0 and (now - self.last_line >= self.interval or self.done == self.total):
            self.last_line = now
            elapsed = now - self.started
            rate = (self.done - self.done_at_start) / elapsed if elapsed > 0 else 0.0
            eta = f"{(self.total - self.done) / rate:.0f} s" if rate > 0 else "unknown"
            shots = f"{len(self.shots_done)}/{self.total_shots} shots, " if self.total_shots else ""
            print(f"{stamp()} progress: {shots}{self.done}/{self.total} frames, {rate:.2f} frames/s, ETA {eta}",
                  file=self.stream, flush=True)  # fmt: skip

    def shot_done(self, shot: str) -> None:
        """A shot ended (colored or failed)."""
        self.shots_done.add(shot)
        if self.total_shots:
            self.bar.set_postfix_str(f"shots {len(self.shots_done)}/{self.total_shots}")

    def close(self) -> None:
        """Close the bar, or print the last plain line (the final shot may end after the last frame's line)."""
        if self.bar.disable and self.total_shots:
            done = f"{len(self.shots_done)}/{self.total_shots} shots, {self.done}/{self.total} frames done"
            print(f"{stamp()} progress: {done}", file=self.stream, flush=True)
        self.bar.close()
