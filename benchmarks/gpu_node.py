"""A GPU node's figures for issue 17 in one run: the model alone, the pipeline end to end with the GPU's busy share,
the default pipeline on 16 down to 1 cores, and a 4K shot's peak memory.

    python benchmarks/gpu_node.py                      # on a GPU node: about 4-6 minutes, see --deadline
    python benchmarks/gpu_node.py --quick              # a smoke run on any machine: about 2-3 minutes on 2 cores
    python benchmarks/gpu_node.py --skip cores memory --frames 48 [--devset DIR]

Issue 17: on an H200 node of 16 cores the model alone colored about 900 frames/s at 512, the whole pipeline 14
frames/s at 1080p with the GPU 2% busy: per-frame CPU work held Python's GIL. The targets: 100 frames/s per GPU
for 1080p frames at 512 working resolution (the default path, with a video), the GPU busy at least half the time.

Sections (each can be left out with --skip; one not begun when --deadline seconds have passed is skipped with a
note, and so is each run of a section, so that a call with a time limit returns its output):
- model: `Colorizer.colorize` with the shipped weights (lite) at 256x144 and 512x288 (16:9), batch 1, 8 and 32,
  under bfloat16 autocast (as --precision bfloat16 runs it) and in float32 (TF32 off, as the pipeline runs it),
  the reference encoded once: frames/s, the median of --runs runs after a warm-up, the GPU synchronised around
  each run. The `icme2023` preset (freshly initialised: the paper's generator) at 256x256, batch 32, for reference.
- endtoend: `ShotColorizer.run` in this process, PNG in and out: --frames frames of the bundled sample's line art
  scaled to 1920x1080 (`make_shot`), its keyframe scaled alike, at 512 working resolution: the default (colors
  carried from the keyframe, fill auto), the model's colors flat and soft, each without and with an H.264 video;
  then the model's colors flat with video in bfloat16, and at 1024. Each run follows a warm-up shot of one batch
  with the same options. Printed: frames/s, the GPU's busy share over the run (NVML's utilization, the share of
  time a kernel ran, sampled every 0.1 s through pynvml or nvidia-smi) and the CPU cores the process kept busy
  (its CPU time over the run's wall time).
- cores: the default run with video in a fresh process restricted to 16, 8, 4, 2 and 1 cores (those this machine
  has): the CPU affinity is set before anything is imported, OMP_NUM_THREADS to match, and `frame_threads` sizes
  the stage pools from the affinity.
- memory: the peak RSS of a fresh process coloring a 24-frame 3840x2160 shot at 512, the model on the GPU and 8
  threads per full-resolution stage, what `frame_threads` gives a 16-core node (target: within 4096 MB).
- devset, only with --devset DIR (case folders as `inkpaint eval --shots` reads them: reference.png, lines/):
  each case's first frame colored by the model at 512 in float32 on the GPU and on the CPU, and the PSNR between.
It ends with the summary: the default run with video against the targets, and the model's flat colors with video
(the default path carries the keyframe's colors on the CPU and never calls the model: its GPU stays idle). Nothing
here passes or fails.
--quick measures less (2 frames of 4K, 4 of 1080p, batches 1 and 2, 2 runs) to test the script on a CPU.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import av
import cv2
import numpy as np
import PIL
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from model_speed import header_lines  # noqa: E402
from shot_speed import PRINT_PEAK_RSS, SAMPLE, make_shot, peak_memory_mb  # noqa: E402

from model.colorizer import Colorizer, build_colorizer  # noqa: E402
from pipeline.colorize import ShotColorizer  # noqa: E402
from pipeline.finishing import frame_threads  # noqa: E402
from pipeline.frames import list_frames, read_frame  # noqa: E402
from pipeline.shot import Shot, ShotOptions  # noqa: E402
from pipeline.status import ShotStatus  # noqa: E402

SECTIONS = ("model", "endtoend", "cores", "memory")
HD, UHD = (1920, 1080), (3840, 2160)
MODEL_FRAMES = ((256, 144), (512, 288))  # 16:9, sides multiples of the encoder's stride of 16
NODE_CORES = 16  # the GPU node's cores: what the memory section sizes the stage pools for
CORE_COUNTS = (16, 8, 4, 2, 1)
TARGET_FPS, TARGET_BUSY, TARGET_MB = 100.0, 0.5, 4096
GRACE_SECONDS = 90  # how long past the deadline a subprocess begun before it may go on
SAMPLE_SECONDS = 0.1  # GPU utilization sampling interval


@dataclass(frozen=True)
class Plan:
    """How much each section measures: the full run for a GPU node, or --quick's smoke test.

    Args:
        batches: model section batch sizes.
        runs: timed model runs, of which the median is printed.
        frames_per_run: frames of one timed model run (whole batches, at least one).
        frames: frames of the 1080p end-to-end shot.
        memory_frames: frames of the 4K memory shot.
    """

    batches: tuple[int, ...]
    runs: int
    frames_per_run: int
    frames: int
    memory_frames: int


FULL = Plan(batches=(1, 8, 32), runs=5, frames_per_run=64, frames=96, memory_frames=24)
QUICK = Plan(batches=(1, 2), runs=2, frames_per_run=1, frames=4, memory_frames=2)


class Deadline:
    """When sections and runs stop being started; no subprocess runs past GRACE_SECONDS after it."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def passed(self) -> bool:
        return time.monotonic() >= self.end

    def timeout(self) -> float:
        """Seconds a subprocess started now may run."""
        return max(1.0, self.end + GRACE_SECONDS - time.monotonic())


