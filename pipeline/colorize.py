"""One shot's coloring: frames + keyframe in, colored PNG frames (and a video) out.

`ShotColorizer` is set up once, with its weights, device, arithmetic and compilation, and then colors any number of
shots without changing itself. For a shot it encodes the keyframe once, reads the line art ahead on threads (as
8-bit gray), runs the model in batches, and hands each frame to the finishing threads (pipeline/finishing.py) that
lay the artist's lines over the colors at full resolution, write each PNG atomically and feed the video encoder in
frame order: the model never waits for full-resolution work. A frame that cannot be read or written is recorded
with its reason; the others go on. No Ray and no Click here: jobs/ runs this inside an actor.

`run` takes a shot's files (a `Shot` of URLs); `run_arrays` the same shot as arrays in memory, for a notebook
(pipeline/api.py): it only reads the frames from the arrays and keeps the finished ones instead of writing them,
and `color_frames`, the engine, is the same for both.

What is not the engine lives beside it: a shot's files other than the frames read and written here (frame count,
keyframe line art, resume, background, video) in pipeline/shot_files.py; the order frames are colored in, in
pipeline/coloring_order.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial

import numpy as np
import torch

from model.checkpoint import DEFAULT_WEIGHTS, CheckpointInfo, load_colorizer
from model.colorizer import Colorizer
from pipeline.coloring_order import coloring_order
from pipeline.correspondence import ShotCarrier, carrier_from
from pipeline.finishing import FrameEmitter, FrameFinisher, HeldVideoCels, PendingFrame, frame_threads, frame_to_color
from pipeline.frame_names import check_output_names
from pipeline.frames import ArrayFrames, FrameRead, FrameReader, image_problem, list_frames, read_frame
from pipeline.lineart import (
    FrameGeometry,
    LineArt,
    colors_to_rgb,
    fit_frame,
    prepare_line_art,
    to_model_line,
    to_model_reference,
)
from pipeline.outputs import FrameCollector, FrameWriter
from pipeline.references import ReferenceBank, stack_references
from pipeline.regions import keyframe_palette
from pipeline.shot import PRECISIONS, FrameFailure, Shot, ShotOptions, ShotResult
from pipeline.shot_files import (
    count_shot_frames,
    encode_video_from_outputs,
    existing_outputs,
    keyframe_lines,
    pending_frame,
    read_background,
    shot_background_url,
    shot_video,
    video_line_art,
)
from pipeline.tracking import RegionTracker
from pipeline.video import VideoFeed, is_video

log = logging.getLogger(__name__)

# The name in reports of a shot given as arrays (`ShotColorizer.run_arrays`).
IN_MEMORY_SHOT = "in-memory shot"


class ShotColorizer:
    """Colors shots with one loaded colorizer, set up once: a shot's run never changes it.

    The arithmetic and compilation are part of the setup, as the weights and the device are: a shot whose options
    ask for others is refused (`run`), and jobs/ sets up one colorizer per (precision, compile) a run asks for. The
    one change it makes to itself: a compile that fails is dropped for good, with a warning (`_run_model`).

    Args:
        model: the colorizer (eval mode).
        device: where it runs.
        info: the checkpoint's provenance, if loaded from a file.
        precision: the model's arithmetic, one of PRECISIONS (see `ShotOptions.precision`).
        compile: run the model through torch.compile, its weights frozen into the graph (see
            `ShotOptions.compile`).
    """

    def __init__(
        self,
        model: Colorizer,
        device: torch.device,
        info: CheckpointInfo | None = None,
        precision: str = "auto",
        compile: bool = False,
    ) -> None:
        if precision not in PRECISIONS:
            msg = f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}"
            raise ValueError(msg)
        self.model = model.for_inference(device)
        self.device = device
        self.info = info
        self.precision, self.compile = precision, compile
        self.autocast_dtype = torch.bfloat16 if precision == "bfloat16" else None
        if device.type == "cuda":
            # TensorFloat-32 convolutions round their inputs to 10 mantissa bits: alone, that moved some regions
            # of a real frame to another color. float32 has to mean float32.
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        # Compiles lazily, on the first call of each shape. Freezing folds the fixed weights into the graph
        # (BatchNorm into the convolutions, weights pre-packed for oneDNN): about 18% off a CPU batch.
        self.colorize = (
            torch.compile(self.model.colorize, options={"freezing": True}) if compile else self.model.colorize
        )
        self.model_lock = threading.Lock()

    @classmethod
    def from_weights(
        cls,
        weights: str = str(DEFAULT_WEIGHTS),
        device: str | torch.device = "cpu",
        precision: str = "auto",
        compile: bool = False,
    ) -> ShotColorizer:
        """Load weights once; the instance then colors any number of shots."""
        device = torch.device(device)
        model, info = load_colorizer(weights, device=device)
        return cls(model, device, info, precision, compile)

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

    def predict_frame(self, bank: ReferenceBank, resolution: int, pending: PendingFrame) -> np.ndarray:
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
            if self.colorize == self.model.colorize:
                raise
            reason = " ".join(line for line in str(error).splitlines()[:2] if line)  # the backend, then its error
            log.warning("torch.compile failed, running the model uncompiled: %s", reason)
            self.colorize = self.model.colorize
            return self.colorize(batch, tokens, reference_log_weights=log_weights).image

    def run(self, shot: Shot, options: ShotOptions, progress: Callable[[int], None] | None = None) -> ShotResult:
        """Color every frame of a shot; never raises for bad input, which is reported in the result. Raises
        ValueError when the options ask for another precision or compile than this colorizer was set up with."""
        self.check_setup(shot.name, options)
        started = time.monotonic()
        result = ShotResult(shot=shot.name, output=shot.output, video=shot.video)
        try:
            keyframes = [(read_frame(ref.url, options.storage_options, max_pixels=options.max_pixels), ref.position)
                         for ref in shot.references]  # fmt: skip
            bank = ReferenceBank(lambda rgb: self.encode_reference(rgb, options.resolution), keyframes, options.chain)
            carrier = None
            if options.color_source != "model":
                carrier = carrier_from(keyframes, keyframe_lines(shot, options, self.line_preparation(options)))
            reads, total = self.frame_source(shot, options)
            background_url = shot_background_url(shot, options)
            background = read_background(background_url, options) if background_url else None
        except (ValueError, OSError) as error:
            result.error = f"{type(error).__name__}: {error}"
            result.seconds = time.monotonic() - started
            return result
        result.frames = total
        existing_names = existing_outputs(shot, options)
        order = self.frame_order(shot, total)
        # Frames colored outward from the keyframe reach the video encoder out of order: it is fed afterwards, from
        # the PNGs, or over a background from the cels held in memory.
        stream_video = shot.video is not None and order is None
        video = VideoFeed(shot_video(shot, options)) if stream_video else None
        held = HeldVideoCels(background) if background is not None and not stream_video else None
        threads = frame_threads()
        # Enough queued to keep every thread busy, and no more: a 4K frame waiting costs ~25 MB.
        writer = FrameWriter(options.storage_options, workers=threads, max_pending=2 * threads + 4)
        emitter = FrameEmitter(writer, video, result, progress, shot.recorded_outputs, options.cel_format, background,
                               held)  # fmt: skip
        keep_lines = len(existing_names) < total  # some frame is colored: it is carried through those resumed
        frames = (pending_frame(read, shot, options, existing_names, result, order, keep_lines) for read in reads)
        try:
            self.color_frames(frames, bank, keyframes, carrier, order is not None, options, emitter)
        except BaseException:
            if video is not None:
                video.abort()
            writer.close()
            raise
        writer.close()
        emitter.settle_writes()
        try:
            if video is not None:
                video.close()
            elif shot.video is not None:
                result.records.sort(key=lambda record: record.index)
                encode_video_from_outputs(shot, options, result.records, held)
        except (ValueError, OSError) as error:
            result.failures.append(FrameFailure(shot.video, f"could not write the video: {error}"))
        result.seconds = time.monotonic() - started
        return result

    def run_arrays(
        self,
        frames: Sequence[np.ndarray],
        keyframes: Sequence[tuple[np.ndarray, int | None]],
        options: ShotOptions,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[list[np.ndarray | None], ShotResult]:
        """Color a shot given as arrays, in memory: `run` with the frames read from `frames` (`ArrayFrames`) and
        kept instead of written (`FrameCollector`), so that they come out exactly as `run` writes the same frames'
        PNGs. Raises ValueError for a frame or keyframe that is not such an array, and as `run` for the setup;
        a frame that cannot be colored is None, with its reason in the result.

        Args:
            frames: line art, (H, W), (H, W, 3) or (H, W, 4) uint8 or uint16, 0 ink, in shot order.
            keyframes: (colored keyframe (H, W, 3) uint8, index of the frame of `frames` it was painted on or
                None), the main one first (see `Shot.references`).
            options: as for `run`; those of files (video, resume, storage, max_pixels) are not used.
            progress: called with the number of frames done so far.

        Returns:
            The colored frames (H, W, 3) uint8 in the order of `frames`, each the size of its line art, and the
            shot's result (frames named frame_00001.png ... in its records).
        """
        self.check_setup(IN_MEMORY_SHOT, options)
        source, keyframes = ArrayFrames(frames), list(keyframes)
        for number, (image, position) in enumerate(keyframes):
            problem = image_problem(image, keyframe=True)
            if problem is None and position is not None and not 0 <= position < len(source):
                problem = f"painted on frame {position}, but the frames are numbered 0 to {len(source) - 1}"
            if problem is not None:
                msg = f"keyframe {number}: {problem}"
                raise ValueError(msg)
        started = time.monotonic()
        bank = ReferenceBank(lambda rgb: self.encode_reference(rgb, options.resolution), keyframes, options.chain)
        carrier = None
        if options.color_source != "model":
            prepare = self.line_preparation(options)
            painted_on = [None if position is None else prepare(source.load(source.names[position])).lines
                          for _, position in keyframes]  # fmt: skip
            carrier = carrier_from(keyframes, painted_on)
        order = coloring_order([position for _, position in keyframes], len(source))
        names = source.names if order is None else [source.names[index] for index in order]
        threads = frame_threads()
        reader = FrameReader(names, prefetch=threads + 2, workers=threads, prepare=self.line_preparation(options),
                             load=partial(source.load, gray=self.frame_gray(options)))  # fmt: skip
        result = ShotResult(shot=IN_MEMORY_SHOT, frames=len(source))
        collector = FrameCollector()
        emitter = FrameEmitter(collector, None, result, progress, form=options.cel_format)
        pending = (frame_to_color(read, read.url, order[read.index] if order else read.index) for read in reader)
        self.color_frames(pending, bank, keyframes, carrier, order is not None, options, emitter)
        emitter.settle_writes()
        result.seconds = time.monotonic() - started
        return [collector.frames.get(name) for name in source.names], result

    def color_frames(
        self,
        frames: Iterable[PendingFrame],
        bank: ReferenceBank,
        keyframes: list[tuple[np.ndarray, int | None]],
        carrier: ShotCarrier | None,
        outward: bool,
        options: ShotOptions,
        emitter: FrameEmitter,
    ) -> None:
        """The engine shared by `run` and `run_arrays`: the shot's frames, in the order they are colored (outward
        from the keyframes when `outward`), through the model in batches and finished behind it on threads, each
        handed to `emitter` in that order; the fill they got is set in the emitter's result."""
        threads = frame_threads()
        locked = options.palette_lock or carrier is not None
        palette = shot_palette([image for image, _ in keyframes]) if locked else None
        tracker = None
        if options.fill != "soft" and options.track and carrier is None:
            seeds = [(image, position) for image, position in keyframes if outward and position is not None]
            tracker = RegionTracker(seeds or [(keyframes[0][0], 0)], palette)
        finisher = FrameFinisher(emitter, max(options.batch_size, threads), threads, fill=options.fill,
                                 palette=palette, tracker=tracker, on_finished=bank.finish if options.chain else None,
                                 guide_lines=options.guide_lines, carrier=carrier,
                                 predict_frame=partial(self.predict_frame, bank, options.resolution)
                                 if options.color_source == "combined" else None)  # fmt: skip
        batch: list[PendingFrame] = []
        try:
            for pending in frames:
                batch.append(pending)
                # Counting every frame, not only those for the model, bounds memory on a resumed shot with a video.
                if len(batch) >= options.batch_size:
                    self.predict_batch(batch, bank, options, finisher)
                    batch = []
            if batch:
                self.predict_batch(batch, bank, options, finisher)
            finisher.close()
        except BaseException:
            finisher.abort()
            raise
        emitter.result.fill = finisher.fill if finisher.fill != "auto" else ""

    def check_setup(self, shot_name: str, options: ShotOptions) -> None:
        """Raise ValueError when the options ask for another precision or compile than this colorizer runs."""
        if (options.precision, options.compile) != (self.precision, self.compile):
            asked, runs = setup_text(options.precision, options.compile), setup_text(self.precision, self.compile)
            msg = f"shot {shot_name!r} asks for {asked}, this colorizer runs {runs}: set up one ShotColorizer for each"
            raise ValueError(msg)

    @staticmethod
    def frame_order(shot: Shot, total: int) -> list[int] | None:
        """The order the shot's frames are colored in (`coloring_order`); None for first to last, always for a
        video, which is decoded in order."""
        if is_video(shot.frames):
            return None
        return coloring_order([ref.position for ref in shot.references], total)

    def frame_source(self, shot: Shot, options: ShotOptions) -> tuple[Iterator[FrameRead], int]:
        """The shot's frames in order, read ahead on threads, and how many there are."""
        if is_video(shot.frames):
            total = count_shot_frames(shot, options)
            if total == 0:
                msg = f"video {shot.frames!r} has no frames"
                raise ValueError(msg)
            frames = video_line_art(shot.frames, total, options.storage_options, self.line_preparation(options),
                                    options.cel_format.extension)  # fmt: skip
            return frames, total
        urls = list(shot.frame_urls) or list_frames(shot.frames, options.storage_options)
        check_output_names(urls)
        order = self.frame_order(shot, len(urls))
        if order is not None:
            urls = [urls[i] for i in order]
        threads = frame_threads()
        reader = FrameReader(urls, options.storage_options, prefetch=threads + 2, workers=threads,
                             max_pixels=options.max_pixels, gray=self.frame_gray(options),
                             as_drawn=True, prepare=self.line_preparation(options))  # fmt: skip
        return iter(reader), len(urls)

    @staticmethod
    def frame_gray(options: ShotOptions) -> bool | str:
        """How frames are decoded (see `read_frame`): as luma when guide lines are read as ink (their color then
        means nothing), else in the mode they were saved in ("auto")."""
        return True if options.guide_lines == "off" else "auto"

    @staticmethod
    def line_preparation(options: ShotOptions) -> Callable[[np.ndarray], LineArt]:
        """What turns a decoded frame into prepared line art (`prepare_line_art`), as the options ask."""
        return lambda image: prepare_line_art(image, clean=options.clean_lines, guide_lines=options.guide_lines)

    def predict_batch(
        self, batch: list[PendingFrame], bank: ReferenceBank, options: ShotOptions, finisher: FrameFinisher
    ) -> None:
        """Run the model on the batch's frames that need it, then hand every frame to the finisher in order."""
        number = finisher.batches_put
        if bank.chain:  # chaining reads frames finished two batches back: wait for them, for the same result always
            finisher.wait_for_batch(number - 2)
        # Carried frames ask for the model's colors while finishing, only when a region needs them.
        todo = [p for p in batch if p.art is not None and not p.resumed] if options.color_source == "model" else []
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
                todo[row].model_colors, todo[row].seconds = color, share
        for pending in batch:
            pending.batch = number
            finisher.put(pending)
        finisher.end_batch()


def shot_palette(keyframes: list[np.ndarray]) -> np.ndarray:
    """The flat colors of all of a shot's keyframes (see `keyframe_palette`), each once."""
    palettes = np.concatenate([keyframe_palette(image) for image in keyframes])
    _, first = np.unique(palettes, axis=0, return_index=True)
    return palettes[np.sort(first)]


def setup_text(precision: str, compile: bool) -> str:
    """'precision auto' or 'precision bfloat16, compiled', for a message."""
    return f"precision {precision}" + (", compiled" if compile else "")
