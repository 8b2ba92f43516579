"""End-to-end speed of colorize-shot against the model alone, and peak memory against shot length.

    python benchmarks/shot_speed.py [--frames 120] [--size 800x600] [--resolutions 256 512] [--memory-frames 60 600]

Frames are the bundled sample's line art scaled to --size and repeated to --frames. For each working resolution it
measures, in one run on one machine:
- wall time including Ray's start: one cold colorize-shot-like run (Ray started and stopped around it);
- then --rounds rounds, Ray kept up, of three runs side by side, and their medians:
  model alone: Colorizer.colorize on frames already prepared as tensors, same batch size;
  pipeline in-process: ShotColorizer.run (read PNG, prepare, model, composite, write PNG);
  pipeline through Ray: the shot's own seconds inside the actor (frames written / seconds).
  Ray/model is the median of the rounds' own ratios, each listed: this 2-core VM's speed moves by 10-20% minute to
  minute, so only ratios taken side by side are worth comparing.
Peak resident memory is measured in a fresh process per shot length (in-process pipeline).
No pass/fail: it prints a table.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.checkpoint import DEFAULT_WEIGHTS  # noqa: E402
from pipeline.colorize import ShotColorizer  # noqa: E402
from pipeline.lineart import fit_frame, to_model_line  # noqa: E402
from pipeline.shot import Shot, ShotOptions  # noqa: E402

SAMPLE = ROOT / "samples" / "wave"


def make_shot(folder: Path, frames: int, size: tuple[int, int]) -> Path:
    """The sample's 12 line-art frames scaled to size, repeated to `frames` frames."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [Image.open(SAMPLE / "frames" / f"frame{i}.png").convert("L").resize(size, Image.LANCZOS)
               for i in range(1, 13)]  # fmt: skip
    for index in range(frames):
        sources[index % 12].save(folder / f"f{index + 1}.png", compress_level=1)
    return folder


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def model_alone_fps(colorizer: ShotColorizer, frame: np.ndarray, resolution: int, batch: int, frames: int) -> float:
    """Frames per second of the network on prepared inputs, reference encoded once."""
    reference = np.asarray(Image.open(SAMPLE / "key.png").convert("RGB"))
    tokens = colorizer.encode_reference(reference, resolution)
    geometry = fit_frame(*frame.shape[:2], resolution)
    line = torch.stack([to_model_line(frame, geometry)] * batch)
    with torch.inference_mode():
        colorizer.model.colorize(line, tokens)  # warm-up
        started = time.perf_counter()
        done = 0
        while done < frames:
            colorizer.model.colorize(line, tokens)
            done += batch
    return done / (time.perf_counter() - started)


# The peak RSS of the process's own memory (VmHWM, kB), printed last by a child process. Not ru_maxrss: a child
# starts with its parent's peak as its own (Linux carries the peak across fork and exec), so a child of a process
# that had colored a large shot reported the parent's figure.
PRINT_PEAK_RSS = "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:')))"


