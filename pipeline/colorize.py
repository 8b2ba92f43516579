"""One shot's coloring: frames + keyframe in, colored PNG frames (and a video) out.

`ShotColorizer` holds a loaded colorizer. For a shot it encodes the keyframe once, reads the line art ahead on
threads (as 8-bit gray), runs the model in batches, and hands the colors to a finishing thread that composites the
artist's lines over them at full resolution, writes each PNG atomically behind on threads and feeds the video
encoder in frame order: the model never waits for full-resolution work. A frame that cannot be read or written is
recorded with its reason; the others go on. No Ray and no Click here: jobs/ runs this inside an actor.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Container, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch

from model.checkpoint import DEFAULT_WEIGHTS, CheckpointInfo, load_colorizer
from model.colorizer import Colorizer
from pipeline.carried import finish_carried
from pipeline.correspondence import Correspondence, ShotCarrier, keyframe_line_art
from pipeline.frames import (
    DEFAULT_MAX_PIXELS,
    FrameRead,
    FrameReader,
    FrameWriter,
    WrittenFile,
    check_output_names,
    intact_outputs,
    list_frames,
    output_name,
    read_frame,
    remove_stale_temporaries,
)
from pipeline.lineart import (
    FrameGeometry,
    LineArt,
    colors_to_rgb,
    composite_lines,
    finish_frame,
    fit_frame,
    has_closed_regions,
    prepare_line_art,
    to_model_line,
    to_model_reference,
    vote_frame,
)
from pipeline.references import FrameReferences, ReferenceBank, ShotReference
from pipeline.regions import RegionVote, keyframe_palette, paint_regions
from pipeline.status import FrameStatus, ShotStatus
from pipeline.tracking import RegionTracker
from pipeline.video import VideoFeed, VideoWriter, decode_video

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
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
class ShotOptions:
    """How to color a shot.

    Args:
        resolution: the model's working resolution (long side, never above the frame's own).
        batch_size: frames per model call.
        resume: skip frames whose output PNG is still the very file an earlier run wrote (`existing_outputs`).
        fps: video frame rate.
        codec: video codec: h264, prores or ffv1.
        fill: "soft" (the model's colors as predicted), "flat" (one color per closed paint region), or "auto":
            flat when the line art of the shot's first frame colored encloses paint regions, else soft.
        palette_lock: with flat fill, every region takes the nearest of the keyframe's own flat colors.
        track: with flat fill and the model's colors alone (color_source "model"), a region keeps the color it had
            in the neighbouring frame nearer the keyframe unless the model clearly disagrees (pipeline/tracking.py).
        chain: the latest colored frame on each side of a keyframe joins the references of the next frames, at a
            lower weight than the keyframes (pipeline/references.py).
        clean_lines: normalise scanned or grey line art to white paper and dark ink first (pipeline/lineclean.py).
        guide_lines: colored guide lines separate paint regions and are then painted over ("paint") or kept in
            their own color ("keep"); "off" reads them as gray ink (pipeline/guidelines.py).
        precision: the model's arithmetic: "float32"; "bfloat16" (autocast on the bottleneck and decoder only, the
            encoders and attention stay float32); "auto", float32 on every device.
        compile: run the model through torch.compile, its weights frozen into the graph: on a 2-core CPU about
            18% faster batches after a compile of 20-35 s on the first batch of each new shape (about 8 s when
            inductor's on-disk cache holds it already); pays off on long shots. A CPU needs a C++ compiler for it;
            where compiling fails, the shot runs uncompiled, with a warning.
        max_pixels: refuse frames larger than this many pixels.
        color_source: where the colors come from, see COLOR_SOURCES.
        storage_options: fsspec options for every URL (e.g. an S3 endpoint and keys).
    """

    resolution: int = 256
    batch_size: int = 4
    resume: bool = True
    fps: float = 24.0
    codec: str = "h264"
    fill: str = "auto"
    palette_lock: bool = False
    track: bool = True
    chain: bool = False
    clean_lines: bool = True
    guide_lines: str = "paint"
    precision: str = "auto"
    compile: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    color_source: str = "carry"
    storage_options: dict = field(default_factory=dict)


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
        output: the output folder.
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
            f"({self.frames_per_second:.2f} frames/s{f', {self.fill} fill' if self.fill else ''}) -> {self.output}"
            + (f" and {self.video}" if self.video else "")
        ]
        lines += [f"  failed: {failure.frame}: {failure.reason}" for failure in self.failures]
        return "\n".join(lines)


def existing_outputs(shot: Shot, options: ShotOptions) -> dict[str, WrittenFile]:
    """The outputs a rerun keeps, by name: with resume, those of `shot.recorded_outputs` still there byte for byte
    (the SHA-256 recorded when they were written) that decode. Any other file under an output's name (changed,
    truncated, never recorded) is colored again and replaced; nothing is kept without resume. First, temporaries
    an interrupted run left of the shot's PNGs are removed."""
    remove_stale_temporaries(shot.output, lambda name: name.endswith(".png"), options.storage_options)
    if not options.resume or not shot.recorded_outputs:
        return {}
    return intact_outputs(shot.output, shot.recorded_outputs, options.storage_options, workers=frame_threads())


