"""What an exact resume costs: the frames kept from an earlier run are carried through again, so that the frames
colored again are byte for byte those of an uninterrupted run.

    python benchmarks/resume_cost.py [--rounds 3] [--size 1440x1080]        # about a minute on 2 CPU cores

The bundled sample's 12 frames, scaled to --size, colored with the default options. Each round times a whole run,
then a rerun with the last frame removed, twice: as `colorize-shot` reruns it (the 11 frames kept are read, their
line art prepared and their flows computed, and the last frame is carried through them) and with the kept frames
stepped over (the last frame carried straight from the keyframe, as before this was exact). Printed: medians over
rounds, and the cost per kept frame (the difference over 11) beside the cost per frame of the whole run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_speed import header_lines

import pipeline.colorize as colorize_module
from pipeline.colorize import ShotColorizer
from pipeline.outputs import WrittenFile
from pipeline.shot import Shot, ShotOptions
from pipeline.shot_files import pending_frame

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "wave"


def scaled_sample(folder: Path, width: int, height: int) -> Shot:
    """The sample's frames and keyframe at width x height, in `folder`; the shot writes to folder/out."""
    (folder / "frames").mkdir()
    for path in sorted((SAMPLE / "frames").glob("*.png")):
        Image.open(path).convert("L").resize((width, height), Image.LANCZOS).save(folder / "frames" / path.name)
    Image.open(SAMPLE / "key.png").convert("RGB").resize((width, height), Image.LANCZOS).save(folder / "key.png")
    return Shot("sample", str(folder / "frames"), str(folder / "key.png"), str(folder / "out"))


def stepping_over_kept_frames(*args: object) -> object:
    """`pending_frame` as it was: a kept frame without its line art, so nothing is carried through it."""
    return pending_frame(*args[:6], False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", default="1440x1080", help="WIDTHxHEIGHT of the frames")
    args = parser.parse_args()
    width, height = (int(side) for side in args.size.split("x"))
    shot = scaled_sample(Path(tempfile.mkdtemp()), width, height)
    colorizer = ShotColorizer.from_weights()
    colorizer.run(shot, ShotOptions())  # warm up
    whole, exact, stepped = [], [], []
    last = Path(shot.output) / "frame12.png"
    for _ in range(args.rounds):
        for path in Path(shot.output).glob("*.png"):
            path.unlink()
        started = time.perf_counter()
        first = colorizer.run(shot, ShotOptions())
        whole.append(time.perf_counter() - started)
        recorded = {Path(r.output).name: WrittenFile(r.bytes, r.sha256) for r in first.records}
        for times, choose in ((exact, pending_frame), (stepped, stepping_over_kept_frames)):
            last.unlink()
            colorize_module.pending_frame = choose
            try:
                started = time.perf_counter()
                colorizer.run(replace(shot, recorded_outputs=recorded), ShotOptions())
                times.append(time.perf_counter() - started)
            finally:
                colorize_module.pending_frame = pending_frame
    print("\n".join(header_lines()))
    full, carried, straight = (statistics.median(times) for times in (whole, exact, stepped))
    print(f"\n{width}x{height}, 12 frames, default options; medians of {args.rounds} rounds (s)\n")
    print("| run | seconds |\n|---|---:|")
    print(f"| whole shot colored | {full:.2f} |")
    print(f"| rerun of the last frame, carried through the 11 kept (exact) | {carried:.2f} |")
    print(f"| rerun of the last frame, kept frames stepped over | {straight:.2f} |")
    per_kept, per_frame = (carried - straight) / 11 * 1000, full / 12 * 1000
    print(f"\nper kept frame: {per_kept:.0f} ms; per frame of the whole run: {per_frame:.0f} ms")


if __name__ == "__main__":
    main()
