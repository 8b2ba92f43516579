"""Bad input through the CLI, one case each: a clear message naming the file or field and the problem; exit code 2
for usage and spec errors, 1 when some frames could not be colored; no partial output (no half-written PNG, no
hidden temporary file); and the other frames still colored and recorded in the frames table.

The bad frames share one shot folder with good ones, so one local Ray run shows them all (`mixed_shot`); the cases
refused before any work need no Ray.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from cli import main
from jobs.manifest import FRAME_TABLE_NAME, read_records
from model.files import DEFAULT_MAX_PIXELS
from pipeline.shot import FrameRecord
from tests.reliability.cli_runs import KEY, SAMPLE, color_shot, copy_sample_frames


def assert_no_partial_output(folder: Path) -> None:
    """No hidden (temporary) file anywhere under the output, and every PNG there decodes to its end."""
    for path in folder.rglob("*"):
        assert not path.name.startswith("."), f"temporary file left behind: {path}"
        if path.suffix == ".png":
            with Image.open(path) as image:
                image.load()


def frame_rows(output: Path) -> dict[str, FrameRecord]:
    """The shot's frames table, as stored, by input file name; empty when the table was not written."""
    table = output / FRAME_TABLE_NAME
    if not table.exists():
        return {}
    return {row.frame.rsplit("/", 1)[-1]: row for row in read_records(str(table), FrameRecord)}


