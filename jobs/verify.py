"""`inkpaint verify OUT`: is every frame a run planned there on disk, whole, and the file that was written?

A shot's output folder holds its frames table (`inkpaint-frames.parquet`, written by colorize-shot and by every
episode run): one row per input frame with the output's name, size and SHA-256. An episode's output also holds its
plan (`inkpaint-plan.parquet`), which says which shots and how many frames there should be. Verifying reads every
output file back from the folder it is given (a copy is checked as itself, not the place it was rendered to),
compares its checksum with the table and decodes it; it never writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jobs.manifest import FRAME_TABLE_NAME, PLAN_TABLE_NAME, PlannedShot, read_frames, read_records, url_exists
from pipeline.frame_names import join_url
from pipeline.outputs import WrittenFile, written_file_problem
from pipeline.shot import FrameRecord
from pipeline.status import FrameStatus


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


def check_frame(record: FrameRecord, storage_options: dict) -> str | None:
    """What is wrong with one frame's output file, or None when it is there, unchanged and decodes."""
    if record.status is FrameStatus.FAILED or not record.output:
        return f"{record.frame}: not colored ({record.reason or 'no reason recorded'})"
    url = record.output
    problem = written_file_problem(url, WrittenFile(record.bytes, record.sha256), storage_options)
    return None if problem is None else f"{url}: {problem}"


def verify_shot(output: str, storage_options: dict, expected_frames: int | None, report: Verification) -> None:
    """Check one shot's output folder against its frames table, adding to `report`."""
    report.shots += 1
    table_url = join_url(output, FRAME_TABLE_NAME)
    if not url_exists(table_url, storage_options):
        report.problems.append(f"{output}: no frames table ({FRAME_TABLE_NAME}): the shot never finished a run")
        report.frames += expected_frames or 0
        return
    records = read_frames(table_url, storage_options)  # outputs named in `output`, wherever they were written
    if expected_frames is not None and len(records) != expected_frames:
        report.problems.append(f"{output}: the frames table lists {len(records)} frames, the plan {expected_frames}")
    report.frames += max(len(records), expected_frames or 0)
    for record in records:
        problem = check_frame(record, storage_options)
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
        for planned in read_records(plan_url, PlannedShot, storage_options):
            # Each shot's folder is named after it in the episode's output: the folder given, not the plan's path.
            verify_shot(join_url(output, planned.shot), storage_options, planned.frames, report)
        return report
    if url_exists(join_url(output, FRAME_TABLE_NAME), storage_options):
        verify_shot(output, storage_options, None, report)
        return report
    msg = f"{output!r} holds neither an episode plan ({PLAN_TABLE_NAME}) nor a shot's frames table ({FRAME_TABLE_NAME})"
    raise ValueError(msg)
