"""List, read and write the frames of a shot through fsspec.

One code path serves local folders, s3://, gs:// and memory:// URLs. Frames are listed in natural order, decoded
from any Pillow mode to RGB uint8 over paper white, and written as PNGs atomically so that a retried or interrupted
shot never leaves a truncated frame under its final name.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import logging
import os
import posixpath
import re
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import fsspec
import numpy as np
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from model.data import natural_key  # one natural order for training folders and frames
from pipeline.png import encode_png

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"})
DEFAULT_MAX_PIXELS = 8192 * 8192

# Files that OS file browsers leave in folders; AppleDouble "._frame1.png" even carries an image extension.
_JUNK_NAMES = frozenset({"thumbs.db", "desktop.ini"})

# Content is sniffed, so a JPEG named .png still reads; the list keeps out formats whose plugins shell out (EPS runs
# Ghostscript) or that no studio delivers line art in.
_PIL_FORMATS = ("PNG", "JPEG", "TIFF", "WEBP", "GIF", "BMP")

# Stores where one upload becomes visible all at once or not at all: a write there needs no temporary name, and a
# rename would cost a server-side copy plus a delete per frame.
_ATOMIC_PUT_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})

_PAPER_WHITE = 255


class FrameError(ValueError):
    """A frame or frame folder that cannot be used; the message names the file and the problem."""


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


def _is_local(fs: Any) -> bool:
    """True for the local disk, where os.replace gives an atomic rename."""
    return isinstance(fs, LocalFileSystem)


def _protocols(fs: Any) -> set[str]:
    """An fsspec filesystem's protocol names as a set."""
    protocol = fs.protocol
    return {protocol} if isinstance(protocol, str) else set(protocol)


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
        if os.path.splitext(name)[1].casefold() not in IMAGE_EXTENSIONS:
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
    base = path if _is_local(fs) else fs.unstrip_protocol(path)
    return [f"{base.rstrip('/')}/{name}" for name in names]


def _is_file_entry(fs: Any, entry: dict) -> bool:
    """A listed file, or a symbolic link to one. fsspec lists a local link as type "other"; a link to a folder is
    left out like a folder, and a broken link is kept, to fail as a frame with its own reason."""
    if entry.get("type") == "file":
        return True
    return bool(entry.get("islink")) and _is_local(fs) and not os.path.isdir(entry["name"])


def _read_bytes(url: str, storage_options: dict | None) -> bytes:
    """The whole file at url; a missing or unreadable file becomes a FrameError naming it."""
    fs, path = url_to_fs(url, **(storage_options or {}))
    try:
        return with_retries(lambda: fs.cat_file(path), f"reading {url}")
    except FileNotFoundError as exc:
        if _is_local(fs) and os.path.islink(path):
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


