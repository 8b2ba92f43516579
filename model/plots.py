"""Training curves as a PNG, drawn with matplotlib: the losses and the validation PSNR/SSIM from ``metrics.jsonl``.

`inkpaint train` redraws ``training.png`` beside its checkpoints at every validation, so a run's progress can be
looked at from a file browser or a bucket's web view. The figure is built with matplotlib's object interface, not
pyplot: no global state and no display; a PNG is drawn by Agg whatever backend is configured.
"""

from __future__ import annotations

import json
from pathlib import Path

from matplotlib.figure import Figure

CHART_INCHES = (6.5, 3.0)  # width, height of one chart
DPI = 80
# One color per series of a chart, in order (matplotlib's default cycle, named so that a test can look for them).
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
# Each chart's title and the metrics.jsonl keys drawn in it: the training losses, then the validation scores.
CHARTS = (
    ("training losses", "train", ("l1", "adversarial", "total")),
    ("validation PSNR (dB)", "val", ("psnr",)),
    ("validation SSIM", "val", ("ssim",)),
)


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


def _series(records: list[dict], key: str) -> list[tuple[float, float]]:
    """The (step, value) points of one key, in step order; records without it are skipped."""
    return sorted((r["step"], r[key]) for r in records if isinstance(r.get(key), int | float) and "step" in r)


def training_figure(metrics: Path) -> Figure:
    """The losses (L1, adversarial, total) and the validation PSNR and SSIM of a run, one chart above the other."""
    records = dict(zip(("train", "val"), read_metrics(metrics), strict=True))
    figure = Figure(figsize=(CHART_INCHES[0], CHART_INCHES[1] * len(CHARTS)), dpi=DPI, layout="constrained")
    for axes, (title, kind, keys) in zip(figure.subplots(len(CHARTS), 1), CHARTS, strict=True):
        axes.set_title(title, loc="left")
        axes.set_xlabel("step")
        axes.grid(alpha=0.3)
        drawn = 0
        for color, key in zip(COLORS, keys, strict=False):
            points = _series(records[kind], key)
            if points:
                steps, values = zip(*points, strict=True)
                # Markers while the points are few enough to tell apart (a single one would draw no line at all).
                axes.plot(steps, values, color=color, linewidth=2, label=key, marker="o" if len(points) < 30 else "")
                drawn += 1
        if drawn:
            axes.legend(loc="best")
        else:
            axes.text(0.5, 0.5, "no data yet", color="#888", ha="center", va="center", transform=axes.transAxes)
    return figure


def write_training_plot(metrics: Path, destination: Path) -> None:
    """Draw `training_figure` to a PNG, atomically (a viewer never sees half a file)."""
    partial = destination.with_name(f".{destination.name}.partial")
    figure = training_figure(metrics)
    figure.savefig(partial, format="png")
    partial.replace(destination)
