"""Encode colored frames to video and decode video back to frames, with PyAV.

Three codecs cover a studio's needs: H.264 for previews that play anywhere, ProRes 4444 for editing, FFV1 for
lossless archives. The PyAV wheel bundles x264 (GPL); ProRes and FFV1 are there for users who must avoid it.
Videos are encoded to a temporary file and renamed (or uploaded in one request) when complete, so an interrupted
encode never leaves a truncated video under its final name.
"""

from __future__ import annotations

import contextlib
import os
import queue
import tempfile
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import fsspec
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from model.files import put_file_atomic, remove_stale_temporaries, temporary_sibling
from pipeline.lineart import resize_bilinear

# A shot's frames given as one of these is decoded as a video of line art, not listed as a folder of frames.
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")


class VideoError(ValueError):
    """A video that cannot be written or read; the message names the file and the problem."""


@dataclass(frozen=True)
class _Codec:
    """How one user-facing codec name is encoded."""

    encoder: str
    pix_fmt: str
    extensions: tuple[str, ...]
    options: dict[str, str] = field(default_factory=dict)
    yuv: bool = True  # converted from RGB with the BT.709 matrix and tagged so; False for RGB pixel formats
    # Frames are padded (edge pixels replicated) up to multiples of (width, height): 4:2:0 chroma needs even sizes,
    # and FFmpeg's prores_ks corrupts 8-pixel runs at random in frames whose width is not a multiple of 16.
    pad_to: tuple[int, int] = (1, 1)


CODECS: dict[str, _Codec] = {
    # crf 18 is visually lossless for flat-colored animation; veryfast encodes 1080p at ~37 fps on one core.
    "h264": _Codec("libx264", "yuv420p", (".mp4", ".mov", ".mkv"), {"crf": "18", "preset": "veryfast"}, pad_to=(2, 2)),
    # vendor apl0 makes Final Cut and other Apple tools accept the file as their own ProRes.
    "prores": _Codec(
        "prores_ks", "yuv444p10le", (".mov", ".mkv"), {"profile": "4444", "vendor": "apl0"}, pad_to=(16, 1)
    ),
    # bgr0 holds 8-bit RGB as is, so the round trip is bit-exact; this FFmpeg build refuses FFV1 in .mov.
    "ffv1": _Codec("ffv1", "bgr0", (".mkv",), yuv=False),
}

_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}

# Broadcast-rate names people type as decimals; 23.976 means 24000/1001, which a decimal cannot hold exactly.
_NTSC_RATES = (24, 30, 48, 60, 120)


def is_video(url: str) -> bool:
    """Whether a URL names a video file (by its extension)."""
    return url.lower().endswith(VIDEO_EXTENSIONS)


@dataclass(frozen=True)
class VideoInfo:
    """What probe() reports about a video's first video stream.

    Args:
        width: coded width in pixels (H.264 output of an odd-sized frame is one pixel wider).
        height: coded height in pixels.
        fps: average frame rate.
        codec: FFmpeg's decoder name, e.g. "h264", "prores", "ffv1".
        pix_fmt: pixel format as stored, e.g. "yuv420p".
    """

    width: int
    height: int
    fps: float
    codec: str
    pix_fmt: str


def frame_rate(fps: float | Fraction) -> Fraction:
    """fps as an exact rational; 23.976, 29.97 and 59.94 become 24000/1001, 30000/1001 and 60000/1001."""
    if isinstance(fps, Fraction):
        rate = fps
    else:
        rate = Fraction(fps).limit_denominator(1001)
        for nominal in _NTSC_RATES:
            if abs(fps - nominal * 1000 / 1001) < 0.005:
                rate = Fraction(nominal * 1000, 1001)
    if rate <= 0:
        msg = f"frame rate must be positive, got {fps!r}"
        raise ValueError(msg)
    return rate


def frame_timecode(frame_number: int, fps: float | Fraction) -> str:
    """A frame number as SMPTE non-drop timecode HH:MM:SS:FF at the nominal rate of `fps` (23.976 counts 24
    frames a second, as editing software does): frame 1 at 24 fps is 00:00:00:01, frame 1000 is 00:00:41:16."""
    nominal = max(1, round(frame_rate(fps)))
    seconds, frames = divmod(frame_number, nominal)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours % 24:02d}:{minutes:02d}:{seconds:02d}:{frames:02d}"


