"""Cels: transparent paper, the lines and paint layers, 16-bit frames and TIFF, written as files and read back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import OpenEXR
import pytest
import tifffile
from PIL import Image

from pipeline.cel import Cel, CelFormat, cel_images, paper_mask
from pipeline.colorize import ShotColorizer
from pipeline.composite import multiply_lines
from pipeline.frames import read_frame
from pipeline.lineart import LineArt, prepare_line_art
from pipeline.outputs import WrittenFile, encode_frame
from pipeline.shot import Shot, ShotOptions

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "wave"
FRAMES = sorted((SAMPLE / "frames").glob("*.png"))[:3]
SKIN = (200, 150, 100)


def ring_cel() -> Cel:
    """A black ring on white paper, its inside painted SKIN but for a white spot the ring encloses; the ring's outer
    and inner edges anti-aliased (128)."""
    lines = np.full((40, 40), 255, np.uint8)
    cv2.circle(lines, (20, 20), 12, 0, 3)
    yy, xx = np.mgrid[:40, :40]
    radius = np.hypot(yy - 20, xx - 20)
    lines[(np.abs(radius - 12) > 1.5) & (np.abs(radius - 12) < 2.5) & (lines == 255)] = 128
    paint = np.full((40, 40, 3), 255, np.uint8)
    paint[radius < 12] = SKIN
    paint[radius < 3] = 255  # the white of an eye: paint, not paper
    art = LineArt.plain(lines)
    return Cel(multiply_lines(paint, lines), paint, art)


def alpha_over(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """Straight-alpha RGBA `top` over `bottom`, (H, W, 4) float in 0-1."""
    ta, ba = top[..., 3:], bottom[..., 3:]
    alpha = ta + ba * (1 - ta)
    color = (top[..., :3] * ta + bottom[..., :3] * ba * (1 - ta)) / np.maximum(alpha, 1e-9)
    return np.dstack([color, alpha])


def read_rgba(path: Path) -> np.ndarray:
    """Any PNG or TIFF at its own depth, channels in RGB(A) order."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def test_paper_is_the_white_around_the_drawing_not_the_white_it_encloses() -> None:
    cel = ring_cel()
    paper = paper_mask(cel.paint, cel.art.lines)
    assert paper[0, 0] and paper[20, 35] and not paper[20, 20] and not paper[20, 15]
    outer_edge = (cel.art.lines == 128) & (np.hypot(*(np.mgrid[:40, :40] - 20)) > 12)
    inner_edge = (cel.art.lines == 128) & (np.hypot(*(np.mgrid[:40, :40] - 20)) < 12)
    assert paper[outer_edge].all() and not paper[inner_edge].any()


def test_ghosts_of_the_keyframes_lines_on_the_paper_are_paper_and_a_thick_area_of_paint_is_not() -> None:
    cel = ring_cel()
    paint = cel.paint.copy()
    paint[5, 5:30] = 90  # a one-pixel ghost of a line carried onto the paper
    paint[30:40, 0:12] = SKIN  # an arm reaching the border, its outline open: the paper region's, but painted
    paper = paper_mask(paint, cel.art.lines)
    assert paper[5, 5:30].all() and not paper[32:38, 2:10].any() and paper[0, 0]


def test_transparent_paper_keeps_paint_opaque_and_line_edges_partly_transparent() -> None:
    cel = ring_cel()
    frame = cel_images(cel, CelFormat(paper="transparent"))[""]
    assert frame.shape == (40, 40, 4) and frame.dtype == np.uint8
    assert frame[0, 0, 3] == 0 and frame[20, 20, 3] == 255 and frame[20, 15, 3] == 255
    outer_edge = (cel.art.lines == 128) & (np.hypot(*(np.mgrid[:40, :40] - 20)) > 12)
    assert (frame[outer_edge, 3] == 127).all() and (frame[outer_edge, :3] == 0).all()
    painted = frame[..., 3] == 255
    assert np.array_equal(frame[painted, :3], cel.finished[painted])


def test_white_paper_at_eight_bits_is_the_finished_frame_itself() -> None:
    cel = ring_cel()
    assert cel_images(cel, CelFormat())[""] is cel.finished


@pytest.mark.parametrize("paper", ["transparent", "white"])
def test_layers_recombine_to_the_frame_within_one_level(paper: str) -> None:
    cel = ring_cel()
    images = cel_images(cel, CelFormat(paper=paper, layers=True))
    recombined = alpha_over(images["lines"] / 255.0, images["paint"] / 255.0)
    if paper == "white":
        recombined = alpha_over(recombined, np.ones((40, 40, 4)))
        assert np.abs(recombined[..., :3] * 255 - images[""]).max() <= 1
    else:
        visible = images[""][..., 3] > 0
        assert np.abs(recombined * 255 - images[""])[visible].max() <= 1
        assert (recombined[..., 3][~visible] == 0).all()


