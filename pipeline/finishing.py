"""Finishing a shot's frames beside the model: lines laid over colors at full resolution, PNGs written and the video
fed in frame order, on threads, and how many threads a stage gets.

The model's thread (pipeline/colorize.py) hands each frame to a `FrameFinisher` and goes on with the next batch;
the finisher's pool composites (or carries the keyframe's colors, or paints tracked regions) several frames at
once, its own thread keeps the frames in order, and a `FrameEmitter` writes them. numpy, OpenCV, Pillow and zlib
release the GIL in their large loops, so these threads run truly side by side.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import cv2
import numpy as np

from pipeline.carried import finish_carried
from pipeline.cel import Background, Cel, CelFormat, cel_images, video_cel
from pipeline.composite import composite_lines, finish_frame, has_closed_regions, vote_frame
from pipeline.correspondence import Correspondence, ShotCarrier
from pipeline.frame_names import join_url
from pipeline.frames import FrameRead
from pipeline.lineart import LineArt
from pipeline.outputs import FrameCollector, FrameWriter, WrittenFile
from pipeline.region_vote import RegionVote, paint_regions
from pipeline.shot import FrameFailure, FrameRecord, ShotResult
from pipeline.status import FrameStatus
from pipeline.tracking import RegionTracker
from pipeline.video import VideoFeed

log = logging.getLogger(__name__)


@dataclass
class PendingFrame:
    """A frame on its way through the shot: its output name and, once known, its pixels or its failure."""

    index: int
    name: str
    source: str
    art: LineArt | None = None  # the prepared line art, for a frame to color (or, resumed, to carry others through)
    model_colors: np.ndarray | None = None  # (h, w, 3) uint8, the model's prediction at the working resolution
    finished: np.ndarray | None = None  # (H, W, 3) uint8, the frame over white paper (or, resumed, as found)
    cel: Cel | None = None  # its parts, for the files written
    failure: str | None = None
    seconds: float = 0.0
    batch: int = 0  # the model batch it went through
    resumed: bool = False  # its output is kept from an earlier run


def frame_to_color(read: FrameRead, name: str, place: int) -> PendingFrame:
    """A frame read for coloring, at its `place` in the shot and with its output `name`; failed if it was not read."""
    pending = PendingFrame(place, name, read.url)
    if read.error is not None:
        pending.failure = str(read.error)
    else:
        pending.art = read.array
    return pending


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
            where each frame's neighbour nearer the keyframe comes first (pipeline/coloring_order.py).
        on_finished: called on the finishing thread with (index, batch, finished frame) of every colored frame.
        guide_lines: what becomes of colored guide lines, see `finish_frame`.
        carrier: carries the keyframes' colors to the frames (pipeline/correspondence.py), the model's colors
            standing in where nothing corresponds; the frames must then be put in outward order, as for `tracker`,
            which is not used. The flows run on the pool, each frame's correspondence is chained in order on the
            finishing thread, and the carrying and finishing go back to the pool.
        predict_frame: with `carrier`, runs the model for one frame, asked for (on the pool) only when a region of
            it needs the model's colors.
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
        predict_frame: Callable[[PendingFrame], np.ndarray] | None = None,
    ) -> None:
        self.emitter = emitter
        self.fill, self.palette, self.tracker, self.guide_lines = fill, palette, tracker, guide_lines
        self.carrier, self.predict_frame = carrier, predict_frame
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
        elif pending.model_colors is not None and self.tracker is not None and self.fill == "flat":
            composite = self.pool.submit(vote_frame, pending.model_colors, pending.art)
        elif pending.model_colors is not None:
            composite = self.pool.submit(composite_lines, pending.model_colors, pending.art, self.fill, self.palette,
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
                return None if pending.resumed else failed
            if pending.resumed:  # carried only for the frames after it
                return None
            return self.pool.submit(finish_carried_frame, self.carrier, pending, correspondence, self.predict_frame,
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
                        pending.cel, pending.model_colors = finishing.result(), None
                        pending.finished = pending.cel.finished
                    except Exception as error:  # one frame that cannot be finished fails alone
                        log.warning("frame %s could not be finished: %s", pending.source, error)
                        pending.failure, pending.model_colors = f"could not be finished: {error}", None
                    if self.on_finished is not None and pending.finished is not None:
                        self.on_finished(pending.index, pending.batch, pending.finished)
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
    predict_frame: Callable[[PendingFrame], np.ndarray] | None,
    palette: np.ndarray | None,
    fill: str,
    guide_lines: str,
) -> Cel:
    """A frame finished from its keyframe's carried colors, the model's (if any) where nothing corresponds."""
    carried = carrier.carry(pending.index, correspondence, pending.art.shape)
    stand_in = None if predict_frame is None else partial(predict_frame, pending)
    return finish_carried(carried, pending.art, stand_in, palette, fill, guide_lines)


def paint_and_finish(full: np.ndarray, vote: RegionVote, region_rgb: np.ndarray, art: LineArt, guide_lines: str) -> Cel:
    """A tracked frame finished: its regions painted the colors decided for them, then the lines laid over."""
    return finish_frame(paint_regions(full, vote, region_rgb), art, guide_lines, vote.labels)


class HeldVideoCels:
    """The video cels (`video_cel`) of a shot colored out of frame order, kept in memory as PNG bytes until its video
    is encoded in frame order over the background (`encode_video_from_outputs`, pipeline/shot_files.py).

    The written files cannot stand in for them: a frame written over white has lost the paper's alpha, and finding
    it again from the file would need the frame's paint and lines apart, which the file no longer holds. A cel on
    transparent paper compresses well (flat paint, zero paper): a few hundred kB for a 1080p frame.

    Args:
        background: what the video frames are laid over.
    """

    def __init__(self, background: Background) -> None:
        self.background = background
        self._png: dict[int, bytes] = {}

    def keep(self, index: int, cel: Cel) -> None:
        """Keep the video cel of the frame at `index` in the shot."""
        encoded = cv2.imencode(".png", video_cel(cel), [cv2.IMWRITE_PNG_COMPRESSION, 1])[1]
        self._png[index] = encoded.tobytes()

    @property
    def held_bytes(self) -> int:
        """The memory the kept cels take (their PNG bytes)."""
        return sum(len(png) for png in self._png.values())

    def frame(self, index: int) -> np.ndarray | None:
        """The video frame at `index` over the background; None for a frame not kept (it failed)."""
        if index not in self._png:
            return None
        return self.background.under(cv2.imdecode(np.frombuffer(self._png[index], np.uint8), cv2.IMREAD_UNCHANGED))


class FrameEmitter:
    """Hands finished frames on in order and records each in the result: their files written behind on threads
    (the frame, and its layers when asked, see `cel_images`; or kept in memory, by a FrameCollector), the video in
    sequence on a thread of its own (a failed frame holds the last), over white or over the shot's background.

    Args:
        writer: where the frames go, by their name in the output folder `result.output` (none: the name alone).
        video: the shot's video, or None.
        result: the shot's result, which receives a record of each frame.
        progress: called with the number of frames emitted so far.
        recorded_outputs: the files an earlier run wrote (`Shot.recorded_outputs`), for the frames resumed.
        form: paper, depth, file format and layers of the files (`ShotOptions.cel_format`).
        background: what `video`'s frames are laid over; None: they are the frames over white.
        held: keeps the video cels of a shot colored out of frame order, whose video is encoded afterwards.
    """

    def __init__(
        self,
        writer: FrameWriter | FrameCollector,
        video: VideoFeed | None,
        result: ShotResult,
        progress: Callable[[int], None] | None,
        recorded_outputs: Mapping[str, WrittenFile] | None = None,
        form: CelFormat | None = None,
        background: Background | None = None,
        held: HeldVideoCels | None = None,
    ) -> None:
        self.writer, self.video = writer, video
        self.background, self.held = background, held
        self.result, self.progress = result, progress
        self.recorded_outputs = recorded_outputs or {}
        self.form = form or CelFormat()
        self.layer_of: dict[str, str] = {}  # a layer file's URL -> its frame's output URL
        self.done = 0

    def emit(self, pending: PendingFrame) -> None:
        output = join_url(self.result.output, pending.name) if pending.name else ""
        if pending.failure is not None:
            self.result.failures.append(FrameFailure(pending.source, pending.failure))
            self.result.records.append(FrameRecord(pending.source, "", FrameStatus.FAILED, reason=pending.failure,
                                                   index=pending.index))  # fmt: skip
        elif pending.resumed:
            self.result.records.append(FrameRecord(pending.source, output, FrameStatus.RESUMED, index=pending.index))
        else:
            for layer, image in cel_images(pending.cel, self.form).items():
                url = join_url(self.result.output, f"{layer}/{pending.name}") if layer else output
                self.layer_of[url] = output
                self.writer.submit(image, url)
            self.result.written += 1
            self.result.records.append(FrameRecord(pending.source, output, FrameStatus.WRITTEN, seconds=pending.seconds,
                                                   index=pending.index))  # fmt: skip
        if self.video is not None:
            self.video.write(self.video_frame(pending))
        elif self.held is not None and pending.cel is not None:
            self.held.keep(pending.index, pending.cel)
        self.done += 1
        if self.progress is not None:
            self.progress(self.done)

    def video_frame(self, pending: PendingFrame) -> np.ndarray | None:
        """What the video shows of a frame: the frame over white, or its cel over the background."""
        if self.background is None or pending.cel is None:
            return pending.finished
        return self.background.under(video_cel(pending.cel))

    def settle_writes(self) -> None:
        """After the writer closed: record each PNG's size and checksum as written (those resumed keep the ones
        recorded when an earlier run wrote them: a file is never recorded as it is found), and turn failed writes
        into failed frames (a frame whose layer could not be written too)."""
        errors = {self.layer_of[url]: error for url, error in self.writer.results if error is not None}
        for record in self.result.records:
            if record.status is FrameStatus.RESUMED:
                record.bytes, record.sha256 = self.recorded_outputs[record.output.rpartition("/")[2]]
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