def count_shot_frames(shot: Shot, options: ShotOptions) -> int:
    """How many frames a shot has (a video is decoded to count: container frame counts are unreliable)."""
    if shot.frame_urls:
        return len(shot.frame_urls)
    if is_video(shot.frames):
        return sum(1 for _ in decode_video(shot.frames, options.storage_options))
    return len(list_frames(shot.frames, options.storage_options))


def outward_order(count: int, starts: int | tuple[int, ...]) -> list[int]:
    """Frame indices outward from the keyframes at `starts`, nearest to one first, at equal distance later before
    earlier: 3 of 6 -> 3, 4, 2, 5, 1, 0; (0, 5) of 6 -> 5, 0, 4, 1, 3, 2. Every frame then comes after its
    neighbour nearer a keyframe, the order region tracking and chaining need."""
    starts = (starts,) if isinstance(starts, int) else starts
    clipped = [min(max(start, 0), count - 1) for start in starts] or [0]
    return sorted(range(count), key=lambda i: (min(abs(i - start) for start in clipped), -i))


def encode_video_from_outputs(shot: Shot, options: ShotOptions, records: list[FrameRecord]) -> None:
    """Write the shot's video from its output PNGs in frame order; a frame without one holds the previous frame."""
    video = VideoWriter(shot.video, fps=options.fps, codec=options.codec, storage_options=options.storage_options)
    try:
        for record in records:
            frame = None
            if record.output:
                frame = read_frame(record.output, options.storage_options, max_pixels=options.max_pixels)
            video.write_or_hold(frame)
    except BaseException:
        video.abort()
        raise
    video.close()


def video_line_art(
    url: str, total: int, storage_options: dict, prepare: Callable[[np.ndarray], LineArt]
) -> Iterator[FrameRead]:
    """The frames of a line-art video, prepared, named frame_00001.png ... (zero-padded to fit `total`)."""
    width = max(5, len(str(total)))
    for index, rgb in enumerate(decode_video(url, storage_options)):
        name = f"frame_{index + 1:0{width}d}.png"
        try:
            yield FrameRead(index, name, prepare(rgb), None)
        except ValueError as error:
            yield FrameRead(index, name, None, error)


def is_video(url: str) -> bool:
    return url.lower().endswith(VIDEO_EXTENSIONS)


def join_url(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}"


@dataclass
class PendingFrame:
    """A frame on its way through the shot: its output name and, once known, its pixels or its failure."""

    index: int
    name: str
    source: str
    art: LineArt | None = None  # the prepared line art, for a frame to color
    colors: np.ndarray | None = None  # (h, w, 3) uint8 model colors at the working resolution
    colored: np.ndarray | None = None  # (H, W, 3) uint8 finished frame
    failure: str | None = None
    seconds: float = 0.0
    batch: int = 0  # the model batch it went through


