"""A tiny synthetic shot whose right colors are known: four closed paint regions in a cross of ink, over five
frames. Test modules import it: tests/pipeline/test_quality.py scores against it, and so does the shot-quality
benchmark's test."""

from __future__ import annotations

import numpy as np

from pipeline import quality

SIZE = 24
RED, GREEN, BLUE, YELLOW = (220, 40, 40), (40, 180, 60), (40, 70, 200), (240, 220, 50)


def four_panel_lines() -> np.ndarray:
    """(H, W) line art: a border and a cross of 2-pixel ink, leaving four closed 10 x 10 paint regions."""
    lines = np.full((SIZE, SIZE), 255, np.uint8)
    lines[:1], lines[-1:], lines[:, :1], lines[:, -1:] = 0, 0, 0, 0
    lines[11:13], lines[:, 11:13] = 0, 0
    return lines


def four_panel_colors(lines: np.ndarray, colors: tuple = (RED, GREEN, BLUE, YELLOW)) -> np.ndarray:
    """(H, W, 3) true colors of `four_panel_lines`: one color per quadrant, black ink."""
    rgb = np.zeros((SIZE, SIZE, 3), np.uint8)
    half = SIZE // 2
    for color, (rows, cols) in zip(colors, [(slice(0, half), slice(0, half)), (slice(0, half), slice(half, SIZE)),
                                            (slice(half, SIZE), slice(0, half)),
                                            (slice(half, SIZE), slice(half, SIZE))], strict=True):  # fmt: skip
        rgb[rows, cols] = color
    rgb[lines == 0] = 0
    return rgb


def four_panel_shot() -> tuple[np.ndarray, np.ndarray, list[quality.FrameRegions]]:
    """A 5-frame true shot: lines (T, H, W), colors (T, H, W, 3), scored regions of frames 1..4."""
    lines = np.stack([four_panel_lines()] * 5)
    colors = np.stack([four_panel_colors(lines[0])] * 5)
    colors[3:, 1:11, 1:11] = (200, 60, 160)  # the top-left region turns magenta halfway: the truth changes too
    regions = [quality.truth_regions(colors[t], lines[t]) for t in range(1, 5)]
    return lines, colors, regions
