"""The morning report: one static HTML page per run, with its pictures beside it, for a lead to review a batch.

`write_report(OUT)` reads what a run left in OUT (the results rows in ``inkpaint-results/``, the plan of an episode,
each shot's frames table) and writes ``OUT/inkpaint-report/index.html`` with, beside it, a keyframe thumbnail, a
strip of line-art and colored thumbnails and a contact sheet (PNG, for chat and email) per shot. The page needs no
server and no script: it opens from a disk or a bucket's web view. It is rendered from a Jinja2 template
(jobs/templates/report.html.j2) with autoescape on: everything taken from a run (shot names, paths, messages) is
HTML-escaped.

On top: shots done, failed and missing, frames, time, weights, options; then the failures with their messages and
files; then every shot, those most likely wrong first. Without ground truth, "likely wrong" is what
`pipeline.quality.ShotSignals` measures: every frame against the frames around it, after the shot's motion (paint on
paper that the frames near it do not have, paper in paint, a paint region whose color differs from its match before
and after; every frame a signal fires on is listed with the signal and its size in pixels), and on a sample of
consecutive frame pairs whose line art barely moved, how much the colors changed anyway (flicker), the share of
paint regions whose color changed, and the share of painted pixels whose color is not in the keyframe's palette.

Paths a run recorded relative to the folder it was run from (colorize-shot's own arguments) are resolved against
that folder, which the run description (`inkpaint-spec.json`) records, so the report can be written from anywhere.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from urllib.parse import quote

import fsspec
import numpy as np
from PIL import Image, ImageDraw

from jobs.manifest import (
    FRAME_TABLE_NAME,
    PLAN_TABLE_NAME,
    RUN_RECORD_NAME,
    SPEC_COPY_NAME,
    PlannedShot,
    ShotRecord,
    read_frames,
    read_records,
    read_results,
    url_exists,
)
from jobs.pages import render_page
from model.files import write_bytes_atomic
from pipeline.frame_names import join_url
from pipeline.frames import read_frame
from pipeline.png import encode_png
from pipeline.quality import QualitySignals, ShotSignals, reduced_rgb
from pipeline.shot import OPTIONS, FrameRecord
from pipeline.status import FrameStatus, ShotStatus

log = logging.getLogger(__name__)

REPORT_FOLDER = "inkpaint-report"
THUMB = 192  # long side of a thumbnail, pixels
STRIP_FRAMES = 8  # thumbnails per shot, first and last included
SIGNAL_PAIRS = 12  # consecutive frame pairs sampled per shot for the still-pair and palette signals
READ_AHEAD = 4  # frames decoded ahead of the signals, on threads (decoding releases the GIL)
# The run's options the summary shows, as its description records them: the weights and what changes the colors.
REPORTED_OPTIONS = (*(name for name, o in OPTIONS.items() if o.changes_output and not o.video), "weights")


@dataclass
class ShotReport:
    """One shot as the report shows it: its results row and what the report found out about its frames.

    Args:
        record: the shot's results row as this process finds its files (`located`; a video never written is ""),
            with the plan's frame count where the row has none; a shot planned and never finished has a row of
            status missing, made from its plan.
        frame_failures: (frame, reason) of every frame that failed.
        strip, key_thumb, sheet: its pictures' file names inside the report folder ("" when there is none).
        signals: the quality signals of its colored frames.
    """

    record: ShotRecord
    frame_failures: list[tuple[str, str]] = field(default_factory=list)
    strip: str = ""
    key_thumb: str = ""
    sheet: str = ""
    signals: QualitySignals = field(default_factory=QualitySignals)


def _thumbnail(image: np.ndarray, side: int = THUMB) -> Image.Image:
    return Image.fromarray(reduced_rgb(image, side))


def _evenly_spaced(count: int, wanted: int) -> list[int]:
    if count <= wanted:
        return list(range(count))
    return sorted({round(i * (count - 1) / (wanted - 1)) for i in range(wanted)})


def _read_ahead(
    rows: list[FrameRecord], storage: dict
) -> Iterator[tuple[FrameRecord, np.ndarray, np.ndarray] | Exception]:
    """Each row's line art (gray) and colored frame, in order, decoded READ_AHEAD frames ahead on threads; the
    error instead for a frame that cannot be read."""

    def read(row: FrameRecord) -> tuple[FrameRecord, np.ndarray, np.ndarray]:
        return row, read_frame(row.frame, storage, gray=True), read_frame(row.output, storage)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="report-read") as pool:
        waiting: deque[Future] = deque(pool.submit(read, row) for row in rows[:READ_AHEAD])
        for row in rows[READ_AHEAD:] + [None] * READ_AHEAD:
            if not waiting:
                break
            try:
                yield waiting.popleft().result()
            except (OSError, ValueError) as error:
                yield error
            if row is not None:
                waiting.append(pool.submit(read, row))


def _file_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def quality_signals(rows: list[FrameRecord], reference: np.ndarray | None, storage_options: dict) -> QualitySignals:
    """The shot's `pipeline.quality.QualitySignals`: every colored frame compared with the frames around it, and
    flicker, region color changes and the off-palette share on SIGNAL_PAIRS sampled frame pairs.

    Args:
        rows: the shot's frames table rows, in frame order.
        reference: the keyframe (H, W, 3) uint8, or None when it cannot be read.
        storage_options: fsspec options.
    """
    done = [row for row in rows if row.status in (FrameStatus.WRITTEN, FrameStatus.RESUMED) and row.output]
    if len(done) < 2:
        return QualitySignals()
    sampled = {done[i].index for i in _evenly_spaced(len(done) - 1, SIGNAL_PAIRS)}  # each pair's first frame
    signals = ShotSignals(reference, sampled)
    unread: list[Exception] = []
    for item in _read_ahead(done, storage_options):
        if isinstance(item, Exception):
            unread.append(item)
            continue
        row, lines, colors = item
        try:
            signals.add(row.index, _file_name(row.output), lines, colors)
        except ValueError as error:  # colors of another size than the line art
            unread.append(error)
    if unread:
        log.warning("quality signals: %d of %d frames could not be compared with their neighbours; the first: %s",
                    len(unread), len(done), unread[0])  # fmt: skip
    return signals.finish()


def _shot_pictures(shot: ShotReport, rows: list[FrameRecord], reference: np.ndarray | None, folder: str, storage: dict):
    """Write the shot's keyframe thumbnail, thumbnail strip and contact sheet into the report folder."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in shot.record.shot) or "shot"
    done = [row for row in rows if row.status in (FrameStatus.WRITTEN, FrameStatus.RESUMED) and row.output]
    picks = [done[i] for i in _evenly_spaced(len(done), STRIP_FRAMES)]
    tiles: list[tuple[Image.Image, Image.Image, str]] = []
    for row in picks:
        try:
            line = _thumbnail(read_frame(row.frame, storage))
            colored = _thumbnail(read_frame(row.output, storage))
        except (OSError, ValueError) as error:
            log.warning("report: no thumbnail of %s: %s", row.output, error)
            continue
        tiles.append((line, colored, _file_name(row.output)))
    key = _thumbnail(reference) if reference is not None else None
    if key is not None:
        shot.key_thumb = f"{safe}-key.png"
        write_bytes_atomic(encode_png(np.asarray(key)), join_url(folder, shot.key_thumb), storage)
    if not tiles:
        return
    width = sum(max(line.width, colored.width) for line, colored, _ in tiles) + 4 * (len(tiles) - 1)
    height = max(line.height for line, _, _ in tiles) + max(colored.height for _, colored, _ in tiles) + 4
    strip = Image.new("RGB", (width, height), "white")
    x = 0
    top = max(line.height for line, _, _ in tiles)
    for line, colored, _ in tiles:
        strip.paste(line, (x, 0))
        strip.paste(colored, (x, top + 4))
        x += max(line.width, colored.width) + 4
    shot.strip = f"{safe}-strip.png"
    write_bytes_atomic(encode_png(np.asarray(strip)), join_url(folder, shot.strip), storage)
    labelled = ([("keyframe", key)] if key is not None else []) + [(name, colored) for _, colored, name in tiles]
    row = shot.record
    sheet = contact_sheet(f"{row.shot}: {row.status}, {row.written + row.resumed}/{row.frames} frames", labelled)
    shot.sheet = f"{safe}-sheet.png"
    write_bytes_atomic(encode_png(np.asarray(sheet)), join_url(folder, shot.sheet), storage)