@functools.cache
def nvml_utilization() -> Callable[[], float] | None:
    """A function reading the first GPU's utilization (0-100) through pynvml, or None where pynvml is missing, finds
    no driver or cannot read it. The node has one GPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        pynvml.nvmlDeviceGetUtilizationRates(handle)
    except Exception:  # ImportError, or any NVMLError: then nvidia-smi is tried
        return None
    return lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)


class GpuBusy:
    """The GPU's utilization sampled every SAMPLE_SECONDS while the context is open: NVML's share of time in which a
    kernel ran, read through pynvml where it imports, else from `nvidia-smi -lms`. `share` is the mean of the
    samples (0-1): None without a CUDA device or where neither source gave a sample.

    Args:
        device: the device the model runs on.
    """

    def __init__(self, device: torch.device) -> None:
        self.enabled = device.type == "cuda"
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._smi: subprocess.Popen | None = None

    def __enter__(self) -> GpuBusy:
        if not self.enabled:
            return self
        read = nvml_utilization()
        if read is not None:
            self._thread = threading.Thread(target=self._poll, args=(read,), daemon=True)
        elif shutil.which("nvidia-smi"):
            command = ["nvidia-smi", "-i", "0", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                       "-lms", str(int(SAMPLE_SECONDS * 1000))]  # fmt: skip
            self._smi = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self._thread = threading.Thread(target=self._follow, args=(self._smi,), daemon=True)
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._smi is not None:
            self._smi.terminate()
        if self._thread is not None:
            self._thread.join()
        if self._smi is not None:
            self._smi.wait()

    def _poll(self, read: Callable[[], float]) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.samples.append(read())

    def _follow(self, smi: subprocess.Popen) -> None:
        for line in smi.stdout:
            if line.strip().isdigit():  # "[N/A]" and the like are not samples
                self.samples.append(float(line))

    @property
    def share(self) -> float | None:
        return statistics.fmean(self.samples) / 100 if self.samples else None


@dataclass(frozen=True)
class ShotFiles:
    """A benchmark shot on disk: its line-art frames, a warm-up shot of one batch, and its keyframe."""

    frames: Path
    warm_up: Path
    keyframe: Path

    def shot(self, out: Path, video: bool, warm_up: bool = False) -> Shot:
        """The shot (or its warm-up), writing PNGs to out/frames and, with `video`, out/shot.mp4."""
        frames = self.warm_up if warm_up else self.frames
        return Shot(out.name, str(frames), str(self.keyframe), str(out / "frames"),
                    str(out / "shot.mp4") if video else None)  # fmt: skip


def make_shot_files(folder: Path, frames: int, warm_up_frames: int, size: tuple[int, int]) -> ShotFiles:
    """The sample's line art scaled to `size` as a shot and a warm-up shot, and its keyframe scaled alike."""
    folder.mkdir(parents=True, exist_ok=True)
    keyframe = folder / "keyframe.png"
    Image.open(SAMPLE / "key.png").convert("RGB").resize(size, Image.LANCZOS).save(keyframe, compress_level=1)
    return ShotFiles(make_shot(folder / "lines", frames, size), make_shot(folder / "warm_up", warm_up_frames, size),
                     keyframe)  # fmt: skip


