"""Training curves drawn from metrics.jsonl."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image, ImageColor

from model.plots import COLORS, training_figure, write_training_plot


def drawn(axes) -> dict[str, list[tuple[float, float]]]:
    """The series a chart shows: label -> its (step, value) points."""
    return {line.get_label(): [tuple(point) for point in line.get_xydata()] for line in axes.get_lines()}


def pixels_of(image: np.ndarray, color: str) -> int:
    """Pixels of exactly `color` in an (H, W, 3) picture."""
    return int((image[..., :3] == ImageColor.getrgb(color)).all(axis=2).sum())


def test_losses_and_validation_are_drawn_in_their_own_charts(tmp_path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    lines = [{"kind": "train", "step": s, "l1": 0.1 / s, "adversarial": 0.25, "total": 3 / s} for s in range(1, 40)]
    lines += [{"kind": "val", "step": s, "psnr": 20 + s / 10, "ssim": 0.9} for s in (30, 10, 20)]
    metrics.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json\n")
    losses, psnr, ssim = training_figure(metrics).axes
    assert set(drawn(losses)) == {"l1", "adversarial", "total"}
    assert drawn(losses)["total"][:2] == [(1, 3.0), (2, 1.5)] and len(drawn(losses)["l1"]) == 39
    assert drawn(psnr) == {"psnr": [(10, 21.0), (20, 22.0), (30, 23.0)]}  # in step order, alone in its chart
    assert drawn(ssim) == {"ssim": [(10, 0.9), (20, 0.9), (30, 0.9)]}
    assert [axes.get_title(loc="left") for axes in (losses, psnr, ssim)] == [
        "training losses", "validation PSNR (dB)", "validation SSIM"]  # fmt: skip

    write_training_plot(metrics, tmp_path / "training.png")
    assert not list(tmp_path.glob(".*partial"))
    picture = np.asarray(Image.open(tmp_path / "training.png").convert("RGB"))
    top, middle, bottom = np.array_split(picture, 3)
    assert all(pixels_of(top, color) > 50 for color in COLORS[:3])  # l1, adversarial, total
    assert pixels_of(middle, COLORS[0]) > 50 and pixels_of(middle, COLORS[1]) == 0  # psnr alone
    assert pixels_of(bottom, COLORS[0]) > 50  # ssim, constant: still a visible line


def test_an_empty_log_draws_empty_charts_that_say_so(tmp_path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("")
    figure = training_figure(metrics)
    assert len(figure.axes) == 3 and not any(axes.get_lines() for axes in figure.axes)
    assert all([text.get_text() for text in axes.texts] == ["no data yet"] for axes in figure.axes)
    write_training_plot(metrics, tmp_path / "training.png")
    picture = np.asarray(Image.open(tmp_path / "training.png").convert("RGB"))
    assert all(pixels_of(picture, color) == 0 for color in COLORS)
