"""What a shot is, how to color it and what became of it: Shot, ShotOptions, ShotResult and its FrameRecords.

ShotOptions is the one declaration of a shot's options. Each field carries an `Option`: its help, its range or
choices, whether it changes the colored frames, where a job spec and the command line take it. The command line
(cli.py), the job spec's checks (jobs/spec.py), the input fingerprint (jobs/plan.py) and the report (jobs/report.py)
are all made from OPTIONS, so a new option is one declaration here plus the code that uses it.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any

from model.files import DEFAULT_MAX_PIXELS
from pipeline.cel import DEPTHS, FORMATS, PAPERS, CelFormat
from pipeline.composite import FILLS
from pipeline.lineart import GUIDE_LINE_OPTIONS
from pipeline.outputs import WrittenFile
from pipeline.references import ShotReference
from pipeline.status import FrameStatus, ShotStatus
from pipeline.video import CODECS

# "auto" is float32 on every device, so that a render node paints the colors the workstation previewed. "bfloat16"
# runs the bottleneck and decoder under autocast (the encoders and attention stay float32, model/colorizer.py):
# faster on a GPU, but a region whose vote is close may still take another color.
PRECISIONS = ("auto", "float32", "bfloat16")
# Where a frame's colors come from (pipeline/correspondence.py): "carry", the keyframe's colors carried along
# correspondences between the line drawings; "combined", those and the model's for the closed regions the keyframe
# does not show; "model", the model's alone. "carry" is the default: on the development set of real anime it
# scored 22.5 dB PSNR, "combined" 22.1 (the model's colors, even snapped to the keyframe's, were worse than what was
# carried into the regions it colored) and "model" 11.4 (benchmarks/README.md).
COLOR_SOURCES = ("carry", "combined", "model")

_OPTION = "option"  # the key of a field's Option in its metadata
_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a text", dict: "a mapping"}


@dataclass(frozen=True)
class Option:
    """A ShotOptions field as those who show, check or record it see it. Declared with the field (`option`), read
    through OPTIONS.

    Args:
        help: what it does, for a person choosing it (the command line's help).
        changes_output: whether another value may color a frame differently. Such options are part of a shot's
            input fingerprint (jobs/plan.py): a rerun colors again a shot done with other values, and skips one
            done with the same.
        fingerprinted_at_default: whether the fingerprint holds the option at its default value too. False for
            options added after results tables recorded fingerprints: at their default a spec keeps the
            fingerprint it had before them, so a rerun of an earlier run still resumes it.
        low: the smallest value allowed, None for no bound.
        high: the largest value allowed, None for no bound.
        above_low: `low` itself is refused too (a frame rate must be above 0).
        choices: the values allowed, for a text option.
        switch: the command line's switch, when it is not `--name` (`--name/--no-name` for a yes/no option).
        video: a setting of the shot's video: a job spec sets it in its `video:` section.
        in_spec: whether a job spec sets it (not resume: `inkpaint run --no-resume` chooses it per run).
        on_command_line: whether colorize-shot has a switch for it.
        name: the field's name (filled in from the field).
        type: the field's type: int, float, bool, str or dict (filled in from the field).
        default: the field's default (filled in from the field).
    """

    help: str
    changes_output: bool
    fingerprinted_at_default: bool = True
    low: float | None = None
    high: float | None = None
    above_low: bool = False
    choices: tuple[str, ...] = ()
    switch: str | None = None
    video: bool = False
    in_spec: bool = True
    on_command_line: bool = True
    name: str = ""
    type: type = object
    default: Any = None

    def problem(self, value: object) -> str | None:
        """What is wrong with `value` for this option, or None."""
        if not _has_type(value, self.type):
            return f"expected {_TYPE_NAMES[self.type]}, got {value!r}"
        if self.choices and value not in self.choices:
            return f"unknown {self.name.replace('_', ' ')} {value!r}; choose one of {', '.join(self.choices)}"
        if self.type is float and not math.isfinite(value):
            return f"must be a finite number, got {value}"
        below = self.low is not None and (value < self.low or (self.above_low and value == self.low))
        if below or (self.high is not None and value > self.high):
            return f"must be {self.bounds()}, got {value}"
        return None

    def bounds(self) -> str:
        """The range allowed, as a person reads it: 'between 16 and 4096', 'at least 1', 'above 0'."""
        low = None if self.low is None else f"above {self.low}" if self.above_low else f"at least {self.low}"
        if low is not None and self.high is not None:
            return f"between {self.low} and {self.high}" if not self.above_low else f"{low} and at most {self.high}"
        return low or f"at most {self.high}"


def _has_type(value: object, kind: type) -> bool:
    """isinstance, except that True and False are no numbers and a whole number is a float."""
    if isinstance(value, bool):
        return kind is bool
    return isinstance(value, int | float) if kind is float else isinstance(value, kind)


def option(default: Any, help: str, *, changes_output: bool, **details: Any) -> Any:
    """A ShotOptions field declared with its `Option` (help, range or choices, whether it changes the output...)."""
    metadata = {_OPTION: Option(help, changes_output, **details)}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=metadata)
    return field(default=default, metadata=metadata)


class InvalidOptions(ValueError):
    """ShotOptions that cannot be used: `problems` holds (field name, what is wrong) pairs, the message all of them."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{name}: {problem}" for name, problem in problems))


