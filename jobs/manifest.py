"""Results tables: pyarrow tables written as Parquet to any fsspec URL.

- per shot, ``<shot output>/inkpaint-frames.parquet``: one row per frame (input, output, status, bytes, seconds,
  the output's SHA-256), the output named relative to the shot's folder, so that a copied or moved folder still
  reads as itself (tables written before that hold absolute paths: `read_frames` reads both);
- per episode, ``<output>/inkpaint-plan.parquet``: one row per planned shot;
- per episode, ``<output>/inkpaint-results/<shot>.parquet``: one row per shot, written as each shot finishes, so
  the folder reads as one table of the episode at any time (even after a killed run); colorize-shot writes its one
  row the same way into the shot's output folder.

Rows are record dataclasses (`pipeline.shot.FrameRecord`, `ShotRecord`, `PlannedShot`); each table's schema
is derived from its record's fields, and reading a table gives its records back.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import re
import time
import types
import typing
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from model.files import write_bytes_atomic
from pipeline.frame_names import join_url
from pipeline.outputs import WrittenFile
from pipeline.shot import FrameRecord, ShotResult
from pipeline.status import FrameStatus, ShotStatus

log = logging.getLogger(__name__)

R = TypeVar("R")  # a record dataclass

FRAME_TABLE_NAME = "inkpaint-frames.parquet"
PLAN_TABLE_NAME = "inkpaint-plan.parquet"  # an episode's plan, in its output
SPEC_COPY_NAME = "inkpaint-spec.json"  # the spec as run, credentials masked, in an episode's output
RUN_RECORD_NAME = "inkpaint-run.json"  # the latest run: when, how long, shots colored and skipped, weights
RESULTS_FOLDER = "inkpaint-results"


@dataclass(frozen=True)
class ShotRecord:
    """One shot's row of the episode's results table.

    Args:
        shot: the shot's name.
        status: ok, partial or failed (`ShotResult.status`).
        frames, written, resumed, seconds, worker, gpu, output: as the shot's `ShotResult` has them.
        failed: frames not colored.
        error: why the whole shot failed ("" when it ran).
        keyframe: the keyframe's name.
        video: the video written ("" when none).
        input_hash: the hash of the shot's inputs and options that resume compares ("" for colorize-shot).
        finished_at: when the row was written, UTC, ISO 8601.
        weights_sha256: the checksum of the weights that colored it.
        reference: the keyframe image's URL.
    """

    shot: str
    status: ShotStatus
    frames: int = 0
    written: int = 0
    resumed: int = 0
    failed: int = 0
    seconds: float = 0.0
    worker: str = ""
    gpu: str = ""
    error: str = ""
    keyframe: str = ""
    output: str = ""
    video: str = ""
    input_hash: str = ""
    finished_at: str = ""
    weights_sha256: str = ""
    reference: str = ""


@dataclass(frozen=True)
class PlannedShot:
    """One shot's row of an episode's plan table (`jobs.plan.ShotPlan` as planned; see its fields).

    Args:
        shot: the shot's name.
        frames: how many frames it has.
        source: its frames folder or video file.
        keyframe, reason, output, video, input_hash: as in its `ShotPlan`.
        keyframe_position: `ShotPlan.position`.
        more_keyframes: the names of its further keyframes.
    """

    shot: str
    frames: int
    source: str = ""
    keyframe: str = ""
    reason: str = ""
    keyframe_position: int | None = None
    output: str = ""
    video: str | None = None
    input_hash: str = ""
    more_keyframes: list[str] = field(default_factory=list)


def arrow_schema(record: type, *leading: pa.Field) -> pa.Schema:
    """The Arrow schema of a record dataclass: the `leading` fields, then one column per field of the record, in
    order, typed from its annotation (str and the str enums of `pipeline.status` as strings, int as int64, float as
    float64, list[str] as a list of strings; every column may hold nulls, so `X | None` is X's type)."""
    hints = typing.get_type_hints(record)
    return pa.schema([*leading, *(pa.field(f.name, _arrow_type(hints[f.name])) for f in dataclasses.fields(record))])


def _arrow_type(hint: object) -> pa.DataType:
    """The Arrow type of one record field's annotation."""
    arguments = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and len(arguments) == 2 and type(None) in arguments:
        [hint] = [argument for argument in arguments if argument is not type(None)]
    if typing.get_origin(hint) is list:
        return pa.list_(_arrow_type(arguments[0]))
    if isinstance(hint, type) and issubclass(hint, str):
        return pa.string()
    if hint is int:
        return pa.int64()
    if hint is float:
        return pa.float64()
    msg = f"a results table has no column type for {hint!r}"
    raise TypeError(msg)


# A frames table names its shot in every row, so that tables of several shots concatenate.
FRAME_SCHEMA = arrow_schema(FrameRecord, pa.field("shot", pa.string()))
RESULT_SCHEMA = arrow_schema(ShotRecord)
PLAN_SCHEMA = arrow_schema(PlannedShot)


def records_table(records: list, schema: pa.Schema) -> pa.Table:
    """Record dataclasses as a table of `schema`."""
    return storable_table([dataclasses.asdict(record) for record in records], schema)


def storable_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """Rows as a table of `schema`, every text storable (`storable`)."""
    rows = [{key: storable(value) if isinstance(value, str) else value for key, value in row.items()} for row in rows]
    return pa.Table.from_pylist(rows, schema=schema)


def read_records(url: str, record: type[R], storage_options: dict | None = None) -> list[R]:
    """The rows of a table this package wrote as `record` dataclasses, every file name as Python names the file
    (`restored`) and every status as its enum. A column that a table of an older version lacks, or a null, reads
    as the field's default; columns the record does not have are left out."""
    return records_from_table(read_table(url, storage_options), record)


def records_from_table(table: pa.Table, record: type[R]) -> list[R]:
    """A table's rows as `record` dataclasses (see `read_records`)."""
    hints = typing.get_type_hints(record)
    names = [f.name for f in dataclasses.fields(record) if f.name in table.column_names]
    records = []
    for row in table.select(names).to_pylist():
        values = {}
        for name, value in row.items():
            if value is None:
                continue
            if isinstance(value, str):
                value = restored(value)
                if isinstance(hints[name], type) and issubclass(hints[name], Enum):
                    value = hints[name](value)
            values[name] = value
        records.append(record(**values))
    return records


def url_exists(url: str, storage_options: dict | None = None) -> bool:
    """Whether a file or folder is at url (any fsspec store)."""
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    return fs.exists(path)


def storable(text: str) -> str:
    """Text a table can hold: a file name that is not valid UTF-8 (Python shows its odd bytes as surrogates,
    'frame\\udcff.png') is stored with those bytes written out ('frame\\xff.png'); `restored` undoes it."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


_WRITTEN_OUT_BYTE = re.compile(r"\\x([89a-f][0-9a-f])")


def restored(text: str) -> str:
    """The name `storable` was given, as Python names that file: each byte it wrote out (only bytes 0x80-0xff
    are) back to its surrogate. Output names never hold a backslash (`check_output_names`)."""
    return _WRITTEN_OUT_BYTE.sub(lambda match: chr(0xDC00 + int(match.group(1), 16)), text)


def shot_record(
    result: ShotResult, keyframe: str, input_hash: str, weights_sha256: str = "", reference: str = ""
) -> ShotRecord:
    """One shot's row of the episode's results table (`keyframe` its name, `reference` its image's URL)."""
    return ShotRecord(
        shot=result.shot, status=result.status, frames=result.frames, written=result.written,
        resumed=result.resumed, failed=len(result.failures), seconds=result.seconds, worker=result.worker,
        gpu=result.gpu, error=result.error or "", keyframe=keyframe, output=result.output, video=result.video or "",
        input_hash=input_hash, finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        weights_sha256=weights_sha256, reference=reference,
    )  # fmt: skip


def result_url(output: str, shot: str) -> str:
    """Where the results folder in `output` keeps one shot's row."""
    return f"{output.rstrip('/')}/{RESULTS_FOLDER}/{shot}.parquet"


def write_result(output: str, record: ShotRecord, storage_options: dict | None = None) -> None:
    """Record one finished shot in the episode's results folder (replacing an earlier run's row for it)."""
    write_table(records_table([record], RESULT_SCHEMA), result_url(output, record.shot), storage_options)


def read_results(output: str, storage_options: dict | None = None) -> dict[str, ShotRecord]:
    """The episode's recorded results by shot name; empty when none were written yet."""
    fs, root = fsspec.core.url_to_fs(f"{output.rstrip('/')}/{RESULTS_FOLDER}", **(storage_options or {}))
    fs.invalidate_cache(root)
    try:
        paths = [p for p in fs.ls(root, detail=False) if p.endswith(".parquet")]
    except FileNotFoundError:
        return {}
    records: dict[str, ShotRecord] = {}
    for path in sorted(paths):
        with fs.open(path, "rb") as handle:
            for record in records_from_table(pq.read_table(handle), ShotRecord):
                records[record.shot] = record
    return records


def results_table(output: str, storage_options: dict | None = None) -> pa.Table:
    """The episode's results as one table, shots in name order."""
    records = read_results(output, storage_options)
    return records_table([records[name] for name in sorted(records)], RESULT_SCHEMA)


def frame_table(results: list[ShotResult]) -> pa.Table:
    """One row per frame of every shot: input, output (relative to the shot's output folder), status, size,
    seconds and the reason of a failure."""
    rows = [{"shot": result.shot, **dataclasses.asdict(record), "output": relative_output(record.output, result.output)}
            for result in results for record in sorted(result.records, key=lambda record: record.index)]  # fmt: skip
    return storable_table(rows, FRAME_SCHEMA)


def relative_output(output: str, folder: str) -> str:
    """An output file's URL as the frames table stores it: relative to the shot's folder ("" stays "")."""
    prefix = folder.rstrip("/") + "/"
    return output[len(prefix) :] if output.startswith(prefix) else output.rpartition("/")[2]


def recorded_outputs(folder: str, storage_options: dict | None = None) -> dict[str, WrittenFile]:
    """The output files a shot's frames table in `folder` records as written (or kept) with a checksum, by name,
    with their size and SHA-256 as written: what a rerun may keep. Empty without a table; a table that cannot be
    read is logged and trusts nothing."""
    url = join_url(folder, FRAME_TABLE_NAME)
    try:
        if not url_exists(url, storage_options):
            return {}
        records = read_frames(url, storage_options)
    except (OSError, pa.ArrowException) as error:
        log.warning("cannot read the frames table %s (%s): every frame of the shot is colored again", url, error)
        return {}
    kept = (FrameStatus.WRITTEN, FrameStatus.RESUMED)
    return {record.output.rpartition("/")[2]: WrittenFile(record.bytes, record.sha256) for record in records
            if record.status in kept and record.output and record.sha256}  # fmt: skip


def write_table(table: pa.Table, url: str, storage_options: dict | None = None) -> None:
    """Write a table as Parquet, atomically (a reader never sees half a file)."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    write_bytes_atomic(buffer.getvalue(), url, storage_options)


def read_table(url: str, storage_options: dict | None = None) -> pa.Table:
    """Read a Parquet table from any fsspec URL."""
    with fsspec.open(url, "rb", **(storage_options or {})) as handle:
        return pq.read_table(handle)


def read_frames(url: str, storage_options: dict | None = None) -> list[FrameRecord]:
    """A shot's frames table (at `url`) as records, in the table's order. Outputs come back as URLs in the folder the
    table is read from, wherever it was written: the stored name joined to that folder (the last segment of an
    absolute path, in tables from before)."""
    folder = url.rstrip("/").rpartition("/")[0]
    return [dataclasses.replace(record, output=_output_in(folder, record.output))
            for record in read_records(url, FrameRecord, storage_options)]  # fmt: skip


def _output_in(folder: str, stored: str) -> str:
    if not stored:
        return stored
    absolute = stored.startswith("/") or "://" in stored
    return join_url(folder, stored.rpartition("/")[2] if absolute else stored)
