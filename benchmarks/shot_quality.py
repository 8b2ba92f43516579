"""How well shots are colored, scored against exact ground truth, for each stage of the pipeline.

    python benchmarks/shot_quality.py [--shots 6] [--frames 24-48] [--size 256] [--variants soft flat] [--json PATH]

Shots: --shots drawings of the OpenMoji TEST split (CC BY-SA 4.0) that have parts able to move on their own
(`model.synthetic_shots.find_parts`), each animated over a seeded number of frames in --frames with a seeded smooth
motion of the whole drawing (drift, turn, zoom, bob) and of up to two parts (an eased shift and turn). Moving the vector
drawing gives every frame's true colors and its exactly aligned line art. Frame 0's true colors are the keyframe.
Two line-art conditions: "clean" (the drawing's line group, rendered) and "xdog" (`model.xdog.extract_line_art` of
each true colored frame, what a studio without clean line art would feed in).

Variants (--variants): "baseline" (no model: the keyframe's colors under each frame's own lines) and the pipeline's
`ShotColorizer.run` with the ShotOptions fields in VARIANTS, one loaded model for all: the model's colors alone
(soft, flat, tracked, chained), then the keyframe's colors carried by correspondence, alone and combined with the
model's.

Scores per shot, then the mean over shots (the median in brackets):
- PSNR and SSIM against the true colored frames, mean over frames 1..T-1 (frame 0 is the keyframe's own frame);
- region accuracy (`pipeline.quality.region_accuracy`): the paint regions of the CLEAN truth line art of frames
  1..T-1, each region of at least 16 pixels counting once; a region is right when the median CIELAB color of the
  output in it is within Delta E (CIE76) < 10 of the truth's median in it;
- temporal error (`pipeline.quality.temporal_error`): over every pair of consecutive frames (0-1 included), the mean
  over pixels and channels of |(out_t - out_t-1) - (truth_t - truth_t-1)|: frame-to-frame change the truth lacks.
After the table, each stage is compared with the one before it: it should improve region accuracy or temporal error
and hurt neither. The script never fails on the numbers: it prints them.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.checkpoint import DEFAULT_WEIGHTS  # noqa: E402
from model.data import list_openmoji, render_openmoji_pair  # noqa: E402
from model.metrics import psnr, ssim  # noqa: E402
from model.synthetic_shots import DrawingPart, Motion, find_parts, random_part_motions, render_openmoji_shot  # noqa: E402
from model.xdog import extract_line_art  # noqa: E402
from pipeline.colorize import ShotColorizer  # noqa: E402
from pipeline.frames import list_frames, read_frame  # noqa: E402
from pipeline.outputs import write_frame  # noqa: E402
from pipeline.quality import (  # noqa: E402
    FrameRegions,
    keyframe_under_lines,
    region_accuracy,
    temporal_error,
    truth_regions,
)
from pipeline.shot import Shot, ShotOptions  # noqa: E402
from pipeline.status import ShotStatus  # noqa: E402

# Each variant's ShotOptions fields; None: computed here without the model.
VARIANTS: dict[str, dict | None] = {
    "baseline": None,
    "soft": {"fill": "soft", "color_source": "model"},
    "flat": {"fill": "flat", "track": False, "color_source": "model"},
    "flat+track": {"fill": "flat", "track": True, "color_source": "model"},
    "flat+track+chain": {"fill": "flat", "track": True, "chain": True, "color_source": "model"},
    # The keyframe's colors carried by correspondence (pipeline/correspondence.py), alone and with the model where
    # nothing corresponds; "carry+flat" is the shipped default (fill "auto" picks flat for these shots' line art).
    "carry": {"fill": "soft", "color_source": "carry"},
    "carry+flat": {"fill": "flat", "color_source": "carry"},
    "combined": {"fill": "soft", "color_source": "combined"},
    "combined+flat": {"fill": "flat", "color_source": "combined"},
}
CONDITIONS = ("clean", "xdog")
# Changes smaller than these count as "same" when a stage is compared with the one before it.
SAME_ACCURACY = 0.05  # percentage points
SAME_TEMPORAL = 0.005  # 0-255 units


# ---------------------------------------------------------------------------------------------------------------------
# Scoring


@dataclass
class ShotScore:
    """One shot's scores for one variant and line-art condition.

    Args:
        psnr: dB, mean over frames 1..T-1.
        ssim: mean over frames 1..T-1.
        region_accuracy: share (0-1) of the scored regions whose color is right, over frames 1..T-1.
        regions: regions scored.
        temporal_error: 0-255 units, mean over consecutive frame pairs.
    """

    psnr: float
    ssim: float
    region_accuracy: float
    regions: int
    temporal_error: float


def image_quality(output: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Mean PSNR (dB) and SSIM of colored frames against the truth, (T, H, W, 3) uint8 each.

    Args:
        output: the colored frames.
        truth: the true frames.
    """

    def tensor(frames: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255  # (T, 3, H, W)

    prediction, target = tensor(output), tensor(truth)
    return float(psnr(prediction, target).mean()), float(ssim(prediction, target).mean())


def score_shot(output: np.ndarray, truth: np.ndarray, regions: list[FrameRegions]) -> ShotScore:
    """Every score of one colored shot; frame 0 (the keyframe's frame) is left out of all but the temporal error.

    Args:
        output: (T, H, W, 3) uint8 colored frames.
        truth: (T, H, W, 3) uint8 true frames.
        regions: scored regions of true frames 1..T-1.
    """
    quality_psnr, quality_ssim = image_quality(output[1:], truth[1:])
    accuracy, count = region_accuracy(output[1:], regions)
    return ShotScore(quality_psnr, quality_ssim, accuracy, count, temporal_error(output, truth))


# ---------------------------------------------------------------------------------------------------------------------
# Shots


@dataclass
class BenchShot:
    """One animated drawing with its ground truth.

    Args:
        name: the drawing's OpenMoji name.
        color: (T, H, W, 3) uint8 true colored frames; frame 0 is the keyframe.
        lines: line-art condition -> (T, H, W) uint8 line art.
        regions: scored regions of true frames 1..T-1.
        moving_parts: parts moving on their own.
    """

    name: str
    color: np.ndarray
    lines: dict[str, np.ndarray]
    regions: list[FrameRegions]
    moving_parts: int


def parse_frames(text: str) -> tuple[int, int]:
    """The range a shot's length is drawn from: "24" -> (24, 24), "24-48" -> (24, 48)."""
    low, _, high = text.partition("-")
    try:
        shortest, longest = int(low), int(high or low)
    except ValueError:
        msg = f"--frames must be N or MIN-MAX, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not 2 <= shortest <= longest:
        msg = f"--frames needs 2 <= MIN <= MAX, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return shortest, longest


def random_motion(rng: np.random.Generator) -> Motion:
    """A smooth motion of the whole drawing: a drift, a turn, a zoom and a slow bob, kept mostly in the frame.

    Args:
        rng: the random source.
    """
    return Motion(
        translate_start=(rng.uniform(-0.06, 0.06), rng.uniform(-0.06, 0.06)),
        translate_end=(rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1)),
        rotate_start=rng.uniform(-8, 8),
        rotate_end=rng.uniform(-15, 15),
        scale_start=rng.uniform(0.8, 0.92),
        scale_end=rng.uniform(0.75, 0.92),
        bob=rng.uniform(0.0, 0.02),
        bob_period=rng.uniform(10, 20),
    )


