"""Scoring inkpaint on a studio's own finished shots: `inkpaint eval --shots DIR`.

A studio's finished, colored shots are the truest test it has: each one is colored again from its own first frame
and line art, and the result is compared with what the colorists painted. Each entry of DIR is one shot: a case
folder (keyframe, line art, truth) or a folder of colored frames or a video cut into one (`jobs.shot_eval_cases`),
in a temporary folder: nothing is written into DIR. The scores are shown as tables and an HTML page by
`jobs.shot_eval_tables`.

Every case is colored in process, through the same `ShotColorizer.run` as `colorize-shot`, once per variant (one
row of the table per stage, so a reader sees what each stage adds); two baselines are computed without the model:
the keyframe's pixels under each frame's lines, and the lines alone.

Scores, per target frame, then per shot (the mean over its frames), then overall (the mean over shots, each shot
counting once whatever its length):
- PSNR in dB on 0-255 RGB; a frame identical to the truth scores `PSNR_CAP` (100 dB) rather than infinity, so
  that one perfect frame cannot make a mean infinite;
- SSIM (`model.metrics.image_ssim`: the paper's 11-tap Gaussian window, as training reports it; channels averaged);
- temporal error (`pipeline.quality.temporal_error`): over consecutive frames, the keyframe counting as frame 0
  of both the output and the truth, the mean over pixels and channels of |(out_t - out_t-1) - (truth_t - truth_t-1)|
  in 0-255 levels, averaged over the pairs: the change from frame to frame that the output has and the truth does
  not (flicker, a color that jumps). Lower is better. A shot of one target frame has one pair.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from jobs.shot_eval_cases import (
    DEFAULT_MAX_FRAMES,
    LINES_FOLDER,
    REFERENCE_NAME,
    CaseData,
    ShotSource,
    find_shots,
    load_case,
    write_case_folder,
)
from model.metrics import image_ssim
from model.train import resolve_device
from pipeline.colorize import ShotColorizer
from pipeline.frames import read_frame
from pipeline.quality import keyframe_under_lines, temporal_error
from pipeline.shot import Shot, ShotOptions
from pipeline.status import ShotStatus

log = logging.getLogger(__name__)

# A frame equal to the truth has an infinite PSNR; it scores this instead (model.metrics.psnr caps there too).
PSNR_CAP = 100.0
# Panels of the HTML page's strips are scaled down to this height (never up).
STRIP_HEIGHT = 240
STRIP_GAP = 4


@dataclass(frozen=True)
class Variant:
    """One row of the table: a baseline computed here, or the pipeline with some ShotOptions changed.

    Args:
        name: the row's name, as given to --variants.
        description: one line for a reader of the table.
        options: ShotOptions fields this variant sets over the command's own; None for a baseline.
    """

    name: str
    description: str
    options: dict[str, object] | None = None

    @property
    def is_baseline(self) -> bool:
        return self.options is None


KEYFRAME_BASELINE = "keyframe-under-lines"
VARIANTS: tuple[Variant, ...] = (
    Variant(KEYFRAME_BASELINE, "the keyframe's pixels multiplied by each frame's lines, no model"),
    Variant("lines-on-white", "the lines alone"),
    Variant("model", "the model's colors as predicted", {"color_source": "model", "fill": "soft"}),
    Variant("model+flat", "the model's, flat per region (until now)", {"color_source": "model", "fill": "auto"}),
    Variant("carry", "the keyframe's carried along line correspondences", {"color_source": "carry", "fill": "soft"}),
    Variant("carry+flat", "carried colors, flat per region", {"color_source": "carry", "fill": "auto"}),
    Variant("combined", "carried, the model's where nothing corresponds", {"color_source": "combined", "fill": "soft"}),
    Variant("combined+flat", "combined colors, flat per region", {"color_source": "combined", "fill": "auto"}),
    Variant("default", "ShotOptions' defaults: what inkpaint ships", {}),
)
VARIANT_NAMES = tuple(variant.name for variant in VARIANTS)
PIPELINE_VARIANT_NAMES = tuple(variant.name for variant in VARIANTS if not variant.is_baseline)


def select_variants(names: str | Sequence[str] | None = None) -> tuple[Variant, ...]:
    """The variants to run, in table order: the baselines always, and the named pipeline variants (all when None).

    Args:
        names: variant names, or one comma-separated string of them ("model,carry").

    Raises:
        ValueError: a name that is not in VARIANTS, with the valid ones.
    """
    if names is None:
        return VARIANTS
    if isinstance(names, str):
        names = [name.strip() for name in names.split(",")]
    wanted = [name for name in names if name]
    unknown = [name for name in wanted if name not in VARIANT_NAMES]
    if unknown:
        msg = f"unknown variant {', '.join(map(repr, unknown))}; choose from {', '.join(VARIANT_NAMES)}"
        raise ValueError(msg)
    if not wanted:
        msg = f"no variant named in {names!r}; choose from {', '.join(VARIANT_NAMES)}"
        raise ValueError(msg)
    return tuple(variant for variant in VARIANTS if variant.is_baseline or variant.name in wanted)


# ---------------------------------------------------------------------------------------------------------------------
# Metrics


def psnr(output: np.ndarray, truth: np.ndarray) -> float:
    """PSNR in dB of a (H, W, 3) uint8 frame against the truth on the 0-255 scale, at most PSNR_CAP."""
    _check_same_shape(output, truth)
    mse = float(np.mean((output.astype(np.float64) - truth.astype(np.float64)) ** 2))
    if mse == 0:
        return PSNR_CAP
    return min(PSNR_CAP, 10 * float(np.log10(255.0**2 / mse)))


def ssim(output: np.ndarray, truth: np.ndarray) -> float:
    """SSIM of a (H, W, 3) uint8 frame against the truth: `model.metrics.image_ssim`, the definition training
    reports (frames must be at least 11 pixels a side)."""
    _check_same_shape(output, truth)
    return image_ssim(output, truth, data_range=255)


def _check_same_shape(output: np.ndarray, truth: np.ndarray) -> None:
    if output.shape != truth.shape:
        msg = f"an output frame is {output.shape} but its true frame is {truth.shape}; they must match"
        raise ValueError(msg)


@dataclass(frozen=True)
class ShotScore:
    """One shot's scores for one variant.

    Args:
        frame_psnr: PSNR (dB) of each target frame.
        frame_ssim: SSIM of each target frame.
        temporal_error: see `temporal_error`, the keyframe counting as frame 0.
    """

    frame_psnr: tuple[float, ...]
    frame_ssim: tuple[float, ...]
    temporal_error: float

    @property
    def psnr(self) -> float:
        return statistics.fmean(self.frame_psnr)

    @property
    def ssim(self) -> float:
        return statistics.fmean(self.frame_ssim)

    @property
    def frames(self) -> int:
        return len(self.frame_psnr)


def score_shot(outputs: Sequence[np.ndarray], truth: Sequence[np.ndarray], keyframe: np.ndarray) -> ShotScore:
    """Every score of one colored shot.

    Args:
        outputs: the colored target frames (frame 1 on), (H, W, 3) uint8 each.
        truth: their true frames.
        keyframe: frame 0, (H, W, 3) uint8 at the targets' size: the first pair of the temporal error.
    """
    if not outputs or len(outputs) != len(truth):
        msg = f"score_shot needs one output per true frame and at least one, got {len(outputs)} and {len(truth)}"
        raise ValueError(msg)
    return ShotScore(
        frame_psnr=tuple(psnr(out, true) for out, true in zip(outputs, truth, strict=True)),
        frame_ssim=tuple(ssim(out, true) for out, true in zip(outputs, truth, strict=True)),
        temporal_error=temporal_error([keyframe, *outputs], [keyframe, *truth]),
    )


# ---------------------------------------------------------------------------------------------------------------------
# Running


def lines_on_white(lines: np.ndarray) -> np.ndarray:
    """Baseline: a frame's (H, W) uint8 lines as an RGB image."""
    return np.repeat(lines[..., None], 3, axis=2)


