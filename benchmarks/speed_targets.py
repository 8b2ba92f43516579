"""The speed issue's CPU figures in one run: the machine's matrix rate, the model against it, the default pipeline
against the paper's generator, 1080p frames at 512 stage by stage, the start-up to the first frame, 4K memory.

    python benchmarks/speed_targets.py            # about 7 minutes on 2 CPU cores
    python benchmarks/speed_targets.py --help     # --runs, --frames, --skip

Sections (each can be left out with --skip):
- matmul: GFLOP/s of a 2048 x 2048 float32 matrix product (median of --runs), the rate the convolutions are held to.
- model: `Colorizer.colorize` at 256 x 256, batch 4, for `icme2023` (freshly initialised: the paper's generator,
  whose speed does not depend on its weights) and `lite` (the shipped weights), taking turns run by run. FLOPs per
  frame by torch's FlopCounterMode; "convolutions" is the convolution FLOPs over the convolutions' own time in
  torch.profiler (aten::convolution and what it calls), the rate the convolutions reach against the matmul.
- pipeline: `ShotColorizer.run` in-process, PNG in and out, on --frames frames of the bundled sample, beside the
  `icme2023` model-alone rate measured above (the issue asks for 8x): the default options (colors carried from the
  keyframe, flat fill) on 256x256 frames, the paper's size, and on 800x600 frames at working resolution 256; then
  the model's colors (`color_source="model"`, flat fill with tracking) on 256x256 frames, plain and `--compile`
  (compiled on a warm-up shot first).
- 1080p: one 1920x1080 shot at 512 working resolution: each step alone per frame (benchmarks/episode_scaling.py's
  `stage_breakdown`), what each thread group of a worker spends per frame, and the shot's end-to-end rate.
- start-up: `colorize-shot` on the 12-frame sample in a fresh process, from the command's start to its first PNG
  on disk and to its end (a local Ray started and the weights loaded on the way), and the parts timed alone:
  importing the CLI, starting and stopping a local Ray, loading the weights.
- memory: peak RSS of a fresh process coloring a 3-frame 3840x2160 shot at 512 working resolution in-process, and
  of a 24-frame one with 8 threads per full-resolution stage, as a 16-core GPU node runs it.
Nothing here passes or fails; the targets are printed beside the numbers.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from episode_scaling import stage_breakdown, thread_groups  # noqa: E402
from model_speed import count_flops, header_lines, inputs, measure  # noqa: E402
from shot_speed import SAMPLE, make_shot, peak_memory_mb  # noqa: E402

from model.colorizer import Colorizer, build_colorizer  # noqa: E402
from pipeline.colorize import ShotColorizer  # noqa: E402
from pipeline.finishing import frame_threads  # noqa: E402
from pipeline.shot import Shot, ShotOptions  # noqa: E402
from pipeline.status import ShotStatus  # noqa: E402

SECTIONS = ("matmul", "model", "pipeline", "1080p", "startup", "memory")
PAPER_SECONDS_PER_FRAME = 0.44  # the figure for the paper's generator at 256x256 on a 2-core machine


def matmul_gflops(runs: int, side: int = 2048) -> float:
    """Median GFLOP/s of a float32 side x side matrix product (2 * side^3 FLOPs)."""
    a, b = torch.rand(side, side), torch.rand(side, side)
    torch.mm(a, b)
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        torch.mm(a, b)
        seconds.append(time.perf_counter() - started)
    return 2 * side**3 / statistics.median(seconds) / 1e9


def convolution_rate(model: Colorizer, batch: int, size: int = 256) -> tuple[float, float]:
    """(GFLOP/s of the convolutions alone, their share of the model's time) for one `colorize` call."""
    line, reference = inputs(size, batch)
    tokens = model.encode_reference(reference)
    model.colorize(line, tokens)
    with FlopCounterMode(display=False) as counter:
        model.colorize(line, tokens)
    conv_flops = sum(count for op, count in counter.get_flop_counts()["Global"].items() if "convolution" in str(op))
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        model.colorize(line, tokens)
    events = profiler.key_averages()
    conv_us = sum(e.cpu_time_total for e in events if e.key == "aten::convolution")
    total_us = sum(e.self_cpu_time_total for e in events)
    return conv_flops / (conv_us / 1e6) / 1e9, conv_us / total_us


PIPELINE_RUNS = {
    "default, 256x256 frames": ((256, 256), ShotOptions()),
    "default, 800x600 frames at 256": ((800, 600), ShotOptions()),
    "model colors, 256x256 frames": ((256, 256), ShotOptions(color_source="model")),
    "model colors, 256x256 frames, --compile": ((256, 256), ShotOptions(color_source="model", compile=True)),
}


def pipeline_fps(frames: int, work: Path, size: tuple[int, int], options: ShotOptions) -> float:
    """Frames per second of the pipeline on the sample at `size` (a warm-up shot first, which also compiles)."""
    tag = f"{size[0]}x{size[1]}_{options.color_source}_{'compiled' if options.compile else 'plain'}"
    folder = make_shot(work / f"p_lines_{size[0]}x{size[1]}", frames, size)
    colorizer = ShotColorizer.from_weights(precision=options.precision, compile=options.compile)
    warm = make_shot(work / f"p_warm_{tag}", 4, size)
    colorizer.run(Shot("warm", str(warm), str(SAMPLE / "key.png"), str(work / f"p_warm_out_{tag}")), options)
    result = colorizer.run(Shot("p", str(folder), str(SAMPLE / "key.png"), str(work / f"p_out_{tag}")), options)
    assert result.status is ShotStatus.OK, result.summary()
    return result.written / result.seconds


def full_hd(work: Path, frames: int) -> None:
    """1080p at 512: the steps one at a time, the thread groups, and the shot end to end."""
    folder = make_shot(work / "hd_lines", frames, (1920, 1080))
    stages = stage_breakdown(folder, SAMPLE / "key.png", 512, 4, work / "hd_stage_out")
    model = stages["model"]
    print(f"{'step':>16} {'ms/frame':>9} {'of model':>9}   (one step at a time)")
    for name, ms in stages.items():
        print(f"{name:>16} {ms:>9.1f} {ms / model:>9.2f}")
    groups = {"model thread": stages["model input"] + model, **thread_groups(stages, frame_threads())}
    print(f"\n{'thread group':>34} {'ms/frame':>9} {'of model':>9}   (target: every group but the model's <= 0.33)")
    for name, ms in groups.items():
        print(f"{name:>34} {ms:>9.1f} {ms / model:>9.2f}")
    colorizer = ShotColorizer.from_weights()
    result = colorizer.run(Shot("hd", str(folder), str(SAMPLE / "key.png"), str(work / "hd_out")),
                           ShotOptions(resolution=512))  # fmt: skip
    assert result.status is ShotStatus.OK, result.summary()
    print(f"\nend to end, 1920x1080 at 512, {result.written} frames ({result.fill} fill): "
          f"{result.written / result.seconds:.2f} frames/s, model alone {1000 / model:.2f} frames/s")  # fmt: skip


def startup(work: Path) -> None:
    """Seconds from `colorize-shot`'s start to its first PNG and to its end, and the parts timed alone."""
    out = work / "startup_out"
    command = [sys.executable, "-m", "cli", "shot", "-r", str(SAMPLE / "key.png"), str(SAMPLE / "frames"), "-o",
               str(out), "--no-resume"]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = None
    while process.poll() is None:
        if first is None and out.exists() and any(out.glob("*.png")):
            first = time.perf_counter() - started
        time.sleep(0.05)
    total = time.perf_counter() - started
    first = first if first is not None else total
    parts = {
        "import the CLI": "import cli",
        "start and stop a local Ray": "import ray; ray.init(num_cpus=2, include_dashboard=False); ray.shutdown()",
        "load the weights": "from pipeline.colorize import ShotColorizer; ShotColorizer.from_weights()",
    }
    print(
        f"colorize-shot, 12 frames: first PNG after {first:.1f} s, done after {total:.1f} s (exit {process.returncode})"
    )
    for name, code in parts.items():
        begun = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
        print(f"  {name:<28} {time.perf_counter() - begun:5.1f} s (a fresh interpreter each, its start included)")


def memory(work: Path) -> None:
    folder = make_shot(work / "uhd_lines", 3, (3840, 2160))
    peak = peak_memory_mb(folder, work / "uhd_out", 512)
    print(f"3840x2160, 3 frames at 512: peak RSS {peak:.0f} MB (target: within 4096 MB)")
    # A GPU node's 16 cores give every full-resolution stage 8 threads, each with frames in flight.
    folder = make_shot(work / "uhd_lines_long", 24, (3840, 2160))
    peak = peak_memory_mb(folder, work / "uhd_out_long", 512, stage_threads=8)
    print(f"3840x2160, 24 frames at 512, 8 threads per stage: peak RSS {peak:.0f} MB (target: within 4096 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="timed runs of the matmul and of each model")
    parser.add_argument("--frames", type=int, default=48, help="frames of each pipeline shot")
    parser.add_argument("--hd-frames", type=int, default=16, help="frames of the 1920x1080 shot")
    parser.add_argument("--skip", nargs="*", choices=SECTIONS, default=[], help="sections to leave out")
    args = parser.parse_args()
    print("\n".join(header_lines()))
    sections = [name for name in SECTIONS if name not in args.skip]
    work = Path(tempfile.mkdtemp(prefix="inkpaint-speed-"))
    matmul = icme_fps = None
    with torch.inference_mode():
        if "matmul" in sections:
            matmul = matmul_gflops(args.runs)
            print(f"\nmatmul 2048x2048 float32: {matmul:.0f} GFLOP/s")
        if "model" in sections:
            shipped = ShotColorizer.from_weights().model
            models = {"icme2023": build_colorizer("icme2023").for_inference(), "lite": shipped}
            timings = measure(models, 256, 4, args.runs, warmup=2)
            print(f"\n{'model':>9} {'GFLOPs/frame':>13} {'ms/frame':>9} {'GFLOP/s':>8} {'of matmul':>10} "
                  f"{'conv GFLOP/s':>13} {'conv of matmul':>15} {'conv share':>11}   (256x256, batch 4)")  # fmt: skip
            for name, model in models.items():
                flops = count_flops(model, 256)[0]
                rate = flops / timings[name].median_ms / 1e6
                conv, share = convolution_rate(model, 4)
                of = (lambda r: f"{r / matmul:.2f}") if matmul else (lambda r: "-")
                print(f"{name:>9} {flops / 1e9:>13.1f} {timings[name].median_ms:>9.1f} {rate:>8.0f} {of(rate):>10} "
                      f"{conv:>13.0f} {of(conv):>15} {share:>11.0%}")  # fmt: skip
            icme_fps = 1000 / timings["icme2023"].median_ms
    if "pipeline" in sections:
        print(f"\n{'pipeline, PNG in and out, ' + str(args.frames) + ' frames':>44} {'frames/s':>9} "
              f"{'of icme2023':>12} {'of 0.44 s':>10}   (target 8x)")  # fmt: skip
        for label, (size, options) in PIPELINE_RUNS.items():
            fps = pipeline_fps(args.frames, work, size, options)
            of_model = f"{fps / icme_fps:.2f}x" if icme_fps else "-"
            print(f"{label:>44} {fps:>9.2f} {of_model:>12} {fps * PAPER_SECONDS_PER_FRAME:>9.2f}x", flush=True)
        if icme_fps:
            print(f"icme2023 model alone, this run: {icme_fps:.2f} frames/s (256x256, batch 4)")
    if "1080p" in sections:
        print()
        full_hd(work, args.hd_frames)
    if "startup" in sections:
        print()
        startup(work)
    if "memory" in sections:
        print()
        memory(work)


if __name__ == "__main__":
    Image.MAX_IMAGE_PIXELS = None
    np.set_printoptions(precision=2)
    main()
