"""colorize-shot through the CLI with a real local Ray, on the bundled sample and on bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from cli import main
from pipeline.video import count_frames, probe

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "wave"


def invoke(*args: str):
    return CliRunner().invoke(main, ["shot", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    result = invoke(str(SAMPLE / "frames"), "-r", str(SAMPLE / "key.png"), "-o", str(out / "out"),
                    "--video", str(out / "out.mp4"), "--resolution", "256")  # fmt: skip
    return result, out


@pytest.mark.slow
def test_sample_shot_is_colored_with_its_own_names_sizes_and_lines(sample_run):
    result, out = sample_run
    assert result.exit_code == 0, result.output
    assert "12 frames colored" in result.output
    inputs = sorted(p.name for p in (SAMPLE / "frames").glob("*.png"))
    assert sorted(p.name for p in (out / "out").glob("*.png")) == inputs
    key = np.asarray(Image.open(SAMPLE / "key.png").convert("RGB")).astype(int)
    for name in ("frame1.png", "frame7.png", "frame12.png"):
        line = np.asarray(Image.open(SAMPLE / "frames" / name).convert("L"))
        colored = np.asarray(Image.open(out / "out" / name).convert("RGB")).astype(int)
        assert colored.shape[:2] == line.shape
        dark = line < 60
        assert colored[dark].max(axis=1).mean() < 80, "the artist's lines must stay dark"
        paper = colored[~dark & (line > 250)]
        assert (paper.std(axis=1) > 20).mean() > 0.02, "some paper must be painted in color"
    # The keyframe's dominant saturated color shows up in the first frame.
    colorful = key[key.std(axis=2) > 40]
    dominant = np.median(colorful, axis=0)
    first = np.asarray(Image.open(out / "out" / "frame1.png").convert("RGB")).astype(int).reshape(-1, 3)
    assert (np.abs(first - dominant).sum(axis=1) < 90).mean() > 0.01


@pytest.mark.slow
def test_sample_video_has_every_frame(sample_run):
    _, out = sample_run
    assert count_frames(str(out / "out.mp4")) == 12
    info = probe(str(out / "out.mp4"))
    assert (info.width, info.height) == (400, 300)


@pytest.mark.slow
def test_rerun_resumes_without_recoloring(sample_run, tmp_path):
    _, out = sample_run
    copy = tmp_path / "out"
    shutil.copytree(out / "out", copy)
    (copy / "frame5.png").unlink()
    result = invoke(str(SAMPLE / "frames"), "-r", str(SAMPLE / "key.png"), "-o", str(copy), "--resolution", "256")
    assert result.exit_code == 0, result.output
    assert "1 frames colored, 11 already done" in result.output
    assert (copy / "frame5.png").exists()


@pytest.mark.slow
def test_a_corrupt_frame_is_reported_and_the_others_are_colored(tmp_path):
    frames = tmp_path / "frames"
    shutil.copytree(SAMPLE / "frames", frames)
    data = (frames / "frame3.png").read_bytes()
    (frames / "frame3.png").write_bytes(data[: len(data) // 2])
    result = invoke(str(frames), "-r", str(SAMPLE / "key.png"), "-o", str(tmp_path / "out"), "--resolution", "128")
    assert result.exit_code == 1
    assert "frame3.png" in result.output and "11 frames colored" in result.output
    assert not (tmp_path / "out" / "frame3.png").exists()
    assert len(list((tmp_path / "out").glob("*.png"))) == 11


@pytest.mark.parametrize(
    ("case", "needle"),
    [("missing reference", "does not exist"), ("reference not an image", "cannot be used"),
     ("frames missing", "frames"), ("no images", "no image"), ("weights pickle", "pickle"),
     ("unwritable output", "cannot be created"), ("video container", ".avi")],
)  # fmt: skip
def test_bad_input_is_a_usage_error_naming_the_file(tmp_path, case, needle):
    frames, reference, weights = str(SAMPLE / "frames"), str(SAMPLE / "key.png"), []
    if case == "missing reference":
        reference = str(tmp_path / "nokey.png")
    elif case == "reference not an image":
        reference = str(tmp_path / "key.png")
        Path(reference).write_text("not an image")
    elif case == "frames missing":
        frames = str(tmp_path / "nothing-here")
    elif case == "no images":
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "notes.txt").write_text("x")
        frames = str(tmp_path / "empty")
    elif case == "weights pickle":
        torch.save({"x": torch.zeros(1)}, tmp_path / "w.pt")
        weights = ["--weights", str(tmp_path / "w.pt")]
    out = tmp_path / "out"
    if case == "video container":
        weights = ["--video", str(tmp_path / "shot.avi")]
    if case == "unwritable output":
        (tmp_path / "a-file").write_text("x")
        out = tmp_path / "a-file" / "out"
    result = invoke(frames, "-r", reference, "-o", str(out), *weights)
    assert result.exit_code == 2, result.output
    assert needle in result.output.lower()
    assert "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.slow
def test_a_video_of_line_art_is_colored_frame_by_frame(tmp_path):
    from pipeline.video import encode_video

    frames = [np.asarray(Image.open(SAMPLE / "frames" / f"frame{i}.png").convert("RGB")) for i in range(1, 6)]
    encode_video(frames, str(tmp_path / "lines.mkv"), codec="ffv1")
    result = invoke(str(tmp_path / "lines.mkv"), "-r", str(SAMPLE / "key.png"), "-o", str(tmp_path / "out"),
                    "--video", str(tmp_path / "out.mov"), "--codec", "prores", "--resolution", "128")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [f"frame_{i:05d}.png" for i in range(1, 6)]
    assert count_frames(str(tmp_path / "out.mov")) == 5


@pytest.mark.slow
def test_frames_and_output_in_a_bucket(s3_server, monkeypatch, tmp_path):
    """s3:// in and out through Ray workers; the endpoint and keys come from the environment, as on a cluster."""
    import s3fs

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server["endpoint_url"])
    # s3fs caches a filesystem per set of arguments: one made with none by an earlier test, before this endpoint was
    # in the environment, would be reused here and reach for AWS itself.
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(**s3_server["storage_options"])
    root = f"{s3_server['bucket']}/e2e-shot"
    for index in (1, 2, 3, 10):
        fs.put_file(str(SAMPLE / "frames" / f"frame{index}.png"), f"{root}/frames/frame{index}.png")
    fs.put_file(str(SAMPLE / "key.png"), f"{root}/key.png")
    result = invoke(f"s3://{root}/frames", "-r", f"s3://{root}/key.png", "-o", f"s3://{root}/out",
                    "--video", f"s3://{root}/out.mp4", "--resolution", "128")  # fmt: skip
    assert result.exit_code == 0, result.output
    fs.invalidate_cache()
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"{root}/out"))
    assert names == ["frame1.png", "frame10.png", "frame2.png", "frame3.png", "inkpaint-frames.parquet",
                     "inkpaint-report", "inkpaint-results", "inkpaint-run.json", "inkpaint-spec.json"]  # fmt: skip
    fs.get_file(f"{root}/out/inkpaint-report/index.html", str(tmp_path / "report.html"))
    assert "frames colored" in (tmp_path / "report.html").read_text()  # the report is written to the bucket too
    fs.get_file(f"{root}/out.mp4", str(tmp_path / "out.mp4"))
    assert count_frames(str(tmp_path / "out.mp4")) == 4


