from __future__ import annotations

import io
import os
import struct
import threading
import time
import uuid
import zlib
from pathlib import Path

import cv2
import fsspec
import numpy as np
import pytest
from PIL import Image, ImageOps

from model.data import load_folder_pairs
from model.files import FrameError, oriented
from pipeline import frames
from pipeline.frame_names import output_name
from pipeline.frames import FrameReader, list_frames, read_frame
from pipeline.outputs import FrameWriter, write_frame


def save(img: Image.Image, path: Path, **kwargs: object) -> str:
    img.save(path, **kwargs)
    return str(path)


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# --- listing ----------------------------------------------------------------------------------------------------------


def test_list_frames_natural_order_and_junk_ignored(tmp_path: Path) -> None:
    for i in range(1, 13):
        (tmp_path / f"frame{i}.png").write_bytes(b"x")
    (tmp_path / "FRAME13.JPG").write_bytes(b"x")  # extension case does not matter
    (tmp_path / "frame14.tiff").write_bytes(b"x")
    (tmp_path / "frame15.webp").write_bytes(b"x")
    for junk in ("._frame1.png", ".hidden.png", ".DS_Store", "Thumbs.db", "desktop.ini", "notes.txt", "clip.mov"):
        (tmp_path / junk).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()  # a folder with an image-like name is not a frame
    (tmp_path / "sub.png" / "frame0.png").write_bytes(b"x")  # nor is anything below the folder

    urls = list_frames(str(tmp_path))

    names = [u.rsplit("/", 1)[1] for u in urls]
    assert names == [f"frame{i}.png" for i in range(1, 13)] + ["FRAME13.JPG", "frame14.tiff", "frame15.webp"]
    assert all(os.path.isabs(u) and os.path.exists(u) for u in urls)


def test_list_frames_relative_path_gives_absolute_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "shot").mkdir()
    (tmp_path / "shot" / "a1.png").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert list_frames("shot/") == [str(tmp_path / "shot" / "a1.png")]


@pytest.mark.parametrize("case", ["missing", "empty", "only_junk", "is_file"])
def test_list_frames_refuses_unusable_folders(tmp_path: Path, case: str) -> None:
    folder = tmp_path / "shot"
    if case == "empty":
        folder.mkdir()
    elif case == "only_junk":
        folder.mkdir()
        (folder / "._a.png").write_bytes(b"x")
        (folder / "readme.txt").write_bytes(b"x")
    elif case == "is_file":
        folder.write_bytes(b"x")
    with pytest.raises(FrameError, match=str(folder)):
        list_frames(str(folder))


# --- reading: every mode to RGB ---------------------------------------------------------------------------------------


def test_mode_l(tmp_path: Path) -> None:
    img = Image.fromarray(np.array([[0, 37], [128, 255]], np.uint8), "L")
    out = read_frame(save(img, tmp_path / "l.png"))
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert out[:, :, 0].tolist() == [[0, 37], [128, 255]]
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_mode_la_composites_over_white(tmp_path: Path) -> None:
    la = np.array([[[100, 0], [100, 255]], [[0, 128], [0, 0]]], np.uint8)  # (value, alpha)
    out = read_frame(save(Image.fromarray(la, "LA"), tmp_path / "la.png"))
    assert out[0, 0].tolist() == [255, 255, 255]  # fully transparent -> paper
    assert out[0, 1].tolist() == [100, 100, 100]  # opaque -> its own value
    assert abs(int(out[1, 0, 0]) - 127) <= 1  # half-transparent black -> mid gray
    assert out[1, 1].tolist() == [255, 255, 255]


def test_mode_rgb_exact(tmp_path: Path) -> None:
    rgb = noise(5, 7)
    assert np.array_equal(read_frame(save(Image.fromarray(rgb, "RGB"), tmp_path / "rgb.png")), rgb)


def test_mode_rgba_transparent_pixel_is_white(tmp_path: Path) -> None:
    rgba = np.array([[[255, 0, 0, 0], [255, 0, 0, 255], [0, 0, 255, 128]]], np.uint8)
    out = read_frame(save(Image.fromarray(rgba, "RGBA"), tmp_path / "rgba.png"))
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [255, 0, 0]
    assert np.abs(out[0, 2].astype(int) - [127, 127, 255]).max() <= 1


