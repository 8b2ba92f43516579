"""An episode on this machine with 1 and 2 CPU workers, where a frame's time goes, and what that predicts for a
20-minute episode on a GPU cluster.

    python benchmarks/episode_scaling.py [--shots 4] [--frames 24] [--size 640x360] [--gpus 8]

The episode: --shots shots of --frames frames each, OpenMoji drawings animated (CC BY-SA 4.0), with one keyframe
per drawing tied to its shot. It is colored twice through a local Ray (`jobs.episode.run_episode`), with one CPU
worker (torch on every core) and with two (torch on half the cores each); wall time includes Ray's start.

Where the time goes: one shot's frames through each step alone, in this process, one step at a time:
storage read (bytes from the file system), decode (PNG to 8-bit gray), prepare (model input), model (per frame of
a batch, torch on every core), composite (colors to the frame's size, lines multiplied), encode (PNG),
storage write (atomic write), video (H.264 encode). Each is the median per frame.

The prediction for --gpus GPU workers: the model's rate is --gpu-model-fps, an ASSUMPTION (no GPU was measured by
this script); the CPU steps are the ones measured here. A worker runs its steps on thread groups (2 readers, the
model's thread, 2 compositors, 1 finishing thread for the video, 2 writers): with enough cores the slowest group sets
its rate ("as built"); the
last line says what spreading every CPU step over --cores-per-gpu cores would give. Shots spread over the workers.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs.episode import run_episode  # noqa: E402
from jobs.plan import plan_episode  # noqa: E402
from jobs.spec import load_spec  # noqa: E402
from model.data import list_openmoji  # noqa: E402
from model.files import decode_frame, write_bytes_atomic  # noqa: E402
from model.synthetic_shots import Motion, render_openmoji_shot  # noqa: E402
from pipeline.colorize import ShotColorizer  # noqa: E402
from pipeline.composite import vote_frame  # noqa: E402
from pipeline.finishing import frame_threads, paint_and_finish  # noqa: E402
from pipeline.frames import read_frame  # noqa: E402
from pipeline.lineart import fit_frame, prepare_line_art, to_model_line  # noqa: E402
from pipeline.png import encode_png  # noqa: E402
from pipeline.references import colored_share  # noqa: E402
from pipeline.region_vote import region_colors  # noqa: E402
from pipeline.tracking import RegionTracker  # noqa: E402
from pipeline.video import VideoWriter  # noqa: E402


def colored_drawings(count: int) -> list[Path]:
    """`count` OpenMoji test drawings spread over the split, skipping those drawn in black and white only (a
    keyframe without color would leave nothing for the region fill to do)."""
    candidates = list_openmoji("test")
    step = max(1, len(candidates) // (4 * count))
    chosen = []
    for svg in candidates[::step]:
        color = render_openmoji_shot(svg, 1, 128, 128, Motion()).color[0]
        if colored_share(color) >= 0.05:
            chosen.append(svg)
        if len(chosen) == count:
            return chosen
    msg = f"only {len(chosen)} colored drawings found for {count} shots"
    raise SystemExit(msg)


def make_episode(root: Path, shots: int, frames: int, size: tuple[int, int], resolution: int) -> Path:
    """Shots of different OpenMoji drawings moving, a keyframe per shot, and the spec; returns the spec's path."""
    drawings = colored_drawings(shots)
    spec: dict = {"episode": "bench", "output": str(root / "out"), "resolution": resolution,
                  "shots": [], "keyframes": []}  # fmt: skip
    for index, svg in enumerate(drawings):
        name = f"sh{(index + 1) * 10:03d}"
        arrays = render_openmoji_shot(svg, frames, *size, Motion(translate_start=(-0.1, 0), translate_end=(0.1, 0.05)))
        folder = root / "lines" / name
        folder.mkdir(parents=True)
        for frame in range(frames):
            Image.fromarray(arrays.line[frame]).save(folder / f"{name}_{frame + 1:04d}.png")
        Image.fromarray(arrays.color[0]).save(root / f"{name}-key.png")
        spec["shots"].append({"name": name, "frames": str(folder)})
        spec["keyframes"].append({"name": f"key{name}", "image": str(root / f"{name}-key.png"), "shots": [name]})
    path = root / "episode.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def per_frame_ms(step, items, warm_up: bool = True) -> tuple[float, list]:
    """(median milliseconds of step(item) over the items, the timed pass's results).

    With `warm_up`, an untimed pass over all the items runs first and its results are freed before the timed pass,
    which then reuses that memory as a running shot's steps reuse what earlier frames freed. Timed on a fresh heap,
    a step pays the kernel's page faults instead (the 1080p region vote: 70-76 ms a frame on a first pass in a
    process, 42-44 ms in steady state).
    """
    items = list(items)
    if warm_up:
        kept = [step(item) for item in items]
        del kept  # freed: the timed pass finds the memory in the process, as a running shot does
    results, times = [], []
    for item in items:
        started = time.perf_counter()
        results.append(step(item))
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), results


