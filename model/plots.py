"""Training curves as a PNG, drawn with Pillow: the losses and the validation PSNR/SSIM from ``metrics.jsonl``.

`inkpaint train` redraws ``training.png`` beside its checkpoints at every validation, so a run's progress can be
looked at from a file browser or a bucket's web view.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from PIL import Image, ImageDraw

PANEL = (520, 260)  # width, height of one chart
MARGIN = (56, 28, 16, 34)  # left, top, right, bottom
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


def read_metrics(path: Path) -> tuple[list[dict], list[dict]]:
    """(train records, validation records) of a metrics.jsonl; lines that are not JSON objects are skipped."""
    train, val = [], []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            (val if record.get("kind") == "val" else train).append(record)
    return train, val


def _nice_range(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if math.isclose(low, high):
        pad = abs(low) * 0.05 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.05
    return low - pad, high + pad


def draw_chart(title: str, series: dict[str, list[tuple[float, float]]]) -> Image.Image:
    """One chart: each named series of (step, value) points as a line, with axis ranges and a legend."""
    width, height = PANEL
    left, top, right, bottom = MARGIN
    image = Image.new("RGB", PANEL, "white")
    pen = ImageDraw.Draw(image)
    pen.text((left, 8), title, fill="black")
    points = [p for values in series.values() for p in values]
    pen.rectangle([left, top, width - right, height - bottom], outline="#888")
    if not points:
        pen.text((left + 10, top + 10), "no data yet", fill="#888")
        return image
    x_low, x_high = _nice_range([p[0] for p in points])
    y_low, y_high = _nice_range([p[1] for p in points])

    def place(step: float, value: float) -> tuple[float, float]:
        x = left + (step - x_low) / (x_high - x_low) * (width - left - right)
        y = height - bottom - (value - y_low) / (y_high - y_low) * (height - top - bottom)
        return x, y

    for fraction in (0.0, 0.5, 1.0):
        value = y_low + fraction * (y_high - y_low)
        _, y = place(x_low, value)
        pen.text((4, y - 6), f"{value:.3g}", fill="#444")
        step = x_low + fraction * (x_high - x_low)
        x, _ = place(step, y_low)
        pen.text((x - 12, height - bottom + 6), f"{step:.0f}", fill="#444")
    pen.text((width - right - 30, height - 14), "step", fill="#444")
    for number, (name, values) in enumerate(series.items()):
        color = COLORS[number % len(COLORS)]
        line = [place(step, value) for step, value in sorted(values)]
        if len(line) > 1:
            pen.line(line, fill=color, width=2)
        for x, y in line if len(line) < 30 else []:
            pen.ellipse([x - 2, y - 2, x + 2, y + 2], fill=color)
        pen.text((left + 8 + 110 * number, top + 4), name, fill=color)
    return image


def training_figure(metrics: Path) -> Image.Image:
    """The losses (L1, adversarial, total) and the validation PSNR and SSIM of a run, stacked."""
    train, val = read_metrics(metrics)

    def series(records: list[dict], key: str) -> list[tuple[float, float]]:
        return [(r["step"], r[key]) for r in records if isinstance(r.get(key), int | float) and "step" in r]

    charts = [
        draw_chart("training losses", {k: series(train, k) for k in ("l1", "adversarial", "total")}),
        draw_chart("validation PSNR (dB)", {"psnr": series(val, "psnr")}),
        draw_chart("validation SSIM", {"ssim": series(val, "ssim")}),
    ]
    figure = Image.new("RGB", (PANEL[0], PANEL[1] * len(charts)), "white")
    for index, chart in enumerate(charts):
        figure.paste(chart, (0, index * PANEL[1]))
    return figure


def write_training_plot(metrics: Path, destination: Path) -> None:
    """Draw `training_figure` to a PNG, atomically (a viewer never sees half a file)."""
    partial = destination.with_name(f".{destination.name}.partial")
    training_figure(metrics).save(partial, format="PNG")
    partial.replace(destination)