def test_mode_rgba_webp_lossless(tmp_path: Path) -> None:
    rgba = np.array([[[10, 20, 30, 0], [10, 20, 30, 255]]], np.uint8)
    out = read_frame(save(Image.fromarray(rgba, "RGBA"), tmp_path / "f.webp", lossless=True, exact=True))
    assert out.tolist() == [[[255, 255, 255], [10, 20, 30]]]


def _palette_image() -> Image.Image:
    img = Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8), "P")
    img.putpalette([10, 20, 30, 200, 100, 50, 0, 0, 0] + [0, 0, 0] * 253)
    return img


def test_mode_p_palette_decoded(tmp_path: Path) -> None:
    out = read_frame(save(_palette_image(), tmp_path / "p.png"))
    assert out.tolist() == [[[10, 20, 30], [200, 100, 50]], [[0, 0, 0], [200, 100, 50]]]


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_mode_p_with_transparency(tmp_path: Path, suffix: str) -> None:
    path = save(_palette_image(), tmp_path / f"p{suffix}", transparency=1)
    assert Image.open(path).mode == "P"
    out = read_frame(path)
    assert out.tolist() == [[[10, 20, 30], [255, 255, 255]], [[0, 0, 0], [255, 255, 255]]]


def test_mode_rgb_with_transparent_color(tmp_path: Path) -> None:
    rgb = np.array([[[1, 2, 3], [9, 9, 9]]], np.uint8)
    out = read_frame(save(Image.fromarray(rgb, "RGB"), tmp_path / "trns.png", transparency=(9, 9, 9)))
    assert out.tolist() == [[[1, 2, 3], [255, 255, 255]]]


def test_mode_i16_scaled_to_8_bit(tmp_path: Path) -> None:
    values = np.array([[0, 257, 32896, 65535]], np.uint16)  # exactly 0, 1, 128, 255 in 8 bits
    path = save(Image.fromarray(values), tmp_path / "i16.png")
    assert Image.open(path).mode == "I;16"
    out = read_frame(path)
    assert out[0, :, 0].tolist() == [0, 1, 128, 255]


def test_sixteen_bit_art_reads_the_same_for_training_and_coloring(tmp_path: Path) -> None:
    # Dark art (no sample above 255) and bright art: the scale must not depend on the brightest pixel.
    colors, lines = tmp_path / "colors", tmp_path / "lines"
    colors.mkdir(), lines.mkdir()
    ramp = np.arange(64, dtype=np.uint16).reshape(8, 8)
    for name, values in (("dark.png", ramp * 4), ("bright.png", ramp * 1040)):
        Image.fromarray(values).save(colors / name)
        Image.fromarray(65535 - values).save(lines / name)
    pairs = load_folder_pairs(str(colors), str(lines), size=8)  # 8 x 8: no resize, no padding
    assert pairs.names == ["bright.png", "dark.png"]
    for index, name in enumerate(pairs.names):
        assert np.array_equal(pairs.color[index], read_frame(str(colors / name)))
        assert np.array_equal(pairs.line[index], read_frame(str(lines / name), gray=True))
    assert pairs.color[1].max() == 1  # 252 of 65535 is 1 in 8 bits, not 252 (taken for 8-bit art) nor 255


