"""A fast PNG encoder for finished frames: one vectorised filter for the whole image, then run-length zlib.

Pillow's encoder tries every PNG filter on every row and keeps the best (adaptive filtering); on colored cel frames
that search is most of its time (800x600: 10.6 ms, of which 7 ms remain even without compression). Here every row
uses the "Up" filter (the difference to the row above), computed for the whole image in one numpy subtraction, and
zlib's run-length strategy packs the long runs of zeros that flat colors leave: 2.2-2.3x faster than Pillow at
800x600 and 1920x1080, for files 15-30% larger. Both steps release the GIL, so writer threads encode in parallel.
Any PNG reader decodes the result: gray, RGB and RGBA (a cel on transparent paper, pipeline/cel.py), at 8 or 16
bits (16-bit samples big-endian, as PNG stores them; the Up filter works on their bytes alike).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPES = {1: 0, 3: 2, 4: 6}  # channels -> PNG color type: 0 gray, 2 truecolor, 6 truecolor with alpha
_BIT_DEPTHS = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}
_FILTER_UP = 2


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """A PNG chunk: length, type, data and the CRC of type + data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def up_filtered(array: np.ndarray) -> np.ndarray:
    """(H, W[, C]) uint8 -> (H, 1 + W*C) PNG scanlines, each led by the Up filter byte (the first row is kept as is:
    above it, PNG assumes zeros)."""
    height = array.shape[0]
    rows = array.reshape(height, -1)
    lines = np.empty((height, rows.shape[1] + 1), np.uint8)
    lines[:, 0] = _FILTER_UP
    lines[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=lines[1:, 1:])  # uint8 arithmetic wraps modulo 256, as PNG's does
    return lines


def encode_png(array: np.ndarray) -> bytes:
    """An (H, W), (H, W, 3) or (H, W, 4) uint8 or uint16 array as PNG bytes."""
    channels = {2: 1, 3: array.shape[-1]}.get(array.ndim, 0)
    if array.dtype not in _BIT_DEPTHS or channels not in _COLOR_TYPES or 0 in array.shape:
        msg = (f"encode_png takes a non-empty uint8 or uint16 (H, W), (H, W, 3) or (H, W, 4) array, got "
               f"{array.dtype} {array.shape}")  # fmt: skip
        raise ValueError(msg)
    height, width = array.shape[:2]
    samples = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder(">")).view(np.uint8)
    compressor = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    data = compressor.compress(up_filtered(samples)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, _BIT_DEPTHS[array.dtype], _COLOR_TYPES[channels], 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")
