"""Whether a 1080p frame's CPU work scales with cores in one process: 1 worker against 2, side by side.

    python benchmarks/cpu_scaling.py [--frames 16] [--rounds 5]        # about 2 minutes on 2 CPU cores

A GPU node colors a shot's frames on threads of one process: the model on the GPU, everything else on the CPU. Work
that holds Python's GIL runs one thread at a time however many cores there are, so a node of 16 cores colored only
14 frames/s at 1080p with its GPU 2% busy. This measures the property that decides it, on any machine: every CPU
stage of a frame, all but the model, run by 1 worker thread and by 2 at once, each worker on a shot of its own.

The stages, as `colorize-shot` runs them by default (colors carried from the keyframe, fill auto -> flat): read and
decode the PNG (`read_frame`), prepare the line art (`prepare_line_art`: clean lines), the frame's two flows and
their guide (`ShotCarrier.flows`), the chained correspondence (`correspond`), the keyframe's colors carried and the
frame finished (`finish_carried_frame`: regions, flat where flat, lines drawn), the PNG encoded, hashed and written
atomically (`write_frame`), and the frame converted to the video's YUV picture (`VideoWriter.convert`). OpenCV and
torch run one thread each, as each of a node's many frame threads does: the workers are the only parallelism.

Frames are the bundled sample's line art scaled to 1920x1080 (`make_shot`). Rounds alternate 1 and 2 workers so
the machine's swings fall on both; printed: each round's frames/s and ratio, and their medians. The target of issue
17: 2 workers at least 1.8x the frames/s of 1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_speed import header_lines
from shot_speed import SAMPLE, make_shot

from pipeline.correspondence import ShotCarrier, keyframe_line_art
from pipeline.finishing import PendingFrame, finish_carried_frame
from pipeline.frames import read_frame
from pipeline.lineart import prepare_line_art
from pipeline.outputs import write_frame
from pipeline.regions import keyframe_palette
from pipeline.video import VideoWriter

SIZE = (1920, 1080)


def color_frames(frames: list[Path], keyframe: np.ndarray, out: Path) -> None:
    """Every CPU stage of the default path, frame after frame, for one shot (carried from a keyframe before it)."""
    carrier = ShotCarrier([(keyframe, keyframe_line_art(keyframe), -1)])
    palette = keyframe_palette(keyframe)
    video = VideoWriter(str(out / "shot.mp4"))
    out.mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(frames):
        art = prepare_line_art(read_frame(str(path), gray="auto"))
        carrier.plan(index)
        correspondence = carrier.correspond(index, carrier.flows(index, art.lines))
        pending = PendingFrame(index, path.name, str(path), art=art)
        colored = finish_carried_frame(carrier, pending, correspondence, None, palette, "flat", "paint").finished
        write_frame(colored, str(out / path.name))
        video.convert(colored)


def frames_per_second(workers: int, frames: list[Path], keyframe: np.ndarray, work: Path) -> float:
    """Frames/s of `workers` threads, each coloring all of `frames` as a shot of its own."""
    threads = [threading.Thread(target=color_frames, args=(frames, keyframe, work / f"worker{n}"))
               for n in range(workers)]  # fmt: skip
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return workers * len(frames) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=16, help="frames per worker and round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="cpu-scaling-"))
    folder = make_shot(work / "frames", args.frames, SIZE)
    frames = [folder / f"f{index + 1}.png" for index in range(args.frames)]
    keyframe = np.asarray(Image.open(SAMPLE / "key.png").convert("RGB").resize(SIZE, Image.LANCZOS))
    frames_per_second(1, frames[:2], keyframe, work / "warm-up")
    print("\n".join(header_lines()))
    print(f"frames: {args.frames} per worker and round at {SIZE[0]}x{SIZE[1]}; OpenCV and torch 1 thread each\n")
    print("| round | 1 worker, frames/s | 2 workers, frames/s | ratio |\n|---:|---:|---:|---:|")
    ones, twos, ratios = [], [], []
    for round_number in range(1, args.rounds + 1):
        one = frames_per_second(1, frames, keyframe, work)
        two = frames_per_second(2, frames, keyframe, work)
        ones.append(one)
        twos.append(two)
        ratios.append(two / one)
        print(f"| {round_number} | {one:.2f} | {two:.2f} | {two / one:.2f} |", flush=True)
    print(f"| median | {statistics.median(ones):.2f} | {statistics.median(twos):.2f} | "
          f"**{statistics.median(ratios):.2f}** |")  # fmt: skip
    print(f"\nCPU time per frame on 1 worker: {1000 / statistics.median(ones):.0f} ms (median)")


if __name__ == "__main__":
    main()
