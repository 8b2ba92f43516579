"""Write the bundled sample shot: an OpenMoji drawing animated over 12 frames, with its keyframe and ground truth.

    python samples/make_sample.py            # writes samples/wave/

The output folder holds ``frames/frame1.png ..`` (line art only, grayscale), ``key.png`` (frame 1 colored: the
keyframe a colorist would paint), ``truth/frame1.png ..`` (every frame colored, for scoring) and ``ATTRIBUTION.txt``.
Frame names are 1-based without zero padding on purpose, so that a reader has to sort them naturally.
"""

from __future__ import annotations

import argparse
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image

from model.data import OPENMOJI_VERSION, openmoji_svg_dir
from model.synthetic_shots import Motion, render_openmoji_shot

# "person raising hand: medium skin tone": a waving character in flat skin, hair and shirt colors. It falls in the
# OpenMoji "test" split (model.data.split_of), so the shipped weights never trained on it or its skin-tone variants.
DEFAULT_DRAWING = "1F64B-1F3FD"
# A gentle pan up and to the right, a slow turn, a slight zoom and a small bob: the kind of motion a colorizer must
# follow from the keyframe. The drawing sits low enough that the frame's bottom edge always cuts the shirt, as a
# character's body is cut in a real shot (the drawing's own shirt ends in a fill with no line under it).
SAMPLE_MOTION = Motion(
    translate_start=(-0.05, 0.2),
    translate_end=(0.05, 0.17),
    rotate_start=-6.0,
    rotate_end=6.0,
    scale_start=1.0,
    scale_end=1.06,
    bob=0.012,
    bob_period=6.0,
)


def describe_drawing(stem: str) -> str:
    """Codepoints and Unicode names of an OpenMoji file stem, e.g. "U+1F64B U+1F3FD (HAPPY PERSON ..., ...)"."""
    chars = [chr(int(part, 16)) for part in stem.split("-")]
    codepoints = " ".join(f"U+{ord(char):04X}" for char in chars)
    names = ", ".join(unicodedata.name(char, "unnamed") for char in chars)
    return f"{codepoints} ({names})"


def attribution_text(stem: str) -> str:
    """The ATTRIBUTION.txt of a sample made from the OpenMoji drawing `stem`."""
    return f"""\
Source: OpenMoji {OPENMOJI_VERSION} (https://openmoji.org), by the OpenMoji contributors.
Drawing: {stem}.svg, emoji {describe_drawing(stem)}.
License of the drawing: Creative Commons Attribution-ShareAlike 4.0 International (CC BY-SA 4.0),
https://creativecommons.org/licenses/by-sa/4.0/

Changes: the drawing was animated (moved, rotated, scaled and bobbed over the frames by samples/make_sample.py in
inkpaint), its black line layer (<g id="line">) was rendered on its own as the line-art frames, and the full drawing
was rendered as the colored keyframe (key.png) and ground truth (truth/).

These derived images are shared under the same license, CC BY-SA 4.0.
"""


def save_png(array: np.ndarray, path: Path) -> None:
    """Write a uint8 array (H, W) as grayscale or (H, W, 3) as RGB, optimized for size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, optimize=True)


def clear_frames(folder: Path) -> None:
    """Remove frames from an earlier run, so that a shorter shot leaves no stale frames behind."""
    for path in folder.glob("frame*.png"):
        path.unlink()


def make_sample(out: Path, drawing: str, frames: int, width: int, height: int) -> None:
    """Render the shot and write frames/, truth/, key.png and ATTRIBUTION.txt under `out`.

    Args:
        out: the sample folder.
        drawing: OpenMoji file stem.
        frames: number of frames.
        width: frame width in pixels.
        height: frame height in pixels.
    """
    svg = openmoji_svg_dir() / f"{drawing}.svg"
    if not svg.exists():
        msg = f"no OpenMoji drawing {drawing!r}: {svg} does not exist"
        raise SystemExit(msg)
    shot = render_openmoji_shot(svg, frames=frames, width=width, height=height, motion=SAMPLE_MOTION)
    for folder in (out / "frames", out / "truth"):
        clear_frames(folder)
    for index, (line, color) in enumerate(zip(shot.line, shot.color, strict=True), start=1):
        save_png(line, out / "frames" / f"frame{index}.png")
        save_png(color, out / "truth" / f"frame{index}.png")
    save_png(shot.color[0], out / "key.png")
    (out / "ATTRIBUTION.txt").write_text(attribution_text(drawing), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "wave", help="output folder")
    parser.add_argument("--drawing", default=DEFAULT_DRAWING, help="OpenMoji file stem (codepoints)")
    parser.add_argument("--frames", type=int, default=12, help="number of frames")
    parser.add_argument("--width", type=int, default=400, help="frame width in pixels")
    parser.add_argument("--height", type=int, default=300, help="frame height in pixels")
    args = parser.parse_args()
    make_sample(args.out, args.drawing, args.frames, args.width, args.height)
    total = sum(path.stat().st_size for path in args.out.rglob("*") if path.is_file())
    print(f"wrote {args.out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