def test_palette_lock_with_soft_fill_is_a_usage_error(tmp_path):
    result = invoke(str(SAMPLE / "frames"), "-r", str(SAMPLE / "key.png"), "-o", str(tmp_path / "out"),
                    "--palette-lock", "--fill", "soft")  # fmt: skip
    assert result.exit_code == 2
    assert "--palette-lock: locks the colors of flat regions: fill must be flat or auto" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_two_keyframes_and_chaining_through_the_cli(tmp_path):
    last = tmp_path / "last.png"
    shutil.copy(SAMPLE / "truth" / "frame12.png", last)
    result = invoke(str(SAMPLE / "frames"), "-r", str(SAMPLE / "key.png"), "-r", str(last),
                    "--keyframe-at", "1", "--keyframe-at", "12", "--fill", "flat", "--chain", "-o",
                    str(tmp_path / "out"), "--video", str(tmp_path / "out.mp4"), "--resolution", "128")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "12 frames colored" in result.output
    assert count_frames(str(tmp_path / "out.mp4")) == 12  # colored outward from both ends, assembled in order
    # The last frame was painted as the second keyframe: flat fill with tracking carries its colors onto it.
    truth = np.asarray(Image.open(last).convert("RGB")).astype(int)
    colored = np.asarray(Image.open(tmp_path / "out" / "frame12.png").convert("RGB")).astype(int)
    assert np.abs(colored - truth).mean() < 12


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--keyframe-at", "1", "--keyframe-at", "2"], "--keyframe-at was given 2 times for 1 --reference"),
        (["--keyframe-at", "13"], "is placed on frame 13, but the shot has 12 frames"),
        (["-r", str(SAMPLE / "key.png")], "several --reference need --keyframe-at"),
    ],
)
def test_keyframe_placement_errors_are_usage_errors(tmp_path, extra, message):
    result = invoke(str(SAMPLE / "frames"), "-r", str(SAMPLE / "key.png"), "-o", str(tmp_path / "out"), *extra)
    assert result.exit_code == 2
    assert message in result.output
    assert not list((tmp_path).glob("out/*.png"))
