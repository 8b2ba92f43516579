"""Results tables: written from record dataclasses, read back as records, and tables written before the records
existed (their schemas spelled out here as that code wrote them) still read, so resume keeps working."""

from __future__ import annotations

import datetime

import pyarrow as pa
import pyarrow.parquet as pq

from jobs.manifest import (
    FRAME_SCHEMA,
    FRAME_TABLE_NAME,
    PLAN_SCHEMA,
    RESULT_SCHEMA,
    PlannedShot,
    ShotRecord,
    read_frames,
    read_records,
    read_results,
    recorded_outputs,
    records_table,
    result_url,
    shot_record,
    write_result,
)
from jobs.nightly import REPORT_SCHEMA, SpecRun, SpecStatus, summarize
from pipeline.outputs import WrittenFile
from pipeline.shot import FrameFailure, FrameRecord, ShotResult
from pipeline.status import FrameStatus, ShotStatus

STR, INT, FLOAT = pa.string(), pa.int64(), pa.float64()
# The schemas as the code before the records wrote them, field by field.
OLD_FRAME_SCHEMA = pa.schema(
    [
        ("shot", STR),
        ("frame", STR),
        ("output", STR),
        ("status", STR),
        ("bytes", INT),
        ("seconds", FLOAT),
        ("reason", STR),
        ("index", INT),
        ("sha256", STR),
    ]
)
OLD_RESULT_SCHEMA = pa.schema(
    [
        ("shot", STR),
        ("status", STR),
        ("frames", INT),
        ("written", INT),
        ("resumed", INT),
        ("failed", INT),
        ("seconds", FLOAT),
        ("worker", STR),
        ("gpu", STR),
        ("error", STR),
        ("keyframe", STR),
        ("output", STR),
        ("video", STR),
        ("input_hash", STR),
        ("finished_at", STR),
        ("weights_sha256", STR),
        ("reference", STR),
    ]
)
OLD_PLAN_SCHEMA = pa.schema(
    [
        ("shot", STR),
        ("frames", INT),
        ("source", STR),
        ("keyframe", STR),
        ("reason", STR),
        ("keyframe_position", INT),
        ("output", STR),
        ("video", STR),
        ("input_hash", STR),
        ("more_keyframes", pa.list_(STR)),
    ]
)
OLD_REPORT_SCHEMA = pa.schema(
    [
        ("id", STR),
        ("spec", STR),
        ("status", STR),
        ("shots", INT),
        ("shots_colored", INT),
        ("shots_skipped", INT),
        ("shots_failed", INT),
        ("frames", INT),
        ("seconds", FLOAT),
        ("error", STR),
    ]
)
SHA = "ab" * 32


def test_the_schemas_derived_from_the_records_are_the_ones_written_before() -> None:
    assert FRAME_SCHEMA.equals(OLD_FRAME_SCHEMA)
    assert RESULT_SCHEMA.equals(OLD_RESULT_SCHEMA)
    assert PLAN_SCHEMA.equals(OLD_PLAN_SCHEMA)
    assert REPORT_SCHEMA.equals(OLD_REPORT_SCHEMA)


def test_an_old_frames_table_reads_back_as_records_and_resume_trusts_what_it_vouches_for(tmp_path) -> None:
    rows = [
        {"shot": "sh010", "frame": "/in/f1.png", "output": "f1.png", "status": "written", "bytes": 10, "seconds": 0.5,
         "reason": "", "index": 0, "sha256": SHA},
        # From before outputs were stored relative: the absolute path where it was rendered.
        {"shot": "sh010", "frame": "/in/f2.png", "output": "/elsewhere/sh010/f2.png", "status": "resumed",
         "bytes": 11, "seconds": 0.0, "reason": "", "index": 1, "sha256": SHA},
        {"shot": "sh010", "frame": "/in/f\\xff3.png", "output": "", "status": "failed", "bytes": 0, "seconds": 0.0,
         "reason": "truncated", "index": 2, "sha256": ""},
    ]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows, schema=OLD_FRAME_SCHEMA), tmp_path / FRAME_TABLE_NAME)

    records = read_frames(str(tmp_path / FRAME_TABLE_NAME))

    assert records == [
        FrameRecord("/in/f1.png", str(tmp_path / "f1.png"), FrameStatus.WRITTEN, 10, 0.5, "", 0, SHA),
        FrameRecord("/in/f2.png", str(tmp_path / "f2.png"), FrameStatus.RESUMED, 11, 0.0, "", 1, SHA),
        FrameRecord("/in/f\udcff3.png", "", FrameStatus.FAILED, reason="truncated", index=2),
    ]
    assert all(type(record.status) is FrameStatus for record in records)
    assert recorded_outputs(str(tmp_path)) == {"f1.png": WrittenFile(10, SHA), "f2.png": WrittenFile(11, SHA)}


