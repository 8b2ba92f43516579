"""The morning report: one static HTML page per run, with its pictures beside it, for a lead to review a batch.

`write_report(OUT)` reads what a run left in OUT (the results rows in ``inkpaint-results/``, the plan of an episode,
each shot's frames table) and writes ``OUT/inkpaint-report/index.html`` with, beside it, a keyframe thumbnail, a
strip of line-art and colored thumbnails and a contact sheet (PNG, for chat and email) per shot. The page needs no
server and no script: it opens from a disk or a bucket's web view. Everything taken from a run (shot names, paths,
messages) is HTML-escaped.

On top: shots done, failed and missing, frames, time, weights, options; then the failures with their messages and
files; then every shot, those most likely wrong first. Without ground truth, "likely wrong" is measured on a sample
of consecutive frame pairs whose line art barely moved (`quality_signals`): how much the colors changed anyway
(flicker), the share of paint regions whose color changed, and the share of painted pixels whose color is not in
the keyframe's palette.
"""

from __future__ import annotations

import html
import json
import logging
import math
from dataclasses import dataclass, field

import fsspec
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from jobs.manifest import (
    FRAME_TABLE_NAME,
    PLAN_TABLE_NAME,
    RUN_RECORD_NAME,
    SPEC_COPY_NAME,
    read_results,
    read_rows,
    url_exists,
)
from pipeline.colorize import join_url
from pipeline.frames import read_frame, rgb_to_gray, write_bytes_atomic
from pipeline.png import encode_png
from pipeline.regions import keyframe_palette, nearest_in_palette, rgb_to_lab, segment_regions

log = logging.getLogger(__name__)

REPORT_FOLDER = "inkpaint-report"
THUMB = 192  # long side of a thumbnail, pixels
STRIP_FRAMES = 8  # thumbnails per shot, first and last included
SIGNAL_PAIRS = 12  # consecutive frame pairs sampled per shot for the quality signals
SIGNAL_SIDE = 384  # long side the signals are measured at
STILL_LINES = 3.0  # mean gray difference (0-255) under which two frames' line art "barely moved"
CHANGED_DELTA_E = 10.0  # a region whose median color moved further than this (CIE76) changed color
OFF_PALETTE_DELTA_E = 10.0  # a painted pixel further than this from every keyframe color is off the palette


@dataclass
class QualitySignals:
    """What a shot's output says about itself without ground truth (all 0 when nothing could be measured).

    Args:
        still_pairs: sampled consecutive frame pairs whose line art barely moved.
        flicker: mean color change (0-255) over those pairs, where the drawing did not move.
        changed_regions: share (0-1) of the paint regions of those pairs whose color changed.
        off_palette: share (0-1) of painted pixels of the sampled frames whose color is not in the keyframe.
    """

    still_pairs: int = 0
    flicker: float = 0.0
    changed_regions: float = 0.0
    off_palette: float = 0.0

    @property
    def suspicion(self) -> float:
        """One number to sort shots by, most likely wrong first."""
        return self.flicker / 10 + self.changed_regions + self.off_palette


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


