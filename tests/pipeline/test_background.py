"""--background: each video frame is the frame's cel laid over an image, whatever paper the files are written on."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from pipeline.cel import Background, video_cel
from pipeline.colorize import ShotColorizer
from pipeline.shot import Shot, ShotOptions
from tests.pipeline.test_cel import FRAMES, SAMPLE, ring_cel

GREEN = (0, 255, 0)


def solid_png(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (30, 50)) -> Path:
    """A PNG of one color, `size` (height, width): not the frames' size, so it is scaled."""
    cv2.imwrite(str(path), np.full((*size, 3), rgb[::-1], np.uint8))
    return path


def test_paper_shows_the_background_paint_stays_and_line_edges_over_paper_blend() -> None:
    cel = ring_cel()
    frame = Background(np.full((7, 9, 3), GREEN, np.uint8)).under(video_cel(cel))
    assert frame.shape == (40, 40, 3)
    assert (frame[0, 0] == GREEN).all()  # paper
    assert (frame[20, 20] == cel.finished[20, 20]).all() and (frame[20, 15] == cel.finished[20, 15]).all()  # paint
    yy, xx = np.mgrid[:40, :40]
    outer_edge = (cel.art.lines == 128) & (np.hypot(yy - 20, xx - 20) > 12)  # half-covered black ink over the paper
    assert (frame[outer_edge] == (0, 128, 0)).all()
    solid_line = cel.art.lines == 0
    assert (frame[solid_line] == 0).all()


@pytest.fixture(scope="module")
def colorizer() -> ShotColorizer:
    return ShotColorizer.from_weights()


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as video:
        return [frame.to_ndarray(format="rgb24") for frame in video.decode(video=0)]


def read_rgba(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)


@pytest.mark.parametrize("keyframe_position", [None, 1], ids=["streamed", "colored-out-of-order"])
def test_the_video_lays_each_cel_over_the_background(colorizer, tmp_path, keyframe_position) -> None:
    background = solid_png(tmp_path / "green.png", GREEN)
    videos = {}
    for paper in ("transparent", "white"):
        out = tmp_path / paper
        shot = Shot("sh", str(SAMPLE / "frames"), str(SAMPLE / "key.png"), str(out), video=str(out / "sh.mkv"),
                    frame_urls=tuple(map(str, FRAMES)), keyframe_position=keyframe_position)  # fmt: skip
        result = colorizer.run(shot, ShotOptions(paper=paper, codec="ffv1", background=str(background), resolution=128))
        assert result.written == 3 and not result.failures, result.summary()
        videos[paper] = decoded(out / "sh.mkv")
    assert len(videos["transparent"]) == 3
    for frame, source in zip(videos["transparent"], FRAMES, strict=True):
        cel = read_rgba(tmp_path / "transparent" / source.name)
        alpha = cel[..., 3:].astype(np.float64) / 255
        expected = cel[..., :3] * alpha + np.array(GREEN) * (1 - alpha)
        assert np.abs(frame - expected).max() <= 0.5 + 1e-9  # ffv1 is lossless: only the rounding of the blend
        assert (frame[cel[..., 3] == 0] == GREEN).all()  # the paper
        assert (frame[cel[..., 3] == 255] == cel[cel[..., 3] == 255][:, :3]).all()  # paint and lines, as in the file
        assert (cel[..., 3] == 0).mean() > 0.1 and (cel[..., 3] == 255).mean() > 0.1  # both are there to compare
    for over_white_paper, over_transparent_paper in zip(videos["white"], videos["transparent"], strict=True):
        assert (over_white_paper == over_transparent_paper).all()  # the files' paper does not change the video


def test_a_missing_background_fails_the_shot_before_any_frame_is_colored(colorizer, tmp_path) -> None:
    missing = tmp_path / "no-such-background.png"
    shot = Shot("sh", str(SAMPLE / "frames"), str(SAMPLE / "key.png"), str(tmp_path / "out"),
                video=str(tmp_path / "out" / "sh.mp4"), frame_urls=tuple(map(str, FRAMES)))  # fmt: skip
    result = colorizer.run(shot, ShotOptions(background=str(missing), resolution=128))
    assert result.error is not None and f"background {str(missing)!r} cannot be used" in result.error
    assert result.written == 0 and not list((tmp_path / "out").glob("*.png"))


def test_the_command_line_refuses_a_missing_background_naming_it(tmp_path) -> None:
    missing = tmp_path / "no-such-background.png"
    args = ["shot", str(SAMPLE / "frames"), "-r", str(SAMPLE / "key.png"), "-o", str(tmp_path / "out"),
            "--video", str(tmp_path / "out" / "sh.mp4"), "--background", str(missing)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert f"background {str(missing)!r} cannot be used" in result.output
    assert not list((tmp_path / "out").glob("*.png"))


def test_the_command_line_refuses_a_background_without_a_video(tmp_path) -> None:
    background = solid_png(tmp_path / "green.png", GREEN)
    args = ["shot", str(SAMPLE / "frames"), "-r", str(SAMPLE / "key.png"), "-o", str(tmp_path / "out"),
            "--background", str(background)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "give a video to write too" in result.output
