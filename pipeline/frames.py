"""List, read and write the frames of a shot through fsspec.

One code path serves local folders, s3://, gs:// and memory:// URLs. Frames are listed in natural order, read ahead
on threads and written behind on threads as PNG or TIFF files. How a file decodes, how names sort and how a write is
made atomic are model/files.py's rules, the same ones training reads its frames by; this module adds the URLs, the
frame folders' rules (junk files, output names that stay inside their folder) and the checks of what a run wrote.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import posixpath
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, NamedTuple

import cv2
import fsspec
import numpy as np
from fsspec.core import url_to_fs

from model.files import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    FrameError,
    decode_frame,
    is_image_name,
    is_local,
    natural_key,
    open_image,
    rgb_to_gray,
    storage_connection_errors,
    with_retries,
    write_bytes_atomic,
)
from pipeline.png import encode_png

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


class WrittenFile(NamedTuple):
    """A file as written: its size in bytes and the SHA-256 of its bytes (hex), for verifying it later."""

    bytes: int
    sha256: str


def file_checksum(url: str, storage_options: dict | None = None) -> WrittenFile:
    """Size and SHA-256 of a file as it is now."""
    digest = hashlib.sha256()
    size = 0
    with fsspec.open(url, "rb", **(storage_options or {})) as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return WrittenFile(size, digest.hexdigest())


def written_file_problem(url: str, recorded: WrittenFile, storage_options: dict | None = None) -> str | None:
    """What is wrong with a file this package wrote, against the size and SHA-256 recorded when it was written
    ("missing", "checksum differs ...", "does not decode ..."), or None when it is that very file and decodes to
    its end. A record without a checksum (a table from before checksums) is checked for decoding only."""
    fs, path = url_to_fs(url, **(storage_options or {}))
    try:
        data = with_retries(lambda: fs.cat_file(path), f"reading {url}")
    except FileNotFoundError:
        return "missing"
    except OSError as error:
        return f"cannot be read: {error}"
    if recorded.sha256 and hashlib.sha256(data).hexdigest() != recorded.sha256:
        return f"checksum differs from the one recorded when it was written ({len(data)} bytes now, {recorded.bytes})"
    try:
        # A file whose bytes are those written is one this package encoded; decoding it still catches a checksum
        # recorded of a damaged file (older versions recorded the checksum of whatever a rerun found).
        with open_image(data) as image:
            image.load()
    except Exception as error:
        return f"does not decode: {error}"
    return None


def intact_outputs(
    folder: str, recorded: Mapping[str, WrittenFile], storage_options: dict | None = None, *, workers: int = 4
) -> dict[str, WrittenFile]:
    """The files of `recorded` (names inside `folder`, with their size and checksum as written) that are still
    there byte for byte and decode, read on `workers` threads (hashlib and zlib release the GIL). Each other one
    is logged with what is wrong with it."""

    def check(name: str) -> bool:
        url = f"{folder.rstrip('/')}/{name}"
        problem = written_file_problem(url, recorded[name], storage_options)
        if problem is not None:
            log.log(logging.INFO if problem == "missing" else logging.WARNING, "%s: %s", url, problem)
        return problem is None

    names = list(recorded)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="output-check") as pool:
        return {name: recorded[name] for name, ok in zip(names, pool.map(check, names), strict=True) if ok}


# Adobe Deflate: lossless, and the TIFF compression every compositing and paint application reads.
_TIFF_DEFLATE = 8


def encode_tiff(array: np.ndarray) -> bytes:
    """An (H, W), (H, W, 3) RGB or (H, W, 4) RGBA uint8 or uint16 array as Deflate-compressed TIFF bytes (OpenCV's
    encoder: Pillow writes no 16-bit color TIFF)."""
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR if array.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    ok, data = cv2.imencode(".tif", array, [cv2.IMWRITE_TIFF_COMPRESSION, _TIFF_DEFLATE])
    if not ok:
        msg = f"OpenCV could not encode a {array.dtype} {array.shape} array as TIFF"
        raise ValueError(msg)
    return data.tobytes()


def encode_frame(array: np.ndarray, url: str) -> bytes:
    """A frame's file bytes, in the format its name's extension says: TIFF for .tif and .tiff, else PNG."""
    return encode_tiff(array) if url.casefold().endswith((".tif", ".tiff")) else encode_png(array)


def write_frame(array: np.ndarray, url: str, storage_options: dict | None = None) -> WrittenFile:
    """Encode an (H, W), (H, W, 3) or (H, W, 4) uint8 or uint16 array as PNG or TIFF (`encode_frame`) and write it
    atomically to url; returns its size and checksum.

    The file is encoded in memory first, then written under a temporary sibling name and renamed (or, on object
    stores, uploaded in one request), so an interrupted write never leaves a truncated file under the final name.
    """
    try:
        data = encode_frame(array, url)
    except ValueError as error:  # a caller's bug, reported with the file it was meant for
        msg = f"cannot write {url!r}: {error}"
        raise ValueError(msg) from error
    write_bytes_atomic(data, url, storage_options)
    return WrittenFile(len(data), hashlib.sha256(data).hexdigest())


def check_output_names(urls: Iterable[str]) -> None:
    """Raise FrameError when two frames would be written under one output name (clash.tif and clash.jpg both make
    clash.png: the second would overwrite the first), naming both."""
    seen: dict[str, str] = {}
    for url in urls:
        try:
            name = output_name(url)
        except FrameError:
            continue  # such a frame fails on its own, with its reason
        if name in seen:
            msg = f"frames {seen[name]!r} and {url!r} would both be written as {name!r}; rename one of them"
            raise FrameError(msg)
        seen[name] = url


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a file or folder directly inside an output folder, or None when it can: one path
    segment, neither hidden nor the folder above."""
    if not name.strip():
        return "it is empty"
    if "/" in name or "\\" in name:
        return "it holds a path separator ('/' or '\\'), which would put it in another folder"
    if name.startswith("."):
        return "it starts with '.' (a hidden name, or '..', the folder above)"
    if "\0" in name:
        return "it holds a NUL character"
    return None


