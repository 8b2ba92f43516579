"""What the report's frame-to-frame signals (pipeline/consistency.py) cost per frame at 1080p, decoding excluded.

    python benchmarks/consistency_speed.py --runs 5        # about half a minute on 2 CPU cores

The sample's line art and ground-truth colors scaled to 1920x1080, fed in order to one `ShotConsistency` on one
thread: reduction, regions, two DIS flows and the three signals of every frame. Medians of `--runs` passes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_speed import header_lines
from shot_speed import SAMPLE

from pipeline.consistency import ShotConsistency

SIZE = (1920, 1080)


def sample_frames(frames: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The sample's (line art, truth) pairs at SIZE, repeated to `frames` frames."""
    pairs = []
    for index in range(frames):
        number = index % 12 + 1
        lines = np.asarray(Image.open(SAMPLE / "frames" / f"frame{number}.png").convert("L"))
        colors = np.asarray(Image.open(SAMPLE / "truth" / f"frame{number}.png").convert("RGB"))
        pairs.append((cv2.resize(lines, SIZE, interpolation=cv2.INTER_LINEAR),
                      cv2.resize(colors, SIZE, interpolation=cv2.INTER_LINEAR)))  # fmt: skip
    return pairs


def ms_per_frame(pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    checker = ShotConsistency()
    started = time.perf_counter()
    for index, (lines, colors) in enumerate(pairs):
        checker.add(index, lines, colors)
    checker.finish()
    return 1000 * (time.perf_counter() - started) / len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=12)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    pairs = sample_frames(args.frames)
    ms_per_frame(pairs[:3])  # warm up
    values = [ms_per_frame(pairs) for _ in range(args.runs)]
    print("\n".join(header_lines()))
    print(f"frames: {args.frames} at {SIZE[0]}x{SIZE[1]}, {args.runs} runs, one OpenCV thread")
    print(f"consistency signals: {statistics.median(values):.1f} ms per frame ({min(values):.1f}-{max(values):.1f})")


if __name__ == "__main__":
    main()
