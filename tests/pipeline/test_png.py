"""The PNG encoder: any reader decodes exactly what was written."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline.png import encode_png


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (5, 7, 3), (1, 9, 3), (64, 33, 3)])
def test_round_trip_through_pillow_is_exact(shape):
    array = np.random.default_rng(sum(shape)).integers(0, 256, size=shape, dtype=np.uint8)
    decoded = Image.open(io.BytesIO(encode_png(array)))
    assert decoded.mode == ("L" if len(shape) == 2 else "RGB")
    assert np.array_equal(np.asarray(decoded), array)


@pytest.mark.parametrize(("shape", "dtype"), [((5, 7, 4), np.uint8), ((5, 7), np.uint16)])
def test_rgba_and_sixteen_bit_round_trip_through_pillow_is_exact(shape, dtype):
    array = np.random.default_rng(3).integers(0, np.iinfo(dtype).max + 1, size=shape, dtype=dtype)
    decoded = Image.open(io.BytesIO(encode_png(array)))
    assert decoded.mode == ("RGBA" if len(shape) == 3 else "I;16")
    assert np.array_equal(np.asarray(decoded), array)


@pytest.mark.parametrize("channels", [3, 4])
def test_sixteen_bit_color_round_trips_through_opencv(channels):
    """Pillow reads 16-bit color at 8 bits; OpenCV reads every bit (as BGR)."""
    array = np.random.default_rng(channels).integers(0, 65536, size=(6, 9, channels), dtype=np.uint16)
    decoded = cv2.imdecode(np.frombuffer(encode_png(array), np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.dtype == np.uint16
    assert np.array_equal(decoded[..., [2, 1, 0, 3][:channels]], array)


def test_flat_cel_colors_compress_well():
    frame = np.full((600, 800, 3), (230, 180, 90), np.uint8)
    frame[200:400, 300:500] = (40, 90, 200)
    frame[:, 400] = 0  # a line
    data = encode_png(frame)
    assert len(data) < frame.nbytes / 100
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), frame)


@pytest.mark.parametrize(
    "array", [np.zeros((4, 4), np.int16), np.zeros((4, 4, 2), np.uint8), np.zeros((0, 4, 3), np.uint8)]
)
def test_other_arrays_are_refused(array):
    with pytest.raises(ValueError, match="uint8"):
        encode_png(array)