def quality_signals(rows: list[dict], reference: np.ndarray | None, storage_options: dict) -> QualitySignals:
    """Measure a shot's flicker, region color changes and off-palette share on sampled frame pairs.

    Args:
        rows: the shot's frames table rows, in frame order.
        reference: the keyframe (H, W, 3) uint8, or None when it cannot be read.
        storage_options: fsspec options.
    """
    done = [row for row in rows if row["status"] in ("written", "resumed") and row["output"]]
    if len(done) < 2:
        return QualitySignals()
    palette = keyframe_palette(np.asarray(_thumbnail(reference, SIGNAL_SIDE))) if reference is not None else None
    flicker, changed, regions, off, painted, still = [], 0, 0, 0, 0, 0
    for start in _evenly_spaced(len(done) - 1, SIGNAL_PAIRS):
        pair = done[start : start + 2]
        if pair[1]["index"] != pair[0]["index"] + 1:
            continue  # a failed frame between them: not consecutive
        try:
            lines = [_ink_preserving_gray(read_frame(r["frame"], storage_options), SIGNAL_SIDE) for r in pair]
            colors = [np.asarray(_thumbnail(read_frame(r["output"], storage_options), SIGNAL_SIDE)) for r in pair]
        except (OSError, ValueError) as error:
            log.warning("quality signals: skipped a frame pair of %s: %s", pair[0]["output"], error)
            continue
        if lines[0].shape != lines[1].shape or colors[0].shape[:2] != lines[0].shape:
            continue
        paper = (lines[0] >= 200) & (lines[1] >= 200)
        if palette is not None and len(palette) and paper.any():
            lab = rgb_to_lab(colors[0][paper])
            nearest = rgb_to_lab(nearest_in_palette(lab, palette))
            off += int((np.sqrt(((lab - nearest) ** 2).sum(axis=1)) > OFF_PALETTE_DELTA_E).sum())
            painted += int(paper.sum())
        if np.abs(lines[0].astype(np.int16) - lines[1]).mean() > STILL_LINES:
            continue
        still += 1
        flicker.append(float(np.abs(colors[0].astype(np.int16) - colors[1])[paper].mean()) if paper.any() else 0.0)
        labels = segment_regions(np.minimum(lines[0], lines[1]), gap=1)
        sizes = np.bincount(labels.ravel())
        for label in np.flatnonzero(sizes >= 24)[1:] if len(sizes) > 1 else []:
            inside = labels == label
            medians = [np.median(rgb_to_lab(c[inside]), axis=0) for c in colors]
            regions += 1
            changed += int(np.sqrt(((medians[0] - medians[1]) ** 2).sum()) > CHANGED_DELTA_E)
    return QualitySignals(
        still_pairs=still,
        flicker=float(np.mean(flicker)) if flicker else 0.0,
        changed_regions=changed / regions if regions else 0.0,
        off_palette=off / painted if painted else 0.0,
    )