def resolved_location(url: str) -> str:
    """Where a file or folder really is, so that two spellings of one place compare equal: a local path made
    absolute with its symbolic links followed (os.path.realpath: 'in', './in/' and a link to it are one place), any
    other URL as its store's protocol and its path normalised ('s3a://bucket/a/./b/' is 's3://bucket/a/b')."""
    protocol, path = fsspec.core.split_protocol(url)
    if protocol in (None, "file", "local"):
        return os.path.realpath(path)
    with contextlib.suppress(ImportError, ValueError):  # an unknown protocol keeps its own name
        names = fsspec.get_filesystem_class(protocol).protocol
        protocol = names if isinstance(names, str) else names[0]
    return f"{protocol}://{posixpath.normpath('/' + path).lstrip('/')}"


def overwrite_problem(frames: str, frame_urls: Iterable[str], output: str) -> str | None:
    """How writing a shot's colored frames into the folder `output` would overwrite its line art, or None.

    It would when `output` is the frames folder `frames`, however spelled ('./in/', an absolute path, a symbolic
    link to it), or when a frame is a symbolic link to the file its colored frame would be written to. An output
    folder inside the frames folder is fine: a shot's frames are only that folder's own files.
    """
    output_at = resolved_location(output)
    if output_at == resolved_location(frames):
        return (f"output folder {output!r} would overwrite the line art: it is the frames folder {frames!r} (both are "
                f"{output_at!r}); choose another folder")  # fmt: skip
    if fsspec.core.split_protocol(output)[0] not in (None, "file", "local"):
        return None  # object stores have no links: another folder holds other files
    for url in frame_urls:
        protocol, path = fsspec.core.split_protocol(url)
        if protocol not in (None, "file", "local") or not os.path.islink(path):
            continue
        try:
            target = f"{output.rstrip('/')}/{output_name(url)}"
        except FrameError:
            continue
        if os.path.realpath(path) == resolved_location(target):
            return (f"output folder {output!r} would overwrite the line art: frame {url!r} is a symbolic link to "
                    f"{os.path.realpath(path)!r}, the file its colored frame would be written to; choose another "
                    "folder")  # fmt: skip
    return None


def join_url(folder: str, name: str) -> str:
    """A file's URL inside a folder URL, whether or not the folder's ends in '/'; the name alone when there is no
    folder (a shot colored in memory has none)."""
    return f"{folder.rstrip('/')}/{name}" if folder else name


def output_name(frame_url: str, extension: str = ".png") -> str:
    """The output file name for an input frame: the same stem (sh010_0001.tif -> sh010_0001.png) with `extension`.

    Raises FrameError for URLs whose name could escape or hide in the output folder: a '..' path segment, a
    backslash, an empty name or stem, or a name starting with '.'.
    """
    segments = frame_url.split("/")
    name = segments[-1]
    problem = None
    if ".." in segments:
        problem = "has a '..' path segment"
    elif "\\" in name:
        problem = "has a backslash in its name"
    elif not name:
        problem = "ends in '/', not a file name"
    elif name.startswith("."):
        problem = "names a hidden file"
    stem = os.path.splitext(name)[0]
    if problem is None and not stem:
        problem = "has an empty file stem"
    if problem is not None:
        msg = f"frame {frame_url!r} {problem}; cannot derive an output name inside the output folder"
        raise FrameError(msg)
    return f"{stem}{extension}"


def sequence_frame_name(index: int, total: int, extension: str = ".png") -> str:
    """The name of frame `index` (0-based) of a sequence of `total` frames that came without file names (a video's,
    or arrays): frame_00001.png ..., zero-padded to fit `total`, with `extension`."""
    return f"frame_{index + 1:0{max(5, len(str(total)))}d}{extension}"


