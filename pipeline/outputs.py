"""The files a shot writes and what a later run trusts of them.

Finished frames are encoded in memory (PNG through pipeline/png.py, TIFF through tifffile, OpenEXR through model/exr.py,
as the name's extension says), written atomically (model/files.py's `write_bytes_atomic`: a temporary sibling name, then
a rename) behind the caller on threads (`FrameWriter`), or kept in memory for a shot colored from arrays
(`FrameCollector`). Each written file's size and SHA-256 are recorded (`WrittenFile`), so that a rerun keeps only
outputs that are still byte for byte what was written and decode (`intact_outputs`).
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple

import fsspec
import numpy as np
import tifffile
from fsspec.core import url_to_fs

from model.exr import decode_exr, encode_exr, is_exr
from model.files import open_image, with_retries, write_bytes_atomic
from pipeline.png import encode_png

log = logging.getLogger(__name__)


class WrittenFile(NamedTuple):
    """A file as written: its size in bytes and the SHA-256 of its bytes (hex), for verifying it later."""

    bytes: int
    sha256: str


def encode_tiff(array: np.ndarray) -> bytes:
    """An (H, W), (H, W, 3) RGB or (H, W, 4) RGBA uint8 or uint16 array as Deflate-compressed TIFF bytes, the
    alpha marked as unassociated (straight) alpha, as compositing applications read it (tifffile: OpenCV's TIFF
    left the fourth channel unnamed, and took 1.3x as long at 1080p; Pillow writes no 16-bit color TIFF)."""
    stream = io.BytesIO()
    color = array.ndim == 3
    alpha = ["unassalpha"] if color and array.shape[2] == 4 else None
    tifffile.imwrite(
        stream, array, photometric="rgb" if color else "minisblack", extrasamples=alpha, compression="zlib"
    )
    return stream.getvalue()


def encode_frame(array: np.ndarray, url: str) -> bytes:
    """A frame's file bytes, in the format its name's extension says: TIFF for .tif and .tiff, OpenEXR for .exr
    (model/exr.py), else PNG."""
    name = url.casefold()
    if name.endswith((".tif", ".tiff")):
        return encode_tiff(array)
    if name.endswith(".exr"):
        return encode_exr(array)
    return encode_png(array)


def write_frame(array: np.ndarray, url: str, storage_options: dict | None = None) -> WrittenFile:
    """Encode an (H, W), (H, W, 3) or (H, W, 4) uint8 or uint16 array as PNG, TIFF or EXR (`encode_frame`) and write it
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
        if is_exr(data):
            decode_exr(data)
        else:
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
