"""The morning report: one static HTML page per run, with its pictures beside it, for a lead to review a batch.

`write_report(OUT)` reads what a run left in OUT (the results rows in ``inkpaint-results/``, the plan of an episode,
each shot's frames table) and writes ``OUT/inkpaint-report/index.html`` with, beside it, a keyframe thumbnail, a
strip of line-art and colored thumbnails and a contact sheet (PNG, for chat and email) per shot. The page needs no
server and no script: it opens from a disk or a bucket's web view. Everything taken from a run (shot names, paths,
messages) is HTML-escaped.

On top: shots done, failed and missing, frames, time, weights, options; then the failures with their messages and
files; then every shot, those most likely wrong first. Without ground truth, "likely wrong" is measured on every
frame against the frames around it, after the shot's motion (`pipeline.consistency`): paint on paper that the frames
near it do not have, paper in paint, a paint region whose color differs from its match before and after; every
frame a signal fires on is listed with the signal and its size in pixels. On a sample of consecutive frame pairs
whose line art barely moved, also: how much the colors changed anyway (flicker), the share of paint regions whose
color changed, and the share of painted pixels whose color is not in the keyframe's palette.

Paths a run recorded relative to the folder it was run from (colorize-shot's own arguments) are resolved against
that folder, which the run description (`inkpaint-spec.json`) records, so the report can be written from anywhere.
"""

from __future__ import annotations

import html
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
from PIL import Image, ImageDraw, ImageFilter

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
from pipeline.colorize import FrameRecord, join_url
from pipeline.consistency import ShotConsistency
from pipeline.frames import read_frame, rgb_to_gray, write_bytes_atomic
from pipeline.png import encode_png
from pipeline.regions import keyframe_palette, nearest_in_palette, rgb_to_lab, segment_regions
from pipeline.status import FrameStatus

log = logging.getLogger(__name__)

REPORT_FOLDER = "inkpaint-report"
THUMB = 192  # long side of a thumbnail, pixels
STRIP_FRAMES = 8  # thumbnails per shot, first and last included
SIGNAL_PAIRS = 12  # consecutive frame pairs sampled per shot for the quality signals
SIGNAL_SIDE = 384  # long side the signals are measured at
STILL_LINES = 3.0  # mean gray difference (0-255) under which two frames' line art "barely moved"
CHANGED_DELTA_E = 10.0  # a region whose median color moved further than this (CIE76) changed color
OFF_PALETTE_DELTA_E = 10.0  # a painted pixel further than this from every keyframe color is off the palette
READ_AHEAD = 4  # frames decoded ahead of the signals, on threads (decoding releases the GIL)


@dataclass(frozen=True)
class FlaggedFrame:
    """A frame a signal of `pipeline.consistency` fired on.

    Args:
        frame: the colored frame's file name.
        signal: "paint on paper", "paper in paint" or "region color".
        pixels: how many of the frame's pixels the signal covers.
    """

    frame: str
    signal: str
    pixels: int


@dataclass
class QualitySignals:
    """What a shot's output says about itself without ground truth (all 0 when nothing could be measured).

    Args:
        still_pairs: sampled consecutive frame pairs whose line art barely moved.
        flicker: mean color change (0-255) over those pairs, where the drawing did not move.
        changed_regions: share (0-1) of the paint regions of those pairs whose color changed.
        off_palette: share (0-1) of painted pixels of the sampled frames whose color is not in the keyframe.
        frames_checked: frames compared with the frames around them (three or more colored in a row).
        flagged: every frame a frame-to-frame signal fired on, in frame order (a frame once per signal).
    """

    still_pairs: int = 0
    flicker: float = 0.0
    changed_regions: float = 0.0
    off_palette: float = 0.0
    frames_checked: int = 0
    flagged: list[FlaggedFrame] = field(default_factory=list)

    @property
    def flagged_frames(self) -> int:
        return len({flag.frame for flag in self.flagged})

    @property
    def suspicion(self) -> float:
        """One number to sort shots by, most likely wrong first."""
        flagged = self.flagged_frames / self.frames_checked if self.frames_checked else 0.0
        return self.flicker / 10 + self.changed_regions + self.off_palette + flagged


