"""OpenEXR frames, the format compositing applications work in: half floats holding scene-linear light, with alpha
premultiplied. A cel leaves inkpaint as sRGB samples with straight alpha; `encode_exr` decodes the sRGB transfer
curve and multiplies the color by the alpha, and `decode_exr` undoes both, so an EXR reads back as the frame it was
within half-float precision (0.4 of an 8-bit level in the mid-tones).

The OpenEXR package (the Academy Software Foundation's bindings to the reference library) reads and writes in memory.
It lives in model/ because decoding any image file (model/files.py) includes it.
"""

from __future__ import annotations

import io

import numpy as np
import OpenEXR

EXR_MAGIC = b"\x76\x2f\x31\x01"


def is_exr(data: bytes) -> bool:
    """Whether file bytes are an OpenEXR image (by its magic number)."""
    return data[:4] == EXR_MAGIC


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in 0-1 -> linear light (IEC 61966-2-1's curve)."""
    return np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(values: np.ndarray) -> np.ndarray:
    """Linear light in 0-1 -> sRGB-encoded values (the inverse of `srgb_to_linear`)."""
    values = np.clip(values, 0.0, 1.0)
    return np.where(values <= 0.0031308, values * 12.92, 1.055 * values ** (1 / 2.4) - 0.055)


def encode_exr(array: np.ndarray) -> bytes:
    """An (H, W, 3) RGB or (H, W, 4) RGBA uint8 or uint16 sRGB array, straight alpha, as the bytes of a ZIP-compressed
    half-float EXR: RGB linear, premultiplied by A."""
    if array.ndim != 3 or array.shape[2] not in (3, 4) or array.dtype not in (np.uint8, np.uint16):
        msg = f"an EXR frame is (H, W, 3) or (H, W, 4) uint8 or uint16, not {array.dtype} {array.shape}"
        raise ValueError(msg)
    values = array.astype(np.float32) / np.iinfo(array.dtype).max
    linear = srgb_to_linear(values[..., :3])
    if array.shape[2] == 4:
        linear = np.dstack([linear * values[..., 3:], values[..., 3]])
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    channels = {"RGBA" if array.shape[2] == 4 else "RGB": linear.astype(np.float16)}
    stream = io.BytesIO()
    with OpenEXR.File(header, channels) as exr:
        exr.write(stream)
    return stream.getvalue()


def exr_size(data: bytes) -> tuple[int, int]:
    """(width, height) of an EXR from its header alone; raises ValueError when the header cannot be read."""
    try:
        with OpenEXR.File(io.BytesIO(data), header_only=True) as exr:
            low, high = exr.header()["dataWindow"]
    except RuntimeError as error:
        raise ValueError(str(error)) from error
    return int(high[0] - low[0] + 1), int(high[1] - low[1] + 1)


def decode_exr(data: bytes) -> np.ndarray:
    """The bytes of an EXR -> (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) luma uint16 sRGB, straight alpha: RGB and
    RGBA as separate channels or one, Y for gray. Raises ValueError for a file it cannot read or channels it does
    not hold."""
    try:
        with OpenEXR.File(io.BytesIO(data)) as exr:
            channels = {name: channel.pixels for name, channel in exr.channels().items()}
    except RuntimeError as error:
        raise ValueError(str(error)) from error
    if "RGBA" in channels:
        pixels = channels["RGBA"]
    elif "RGB" in channels:
        pixels = channels["RGB"]
    elif "Y" in channels:
        pixels = channels["Y"]
    else:
        msg = f"holds channels {', '.join(sorted(channels))}; expected RGB, RGBA or Y"
        raise ValueError(msg)
    pixels = np.nan_to_num(pixels.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        alpha = np.clip(pixels[..., 3:], 0.0, 1.0)
        color = np.where(alpha > 0, pixels[..., :3] / np.maximum(alpha, 1e-6), 0.0)
        pixels = np.dstack([linear_to_srgb(color), alpha])
    else:
        pixels = linear_to_srgb(pixels)
    return np.round(pixels * 65535).astype(np.uint16)