@dataclass(frozen=True)
class ShotOptions:
    """How to color a shot. Each field's `option(...)` says what it does; the comments above a field say why.

    Values are checked when the options are made: InvalidOptions names every field whose value is out of its range,
    not one of its choices or of another type. A whole number given for a frame rate is kept as that float.
    """

    fps: float = option(24.0, "Video frame rate.", changes_output=True, low=0, above_low=True, video=True)
    codec: str = option("h264", "Video codec.", changes_output=True, choices=tuple(CODECS), video=True)
    # pipeline/cel.py `Background`: the files stay as `paper` says; only the video is laid over it.
    background: str = option(
        "",
        "URL of an image the video's frames are laid over, scaled to the frame size: the paper shows it, the line "
        "edges over the paper blend into it; empty: white. The frame files are written as --paper says.",
        changes_output=True,
        fingerprinted_at_default=False,
        video=True,
    )
    # The shipped weights were trained at 256; the model pads to its stride, so even 16 works.
    resolution: int = option(
        256,
        "Model working resolution, long side (the shipped weights were trained at 256); lines stay at the frames' "
        "own resolution.",
        changes_output=True,
        low=16,
        high=4096,
    )
    batch_size: int = option(4, "Frames per model call.", changes_output=False, low=1)
    # "auto": flat when the line art of the shot's first frame colored encloses paint regions, else soft.
    fill: str = option(
        "auto",
        "flat: one color per closed paint region, like a painted cel; soft: the model's colors as predicted; auto: "
        "flat when the line art encloses paint regions, else soft.",
        changes_output=True,
        choices=FILLS,
    )
    palette_lock: bool = option(
        False, "Flat regions take only the keyframe's own flat colors.", changes_output=True, switch="--palette-lock"
    )
    color_source: str = option(
        "carry",
        "carry: the keyframe's colors carried along correspondences between the drawings; combined: and the model's "
        "for regions the keyframe does not show; model: the model's colors alone.",
        changes_output=True,
        choices=COLOR_SOURCES,
    )
    # Tracking decides a region's color in the neighbouring frame nearer the keyframe first (pipeline/tracking.py).
    track: bool = option(
        True,
        "With flat fill and --color-source model: a paint region keeps its color from frame to frame unless the model "
        "clearly disagrees (carried colors hold from frame to frame by themselves).",
        changes_output=True,
    )
    # Chained frames count less than the keyframes (pipeline/references.py).
    chain: bool = option(
        False,
        "The latest colored frame joins the keyframes as a reference (at a lower weight).",
        changes_output=True,
        switch="--chain",
    )
    # pipeline/guidelines.py tells the colored guide lines from the black outline.
    guide_lines: str = option(
        "paint",
        "Colored (red, blue ...) guide lines separate paint regions, then are painted over or kept in their own "
        "color; off: they are read as gray ink.",
        changes_output=True,
        choices=GUIDE_LINE_OPTIONS,
    )
    # pipeline/lineclean.py.
    clean_lines: bool = option(
        True,
        "Normalise scanned or grey line art (paper to white, ink to black, specks removed) before coloring.",
        changes_output=True,
        switch="--clean-lines/--raw-lines",
    )
    # bfloat16 runs only the bottleneck and decoder under autocast; the encoders and attention stay float32.
    precision: str = option(
        "auto",
        "Model arithmetic; auto is float32 everywhere, so a GPU paints what a CPU previewed; bfloat16 is faster on a "
        "GPU and may color a close region differently.",
        changes_output=True,
        choices=PRECISIONS,
    )
    # The weights are frozen into the graph: on a 2-core CPU about 18% faster batches after a compile of 20-35 s on
    # the first batch of each new shape (about 8 s when inductor's on-disk cache holds it); a CPU needs a C++
    # compiler, and where compiling fails the shot runs uncompiled, with a warning. Not an output change: float32
    # sums in another order move a color by at most one level.
    compile: bool = option(
        False, "torch.compile the model (pays off on long shots).", changes_output=False, switch="--compile"
    )
    max_pixels: int = option(
        DEFAULT_MAX_PIXELS,
        "Refuse frames (and keyframes) with more pixels than this, before decoding them.",
        changes_output=False,
        low=1,
    )
    # pipeline/cel.py: what paper is, what the layers hold, what is drawn at 16 bits.
    paper: str = option(
        "white",
        "white: RGB frames over white paper; transparent: RGBA frames, the paper transparent and the lines' edges "
        "over it partly so, for a compositor to lay over a background (the video is over --background).",
        changes_output=True,
        fingerprinted_at_default=False,
        choices=PAPERS,
    )
    layers: bool = option(
        False,
        "Also write each frame's lines and paint as RGBA layers, in the folders lines/ and paint/ of the output "
        "folder, under the frame's name.",
        changes_output=True,
        fingerprinted_at_default=False,
        switch="--layers",
    )
    depth: str = option(
        "auto",
        "Bits per sample of the PNG or TIFF frames written; auto: 16 for 16-bit line art, else 8 (EXR frames are "
        "half float, made from 16-bit samples).",
        changes_output=True,
        fingerprinted_at_default=False,
        choices=DEPTHS,
    )
    file_format: str = option(
        "png",
        "File format of the frames written: png; tiff (Deflate); exr (OpenEXR, half float, linear light, alpha "
        "premultiplied, as compositing applications expect).",
        changes_output=True,
        fingerprinted_at_default=False,
        choices=tuple(FORMATS),
        switch="--format",
    )
    # A frame is skipped only when its PNG is still the very file an earlier run wrote (`Shot.recorded_outputs`).
    resume: bool = option(True, "Skip frames whose output file already exists.", changes_output=False, in_spec=False)
    storage_options: dict = option(
        {},
        "fsspec options for every URL (an S3 endpoint, a region ...); credentials are better left to the environment "
        "(AWS_*, GOOGLE_APPLICATION_CREDENTIALS), which s3fs and gcsfs read themselves.",
        changes_output=False,
        on_command_line=False,
    )

    def __post_init__(self) -> None:
        problems = []
        for declared in OPTIONS.values():
            value = getattr(self, declared.name)
            if declared.type is float and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, declared.name, value := float(value))  # one spelling in fingerprints
            if (problem := declared.problem(value)) is not None:
                problems.append((declared.name, problem))
        if self.palette_lock and self.fill == "soft":
            problems.append(("palette_lock", "locks the colors of flat regions: fill must be flat or auto"))
        if problems:
            raise InvalidOptions(problems)

    @property
    def cel_format(self) -> CelFormat:
        """How the frames are written."""
        return CelFormat(self.paper, self.layers, self.depth, self.file_format)