def pick_drawings(count: int, rng: np.random.Generator) -> list[tuple[Path, list[DrawingPart]]]:
    """`count` drawings of the test split, in a seeded order, that have movable parts and enough line art and paint.

    Args:
        count: drawings wanted.
        rng: the random source.
    """
    paths = list_openmoji("test")
    chosen = []
    for index in rng.permutation(len(paths)):
        path = paths[index]
        parts = find_parts(path.read_text(encoding="utf-8"), str(path))
        if parts and render_openmoji_pair(path, 64) is not None:
            chosen.append((path, parts))
        if len(chosen) == count:
            return chosen
    msg = f"only {len(chosen)} test drawings have movable parts; asked for {count}"
    raise SystemExit(msg)


def xdog_lines(color: np.ndarray) -> np.ndarray:
    """Line art (T, H, W) uint8 extracted by XDoG from colored frames (T, H, W, 3) uint8."""
    return np.stack([(extract_line_art(frame) * 255).astype(np.uint8) for frame in color])


def build_shot(path: Path, parts: list[DrawingPart], frames: int, size: int, rng: np.random.Generator) -> BenchShot:
    """Animate one drawing and prepare its ground truth and both line-art conditions.

    Args:
        path: the OpenMoji SVG.
        parts: its movable parts.
        frames: the shot's length.
        size: frame width and height in pixels.
        rng: the random source for the motions.
    """
    motions = random_part_motions(parts, rng, count=2)
    arrays = render_openmoji_shot(path, frames, size, size, random_motion(rng), motions)
    regions = [truth_regions(arrays.color[t], arrays.line[t]) for t in range(1, frames)]
    lines = {"clean": arrays.line, "xdog": xdog_lines(arrays.color)}
    return BenchShot(arrays.name, arrays.color, lines, regions, len(motions))


# ---------------------------------------------------------------------------------------------------------------------
# Running


