"""What `inkpaint eval --shots` shows (`jobs.shot_eval`): its scores as Markdown tables, and as an HTML page with
strips of frames."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jobs.pages import render_page
from jobs.shot_eval import KEYFRAME_BASELINE, CaseResult, ShotEvalResult
from pipeline.outputs import write_frame


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1) -> str:
    """A pipe table whose columns are padded to line up; columns from `numeric_from` on are right-aligned."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [cell.rjust(width) if column >= numeric_from else cell.ljust(width)
                  for column, (cell, width) in enumerate(zip(cells, widths, strict=True))]  # fmt: skip
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (width - 1) + ":" if column >= numeric_from else "-" * width for column, width in enumerate(widths)]
    return "\n".join([line(header), line(rule), *(line(row) for row in rows)])


def _number(value: float | None, digits: int, signed: bool = False) -> str:
    if value is None or value != value:  # NaN: nothing to compare with
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


SUMMARY_HEADER = ("variant", "shots", "PSNR (dB)", f"vs {KEYFRAME_BASELINE} (dB)", "SSIM", "temporal error")


def summary_rows(result: ShotEvalResult) -> list[list[str]]:
    """The overall table's rows: variant, shots, PSNR, PSNR gain, SSIM, temporal error."""
    rows = []
    for variant in result.variants:
        summary = result.summary(variant.name)
        if summary is None:
            rows.append([variant.name, "0", "failed", "failed", "failed", "failed"])
            continue
        gain = None if variant.name == KEYFRAME_BASELINE else summary.psnr_gain
        rows.append([variant.name, str(summary.shots), _number(summary.psnr, 2), _number(gain, 2, signed=True),
                     _number(summary.ssim, 4), _number(summary.temporal_error, 2)])  # fmt: skip
    return rows


def format_tables(result: ShotEvalResult) -> str:
    """The evaluation as plain Markdown: the title, one row per variant, the PSNR of every shot under every
    variant, the SSIM and temporal error of every shot (the shown variant beside keyframe-under-lines), and the
    failures."""
    parts = [result.title, "", markdown_table(SUMMARY_HEADER, summary_rows(result))]

    def cell(case: CaseResult, variant: str, value: str) -> str:
        if variant in case.failures:
            return "failed"
        score = case.scores.get(variant)
        return "n/a" if score is None else _number(getattr(score, value), 4 if value == "ssim" else 2)

    # Baselines get short column names here so that all nine variants fit in 120 columns.
    short = {KEYFRAME_BASELINE: "keyframe", "lines-on-white": "lines"}
    names = [variant.name for variant in result.variants]
    psnr_rows = [[case.name, *(cell(case, name, "psnr") for name in names)] for case in result.scored]
    parts += ["", "PSNR (dB) per shot:", "", markdown_table(["shot", *(short.get(n, n) for n in names)], psnr_rows)]

    detail = [KEYFRAME_BASELINE] + ([result.shown] if result.shown != KEYFRAME_BASELINE else [])
    header = ["shot", "frames", "size"]
    for name in detail:
        header += [f"SSIM {short.get(name, name)}", f"temporal {short.get(name, name)}"]
    rows = []
    for case in result.scored:
        row = [case.name, str(case.frames), f"{case.size[0]}x{case.size[1]}"]
        for name in detail:
            row += [cell(case, name, "ssim"), cell(case, name, "temporal_error")]
        rows.append(row)
    parts += ["", "SSIM and temporal error per shot:", "", markdown_table(header, rows)]

    if result.failed:
        parts += ["", f"Failed ({len(result.failed)} of {len(result.cases)} shots):", ""]
        for case in result.failed:
            if case.error is not None:
                parts.append(f"- {case.name}: {case.error}")
            parts += [f"- {case.name} / {variant}: {reason}" for variant, reason in case.failures.items()]
    return "\n".join(parts)


def write_html(result: ShotEvalResult, folder: str | Path) -> Path:
    """Write folder/index.html, the tables and, for every shot, strips of its first, middle and last target frames
    (keyframe, line art, the shown variant, truth) as PNGs beside it. Returns the page's path."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    shots = []
    for number, case in enumerate(result.scored, start=1):
        strips = []
        for strip in case.strips:
            name = f"shot{number:03d}-frame{strip.frame:04d}.png"
            write_frame(strip.image, str(root / name))
            caption = f"{result.shown} {strip.psnr:.2f} dB, SSIM {strip.ssim:.4f}"
            strips.append({"src": name, "frame": strip.frame, "caption": caption})
        rows = []
        for variant in result.variants:
            score = case.scores.get(variant.name)
            values = ([_number(score.psnr, 2), _number(score.ssim, 4), _number(score.temporal_error, 2)] if score
                      else [case.failures.get(variant.name, "n/a")] * 3)  # fmt: skip
            rows.append([variant.name, *values])
        shots.append({"name": case.name, "frames": case.frames, "size": f"{case.size[0]}x{case.size[1]}",
                      "kind": case.kind, "rows": rows, "strips": strips})  # fmt: skip
    failures = [(case.name, case.error) for case in result.failed if case.error is not None]
    failures += [(f"{case.name} / {variant}", reason) for case in result.failed
                 for variant, reason in case.failures.items()]  # fmt: skip
    page = render_page(
        "shot_eval.html.j2",
        title=result.title,
        summary_header=SUMMARY_HEADER,
        summary=summary_rows(result),
        failures=failures,
        shown=result.shown,
        shots=shots,
    )
    path = root / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