def _default(declared: Field) -> Any:
    return declared.default_factory() if declared.default is MISSING else declared.default


def _declared_options() -> dict[str, Option]:
    types = typing.get_type_hints(ShotOptions)
    return {
        f.name: replace(f.metadata[_OPTION], name=f.name, type=types[f.name], default=_default(f))
        for f in fields(ShotOptions)
    }


# Every shot option by field name, in declaration order.
OPTIONS: dict[str, Option] = _declared_options()


@dataclass(frozen=True)
class Shot:
    """What to color: one shot's frames, its keyframe and where the results go.

    Args:
        name: the shot's name in reports.
        frames: folder URL of line-art frames, or a video file of line art.
        reference: URL of the colored keyframe.
        output: folder URL receiving one PNG per frame.
        video: URL of the video to write, or None.
        frame_urls: the frames to color, in order, when the shot is part of a longer sequence in `frames`;
            empty: every frame of `frames`.
        keyframe_position: index of the frame the keyframe was painted on, when it is one of this shot's: the
            frames are then colored outward from it (it, its neighbours, theirs ...), nearest first. Ignored for a
            video file, which is decoded in order.
        extra_references: more keyframes of the shot (say its last drawing): every frame attends over all of
            them, each weighted by how near in time it was painted (pipeline/references.py), and frames are colored
            outward from each.
        reference_lines: URL of the main keyframe's own line art, when the studio has it (see `ShotReference`).
        recorded_outputs: the output files an earlier run wrote (names in `output`) with their size and SHA-256 as
            written (its frames table): with resume, the only files a rerun may keep (`existing_outputs`).
    """

    name: str
    frames: str
    reference: str
    output: str
    video: str | None = None
    frame_urls: tuple[str, ...] = ()
    keyframe_position: int | None = None
    extra_references: tuple[ShotReference, ...] = ()
    reference_lines: str | None = None
    recorded_outputs: Mapping[str, WrittenFile] = field(default_factory=dict)

    @property
    def references(self) -> tuple[ShotReference, ...]:
        """Every keyframe of the shot, the main one first."""
        return (ShotReference(self.reference, self.keyframe_position, self.reference_lines), *self.extra_references)


