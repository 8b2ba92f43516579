"""Results tables: pyarrow tables written as Parquet to any fsspec URL."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.colorize import ShotResult
from pipeline.frames import write_bytes_atomic

FRAME_TABLE_NAME = "inkpaint-frames.parquet"
FRAME_SCHEMA = pa.schema(
    [
        ("shot", pa.string()),
        ("frame", pa.string()),
        ("output", pa.string()),
        ("status", pa.string()),
        ("bytes", pa.int64()),
        ("seconds", pa.float64()),
        ("reason", pa.string()),
    ]
)


def frame_table(results: list[ShotResult]) -> pa.Table:
    """One row per frame of every shot: input, output, status, size, seconds and the reason of a failure."""
    rows = [{"shot": result.shot, **vars(record)} for result in results for record in result.records]
    return pa.Table.from_pylist(rows, schema=FRAME_SCHEMA)


def write_table(table: pa.Table, url: str, storage_options: dict | None = None) -> None:
    """Write a table as Parquet, atomically (a reader never sees half a file)."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    write_bytes_atomic(buffer.getvalue(), url, storage_options)


def read_table(url: str, storage_options: dict | None = None) -> pa.Table:
    """Read a Parquet table from any fsspec URL."""
    import fsspec

    with fsspec.open(url, "rb", **(storage_options or {})) as handle:
        return pq.read_table(handle)