def _composite_over_white(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 straight alpha -> (H, W, 3) uint8 over paper white, rounded."""
    rgb = rgba[..., :3].astype(np.uint32)
    alpha = rgba[..., 3:].astype(np.uint32)
    out = (rgb * alpha + _PAPER_WHITE * (255 - alpha) + 127) // 255
    return out.astype(np.uint8)


def _sixteen_to_eight(values: np.ndarray) -> np.ndarray:
    """16-bit samples -> 8-bit by value/257 rounded, so 65535 -> 255 and 32768 -> 128 (not a truncated high byte)."""
    wide = np.clip(values.astype(np.int64), 0, 65535)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def image_to_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow image -> (H, W, 3) uint8 RGB; transparency is composited over paper white.

    Modes I;16* and I are taken as 16-bit samples and scaled to 8 bits; others go through Pillow's own conversion
    (palette lookup, CMYK, 1-bit).
    """
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        gray = _sixteen_to_eight(np.asarray(img))
        return np.repeat(gray[..., None], 3, axis=2)
    # "transparency" covers palette and RGB/L images that mark one color transparent (PNG tRNS, GIF).
    if "A" in mode or "a" in mode or "transparency" in img.info:
        rgba = img.convert("RGBA")
        return _composite_over_white(np.asarray(rgba))
    if mode == "RGB":
        return np.array(img)
    return np.array(img.convert("RGB"))


_PILLOW_GUARD = threading.Lock()


def _open_image(data: bytes) -> Image.Image:
    """Open an image's header. Pillow's own decompression-bomb guard (Image.MAX_IMAGE_PIXELS, process-wide, about
    179M pixels) would refuse a huge header with its own message before `read_frame` could state its `max_pixels`
    limit, and would refuse a frame a user allowed: on that error the header is read again without it (only the
    header: nothing is decoded until `read_frame` has checked the size)."""
    try:
        return Image.open(io.BytesIO(data), formats=_PIL_FORMATS)
    except Image.DecompressionBombError:
        with _PILLOW_GUARD:
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                return Image.open(io.BytesIO(data), formats=_PIL_FORMATS)
            finally:
                Image.MAX_IMAGE_PIXELS = saved


def read_frame(
    url: str,
    storage_options: dict | None = None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    gray: bool | str = False,
) -> np.ndarray:
    """Decode one frame to (H, W, 3) uint8 RGB over paper white, or with `gray` to (H, W) uint8 luma; with `gray`
    "auto", to luma when the file holds no color (gray, 1-bit or 16-bit gray, with or without transparency) and to
    RGB when it does: line art saved in gray then skips an RGB expansion it has no use for (a 1080p PNG decodes in
    7 ms instead of 28, and its line preparation skips the search for colored guide lines).

    The file's content decides the format, not its extension. EXIF orientation is applied, so the array looks the
    way the artist's viewer shows the file. Raises FrameError naming the file for an empty, missing, corrupt,
    truncated, animated or over-large image (more than max_pixels pixels).
    """
    return decode_frame(_read_bytes(url, storage_options), url, max_pixels=max_pixels, gray=gray)


def decode_frame(
    data: bytes, url: str, *, max_pixels: int = DEFAULT_MAX_PIXELS, gray: bool | str = False
) -> np.ndarray:
    """`read_frame` of a file's bytes already read; `url` names the file in errors."""
    if not data:
        msg = f"frame {url!r} is an empty file"
        raise FrameError(msg)

    try:
        img = _open_image(data)
    except UnidentifiedImageError as exc:
        kinds = ", ".join(_PIL_FORMATS)
        msg = f"frame {url!r} is not an image Pillow can read ({len(data)} bytes; expected one of {kinds})"
        raise FrameError(msg) from exc
    except Exception as exc:
        # Header parsers of untrusted files raise many kinds of errors (SyntaxError, struct.error, EOFError ...).
        msg = f"frame {url!r} is corrupt: {exc}"
        raise FrameError(msg) from exc

    with img:
        width, height = img.size
        if width * height > max_pixels:
            pixels = width * height
            msg = f"frame {url!r} is too large: {width}x{height} = {pixels} pixels, over the limit of {max_pixels}"
            raise FrameError(msg)
        n_frames = getattr(img, "n_frames", 1)
        # A camera's MPO is a JPEG whose extra pictures (depth, previews) follow the main one: read the main one.
        if n_frames > 1 and img.format != "MPO":
            msg = f"frame {url!r} holds {n_frames} images (animated or multi-page {img.format}); expected one"
            raise FrameError(msg)
        try:
            # Image.open only reads the header; load() decodes every pixel so truncation is caught here, not later.
            img.load()
        except Exception as exc:
            msg = f"frame {url!r} is truncated or corrupt: {exc}"
            raise FrameError(msg) from exc
        if img.getexif().get(ExifTags.Base.Orientation, 1) != 1:
            img = ImageOps.exif_transpose(img)
        if gray == "auto":
            gray = img.mode in GRAY_MODES or img.mode.startswith("I;16")
        return image_to_gray(img) if gray else image_to_rgb(img)


# Pillow modes without color: 1-bit, 8-bit gray, gray with alpha, 32-bit integer and float gray (and I;16*).
GRAY_MODES = ("1", "L", "LA", "La", "I", "F")


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) uint8 luma, Rec. 601 weights (Pillow's "L" conversion)."""
    return np.asarray(Image.fromarray(rgb, "RGB").convert("L"))


def image_to_gray(img: Image.Image) -> np.ndarray:
    """Any Pillow image -> (H, W) uint8 luma over paper white: line art needs no color, and 3x fewer bytes."""
    if img.mode == "L" and "transparency" not in img.info:
        return np.array(img)
    if img.mode.startswith("I;16") or img.mode == "I":
        return _sixteen_to_eight(np.asarray(img))
    return rgb_to_gray(image_to_rgb(img))


def _temporary_sibling(path: str) -> str:
    """A hidden, unique name next to path, so the final rename stays within one folder (and one device)."""
    parent, _, name = path.rpartition("/")
    tmp = f".{name}.tmp-{uuid.uuid4().hex}"
    return f"{parent}/{tmp}" if parent else tmp


# Seconds to wait before each retry of a storage call that failed in a way that may pass (a dropped connection, a
# timeout, a server restarting): about 8 s in all, then the error is reported.
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0)
# Errors that another try cannot fix.
_PERMANENT_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, FileExistsError)
_PERMANENT_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.ENAMETOOLONG, errno.ELOOP}


