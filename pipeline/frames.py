"""List and read the frames of a shot through fsspec.

One code path serves local folders, s3://, gs:// and memory:// URLs. Frames are listed in natural order (junk files
that OS file browsers leave are passed over) and read ahead on threads, or taken from arrays already in memory
(`ArrayFrames`). How a file decodes and how names sort are model/files.py's rules, the same ones training reads its
frames by; this module adds the URLs and the frame folders' rules. What a frame's output is called and where it may
go is pipeline/frame_names.py; writing the finished frames, pipeline/outputs.py.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, NamedTuple

import numpy as np
from fsspec.core import url_to_fs

from model.files import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    FrameError,
    as_read,
    decode_frame,
    is_image_name,
    is_local,
    natural_key,
    storage_connection_errors,
    with_retries,
)
from pipeline.frame_names import sequence_frame_name

log = logging.getLogger(__name__)

# Files that OS file browsers leave in folders; AppleDouble "._frame1.png" even carries an image extension.
_JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini"})


class FrameRead(NamedTuple):
    """One frame from a FrameReader: exactly one of array and error is set.

    Args:
        index: position of the frame in the reader's URL list.
        url: where the frame was read from.
        array: the decoded frame (what the reader's `prepare` made of it, if it has one), or None when it could not
            be read.
        error: why the frame could not be read, or None.
    """

    index: int
    url: str
    array: Any
    error: Exception | None


def _is_junk(name: str) -> bool:
    """Hidden files, AppleDouble forks and OS thumbnail caches."""
    return name.startswith(".") or name.casefold() in _JUNK_NAMES


def list_frames(url: str, storage_options: dict | None = None) -> list[str]:
    """The image files directly in a folder, as full URLs in natural order.

    Local folders come back as absolute paths, other stores as URLs with their protocol (s3://bucket/shot/f1.png).
    Raises FrameError when the folder does not exist, is a file, or holds no images.
    """
    fs, path = url_to_fs(url, **(storage_options or {}))
    path = path.rstrip("/") or path
    # Listings are cached per filesystem instance (s3fs); a folder written earlier in this process must be re-read.
    fs.invalidate_cache(path)
    try:
        with storage_connection_errors():
            if not fs.isdir(path):
                problem = "is a file, not a folder" if fs.exists(path) else "does not exist"
                msg = f"frame folder {url!r} {problem}"
                raise FrameError(msg)
            entries = fs.ls(path, detail=True)
    except OSError as exc:  # refused credentials (PermissionError), a bucket that cannot be reached ...
        msg = f"frame folder {url!r} cannot be listed: {exc}"
        raise FrameError(msg) from exc

    names, skipped = [], []
    for entry in entries:
        if not _is_file_entry(fs, entry):
            continue
        name = entry["name"].rstrip("/").rpartition("/")[2]
        if _is_junk(name):
            continue
        if not is_image_name(name):
            skipped.append(name)
            continue
        names.append(name)
    if skipped:
        shown = ", ".join(sorted(skipped)[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        log.warning("frame folder %r: skipping %d files that are not images: %s", url, len(skipped), shown)
    if not names:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        msg = f"frame folder {url!r} holds no image files ({exts})"
        raise FrameError(msg)

    names.sort(key=natural_key)
    base = path if is_local(fs) else fs.unstrip_protocol(path)
    return [f"{base.rstrip('/')}/{name}" for name in names]


def _is_file_entry(fs: Any, entry: dict) -> bool:
    """A listed file, or a symbolic link to one. fsspec lists a local link as type "other"; a link to a folder is
    left out like a folder, and a broken link is kept, to fail as a frame with its own reason."""
    if entry.get("type") == "file":
        return True
    return bool(entry.get("islink")) and is_local(fs) and not os.path.isdir(entry["name"])


def _read_bytes(url: str, storage_options: dict | None) -> bytes:
    """The whole file at url; a missing or unreadable file becomes a FrameError naming it."""
    fs, path = url_to_fs(url, **(storage_options or {}))
    try:
        return with_retries(lambda: fs.cat_file(path), f"reading {url}")
    except FileNotFoundError as exc:
        if is_local(fs) and os.path.islink(path):
            msg = f"frame {url!r} is a broken symbolic link: its target {os.readlink(path)!r} does not exist"
        else:
            msg = f"frame {url!r} does not exist"
        raise FrameError(msg) from exc
    except IsADirectoryError as exc:
        msg = f"frame {url!r} is a folder, not an image"
        raise FrameError(msg) from exc
    except OSError as exc:
        msg = f"frame {url!r} could not be read: {exc}"
        raise FrameError(msg) from exc


def read_frame(
    url: str,
    storage_options: dict | None = None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    gray: bool | str = False,
    as_drawn: bool = False,
) -> np.ndarray:
    """Read and decode one frame (see `model.files.decode_frame`): (H, W, 3) uint8 RGB over paper white, or with
    `gray` (H, W) uint8 luma, or with `gray` "auto" luma only for files without color; `as_drawn`, at the file's
    depth and with its alpha when its paper is transparent. Raises FrameError naming the file for a missing,
    unreadable, empty, corrupt, truncated, animated or over-large image (more than max_pixels pixels).
    """
    data = _read_bytes(url, storage_options)
    return decode_frame(data, url, max_pixels=max_pixels, gray=gray, as_drawn=as_drawn)


FRAME_ARRAYS = "(H, W), (H, W, 3) or (H, W, 4) uint8 or uint16"
KEYFRAME_ARRAYS = "(H, W, 3) uint8"


def image_problem(image: object, *, keyframe: bool = False) -> str | None:
    """What keeps `image` from being a line-art frame given as an array (FRAME_ARRAYS: gray, RGB or RGBA with
    straight alpha, 8 or 16 bits), or with `keyframe` a colored keyframe (KEYFRAME_ARRAYS); None when it is one."""
    expected = KEYFRAME_ARRAYS if keyframe else FRAME_ARRAYS
    if not isinstance(image, np.ndarray):
        return f"expected a numpy array {expected}, got {type(image).__name__}"
    channels = (3,) if keyframe else (3, 4)
    if not ((image.ndim == 2 and not keyframe) or (image.ndim == 3 and image.shape[2] in channels)):
        return f"expected {expected}, got shape {image.shape}"
    if image.dtype != np.uint8 and (keyframe or image.dtype != np.uint16):
        return f"expected {expected}, got dtype {image.dtype}"
    if min(image.shape[:2]) == 0:
        return f"is empty: shape {image.shape}"
    return None


class ArrayFrames:
    """A shot's line-art frames given as arrays instead of files: named as a video's frames are
    (`sequence_frame_name`), and loaded by name as `read_frame` reads, `as_drawn`, a file that holds the same
    samples, so that they color exactly as those files would.

    Args:
        frames: FRAME_ARRAYS, 0 ink and full-scale paper, in shot order; sizes may differ.

    Raises ValueError naming the first frame that is not such an array.
    """

    def __init__(self, frames: Iterable[np.ndarray]) -> None:
        frames = list(frames)
        if not frames:
            msg = f"no frames given: expected a list of {FRAME_ARRAYS} arrays"
            raise ValueError(msg)
        for index, frame in enumerate(frames):
            if (problem := image_problem(frame)) is not None:
                msg = f"frame {index}: {problem}"
                raise ValueError(msg)
        self.names = [sequence_frame_name(index, len(frames)) for index in range(len(frames))]
        self.frames = dict(zip(self.names, frames, strict=True))

    def __len__(self) -> int:
        return len(self.names)

    def load(self, name: str, gray: bool | str = "auto") -> np.ndarray:
        """The frame called `name` as `read_frame` with `gray` and `as_drawn` returns a file: "auto" gray when the
        array is, True as luma, False as RGB; with its alpha when some of its paper is transparent."""
        frame = self.frames[name]
        return as_read(frame, gray=frame.ndim == 2 if gray == "auto" else bool(gray), as_drawn=True)


class FrameReader:
    """Reads frames ahead of the consumer on a thread pool and yields them in order.

    A frame that cannot be read is yielded with its error instead of an array, and the others go on. Iterating
    again reads the frames again.

    Args:
        urls: the frames, in the order they are yielded.
        storage_options: fsspec options for the URLs.
        prefetch: how many frames may be read ahead of the one being consumed (bounds memory).
        workers: threads decoding at once (Pillow releases the GIL while decoding).
        max_pixels: per-frame pixel limit, see read_frame.
        gray: read (H, W) luma instead of (H, W, 3) RGB; "auto": luma from files without color (see read_frame).
        as_drawn: read frames at their files' depth and with their alpha (see read_frame).
        prepare: called on each decoded frame on the reading thread; its result is what is yielded. An error it
            raises fails that frame alone.
        load: takes a name of `urls` to its frame instead of reading it as a file (frames already in memory, see
            `ArrayFrames`); storage_options, max_pixels, gray and as_drawn are then not used.
    """

    def __init__(
        self,
        urls: Iterable[str],
        storage_options: dict | None = None,
        *,
        prefetch: int = 4,
        workers: int = 2,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        gray: bool | str = False,
        as_drawn: bool = False,
        prepare: Callable[[np.ndarray], Any] | None = None,
        load: Callable[[str], np.ndarray] | None = None,
    ) -> None:
        if prefetch < 1 or workers < 1:
            msg = f"FrameReader needs prefetch >= 1 and workers >= 1, got prefetch={prefetch}, workers={workers}"
            raise ValueError(msg)
        self.urls = list(urls)
        self.prefetch = prefetch
        self.workers = workers
        self.load = load or partial(
            read_frame, storage_options=storage_options, max_pixels=max_pixels, gray=gray, as_drawn=as_drawn
        )
        self.prepare = prepare

    def __len__(self) -> int:
        return len(self.urls)

    def _read(self, url: str) -> Any:
        image = self.load(url)
        return image if self.prepare is None else self.prepare(image)

    def __iter__(self) -> Iterator[FrameRead]:
        pending: deque[tuple[int, Future[np.ndarray]]] = deque()
        upcoming = iter(enumerate(self.urls))
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="frame-reader")
        try:
            for index, url in upcoming:
                pending.append((index, pool.submit(self._read, url)))
                if len(pending) > self.prefetch:
                    yield self._result(*pending.popleft())
            while pending:
                yield self._result(*pending.popleft())
        finally:
            # A consumer that stops early (break, exception) must not leave reads queued behind it.
            pool.shutdown(wait=False, cancel_futures=True)

    def _result(self, index: int, future: Future[np.ndarray]) -> FrameRead:
        """Wait for one read; any error becomes part of the result, so one bad frame does not end the shot."""
        url = self.urls[index]
        try:
            return FrameRead(index, url, future.result(), None)
        except Exception as exc:
            return FrameRead(index, url, None, exc)
