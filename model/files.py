"""Image files on any fsspec URL, read and written one way for training (model/data.py) and coloring (pipeline/frames.py
reads, pipeline/outputs.py writes). It lives in model/ because model/ may not import pipeline/, and both need it.

- Which files are images (`IMAGE_EXTENSIONS`), in natural order (`natural_key`: frame2 before frame10).
- Decoding (`decode_frame`): the file's content decides the format, any Pillow mode becomes RGB (or gray) uint8 over
  paper white, with EXIF orientation applied. 16-bit samples become 8-bit by value/257, rounded, whatever the image's
  brightest pixel: a frame reads the same for the network that learns from it and the one that colors it. Pillow has no
  16-bit color mode (it would keep each sample's high byte), so 16-bit color PNG and TIFF files are decoded by OpenCV,
  and OpenEXR files by model/exr.py (back to sRGB and straight alpha). Asked for the frame `as_drawn`, a 16-bit file
  keeps its 16-bit samples and a frame drawn on transparent paper keeps its alpha channel (pipeline/lineart.py and
  pipeline/cel.py write the cel from them).
  Empty, corrupt, truncated, animated or over-large files raise a FrameError naming them.
- Writing (`write_bytes_atomic`, `put_file_atomic`): under a temporary sibling name, then renamed (or one upload on
  object stores), retried when the failure may pass, so that an interrupted run never leaves a truncated file under
  its final name; `remove_stale_temporaries` clears what a killed run left.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from natsort import natsort_keygen, ns
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from model.exr import decode_exr, exr_size, is_exr

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".exr"})
DEFAULT_MAX_PIXELS = 8192 * 8192

# Content is sniffed, so a JPEG named .png still reads; the list keeps out formats whose plugins shell out (EPS runs
# Ghostscript) or that no studio delivers line art in.
_PIL_FORMATS = ("PNG", "JPEG", "TIFF", "WEBP", "GIF", "BMP")

# Stores where one upload becomes visible all at once or not at all: a write there needs no temporary name, and a
# rename would cost a server-side copy plus a delete per frame.
_ATOMIC_PUT_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})


class FrameError(ValueError):
    """A frame (an image file to color or to train on) or a folder of them that cannot be used; the message names
    the file and the problem."""


# ---------------------------------------------------------------------------------------------------------------------
# Names

# Digit runs compare by value and text case-insensitively (natsort's casefold, Unicode normalised).
_NATURAL_ORDER = natsort_keygen(alg=ns.IGNORECASE)


def is_image_name(name: str) -> bool:
    """Whether a file name has one of the image extensions, in any case (FRAME1.PNG is one)."""
    return os.path.splitext(name)[1].casefold() in IMAGE_EXTENSIONS


def natural_key(name: str) -> tuple:
    """Sort key that orders digit runs by value, so frame2 comes before frame10, and text case-insensitively; the
    name itself breaks ties (frame01 and frame1, Frame1 and frame1), so the order never depends on a listing's."""
    return (_NATURAL_ORDER(name), name)


# ---------------------------------------------------------------------------------------------------------------------
# Decoding


# Pillow modes without color: 1-bit, 8-bit gray, gray with alpha, 32-bit integer and float gray (and I;16*).
GRAY_MODES = ("1", "L", "LA", "La", "I", "F")


