"""pipeline/api.py: a shot colored from Python, arrays in and arrays out or paths in and PNGs out, the same pixels
both ways; the options checked by ShotOptions; bad arrays refused naming them; README's "From Python" example run
as written."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline.api import ShotColorizer, colorize_folder, colorize_frames
from pipeline.shot import InvalidOptions, ShotOptions

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "wave"


@pytest.fixture(scope="module")
def colorizer() -> ShotColorizer:
    return ShotColorizer.from_weights()


def read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """The sample's line art, (300, 400) uint8 each (saved in mode L)."""
    return [read(SAMPLE / "frames" / f"frame{i}.png") for i in range(1, 13)]


def assert_equal_to_pngs(colored: list[np.ndarray], folder: Path, names: list[str]) -> None:
    assert len(colored) == len(names)
    for array, name in zip(colored, names, strict=True):
        written = read(folder / name)
        assert array.dtype == np.uint8 and array.shape == written.shape == (300, 400, 3)
        assert np.array_equal(array, written), name


def test_the_readme_example_runs_as_written_and_its_arrays_are_the_pngs(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\n## From Python\n") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    (tmp_path / "samples").symlink_to(ROOT / "samples")  # the example's paths, and its out/ outside the repository
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    exec(compile(code, "README.md (From Python)", "exec"), names)
    assert names["result"].status == "ok" and names["result"].written == 12
    assert_equal_to_pngs(names["colored"], tmp_path / "out", [f"frame{i}.png" for i in range(1, 13)])


def test_several_keyframes_color_outward_the_same_in_memory_as_in_pngs(colorizer, frames, tmp_path):
    middle, last = SAMPLE / "truth" / "frame6.png", SAMPLE / "truth" / "frame12.png"
    colored = colorize_frames(frames, read(middle), keyframe_position=5, extra_keyframes=[(read(last), 11)],
                              colorizer=colorizer, batch_size=3)  # fmt: skip
    result = colorize_folder(str(SAMPLE / "frames"), str(middle), str(tmp_path / "out"), keyframe_position=5,
                             extra_keyframes=[(str(last), 11)], colorizer=colorizer, batch_size=3)  # fmt: skip
    assert result.status == "ok"
    assert_equal_to_pngs(colored, tmp_path / "out", [f"frame{i}.png" for i in range(1, 13)])
    # Outward from the keyframes: frame 6 is itself a keyframe's drawing, and comes out in the keyframe's colors.
    truth = read(middle).astype(int)
    assert np.mean(np.abs(colored[5].astype(int) - truth).max(axis=2) > 40) < 0.02


def test_rgb_arrays_read_as_their_rgb_files_with_guide_lines_as_ink_and_the_models_colors(colorizer, frames, tmp_path):
    folder = tmp_path / "rgb"
    folder.mkdir()
    rgb = [np.repeat(frame[..., None], 3, axis=2) for frame in frames[:4]]
    for index, image in enumerate(rgb, start=1):
        Image.fromarray(image).save(folder / f"frame{index}.png")
    options = {"guide_lines": "off", "color_source": "model", "fill": "soft"}  # the frames read as luma
    colored = colorize_frames(rgb, read(SAMPLE / "key.png"), colorizer=colorizer, **options)
    result = colorize_folder(
        str(folder), str(SAMPLE / "key.png"), str(tmp_path / "out"), colorizer=colorizer, **options
    )
    assert result.status == "ok" and result.fill == "soft"
    assert_equal_to_pngs(colored, tmp_path / "out", [f"frame{i}.png" for i in range(1, 5)])


def test_without_a_colorizer_the_shipped_weights_color_the_same(colorizer, frames):
    key = read(SAMPLE / "key.png")
    alone = colorize_frames(frames[:2], key, color_source="model")
    shared = colorize_frames(frames[:2], key, colorizer=colorizer, color_source="model")
    assert all(np.array_equal(a, b) for a, b in zip(alone, shared, strict=True))


@pytest.mark.parametrize("options", [{"fill": "wet"}, {"resolution": 8, "batch_size": 0}, {"palette_lock": "yes"}])
def test_options_are_checked_by_shot_options_with_its_messages(colorizer, frames, options):
    with pytest.raises(InvalidOptions) as expected:
        ShotOptions(**options)
    with pytest.raises(InvalidOptions) as raised:
        colorize_frames(frames, read(SAMPLE / "key.png"), colorizer=colorizer, **options)
    assert str(raised.value) == str(expected.value)
    with pytest.raises(InvalidOptions):
        colorize_folder(str(SAMPLE / "frames"), str(SAMPLE / "key.png"), "unused", colorizer=colorizer, **options)


def test_an_unknown_option_and_another_setup_than_the_colorizers_are_refused(colorizer, frames):
    key = read(SAMPLE / "key.png")
    with pytest.raises(TypeError, match="colour"):
        colorize_frames(frames, key, colorizer=colorizer, colour="red")
    with pytest.raises(ValueError, match="asks for precision auto, compiled, this colorizer runs precision auto"):
        colorize_frames(frames, key, colorizer=colorizer, compile=True)


def test_arrays_that_are_no_frames_are_refused_naming_them(colorizer, frames):
    key = read(SAMPLE / "key.png")
    cases = [
        (
            [frames[0], frames[1].astype(np.float32)],
            key,
            {},
            r"frame 1: expected .* uint8 or uint16, got dtype float32",
        ),
        ([frames[0], np.zeros((300, 400, 2), np.uint8)], key, {}, r"frame 1: expected .* got shape \(300, 400, 2\)"),
        ([], key, {}, "no frames given"),
        (frames, key[..., 0], {}, r"keyframe 0: expected \(H, W, 3\) uint8, got shape \(300, 400\)"),
        (frames, key.astype(np.uint16), {}, r"keyframe 0: expected \(H, W, 3\) uint8, got dtype uint16"),
        (frames, key, {"keyframe_position": 12}, "keyframe 0: painted on frame 12, but the frames are numbered 0 to"),
        (frames, key, {"extra_keyframes": [(key.tolist(), 3)]}, "keyframe 1: expected a numpy array"),
    ]
    for given, keyframe, arguments, message in cases:
        with pytest.raises(ValueError, match=message):
            colorize_frames(given, keyframe, colorizer=colorizer, **arguments)


def test_colorize_folder_refuses_an_output_folder_that_would_overwrite_the_line_art(tmp_path):
    folder = tmp_path / "frames"
    shutil.copytree(SAMPLE / "frames", folder)
    with pytest.raises(ValueError, match="would overwrite the line art"):
        colorize_folder(str(folder), str(SAMPLE / "key.png"), f"{folder}/")
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in (SAMPLE / "frames").iterdir())