@dataclass(frozen=True)
class Rate:
    """One timed shot.

    Args:
        frames: frames written.
        seconds: the shot's wall time (`ShotResult.seconds`).
        fill: the fill the frames got.
        gpu_busy: the GPU's busy share over the shot (0-1), None without a GPU.
        cpu_cores: the process's CPU time over the wall time: the cores it kept busy on average.
    """

    frames: int
    seconds: float
    fill: str
    gpu_busy: float | None
    cpu_cores: float

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds


def timed_shot(colorizer: ShotColorizer, files: ShotFiles, options: ShotOptions, video: bool, out: Path) -> Rate:
    """The warm-up shot, then the shot timed, both with `options`; the outputs are removed afterwards."""
    warm_up = colorizer.run(files.shot(out / "warm_up", video, warm_up=True), options)
    if warm_up.status is not ShotStatus.OK:
        raise RuntimeError(warm_up.summary())
    cpu_started = time.process_time()
    with GpuBusy(colorizer.device) as busy:
        result = colorizer.run(files.shot(out / "shot", video), options)
    cpu_seconds = time.process_time() - cpu_started
    shutil.rmtree(out)
    if result.status is not ShotStatus.OK:
        raise RuntimeError(result.summary())
    return Rate(result.written, result.seconds, result.fill, busy.share, cpu_seconds / result.seconds)


def rate_text(frames_per_second: float) -> str:
    """Frames/s in whole numbers, with two significant digits below 10 (a CPU's rates)."""
    return f"{frames_per_second:.0f}" if frames_per_second >= 10 else f"{frames_per_second:.2g}"


def percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.0%}"


