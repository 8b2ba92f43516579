"""Keyframe precedence and errors, and line-art similarity by the colorizer's encoder."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from model.checkpoint import load_colorizer
from model.colorizer import Colorizer
from model.synthetic_shots import STILL, Motion, render_openmoji_shot
from pipeline.cuts import ShotFrames
from pipeline.keyframes import Keyframe, assign_keyframes
from pipeline.likeness import LineArtFeatures, ink_box_crop, line_art_similarity
from tests.pipeline.openmoji_lines import CAMERA, DRIFT, ELEPHANT, FOX, TREE, ZOOM, line_frames, svg, write_frames

# The keyframes' pose: turned, smaller and off centre, unlike any frame of the shots.
KEY_POSE = Motion(translate_start=(0.05, 0.02), rotate_start=8.0, scale_start=0.8)


def shot(name: str, folder: str, first: int, count: int) -> ShotFrames:
    return ShotFrames(name, tuple(f"s3://episode/{folder}/frame{i:04d}.png" for i in range(first, first + count)))


SHOTS = [shot("sh010", "a", 0, 4), shot("sh020", "a", 4, 4), shot("sh030", "b", 8, 4)]


def table(scores: dict[tuple[str, str], float]):
    """A similarity from a (shot, keyframe) -> score table; a pair not in it fails the test."""

    def similarity(s: ShotFrames, k: Keyframe) -> float:
        return scores[s.name, k.name]

    return similarity


def refuse(s: ShotFrames, k: Keyframe) -> float:
    raise AssertionError(f"similarity consulted for {s.name}/{k.name}")


def test_tied_to_shot_beats_tied_frame_beats_similarity():
    keys = [
        Keyframe("looks_like_all", "k1.png"),
        Keyframe("painted_on_20", "k2.png", frame="frame0005.png"),
        Keyframe("tied_to_10", "k3.png", shots=("sh010",)),
        Keyframe("painted_on_10", "k4.png", frame="frame0002.png"),
    ]
    scores = {(s.name, k.name): 0.1 for s in SHOTS for k in keys} | {("sh030", "looks_like_all"): 0.9}

    result = assign_keyframes(SHOTS, keys, table(scores))

    assert [(a.shot, a.keyframe, a.position, a.extras) for a in result] == [
        ("sh010", "tied_to_10", None, (("painted_on_10", 2),)),  # tied without a frame: no position
        ("sh020", "painted_on_20", 1, ()),  # frame0005.png is the second frame of sh020
        ("sh030", "looks_like_all", None, ()),
    ]
    assert result[0].reason == "tied to the shot in the spec; with 1 more of its keyframes ('painted_on_10')"
    assert result[1].reason == "its frame frame0005.png is in this shot"
    assert result[2].reason.startswith("most similar line art (similarity 0.90; next best painted_on_20 0.10)")


def test_a_tied_keyframe_painted_on_the_shot_gets_its_position():
    keys = [Keyframe("hero", "hero.png", shots=("sh030",), frame="frame0010.png"), Keyframe("other", "o.png")]
    result = assign_keyframes(SHOTS[2:], keys, refuse)
    assert (result[0].keyframe, result[0].position) == ("hero", 2)


def test_every_keyframe_of_a_shot_colors_it_the_first_tied_leading():
    keys = [
        Keyframe("b_frame", "b.png", frame="frame0001.png"),
        Keyframe("a_shot", "a.png", shots=("sh020", "sh010")),
        Keyframe("c_shot", "c.png", shots=("sh010",)),
        Keyframe("d_frame", "d.png", frame="frame0006.png"),
        Keyframe("e_frame", "e.png", frame="frame0004.png"),
    ]
    result = assign_keyframes(SHOTS[:2], keys, refuse)
    assert [(a.keyframe, a.position, a.extras) for a in result] == [
        ("a_shot", None, (("c_shot", None), ("b_frame", 1))),  # tied ones first, then those painted on its frames
        ("a_shot", None, (("d_frame", 2), ("e_frame", 0))),
    ]
    assert result[0].reason == "tied to the shot in the spec; with 2 more of its keyframes ('c_shot', 'b_frame')"

    untied = [k for k in keys if not k.shots]
    result = assign_keyframes(SHOTS[:2], untied, refuse)
    assert [(a.keyframe, a.position, a.extras) for a in result] == [
        ("b_frame", 1, ()),
        ("d_frame", 2, (("e_frame", 0),)),
    ]
    assert result[1].reason == ("its frame frame0006.png is in this shot; with 1 more of its keyframes ('e_frame')")


def test_similarity_ranks_every_keyframe_and_ties_go_to_the_first():
    keys = [Keyframe("x", "x.png"), Keyframe("y", "y.png", shots=("sh010",)), Keyframe("z", "z.png")]
    scores = {("sh020", "x"): 0.3, ("sh020", "y"): 0.8, ("sh020", "z"): 0.8}
    result = assign_keyframes(SHOTS[:2], keys, table(scores | {("sh010", k.name): 0.0 for k in keys}))
    # A keyframe tied to another shot is still a candidate; of equal scores the first in spec order wins.
    assert result[1].keyframe == "y"
    assert result[1].reason == "most similar line art (similarity 0.80; next best z 0.80)"


def test_one_keyframe_colors_every_shot_without_a_similarity():
    result = assign_keyframes(SHOTS, [Keyframe("only", "only.png")], None)
    assert [(a.keyframe, a.reason, a.position) for a in result] == [("only", "the only keyframe", None)] * 3


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([], r"no keyframes given: at least one colored keyframe is needed to color 3 shots"),
        (
            [Keyframe("k", "k.png", shots=("sh040",))],
            r"keyframe 'k' is tied to shot 'sh040', which is not one of the shots \('sh010', 'sh020', 'sh030'\)",
        ),
        (
            [Keyframe("k", "k.png", frame="frame0099.png")],
            r"keyframe 'k' is tied to frame 'frame0099.png', which is in none of the shots' frames",
        ),
        (
            [Keyframe("k", "k.png", frame="a/frame0001.png")],
            r"frame 'a/frame0001.png' \(give the frame's file name, not a path\), which is in none",
        ),
        ([Keyframe("k", "k.png"), Keyframe("k", "k2.png")], r"two keyframes are named 'k'"),
    ],
)
def test_assignment_errors_name_the_keyframe_and_value(keys, message):
    with pytest.raises(ValueError, match=message):
        assign_keyframes(SHOTS, keys, refuse)


def test_a_frame_name_found_in_two_shots_is_refused():
    shots = [shot("sh010", "a", 0, 3), shot("sh020", "b", 2, 3)]  # both hold a frame0002.png
    with pytest.raises(
        ValueError,
        match=r"keyframe 'k' is tied to frame 'frame0002.png', a name found in 2 shots \('sh010', 'sh020'\); "
        r"tie the keyframe to its shot instead",
    ):
        assign_keyframes(shots, [Keyframe("k", "k.png", frame="frame0002.png")], refuse)


def test_a_shot_that_needs_similarity_without_one_is_named():
    keys = [Keyframe("a", "a.png", shots=("sh010",)), Keyframe("b", "b.png")]
    with pytest.raises(
        ValueError,
        match=r"shot 'sh020' has no keyframe tied to it or to one of its frames, and no similarity was given to "
        r"choose among the 2 keyframes \('a', 'b'\) by line art",
    ):
        assign_keyframes(SHOTS, keys, None)


def test_a_similarity_that_is_not_a_number_is_refused():
    keys = [Keyframe("a", "a.png"), Keyframe("b", "b.png")]
    with pytest.raises(ValueError, match=r"similarity of shot 'sh010' and keyframe 'a' is nan, not a finite number"):
        assign_keyframes(SHOTS, keys, lambda s, k: math.nan)


def test_shots_and_keyframes_store_tuples_and_refuse_a_bare_string():
    assert ShotFrames("s", ["a.png", "b.png"]).frames == ("a.png", "b.png")
    with pytest.raises(ValueError, match=r"shot 'empty' has no frames"):
        ShotFrames("empty", ())
    with pytest.raises(ValueError, match=r"shot 's': frames must be a sequence of frame URLs, got the single string"):
        ShotFrames("s", "frames/f1.png")
    assert Keyframe("k", "k.png", shots=["sh010"]).shots == ("sh010",)
    with pytest.raises(ValueError, match=r"keyframe 'k': shots must be a sequence of shot names, got .* 'sh010'"):
        Keyframe("k", "k.png", shots="sh010")


# ---------------------------------------------------------------------------------------------------------------------
# Line-art similarity from the colorizer's encoder


@pytest.fixture(scope="module")
def model() -> Colorizer:
    return load_colorizer()[0]


def write_key(path: Path, name: str, width: int = 240, height: int = 180) -> str:
    color = render_openmoji_shot(svg(name), 1, width, height, KEY_POSE).color[0]
    Image.fromarray(color).save(path)
    return str(path)


def test_each_shot_is_keyed_with_its_own_drawing_by_the_encoder(model, tmp_path):
    shots = [
        ShotFrames("elephant_shot", tuple(write_frames(tmp_path / "e", line_frames(ELEPHANT, 5, DRIFT)))),
        ShotFrames("camera_shot", tuple(write_frames(tmp_path / "c", line_frames(CAMERA, 5, ZOOM)))),
    ]
    # Colored images only (no line art), so their lines come from XDoG; listed in the other order from the shots.
    keys = [
        Keyframe("camera_key", write_key(tmp_path / "camera.png", CAMERA)),
        Keyframe("elephant_key", write_key(tmp_path / "elephant.png", ELEPHANT)),
    ]
    calls = []
    hook = model.line_encoder.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape))
    try:
        result = assign_keyframes(shots, keys, line_art_similarity(model))
    finally:
        hook.remove()

    assert [(a.shot, a.keyframe, a.position) for a in result] == [
        ("elephant_shot", "elephant_key", None),
        ("camera_shot", "camera_key", None),
    ]
    assert all(a.reason.startswith("most similar line art (similarity 0.") for a in result)
    # Each keyframe once and 3 frames per shot once, though 4 (shot, keyframe) pairs were scored.
    assert len(calls) == 2 + 2 * 3
    assert set(calls) == {(1, 1, 256, 256)}  # every drawing at the working resolution


def test_keyframe_line_art_is_xdog_of_the_colored_image_or_the_given_line(model, tmp_path):
    features = LineArtFeatures(model)
    image = write_key(tmp_path / "key.png", ELEPHANT, width=640, height=480)
    lines = features.keyframe_line_art(Keyframe("k", image))
    assert lines.shape == (192, 256) and lines.dtype == np.uint8  # scaled to the working resolution first
    assert set(np.unique(lines)) == {0, 255}
    # Its ink lies along the drawing's own lines (dilated by 3 px for the scale and XDoG's edge offset).
    truth = render_openmoji_shot(svg(ELEPHANT), 1, 256, 192, KEY_POSE).line[0]
    near_truth = np.asarray(Image.fromarray(truth).filter(ImageFilter.MinFilter(7))) < 128
    ink = lines == 0
    assert ink.mean() > 0.01
    assert near_truth[ink].mean() > 0.8

    line_path = tmp_path / "line.png"
    Image.fromarray(truth[:100, :150]).save(line_path)
    given = features.keyframe_line_art(Keyframe("k", image, line=str(line_path)))
    np.testing.assert_array_equal(given, truth[:100, :150])

    with pytest.raises(ValueError, match=r"keyframe 'gone': frame '.*missing\.png' does not exist"):
        features.keyframe_line_art(Keyframe("gone", str(tmp_path / "missing.png")))


def test_description_is_unit_length_and_ignores_where_the_drawing_sits_and_its_size(model):
    features = LineArtFeatures(model)
    drawing = line_frames(FOX, 1, STILL)[0]
    elsewhere = np.full((240, 400), 255, np.uint8)
    elsewhere[100:220, 230:390] = drawing  # the same drawing, off centre in a larger frame
    small = np.full((240, 400), 255, np.uint8)
    small[20:80, 20:100] = np.asarray(Image.fromarray(drawing).resize((80, 60), Image.Resampling.BOX))
    vector = features.describe(drawing)
    moved, smaller = features.describe(elsewhere), features.describe(small)
    other = features.describe(line_frames(TREE, 1, STILL)[0])

    assert vector.shape == (2 * 128,) and vector.dtype == np.float32  # the lite encoder's two deepest outputs
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    assert float(vector @ moved) > 0.999
    assert float(vector @ smaller) > 0.98
    assert float(vector @ other) < float(vector @ smaller) - 0.03
    blank = features.describe(np.full((32, 48), 255, np.uint8))  # no ink: the whole frame is described
    assert np.isfinite(blank).all() and np.linalg.norm(blank) == pytest.approx(1.0, abs=1e-5)


def test_ink_box_crop_is_square_around_the_drawing_and_ignores_a_speck():
    frame = np.full((200, 300), 255, np.uint8)
    frame[50:150, 100:160] = 0  # a 60 x 100 block of ink
    crop = ink_box_crop(frame)
    assert crop.shape[0] == crop.shape[1] and 100 <= crop.shape[0] <= 115
    assert (crop == 0).sum() == 60 * 100  # all the ink is inside
    frame[195, 295] = 0
    assert ink_box_crop(frame).shape == crop.shape
    blank = np.full((20, 30), 255, np.uint8)
    assert ink_box_crop(blank) is blank


def test_line_art_features_refuse_bad_settings(model):
    with pytest.raises(ValueError, match=r"layers must be in 1\.\.10 \(the line encoder's outputs\), got 0"):
        LineArtFeatures(model, layers=0)
    with pytest.raises(ValueError, match=r"got samples=0, resolution=256"):
        LineArtFeatures(model, samples=0)