def _shot_pictures(shot: ShotReport, rows: list[dict], reference: np.ndarray | None, folder: str, storage: dict):
    """Write the shot's keyframe thumbnail, thumbnail strip and contact sheet into the report folder."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in shot.name) or "shot"
    done = [row for row in rows if row["status"] in ("written", "resumed") and row["output"]]
    picks = [done[i] for i in _evenly_spaced(len(done), STRIP_FRAMES)]
    tiles: list[tuple[Image.Image, Image.Image]] = []
    for row in picks:
        try:
            line = _thumbnail(read_frame(row["frame"], storage))
            colored = _thumbnail(read_frame(row["output"], storage))
        except (OSError, ValueError) as error:
            log.warning("report: no thumbnail of %s: %s", row["output"], error)
            continue
        tiles.append((line, colored))
    key = _thumbnail(reference) if reference is not None else None
    if key is not None:
        shot.key_thumb = f"{safe}-key.png"
        write_bytes_atomic(encode_png(np.asarray(key)), join_url(folder, shot.key_thumb), storage)
    if not tiles:
        return
    width = sum(max(line.width, colored.width) for line, colored in tiles) + 4 * (len(tiles) - 1)
    height = max(line.height for line, _ in tiles) + max(colored.height for _, colored in tiles) + 4
    strip = Image.new("RGB", (width, height), "white")
    x = 0
    top = max(line.height for line, _ in tiles)
    for line, colored in tiles:
        strip.paste(line, (x, 0))
        strip.paste(colored, (x, top + 4))
        x += max(line.width, colored.width) + 4
    shot.strip = f"{safe}-strip.png"
    write_bytes_atomic(encode_png(np.asarray(strip)), join_url(folder, shot.strip), storage)
    sheet_tiles = ([key] if key is not None else []) + [colored for _, colored in tiles]
    columns = 3
    rows_count = math.ceil(len(sheet_tiles) / columns)
    sheet = Image.new("RGB", (columns * (THUMB + 8), rows_count * (THUMB + 24) + 28), "white")
    pen = ImageDraw.Draw(sheet)
    pen.text((6, 6), f"{shot.name}: {shot.status}, {shot.written + shot.resumed}/{shot.frames} frames", fill="black")
    for i, tile in enumerate(sheet_tiles):
        cx, cy = (i % columns) * (THUMB + 8) + 4, (i // columns) * (THUMB + 24) + 28
        sheet.paste(tile, (cx, cy))
        label = "keyframe" if key is not None and i == 0 else f"frame {i if key is not None else i + 1}"
        pen.text((cx, cy + tile.height + 2), label, fill="black")
    shot.sheet = f"{safe}-sheet.png"
    write_bytes_atomic(encode_png(np.asarray(sheet)), join_url(folder, shot.sheet), storage)


def _shot_report(row: dict, planned_frames: int | None, folder: str, storage: dict) -> ShotReport:
    shot = ShotReport(
        name=row["shot"], status=row["status"], frames=row["frames"] or planned_frames or 0, written=row["written"],
        resumed=row["resumed"], failed=row["failed"], seconds=row["seconds"] or 0.0, error=row["error"] or "",
        keyframe=row["keyframe"] or "", reference=row.get("reference") or "", output=row["output"] or "",
        video=row["video"] or "", worker=row["worker"] or "", gpu=row["gpu"] or "",
        weights_sha256=row.get("weights_sha256") or "",
    )  # fmt: skip
    table_url = join_url(shot.output, FRAME_TABLE_NAME) if shot.output else ""
    rows = read_rows(table_url, storage) if table_url and url_exists(table_url, storage) else []
    rows.sort(key=lambda r: r["index"])
    shot.frame_failures = [(r["frame"], r["reason"]) for r in rows if r["status"] == "failed"]
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


def _relative(url: str, base: str) -> str:
    """`url` as the report page (in `base`/REPORT_FOLDER) links it: relative when under `base`, else as is."""
    prefix = base.rstrip("/") + "/"
    return "../" + url[len(prefix) :] if url.startswith(prefix) else url


def gather(output: str, storage_options: dict | None = None) -> tuple[list[ShotReport], dict]:
    """Every shot of the run in OUT (with the missing ones of a plan) and the run's facts for the summary."""
    storage = storage_options or {}
    folder = join_url(output, REPORT_FOLDER)
    results = read_results(output, storage)
    planned: dict[str, dict] = {}
    plan_url = join_url(output, PLAN_TABLE_NAME)
    if url_exists(plan_url, storage):
        planned = {row["shot"]: row for row in read_rows(plan_url, storage)}
    facts: dict = {}
    for key, name in (("spec", SPEC_COPY_NAME), ("run", RUN_RECORD_NAME)):
        url = join_url(output, name)
        if url_exists(url, storage):
            with fsspec.open(url, "rt", **storage) as handle:
                facts[key] = json.load(handle)
    shots = [_shot_report(row, planned.get(name, {}).get("frames"), folder, storage) for name, row in results.items()]
    for name, plan in planned.items():
        if name not in results:
            shots.append(ShotReport(name=name, status="missing", frames=plan["frames"], keyframe=plan["keyframe"],
                                    output=plan["output"], video=plan["video"] or ""))  # fmt: skip
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
.num { text-align: right; }
"""


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
            f"{s.seconds:.1f} s{f' on {e(s.worker)}' if s.worker else ''}{f' (GPU {e(s.gpu)})' if s.gpu else ''}; "
            f"keyframe {e(s.keyframe)}</p>"
        )
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
            parts.append(f'<video controls preload="metadata" src="{e(_relative(s.video, output))}"></video>')
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
