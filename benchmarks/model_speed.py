"""Colorizer speed on this machine: milliseconds per frame of the `icme2023` and `lite` presets, side by side.

    python benchmarks/model_speed.py --runs 7

What is timed is what a shot costs per frame: `Colorizer.colorize` with the reference encoded once beforehand (as
the pipeline does, once per shot), in eval mode with channels-last weights (as the pipeline loads them) under
`torch.inference_mode`. The presets are timed run by run in
turn (alternating which goes first), so that machine noise hits both alike; each number is the median of --runs
after --warmup untimed runs. Weights are freshly initialised: speed does not depend on their values. Parameter counts
and FLOPs per frame (torch.utils.flop_counter: convolutions and matrix products, a multiply-add counted as 2) are
printed too. Nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime

import torch
from torch.utils.flop_counter import FlopCounterMode

from model.colorizer import PRESETS, Colorizer, build_colorizer

BASELINE, CANDIDATE = "icme2023", "lite"


@dataclass(frozen=True)
class Timing:
    """Median and spread of one preset's per-frame time at one size and batch, in milliseconds.

    Args:
        median_ms: median over the timed runs.
        min_ms: fastest run.
        max_ms: slowest run.
    """

    median_ms: float
    min_ms: float
    max_ms: float


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what the platform module knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def available_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load_average() -> str:
    """The 1-minute load average, or "unknown" where the platform has none."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "unknown"


def speed_environment() -> list[str]:
    """Environment settings that change CPU speed (allocator, thread pools), as NAME=value, sorted."""
    prefixes = ("MALLOC_", "OMP_", "MKL_", "KMP_", "DNNL_", "ONEDNN_", "TORCH_", "LD_PRELOAD")
    return sorted(f"{name}={value}" for name, value in os.environ.items() if name.startswith(prefixes))


def header_lines() -> list[str]:
    """The command (with the environment settings that matter for speed), machine and date of the measurement."""
    command = shlex.join([*speed_environment(), "python", *sys.argv])
    return [
        f"command: {command}",
        f"machine: {cpu_model()}, {available_cores()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.python_implementation()} {platform.python_version()}",
        f"date:    {datetime.now().astimezone().isoformat(timespec='minutes')}",
        f"load:    {load_average()} (1-minute load average before measuring; near 0 on a quiet machine)",
    ]