@dataclass
class ShotReport:
    """One shot as the report shows it."""

    name: str
    status: str  # ok, partial, failed, missing (planned, no result)
    frames: int = 0
    written: int = 0
    resumed: int = 0
    failed: int = 0
    seconds: float = 0.0
    error: str = ""
    keyframe: str = ""
    reference: str = ""
    output: str = ""
    video: str = ""
    worker: str = ""
    gpu: str = ""
    weights_sha256: str = ""
    frame_failures: list[tuple[str, str]] = field(default_factory=list)
    strip: str = ""  # image file names inside the report folder
    key_thumb: str = ""
    sheet: str = ""
    signals: QualitySignals = field(default_factory=QualitySignals)


def _thumbnail(image: np.ndarray, side: int = THUMB) -> Image.Image:
    picture = Image.fromarray(image)
    picture.thumbnail((side, side), Image.Resampling.BOX)
    return picture.convert("RGB")


def _ink_preserving_gray(image: np.ndarray, side: int) -> np.ndarray:
    """Line art reduced to `side` keeping thin lines: a minimum filter before the reduction."""
    gray = Image.fromarray(rgb_to_gray(image) if image.ndim == 3 else image)
    scale = max(gray.size) / side
    if scale > 1.5:
        gray = gray.filter(ImageFilter.MinFilter(3 if scale < 4 else 5))
    gray.thumbnail((side, side), Image.Resampling.BOX)
    return np.asarray(gray)


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


@dataclass
class _StillPairs:
    """The sampled-pair signals, summed over the pairs (see `QualitySignals`)."""

    palette: np.ndarray | None
    flicker: list[float] = field(default_factory=list)
    changed: int = 0
    regions: int = 0
    off: int = 0
    painted: int = 0

    def add(self, lines: list[np.ndarray], colors: list[np.ndarray]) -> None:
        """One pair of consecutive frames, each reduced to SIGNAL_SIDE: line art (gray) and colors."""
        if lines[0].shape != lines[1].shape or colors[0].shape[:2] != lines[0].shape:
            return
        paper = (lines[0] >= 200) & (lines[1] >= 200)
        if self.palette is not None and len(self.palette) and paper.any():
            lab = rgb_to_lab(colors[0][paper])
            nearest = rgb_to_lab(nearest_in_palette(lab, self.palette))
            self.off += int((np.sqrt(((lab - nearest) ** 2).sum(axis=1)) > OFF_PALETTE_DELTA_E).sum())
            self.painted += int(paper.sum())
        if np.abs(lines[0].astype(np.int16) - lines[1]).mean() > STILL_LINES:
            return
        self.flicker.append(float(np.abs(colors[0].astype(np.int16) - colors[1])[paper].mean()) if paper.any() else 0.0)
        labels = segment_regions(np.minimum(lines[0], lines[1]), gap=1)
        sizes = np.bincount(labels.ravel())
        for label in np.flatnonzero(sizes >= 24)[1:] if len(sizes) > 1 else []:
            inside = labels == label
            medians = [np.median(rgb_to_lab(c[inside]), axis=0) for c in colors]
            self.regions += 1
            self.changed += int(np.sqrt(((medians[0] - medians[1]) ** 2).sum()) > CHANGED_DELTA_E)


