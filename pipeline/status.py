"""What became of a frame and of a shot: the statuses that results tables store and the report shows.

They are `str` enums, so a Parquet table stores (and tables written before they existed hold) the plain strings
"written", "ok" and so on, and a status compares equal to its string.
"""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    """A status that reads as its value everywhere: in f-strings and str() on every Python version (3.11 changed
    how a `str` mixin enum formats), in Parquet and in messages."""

    def __str__(self) -> str:
        return self.value


class FrameStatus(Status):
    """A frame's outcome: colored and written by this run, resumed (its output from an earlier run still the file
    written then) or failed (see its reason)."""

    WRITTEN = "written"
    RESUMED = "resumed"
    FAILED = "failed"


class ShotStatus(Status):
    """A shot's outcome: ok (every frame is there), partial (some frames failed) or failed (the shot could not run);
    missing (planned, no result) only in an episode's report, for a shot of the plan that no run finished: a run
    never returns it and no results table stores it."""

    OK = "ok"
    PARTIAL = "partial"
    FAILED = "failed"
    MISSING = "missing"