def test_a_frames_table_from_before_the_checksums_reads_with_empty_ones_and_resume_trusts_none(tmp_path) -> None:
    schema = pa.schema([field for field in OLD_FRAME_SCHEMA if field.name not in ("index", "sha256")])
    row = {"shot": "a", "frame": "f1.png", "output": "f1.png", "status": "written", "bytes": 10, "seconds": 0.5,
           "reason": None}  # fmt: skip
    pq.write_table(pa.Table.from_pylist([row], schema=schema), tmp_path / FRAME_TABLE_NAME)

    [record] = read_frames(str(tmp_path / FRAME_TABLE_NAME))

    assert (record.index, record.sha256, record.reason) == (0, "", "")
    assert recorded_outputs(str(tmp_path)) == {}


def test_an_old_results_table_reads_back_as_shot_records(tmp_path) -> None:
    old = {
        "shot": "sh020",
        "status": "partial",
        "frames": 7,
        "written": 6,
        "resumed": 0,
        "failed": 1,
        "seconds": 2.5,
        "worker": "node",
        "gpu": "",
        "error": "",
        "keyframe": "car",
        "output": "/out/sh020",
        "video": "",
        "input_hash": "h",
        "finished_at": "2026-01-02T03:04:05Z",
        "weights_sha256": SHA,
        "reference": "/k.png",
    }
    (tmp_path / "inkpaint-results").mkdir()
    pq.write_table(pa.Table.from_pylist([old], schema=OLD_RESULT_SCHEMA), result_url(str(tmp_path), "sh020"))

    [(name, record)] = read_results(str(tmp_path)).items()

    assert name == "sh020" and record == ShotRecord(**{**old, "status": ShotStatus.PARTIAL})
    assert type(record.status) is ShotStatus


def test_a_shot_result_is_recorded_and_read_back_as_it_was(tmp_path) -> None:
    result = ShotResult(shot="sh030", frames=3, written=2, failures=[FrameFailure("f2.png", "gone")], seconds=1.5,
                        output="/out/sh030", worker="node", gpu="0")  # fmt: skip
    record = shot_record(result, keyframe="fox", input_hash="h", weights_sha256=SHA, reference="/k.png")
    write_result(str(tmp_path), record)

    assert read_results(str(tmp_path)) == {"sh030": record}
    assert record.status is ShotStatus.PARTIAL and record.failed == 1 and record.video == ""
    stored = pq.read_table(result_url(str(tmp_path), "sh030"))
    assert stored.schema.equals(OLD_RESULT_SCHEMA) and stored.column("status").to_pylist() == ["partial"]


def test_an_old_plan_and_nightly_report_read_back_as_records(tmp_path) -> None:
    plan = {"shot": "sh010", "frames": 6, "source": "/lines/sh010", "keyframe": "fox", "reason": "explicit",
            "keyframe_position": None, "output": "/out/sh010", "video": None, "input_hash": "h",
            "more_keyframes": ["car"]}  # fmt: skip
    pq.write_table(pa.Table.from_pylist([plan], schema=OLD_PLAN_SCHEMA), tmp_path / "plan.parquet")
    assert read_records(str(tmp_path / "plan.parquet"), PlannedShot) == [PlannedShot(**plan)]

    night = {"id": "ep-20260102", "spec": "/q/ep.yaml", "status": "invalid", "shots": 0, "shots_colored": 0,
             "shots_skipped": 0, "shots_failed": 0, "frames": 0, "seconds": 0.0, "error": "no shots"}  # fmt: skip
    pq.write_table(pa.Table.from_pylist([night], schema=OLD_REPORT_SCHEMA), tmp_path / "night.parquet")
    [run] = read_records(str(tmp_path / "night.parquet"), SpecRun)
    assert run == SpecRun(**{**night, "status": SpecStatus.INVALID}) and run.failed
    assert records_table([run], REPORT_SCHEMA).to_pylist() == [night]
    assert summarize([run], datetime.date(2026, 1, 2)).splitlines()[1:] == [
        "  ep-20260102: invalid: no shots", "FAILED: ep-20260102"]  # fmt: skip