def baseline_outputs(variant: Variant, case: CaseData) -> list[np.ndarray]:
    """A baseline's frames for a case."""
    if variant.name == KEYFRAME_BASELINE:
        return [keyframe_under_lines(case.keyframe, lines) for lines in case.lines]
    return [lines_on_white(lines) for lines in case.lines]


def pipeline_outputs(
    colorizer: ShotColorizer, case: CaseData, variant: Variant, options: ShotOptions
) -> list[np.ndarray]:
    """The case colored by `colorizer.run` with the variant's options over `options`, read back in frame order.

    Raises:
        RuntimeError: the pipeline reported a failed or partial shot, or wrote a frame of the wrong size.
    """
    shot_options = dataclasses.replace(options, resume=False, **(variant.options or {}))
    with tempfile.TemporaryDirectory(prefix="inkpaint-eval-out-") as output:
        shot = Shot(name=case.name, frames=str(case.folder / LINES_FOLDER),
                    reference=str(case.folder / REFERENCE_NAME), output=output)  # fmt: skip
        result = colorizer.run(shot, shot_options)
        if result.status is not ShotStatus.OK:
            raise RuntimeError(result.summary())
        frames = [read_frame(f"{output}/{name}") for name in case.output_names]
    for name, frame, true in zip(case.output_names, frames, case.truth, strict=True):
        if frame.shape != true.shape:
            msg = f"the pipeline wrote {name} as {frame.shape}, its truth is {true.shape}"
            raise RuntimeError(msg)
    return frames