def over_paper_white(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Straight-alpha color (H, W) or (H, W, C) over paper white, rounded, at its own depth: uint8 with alpha (H, W)
    0-255, or uint16 with alpha 0-65535."""
    top = np.iinfo(color.dtype).max
    wide = np.uint32 if top == 255 else np.uint64
    weight = alpha.astype(wide) if color.ndim == 2 else alpha.astype(wide)[..., None]
    mixed = color.astype(wide) * weight + top * (top - weight)
    return ((mixed + top // 2) // top).astype(color.dtype)


def sixteen_to_eight(values: np.ndarray) -> np.ndarray:
    """16-bit samples -> 8-bit by value/257 rounded, so 65535 -> 255 and 32768 -> 128 (not a truncated high byte)."""
    wide = np.clip(values.astype(np.int64), 0, 65535)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def image_to_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow image -> (H, W, 3) uint8 RGB; transparency is composited over paper white.

    Modes I;16* and I are taken as 16-bit samples and scaled to 8 bits; others go through Pillow's own conversion
    (palette lookup, CMYK, 1-bit).
    """
    mode = img.mode
    if is_sixteen_bit_gray(img):
        gray = sixteen_to_eight(np.asarray(img))
        return np.repeat(gray[..., None], 3, axis=2)
    # "transparency" covers palette and RGB/L images that mark one color transparent (PNG tRNS, GIF).
    if has_transparency(img):
        rgba = np.asarray(img.convert("RGBA"))
        return over_paper_white(rgba[..., :3], rgba[..., 3])
    if mode == "RGB":
        return np.array(img)
    return np.array(img.convert("RGB"))


def has_transparency(img: Image.Image) -> bool:
    """Whether the image has an alpha channel or marks a color transparent (PNG tRNS, GIF: "transparency")."""
    return "A" in img.mode or "a" in img.mode or "transparency" in img.info


_PILLOW_GUARD = threading.Lock()


def open_image(data: bytes) -> Image.Image:
    """Open an image's header. Pillow's own decompression-bomb guard (Image.MAX_IMAGE_PIXELS, process-wide, about
    179M pixels) would refuse a huge header with its own message before `decode_frame` could state its `max_pixels`
    limit, and would refuse a frame a user allowed: on that error the header is read again without it (only the
    header: nothing is decoded until `decode_frame` has checked the size)."""
    try:
        return Image.open(io.BytesIO(data), formats=_PIL_FORMATS)
    except Image.DecompressionBombError:
        with _PILLOW_GUARD:
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                return Image.open(io.BytesIO(data), formats=_PIL_FORMATS)
            finally:
                Image.MAX_IMAGE_PIXELS = saved


def is_sixteen_bit_gray(img: Image.Image) -> bool:
    """Whether Pillow holds the image as 16-bit (or 32-bit integer) gray samples."""
    return img.mode.startswith("I;16") or img.mode == "I"


def decode_frame(
    data: bytes,
    url: str,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    gray: bool | str = False,
    as_drawn: bool = False,
) -> np.ndarray:
    """Decode a file's bytes to (H, W, 3) uint8 RGB over paper white, or with `gray` to (H, W) uint8 luma; with
    `gray` "auto", to luma when the file holds no color (gray, 1-bit or 16-bit gray, with or without transparency)
    and to RGB when it does: line art saved in gray then skips an RGB expansion it has no use for (a 1080p PNG
    decodes in 7 ms instead of 28, and its line preparation skips the search for colored guide lines).

    `as_drawn`: the frame as its file holds it, for a cel written at the file's depth and with its paper: a 16-bit
    file comes back as uint16, its samples unscaled, and a frame on transparent paper (an alpha channel, or a
    transparent color, below opaque somewhere) with its straight alpha as a last channel: (H, W, 2) luma and alpha
    or (H, W, 4) RGBA.

    The file's content decides the format, not its extension. EXIF orientation is applied, so the array looks the
    way the artist's viewer shows the file. Raises FrameError naming the file (`url`) for an empty, corrupt,
    truncated, animated or over-large image (more than max_pixels pixels).
    """
    if not data:
        msg = f"frame {url!r} is an empty file"
        raise FrameError(msg)
    if is_exr(data):
        return _decode_exr_frame(data, url, max_pixels=max_pixels, gray=gray, as_drawn=as_drawn)

    try:
        img = open_image(data)
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
        if gray == "auto":
            gray = img.mode in GRAY_MODES or img.mode.startswith("I;16")
        try:
            # Image.open only reads the header; load() decodes every pixel so truncation is caught here, not later.
            img.load()
        except Exception as exc:
            msg = f"frame {url!r} is truncated or corrupt: {exc}"
            raise FrameError(msg) from exc
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
        if is_sixteen_bit_color(img, data):  # Pillow's 8 bits are dropped; OpenCV reads the samples
            samples = oriented(_decode_with_opencv(data, url), orientation)
            return as_read(samples, gray=bool(gray), as_drawn=as_drawn)
        if orientation != 1:
            img = ImageOps.exif_transpose(img)
        if as_drawn and is_sixteen_bit_gray(img):
            samples = np.clip(np.asarray(img), 0, 65535).astype(np.uint16)
            return as_read(samples, gray=bool(gray), as_drawn=True)
        if as_drawn and has_transparency(img):
            return as_read(np.asarray(img.convert("LA" if gray else "RGBA")), gray=bool(gray), as_drawn=True)
        return image_to_gray(img) if gray else image_to_rgb(img)


def _decode_exr_frame(data: bytes, url: str, *, max_pixels: int, gray: bool | str, as_drawn: bool) -> np.ndarray:
    """An OpenEXR file's frame (model/exr.py), as `decode_frame` returns any other."""
    try:
        width, height = exr_size(data)
    except ValueError as exc:
        msg = f"frame {url!r} is corrupt: {exc}"
        raise FrameError(msg) from exc
    if width * height > max_pixels:
        pixels = width * height
        msg = f"frame {url!r} is too large: {width}x{height} = {pixels} pixels, over the limit of {max_pixels}"
        raise FrameError(msg)
    try:
        samples = decode_exr(data)
    except ValueError as exc:
        msg = f"frame {url!r} is truncated or corrupt: {exc}"
        raise FrameError(msg) from exc
    is_gray = samples.ndim == 2
    return as_read(samples, gray=is_gray if gray == "auto" else bool(gray), as_drawn=as_drawn)


def is_sixteen_bit_color(img: Image.Image, data: bytes) -> bool:
    """Whether the file holds 16-bit samples in more than one channel (color, or gray with alpha), which Pillow
    would cut to their high bytes: a PNG of bit depth 16 and color type 2, 4 or 6, or a TIFF with 16 bits per
    sample and several samples per pixel."""
    if img.format == "PNG":
        return len(data) > 25 and data[24] == 16 and data[25] in (2, 4, 6)
    if img.format == "TIFF":
        bits = img.tag_v2.get(258, (8,))
        return isinstance(bits, tuple) and len(bits) > 1 and bits[0] == 16
    return False


def _decode_with_opencv(data: bytes, url: str) -> np.ndarray:
    """(H, W, 3 or 4) uint16 RGB(A): a 16-bit color file's samples as stored (OpenCV reads them in BGR(A) order)."""
    samples = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if samples is None or samples.dtype != np.uint16 or samples.ndim != 3:
        msg = f"frame {url!r} is truncated or corrupt: its 16-bit samples could not be decoded"
        raise FrameError(msg)
    return cv2.cvtColor(samples, cv2.COLOR_BGRA2RGBA if samples.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def oriented(image: np.ndarray, orientation: int) -> np.ndarray:
    """`image` turned the way an EXIF orientation tag (1-8) says it is shown, as Pillow's exif_transpose does."""
    turns = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(turns[orientation](image)) if orientation in turns else image


def as_read(samples: np.ndarray, *, gray: bool, as_drawn: bool) -> np.ndarray:
    """A frame's samples as stored, (H, W, C) RGB, RGBA or luma and alpha (C 3, 4 or 2) or (H, W) luma, uint8 or
    uint16, as `decode_frame` returns them (see there), as luma when `gray`."""
    alpha = None
    if samples.ndim == 3 and samples.shape[2] in (2, 4):
        samples, alpha = samples[..., :-1], samples[..., -1]
        if samples.shape[2] == 1:
            samples = samples[..., 0]
    top = np.iinfo(samples.dtype).max
    if as_drawn:
        samples = _in_mode(samples, gray)
        return np.dstack([samples, alpha]) if alpha is not None and alpha.min() < top else samples
    if alpha is not None:
        samples = over_paper_white(samples, alpha)
    return _in_mode(sixteen_to_eight(samples) if top != 255 else samples, gray)


def _in_mode(samples: np.ndarray, gray: bool) -> np.ndarray:
    """(H, W) or (H, W, 3) samples as luma (`gray`) or as RGB."""
    if gray and samples.ndim == 3:
        return luma(samples)
    if not gray and samples.ndim == 2:
        return np.repeat(samples[..., None], 3, axis=2)
    return samples


def luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 or uint16 -> (H, W) luma at the same depth, Rec. 601 weights."""
    return rgb_to_gray(rgb) if rgb.dtype == np.uint8 else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) uint8 luma, Rec. 601 weights (Pillow's "L" conversion)."""
    return np.asarray(Image.fromarray(rgb, "RGB").convert("L"))


def image_to_gray(img: Image.Image) -> np.ndarray:
    """Any Pillow image -> (H, W) uint8 luma over paper white: line art needs no color, and 3x fewer bytes."""
    if img.mode == "L" and "transparency" not in img.info:
        return np.array(img)
    if is_sixteen_bit_gray(img):
        return sixteen_to_eight(np.asarray(img))
    return rgb_to_gray(image_to_rgb(img))


# ---------------------------------------------------------------------------------------------------------------------
# Writing


def is_local(fs: Any) -> bool:
    """True for the local disk, where os.replace gives an atomic rename."""
    return isinstance(fs, LocalFileSystem)


def _protocols(fs: Any) -> set[str]:
    """An fsspec filesystem's protocol names as a set."""
    protocol = fs.protocol
    return {protocol} if isinstance(protocol, str) else set(protocol)


def temporary_sibling(path: str) -> str:
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
    tmp = temporary_sibling(path)
    try:
        write(tmp)
        if is_local(fs):
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
        if is_local(fs):
            with open(target, "wb") as f:
                f.write(data)
        else:
            fs.pipe_file(target, data)

    _commit(fs, path, write)


def put_file_atomic(local_path: str, url: str, storage_options: dict | None = None) -> None:
    """Copy a finished local file to url atomically (streamed, for files too large to hold in memory)."""
    fs, path = url_to_fs(url, **(storage_options or {}))
    _commit(fs, path, lambda target: fs.put_file(local_path, target))


_TEMPORARY_NAME = re.compile(r"\.(?P<name>.+)\.tmp-[0-9a-f]{32}")  # `temporary_sibling`'s names


def remove_stale_temporaries(
    folder: str, owned: Callable[[str], bool], storage_options: dict | None = None
) -> list[str]:
    """Remove from `folder` the temporaries an interrupted write left (".NAME.tmp-" and 32 hex digits, as
    `temporary_sibling` names them) of the names `owned` accepts; returns the paths removed. No other file is
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