def _file_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def quality_signals(rows: list[FrameRecord], reference: np.ndarray | None, storage_options: dict) -> QualitySignals:
    """Compare every colored frame of a shot with the frames around it, and measure flicker, region color changes
    and the off-palette share on sampled frame pairs.

    Args:
        rows: the shot's frames table rows, in frame order.
        reference: the keyframe (H, W, 3) uint8, or None when it cannot be read.
        storage_options: fsspec options.
    """
    done = [row for row in rows if row.status in (FrameStatus.WRITTEN, FrameStatus.RESUMED) and row.output]
    if len(done) < 2:
        return QualitySignals()
    palette = keyframe_palette(np.asarray(_thumbnail(reference, SIGNAL_SIDE))) if reference is not None else None
    pairs = _StillPairs(palette)
    sampled = {done[i].index for i in _evenly_spaced(len(done) - 1, SIGNAL_PAIRS)}  # each pair's first frame
    checker = ShotConsistency()
    names: dict[int, str] = {}
    flags = []
    previous: tuple[int, np.ndarray, np.ndarray] | None = None  # a sampled pair's first frame, reduced
    unread: list[Exception] = []
    for item in _read_ahead(done, storage_options):
        if isinstance(item, Exception):
            unread.append(item)
            continue
        row, lines, colors = item
        index = row.index
        try:
            flags += checker.add(index, lines, colors)
        except ValueError as error:  # colors of another size than the line art
            unread.append(error)
            continue
        names[index] = _file_name(row.output)
        reduced = None
        if index in sampled or (previous is not None and previous[0] == index - 1):
            reduced = (_ink_preserving_gray(lines, SIGNAL_SIDE), np.asarray(_thumbnail(colors, SIGNAL_SIDE)))
        if previous is not None and previous[0] == index - 1:
            pairs.add([previous[1], reduced[0]], [previous[2], reduced[1]])
        previous = (index, *reduced) if index in sampled else None
    flags += checker.finish()
    if unread:
        log.warning("quality signals: %d of %d frames could not be compared with their neighbours; the first: %s",
                    len(unread), len(done), unread[0])  # fmt: skip
    return QualitySignals(
        still_pairs=len(pairs.flicker),
        flicker=float(np.mean(pairs.flicker)) if pairs.flicker else 0.0,
        changed_regions=pairs.changed / pairs.regions if pairs.regions else 0.0,
        off_palette=pairs.off / pairs.painted if pairs.painted else 0.0,
        frames_checked=checker.compared,
        flagged=[FlaggedFrame(names[flag.index], flag.signal, flag.pixels) for flag in flags],
    )


def _shot_pictures(shot: ShotReport, rows: list[FrameRecord], reference: np.ndarray | None, folder: str, storage: dict):
    """Write the shot's keyframe thumbnail, thumbnail strip and contact sheet into the report folder."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in shot.name) or "shot"
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
    sheet = contact_sheet(f"{shot.name}: {shot.status}, {shot.written + shot.resumed}/{shot.frames} frames", labelled)
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
    shot = ShotReport(
        name=row.shot, status=row.status, frames=row.frames or planned_frames or 0, written=row.written,
        resumed=row.resumed, failed=row.failed, seconds=row.seconds, error=row.error, keyframe=row.keyframe,
        reference=located(row.reference, run_folder), output=located(row.output, run_folder),
        video=located(row.video, run_folder), worker=row.worker, gpu=row.gpu, weights_sha256=row.weights_sha256,
    )  # fmt: skip
    table_url = join_url(shot.output, FRAME_TABLE_NAME) if shot.output else ""
    rows = read_frames(table_url, storage) if table_url and url_exists(table_url, storage) else []
    rows = [replace(r, frame=located(r.frame, run_folder), output=located(r.output, run_folder))
            for r in sorted(rows, key=lambda r: r.index)]  # fmt: skip
    shot.frame_failures = [(r.frame, r.reason) for r in rows if r.status is FrameStatus.FAILED]
    if shot.video and not url_exists(shot.video, storage):
        shot.video = ""  # planned, never written (the shot failed)
    reference = None
    if shot.reference:
        try:
            reference = read_frame(shot.reference, storage)
        except (OSError, ValueError) as error:
            log.warning("report: cannot read keyframe %s: %s", shot.reference, error)
    _shot_pictures(shot, rows, reference, folder, storage)
    shot.signals = quality_signals(rows, reference, storage)
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
            shots.append(ShotReport(name=name, status="missing", frames=plan.frames, keyframe=plan.keyframe,
                                    output=plan.output, video=plan.video or ""))  # fmt: skip
    return shots, facts


_ORDER = {"failed": 0, "missing": 1, "partial": 2, "ok": 3}

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
.failed, .missing { color: #b00020; font-weight: bold; } .partial { color: #b26a00; font-weight: bold; }
.ok { color: #1b7a2c; } .shot { border-top: 1px solid #ddd; padding-top: 8px; margin-top: 16px; }
.shot img { vertical-align: top; margin-right: 12px; max-width: 100%; }
video { max-width: 480px; display: block; margin-top: 6px; }
.num { text-align: right; } table.flagged { margin-bottom: 8px; }
"""