def stage_breakdown(frames_dir: Path, key: Path, resolution: int, batch: int, out: Path) -> dict[str, float]:
    """Median ms per frame of each step of one shot, run alone."""
    urls = sorted(str(p) for p in frames_dir.glob("*.png"))
    colorizer = ShotColorizer.from_weights()
    tokens = colorizer.encode_reference(read_frame(str(key)), resolution)
    stages: dict[str, float] = {}
    stages["storage read"], raw = per_frame_ms(lambda url: Path(url).read_bytes(), urls)
    # As the shot's readers decode: gray files to luma, others to RGB.
    stages["decode"], decoded = per_frame_ms(lambda data: decode_frame(data, "frame", gray="auto"), raw)
    stages["line prep"], arts = per_frame_ms(prepare_line_art, decoded)
    gray = [art.lines for art in arts]
    geometry = fit_frame(*gray[0].shape, resolution)
    stages["model input"], _ = per_frame_ms(lambda g: to_model_line(g, geometry), gray)
    batches = [gray[i : i + batch] for i in range(0, len(gray) - batch + 1, batch)]
    model_ms, _ = per_frame_ms(lambda b: colorizer.predict_colors(b, tokens, resolution), batches)
    stages["model"] = model_ms / batch
    smalls = [colorizer.predict_colors([g], tokens, resolution)[0] for g in gray]
    # As a tracked flat fill runs: the vote on the pool, the colors decided in order, the painting on the pool.
    stages["region vote"], votes = per_frame_ms(lambda i: vote_frame(smalls[i], arts[i]), range(len(arts)))
    tracker = RegionTracker([(read_frame(str(key)), 0)])
    tracker.decide(0, votes[0][1], arts[0].boundaries)  # the keyframe's regions, found once per shot
    # In frame order, once each, as a shot decides them: no warm-up pass.
    stages["region colors"], decided = per_frame_ms(
        lambda i: tracker.decide(i, votes[i][1], arts[i].boundaries), range(1, len(arts)), warm_up=False
    )
    decided.insert(0, region_colors(votes[0][1].lab))
    stages["paint + lines"], finished = per_frame_ms(
        lambda i: paint_and_finish(*votes[i], decided[i], arts[i], "paint").finished, range(len(arts))
    )
    stages["encode"], encoded = per_frame_ms(encode_png, finished)
    out.mkdir(parents=True, exist_ok=True)
    stages["storage write"], _ = per_frame_ms(lambda d: write_bytes_atomic(d, str(out / "f.png")), encoded)
    # As `VideoFeed` runs it: the conversion to the encoder's pixel format on threads, the encode in order.
    video = VideoWriter(str(out / "v.mp4"), fps=24, codec="h264")
    video.write(finished[0])  # opens the encoder
    stages["video convert"], pictures = per_frame_ms(video.convert, finished[1:])
    # x264 encodes on threads of its own and returns early or late by turns: time the whole encode, flush
    # included, per frame.
    started = time.perf_counter()
    for frame, picture in zip(finished[1:], pictures, strict=True):
        video.write(frame, picture)
    video.close()
    stages["video encode"] = (time.perf_counter() - started) * 1000 / len(pictures)
    return stages