def _check_codec(codec: str, url: str) -> _Codec:
    """The codec's settings, after checking the name and that the file's container can hold it."""
    if codec not in CODECS:
        msg = f"unknown video codec {codec!r} for {url!r}; choose one of {', '.join(CODECS)}"
        raise ValueError(msg)
    spec = CODECS[codec]
    ext = os.path.splitext(url)[1].lower()
    if ext not in spec.extensions:
        msg = f"video {url!r}: codec {codec!r} needs a file ending in {' or '.join(spec.extensions)}, not {ext!r}"
        raise ValueError(msg)
    return spec


def _padded_size(width: int, height: int, pad_to: tuple[int, int]) -> tuple[int, int]:
    """Width and height rounded up to the codec's multiples."""
    return -(-width // pad_to[0]) * pad_to[0], -(-height // pad_to[1]) * pad_to[1]


def _pad(frame: np.ndarray, pad_to: tuple[int, int]) -> np.ndarray:
    """Replicate the last columns/rows up to the codec's size multiples."""
    height, width = frame.shape[:2]
    padded_width, padded_height = _padded_size(width, height, pad_to)
    if (padded_width, padded_height) == (width, height):
        return frame
    return np.pad(frame, ((0, padded_height - height), (0, padded_width - width), (0, 0)), mode="edge")


class VideoWriter:
    """Encodes frames one at a time into a video file; the file appears under its name only on close().

    The stream is opened on the first frame, which fixes the size; every later frame must match it. H.264 frames
    of odd width or height are padded by one replicated pixel (65x47 is stored as 66x48), since 4:2:0 video cannot
    hold odd sizes. Used as a context manager, an exception inside the block discards the partial video.

    Args:
        url: local path or fsspec URL; the extension picks the container: .mp4, .mov or .mkv.
        fps: frames per second; 23.976 and friends are stored as exact NTSC rates.
        codec: "h264" (libx264, yuv420p, crf 18), "prores" (ProRes 4444, 10-bit 4:4:4) or "ffv1" (lossless RGB).
        storage_options: fsspec options for a remote url; the video is encoded locally, then uploaded.
        timecode: the first frame's timecode (`frame_timecode`), stored as the stream's "timecode" metadata (MP4
            and MOV get a timecode track an editor reads), or None.
    """

    def __init__(
        self,
        url: str,
        fps: float | Fraction = 24,
        codec: str = "h264",
        storage_options: dict | None = None,
        timecode: str | None = None,
    ) -> None:
        self.url = url
        self.timecode = timecode
        self.codec = codec
        self.rate = frame_rate(fps)
        self.storage_options = storage_options
        self.frames_written = 0
        self.size: tuple[int, int] | None = None  # (width, height) of the input frames
        self._spec = _check_codec(codec, url)
        fs, path = url_to_fs(url, **(storage_options or {}))
        self._local_target = path if isinstance(fs, LocalFileSystem) else None
        self._tmp: str | None = None
        self._container: Any = None
        self._stream: Any = None
        self._finished = False
        self._last: np.ndarray | None = None  # the frame `write_or_hold` repeats

    def write(self, frame: np.ndarray, picture: av.VideoFrame | None = None) -> None:
        """Encode one (H, W, 3) uint8 RGB frame; `picture` is its `convert`ed form when already at hand."""
        index = self.frames_written
        if self._finished:
            msg = f"video {self.url!r} is already closed; cannot write frame {index}"
            raise VideoError(msg)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            msg = f"video {self.url!r}: frame {index} must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}"
            raise VideoError(msg)
        height, width = frame.shape[:2]
        if self.size is None:
            self._open(width, height)
        elif (width, height) != self.size:
            first_w, first_h = self.size
            msg = f"video {self.url!r}: frame {index} is {width}x{height}, but frame 0 was {first_w}x{first_h}"
            raise VideoError(msg)

        video_frame = self.convert(frame) if picture is None else picture
        video_frame.pts = index
        video_frame.time_base = 1 / self.rate
        try:
            for packet in self._stream.encode(video_frame):
                self._container.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            msg = f"video {self.url!r}: encoding frame {index} failed: {exc}"
            raise VideoError(msg) from exc
        self.frames_written += 1

    def convert(self, frame: np.ndarray) -> av.VideoFrame:
        """The encoder's picture of a valid (H, W, 3) uint8 RGB frame: padded and converted to the codec's pixel
        format. It depends on nothing written before, so frames may be converted on several threads at once
        (swscale releases the GIL) and then written in order."""
        frame = _pad(frame, self._spec.pad_to)
        # Wrapped, not copied: from_ndarray's copy holds the GIL, swscale's conversion below does not.
        video_frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(frame), format="rgb24")
        if self._spec.yuv:
            # swscale's default matrix is BT.601, but players read untagged HD as BT.709: convert and tag alike.
            return video_frame.reformat(
                format=self._spec.pix_fmt, dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
            )
        return video_frame.reformat(format=self._spec.pix_fmt)

    def write_or_hold(self, frame: np.ndarray | None, picture: av.VideoFrame | None = None) -> None:
        """Write a frame, scaled to the video's size when it differs; a missing frame (None) repeats the last one
        written, so the video keeps its timing (nothing is written before the first frame). `picture`: the frame
        `convert`ed, when already at hand (unused if the frame must be scaled)."""
        if frame is None:
            frame, picture = self._last, None
        if frame is None:
            return
        if self.size is not None and (frame.shape[1], frame.shape[0]) != tuple(self.size):
            frame, picture = resize_bilinear(frame, (self.size[1], self.size[0])), None
        self.write(frame, picture)
        self._last = frame

    def _open(self, width: int, height: int) -> None:
        """Open the temporary file and the stream for frames of this size."""
        ext = os.path.splitext(self.url)[1].lower()
        if self._local_target is not None:
            # A sibling, so that the final os.replace stays on one device and is atomic.
            parent, _, name = self._local_target.rpartition("/")
            if parent:
                os.makedirs(parent, exist_ok=True)
            # A run killed while it encoded left its temporary behind: this video's own, and only those, go now.
            remove_stale_temporaries(parent or ".", lambda stale: stale == name)
            self._tmp = temporary_sibling(self._local_target)
        else:
            fd, self._tmp = tempfile.mkstemp(prefix="inkpaint-video-", suffix=ext)
            os.close(fd)

        container_options = {}
        if self.codec == "h264" and ext in (".mp4", ".mov"):
            # Index at the front, so a browser or a review tool starts playing before the whole file arrives.
            container_options["movflags"] = "+faststart"
        try:
            self._container = av.open(self._tmp, "w", format=_FORMATS[ext], container_options=container_options)
            stream = self._container.add_stream(self._spec.encoder, rate=self.rate, options=dict(self._spec.options))
            stream.width, stream.height = _padded_size(width, height, self._spec.pad_to)
            stream.pix_fmt = self._spec.pix_fmt
            if self.timecode is not None:
                stream.metadata["timecode"] = self.timecode
            if self._spec.yuv:
                cc = stream.codec_context
                cc.colorspace = Colorspace.ITU709
                cc.color_primaries = ColorPrimaries.BT709
                cc.color_trc = ColorTrc.BT709
                cc.color_range = ColorRange.MPEG
            stream.codec_context.open()  # fail here, with the size in the message, rather than on the first encode
        except (av.FFmpegError, OSError, ValueError) as exc:
            self.abort()
            msg = f"video {self.url!r}: cannot open a {self.codec} encoder for {width}x{height} frames: {exc}"
            raise VideoError(msg) from exc
        self._stream = stream
        self.size = (width, height)

    def close(self) -> None:
        """Flush the encoder, finish the file and move it to its final name. No frames written is an error."""
        if self._finished:
            return
        if self._container is None:
            self._finished = True
            msg = f"video {self.url!r}: no frames were written"
            raise VideoError(msg)
        self._finished = True
        try:
            try:
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
                self._container.close()
            except (av.FFmpegError, OSError) as exc:
                msg = f"video {self.url!r}: finishing the file failed: {exc}"
                raise VideoError(msg) from exc
            self._container = None
            if self._local_target is not None:
                os.replace(self._tmp, self._local_target)
            else:
                put_file_atomic(self._tmp, self.url, self.storage_options)
                os.remove(self._tmp)
            self._tmp = None
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Discard the partial video; the final name is left as it was."""
        self._finished = True
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
            self._container = None
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(self._tmp)
            self._tmp = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class VideoFeed:
    """Feeds frames to a VideoWriter in order on a thread of its own, so the thread that hands them over does not
    wait for the encoder: at 1080p, x264 and the conversion to its pixel format take longer per frame than
    anything else that must run in frame order. The conversions run ahead on `converters` threads of their own;
    the feed's thread only encodes. An encoding error stops the feed and is raised by close(), which then discards
    the video.

    Args:
        video: the writer, opened by its first frame; closed or aborted by this feed.
        depth: frames that may wait for the encoder before write() blocks (bounds memory).
        converters: threads converting frames to the encoder's pixel format.
    """

    _END = object()

    def __init__(self, video: VideoWriter, depth: int = 4, converters: int = 2) -> None:
        self.video = video
        self.error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(max(1, depth))
        self._converters = ThreadPoolExecutor(max_workers=max(1, converters), thread_name_prefix="video-convert")
        self._thread = threading.Thread(target=self._work, name="video-encoder", daemon=True)
        self._thread.start()

    def write(self, frame: np.ndarray | None) -> None:
        """Queue a frame (None: repeat the last one); its conversion starts now."""
        picture = None if frame is None else self._converters.submit(self.video.convert, frame)
        self._queue.put((frame, picture))

    def close(self) -> None:
        """Encode every queued frame and finish the file; raises the encoder's error, if it had one."""
        self._stop()
        if self.error is not None:
            self.video.abort()
            raise self.error
        self.video.close()

    def abort(self) -> None:
        """Stop after the frame being encoded and discard the partial video."""
        self.error = self.error or VideoError(f"video {self.video.url!r}: aborted")
        self._stop()
        self.video.abort()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(self._END)
            self._thread.join()
        self._converters.shutdown(cancel_futures=True)

    def _work(self) -> None:
        while (item := self._queue.get()) is not self._END:
            frame, picture = item
            if self.error is not None:
                continue
            try:
                # A frame that could not be converted (not RGB, say) is converted again by the writer, which names it.
                converted = picture.result() if picture is not None and picture.exception() is None else None
                self.video.write_or_hold(frame, converted)
            except BaseException as error:  # raised by close()
                self.error = error