def test_sixteen_bit_lines_are_drawn_at_full_depth() -> None:
    deep = np.full((8, 8), 65535, np.uint16)
    deep[:, 3] = 0
    deep[:, 4] = 1000  # an edge that 8 bits would round to 4 (1028)
    art = prepare_line_art(deep, clean=False)
    assert art.deep_lines is not None and art.deep_lines[0, 4] == 1000
    paint = np.full((8, 8, 3), 255, np.uint8)
    cel = Cel(multiply_lines(paint, art.lines), paint, art)
    frame = cel_images(cel, CelFormat())[""]
    assert frame.dtype == np.uint16 and (frame[:, 4] == 1000).all() and (frame[:, 0] == 65535).all()
    assert cel_images(cel, CelFormat(depth="8"))[""] is cel.finished


def test_lines_drawn_on_transparent_paper_keep_their_own_alpha_and_color() -> None:
    """A dark-brown ring drawn on transparent paper, its edges anti-aliased by alpha alone."""
    yy, xx = np.mgrid[:40, :40]
    alpha = np.clip(255 * (2.5 - np.abs(np.hypot(yy - 20, xx - 20) - 12)), 0, 255).astype(np.uint8)
    drawn = np.dstack([np.full((40, 40, 3), (45, 35, 30), np.uint8), alpha])
    art = prepare_line_art(drawn, clean=False)
    assert art.drawn is not None and art.lines[0, 0] == 255 and art.lines[20, 8] < 60  # read over white for coloring
    paint = np.where((np.hypot(yy - 20, xx - 20) < 12)[..., None], SKIN, 255).astype(np.uint8)
    cel = Cel(multiply_lines(paint, art.lines), paint, art)
    images = cel_images(cel, CelFormat(paper="transparent", layers=True))
    frame, paper = images[""], paper_mask(paint, art.lines)
    assert paper[0, 0] and ((alpha[paper] > 0) & (alpha[paper] < 255)).sum() > 20  # anti-aliased edges on the paper
    seen = paper & (alpha > 0)
    assert np.array_equal(frame[seen], drawn[seen]) and (frame[paper, 3] == alpha[paper]).all()  # exactly as drawn
    assert (frame[~paper, 3] == 255).all()
    recombined = alpha_over(images["lines"] / 255.0, images["paint"] / 255.0) * 255
    visible = frame[..., 3] > 0
    assert np.abs(recombined - frame)[visible].max() <= 1
    deep = cel_images(cel, CelFormat(paper="transparent", depth="16"))[""]
    assert np.array_equal(deep[seen], drawn[seen].astype(np.uint16) * 257)


def test_sixteen_bit_color_line_art_keeps_its_depth() -> None:
    rgb = np.full((8, 8, 3), 65535, np.uint16)
    rgb[:, 4] = (1000, 1000, 1000)  # an edge 8 bits would round to 4 (1028)
    art = prepare_line_art(rgb, clean=False)
    assert art.deep_lines is not None and art.deep_lines[0, 4] == 1000 and art.lines[0, 4] == 4
    paint = np.full((8, 8, 3), 255, np.uint8)
    frame = cel_images(Cel(multiply_lines(paint, art.lines), paint, art), CelFormat())[""]
    assert frame.dtype == np.uint16 and (frame[:, 4] == 1000).all()


# --- a shot written as files and read back ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def colorizer() -> ShotColorizer:
    return ShotColorizer.from_weights()


def transparent_line_art(folder: Path, names: list[str]) -> None:
    """The sample's first frames drawn on transparent paper: black lines, alpha their darkness."""
    folder.mkdir()
    for source, name in zip(FRAMES, names, strict=True):
        gray = np.asarray(Image.open(source).convert("L"))
        rgba = np.dstack([np.zeros_like(gray)] * 3 + [255 - gray])
        Image.fromarray(rgba, "RGBA").save(folder / name)


def test_a_shot_on_transparent_paper_writes_its_layers_and_keeps_the_frame_names(colorizer, tmp_path) -> None:
    names = ["sh010_0101.png", "sh010_0102.png", "sh010_0103.png"]
    transparent_line_art(tmp_path / "lines", names)
    shot = Shot("sh010", str(tmp_path / "lines"), str(SAMPLE / "key.png"), str(tmp_path / "out"),
                video=str(tmp_path / "out" / "sh010.mp4"))  # fmt: skip
    result = colorizer.run(shot, ShotOptions(paper="transparent", layers=True, resolution=128))
    assert result.written == 3, result.summary()
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("*.png")) == names
    assert (
        sorted(p.name for p in (out / "lines").iterdir()) == names == sorted(p.name for p in (out / "paint").iterdir())
    )
    frame = read_rgba(out / names[0])
    assert frame.shape[2] == 4 and frame[0, 0, 3] == 0  # the paper around the drawing
    assert ((frame[..., 3] > 0) & (frame[..., 3] < 255)).sum() > 100  # anti-aliased line edges over the paper
    assert (frame[..., 3] == 255).mean() > 0.1  # the paint
    lines, paint = read_rgba(out / "lines" / names[0]), read_rgba(out / "paint" / names[0])
    recombined = alpha_over(lines / 255.0, paint / 255.0) * 255
    visible = frame[..., 3] > 0
    assert np.abs(recombined - frame)[visible].max() <= 1
    with av.open(str(out / "sh010.mp4")) as video:
        assert video.streams.video[0].metadata["timecode"] == "00:00:04:05"  # frame 101 at 24 frames a second