_SIGNAL_MEANING = {
    "paint on paper": "paint where the frames near it have paper",
    "paper in paint": "paper where the frames near it have paint",
    "region color": "a paint region colored unlike its match in the frames before and after",
}


def _worker_html(worker: str) -> str:
    """ " on HOST", the Ray node (recorded as "HOST (node ID)") as its tooltip; a bare id as it is."""
    host, _, node = worker.partition(" (node ")
    if not host:
        return ""
    title = f' title="Ray node {html.escape(node.rstrip(")"))}"' if node else ""
    return f' on <span class="worker"{title}>{html.escape(host)}</span>'


def _flagged_html(q: QualitySignals) -> str:
    """Every flagged frame with its signal and size, or a line saying none was."""
    e = html.escape
    if not q.frames_checked:
        return "<p>frames not compared with the frames around them: fewer than three in a row could be read</p>"
    if not q.flagged:
        return f'<p class="ok">no frame flagged: {q.frames_checked} frames compared with the frames around them</p>'
    rows = "".join(f'<tr><td>{e(f.frame)}</td><td title="{e(_SIGNAL_MEANING.get(f.signal, ""))}">{e(f.signal)}</td>'
                   f'<td class="num">{f.pixels:,}</td></tr>' for f in q.flagged)  # fmt: skip
    return (f'<p class="partial">{q.flagged_frames} of {q.frames_checked} frames flagged: they disagree with the '
            'frames around them</p><table class="flagged"><tr><th>frame</th><th>signal</th><th>pixels</th></tr>'
            f"{rows}</table>")  # fmt: skip


