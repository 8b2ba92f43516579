"""Training curves drawn from metrics.jsonl."""

from __future__ import annotations

import json

import numpy as np
from PIL import ImageColor

from model.plots import COLORS, PANEL, training_figure, write_training_plot


def panel_has(figure, panel: int, color: str) -> int:
    """Pixels of exactly `color` in chart number `panel` of a stacked figure."""
    pixels = np.asarray(figure)[panel * PANEL[1] : (panel + 1) * PANEL[1]]
    return int((pixels == ImageColor.getrgb(color)).all(axis=2).sum())


def test_losses_and_validation_are_drawn_in_their_own_charts(tmp_path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    lines = [{"kind": "train", "step": s, "l1": 0.1 / s, "adversarial": 0.25, "total": 3 / s} for s in range(1, 40)]
    lines += [{"kind": "val", "step": s, "psnr": 20 + s / 10, "ssim": 0.9} for s in (10, 20, 30)]
    metrics.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json\n")
    figure = training_figure(metrics)
    assert figure.size == (PANEL[0], 3 * PANEL[1])
    assert all(panel_has(figure, 0, color) > 50 for color in COLORS[:3])  # l1, adversarial, total
    assert panel_has(figure, 1, COLORS[0]) > 50 and panel_has(figure, 1, COLORS[1]) == 0  # psnr alone
    assert panel_has(figure, 2, COLORS[0]) > 20  # ssim, constant: still a visible line
    write_training_plot(metrics, tmp_path / "training.png")
    assert (tmp_path / "training.png").stat().st_size > 1000 and not list(tmp_path.glob(".*partial"))


def test_an_empty_log_draws_empty_charts(tmp_path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("")
    figure = training_figure(metrics)
    assert all(panel_has(figure, panel, color) == 0 for panel in range(3) for color in COLORS)