def test_sixteen_bit_line_art_gives_sixteen_bit_tiff(colorizer, tmp_path) -> None:
    (tmp_path / "lines").mkdir()
    for source in FRAMES:
        gray = np.asarray(Image.open(source).convert("L")).astype(np.uint16) * 257
        gray[gray == 0] = 300  # ink a little above black: only 16 bits hold it
        cv2.imwrite(str(tmp_path / "lines" / source.name), gray)
    shot = Shot("deep", str(tmp_path / "lines"), str(SAMPLE / "key.png"), str(tmp_path / "out"))
    result = colorizer.run(shot, ShotOptions(file_format="tiff", resolution=128))
    assert result.written == 3, result.summary()
    written = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in written] == sorted(p.with_suffix(".tif").name for p in FRAMES)
    frame = read_rgba(written[0])
    assert frame.dtype == np.uint16 and frame.shape[2] == 3
    assert (frame % 257 != 0).any()  # values no 8-bit frame times 257 has


def test_tiff_frames_mark_their_alpha_as_straight_alpha(tmp_path) -> None:
    rgba = cel_images(ring_cel(), CelFormat(paper="transparent", depth="16"))[""]
    path = tmp_path / "cel.tif"
    path.write_bytes(encode_frame(rgba, str(path)))
    with tifffile.TiffFile(path) as tiff:
        page = tiff.pages[0]
        assert page.extrasamples == (tifffile.EXTRASAMPLE.UNASSALPHA,) and page.bitspersample == 16
        assert np.array_equal(page.asarray(), rgba)


def test_exr_frames_hold_linear_premultiplied_light_and_a_rerun_keeps_them(colorizer, tmp_path) -> None:
    names = ["sh020_0001.png", "sh020_0002.png", "sh020_0003.png"]
    transparent_line_art(tmp_path / "lines", names)
    shot = Shot("sh020", str(tmp_path / "lines"), str(SAMPLE / "key.png"), str(tmp_path / "exr"),
                video=str(tmp_path / "exr.mp4"))  # fmt: skip
    options = ShotOptions(paper="transparent", file_format="exr", resolution=128)
    first = colorizer.run(shot, options)
    assert first.written == 3
    written = sorted((tmp_path / "exr").glob("*.exr"))
    assert [p.name for p in written] == [n.replace(".png", ".exr") for n in names]
    png_shot = Shot("sh020", str(tmp_path / "lines"), str(SAMPLE / "key.png"), str(tmp_path / "png"))
    assert colorizer.run(png_shot, ShotOptions(paper="transparent", depth="16", resolution=128)).written == 3
    cel = read_rgba(tmp_path / "png" / names[0]) / 65535.0
    with OpenEXR.File(str(written[0])) as exr:
        stored = exr.channels()["RGBA"].pixels.astype(np.float64)
    assert np.abs(stored[..., 3] - cel[..., 3]).max() < 1e-3
    edge = (cel[..., 3] > 0.2) & (cel[..., 3] < 0.8)
    assert edge.sum() > 50 and (cel[edge, :3] > 0.05).any()
    expected = np.where(cel[..., :3] <= 0.04045, cel[..., :3] / 12.92, ((cel[..., :3] + 0.055) / 1.055) ** 2.4)
    assert np.abs(stored[..., :3] - expected * cel[..., 3:]).max() < 2e-3  # linear light times alpha, in half floats
    back = read_frame(str(written[0]), as_drawn=True) / 65535.0  # it reads back (no color where nothing is seen)
    assert np.abs(back - cel)[cel[..., 3] > 0.05].max() < 5e-3 and (back[cel[..., 3] == 0] == 0).all()
    (tmp_path / "exr.mp4").unlink()
    recorded = {Path(record.output).name: WrittenFile(record.bytes, record.sha256) for record in first.records}
    again = colorizer.run(replace(shot, recorded_outputs=recorded), options)
    assert again.written == 0 and again.resumed == 3  # the EXR frames are recognised as intact
    with av.open(str(tmp_path / "exr.mp4")) as video:  # the video is made again from them
        assert sum(1 for _ in video.decode(video=0)) == 3
