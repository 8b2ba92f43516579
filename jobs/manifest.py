"""Results tables: pyarrow tables written as Parquet to any fsspec URL.

- per shot, ``<shot output>/inkpaint-frames.parquet``: one row per frame (input, output, status, bytes, seconds,
  the output's SHA-256), the output named relative to the shot's folder, so that a copied or moved folder still
  reads as itself (tables written before that hold absolute paths: `read_rows` reads both);
- per episode, ``<output>/inkpaint-results/<shot>.parquet``: one row per shot, written as each shot finishes, so
  the folder reads as one table of the episode at any time (even after a killed run); colorize-shot writes its one
  row the same way into the shot's output folder.
"""

from __future__ import annotations

import io
import logging
import re
import time

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from model.files import write_bytes_atomic
from pipeline.frames import WrittenFile, join_url
from pipeline.shot import ShotResult

log = logging.getLogger(__name__)

FRAME_TABLE_NAME = "inkpaint-frames.parquet"
PLAN_TABLE_NAME = "inkpaint-plan.parquet"  # an episode's plan, in its output
SPEC_COPY_NAME = "inkpaint-spec.json"  # the spec as run, credentials masked, in an episode's output
RUN_RECORD_NAME = "inkpaint-run.json"  # the latest run: when, how long, shots colored and skipped, weights
FRAME_SCHEMA = pa.schema(
    [
        ("shot", pa.string()),
        ("frame", pa.string()),
        ("output", pa.string()),
        ("status", pa.string()),
        ("bytes", pa.int64()),
        ("seconds", pa.float64()),
        ("reason", pa.string()),
        ("index", pa.int64()),
        ("sha256", pa.string()),
    ]
)


RESULTS_FOLDER = "inkpaint-results"
RESULT_SCHEMA = pa.schema(
    [
        ("shot", pa.string()),
        ("status", pa.string()),
        ("frames", pa.int64()),
        ("written", pa.int64()),
        ("resumed", pa.int64()),
        ("failed", pa.int64()),
        ("seconds", pa.float64()),
        ("worker", pa.string()),
        ("gpu", pa.string()),
        ("error", pa.string()),
        ("keyframe", pa.string()),
        ("output", pa.string()),
        ("video", pa.string()),
        ("input_hash", pa.string()),
        ("finished_at", pa.string()),
        ("weights_sha256", pa.string()),
        ("reference", pa.string()),
    ]
)


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


def result_row(
    result: ShotResult, keyframe: str, input_hash: str, weights_sha256: str = "", reference: str = ""
) -> dict:
    """One shot's row of the episode's results table (`keyframe` its name, `reference` its image's URL)."""
    row = {
        "shot": result.shot, "status": result.status, "frames": result.frames, "written": result.written,
        "resumed": result.resumed, "failed": len(result.failures), "seconds": result.seconds,
        "worker": result.worker, "gpu": result.gpu, "error": result.error or "", "keyframe": keyframe,
        "output": result.output, "video": result.video or "", "input_hash": input_hash,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "weights_sha256": weights_sha256,
        "reference": reference,
    }  # fmt: skip
    return {key: storable(value) if isinstance(value, str) else value for key, value in row.items()}


def write_result(output: str, row: dict, storage_options: dict | None = None) -> None:
    """Record one finished shot in the episode's results folder (replacing an earlier run's row for it)."""
    table = pa.Table.from_pylist([row], schema=RESULT_SCHEMA)
    write_table(table, f"{output.rstrip('/')}/{RESULTS_FOLDER}/{row['shot']}.parquet", storage_options)


def read_results(output: str, storage_options: dict | None = None) -> dict[str, dict]:
    """The episode's recorded results by shot name; empty when none were written yet."""
    fs, root = fsspec.core.url_to_fs(f"{output.rstrip('/')}/{RESULTS_FOLDER}", **(storage_options or {}))
    fs.invalidate_cache(root)
    try:
        paths = [p for p in fs.ls(root, detail=False) if p.endswith(".parquet")]
    except FileNotFoundError:
        return {}
    rows: dict[str, dict] = {}
    for path in sorted(paths):
        with fs.open(path, "rb") as handle:
            for row in pq.read_table(handle).to_pylist():
                rows[row["shot"]] = row
    return rows


def results_table(output: str, storage_options: dict | None = None) -> pa.Table:
    """The episode's results as one table, shots in name order."""
    rows = read_results(output, storage_options)
    return pa.Table.from_pylist([rows[name] for name in sorted(rows)], schema=RESULT_SCHEMA)


def frame_table(results: list[ShotResult]) -> pa.Table:
    """One row per frame of every shot: input, output (relative to the shot's output folder), status, size,
    seconds and the reason of a failure."""
    rows = [{key: storable(value) if isinstance(value, str) else value
             for key, value in {"shot": result.shot, **vars(record),
                                "output": relative_output(record.output, result.output)}.items()}
            for result in results for record in sorted(result.records, key=lambda record: record.index)]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=FRAME_SCHEMA)


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
        rows = read_rows(url, storage_options)
    except (OSError, pa.ArrowException) as error:
        log.warning("cannot read the frames table %s (%s): every frame of the shot is colored again", url, error)
        return {}
    return {row["output"].rpartition("/")[2]: WrittenFile(row["bytes"], row["sha256"]) for row in rows
            if row["status"] in ("written", "resumed") and row["output"] and row["sha256"]}  # fmt: skip


def write_table(table: pa.Table, url: str, storage_options: dict | None = None) -> None:
    """Write a table as Parquet, atomically (a reader never sees half a file)."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    write_bytes_atomic(buffer.getvalue(), url, storage_options)


def read_table(url: str, storage_options: dict | None = None) -> pa.Table:
    """Read a Parquet table from any fsspec URL."""
    with fsspec.open(url, "rb", **(storage_options or {})) as handle:
        return pq.read_table(handle)


def read_rows(url: str, storage_options: dict | None = None) -> list[dict]:
    """The rows of a table this package wrote, with every file name as Python names the file (`restored`). A
    frames table's outputs come back as URLs in the folder the table is read from, wherever it was written: the
    stored name joined to that folder (the last segment of an absolute path, in tables from before)."""
    rows = read_table(url, storage_options).to_pylist()
    rows = [{key: restored(value) if isinstance(value, str) else value for key, value in row.items()} for row in rows]
    folder, _, name = url.rstrip("/").rpartition("/")
    if name == FRAME_TABLE_NAME:
        for row in rows:
            stored = row["output"]
            if stored:
                absolute = stored.startswith("/") or "://" in stored
                row["output"] = join_url(folder, stored.rpartition("/")[2] if absolute else stored)
    return rows