class StorageUnreachable(ConnectionError):
    """A storage endpoint that cannot be reached, after its client's own retries (botocore's)."""


@contextlib.contextmanager
def storage_connection_errors() -> Iterator[None]:
    """Raise a storage client's connection failure that is no OSError (botocore's EndpointConnectionError, which
    s3fs lets through) as StorageUnreachable, an OSError: callers then report it with the URL they were using."""
    try:
        yield
    except OSError:
        raise
    except Exception as error:
        botocore = sys.modules.get("botocore.exceptions")  # loaded when s3fs is in use; not a dependency otherwise
        if botocore is None or not isinstance(error, botocore.ConnectionError):
            raise
        raise StorageUnreachable(str(error)) from error


def with_retries(call: Callable[[], Any], what: str) -> Any:
    """call(), tried again after each of RETRY_DELAYS when it fails with an OSError that may pass (not a missing
    file, refused permission, a full or read-only disk, an endpoint its client already retried); the last error is
    raised. `what` names it in the log."""
    for attempt, delay in enumerate((*RETRY_DELAYS, None)):
        try:
            with storage_connection_errors():
                return call()
        except StorageUnreachable:
            raise
        except OSError as error:
            if delay is None or isinstance(error, _PERMANENT_ERRORS) or error.errno in _PERMANENT_ERRNOS:
                raise
            log.warning("%s failed (%s: %s); trying again in %.2f s (retry %d of %d)", what,
                        type(error).__name__, error, delay, attempt + 1, len(RETRY_DELAYS))  # fmt: skip
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _commit(fs: Any, path: str, write: Callable[[str], None]) -> None:
    """Run write(target) so that path holds either its old content or the complete new one, never a part; a
    failure that may pass is retried (`with_retries`)."""
    with_retries(lambda: _commit_once(fs, path, write), f"writing {path}")