def frames_per_second(
    model: Colorizer, size: tuple[int, int], batch: int, precision: str, runs: int, frames_per_run: int
) -> float:
    """Median frames/s of `model.colorize` over `runs` runs of whole batches, after one untimed run; the device is
    synchronised around each run, so that the time is the GPU's and not the time to queue its kernels."""
    device = next(model.parameters()).device
    width, height = size
    generator = torch.Generator().manual_seed(width * 31 + batch)
    line = torch.rand(batch, 1, height, width, generator=generator).to(device)
    reference = (torch.rand(1, 3, height, width, generator=generator) * 2 - 1).to(device)
    calls = max(1, frames_per_run // batch)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def one_run() -> float:
        synchronize()
        started = time.perf_counter()
        for _ in range(calls):
            model.colorize(line, tokens)
        synchronize()
        return time.perf_counter() - started

    # As ShotColorizer.predict_colors runs the model; the encoders and attention stay float32 inside it.
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
        tokens = model.encode_reference(reference)
        one_run()
        seconds = statistics.median(one_run() for _ in range(runs))
    return calls * batch / seconds


def model_section(colorizer: ShotColorizer, plan: Plan) -> None:
    """Frames/s of the shipped model at each working size, precision and batch, then of icme2023 for reference."""
    batch_columns = " | ".join(f"batch {batch}" for batch in plan.batches)
    print(f"| model | frame | precision | {batch_columns} |")
    print("|---|---|---|" + "---:|" * len(plan.batches))
    timed = functools.partial(frames_per_second, runs=plan.runs, frames_per_run=plan.frames_per_run)
    for size in MODEL_FRAMES:
        for precision in ("bfloat16", "float32"):
            rates = " | ".join(rate_text(timed(colorizer.model, size, batch, precision)) for batch in plan.batches)
            print(f"| lite (shipped) | {size[0]}x{size[1]} | {precision} | {rates} |", flush=True)
    icme = build_colorizer("icme2023").for_inference(colorizer.device)
    batch = plan.batches[-1]
    for precision in ("bfloat16", "float32"):
        rate = timed(icme, (256, 256), batch, precision)
        blanks = " | ".join("" for _ in plan.batches[:-1])
        print(f"| icme2023 (fresh) | 256x256 | {precision} | {blanks} | {rate_text(rate)} |", flush=True)
    print("\nframes/s, the median of the runs; the reference encoded once beforehand, as a shot does")


@dataclass(frozen=True)
class EndToEnd:
    """One end-to-end configuration: a label, its options and whether a video is written too."""

    label: str
    options: ShotOptions
    video: bool


def end_to_end_configurations(batch_size: int) -> list[EndToEnd]:
    """The default path and the model's path, flat and soft, without and with video; then bfloat16 and 1024."""
    default = ShotOptions(resolution=512, batch_size=batch_size, resume=False)
    flat = replace(default, color_source="model", fill="flat")
    soft = replace(default, color_source="model", fill="soft")
    return [
        *(EndToEnd("default: carry, fill auto", default, video) for video in (False, True)),
        *(EndToEnd("model, flat", flat, video) for video in (False, True)),
        *(EndToEnd("model, soft", soft, video) for video in (False, True)),
        EndToEnd("model, flat, bfloat16", replace(flat, precision="bfloat16"), True),
        EndToEnd("model, flat", replace(flat, resolution=1024), True),
    ]


def colorizer_for(options: ShotOptions, colorizers: dict, device: torch.device) -> ShotColorizer:
    """The colorizer set up for the options' precision and compile (a colorizer keeps the setup it was made with),
    made on first use and kept in `colorizers`."""
    key = (options.precision, options.compile)
    if key not in colorizers:
        colorizers[key] = ShotColorizer.from_weights(
            device=device, precision=options.precision, compile=options.compile
        )
    return colorizers[key]


def end_to_end_section(
    colorizer: ShotColorizer, files: ShotFiles, batch_size: int, work: Path, deadline: Deadline
) -> dict:
    """Each configuration's timed shot as a table row; returns the rates by (label, resolution, video)."""
    print("| colors | fill | video | working resolution | frames/s | GPU busy | CPU cores busy |")
    print("|---|---|---|---:|---:|---:|---:|")
    rates = {}
    colorizers = {(colorizer.precision, colorizer.compile): colorizer}
    for configuration in end_to_end_configurations(batch_size):
        options = configuration.options
        video = "H.264" if configuration.video else "no"
        if deadline.passed():
            print(f"| {configuration.label} | | {video} | {options.resolution} | skipped: deadline | | |", flush=True)
            continue
        try:
            engine = colorizer_for(options, colorizers, colorizer.device)
            rate = timed_shot(engine, files, options, configuration.video, work / "endtoend")
        except Exception as error:  # one run's failure must not cost the others' figures
            print(f"| {configuration.label} | | {video} | {options.resolution} | {failure(error)} | | |", flush=True)
            continue
        rates[configuration.label, options.resolution, configuration.video] = rate
        print(f"| {configuration.label} | {rate.fill} | {video} | {options.resolution} | "
              f"{rate.frames_per_second:.1f} | {percent(rate.gpu_busy)} | {rate.cpu_cores:.1f} |",
              flush=True)  # fmt: skip
    return rates


# Run in the fresh process of the cores section: the affinity is set before torch, OpenCV or the pipeline is
# imported, so that every thread pool they size sees only these cores.
CORES_CHILD = (
    "import os, sys; os.sched_setaffinity(0, [int(c) for c in sys.argv[1].split(',')]);"
    "sys.path.insert(0, sys.argv[2]); import gpu_node; gpu_node.cores_child(sys.argv[3])"
)


def cores_child(arguments: str) -> None:
    """In the fresh process: the default run with video timed, printed as one JSON line with the thread counts."""
    spec = json.loads(arguments)
    files = ShotFiles(Path(spec["frames"]), Path(spec["warm_up"]), Path(spec["keyframe"]))
    colorizer = ShotColorizer.from_weights(device=spec["device"])
    options = ShotOptions(resolution=512, batch_size=spec["batch_size"], resume=False)
    rate = timed_shot(colorizer, files, options, True, Path(spec["out"]))
    threads = {"affinity": len(os.sched_getaffinity(0)), "frame_threads": frame_threads(),
               "torch": torch.get_num_threads(), "opencv": cv2.getNumThreads()}  # fmt: skip
    print(json.dumps({**asdict(rate), "threads": threads}))


def rate_on_cores(
    cores: int, files: ShotFiles, batch_size: int, device: torch.device, out: Path, deadline: Deadline
) -> dict:
    """The default run with video in a fresh process on the first `cores` of this process's cores."""
    cpus = sorted(os.sched_getaffinity(0))[:cores]
    spec = {"frames": str(files.frames), "warm_up": str(files.warm_up), "keyframe": str(files.keyframe),
            "out": str(out), "device": str(device), "batch_size": batch_size}  # fmt: skip
    command = [sys.executable, "-c", CORES_CHILD, ",".join(map(str, cpus)), str(HERE), json.dumps(spec)]
    env = {**os.environ, "OMP_NUM_THREADS": str(cores)}
    child = subprocess.run(command, env=env, capture_output=True, text=True, timeout=deadline.timeout())
    if child.returncode != 0:
        msg = f"the process on {cores} cores exited with {child.returncode}: {child.stderr[-3000:]}"
        raise RuntimeError(msg)
    return json.loads(child.stdout.strip().splitlines()[-1])


def cores_section(files: ShotFiles, batch_size: int, device: torch.device, work: Path, deadline: Deadline) -> None:
    """The default run with video on 16, 8, 4, 2 and 1 cores, each count this machine has."""
    available = len(os.sched_getaffinity(0))
    print("| cores | frames/s | GPU busy | CPU cores busy | cores seen / threads: frame stages, torch, OpenCV |")
    print("|---:|---:|---:|---:|---|")
    for cores in CORE_COUNTS:
        if cores > available:
            print(f"| {cores} | skipped: this machine has {available} | | | |", flush=True)
        elif deadline.passed():
            print(f"| {cores} | skipped: deadline | | | |", flush=True)
        else:
            try:
                row = rate_on_cores(cores, files, batch_size, device, work / f"cores{cores}", deadline)
            except Exception as error:  # one run's failure must not cost the others' figures
                print(f"| {cores} | {failure(error)} | | | |", flush=True)
                continue
            threads = row["threads"]
            print(f"| {cores} | {row['frames'] / row['seconds']:.1f} | {percent(row['gpu_busy'])} | "
                  f"{row['cpu_cores']:.1f} | {threads['affinity']} / {threads['frame_threads']}, {threads['torch']}, "
                  f"{threads['opencv']} |",
                  flush=True)  # fmt: skip
    print("\nthe default path (carry, fill auto) with video, 1920x1080 at 512, in a fresh process per row on the")
    print("first cores of os.sched_getaffinity; frame stages: `frame_threads`, at least 2")


# A fresh process that loads the model and colors one small frame: what the device's runtime and libraries hold.
MODEL_ONLY = (
    "import sys; sys.path.insert(0, sys.argv[1]); import numpy as np;"
    "from pipeline.colorize import ShotColorizer; c = ShotColorizer.from_weights(device=sys.argv[2]);"
    "tokens = c.encode_reference(np.full((288, 512, 3), 200, np.uint8), 512);"
    "c.predict_colors([np.full((288, 512), 255, np.uint8)], tokens, 512);" + PRINT_PEAK_RSS
)


def model_only_mb(device: torch.device, deadline: Deadline) -> float:
    """Peak RSS (MB) of a fresh process that only loaded the model on `device` and colored one 512x288 frame."""
    command = [sys.executable, "-c", MODEL_ONLY, str(HERE.parent), str(device)]
    child = subprocess.run(command, check=True, capture_output=True, text=True, timeout=deadline.timeout())
    return int(child.stdout.strip().splitlines()[-1]) / 1024


def memory_section(frames: int, device: torch.device, work: Path, deadline: Deadline) -> None:
    """Peak RSS of a fresh process coloring a 4K shot at 512 with a 16-core node's stage threads, and of one that
    only loaded the model, for the share of the device's runtime (CUDA's libraries are large)."""
    folder = make_shot(work / "uhd", frames, UHD)
    threads = frame_threads(NODE_CORES)
    peak = peak_memory_mb(folder, work / "uhd_out", 512, stage_threads=threads, device=str(device),
                          timeout=deadline.timeout())  # fmt: skip
    print(f"3840x2160, {frames} frames at 512, model on {device}, {threads} threads per full-resolution stage: "
          f"peak RSS {peak:.0f} MB (target: within {TARGET_MB} MB: {verdict(peak <= TARGET_MB)})")  # fmt: skip
    print(f"a process that only loaded the model on {device} and colored one 512x288 frame: "
          f"peak RSS {model_only_mb(device, deadline):.0f} MB")  # fmt: skip


def devset_section(folder: Path, colorizer: ShotColorizer) -> None:
    """Each case's first frame colored by the model at 512 in float32 on `colorizer`'s device and on the CPU."""
    from jobs.shot_eval import psnr  # only here: it brings scikit-image, which nothing else needs

    on_cpu = colorizer if colorizer.device.type == "cpu" else ShotColorizer.from_weights()  # both float32
    prepare = ShotColorizer.line_preparation(ShotOptions())
    print(f"| case | size | PSNR {colorizer.device} against cpu (dB) | largest difference (0-255) |")
    print("|---|---|---:|---:|")
    for case in sorted(path for path in folder.iterdir() if (path / "reference.png").is_file()):
        keyframe = read_frame(str(case / "reference.png"))
        lines = prepare(read_frame(list_frames(str(case / "lines"))[0], gray="auto")).lines
        colors = [each.predict_colors([lines], each.encode_reference(keyframe, 512), 512)[0]
                  for each in (colorizer, on_cpu)]  # fmt: skip
        difference = np.abs(colors[0].astype(np.int16) - colors[1]).max()
        print(f"| {case.name} | {lines.shape[1]}x{lines.shape[0]} | {psnr(*colors):.2f} | {difference} |", flush=True)


def summary_lines(rates: dict) -> list[str]:
    """The default run with video at 512 against 100 frames/s per GPU and a GPU busy at least half the time; and the
    model's flat colors with video, since the default path never calls the model and so leaves the GPU idle."""
    default = rates.get(("default: carry, fill auto", 512, True))
    model = rates.get(("model, flat", 512, True))
    return [
        "summary: " + ("the default run with video at 512 was not measured" if default is None else
                       f"default path (carry, {default.fill} fill) with H.264 video, 1920x1080 at 512: "
                       f"{against_targets(default)}; carried colors never call the model"),
        "         " + ("the model's flat colors with video at 512 were not measured" if model is None else
                       f"the model's colors, flat, with H.264 video: {against_targets(model)}"),
    ]  # fmt: skip


def against_targets(rate: Rate) -> str:
    """A run's frames/s and GPU busy share beside the targets, each met or not."""
    fps_met = rate.frames_per_second >= TARGET_FPS
    busy_met = None if rate.gpu_busy is None else rate.gpu_busy >= TARGET_BUSY
    return (f"{rate.frames_per_second:.1f} frames/s against {TARGET_FPS:.0f} per GPU ({verdict(fps_met)}), "
            f"GPU busy {percent(rate.gpu_busy)} against {TARGET_BUSY:.0%} or more ({verdict(busy_met)})")  # fmt: skip


def verdict(met: bool | None) -> str:
    return "n/a" if met is None else "met" if met else "NOT met"


def machine_lines(device: torch.device) -> list[str]:
    """The GPU, CUDA and the libraries the CPU work runs on, below `header_lines`."""
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        gpu = (f"gpu:     {properties.name}, {properties.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, "
               f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")  # fmt: skip
    else:
        gpu = f"gpu:     n/a (no CUDA device: everything runs on the CPU), torch {torch.__version__}"
    return [
        gpu,
        f"libs:    numpy {np.__version__}, Pillow {PIL.__version__}, OpenCV {cv2.__version__}, PyAV {av.__version__}; "
        f"{frame_threads()} threads per full-resolution stage (frame_threads)",
    ]


def failure(error: Exception) -> str:
    """A table cell for a run that failed; the traceback, and a subprocess's own errors, go to stderr."""
    traceback.print_exc()
    print(getattr(error, "stderr", None) or "", file=sys.stderr, flush=True)
    return f"FAILED: {type(error).__name__} (traceback on stderr)"


def section(name: str, deadline: Deadline, run: Callable[[], object]) -> object:
    """Run one section under a heading, unless the deadline passed; an error is printed and the run goes on."""
    print(f"\n## {name}\n", flush=True)
    if deadline.passed():
        print("skipped: the deadline passed", flush=True)
        return None
    started = time.monotonic()
    try:
        return run()
    except Exception as error:  # one section's failure must not cost the others' figures
        child_errors = getattr(error, "stderr", None) or ""  # a subprocess's, where it was one that failed
        print(f"FAILED:\n```\n{traceback.format_exc()}{str(child_errors)[-3000:]}\n```", flush=True)
        return None
    finally:
        print(f"\n({name}: {time.monotonic() - started:.0f} s)", flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="measure little, to test the script on a CPU")
    parser.add_argument("--skip", nargs="*", choices=SECTIONS, default=[], help="sections to leave out")
    parser.add_argument("--deadline", type=float, default=450, help="seconds after which nothing new is started")
    parser.add_argument("--frames", type=int, help="frames of the 1080p shot (default 96; --quick 4)")
    parser.add_argument("--batch-size", type=int, default=4, help="frames per model call in the pipeline")
    parser.add_argument("--devset", type=Path, help="case folders: also compare the GPU's colors with the CPU's")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="where the model runs (default: cuda where there is one)")  # fmt: skip
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    deadline = Deadline(args.deadline)
    plan = replace(QUICK if args.quick else FULL, **({"frames": args.frames} if args.frames else {}))
    device = torch.device(args.device)
    print("\n".join(header_lines() + machine_lines(device)), flush=True)
    colorizer = ShotColorizer.from_weights(device=device)
    rates: dict = {}
    with tempfile.TemporaryDirectory(prefix="inkpaint-gpu-node-") as temporary:
        work = Path(temporary)
        files = make_shot_files(work / "hd", plan.frames, args.batch_size, HD)
        print(f"shot:    {plan.frames} frames of {HD[0]}x{HD[1]} (the sample's line art), batch {args.batch_size}")
        if "model" not in args.skip:
            section("model alone", deadline, lambda: model_section(colorizer, plan))
        if "endtoend" not in args.skip:
            rates = section(
                "end to end", deadline, lambda: end_to_end_section(colorizer, files, args.batch_size, work, deadline)
            )
        if "cores" not in args.skip:
            section("cores", deadline, lambda: cores_section(files, args.batch_size, device, work, deadline))
        if "memory" not in args.skip:
            section("memory", deadline, lambda: memory_section(plan.memory_frames, device, work, deadline))
        if args.devset is not None:
            section("devset: GPU against CPU", deadline, lambda: devset_section(args.devset, colorizer))
    print("\n" + "\n".join(summary_lines(rates or {})), flush=True)


if __name__ == "__main__":
    main()
