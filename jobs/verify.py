"""`inkpaint verify OUT`: is every frame a run planned there on disk, whole, and the file that was written?

A shot's output folder holds its frames table (`inkpaint-frames.parquet`, written by colorize-shot and by every
episode run): one row per input frame with the output's size and SHA-256. An episode's output also holds its plan
(`inkpaint-plan.parquet`), which says which shots and how many frames there should be. Verifying reads every
output file back, compares its size and checksum with the table and decodes it; it never writes anything.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import fsspec
from PIL import Image, UnidentifiedImageError

from jobs.manifest import FRAME_TABLE_NAME, PLAN_TABLE_NAME, read_rows, url_exists
from pipeline.colorize import join_url
from pipeline.frames import file_checksum


@dataclass
class Verification:
    """What `verify_output` found.

    Args:
        shots: shots checked.
        frames: frames checked (planned frames, whether or not they were written).
        good: frames present, whole and decodable.
        problems: one line per frame or shot that is not, naming it and what is wrong.
    """

    shots: int = 0
    frames: int = 0
    good: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.frames > 0

    def summary(self) -> str:
        verdict = "OK" if self.ok else f"{len(self.problems)} PROBLEMS"
        lines = [f"{verdict}: {self.good} of {self.frames} frames in {self.shots} shots are present and intact"]
        return "\n".join(lines + [f"  {problem}" for problem in self.problems])


def check_frame(row: dict, storage_options: dict) -> str | None:
    """What is wrong with one row's output file, or None when it is there, unchanged and decodes."""
    if row["status"] == "failed" or not row["output"]:
        return f"{row['frame']}: not colored ({row['reason'] or 'no reason recorded'})"
    url = row["output"]
    try:
        size, sha256 = file_checksum(url, storage_options)
    except FileNotFoundError:
        return f"{url}: missing"
    except OSError as error:
        return f"{url}: cannot be read: {error}"
    if row.get("sha256") and sha256 != row["sha256"]:
        return f"{url}: checksum differs from the one recorded when it was written ({size} bytes now, {row['bytes']})"
    with fsspec.open(url, "rb", **storage_options) as handle:
        data = handle.read()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except (OSError, UnidentifiedImageError, SyntaxError) as error:
        return f"{url}: does not decode: {error}"
    return None


def verify_shot(output: str, storage_options: dict, expected_frames: int | None, report: Verification) -> None:
    """Check one shot's output folder against its frames table, adding to `report`."""
    report.shots += 1
    table_url = join_url(output, FRAME_TABLE_NAME)
    if not url_exists(table_url, storage_options):
        report.problems.append(f"{output}: no frames table ({FRAME_TABLE_NAME}): the shot never finished a run")
        report.frames += expected_frames or 0
        return
    rows = read_rows(table_url, storage_options)
    if expected_frames is not None and len(rows) != expected_frames:
        report.problems.append(f"{output}: the frames table lists {len(rows)} frames, the plan {expected_frames}")
    report.frames += max(len(rows), expected_frames or 0)
    for row in rows:
        problem = check_frame(row, storage_options)
        if problem is None:
            report.good += 1
        else:
            report.problems.append(problem)


def verify_output(output: str, storage_options: dict | None = None) -> Verification:
    """Verify an episode's output (it has a plan) or one shot's output folder (it has a frames table).

    Raises ValueError when `output` holds neither.
    """
    storage_options = storage_options or {}
    report = Verification()
    plan_url = join_url(output, PLAN_TABLE_NAME)
    if url_exists(plan_url, storage_options):
        for shot in read_rows(plan_url, storage_options):
            verify_shot(shot["output"], storage_options, shot["frames"], report)
        return report
    if url_exists(join_url(output, FRAME_TABLE_NAME), storage_options):
        verify_shot(output, storage_options, None, report)
        return report
    msg = f"{output!r} holds neither an episode plan ({PLAN_TABLE_NAME}) nor a shot's frames table ({FRAME_TABLE_NAME})"
    raise ValueError(msg)