def encode_video(
    frames: Iterable[np.ndarray],
    url: str,
    fps: float | Fraction = 24,
    codec: str = "h264",
    storage_options: dict | None = None,
) -> int:
    """Encode (H, W, 3) uint8 RGB frames into a video at url, atomically; returns the number of frames.

    See VideoWriter for codecs, containers and the padding of odd sizes under H.264.
    """
    with VideoWriter(url, fps=fps, codec=codec, storage_options=storage_options) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.frames_written


@contextlib.contextmanager
def _open_video(url: str, storage_options: dict | None) -> Iterator[Any]:
    """An input container for a local path or an fsspec URL, with open errors naming the file."""
    fs, path = url_to_fs(url, **(storage_options or {}))
    with contextlib.ExitStack() as stack:
        try:
            source = (
                path
                if isinstance(fs, LocalFileSystem)
                else stack.enter_context(fsspec.open(url, "rb", **(storage_options or {})))
            )
            container = stack.enter_context(av.open(source, "r"))
        except FileNotFoundError as exc:
            msg = f"video {url!r} does not exist"
            raise VideoError(msg) from exc
        except (av.FFmpegError, OSError) as exc:
            msg = f"video {url!r} cannot be opened: {exc}"
            raise VideoError(msg) from exc
        if not container.streams.video:
            msg = f"video {url!r} has no video stream"
            raise VideoError(msg)
        yield container


def decode_video(url: str, storage_options: dict | None = None) -> Iterator[np.ndarray]:
    """Yield every frame of the first video stream as (H, W, 3) uint8 RGB, in presentation order."""
    with _open_video(url, storage_options) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        # to_ndarray converts with the matrix the stream is tagged with (BT.709 for ours).
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")


def count_frames(url: str, storage_options: dict | None = None) -> int:
    """The number of frames, by decoding them: containers such as MKV do not record it."""
    with _open_video(url, storage_options) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def probe(url: str, storage_options: dict | None = None) -> VideoInfo:
    """Size, frame rate, codec and pixel format of a video's first video stream, from its headers."""
    with _open_video(url, storage_options) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        ctx = stream.codec_context
        return VideoInfo(
            width=ctx.width,
            height=ctx.height,
            fps=float(rate) if rate else 0.0,
            codec=ctx.name,
            pix_fmt=ctx.pix_fmt or "",
        )
