"""Line preparation in the shot pipeline: scans cleaned, colored guide lines separating regions and then painted
over or kept, the automatic choice between flat and soft fill."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipeline.colorize import ShotColorizer
from pipeline.lineart import LineArt, composite_lines, has_closed_regions, prepare_line_art, resize_bilinear
from pipeline.regions import segment_regions
from pipeline.shot import Shot, ShotOptions

SIZE = 96
RED = (230, 20, 30)
SKIN, SHADOW = (250, 205, 170), (150, 90, 60)


def line_frame(guide: tuple[int, int, int] | None = RED, offset: int = 0) -> np.ndarray:
    """(SIZE, SIZE, 3) anti-aliased line art: a black box, split across its middle by a 3-px colored guide line
    (or, with guide None, by nothing), moved right by `offset` pixels."""
    scale = 4
    image = Image.new("RGB", (SIZE * scale, SIZE * scale), "white")
    pen = ImageDraw.Draw(image)
    left, right = (12 + offset) * scale, (70 + offset) * scale
    if guide is not None:
        pen.line([left, 47.5 * scale, right, 47.5 * scale], fill=guide, width=3 * scale)
    pen.rectangle([left, 12 * scale, right, 84 * scale], outline=(0, 0, 0), width=3 * scale)
    return np.array(image.resize((SIZE, SIZE), Image.Resampling.BOX))


def scanned(gray: np.ndarray, seed: int = 0) -> np.ndarray:
    """Gray line art on yellowed, unevenly lit, grainy paper."""
    rng = np.random.default_rng(seed)
    xs = np.mgrid[0 : gray.shape[0], 0 : gray.shape[1]][1]
    paper = 175 + 60 * xs / gray.shape[1]
    return np.clip(gray / 255 * paper + rng.normal(0, 5, gray.shape), 0, 255).round().astype(np.uint8)


def box_regions(labels: np.ndarray) -> set[int]:
    inside = labels[17:80, 17:66]
    return set(np.unique(inside[inside > 0]).tolist())


def test_guide_lines_bound_regions_but_stay_out_of_the_model_input() -> None:
    art = prepare_line_art(line_frame())
    assert art.guides is not None and art.guides[46:50, 20:60].any(axis=0).all()
    assert art.lines[40:56, 20:60].min() >= 250  # the model sees paper where the guide line runs
    assert len(box_regions(segment_regions(art.boundaries))) == 2
    assert len(box_regions(segment_regions(art.lines))) == 1


def test_guide_lines_off_reads_them_as_ink() -> None:
    art = prepare_line_art(line_frame(), guide_lines="off")
    assert art.guides is None and art.boundaries is art.lines
    assert art.lines[47, 30] < 120  # the red line is dark ink now


def test_gray_and_black_only_frames_have_no_guides() -> None:
    rgb = line_frame(guide=None)
    for image in (rgb, rgb[..., 0].copy()):
        art = prepare_line_art(image)
        assert art.guides is None and art.source is None
        assert np.abs(art.lines.astype(int) - rgb[..., 0]).max() <= 2  # clean art comes through unchanged


def test_a_scan_is_cleaned_unless_raw_lines_are_asked_for() -> None:
    scan = scanned(line_frame(guide=None)[..., 0])
    cleaned = prepare_line_art(scan).lines
    raw = prepare_line_art(scan, clean=False).lines
    paper = line_frame(guide=None)[..., 0] == 255
    assert (cleaned[paper] >= 250).mean() > 0.99
    assert (raw[paper] >= 250).mean() < 0.05


def test_unknown_guide_line_option_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown guide-line option 'erase'"):
        prepare_line_art(line_frame(), guide_lines="erase")


def test_closed_regions_are_told_from_open_sketch_lines() -> None:
    assert has_closed_regions(prepare_line_art(line_frame()))
    sketch = np.full((SIZE, SIZE), 255, np.uint8)
    for row in (20, 45, 70):
        sketch[row : row + 2, 10:60] = 0  # loose strokes that enclose nothing
    assert not has_closed_regions(LineArt.plain(sketch))


@pytest.mark.parametrize("mode", ["paint", "keep"])
def test_flat_fill_colors_each_side_of_a_guide_line_and_paints_or_keeps_it(mode: str) -> None:
    art = prepare_line_art(line_frame())
    colors = np.full((SIZE // 2, SIZE // 2, 3), 255, np.uint8)  # the model at half resolution
    colors[6:24, 6:35], colors[24:42, 6:35] = SKIN, SHADOW
    out = composite_lines(colors, art, "flat", guide_lines=mode)
    assert tuple(out[30, 40]) == SKIN and tuple(out[65, 40]) == SHADOW
    on_guide = out[art.guides & (art.source[..., 0] == RED[0])]
    assert len(on_guide) > 40
    if mode == "keep":
        assert (on_guide == RED).all()
    else:
        assert not (on_guide == RED).all(axis=1).any()
        assert {tuple(c) for c in on_guide} <= {SKIN, SHADOW}


@pytest.fixture(scope="module")
def colorizer() -> ShotColorizer:
    return ShotColorizer.from_weights()


def write_shot(folder: Path, frames: list[np.ndarray]) -> str:
    folder.mkdir(parents=True)
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"f{index + 1}.png")
    return str(folder)


@pytest.mark.parametrize("mode", ["paint", "keep", "off"])
def test_a_shot_with_guide_lines_through_the_pipeline(colorizer, tmp_path, mode: str) -> None:
    frames = write_shot(tmp_path / "lines", [line_frame(offset=offset) for offset in (0, 3, 6)])
    keyframe = np.full((SIZE, SIZE, 3), 255, np.uint8)
    keyframe[15:48, 15:68], keyframe[48:82, 15:68] = SKIN, SHADOW
    keyframe[line_frame(guide=None)[..., 0] < 128] = 0
    Image.fromarray(keyframe).save(tmp_path / "key.png")
    shot = Shot("guides", frames, str(tmp_path / "key.png"), str(tmp_path / mode), keyframe_position=0)
    # Carried colors draw every line in the keyframe's color of line there, and this keyframe shows no line where the
    # guide is: read as ink ("off"), the guide would take the paint's color. Multiplied as ink, it is dark.
    source = "model" if mode == "off" else "carry"
    result = colorizer.run(shot, ShotOptions(fill="flat", guide_lines=mode, batch_size=2, color_source=source))
    assert result.status == "ok" and result.written == 3 and result.fill == "flat"
    for index, offset in enumerate((0, 3, 6)):
        out = np.asarray(Image.open(tmp_path / mode / f"f{index + 1}.png").convert("RGB"))
        guide = out[47, 20 + offset : 60 + offset].astype(int)
        top, bottom = out[20:44, 18 + offset : 64 + offset], out[51:80, 18 + offset : 64 + offset]
        assert len(np.unique(top.reshape(-1, 3), axis=0)) == 1  # each side of the guide line is one flat color
        assert len(np.unique(bottom.reshape(-1, 3), axis=0)) == 1
        if mode == "keep":
            assert (guide == RED).all()
        elif mode == "paint":  # painted over with the fill beside it: no trace of red, no dark line
            assert (guide.min(axis=1) > 40).all() and not (np.abs(guide - RED).sum(axis=1) < 60).any()
            assert {tuple(c) for c in guide} <= {tuple(top[0, 0]), tuple(bottom[0, 0])}
        else:  # read as ink: a dark line, multiplied over the fill
            assert (guide.max(axis=1) < 120).all()


def test_auto_fill_is_flat_for_closed_regions_and_soft_for_open_lines(colorizer, tmp_path) -> None:
    closed = write_shot(tmp_path / "closed", [line_frame(guide=None)] * 2)
    sketch = np.full((SIZE, SIZE), 255, np.uint8)
    for row in (20, 45, 70):
        sketch[row : row + 2, 10:60] = 0
    open_lines = write_shot(tmp_path / "open", [sketch] * 2)
    key = str(tmp_path / "key.png")
    Image.fromarray(line_frame(guide=None)).save(key)
    fills = {}
    for name, frames in (("closed", closed), ("open", open_lines)):
        result = colorizer.run(Shot(name, frames, key, str(tmp_path / f"out_{name}")), ShotOptions())
        assert result.status == "ok", result.summary()
        fills[name] = result.fill
    assert fills == {"closed": "flat", "open": "soft"}


@pytest.mark.parametrize(("source", "target"), [((192, 256), (600, 800)), ((37, 53), (150, 101)), ((5, 5), (5, 5))])
def test_the_bilinear_resize_enlarges_within_two_levels_of_pillow(
    source: tuple[int, int], target: tuple[int, int]
) -> None:
    rng = np.random.default_rng(sum(source))
    colors = rng.integers(0, 256, (*source, 3), dtype=np.uint8)
    pillow = np.asarray(Image.fromarray(colors).resize(target[::-1], Image.Resampling.BILINEAR))
    resized = resize_bilinear(colors, target)
    assert resized.dtype == np.uint8 and resized.flags.c_contiguous
    difference = np.abs(resized.astype(int) - pillow)  # fixed-point weights rounded another way
    assert difference.max() <= 2 and (difference > 0).mean() < 0.03  # (measured: at most 2, 1.9%)
    values = rng.normal(0, 50, (*source, 3)).astype(np.float32)
    planes = [Image.fromarray(np.ascontiguousarray(values[..., i]), "F") for i in range(3)]
    channels = [plane.resize(target[::-1], Image.Resampling.BILINEAR) for plane in planes]
    # float32 weights computed another way: within 0.02 on values of +-150, under the region vote's 0.05 Lab step
    assert np.abs(resize_bilinear(values, target) - np.stack(channels, axis=-1)).max() < 0.02
