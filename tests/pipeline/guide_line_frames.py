"""A small line-art frame with a colored guide line, for the line-art and composite tests."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

SIZE = 96
RED = (230, 20, 30)


def line_frame(guide: tuple[int, int, int] | None = RED, offset: int = 0) -> np.ndarray:
    """(SIZE, SIZE, 3) anti-aliased line art: a black box, split across its middle by a 3-px colored guide line
    (or, with guide None, by nothing), moved right by `offset` pixels."""
    scale = 4
    image = Image.new("RGB", (SIZE * scale, SIZE * scale), "white")
    pen = ImageDraw.Draw(image)
    left, right = (12 + offset) * scale, (70 + offset) * scale
    if guide is not None:
        pen.line([left, 47.5 * scale, right, 47.5 * scale], fill=guide, width=3 * scale)
    pen.rectangle([left, 12 * scale, right, 84 * scale], outline=(0, 0, 0), width=3 * scale)
    return np.array(image.resize((SIZE, SIZE), Image.Resampling.BOX))
