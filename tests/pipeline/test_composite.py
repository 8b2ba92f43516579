"""Compositing in the shot pipeline: colored guide lines painted over or kept, the flat fill on each side of them,
and the automatic choice between flat and soft fill."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.colorize import ShotColorizer
from pipeline.composite import composite_lines, has_closed_regions
from pipeline.lineart import LineArt, prepare_line_art
from pipeline.shot import Shot, ShotOptions
from tests.pipeline.guide_line_frames import RED, SIZE, line_frame

SKIN, SHADOW = (250, 205, 170), (150, 90, 60)


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
    out = composite_lines(colors, art, "flat", guide_lines=mode).finished
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