def variant_options(names: list[str], resolution: int, batch_size: int) -> dict[str, ShotOptions | None]:
    """Each variant's ShotOptions, all made before any work so that a field this checkout lacks stops the run at
    once, naming the variant.

    Args:
        names: the variants to run.
        resolution: the model's working resolution.
        batch_size: frames per model call.
    """
    options: dict[str, ShotOptions | None] = {}
    for name in names:
        fields = VARIANTS[name]
        try:
            options[name] = None if fields is None else ShotOptions(resolution=resolution, batch_size=batch_size,
                                                                    resume=False, **fields)  # fmt: skip
        except TypeError as error:
            msg = f"variant {name!r} needs ShotOptions{fields}, which this checkout cannot make: {error}"
            raise SystemExit(msg) from error
    return options


def write_frames(frames: np.ndarray, folder: Path) -> str:
    """Write (T, H, W[, 3]) uint8 frames as frame_0001.png ... into folder; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(frames):
        write_frame(frame, str(folder / f"frame_{index + 1:04d}.png"))
    return str(folder)


def colorize_shot(
    colorizer: ShotColorizer, lines_folder: str, keyframe: str, output: Path, options: ShotOptions
) -> tuple[np.ndarray, float]:
    """Color one shot through the pipeline; returns its frames (T, H, W, 3) uint8 and the seconds it took.

    Args:
        colorizer: the loaded colorizer.
        lines_folder: folder of the line-art frames.
        keyframe: the keyframe's PNG.
        output: folder for the colored frames.
        options: the variant's options.
    """
    result = colorizer.run(Shot(output.name, lines_folder, keyframe, str(output)), options)
    if result.status is not ShotStatus.OK:
        raise RuntimeError(result.summary())
    return np.stack([read_frame(url) for url in list_frames(str(output))]), result.seconds


def run_variants(
    shots: list[BenchShot],
    options: dict[str, ShotOptions | None],
    conditions: list[str],
    colorizer: ShotColorizer | None,
    work: Path,
) -> tuple[dict[str, dict[str, list[ShotScore]]], dict[str, dict[str, float]]]:
    """Color and score every shot under every variant and condition.

    Returns scores[variant][condition] (one per shot) and seconds[variant][condition] (pipeline time per frame).

    Args:
        shots: the shots.
        options: variant -> its options (None: the baseline).
        conditions: line-art conditions.
        colorizer: the loaded colorizer (None when only the baseline runs).
        work: a scratch folder.
    """
    scores = {name: {condition: [] for condition in conditions} for name in options}
    seconds = {name: {condition: 0.0 for condition in conditions} for name in options}
    for shot in shots:
        keyframe = work / shot.name / "key.png"
        write_frame(shot.color[0], str(keyframe))
        write_frames(shot.color, work / shot.name / "truth")
        for condition in conditions:
            lines = shot.lines[condition]
            folder = write_frames(lines, work / shot.name / condition / "lines")
            for name, shot_options in options.items():
                if shot_options is None:
                    started = time.perf_counter()
                    output = keyframe_under_lines(shot.color[0], lines)
                    took = time.perf_counter() - started
                else:
                    output_folder = work / shot.name / condition / name.replace("+", "-")
                    output, took = colorize_shot(colorizer, folder, str(keyframe), output_folder, shot_options)
                scores[name][condition].append(score_shot(output, shot.color, shot.regions))
                seconds[name][condition] += took / len(lines) / len(shots)
    return scores, seconds


# ---------------------------------------------------------------------------------------------------------------------
# Report


def summary(scores: list[ShotScore]) -> dict[str, float]:
    """Means over shots of every score, and medians of region accuracy and temporal error."""
    return {
        "psnr": statistics.fmean(s.psnr for s in scores),
        "ssim": statistics.fmean(s.ssim for s in scores),
        "region_accuracy": statistics.fmean(s.region_accuracy for s in scores),
        "region_accuracy_median": statistics.median(s.region_accuracy for s in scores),
        "temporal_error": statistics.fmean(s.temporal_error for s in scores),
        "temporal_error_median": statistics.median(s.temporal_error for s in scores),
    }


def table(summaries: dict[str, dict[str, dict[str, float]]], seconds: dict[str, dict[str, float]]) -> list[str]:
    """The results as markdown table lines, grouped by line-art condition."""
    lines = [
        "| lines | variant | PSNR dB | SSIM | region acc % (median) | temporal err (median) | ms/frame |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    conditions = next(iter(summaries.values())).keys()
    for condition in conditions:
        for name, by_condition in summaries.items():
            s = by_condition[condition]
            lines.append(
                f"| {condition} | {name} | {s['psnr']:.2f} | {s['ssim']:.4f} | {100 * s['region_accuracy']:.1f} "
                f"({100 * s['region_accuracy_median']:.1f}) | {s['temporal_error']:.2f} "
                f"({s['temporal_error_median']:.2f}) | {1000 * seconds[name][condition]:.0f} |"
            )
    return lines


def stage_verdict(before: dict[str, float], after: dict[str, float]) -> str:
    """Whether a stage improved region accuracy or temporal error (means over shots) without hurting the other.

    Args:
        before: the summary of the variant without the stage.
        after: the summary of the variant with it.
    """
    accuracy = 100 * (after["region_accuracy"] - before["region_accuracy"])  # percentage points; up is better
    temporal = after["temporal_error"] - before["temporal_error"]  # down is better
    better, worse = [], []
    if accuracy >= SAME_ACCURACY:
        better.append("region acc")
    elif accuracy <= -SAME_ACCURACY:
        worse.append("region acc")
    if temporal <= -SAME_TEMPORAL:
        better.append("temporal err")
    elif temporal >= SAME_TEMPORAL:
        worse.append("temporal err")
    changes = f"region acc {accuracy:+.1f} pts, temporal err {temporal:+.2f}"
    if worse:
        return f"{changes}: HURTS {' and '.join(worse)}"
    if better:
        return f"{changes}: improves {' and '.join(better)}, hurts nothing"
    return f"{changes}: no change"


def verdicts(summaries: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """One line per line-art condition and stage: the stage against the variant before it in the table."""
    names = list(summaries)
    lines = []
    for condition in next(iter(summaries.values())):
        for before, after in itertools.pairwise(names):
            verdict = stage_verdict(summaries[before][condition], summaries[after][condition])
            lines.append(f"{condition:>5}  {before} -> {after}: {verdict}")
    return lines


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, default=6, help="drawings, one shot each")
    parser.add_argument("--frames", type=parse_frames, default="24-48", help="shot length: N or MIN-MAX (seeded)")
    parser.add_argument("--size", type=int, default=256, help="frame width and height in pixels")
    parser.add_argument("--resolution", type=int, default=256, help="the model's working resolution")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--keep", type=Path, help="keep the frames (lines, outputs, truth) here")
    parser.add_argument("--json", type=Path, help="also save the numbers, per shot, as JSON here")
    args = parser.parse_args()
    if args.shots < 1 or args.size < 16:
        parser.error(f"--shots must be at least 1 and --size at least 16, got {args.shots} and {args.size}")
    args.variants = [name for name in VARIANTS if name in args.variants]  # the stages in their order
    return args


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    options = variant_options(args.variants, args.resolution, args.batch_size)
    rng = np.random.default_rng(args.seed)
    shots = [
        build_shot(path, parts, int(rng.integers(args.frames[0], args.frames[1] + 1)), args.size, rng)
        for path, parts in pick_drawings(args.shots, rng)
    ]
    colorizer = None
    if any(option is not None for option in options.values()):
        colorizer = ShotColorizer.from_weights(args.weights, device=args.device)
    with tempfile.TemporaryDirectory(prefix="inkpaint-quality-") as scratch:
        work = args.keep or Path(scratch)
        scores, seconds = run_variants(shots, options, args.conditions, colorizer, work)
    summaries = {name: {c: summary(by_condition[c]) for c in args.conditions} for name, by_condition in scores.items()}
    wall = time.perf_counter() - started

    frames = [len(shot.color) for shot in shots]
    print(f"command: python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:])}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), {args.device}, CPython {platform.python_version()}")  # fmt: skip
    print(f"date:    {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; wall {wall:.0f} s; "
          f"weights {Path(args.weights).name}")  # fmt: skip
    print(f"shots:   {len(shots)} of {args.size}x{args.size} ({sum(frames)} frames: "
          + ", ".join(f"{shot.name} {len(shot.color)}f/{shot.moving_parts}p" for shot in shots) + "); f frames, "
          "p parts moving on their own")  # fmt: skip
    print("scores:  means over shots (median in brackets); frame 0, the keyframe's, left out of all but temporal err")
    print()
    print("\n".join(table(summaries, seconds)))
    print()
    print("\n".join(verdicts(summaries)))
    if args.json:
        report = {
            "command": sys.argv,
            "machine": {"cpus": os.cpu_count(), "torch": torch.__version__, "device": args.device},
            "wall_s": wall,
            "shots": [{"name": s.name, "frames": len(s.color), "moving_parts": s.moving_parts} for s in shots],
            "summary": summaries,
            "seconds_per_frame": seconds,
            "per_shot": {name: {c: [asdict(s) for s in by_c[c]] for c in by_c} for name, by_c in scores.items()},
        }
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