@dataclass(frozen=True)
class FrameFailure:
    """A frame that was not colored, and why."""

    frame: str
    reason: str


@dataclass
class FrameRecord:
    """One frame's outcome, a row of the results table.

    Args:
        frame: the input frame (URL, or the frame's name inside an input video).
        output: the output PNG's URL ("" when none was written).
        status: written, resumed (already there) or failed.
        bytes: size of the output PNG.
        seconds: this frame's share of its batch's model time.
        reason: why it failed.
        index: the frame's position in the shot (frames may be colored in another order).
        sha256: checksum of the output PNG's bytes (hex), for `inkpaint verify`.
    """

    frame: str
    output: str
    status: FrameStatus
    bytes: int = 0
    seconds: float = 0.0
    reason: str = ""
    index: int = 0
    sha256: str = ""


@dataclass
class ShotResult:
    """What happened to a shot.

    Args:
        shot: the shot's name.
        frames: frames in the input.
        written: frames colored and written by this run.
        resumed: frames skipped because their output was still there as written (resume).
        failures: frames not colored, with reasons.
        seconds: wall time of the shot.
        output: the output folder ("" for a shot colored in memory).
        video: the video written, if any.
        error: why the whole shot failed, if it did.
        worker: the node that ran it (set by jobs/).
        gpu: the GPU it ran on, "" for the CPU (set by jobs/).
        fill: the fill the frames got, "soft" or "flat" ("" before any frame was colored).
    """

    shot: str
    frames: int = 0
    written: int = 0
    resumed: int = 0
    failures: list[FrameFailure] = field(default_factory=list)
    records: list[FrameRecord] = field(default_factory=list)
    seconds: float = 0.0
    output: str = ""
    video: str | None = None
    error: str | None = None
    worker: str = ""
    gpu: str = ""
    fill: str = ""

    @property
    def status(self) -> ShotStatus:
        """ok: every frame is there; partial: some frames failed; failed: the shot could not run."""
        if self.error is not None:
            return ShotStatus.FAILED
        return ShotStatus.PARTIAL if self.failures else ShotStatus.OK

    @property
    def frames_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """A few lines for a person: what was done, how fast, and what failed."""
        if self.error is not None:
            return f"shot {self.shot}: FAILED: {self.error}"
        lines = [
            f"shot {self.shot}: {self.written} frames colored, {self.resumed} already done, "
            f"{len(self.failures)} failed, of {self.frames}, in {self.seconds:.1f} s "
            f"({self.frames_per_second:.2f} frames/s{f', {self.fill} fill' if self.fill else ''})"
            + (f" -> {self.output}" if self.output else "")
            + (f" and {self.video}" if self.video else "")
        ]
        lines += [f"  failed: {failure.frame}: {failure.reason}" for failure in self.failures]
        return "\n".join(lines)