def assert_recorded_as_written(row: FrameRecord, output: Path) -> Path:
    """A frame the table records as written: its PNG is there, with the recorded size and checksum."""
    assert row.status == "written", row.reason
    png = output / row.output  # stored relative to the shot's folder
    assert png.parent == output and png.suffix == ".png"
    data = png.read_bytes()
    assert (row.bytes, row.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    return png


def sample_lines(index: int) -> Image.Image:
    with Image.open(SAMPLE / "frames" / f"frame{index}.png") as image:
        return image.convert("L")


def painted_fraction(png: Path, lines: np.ndarray) -> float:
    """The share of the line art's paper that came out in a clear color."""
    colored = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return float((colored[lines > 250].std(axis=1) > 20).mean())


def write_blank_png(path: Path, side: int) -> None:
    """A white 1-bit PNG of side x side pixels, written by hand: about 50 KB on disk however many pixels it has."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\0" + b"\xff" * ((side + 7) // 8)  # filter type 0, then the row's bits
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit grayscale
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * side, 9))
    path.write_bytes(data + chunk(b"IEND", b""))


@contextlib.contextmanager
def warnings_logged() -> Iterator[list[str]]:
    """The messages of warnings logged in this process (the CLI's driver) while the block runs."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collect(logging.WARNING)
    logging.getLogger().addHandler(handler)
    try:
        yield lines
    finally:
        logging.getLogger().removeHandler(handler)


# --- one shot folder of good and bad frames ------------------------------------------------------------------------

HUGE = 16000
# A frame that cannot be colored: the words its reason must hold, besides its own name.
BAD_FRAMES = {
    "empty.png": ["is an empty file"],
    "truncated.png": ["truncated"],
    "animated.png": ["holds 2 images", "animated"],
    "animated-gif.png": ["holds 2 images", "GIF"],
    "huge.png": ["too large", "pixels", "limit"],
}
# Frames in another format, mode or size than the shot's PNGs, all to be colored; the sample frame drawn in each.
ODD_FRAMES = {
    "jpeg.png": 5,  # a JPEG under a .png name: the content decides the format
    "deep16.png": 5,
    "palette.png": 5,
    "cmyk-tiff.tif": 5,
    "cmyk-jpeg.jpg": 5,
    "la.png": 5,  # black ink on transparent paper
    "rgba.png": 5,  # black ink on transparent paper
    "other-size.png": 6,  # portrait 300x400 among 400x300 frames
    "frame with space.png": 4,
    "tiny.png": 0,  # 1x1
}
ODD_MODES = {"jpeg.png": "L", "deep16.png": "I;16", "palette.png": "P", "cmyk-tiff.tif": "CMYK",
             "cmyk-jpeg.jpg": "CMYK", "la.png": "LA", "rgba.png": "RGBA"}  # fmt: skip
GOOD_FRAMES = [f"frame{index}.png" for index in range(1, 13)]
IGNORED = ["._frame1.png", "Thumbs.db", ".DS_Store"]  # hidden files and thumbnail caches among the frames


def make_bad_frames(folder: Path) -> None:
    (folder / "empty.png").write_bytes(b"")
    data = (SAMPLE / "frames" / "frame3.png").read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    lines = sample_lines(7)
    lines.save(folder / "animated.png", format="PNG", save_all=True, append_images=[lines.rotate(5)])
    lines.save(folder / "animated-gif.png", format="GIF", save_all=True, append_images=[lines.rotate(5)])
    lines.save(folder / "animated.gif", save_all=True, append_images=[lines.rotate(5)])  # .gif: not a frame name
    write_blank_png(folder / "huge.png", HUGE)
    data = (folder / "huge.png").read_bytes()
    assert struct.unpack(">II", data[16:24]) == (HUGE, HUGE) and len(data) < 200_000  # IHDR's width and height


def make_odd_frames(folder: Path) -> dict[str, np.ndarray]:
    """Write ODD_FRAMES; returns the line art each should show, as (H, W) luma."""
    lines = sample_lines(5)
    gray = np.asarray(lines)
    transparent_ink = Image.fromarray(255 - gray)  # alpha: opaque ink, transparent paper
    lines.save(folder / "jpeg.png", format="JPEG", quality=95)
    Image.fromarray(gray.astype(np.uint16) * 257).save(folder / "deep16.png")
    lines.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(folder / "palette.png")
    lines.convert("CMYK").save(folder / "cmyk-tiff.tif")
    lines.convert("CMYK").save(folder / "cmyk-jpeg.jpg", quality=95)
    Image.merge("LA", (Image.new("L", lines.size, 0), transparent_ink)).save(folder / "la.png")
    Image.merge("RGBA", (*Image.new("RGB", lines.size, 0).split(), transparent_ink)).save(folder / "rgba.png")
    other = sample_lines(6).resize((300, 400))
    other.save(folder / "other-size.png")
    shutil.copy(SAMPLE / "frames" / "frame4.png", folder / "frame with space.png")
    Image.new("L", (1, 1), 0).save(folder / "tiny.png")
    for name, mode in ODD_MODES.items():
        with Image.open(folder / name) as image:
            assert image.mode == mode, name
    expected = {name: gray for name, index in ODD_FRAMES.items() if index == 5}
    expected["other-size.png"] = np.asarray(other)
    expected["frame with space.png"] = np.asarray(sample_lines(4))
    expected["tiny.png"] = np.zeros((1, 1), np.uint8)
    return expected


def make_junk(folder: Path) -> None:
    shutil.copy(SAMPLE / "frames" / "frame2.png", folder / "._frame1.png")  # an AppleDouble fork with a PNG's name
    (folder / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + bytes(60))
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1" + bytes(24))


@dataclass
class ShotRun:
    result: Result
    frames: Path
    output: Path
    rows: dict[str, FrameRecord]  # the frames table by input file name
    warnings: list[str]  # warnings logged by the CLI's process
    lines: dict[str, np.ndarray]  # the line art each odd frame shows


@pytest.fixture(scope="module")
def mixed_shot(tmp_path_factory: pytest.TempPathFactory) -> ShotRun:
    root = tmp_path_factory.mktemp("mixed")
    frames = copy_sample_frames(root / "frames", range(1, 13))
    make_bad_frames(frames)
    lines = make_odd_frames(frames)
    make_junk(frames)
    output = root / "out"
    with warnings_logged() as warnings:
        result = color_shot(frames, output)
    return ShotRun(result, frames, output, frame_rows(output), warnings, lines)


@pytest.mark.slow
def test_a_shot_with_bad_frames_exits_1_colors_the_rest_and_leaves_no_partial_file(mixed_shot):
    result, output = mixed_shot.result, mixed_shot.output
    assert result.exit_code == 1, result.output
    colored = len(GOOD_FRAMES) + len(ODD_FRAMES)
    assert f"{colored} frames colored, 0 already done, {len(BAD_FRAMES)} failed, of {colored + len(BAD_FRAMES)}" in (
        result.output
    )
    assert set(mixed_shot.rows) == {*GOOD_FRAMES, *ODD_FRAMES, *BAD_FRAMES}
    expected_pngs = {Path(name).stem + ".png" for name in [*GOOD_FRAMES, *ODD_FRAMES]}
    assert {path.name for path in output.glob("*.png")} == expected_pngs
    assert_no_partial_output(output)


@pytest.mark.slow
def test_the_good_frames_among_bad_ones_are_colored_and_recorded(mixed_shot):
    for name in GOOD_FRAMES:
        png = assert_recorded_as_written(mixed_shot.rows[name], mixed_shot.output)
        assert png.name == name
    lines = np.asarray(sample_lines(1))
    assert painted_fraction(mixed_shot.output / "frame1.png", lines) > 0.02


@pytest.mark.slow
@pytest.mark.parametrize("name", BAD_FRAMES)
def test_a_bad_frame_fails_alone_with_its_name_and_reason(mixed_shot, name):
    row = mixed_shot.rows[name]
    assert row.status == "failed" and row.output == ""
    for needle in [name, *BAD_FRAMES[name]]:
        assert needle in row.reason
    assert f"failed: {mixed_shot.frames / name}: " in mixed_shot.result.output
    assert not (mixed_shot.output / name).exists()


@pytest.mark.slow
def test_a_huge_frame_is_refused_by_inkpaints_own_stated_limit(mixed_shot):
    reason = mixed_shot.rows["huge.png"].reason
    assert f"{HUGE}x{HUGE}" in reason and f"over the limit of {DEFAULT_MAX_PIXELS}" in reason


@pytest.mark.slow
@pytest.mark.parametrize("name", ODD_FRAMES)
def test_a_frame_in_another_format_mode_or_size_is_colored(mixed_shot, name):
    png = assert_recorded_as_written(mixed_shot.rows[name], mixed_shot.output)
    assert png.name == Path(name).stem + ".png"
    colored = np.asarray(Image.open(png).convert("RGB")).astype(int)
    lines = mixed_shot.lines[name]
    assert colored.shape[:2] == lines.shape  # its own size, whatever its neighbours' are
    if lines.size > 1:
        assert colored[lines < 60].max(axis=1).mean() < 80, "the artist's lines must stay dark"
        assert colored[lines > 250].mean() > 200, "the paper must stay light (transparency is paper, not ink)"


@pytest.mark.slow
def test_hidden_files_and_thumbnails_among_the_frames_are_ignored(mixed_shot):
    for name in IGNORED:
        assert name not in mixed_shot.rows
        assert name not in mixed_shot.result.output
        assert not any(name in line for line in mixed_shot.warnings)
    assert not (mixed_shot.output / "Thumbs.png").exists()


@pytest.mark.slow
def test_an_animated_gif_among_the_frames_is_skipped_with_a_warning_naming_it(mixed_shot):
    # .gif is not a frame extension (model/files.py IMAGE_EXTENSIONS): the file is left out, and said so.
    assert "animated.gif" not in mixed_shot.rows
    assert not (mixed_shot.output / "animated.png").exists()
    assert any("animated.gif" in line and "skipping" in line for line in mixed_shot.warnings), mixed_shot.warnings


# --- other shots ---------------------------------------------------------------------------------------------------


def test_a_folder_with_no_images_only_hidden_files_is_a_usage_error(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    make_junk(frames)
    (frames / "notes.txt").write_text("colors: see key")
    result = color_shot(frames, tmp_path / "out")
    assert result.exit_code == 2
    assert f"frame folder '{frames}' holds no image files" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_file_name_that_is_not_utf8_is_colored_or_refused_alone(tmp_path):
    frames = copy_sample_frames(tmp_path / "frames", (1, 2, 3))
    shutil.copy(SAMPLE / "frames" / "frame4.png", os.fsencode(frames) + b"/frame\xff4.png")
    output = tmp_path / "out"
    result = color_shot(frames, output)
    assert result.exit_code in (0, 1), result.output
    rows = frame_rows(output)
    for name in ("frame1.png", "frame2.png", "frame3.png"):
        assert_recorded_as_written(rows.pop(name), output)
    [odd] = rows.values()
    if result.exit_code == 0:
        assert odd.status == "written"
        assert len(list(output.glob("*.png"))) == 4
        # The table holds the name's odd byte written out; verify finds the very file by it.
        checked = CliRunner().invoke(main, ["verify", str(output)], catch_exceptions=False)
        assert checked.exit_code == 0, checked.output
        assert "4 of 4 frames" in checked.output
    else:
        assert odd.status == "failed" and "4.png" in odd.reason and "4.png" in result.output
    assert_no_partial_output(output)


def test_two_frames_with_the_same_output_name_are_not_silently_merged(tmp_path):
    frames = copy_sample_frames(tmp_path / "frames", (1,))
    sample_lines(2).save(frames / "clash.tif")
    sample_lines(3).save(frames / "clash.jpg", quality=95)
    result = color_shot(frames, tmp_path / "out")
    assert result.exit_code in (1, 2), result.output
    assert "clash.tif" in result.output and "clash.jpg" in result.output


@pytest.mark.slow
def test_the_pixel_limit_is_an_option(tmp_path):
    frames = copy_sample_frames(tmp_path / "frames", (1,))  # 400x300 = 120000 pixels
    sample_lines(2).resize((200, 150)).save(frames / "small.png")
    output = tmp_path / "out"
    result = color_shot(frames, output, "--max-pixels", "100000")  # the 400x300 keyframe too: refused first
    assert result.exit_code == 2, result.output
    assert "key.png" in result.output and "over the limit of 100000" in result.output
    small_key = tmp_path / "small-key.png"
    with Image.open(KEY) as key:
        key.resize((200, 150)).save(small_key)
    result = color_shot(frames, output, "--max-pixels", "100000", reference=small_key)
    assert result.exit_code == 1, result.output
    assert "frame1.png" in result.output and "over the limit of 100000" in result.output
    assert_recorded_as_written(frame_rows(output)["small.png"], output)


# --- references ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_reference_that_is_line_art_is_warned_about(tmp_path, caplog):
    frames = copy_sample_frames(tmp_path / "frames", (1, 2))
    reference = tmp_path / "lines-as-key.png"
    shutil.copy(SAMPLE / "frames" / "frame1.png", reference)
    result = color_shot(frames, tmp_path / "out", reference=reference)
    assert result.exit_code == 0, result.output
    said = (result.output + "\n" + caplog.text).splitlines()
    pattern = re.compile(r"line.?art|no colou?rs?|not colou?red|uncolou?red|gr[ae]y", re.IGNORECASE)
    assert any("lines-as-key.png" in line and pattern.search(line) for line in said), "\n".join(said)


@pytest.mark.slow
def test_a_reference_much_larger_than_the_frames_colors_them(tmp_path):
    frames = copy_sample_frames(tmp_path / "frames", (1, 2))
    reference = tmp_path / "big-key.png"
    with Image.open(KEY) as key:
        key.resize((1600, 1200)).save(reference)  # 16 times the frames' pixels
    output = tmp_path / "out"
    result = color_shot(frames, output, reference=reference)
    assert result.exit_code == 0, result.output
    rows = frame_rows(output)
    for index in (1, 2):
        png = assert_recorded_as_written(rows[f"frame{index}.png"], output)
        assert Image.open(png).size == (400, 300)
        assert painted_fraction(png, np.asarray(sample_lines(index))) > 0.02
    assert_no_partial_output(output)


@pytest.mark.slow
def test_a_reference_much_smaller_than_the_frames_colors_them_or_is_warned_about(tmp_path, caplog):
    frames = copy_sample_frames(tmp_path / "frames", (1, 2))
    reference = tmp_path / "thumb-key.png"
    with Image.open(KEY) as key:
        key.resize((40, 30)).save(reference)
    output = tmp_path / "out"
    result = color_shot(frames, output, reference=reference)
    assert result.exit_code == 0, result.output
    warned = any("thumb-key.png" in line for line in (result.output + "\n" + caplog.text).splitlines())
    painted = min(painted_fraction(output / f"frame{i}.png", np.asarray(sample_lines(i))) for i in (1, 2))
    assert warned or painted > 0.02, f"no warning and {painted:.4f} of the paper painted"