def image_problem(image: object, shapes: str = "(H, W) or (H, W, 3)") -> str | None:
    """What keeps `image` from being a frame given as an array, uint8 of the `shapes` named, or None."""
    if not isinstance(image, np.ndarray):
        return f"expected a numpy array {shapes} uint8, got {type(image).__name__}"
    gray_allowed = "(H, W)" in shapes
    if not ((image.ndim == 2 and gray_allowed) or (image.ndim == 3 and image.shape[2] == 3)):
        return f"expected shape {shapes}, got {image.shape}"
    if image.dtype != np.uint8:
        return f"expected dtype uint8 (0-255), got {image.dtype}"
    if min(image.shape[:2]) == 0:
        return f"is empty: shape {image.shape}"
    return None


class ArrayFrames:
    """A shot's line-art frames given as arrays instead of files: named as a video's frames are
    (`sequence_frame_name`), and loaded by name as `read_frame` reads a file saved in the array's mode, (H, W) gray
    and (H, W, 3) RGB, so that they color exactly as those files would.

    Args:
        frames: (H, W) or (H, W, 3) uint8 arrays, 0 ink and 255 paper, in shot order; sizes may differ.

    Raises ValueError naming the first frame that is not such an array.
    """

    def __init__(self, frames: Iterable[np.ndarray]) -> None:
        frames = list(frames)
        if not frames:
            msg = "no frames given: expected a list of (H, W) or (H, W, 3) uint8 arrays"
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
        """The frame called `name` as `read_frame` with `gray` returns a file: "auto" as given, True as luma, False
        as RGB."""
        frame = self.frames[name]
        if gray == "auto" or (frame.ndim == 2) == bool(gray):
            return frame
        return rgb_to_gray(frame) if gray else np.repeat(frame[..., None], 3, axis=2)


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


class FrameWriter:
    """Writes frames (`write_frame`) behind the caller on a thread pool; errors are recorded, not raised.

    submit() blocks once max_pending writes are queued, which bounds the frames held in memory. Arrays must not be
    modified after they are submitted. close() waits for every write and returns (url, error or None) in
    submission order; the same list stays in `results`. Usable as a context manager.

    Args:
        storage_options: fsspec options for the URLs.
        workers: threads encoding and writing at once (zlib releases the GIL).
        max_pending: the most writes queued or running before submit() waits.
    """

    def __init__(
        self,
        storage_options: dict | None = None,
        *,
        workers: int = 2,
        max_pending: int = 8,
    ) -> None:
        if workers < 1 or max_pending < 1:
            msg = f"FrameWriter needs workers >= 1 and max_pending >= 1, got {workers=}, {max_pending=}"
            raise ValueError(msg)
        self.storage_options = storage_options
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="frame-writer")
        self._slots = threading.BoundedSemaphore(max_pending)
        self._submitted: list[tuple[str, Future[WrittenFile]]] = []
        self._closed = False
        self.results: list[tuple[str, Exception | None]] = []
        self.written: dict[str, WrittenFile] = {}  # size and checksum of each frame written

    def submit(self, array: np.ndarray, url: str) -> None:
        """Queue one frame's write; blocks while max_pending writes are outstanding."""
        if self._closed:
            msg = f"FrameWriter is closed; cannot write {url!r}"
            raise RuntimeError(msg)
        self._slots.acquire()
        try:
            future = self._pool.submit(write_frame, array, url, self.storage_options)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        self._submitted.append((url, future))

    def close(self) -> list[tuple[str, Exception | None]]:
        """Wait for all writes; (url, error or None) per submitted frame, in submission order."""
        if self._closed:
            return self.results
        self._closed = True
        self._pool.shutdown(wait=True)
        for url, future in self._submitted:
            exc = future.exception()
            if exc is not None and not isinstance(exc, Exception):
                raise exc  # KeyboardInterrupt or SystemExit in a writer thread is not a frame's fault
            if exc is None:
                self.written[url] = future.result()
            self.results.append((url, exc))
        return self.results

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class FrameCollector:
    """Keeps finished frames in memory where a FrameWriter would write them: the sink of a shot colored in memory.
    It has FrameWriter's submit(), close(), `results` and `written` (empty: no file, no size or checksum); `frames`
    holds each array submitted under its name."""

    def __init__(self) -> None:
        self.frames: dict[str, np.ndarray] = {}
        self.results: list[tuple[str, Exception | None]] = []
        self.written: dict[str, WrittenFile] = {}

    def submit(self, array: np.ndarray, url: str) -> None:
        self.frames[url] = array

    def close(self) -> list[tuple[str, Exception | None]]:
        self.results = [(url, None) for url in self.frames]
        return self.results