def _commit_once(fs: Any, path: str, write: Callable[[str], None]) -> None:
    if _protocols(fs) & _ATOMIC_PUT_PROTOCOLS:
        # No makedirs here: object stores have no folders, and s3fs's makedirs would create a missing bucket.
        write(path)
        return
    parent = path.rpartition("/")[0]
    if parent:
        fs.makedirs(parent, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        write(tmp)
        if _is_local(fs):
            os.replace(tmp, path)
        else:
            fs.mv(tmp, path)
    except BaseException:
        # BaseException too: a Ctrl-C or a killed worker between write and rename must not leave litter behind.
        with contextlib.suppress(Exception):
            fs.rm_file(tmp)
        raise


def write_bytes_atomic(data: bytes, url: str, storage_options: dict | None = None) -> None:
    """Write data to url so that readers see the old file or the whole new one; local parent folders are created."""
    fs, path = url_to_fs(url, **(storage_options or {}))

    def write(target: str) -> None:
        if _is_local(fs):
            with open(target, "wb") as f:
                f.write(data)
        else:
            fs.pipe_file(target, data)

    _commit(fs, path, write)


def put_file_atomic(local_path: str, url: str, storage_options: dict | None = None) -> None:
    """Copy a finished local file to url atomically (streamed, for files too large to hold in memory)."""
    fs, path = url_to_fs(url, **(storage_options or {}))
    _commit(fs, path, lambda target: fs.put_file(local_path, target))


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
        with _open_image(data) as image:
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


_TEMPORARY_NAME = re.compile(r"\.(?P<name>.+)\.tmp-[0-9a-f]{32}")  # `_temporary_sibling`'s names


def remove_stale_temporaries(
    folder: str, owned: Callable[[str], bool], storage_options: dict | None = None
) -> list[str]:
    """Remove from `folder` the temporaries an interrupted write left (".NAME.tmp-" and 32 hex digits, as
    `_temporary_sibling` names them) of the names `owned` accepts; returns the paths removed. No other file is
    touched. Call it before writing those names again: a write still under way in another process would lose its
    temporary too."""
    fs, root = url_to_fs(folder, **(storage_options or {}))
    try:
        fs.invalidate_cache(root)
        paths = fs.ls(root, detail=False)
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for path in paths:
        match = _TEMPORARY_NAME.fullmatch(path.rstrip("/").rpartition("/")[2])
        if match is not None and owned(match["name"]):
            with contextlib.suppress(FileNotFoundError):
                fs.rm_file(path)
            removed.append(path)
    if removed:
        log.info("removed %d temporary files an interrupted run left in %s", len(removed), folder)
    return removed


def write_png(array: np.ndarray, url: str, storage_options: dict | None = None) -> WrittenFile:
    """Encode a uint8 (H, W, 3) or (H, W) array as PNG and write it atomically to url; returns its size and
    checksum.

    The PNG is encoded in memory first, then written under a temporary sibling name and renamed (or, on object
    stores, uploaded in one request), so an interrupted write never leaves a truncated file under the final name.
    """
    try:
        data = encode_png(array)
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
    """A file's URL inside a folder URL, whether or not the folder's ends in '/'."""
    return f"{folder.rstrip('/')}/{name}"


def output_name(frame_url: str) -> str:
    """The output file name for an input frame: the same stem with a .png extension.

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
    return f"{stem}.png"


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
        prepare: called on each decoded frame on the reading thread; its result is what is yielded. An error it
            raises fails that frame alone.
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
        prepare: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        if prefetch < 1 or workers < 1:
            msg = f"FrameReader needs prefetch >= 1 and workers >= 1, got prefetch={prefetch}, workers={workers}"
            raise ValueError(msg)
        self.urls = list(urls)
        self.prefetch = prefetch
        self.workers = workers
        self.read_options = {"storage_options": storage_options, "max_pixels": max_pixels, "gray": gray}
        self.prepare = prepare

    def __len__(self) -> int:
        return len(self.urls)

    def _read(self, url: str) -> Any:
        image = read_frame(url, **self.read_options)
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
    """Writes PNGs behind the caller on a thread pool; errors are recorded, not raised.

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
        """Queue one PNG write; blocks while max_pending writes are outstanding."""
        if self._closed:
            msg = f"FrameWriter is closed; cannot write {url!r}"
            raise RuntimeError(msg)
        self._slots.acquire()
        try:
            future = self._pool.submit(write_png, array, url, self.storage_options)
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