def inputs(size: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed pseudo-random line art (batch, 1, S, S) in [0, 1] and one reference (1, 3, S, S) in [-1, 1]."""
    generator = torch.Generator().manual_seed(size * 31 + batch)
    line = torch.rand(batch, 1, size, size, generator=generator)
    reference = torch.rand(1, 3, size, size, generator=generator) * 2 - 1
    return line, reference


def time_colorize(model: Colorizer, line: torch.Tensor, tokens: torch.Tensor) -> float:
    """Seconds one `colorize` call takes."""
    start = time.perf_counter()
    model.colorize(line, tokens)
    return time.perf_counter() - start


def measure(models: dict[str, Colorizer], size: int, batch: int, runs: int, warmup: int) -> dict[str, Timing]:
    """Per-frame time of every model at one size and batch, the models taking turns run by run.

    Args:
        models: the models by preset name.
        size: frame side in pixels.
        batch: frames per `colorize` call.
        runs: timed runs per model.
        warmup: untimed runs per model first.
    """
    line, reference = inputs(size, batch)
    tokens = {name: model.encode_reference(reference) for name, model in models.items()}
    names = list(models)
    for _ in range(warmup):
        for name in names:
            models[name].colorize(line, tokens[name])
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for run in range(runs):
        # Alternate who goes first, so a preset does not always run right after the other one.
        for name in names if run % 2 == 0 else names[::-1]:
            seconds[name].append(time_colorize(models[name], line, tokens[name]))
    per_frame = {name: [1000 * s / batch for s in values] for name, values in seconds.items()}
    return {name: Timing(statistics.median(ms), min(ms), max(ms)) for name, ms in per_frame.items()}


def count_flops(model: Colorizer, size: int) -> tuple[int, int]:
    """FLOPs of coloring one frame and of encoding one reference at size x size."""
    line, reference = inputs(size, 1)
    with FlopCounterMode(display=False) as counter:
        tokens = model.encode_reference(reference)
    encode = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        model.colorize(line, tokens)
    return counter.get_total_flops(), encode


def parameter_count(model: Colorizer) -> int:
    """Number of parameters (trainable and not; BatchNorm statistics are buffers and not counted)."""
    return sum(parameter.numel() for parameter in model.parameters())


def speed_table(results: dict[tuple[int, int], dict[str, Timing]], names: list[str]) -> list[str]:
    """Markdown rows: size, batch, each preset's median ms/frame (min-max), and the ratio to the baseline."""
    columns = " | ".join(f"{name} ms/frame (min-max)" for name in names)
    ratio = BASELINE in names and CANDIDATE in names
    rows = [
        f"| size | batch | {columns} |" + (f" {CANDIDATE}/{BASELINE} |" if ratio else ""),
        "|---|---:|" + "---:|" * (len(names) + ratio),
    ]
    for (size, batch), timings in results.items():
        cells = " | ".join(f"{t.median_ms:.0f} ({t.min_ms:.0f}-{t.max_ms:.0f})" for t in map(timings.get, names))
        row = f"| {size}x{size} | {batch} | {cells} |"
        if ratio:
            row += f" {timings[CANDIDATE].median_ms / timings[BASELINE].median_ms:.2f} |"
        rows.append(row)
    return rows


def model_table(models: dict[str, Colorizer], flops_sizes: list[int]) -> list[str]:
    """Markdown rows: parameters, GFLOPs per frame at each size, and GFLOPs of encoding a reference, per preset."""
    flops = {name: {size: count_flops(model, size) for size in flops_sizes} for name, model in models.items()}
    frame_columns = " | ".join(f"GFLOPs/frame {size}x{size}" for size in flops_sizes)
    encode_columns = " | ".join(f"GFLOPs/reference {size}x{size}" for size in flops_sizes)
    rows = [
        f"| preset | parameters | {frame_columns} | {encode_columns} |",
        "|---|---:|" + "---:|" * (2 * len(flops_sizes)),
    ]
    for name, model in models.items():
        frame = " | ".join(f"{flops[name][size][0] / 1e9:.1f}" for size in flops_sizes)
        encode = " | ".join(f"{flops[name][size][1] / 1e9:.1f}" for size in flops_sizes)
        rows.append(f"| {name} | {parameter_count(model) / 1e6:.2f} M | {frame} | {encode} |")
    return rows


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per preset, size and batch")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="frame sides in pixels")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4], help="frames per colorize call")
    parser.add_argument("--presets", nargs="+", default=[BASELINE, CANDIDATE], choices=sorted(PRESETS))
    parser.add_argument("--threads", type=int, default=available_cores(), help="torch intra-op threads")
    parser.add_argument("--flops-sizes", type=int, nargs="+", default=[256, 512], help="frame sides for FLOP counts")
    args = parser.parse_args()
    if args.runs < 1 or args.warmup < 0 or args.threads < 1:
        parser.error(
            f"--runs and --threads must be >= 1 and --warmup >= 0, got {args.runs}, {args.threads}, {args.warmup}"
        )
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {name: build_colorizer(name).for_inference() for name in args.presets}
    print("\n".join(header_lines()), end="\n\n", flush=True)
    with torch.inference_mode():
        print("\n".join(model_table(models, args.flops_sizes)), end="\n\n", flush=True)
        results = {
            (size, batch): measure(models, size, batch, args.runs, args.warmup)
            for size in args.sizes
            for batch in args.batches
        }
    print("\n".join(speed_table(results, args.presets)))


if __name__ == "__main__":
    main()
