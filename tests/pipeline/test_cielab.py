from __future__ import annotations

import numpy as np

from pipeline.cielab import lab_to_rgb, rgb_to_lab
from tests.pipeline.line_drawings import BLUE, RED


def test_known_lab_values() -> None:
    rgb = np.array([[255, 255, 255], RED, BLUE, [0, 0, 0]], dtype=np.uint8)
    expected = np.array([[100, 0, 0], [53.24, 80.09, 67.20], [32.30, 79.19, -107.86], [0, 0, 0]])
    np.testing.assert_allclose(rgb_to_lab(rgb), expected, atol=0.02)
    np.testing.assert_array_equal(lab_to_rgb(rgb_to_lab(rgb)), rgb)