def thread_groups(stages: dict[str, float], threads: int) -> dict[str, float]:
    """Milliseconds per frame each thread group of a worker spends (pipeline/colorize.py, pipeline/finishing.py),
    from `stages`: the readers (read, decode, line prep), the composite pool (region vote, painting and lines) and
    the PNG writers, `threads` each (`frame_threads`); the finishing thread (region colors) and the video's (encode),
    in frame order, the video's 2 converters beside them. The model's thread (model input, model) is left to the
    caller. With enough cores, the slowest group sets the rate."""
    return {
        f"readers ({threads} threads)": (stages["storage read"] + stages["decode"] + stages["line prep"]) / threads,
        f"composite ({threads} threads)": (stages["region vote"] + stages["paint + lines"]) / threads,
        "finishing thread (region colors)": stages["region colors"],
        "video converters (2 threads)": stages["video convert"] / 2,
        "video thread (encode)": stages["video encode"],
        f"writers ({threads} threads)": (stages["encode"] + stages["storage write"]) / threads,
    }


def timed_episode(spec: Path, cpu_workers: int) -> tuple[float, int]:
    """Wall seconds (Ray's start included) and frames colored for a fresh run of the episode."""
    plan = plan_episode(load_spec(str(spec)))
    started = time.perf_counter()
    result = run_episode(plan, resume=False, cpu_workers=cpu_workers)
    return time.perf_counter() - started, sum(r.written for r in result.results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, default=4)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--cores-per-gpu", type=int, default=8)
    assumed = "ASSUMED frames/s of the model on one GPU at --resolution (not measured here)"
    parser.add_argument("--gpu-model-fps", type=float, default=500.0, help=assumed)
    parser.add_argument("--episode-frames", type=int, default=30_000, help="20 minutes at 24 fps is 28,800")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    torch.set_num_threads(os.cpu_count() or 1)
    root = Path(tempfile.mkdtemp(prefix="inkpaint-episode-bench-"))
    spec = make_episode(root, args.shots, args.frames, (width, height), args.resolution)
    stages = stage_breakdown(root / "lines" / "sh010", root / "sh010-key.png", args.resolution, args.batch_size,
                             root / "stages")  # fmt: skip
    runs = {workers: timed_episode(spec, workers) for workers in (1, 2)}

    print(f"command: python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:])}")
    now = datetime.datetime.now(datetime.timezone.utc)
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}; "
          f"date {now:%Y-%m-%d %H:%M} UTC; load {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"episode: {args.shots} shots x {args.frames} frames of {width}x{height}, working resolution "
          f"{args.resolution}, batch {args.batch_size}")  # fmt: skip
    print()
    print(f"{'CPU workers':>11} {'wall s':>8} {'frames':>7} {'frames/s':>9}   (Ray start and shutdown included)")
    for workers, (seconds, frames) in runs.items():
        print(f"{workers:>11} {seconds:>8.1f} {frames:>7} {frames / seconds:>9.2f}")
    print()
    total = sum(stages.values())
    print(f"{'step':>16} {'ms/frame':>9} {'share':>6}   (one step at a time, this machine)")
    for name, ms in stages.items():
        print(f"{name:>16} {ms:>9.2f} {ms / total:>6.0%}")
    groups = {name: 1000 / ms for name, ms in thread_groups(stages, frame_threads(args.cores_per_gpu)).items()}
    groups["model thread (GPU, assumed)"] = 1000 / (stages["model input"] + 1000 / args.gpu_model_fps)
    cpu_ms = total - stages["model"]
    groups["all cores, if every step spread"] = args.cores_per_gpu * 1000 / cpu_ms
    print()
    print(f"prediction for {args.episode_frames} frames on {args.gpus} GPU workers, {args.cores_per_gpu} cores each "
          f"(model: {args.gpu_model_fps:.0f} frames/s per GPU, ASSUMED):")  # fmt: skip
    for name, fps in groups.items():
        print(f"  {name:>32}: {fps:7.0f} frames/s per worker")
    built = min(fps for name, fps in groups.items() if not name.startswith("all cores"))
    for label, fps in (("as built", built), ("with every CPU step spread over the cores", min(
            args.gpu_model_fps, groups["all cores, if every step spread"]))):  # fmt: skip
        seconds = args.episode_frames / (fps * args.gpus)
        print(f"  {label}: {fps:.0f} frames/s per worker -> {seconds:.0f} s ({seconds / 60:.1f} minutes) of "
              "coloring, plus about 10 s of Ray start and weight loading per worker")  # fmt: skip


if __name__ == "__main__":
    main()