class ShotColorizer:
    """Colors shots with one loaded colorizer.

    Args:
        model: the colorizer (eval mode).
        device: where it runs.
        info: the checkpoint's provenance, if loaded from a file.
    """

    def __init__(self, model: Colorizer, device: torch.device, info: CheckpointInfo | None = None) -> None:
        self.model = model.for_inference(device)
        self.device = device
        self.info = info
        self.autocast_dtype: torch.dtype | None = None
        self.colorize = self.model.colorize
        self._compiled: Callable | None = None
        self.model_lock = threading.Lock()

    def configure(self, precision: str = "auto", compile: bool = False) -> None:
        """Choose the model's arithmetic and whether it runs compiled (see `ShotOptions`); kept until changed."""
        if precision not in PRECISIONS:
            msg = f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}"
            raise ValueError(msg)
        self.autocast_dtype = torch.bfloat16 if precision == "bfloat16" else None
        if self.device.type == "cuda":
            # TensorFloat-32 convolutions round their inputs to 10 mantissa bits: alone, that moved some regions
            # of a real frame to another color. float32 has to mean float32.
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        if compile and self._compiled is None:
            # Compiles lazily, on the first call of each shape. Freezing folds the fixed weights into the graph
            # (BatchNorm into the convolutions, weights pre-packed for oneDNN): about 18% off a CPU batch.
            self._compiled = torch.compile(self.model.colorize, options={"freezing": True})
        self.colorize = self._compiled if compile else self.model.colorize

    @classmethod
    def from_weights(cls, weights: str = str(DEFAULT_WEIGHTS), device: str | torch.device = "cpu") -> ShotColorizer:
        """Load weights once; the instance then colors any number of shots."""
        device = torch.device(device)
        model, info = load_colorizer(weights, device=device)
        return cls(model, device, info)

    @torch.inference_mode()
    def encode_reference(self, rgb: np.ndarray, resolution: int) -> torch.Tensor:
        """Tokens of a colored keyframe (H, W, 3) uint8: (1, M, C), computed once per shot."""
        geometry = fit_frame(*rgb.shape[:2], resolution, self.model.config.stride, upscale=True)
        reference = to_model_reference(rgb, geometry)[None].to(self.device)
        return self.model.encode_reference(reference)

    @torch.inference_mode()
    def predict_colors(
        self,
        frames: list[np.ndarray],
        tokens: torch.Tensor,
        resolution: int,
        log_weights: torch.Tensor | None = None,
    ) -> list[np.ndarray]:
        """The model's colors (h, w, 3) uint8 at the working resolution for line-art frames (H, W) uint8; frames of
        one size share a model call. `composite_lines` makes each a finished frame.

        Args:
            frames: line art.
            tokens: reference tokens, (1, M, C) for every frame or (len(frames), M, C), one row per frame.
            resolution: the working resolution (long side).
            log_weights: (1 or len(frames), M) weight of each token (see `Colorizer.colorize`), or None.
        """
        stride = self.model.config.stride
        geometries = [fit_frame(*frame.shape[:2], resolution, stride) for frame in frames]
        results: list[np.ndarray | None] = [None] * len(frames)
        groups: dict[FrameGeometry, list[int]] = {}
        for index, geometry in enumerate(geometries):
            groups.setdefault(geometry, []).append(index)
        for geometry, indices in groups.items():
            batch = torch.stack([to_model_line(frames[i], geometry) for i in indices]).to(self.device)
            rows = torch.tensor(indices)
            group_tokens = tokens if tokens.shape[0] == 1 else tokens[rows]
            group_weights = log_weights if log_weights is None or log_weights.shape[0] == 1 else log_weights[rows]
            weights = None if group_weights is None else group_weights.to(self.device)
            with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                                enabled=self.autocast_dtype is not None):  # fmt: skip
                colors = self._run_model(batch, group_tokens.to(self.device), weights)
            colors = colors.float().cpu()
            for row, index in enumerate(indices):
                results[index] = colors_to_rgb(colors[row], geometry)
        return results  # type: ignore[return-value]

    def frame_colors(self, bank: ReferenceBank, resolution: int, pending: PendingFrame) -> np.ndarray:
        """The model's colors for one frame, asked for while it is finished (any thread, one call at a time): its
        keyframes' tokens only, so that what it gets never depends on which frames happen to be finished."""
        references = bank.for_frame(pending.index, with_chain=False)
        log_weights = references.log_weights if references.log_weights.any() else None
        with self.model_lock:
            return self.predict_colors([pending.art.lines], references.tokens, resolution, log_weights)[0]

    def _run_model(self, batch: torch.Tensor, tokens: torch.Tensor, log_weights: torch.Tensor | None) -> torch.Tensor:
        """The model's colors for a batch; a compile that fails (no C++ compiler, a backend error) turns compiling
        off for this colorizer, with a warning, and the batch runs uncompiled."""
        try:
            return self.colorize(batch, tokens, reference_log_weights=log_weights).image
        except torch._dynamo.exc.TorchDynamoException as error:  # what torch.compile raises when it cannot compile
            if self.colorize is not self._compiled:
                raise
            reason = " ".join(line for line in str(error).splitlines()[:2] if line)  # the backend, then its error
            log.warning("torch.compile failed, running the model uncompiled: %s", reason)
            self.colorize = self._compiled = self.model.colorize
            return self.colorize(batch, tokens, reference_log_weights=log_weights).image

    def run(self, shot: Shot, options: ShotOptions, progress: Callable[[int], None] | None = None) -> ShotResult:
        """Color every frame of a shot; never raises for bad input, which is reported in the result."""
        started = time.monotonic()
        result = ShotResult(shot=shot.name, output=shot.output, video=shot.video)
        try:
            self.configure(options.precision, options.compile)
            keyframes = [(read_frame(ref.url, options.storage_options, max_pixels=options.max_pixels), ref.position)
                         for ref in shot.references]  # fmt: skip
            bank = ReferenceBank(lambda rgb: self.encode_reference(rgb, options.resolution), keyframes, options.chain)
            if options.color_source not in COLOR_SOURCES:
                msg = f"unknown color source {options.color_source!r}; choose one of {', '.join(COLOR_SOURCES)}"
                raise ValueError(msg)
            carrier = self.shot_carrier(shot, options, keyframes) if options.color_source != "model" else None
            reads, total = self.frame_source(shot, options)
        except (ValueError, OSError) as error:
            result.error = f"{type(error).__name__}: {error}"
            result.seconds = time.monotonic() - started
            return result
        result.frames = total
        existing_names = existing_outputs(shot, options)
        order = self.frame_order(shot, total)
        # Frames colored outward from the keyframe reach the video encoder out of order: it is fed from the PNGs.
        stream_video = shot.video is not None and order is None
        video = VideoFeed(VideoWriter(shot.video, fps=options.fps, codec=options.codec,
                                      storage_options=options.storage_options)) if stream_video else None  # fmt: skip
        threads = frame_threads()
        # Enough queued to keep every thread busy, and no more: a 4K frame waiting costs ~25 MB.
        writer = FrameWriter(options.storage_options, workers=threads, max_pending=2 * threads + 4)
        emitter = FrameEmitter(shot, options, writer, video, result, progress)
        locked = options.palette_lock or carrier is not None
        palette = shot_palette([image for image, _ in keyframes]) if locked else None
        tracker = None
        if options.fill != "soft" and options.track and carrier is None:
            seeds = [(image, position) for image, position in keyframes if order is not None and position is not None]
            tracker = RegionTracker(seeds or [(keyframes[0][0], 0)], palette)
        finisher = FrameFinisher(emitter, max(options.batch_size, threads), threads, fill=options.fill,
                                 palette=palette, tracker=tracker, on_finished=bank.finish if options.chain else None,
                                 guide_lines=options.guide_lines, carrier=carrier,
                                 model_colors=partial(self.frame_colors, bank, options.resolution)
                                 if options.color_source == "combined" else None)  # fmt: skip
        batch: list[PendingFrame] = []
        try:
            for read in reads:
                pending = self.pending_frame(read, shot, options, existing_names, result)
                pending.index = order[read.index] if order else read.index  # its place in the shot
                batch.append(pending)
                # Counting every frame, not only those for the model, bounds memory on a resumed shot with a video.
                if len(batch) >= options.batch_size:
                    self.flush(batch, bank, options, finisher)
                    batch = []
            if batch:
                self.flush(batch, bank, options, finisher)
            finisher.close()
        except BaseException:
            finisher.abort()
            if video is not None:
                video.abort()
            writer.close()
            raise
        writer.close()
        result.fill = finisher.fill if finisher.fill != "auto" else ""
        finisher.emitter.settle_writes()
        try:
            if video is not None:
                video.close()
            elif shot.video is not None:
                result.records.sort(key=lambda record: record.index)
                encode_video_from_outputs(shot, options, result.records)
        except (ValueError, OSError) as error:
            result.failures.append(FrameFailure(shot.video, f"could not write the video: {error}"))
        result.seconds = time.monotonic() - started
        return result

    def shot_carrier(
        self, shot: Shot, options: ShotOptions, keyframes: list[tuple[np.ndarray, int | None]]
    ) -> ShotCarrier:
        """What carries the shot's keyframes to its frames, each keyframe with its own line art: the file the studio
        gave, else the frame it was painted on (when that frame is a file of the shot), else lines extracted from it
        (`keyframe_line_art`). A keyframe painted on none of the shot's frames is carried from before the first."""
        prepare = self.line_preparation(options)
        read = partial(read_frame, storage_options=options.storage_options, max_pixels=options.max_pixels, gray="auto")
        urls: list[str] = []
        carried = []
        for (image, position), reference in zip(keyframes, shot.references, strict=True):
            if reference.lines is not None:
                try:
                    lines = prepare(read(reference.lines)).lines
                except ValueError as error:
                    msg = f"keyframe line art {reference.lines!r} (of {reference.url!r}) cannot be used: {error}"
                    raise ValueError(msg) from error
            elif position is not None and not is_video(shot.frames):
                urls = urls or list(shot.frame_urls) or list_frames(shot.frames, options.storage_options)
                lines = prepare(read(urls[position])).lines
            else:
                lines = keyframe_line_art(image)
            carried.append((image, lines, -1 if position is None else position))
        return ShotCarrier(carried)

    @staticmethod
    def frame_order(shot: Shot, total: int) -> list[int] | None:
        """The order the shot's frames are colored in, outward from its keyframes; None for first to last (a
        single keyframe on the first frame or on none of the shot's, or a video, which is decoded in order)."""
        starts = tuple(
            ref.position for ref in shot.references if ref.position is not None and 0 <= ref.position < total
        )
        if is_video(shot.frames) or starts in ((), (0,)):
            return None
        return outward_order(total, starts)

    def frame_source(self, shot: Shot, options: ShotOptions) -> tuple[Iterator[FrameRead], int]:
        """The shot's frames in order, read ahead on threads, and how many there are."""
        if is_video(shot.frames):
            total = count_shot_frames(shot, options)
            if total == 0:
                msg = f"video {shot.frames!r} has no frames"
                raise ValueError(msg)
            return video_line_art(shot.frames, total, options.storage_options, self.line_preparation(options)), total
        urls = list(shot.frame_urls) or list_frames(shot.frames, options.storage_options)
        check_output_names(urls)
        order = self.frame_order(shot, len(urls))
        if order is not None:
            urls = [urls[i] for i in order]
        threads = frame_threads()
        reader = FrameReader(urls, options.storage_options, prefetch=threads + 2, workers=threads,
                             max_pixels=options.max_pixels, gray=True if options.guide_lines == "off" else "auto",
                             prepare=self.line_preparation(options))  # fmt: skip
        return iter(reader), len(urls)

    @staticmethod
    def line_preparation(options: ShotOptions) -> Callable[[np.ndarray], LineArt]:
        """What turns a decoded frame into prepared line art (`prepare_line_art`), as the options ask."""
        return lambda image: prepare_line_art(image, clean=options.clean_lines, guide_lines=options.guide_lines)

    def pending_frame(
        self, read: FrameRead, shot: Shot, options: ShotOptions, existing: Container[str], result: ShotResult
    ) -> PendingFrame:
        """Decide what happens to one frame: resumed, failed, or to be colored."""
        try:
            name = read.url if is_video(shot.frames) else output_name(read.url)
        except ValueError as error:
            return PendingFrame(read.index, "", read.url, failure=str(error))
        pending = PendingFrame(read.index, name, read.url)
        if name in existing:
            result.resumed += 1
            if shot.video:
                out_url = join_url(shot.output, name)
                pending.colored = read_frame(out_url, options.storage_options, max_pixels=options.max_pixels)
            return pending
        if read.error is not None:
            pending.failure = str(read.error)
        else:
            pending.art = read.array
        return pending

    def flush(
        self, batch: list[PendingFrame], bank: ReferenceBank, options: ShotOptions, finisher: FrameFinisher
    ) -> None:
        """Run the model on the batch's frames that need it, then hand every frame to the finisher in order."""
        number = finisher.batches_put
        if bank.chain:  # chaining reads frames finished two batches back: wait for them, for the same result always
            finisher.wait_for_batch(number - 2)
        # Carried frames ask for the model's colors while finishing, only when a region needs them.
        todo = [p for p in batch if p.art is not None] if options.color_source == "model" else []
        references = [bank.for_frame(p.index, number) for p in todo]
        # Frames attending over as many tokens share a model call.
        by_count: dict[int, list[int]] = {}
        for row, refs in enumerate(references):
            by_count.setdefault(refs.tokens.shape[1], []).append(row)
        for rows in by_count.values():
            started = time.monotonic()
            tokens, log_weights = stack_references([references[row] for row in rows])
            lines = [todo[row].art.lines for row in rows]
            colors = self.predict_colors(lines, tokens, options.resolution, log_weights)
            share = (time.monotonic() - started) / len(rows)
            for row, color in zip(rows, colors, strict=True):
                todo[row].colors, todo[row].seconds = color, share
        for pending in batch:
            pending.batch = number
            finisher.put(pending)
        finisher.end_batch()