def render(output: str, shots: list[ShotReport], facts: dict) -> str:
    """The report page's HTML."""
    e = html.escape
    shots = sorted(shots, key=lambda s: (_ORDER.get(s.status, 9), -s.signals.suspicion, s.name))
    counts = {status: sum(1 for s in shots if s.status == status) for status in _ORDER}
    frames = sum(s.written for s in shots)
    seconds = sum(s.seconds for s in shots)
    weights = sorted({s.weights_sha256 for s in shots if s.weights_sha256})
    spec, run = facts.get("spec", {}), facts.get("run", {})
    weights_name = (run.get("weights") or spec.get("weights") or "the shipped default").rsplit("/", 1)[-1]
    wall = f"{run['wall_seconds']:.1f} s, started {run.get('started', '?')}" if "wall_seconds" in run else "unknown"
    options = {k: spec[k] for k in ("resolution", "color_source", "fill", "palette_lock", "track", "chain",
                                     "guide_lines", "clean_lines", "precision", "weights") if k in spec}  # fmt: skip
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>inkpaint report: {e(spec.get('episode', output))}</title><style>{_STYLE}</style></head><body>",
        f"<h1>inkpaint report: {e(spec.get('episode', output))}</h1>",
        f"<p>Output: <code>{e(output)}</code></p>",
    ]
    if not shots:
        parts.append(f'<p class="failed">No results found in {e(output)}: nothing was run here yet, or the run '
                     "stopped before its first shot finished.</p></body></html>")  # fmt: skip
        return "\n".join(parts)
    parts += [
        '<table id="summary">',
        f'<tr><th>shots ok</th><td class="num" id="shots-ok">{counts["ok"]}</td></tr>',
        f'<tr><th>shots partial</th><td class="num" id="shots-partial">{counts["partial"]}</td></tr>',
        f'<tr><th>shots failed</th><td class="num" id="shots-failed">{counts["failed"]}</td></tr>',
        f'<tr><th>shots missing (planned, no result)</th><td class="num" id="shots-missing">{counts["missing"]}</td>'
        "</tr>",
        f'<tr><th>shots skipped by the last run (already complete)</th><td class="num" id="shots-skipped">'
        f"{len(run.get('skipped', []))}</td></tr>",
        f'<tr><th>frames colored</th><td class="num" id="frames">{frames}</td></tr>',
        f'<tr><th>wall time of the last run</th><td class="num" id="wall">{e(wall)}</td></tr>',
        f'<tr><th>worker time (all shots)</th><td class="num" id="seconds">{seconds:.1f} s</td></tr>',
        f'<tr><th>frames/s per worker</th><td class="num">{frames / seconds if seconds else 0:.2f}</td></tr>',
        f"<tr><th>weights</th><td><code>{e(weights_name)}</code> sha256 <code>{e(', '.join(weights) or 'unknown')}"
        "</code></td></tr>",
        f"<tr><th>options</th><td><code>{e(json.dumps(options))}</code></td></tr>",
        "</table>",
    ]
    troubled = [s for s in shots if s.status != "ok" or s.frame_failures]
    if troubled:
        parts.append('<h2>Failures</h2><ul id="failures">')
        for s in troubled:
            message = s.error or ("no result: the shot was planned but did not finish" if s.status == "missing"
                                  else f"{len(s.frame_failures)} frames failed")  # fmt: skip
            parts.append(f'<li><span class="{e(s.status)}">{e(s.name)}</span>: {e(message)}<ul>')
            parts += [f"<li><code>{e(frame)}</code>: {e(reason)}</li>" for frame, reason in s.frame_failures[:20]]
            parts.append("</ul></li>")
        parts.append("</ul>")
    parts.append("<h2>Shots, most likely wrong first</h2>")
    for s in shots:
        q = s.signals
        parts.append(f'<div class="shot" id="shot-{e(s.name)}"><h3><span class="{e(s.status)}">{e(s.status)}</span> '
                     f"{e(s.name)}</h3>")  # fmt: skip
        parts.append(
            f"<p>{s.written} colored, {s.resumed} already done, {s.failed} failed, of {s.frames} frames; "
            f"{s.seconds:.1f} s{_worker_html(s.worker)}{f' (GPU {e(s.gpu)})' if s.gpu else ''}; "
            f"keyframe {e(s.keyframe)}</p>"
        )
        if s.written + s.resumed:
            parts.append(_flagged_html(q))
        parts.append(
            f"<p>flicker {q.flicker:.2f} / 255 over {q.still_pairs} still frame pairs; regions that changed color "
            f"{q.changed_regions:.0%}; painted pixels off the keyframe's palette {q.off_palette:.0%}</p>"
        )
        images = [f'<img src="{e(name)}" alt="{e(alt)} of {e(s.name)}">' for name, alt in
                  ((s.key_thumb, "keyframe"), (s.strip, "line art and colored frames")) if name]  # fmt: skip
        if s.sheet:
            images.append(f'<a href="{e(s.sheet)}">contact sheet</a>')
        parts.append("<p>" + "".join(images) + "</p>")
        if s.video:
            parts.append(f'<video controls preload="metadata" src="{e(page_link(s.video, output))}"></video>')
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


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