def peak_memory_mb(
    frames_dir: Path,
    out: Path,
    resolution: int,
    stage_threads: int | None = None,
    device: str = "cpu",
    timeout: float | None = None,
) -> float:
    """Peak RSS (MB) of a fresh process coloring the shot in-process with the model on `device`; `stage_threads`
    sets the threads of each full-resolution stage (`frame_threads`) as on a machine with twice as many cores,
    instead of this one's. Raises subprocess.TimeoutExpired after `timeout` seconds."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[4]);"
        "import pipeline.colorize as pc; from pipeline.shot import Shot, ShotOptions;"
        "from pipeline.status import ShotStatus;"
        "threads = int(sys.argv[6]);"
        "pc.frame_threads = (lambda cores=None: threads) if threads else pc.frame_threads;"
        "c = pc.ShotColorizer.from_weights(device=sys.argv[7]);"
        "r = c.run(Shot('m', sys.argv[1], sys.argv[2], sys.argv[3]), ShotOptions(resolution=int(sys.argv[5])));"
        "assert r.status is ShotStatus.OK, r.summary();" + PRINT_PEAK_RSS
    )
    args = [str(frames_dir), str(SAMPLE / "key.png"), str(out), str(ROOT), str(resolution), str(stage_threads or 0),
            device]  # fmt: skip
    output = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True,
                            timeout=timeout)  # fmt: skip
    return int(output.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    # Ray only here: the other scripts import this one's helpers on machines without it (benchmarks/gpu_node.py).
    from jobs.runner import RunSettings, ray_session, run_shots

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--size", default="800x600", help="frame size WxH")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--memory-frames", type=int, nargs="+", default=[60, 600])
    parser.add_argument("--memory-resolution", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of model alone, in-process and via Ray")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    torch.set_num_threads(os.cpu_count() or 1)

    work = Path(tempfile.mkdtemp(prefix="inkpaint-bench-"))
    frames_dir = make_shot(work / "frames", args.frames, (width, height))
    frame = np.asarray(Image.open(frames_dir / "f1.png").convert("L"))  # line art is read as 8-bit gray
    colorizer = ShotColorizer.from_weights()
    rows = []
    for resolution in args.resolutions:
        options = ShotOptions(resolution=resolution, batch_size=args.batch_size, resume=False)
        # Once cold, Ray started and stopped around the shot, as one colorize-shot call does.
        started = time.perf_counter()
        cold_shot = Shot("bench", str(frames_dir), str(SAMPLE / "key.png"), str(work / f"cold-{resolution}"))
        run_shots([cold_shot], options, RunSettings(str(DEFAULT_WEIGHTS)))
        wall = time.perf_counter() - started
        # Then --rounds rounds of the three side by side with Ray kept up: the machine's noise falls on all three.
        rounds: list[tuple[float, float, float]] = []
        with ray_session(None):
            for round_index in range(args.rounds):
                model_fps = model_alone_fps(colorizer, frame, resolution, args.batch_size, args.frames)
                out = work / f"r{round_index}-{resolution}"
                local = colorizer.run(Shot("bench", str(frames_dir), str(SAMPLE / "key.png"), str(out / "local")),
                                      options)  # fmt: skip
                ray_shot = Shot("bench", str(frames_dir), str(SAMPLE / "key.png"), str(out / "ray"))
                [through_ray] = run_shots([ray_shot], options, RunSettings(str(DEFAULT_WEIGHTS)))
                rounds.append((model_fps, local.frames_per_second, through_ray.frames_per_second))
        model_fps, local_fps, ray_fps = (statistics.median(values) for values in zip(*rounds, strict=True))
        ratios = sorted(ray / model for model, _, ray in rounds)
        rows.append((resolution, model_fps, local_fps, ray_fps, statistics.median(ratios), ratios, args.frames / wall))

    memory = []
    for count in args.memory_frames:
        folder = make_shot(work / f"mem-{count}", count, (width, height))
        memory.append((count, peak_memory_mb(folder, work / f"mem-out-{count}", args.memory_resolution)))

    print(f"command: python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:])}")
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; weights {DEFAULT_WEIGHTS.name}")
    print(f"shot: {args.frames} frames of {width}x{height}, batch {args.batch_size}; medians of {args.rounds} rounds")
    print()
    print(f"{'resolution':>10} {'model alone':>12} {'pipeline':>10} {'via Ray':>9} {'Ray/model':>10} "
          f"{'per round':>18} {'wall incl. Ray start':>21}")  # fmt: skip
    print(f"{'':>10} {'frames/s':>12} {'frames/s':>10} {'frames/s':>9} {'median':>10} {'':>18} {'frames/s':>21}")
    for resolution, model_fps, local_fps, ray_fps, ratio, ratios, wall_fps in rows:
        per_round = " ".join(f"{r:.0%}" for r in ratios)
        print(f"{resolution:>10} {model_fps:>12.2f} {local_fps:>10.2f} {ray_fps:>9.2f} {ratio:>10.0%} "
              f"{per_round:>18} {wall_fps:>21.2f}")  # fmt: skip
    print()
    print(f"{'shot length':>12} {'peak RSS (MB)':>14}   (in-process, {args.memory_resolution} working resolution)")
    for count, mb in memory:
        print(f"{count:>12} {mb:>14.0f}")


if __name__ == "__main__":
    main()