class FrameFinisher:
    """Composites each frame's lines over its colors on a small thread pool and hands the frames to the emitter, in
    order, on a thread of its own.

    The model's thread only queues frames (at most `depth` waiting), so full-resolution work (composite, PNG
    submission, video encoding) runs beside the next batch instead of between batches, and composites of later
    frames run while the video encodes an earlier one. With region tracking, only the choice of each frame's region
    colors runs in order on the finishing thread: the region vote before it and the painting after it run on the
    pool, several frames at once. An error on a finishing thread is raised in the caller at its next put() or at
    close().

    Args:
        emitter: receives the finished frames in order.
        depth: frames that may wait for the finishing thread before put() blocks (bounds memory).
        composite_workers: threads compositing at once (Pillow releases the GIL while it resizes and multiplies).
        fill: "soft", "flat" or "auto", see `composite_lines`; "auto" is decided on the first frame put.
        palette: colors a flat fill is locked to, or None.
        tracker: decides a flat fill's region colors from frame to frame; frames must then be put in an order
            where each frame's neighbour nearer the keyframe comes first (see `outward_order`).
        on_finished: called on the finishing thread with (index, batch, finished frame) of every colored frame.
        guide_lines: what becomes of colored guide lines, see `finish_frame`.
        carrier: carries the keyframes' colors to the frames (pipeline/correspondence.py), the model's colors
            standing in where nothing corresponds; the frames must then be put in outward order, as for `tracker`,
            which is not used. The flows run on the pool, each frame's correspondence is chained in order on the
            finishing thread, and the carrying and finishing go back to the pool.
        model_colors: with `carrier`, the model's colors for a frame, asked for (on the pool) only when a region of
            it needs them.
    """

    def __init__(
        self,
        emitter: FrameEmitter,
        depth: int,
        composite_workers: int = 2,
        fill: str = "soft",
        palette: np.ndarray | None = None,
        tracker: RegionTracker | None = None,
        on_finished: Callable[[int, int, np.ndarray], None] | None = None,
        guide_lines: str = "paint",
        carrier: ShotCarrier | None = None,
        model_colors: Callable[[PendingFrame], np.ndarray] | None = None,
    ) -> None:
        self.emitter = emitter
        self.fill, self.palette, self.tracker, self.guide_lines = fill, palette, tracker, guide_lines
        self.carrier, self.model_colors = carrier, model_colors
        self.on_finished = on_finished
        self.batches_put = 0  # batches whose frames were all put
        self.batch_ends: list[int] = []  # frames put when each batch ended
        self.frames_put = 0
        self.frames_done = 0
        self.done_changed = threading.Condition()
        self.queue: queue.Queue[tuple[PendingFrame, Future | None] | None] = queue.Queue(max(1, depth))
        self.workers = composite_workers
        self.pool = ThreadPoolExecutor(max_workers=composite_workers, thread_name_prefix="frame-composite")
        self.error: BaseException | None = None
        self.aborted = False
        self.thread = threading.Thread(target=self._work, name="frame-finisher", daemon=True)
        self.thread.start()

    def put(self, pending: PendingFrame) -> None:
        self._raise_error()
        composite = None
        if pending.art is not None and self.fill == "auto":
            self.fill = "flat" if has_closed_regions(pending.art) else "soft"
        if pending.art is not None and self.carrier is not None:
            self.carrier.plan(pending.index)
            composite = self.pool.submit(self.carrier.flows, pending.index, pending.art.lines)
        elif pending.colors is not None and self.tracker is not None and self.fill == "flat":
            composite = self.pool.submit(vote_frame, pending.colors, pending.art)
        elif pending.colors is not None:
            composite = self.pool.submit(composite_lines, pending.colors, pending.art, self.fill, self.palette,
                                         self.guide_lines)  # fmt: skip
        self.queue.put((pending, composite))
        self.frames_put += 1

    def end_batch(self) -> None:
        """Mark the frames put so far as one model batch (see `wait_for_batch`)."""
        self.batch_ends.append(self.frames_put)
        self.batches_put += 1

    def wait_for_batch(self, number: int) -> None:
        """Block until every frame of batch `number` (0-based) and those before it is finished; raises the
        finishing thread's error, if it had one."""
        if number < 0:
            return
        with self.done_changed:
            self.done_changed.wait_for(lambda: self.frames_done >= self.batch_ends[number] or self.error is not None)
        self._raise_error()

    def close(self) -> None:
        """Finish every queued frame; raises the finishing thread's error, if it had one."""
        self.queue.put(None)
        self.thread.join()
        self.pool.shutdown()
        self._raise_error()

    def abort(self) -> None:
        """Drop the queued frames and stop (the caller is failing)."""
        self.aborted = True
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        self.pool.shutdown(cancel_futures=True)

    def start_finishing(self, pending: PendingFrame, composite: Future | None) -> Future | None:
        """In frame order: the future of the finished frame. With tracking, the region colors are decided here from
        the pool's region vote, and the painting goes back to the pool."""
        if composite is not None and self.carrier is not None:
            try:
                correspondence = self.carrier.correspond(pending.index, composite.result())
            except Exception as error:  # the frame fails alone; frames planned later step over it
                self.carrier.unplan(pending.index)
                failed: Future = Future()
                failed.set_exception(error)
                return failed
            return self.pool.submit(finish_carried_frame, self.carrier, pending, correspondence, self.model_colors,
                                    self.palette, self.fill, self.guide_lines)  # fmt: skip
        if composite is None or self.tracker is None or self.fill != "flat":
            return composite
        full, vote = composite.result()
        region_rgb = self.tracker.decide(pending.index, vote, pending.art.boundaries)
        return self.pool.submit(paint_and_finish, full, vote, region_rgb, pending.art, self.guide_lines)

    def _raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def _work(self) -> None:
        in_flight: deque[tuple[PendingFrame, Future | None]] = deque()
        while (item := self.queue.get()) is not None:
            if self.error is not None or self.aborted:
                continue  # keep draining, so a blocked put() returns
            pending, composite = item
            try:
                in_flight.append((pending, self.start_finishing(pending, composite)))
            except BaseException as error:  # re-raised in the caller's thread
                self.error = error
                in_flight.append((pending, None))
            # Emit in order what is ready; wait for the oldest frame only when nothing else is queued (the model's
            # thread may be waiting for it) or when more frames are in flight than the pool has threads.
            while in_flight and (in_flight[0][1] is None or in_flight[0][1].done() or self.queue.empty()
                                 or len(in_flight) > self.workers):  # fmt: skip
                self._emit(*in_flight.popleft())
        while in_flight:
            self._emit(*in_flight.popleft())

    def _emit(self, pending: PendingFrame, finishing: Future | None) -> None:
        if self.error is None and not self.aborted:
            try:
                if finishing is not None:
                    try:
                        pending.colored, pending.colors = finishing.result(), None
                    except Exception as error:  # one frame that cannot be finished fails alone
                        log.warning("frame %s could not be finished: %s", pending.source, error)
                        pending.failure, pending.colors = f"could not be finished: {error}", None
                    if self.on_finished is not None and pending.colored is not None:
                        self.on_finished(pending.index, pending.batch, pending.colored)
                self.emitter.emit(pending)
            except BaseException as error:  # re-raised in the caller's thread
                self.error = error
        with self.done_changed:
            self.frames_done += 1
            self.done_changed.notify_all()