@dataclass(frozen=True)
class Strip:
    """One frame shown side by side on the HTML page: keyframe, line art, result, truth.

    Args:
        frame: the target frame's number (1 = the first after the keyframe).
        image: the strip, (h, 4w + 3 * STRIP_GAP, 3) uint8, scaled down to STRIP_HEIGHT.
        psnr: the result's PSNR (dB) on this frame.
        ssim: the result's SSIM on this frame.
    """

    frame: int
    image: np.ndarray
    psnr: float
    ssim: float


def make_strips(case: CaseData, outputs: Sequence[np.ndarray], score: ShotScore) -> list[Strip]:
    """Strips of the first, middle and last target frames of a case."""
    count = len(case.truth)
    strips = []
    for index in sorted({0, count // 2, count - 1}):
        panels = [case.keyframe, lines_on_white(case.lines[index]), outputs[index], case.truth[index]]
        height, width = case.truth[index].shape[:2]
        if height > STRIP_HEIGHT:
            size = (max(1, round(width * STRIP_HEIGHT / height)), STRIP_HEIGHT)
            panels = [np.asarray(Image.fromarray(panel).resize(size, Image.Resampling.BOX)) for panel in panels]
        gap = np.full((panels[0].shape[0], STRIP_GAP, 3), 128, np.uint8)  # where one panel ends and the next begins
        image = np.concatenate([panels[0], gap, panels[1], gap, panels[2], gap, panels[3]], axis=1)
        strips.append(Strip(index + 1, image, score.frame_psnr[index], score.frame_ssim[index]))
    return strips


@dataclass
class CaseResult:
    """What one shot scored.

    Args:
        name: the shot's name (its entry in DIR).
        kind: see `ShotSource`.
        frames: target frames scored (the keyframe is not one).
        size: (width, height) of its frames.
        scores: each variant's scores.
        failures: variants that failed on this shot, with why.
        error: why the shot could not be read at all, if it could not.
        strips: pictures of a few frames for the HTML page.
        seconds: wall time of all its variants.
    """

    name: str
    kind: str
    frames: int = 0
    size: tuple[int, int] = (0, 0)
    scores: dict[str, ShotScore] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    strips: list[Strip] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failures


@dataclass(frozen=True)
class VariantSummary:
    """A variant's scores over the shots it colored, each shot counting once.

    Args:
        shots: shots scored.
        psnr: mean PSNR (dB).
        ssim: mean SSIM.
        temporal_error: mean temporal error (0-255 levels).
        psnr_gain: mean PSNR difference (dB) against keyframe-under-lines on the same shots.
    """

    shots: int
    psnr: float
    ssim: float
    temporal_error: float
    psnr_gain: float


@dataclass
class ShotEvalResult:
    """A shot evaluation: its settings and every shot's scores.

    Args:
        folder: the shots folder.
        variants: the variants run, in table order.
        cases: one result per shot, in DIR's natural order.
        shown: the variant whose pictures and per-shot SSIM and temporal error are shown.
        weights: the weights' path or URL.
        weights_sha256: their checksum.
        preset: their network preset.
        options: the pipeline options the variants start from.
        max_frames: the most frames taken from a video or a frame folder.
        device: where the model ran.
    """

    folder: str
    variants: tuple[Variant, ...]
    cases: list[CaseResult]
    shown: str
    weights: str = ""
    weights_sha256: str = ""
    preset: str = ""
    options: ShotOptions = field(default_factory=ShotOptions)
    max_frames: int = DEFAULT_MAX_FRAMES
    device: str = "cpu"

    @property
    def scored(self) -> list[CaseResult]:
        """The shots that could be read."""
        return [case for case in self.cases if case.error is None]

    @property
    def failed(self) -> list[CaseResult]:
        """The shots that could not be read or on which a variant failed."""
        return [case for case in self.cases if not case.ok]

    def summary(self, variant: str) -> VariantSummary | None:
        """A variant's means over the shots it scored; None when it scored none."""
        scores = [case.scores[variant] for case in self.cases if variant in case.scores]
        if not scores:
            return None
        gains = [case.scores[variant].psnr - case.scores[KEYFRAME_BASELINE].psnr for case in self.cases
                 if variant in case.scores and KEYFRAME_BASELINE in case.scores]  # fmt: skip
        return VariantSummary(
            shots=len(scores),
            psnr=statistics.fmean(score.psnr for score in scores),
            ssim=statistics.fmean(score.ssim for score in scores),
            temporal_error=statistics.fmean(score.temporal_error for score in scores),
            psnr_gain=statistics.fmean(gains) if gains else float("nan"),
        )

    @property
    def title(self) -> str:
        frames = sum(case.frames for case in self.scored)
        return (
            f"inkpaint eval --shots {self.folder}: {len(self.scored)} shots, {frames} frames; weights "
            f"{Path(self.weights).name or '?'} ({self.preset}, sha256 {self.weights_sha256[:12]}), resolution "
            f"{self.options.resolution}, batch {self.options.batch_size}, max frames {self.max_frames}, {self.device}"
        )


def evaluate_case(
    case: CaseData, colorizer: ShotColorizer, options: ShotOptions, variants: Sequence[Variant], shown: str
) -> CaseResult:
    """Color and score one case under every variant; a variant that fails is recorded and the others go on."""
    result = CaseResult(case.name, case.kind, len(case.truth), (case.truth[0].shape[1], case.truth[0].shape[0]))
    started = time.monotonic()
    for variant in variants:
        variant_started = time.monotonic()
        try:
            if variant.is_baseline:
                outputs = baseline_outputs(variant, case)
            else:
                outputs = pipeline_outputs(colorizer, case, variant, options)
        # Anything the pipeline raises fails this variant of this shot only: a stage mid-change must not hide
        # every other row of the table.
        except Exception as error:
            result.failures[variant.name] = f"{type(error).__name__}: {error}"
            log.warning("%s: %s failed: %s", case.name, variant.name, result.failures[variant.name])
            continue
        score = score_shot(outputs, case.truth, case.keyframe)
        result.scores[variant.name] = score
        if variant.name == shown:
            result.strips = make_strips(case, outputs, score)
        log.info("%s: %-20s PSNR %6.2f dB, SSIM %.3f, temporal error %5.2f (%.1f s)", case.name, variant.name,
                 score.psnr, score.ssim, score.temporal_error, time.monotonic() - variant_started)  # fmt: skip
    result.seconds = time.monotonic() - started
    return result


def evaluate_shots(
    sources: Iterable[ShotSource],
    colorizer: ShotColorizer,
    options: ShotOptions,
    variants: Sequence[Variant] = VARIANTS,
    max_frames: int = DEFAULT_MAX_FRAMES,
    folder: str = "",
    weights: str = "",
) -> ShotEvalResult:
    """Score every shot under every variant with one loaded colorizer; a shot that cannot be read is recorded with
    why, and the others go on.

    Args:
        sources: the shots (see `find_shots`).
        colorizer: the loaded colorizer, used for every pipeline variant.
        options: the pipeline options every variant starts from (resume is always off).
        variants: the rows of the table (see `select_variants`).
        max_frames: the most frames taken from a video or a frame folder, the keyframe included.
        folder: the shots folder, for the title.
        weights: the weights' path or URL, for the title.

    Raises:
        ValueError: max_frames under 2, or no shot could be read at all (naming each with why).
    """
    if max_frames < 2:
        msg = f"max_frames must be at least 2 (a keyframe and a frame to color), got {max_frames}"
        raise ValueError(msg)
    pipeline = [variant.name for variant in variants if not variant.is_baseline]
    shown = "default" if "default" in pipeline else (pipeline[-1] if pipeline else KEYFRAME_BASELINE)
    info = colorizer.info
    result = ShotEvalResult(folder=folder, variants=tuple(variants), cases=[], shown=shown, weights=weights,
                            weights_sha256=info.sha256 if info else "", preset=info.preset if info else "",
                            options=options, max_frames=max_frames, device=str(colorizer.device))  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="inkpaint-eval-") as work:
        for index, source in enumerate(sources):
            case_folder = Path(work) / f"case-{index:03d}"
            try:
                if source.kind != "case":
                    write_case_folder(source, case_folder, max_frames)
                case = load_case(source.path if source.kind == "case" else case_folder, source.name, source.kind)
            except (ValueError, OSError) as error:  # FrameError and VideoError are ValueErrors
                log.warning("%s: cannot be scored: %s", source.name, error)
                result.cases.append(CaseResult(source.name, source.kind, error=str(error)))
                continue
            log.info("%s: %d frames (%s), %d variants", source.name, len(case.truth), source.kind, len(variants))
            result.cases.append(evaluate_case(case, colorizer, options, variants, shown))
            shutil.rmtree(case_folder, ignore_errors=True)  # a long folder of shots needs the disk of one at a time
    if not result.scored:
        reasons = "; ".join(f"{case.name}: {case.error}" for case in result.cases)
        msg = f"no usable shot in {folder or 'the shots given'}: {reasons}"
        raise ValueError(msg)
    return result


def run_shot_eval(
    folder: str | Path,
    weights: str,
    device: str = "cpu",
    variants: str | Sequence[str] | None = None,
    resolution: int = 256,
    batch_size: int = 4,
    max_frames: int = DEFAULT_MAX_FRAMES,
) -> ShotEvalResult:
    """`inkpaint eval --shots`: find the shots, load the weights once, score every shot.

    Args:
        folder: the shots folder (see the module's docstring).
        weights: colorizer weights (.safetensors path or URL).
        device: "auto", "cpu", "cuda" or "cuda:N".
        variants: pipeline variants to run besides the baselines (see `select_variants`); None: all.
        resolution: the model's working resolution (long side).
        batch_size: frames per model call.
        max_frames: the most frames taken from a video or a frame folder, the keyframe included.

    Raises:
        ValueError: an unknown variant, no shot in the folder, or none readable; CheckpointError (a ValueError)
            for weights that cannot be loaded. Checked before any weights are loaded where possible.
    """
    chosen = select_variants(variants)
    sources = find_shots(folder)
    colorizer = ShotColorizer.from_weights(weights, resolve_device(device))
    options = ShotOptions(resolution=resolution, batch_size=batch_size, resume=False)
    return evaluate_shots(sources, colorizer, options, chosen, max_frames, folder=str(folder), weights=weights)