def test_frames_on_transparent_paper_and_at_sixteen_bits_color_as_their_files_do(colorizer, frames, tmp_path):
    """Arrays as a paint application hands them over: RGBA on transparent paper, and 16-bit gray."""
    key = read(SAMPLE / "key.png")
    drawn = [np.dstack([np.zeros((*frame.shape, 3), np.uint8), 255 - frame]) for frame in frames[:3]]
    deep = [frame.astype(np.uint16) * 257 for frame in frames[:3]]
    for name, arrays in (("rgba", drawn), ("deep", deep)):
        (tmp_path / name).mkdir()
        for index, array in enumerate(arrays):
            cv2.imwrite(str(tmp_path / name / f"f{index}.png"), array[..., [2, 1, 0, 3]] if array.ndim == 3 else array)
        options = {"paper": "transparent", "resolution": 128}
        colored = colorize_frames(arrays, key, colorizer=colorizer, **options)
        colorize_folder(str(tmp_path / name), str(SAMPLE / "key.png"), str(tmp_path / f"{name}-out"),
                        colorizer=colorizer, **options)  # fmt: skip
        for index, frame in enumerate(colored):
            written = cv2.imread(str(tmp_path / f"{name}-out" / f"f{index}.png"), cv2.IMREAD_UNCHANGED)
            assert np.array_equal(frame, cv2.cvtColor(written, cv2.COLOR_BGRA2RGBA)), (name, index)
            assert frame.dtype == arrays[index].dtype and frame.shape[2] == 4  # at the frame's depth, on its paper
        assert (colored[0][..., 3] == 0).any() and (colored[0][..., 3] == colored[0].max()).any()
