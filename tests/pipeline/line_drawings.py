"""Small line-art frames drawn in code for the paint-region tests: a line with a hole, a boxed frame, a walled
pocket."""

from __future__ import annotations

import numpy as np

RED = (255, 0, 0)
BLUE = (0, 0, 255)


def split_line(gap_px: int, height: int = 40, width: int = 40) -> np.ndarray:
    """Paper split top to bottom by a 2-px vertical line with a hole of `gap_px` rows in the middle."""
    lines = np.full((height, width), 255, dtype=np.uint8)
    lines[:, 19:21] = 0
    top = height // 2 - gap_px // 2
    lines[top : top + gap_px, 19:21] = 255
    return lines


def boxed(height: int = 40, width: int = 40) -> np.ndarray:
    """A frame with a 2-px border of ink: one region inside."""
    lines = np.full((height, width), 255, dtype=np.uint8)
    lines[:2], lines[-2:], lines[:, :2], lines[:, -2:] = 0, 0, 0, 0
    return lines


def pocket_with_opening(opening: int) -> np.ndarray:
    """A 120x120 boxed frame holding a 40x40 pocket walled on three sides, its top wall open `opening` px wide."""
    lines = boxed(120, 120)
    lines[40:82, 40:42] = lines[40:82, 80:82] = lines[80:82, 40:82] = 0  # left, right and bottom walls
    lines[40:42, 40:82] = 0
    middle = 61
    lines[40:42, middle - opening // 2 : middle - opening // 2 + opening] = 255
    return lines


def region_count(labels: np.ndarray) -> int:
    return len(np.unique(labels[labels > 0]))