def contact_sheet(title: str, tiles: list[tuple[str, Image.Image]], columns: int = 3) -> Image.Image:
    """Thumbnails (at most THUMB pixels a side) in rows of `columns` under a title, each above its label."""
    rows_count = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (columns * (THUMB + 8), rows_count * (THUMB + 24) + 28), "white")
    pen = ImageDraw.Draw(sheet)
    pen.text((6, 6), title, fill="black")
    for i, (label, tile) in enumerate(tiles):
        cx, cy = (i % columns) * (THUMB + 8) + 4, (i // columns) * (THUMB + 24) + 28
        sheet.paste(tile, (cx, cy))
        pen.text((cx, cy + tile.height + 2), label, fill="black")
    return sheet


def located(url: str, folder: str | None) -> str:
    """A path a run recorded, as this process finds it: one relative to the folder the run was run from (`folder`,
    None when not recorded) is joined to it; URLs and absolute paths stay."""
    if not url or not folder or "://" in url or os.path.isabs(url):
        return url
    return os.path.normpath(os.path.join(folder, url))


def _shot_report(row: ShotRecord, planned_frames: int | None, folder: str, storage: dict, run_folder: str | None = None
                 ) -> ShotReport:  # fmt: skip
    row = replace(row, frames=row.frames or planned_frames or 0, reference=located(row.reference, run_folder),
                  output=located(row.output, run_folder), video=located(row.video, run_folder))  # fmt: skip
    if row.video and not url_exists(row.video, storage):
        row = replace(row, video="")  # planned, never written (the shot failed)
    table_url = join_url(row.output, FRAME_TABLE_NAME) if row.output else ""
    frames = read_frames(table_url, storage) if table_url and url_exists(table_url, storage) else []
    frames = [replace(r, frame=located(r.frame, run_folder), output=located(r.output, run_folder))
              for r in sorted(frames, key=lambda r: r.index)]  # fmt: skip
    shot = ShotReport(row, frame_failures=[(r.frame, r.reason) for r in frames if r.status is FrameStatus.FAILED])
    reference = None
    if row.reference:
        try:
            reference = read_frame(row.reference, storage)
        except (OSError, ValueError) as error:
            log.warning("report: cannot read keyframe %s: %s", row.reference, error)
    _shot_pictures(shot, frames, reference, folder, storage)
    shot.signals = quality_signals(frames, reference, storage)
    return shot


def page_link(url: str, base: str) -> str:
    """`url` as the report page (in `base`/REPORT_FOLDER) links it: a local file by its path relative to the page,
    wherever it is; a URL relative when it is under `base`, else as is."""
    if "://" not in url and "://" not in base:
        page_folder = os.path.abspath(os.path.join(base, REPORT_FOLDER))
        return quote(os.path.relpath(os.path.abspath(url), page_folder).replace(os.sep, "/"))
    prefix = base.rstrip("/") + "/"
    return "../" + quote(url[len(prefix) :]) if url.startswith(prefix) else url


def gather(output: str, storage_options: dict | None = None) -> tuple[list[ShotReport], dict]:
    """Every shot of the run in OUT (with the missing ones of a plan) and the run's facts for the summary."""
    storage = storage_options or {}
    folder = join_url(output, REPORT_FOLDER)
    results = read_results(output, storage)
    planned: dict[str, PlannedShot] = {}
    plan_url = join_url(output, PLAN_TABLE_NAME)
    if url_exists(plan_url, storage):
        planned = {row.shot: row for row in read_records(plan_url, PlannedShot, storage)}
    facts: dict = {}
    for key, name in (("spec", SPEC_COPY_NAME), ("run", RUN_RECORD_NAME)):
        url = join_url(output, name)
        if url_exists(url, storage):
            with fsspec.open(url, "rt", **storage) as handle:
                facts[key] = json.load(handle)
    run_folder = facts.get("spec", {}).get("working_folder")  # colorize-shot's paths are relative to it
    shots = [_shot_report(row, planned[name].frames if name in planned else None, folder, storage, run_folder)
             for name, row in results.items()]  # fmt: skip
    for name, plan in planned.items():
        if name not in results:
            missing = ShotRecord(name, ShotStatus.MISSING, frames=plan.frames, keyframe=plan.keyframe,
                                 output=plan.output, video=plan.video or "")  # fmt: skip
            shots.append(ShotReport(missing))
    return shots, facts


# Shots in the order the page lists them (then the most suspicious first).
_ORDER = {ShotStatus.FAILED: 0, ShotStatus.MISSING: 1, ShotStatus.PARTIAL: 2, ShotStatus.OK: 3}

_SIGNAL_MEANING = {
    "paint on paper": "paint where the frames near it have paper",
    "paper in paint": "paper where the frames near it have paint",
    "region color": "a paint region colored unlike its match in the frames before and after",
}


def render(output: str, shots: list[ShotReport], facts: dict) -> str:
    """The report page's HTML."""
    shots = sorted(shots, key=lambda s: (_ORDER[s.record.status], -s.signals.suspicion, s.record.shot))
    spec, run = facts.get("spec", {}), facts.get("run", {})
    options = {name: spec[name] for name in REPORTED_OPTIONS if name in spec}
    return render_page(
        "report.html.j2",
        title=spec.get("episode", output),
        output=output,
        shots=shots,
        counts={status.value: sum(1 for s in shots if s.record.status is status) for status in _ORDER},
        skipped=len(run.get("skipped", [])),
        frames=sum(s.record.written for s in shots),
        seconds=sum(s.record.seconds for s in shots),
        wall=f"{run['wall_seconds']:.1f} s, started {run.get('started', '?')}" if "wall_seconds" in run else "unknown",
        weights_name=(run.get("weights") or spec.get("weights") or "the shipped default").rsplit("/", 1)[-1],
        weights=sorted({s.record.weights_sha256 for s in shots if s.record.weights_sha256}),
        options=json.dumps(options),
        troubled=[s for s in shots if s.record.status is not ShotStatus.OK or s.frame_failures],
        signal_meaning=_SIGNAL_MEANING,
        video_link=lambda url: page_link(url, output),
    )


def write_report(output: str, storage_options: dict | None = None) -> tuple[str, list[ShotReport]]:
    """Write OUT/inkpaint-report/index.html and its pictures; returns the page's URL and the shots it shows."""
    storage = storage_options or {}
    shots, facts = gather(output, storage)
    page = join_url(join_url(output, REPORT_FOLDER), "index.html")
    write_bytes_atomic(render(output, shots, facts).encode(), page, storage)
    return page, shots


def report_or_warn(output: str, storage_options: dict | None = None) -> str | None:
    """`write_report`, logging instead of raising: a run's work is done and recorded before its report."""
    try:
        return write_report(output, storage_options)[0]
    except Exception as error:  # the report must never turn a finished run into a failed one
        log.warning("could not write the report of %s: %s", output, error)
        return None
