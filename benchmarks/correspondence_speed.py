"""What carrying the keyframe's colors costs per frame at 1080p, beside the model, in one run.

    python benchmarks/correspondence_speed.py --runs 5        # about a minute on 2 CPU cores

The sample's line art scaled to 1920x1080 (benchmarks/shot_speed.py's `make_shot`). Each step of the carried path is
timed on one thread as a shot runs it: the two DIS flows of a frame with its flow guide (`ShotCarrier.flows`), the
chaining of its correspondence (`ShotCarrier.correspond`), the sampling of the keyframe's layers at full size
(`carry`), and the finish (`finish_carried`: regions, flat where flat, the lines drawn). The model is timed on the
same frames at 256 and 512, in batches of 4, per frame. Medians of `--runs` passes over the frames, steps taking
turns so that the machine's swings fall on all of them.

Then the whole shot, end to end as `colorize-shot` runs it in process (PNG in, PNG out, working resolution 256,
default fill), once per color source in turn, `--runs` times: frames per second.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_speed import header_lines
from shot_speed import SAMPLE, make_shot

from pipeline.carried import finish_carried
from pipeline.colorize import ShotColorizer
from pipeline.correspondence import ShotCarrier, keyframe_line_art
from pipeline.lineart import LineArt
from pipeline.shot import COLOR_SOURCES, Shot, ShotOptions
from pipeline.status import ShotStatus

SIZE = (1920, 1080)


def carried_steps(frames: list[np.ndarray], keyframe: np.ndarray) -> dict[str, float]:
    """Milliseconds per frame of each carried step, over the frames in order."""
    carrier = ShotCarrier([(keyframe, keyframe_line_art(keyframe), -1)])
    carrier.keyframe_layers(-1, frames[0].shape)  # built once per shot
    totals = {"flows (2 DIS + guide)": 0.0, "correspond": 0.0, "carry (remap)": 0.0, "finish (flat + lines)": 0.0}
    for index, lines in enumerate(frames):
        art = LineArt.plain(lines)
        started = time.perf_counter()
        carrier.plan(index)
        flows = carrier.flows(index, lines)
        after_flows = time.perf_counter()
        found = carrier.correspond(index, flows)
        after_correspond = time.perf_counter()
        carried = carrier.carry(index, found, lines.shape)
        after_carry = time.perf_counter()
        finish_carried(carried, art, None, None, "flat")
        finished = time.perf_counter()
        totals["flows (2 DIS + guide)"] += after_flows - started
        totals["correspond"] += after_correspond - after_flows
        totals["carry (remap)"] += after_carry - after_correspond
        totals["finish (flat + lines)"] += finished - after_carry
    return {name: 1000 * seconds / len(frames) for name, seconds in totals.items()}


def model_ms(colorizer: ShotColorizer, frames: list[np.ndarray], keyframe: np.ndarray, resolution: int) -> float:
    """Milliseconds per frame of the model on the frames, batches of 4, reference encoded once."""
    tokens = colorizer.encode_reference(keyframe, resolution)
    started = time.perf_counter()
    for start in range(0, len(frames), 4):
        colorizer.predict_colors(frames[start : start + 4], tokens, resolution)
    return 1000 * (time.perf_counter() - started) / len(frames)


def end_to_end(colorizer: ShotColorizer, folder: Path, keyframe: Path, work: Path, source: str) -> float:
    """Frames per second of a whole shot colored with `source` (output written afresh)."""
    shot = Shot("bench", str(folder), str(keyframe), str(work / f"out-{source}"))
    started = time.perf_counter()
    result = colorizer.run(shot, ShotOptions(resume=False, color_source=source))
    seconds = time.perf_counter() - started
    if result.status is not ShotStatus.OK:
        raise SystemExit(result.summary())
    return result.written / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="correspondence-speed-"))
    folder = make_shot(work / "frames", args.frames, SIZE)
    frames = [np.asarray(Image.open(folder / f"f{i + 1}.png").convert("L")) for i in range(args.frames)]
    keyframe = np.asarray(Image.open(SAMPLE / "key.png").convert("RGB").resize(SIZE, Image.LANCZOS))
    Image.fromarray(keyframe).save(work / "key.png")
    colorizer = ShotColorizer.from_weights()
    results: dict[str, list[float]] = {}
    carried_steps(frames[:2], keyframe)  # warm up: DIS and the allocator
    model_ms(colorizer, frames[:4], keyframe, 256)
    for _ in range(args.runs):
        for name, value in carried_steps(frames, keyframe).items():
            results.setdefault(name, []).append(value)
        with torch.inference_mode():
            for resolution in (256, 512):
                results.setdefault(f"model at {resolution}", []).append(
                    model_ms(colorizer, frames, keyframe, resolution)
                )
    steps = [name for name in results if not name.startswith("model")]
    totals = [sum(run) for run in zip(*(results[name] for name in steps), strict=True)]
    print("\n".join(header_lines()))
    print(f"frames: {args.frames} at {SIZE[0]}x{SIZE[1]}, {args.runs} runs, medians (min-max) in ms per frame\n")
    print("| step | ms/frame |")
    print("|---|---:|")
    for name, values in [*((n, results[n]) for n in steps), ("carried path, all steps", totals),
                         *((n, results[n]) for n in results if n.startswith("model"))]:  # fmt: skip
        print(f"| {name} | {statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f}) |")
    carried = statistics.median(totals)
    for resolution in (256, 512):
        ratio = carried / statistics.median(results[f"model at {resolution}"])
        print(f"\ncarried path / model at {resolution}: {ratio:.2f}", end="")
    print("\n\n| color source | frames/s, end to end |\n|---|---:|")
    rates: dict[str, list[float]] = {}
    for _ in range(args.runs):
        for source in COLOR_SOURCES:
            rates.setdefault(source, []).append(end_to_end(colorizer, folder, work / "key.png", work, source))
    for source, values in rates.items():
        print(f"| {source} | {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f}) |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