def sixteen_bit_color_file(rgb: np.ndarray, extension: str, orientation: int = 1) -> bytes:
    """A 16-bit RGB(A) PNG or TIFF as OpenCV writes it; a PNG gets an EXIF orientation chunk when asked."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGRA if rgb.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    data = cv2.imencode(extension, bgr)[1].tobytes()
    if orientation == 1:
        return data
    exif = Image.Exif()
    exif[0x0112] = orientation
    payload = exif.tobytes()[len(b"Exif\0\0") :]  # PNG's eXIf chunk holds the TIFF structure alone
    chunk = struct.pack(">I", len(payload)) + b"eXIf" + payload + struct.pack(">I", zlib.crc32(b"eXIf" + payload))
    return data[:33] + chunk + data[33:]  # after the signature and IHDR


@pytest.mark.parametrize("extension", [".png", ".tif"])
def test_sixteen_bit_color_reads_at_full_depth_or_by_the_one_eight_bit_rule(tmp_path: Path, extension: str) -> None:
    rgb = np.random.default_rng(1).integers(0, 65536, (6, 5, 3), dtype=np.uint16)
    path = tmp_path / f"deep{extension}"
    path.write_bytes(sixteen_bit_color_file(rgb, extension))
    assert np.array_equal(read_frame(str(path), as_drawn=True), rgb)
    # value/257 rounded, as 16-bit gray reads: Pillow alone would keep each sample's high byte
    assert np.array_equal(read_frame(str(path)), ((rgb.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8))
    assert read_frame(str(path), gray=True, as_drawn=True).dtype == np.uint16


def test_sixteen_bit_color_gets_its_exif_orientation(tmp_path: Path) -> None:
    rgb = np.random.default_rng(2).integers(0, 65536, (4, 6, 3), dtype=np.uint16)
    path = tmp_path / "sideways.png"
    path.write_bytes(sixteen_bit_color_file(rgb, ".png", orientation=6))
    assert np.array_equal(read_frame(str(path), as_drawn=True), np.rot90(rgb, -1))  # turned clockwise, as shown


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientations_turn_arrays_as_pillow_turns_images(tmp_path: Path, orientation: int) -> None:
    pixels = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(tmp_path / "o.png", exif=exif)
    assert np.array_equal(
        oriented(pixels, orientation), np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "o.png")))
    )


def test_transparent_paper_is_kept_as_drawn_and_opaque_alpha_is_dropped(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 0
    transparent = save(Image.fromarray(rgba, "RGBA"), tmp_path / "paper.png")
    assert np.array_equal(read_frame(transparent, as_drawn=True), rgba)
    assert read_frame(transparent)[0, 0].tolist() == [255, 255, 255]  # over white without as_drawn
    gray_alpha = save(Image.fromarray(rgba[..., 2:], "LA"), tmp_path / "la.png")
    assert read_frame(gray_alpha, gray="auto", as_drawn=True).shape == (4, 4, 2)
    rgba[0, 0, 3] = 255
    opaque = save(Image.fromarray(rgba, "RGBA"), tmp_path / "opaque.png")
    assert read_frame(opaque, as_drawn=True).shape == (4, 4, 3)


def test_mode_i32_tiff_taken_as_16_bit(tmp_path: Path) -> None:
    values = np.array([[0, 32896, 65535, 70000]], np.int32)  # above 16 bits clips to white
    path = save(Image.fromarray(values, "I"), tmp_path / "i32.tif")
    assert Image.open(path).mode == "I"
    assert read_frame(path)[0, :, 1].tolist() == [0, 128, 255, 255]


def test_mode_cmyk(tmp_path: Path) -> None:
    cmyk = np.array([[[0, 0, 0, 0], [0, 255, 255, 0], [0, 0, 0, 255]]], np.uint8)
    path = save(Image.fromarray(cmyk, "CMYK"), tmp_path / "cmyk.tif")
    assert read_frame(path).tolist() == [[[255, 255, 255], [255, 0, 0], [0, 0, 0]]]


def test_mode_1_bit(tmp_path: Path) -> None:
    img = Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8), "L").convert("1")
    path = save(img, tmp_path / "bits.png")
    assert Image.open(path).mode == "1"
    assert read_frame(path)[:, :, 2].tolist() == [[0, 255], [255, 0]]


def test_exif_orientation_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 20), (200, 50, 50))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways; viewers rotate 90 degrees clockwise
    out = read_frame(save(img, tmp_path / "rot.jpg", exif=exif))
    assert out.shape == (40, 20, 3)


def test_jpeg_named_png_reads(tmp_path: Path) -> None:
    path = tmp_path / "liar.png"
    Image.new("RGB", (16, 8), (30, 120, 200)).save(path, format="JPEG", quality=95)
    out = read_frame(str(path))
    assert out.shape == (8, 16, 3)
    assert np.abs(out.astype(int) - [30, 120, 200]).max() <= 3


def test_line_art_reads_as_gray(tmp_path: Path) -> None:
    img = Image.fromarray(np.array([[0, 255], [128, 255]], np.uint8), "L")
    art = read_frame(save(img, tmp_path / "art.png"), gray=True)
    assert art.dtype == np.uint8 and art.tolist() == [[0, 255], [128, 255]]
    red = read_frame(save(Image.new("RGB", (2, 1), (255, 0, 0)), tmp_path / "red.png"), gray=True)
    assert red.tolist() == [[76, 76]]  # Rec. 601: 0.299 * 255
    ink = np.zeros((1, 2, 4), np.uint8)
    ink[0, 1, 3] = 255  # a transparent pixel, then an opaque black one
    transparent = read_frame(save(Image.fromarray(ink, "RGBA"), tmp_path / "ink.png"), gray=True)
    assert transparent.tolist() == [[255, 0]]  # transparency is paper white
    wide = Image.fromarray(np.array([[0, 65535]], np.uint16))
    assert read_frame(save(wide, tmp_path / "wide.png"), gray=True).tolist() == [[0, 255]]


@pytest.mark.parametrize(
    ("mode", "colored"), [("L", False), ("LA", False), ("1", False), ("I;16", False), ("RGB", True), ("P", True)]
)
def test_auto_reads_files_without_color_as_gray_and_the_others_as_rgb(tmp_path: Path, mode: str, colored: bool) -> None:
    pixels = noise(6, 5)
    image = Image.fromarray(pixels, "RGB")
    if mode == "I;16":
        image = Image.fromarray(pixels[..., 0].astype(np.uint16) * 257)
    elif mode != "RGB":
        image = image.convert(mode)
    url = save(image, tmp_path / f"frame-{mode.replace(';', '')}.png")
    auto = read_frame(url, gray="auto")
    assert auto.ndim == (3 if colored else 2)
    assert np.array_equal(auto, read_frame(url, gray=not colored))


# --- reading: refusals ------------------------------------------------------------------------------------------------


def test_empty_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(FrameError, match=r"empty\.png.*empty file"):
        read_frame(str(path))


def test_missing_file_refused(tmp_path: Path) -> None:
    with pytest.raises(FrameError, match=r"nope\.png.*does not exist"):
        read_frame(str(tmp_path / "nope.png"))


def test_not_an_image_refused(tmp_path: Path) -> None:
    path = tmp_path / "text.png"
    path.write_bytes(b"this is not a picture")
    with pytest.raises(FrameError, match=r"text\.png.*not an image"):
        read_frame(str(path))


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_png_refused(tmp_path: Path, keep: float) -> None:
    buf = io.BytesIO()
    Image.fromarray(noise(64, 64)).save(buf, format="PNG")  # noise does not compress: IDAT fills the file
    data = buf.getvalue()
    path = tmp_path / "cut.png"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(FrameError, match=r"cut\.png"):
        read_frame(str(path))


def test_animated_gif_refused(tmp_path: Path) -> None:
    first, second = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")
    path = save(first, tmp_path / "anim.gif", save_all=True, append_images=[second])
    with pytest.raises(FrameError, match=r"anim\.gif.*2 images"):
        read_frame(path)


def test_animated_png_refused(tmp_path: Path) -> None:
    first, second = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")
    path = save(first, tmp_path / "anim.png", save_all=True, append_images=[second])
    with pytest.raises(FrameError, match=r"anim\.png.*2 images"):
        read_frame(path)


def test_pixel_limit(tmp_path: Path) -> None:
    path = save(Image.new("RGB", (20, 10), "white"), tmp_path / "big.png")
    with pytest.raises(FrameError, match=r"big\.png.* 20x10 = 200 pixels, over the limit of 199"):
        read_frame(path, max_pixels=199)
    assert read_frame(path, max_pixels=200).shape == (10, 20, 3)


def test_our_pixel_limit_decides_not_pillows_bomb_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(Image.new("RGB", (20, 10), "white"), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # Pillow raises above twice this
    with pytest.raises(FrameError, match=r"bomb\.png' is too large: 20x10 = 200 pixels, over the limit of 199"):
        read_frame(path, max_pixels=199)
    assert read_frame(path, max_pixels=10**9).shape == (10, 20, 3)  # a frame the user allows is read
    assert Image.MAX_IMAGE_PIXELS == 50  # Pillow's own setting is left as it was


# --- reader -----------------------------------------------------------------------------------------------------------


def _shot(folder: Path, count: int, bad: set[int] = frozenset()) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    urls = []
    for i in range(count):
        path = folder / f"f{i}.png"
        if i in bad:
            path.write_bytes(b"\x89PNG\r\n\x1a\n broken")
        else:
            Image.new("L", (4, 3), i * 10).save(path)
        urls.append(str(path))
    return urls


def test_frame_reader_in_order_with_errors(tmp_path: Path) -> None:
    urls = _shot(tmp_path, 10, bad={3, 7})
    results = list(FrameReader(urls, prefetch=3, workers=2))
    assert [r.index for r in results] == list(range(10))
    assert [r.url for r in results] == urls
    for r in results:
        if r.index in (3, 7):
            assert r.array is None and isinstance(r.error, FrameError) and r.url in str(r.error)
        else:
            assert r.error is None and r.array.shape == (3, 4, 3) and (r.array == r.index * 10).all()


def test_frame_reader_bounded_look_ahead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    urls = _shot(tmp_path, 12)
    started: list[int] = []
    lock = threading.Lock()

    def read(url: str, *args: object, **kwargs: object) -> np.ndarray:
        with lock:
            started.append(int(Path(url).stem[1:]))
        return read_frame(url, *args, **kwargs)

    monkeypatch.setattr(frames, "read_frame", read)
    prefetch = 2
    for consumed, result in enumerate(FrameReader(urls, prefetch=prefetch)):
        time.sleep(0.01)  # a slow consumer: readers would race ahead if nothing bounded them
        with lock:
            assert len(started) <= consumed + 1 + prefetch
        assert result.error is None
    assert sorted(started) == list(range(12))


def test_frame_reader_stops_early_without_hanging(tmp_path: Path) -> None:
    urls = _shot(tmp_path, 20)
    reader = FrameReader(urls, prefetch=4)
    for result in reader:
        if result.index == 2:
            break
    assert len(reader) == 20


# --- S3 (moto) --------------------------------------------------------------------------------------------------------


def test_s3_round_trip(s3_server: dict) -> None:
    options = s3_server["storage_options"]
    root = f"s3://{s3_server['bucket']}/{uuid.uuid4().hex}"
    shot, out = f"{root}/shot", f"{root}/out"
    arrays = {i: noise(6, 5, seed=i) for i in (1, 2, 10, 11)}
    for i, array in arrays.items():
        write_frame(array, f"{shot}/frame{i}.png", options)
    fs = fsspec.filesystem("s3", **options)
    fs.pipe_file(f"{shot}/._frame1.png", b"junk")
    fs.pipe_file(f"{shot}/notes.txt", b"junk")

    urls = list_frames(shot, options)
    assert urls == [f"{shot}/frame{i}.png" for i in (1, 2, 10, 11)]
    for url, i in zip(urls, arrays, strict=True):
        assert np.array_equal(read_frame(url, options), arrays[i])
    results = list(FrameReader(urls, options))
    assert [r.error for r in results] == [None] * 4

    with FrameWriter(options) as writer:
        for r in results:
            writer.submit(r.array, f"{out}/{output_name(r.url)}")
    assert all(err is None for _, err in writer.results)
    assert list_frames(out, options) == [f"{out}/frame{i}.png" for i in (1, 2, 10, 11)]
    assert not [p for p in fs.find(root) if ".tmp-" in p]

    with pytest.raises(FrameError, match="does not exist"):
        list_frames(f"{shot}-missing", options)
    with pytest.raises(FrameError, match="does not exist"):
        read_frame(f"{shot}/frame3.png", options)