def finish_carried_frame(
    carrier: ShotCarrier,
    pending: PendingFrame,
    correspondence: Correspondence,
    model_colors: Callable[[PendingFrame], np.ndarray] | None,
    palette: np.ndarray | None,
    fill: str,
    guide_lines: str,
) -> np.ndarray:
    """A frame finished from its keyframe's carried colors, the model's (if any) where nothing corresponds."""
    carried = carrier.carry(pending.index, correspondence, pending.art.shape)
    stand_in = None if model_colors is None else partial(model_colors, pending)
    return finish_carried(carried, pending.art, stand_in, palette, fill, guide_lines)


def paint_and_finish(
    full: np.ndarray, vote: RegionVote, region_rgb: np.ndarray, art: LineArt, guide_lines: str
) -> np.ndarray:
    """A tracked frame finished: its regions painted the colors decided for them, then the lines laid over."""
    return finish_frame(paint_regions(full, vote, region_rgb), art, guide_lines, vote.labels)


class FrameEmitter:
    """Writes finished frames in order: PNG behind on threads, video in sequence on a thread of its own (a failed
    frame holds the last)."""

    def __init__(
        self,
        shot: Shot,
        options: ShotOptions,
        writer: FrameWriter,
        video: VideoFeed | None,
        result: ShotResult,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.shot, self.options, self.writer, self.video = shot, options, writer, video
        self.result, self.progress = result, progress
        self.done = 0

    def emit(self, pending: PendingFrame) -> None:
        output = join_url(self.shot.output, pending.name) if pending.name else ""
        if pending.failure is not None:
            self.result.failures.append(FrameFailure(pending.source, pending.failure))
            self.result.records.append(FrameRecord(pending.source, "", FrameStatus.FAILED, reason=pending.failure,
                                                   index=pending.index))  # fmt: skip
        elif pending.art is not None:
            self.writer.submit(pending.colored, output)
            self.result.written += 1
            self.result.records.append(FrameRecord(pending.source, output, FrameStatus.WRITTEN, seconds=pending.seconds,
                                                   index=pending.index))  # fmt: skip
        else:
            self.result.records.append(FrameRecord(pending.source, output, FrameStatus.RESUMED, index=pending.index))
        if self.video is not None:
            self.video.write(pending.colored)
        self.done += 1
        if self.progress is not None:
            self.progress(self.done)

    def settle_writes(self) -> None:
        """After the writer closed: record each PNG's size and checksum as written (those resumed keep the ones
        recorded when an earlier run wrote them: a file is never recorded as it is found), and turn failed writes
        into failed frames."""
        errors = {url: error for url, error in self.writer.results if error is not None}
        for record in self.result.records:
            if record.status is FrameStatus.RESUMED:
                record.bytes, record.sha256 = self.shot.recorded_outputs[record.output.rpartition("/")[2]]
            if record.status is not FrameStatus.WRITTEN:
                continue
            if record.output in errors:
                reason = f"could not write {record.output}: {errors[record.output]}"
                record.status, record.reason, record.output = FrameStatus.FAILED, reason, ""
                self.result.failures.append(FrameFailure(record.frame, reason))
                self.result.written -= 1
            elif record.output in self.writer.written:
                record.bytes, record.sha256 = self.writer.written[record.output]


def frame_threads(cores: int | None = None) -> int:
    """Threads for each full-resolution stage of a shot (reading and line prep, region fill and lines, PNG
    writing): half the cores this process may use, at least 2 and at most 8. numpy, Pillow and zlib release the
    GIL in their large loops, so on a GPU node's many cores each stage keeps up with a model far faster than one
    thread of it. `cores`: those of another machine, for a prediction; by default this process's."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(8, max(2, cores // 2))


def stack_references(references: list[FrameReferences]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Reference tokens and log weights for a model call: one shared (1, M, C) set when every frame has the same
    tokens and no weights differ from 1, else one row per frame."""
    first = references[0]
    if all(r.tokens is first.tokens for r in references) and not any(r.log_weights.any() for r in references):
        return first.tokens, None
    return torch.cat([r.tokens for r in references]), torch.cat([r.log_weights for r in references])


def shot_palette(keyframes: list[np.ndarray]) -> np.ndarray:
    """The flat colors of all of a shot's keyframes (see `keyframe_palette`), each once."""
    palettes = np.concatenate([keyframe_palette(image) for image in keyframes])
    _, first = np.unique(palettes, axis=0, return_index=True)
    return palettes[np.sort(first)]
