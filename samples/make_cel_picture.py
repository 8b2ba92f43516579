"""Draw docs/sample-cel.png: one frame of the bundled sample colored as a cel on transparent paper, shown over a
checkerboard (the way a compositing program shows transparency) beside its line art and its paint and lines layers.

    python samples/make_cel_picture.py            # writes docs/sample-cel.png

The frame is colored by `pipeline.api.colorize_folder` with `paper="transparent", layers=True`, exactly as
`colorize-shot --paper transparent --layers` colors it. The drawing is OpenMoji 1F64B-1F3FD (CC BY-SA 4.0); the
picture is derived from it and shared under the same license.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pipeline.api import colorize_folder

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "wave"
FRAME = "frame7.png"
CHECKER = 12  # pixels per checkerboard square
LIGHT, DARK = (235, 235, 235), (190, 190, 190)
LABEL_HEIGHT = 22


def checkerboard(width: int, height: int) -> Image.Image:
    """An RGB checkerboard of CHECKER-pixel squares."""
    rows, cols = np.indices((height, width)) // CHECKER
    light = ((rows + cols) % 2 == 0)[..., None]
    return Image.fromarray(np.where(light, np.array(LIGHT, np.uint8), np.array(DARK, np.uint8)))


def over_checkerboard(rgba: Image.Image) -> Image.Image:
    """An RGBA image alpha-composited over a checkerboard: its transparent parts show the squares."""
    board = checkerboard(*rgba.size).convert("RGBA")
    return Image.alpha_composite(board, rgba).convert("RGB")


def labelled(panels: list[tuple[str, Image.Image]]) -> Image.Image:
    """The panels side by side, each with its label above it, on white."""
    width = sum(image.width for _, image in panels)
    height = max(image.height for _, image in panels) + LABEL_HEIGHT
    sheet = Image.new("RGB", (width, height), "white")
    pen = ImageDraw.Draw(sheet)
    left = 0
    for label, image in panels:
        pen.text((left + 6, 5), label, fill=(0, 0, 0))
        sheet.paste(image, (left, LABEL_HEIGHT))
        left += image.width
    return sheet


def make_picture(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="inkpaint-cel-") as folder:
        result = colorize_folder(str(SAMPLE / "frames"), str(SAMPLE / "key.png"), folder, paper="transparent",
                                 layers=True)  # fmt: skip
        if result.status != "ok":
            raise RuntimeError(result.summary())
        cel = Image.open(Path(folder) / FRAME).convert("RGBA")
        paint = Image.open(Path(folder) / "paint" / FRAME).convert("RGBA")
        lines = Image.open(Path(folder) / "lines" / FRAME).convert("RGBA")
        panels = [
            ("line art", Image.open(SAMPLE / "frames" / FRAME).convert("RGB")),
            ("cel (transparent paper)", over_checkerboard(cel)),
            ("paint layer", over_checkerboard(paint)),
            ("lines layer", over_checkerboard(lines)),
        ]
        out.parent.mkdir(parents=True, exist_ok=True)
        labelled(panels).save(out, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "sample-cel.png")
    make_picture(parser.parse_args().out)


if __name__ == "__main__":
    main()
