from __future__ import annotations

import tempfile
import uuid
from fractions import Fraction
from pathlib import Path

import fsspec
import numpy as np
import pytest

from pipeline.video import (
    CODECS,
    VideoError,
    VideoFeed,
    VideoWriter,
    count_frames,
    decode_video,
    encode_video,
    frame_rate,
    probe,
)


def smooth_frames(count: int, height: int, width: int) -> list[np.ndarray]:
    """Gradients that drift from frame to frame: the kind of content lossy codecs keep well."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(count):
        red = 128 + 100 * np.sin(xx / width * np.pi * 2 + i * 0.3)
        green = 128 + 100 * np.cos(yy / height * np.pi * 2 - i * 0.2)
        blue = (xx + yy) / (width + height) * 255
        frames.append(np.stack([red, green, blue], axis=-1).round().clip(0, 255).astype(np.uint8))
    return frames


def noise_frames(count: int, height: int, width: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def test_h264_odd_size_is_padded_to_even(tmp_path: Path) -> None:
    # 4:2:0 video cannot hold odd sizes: 65x47 is stored as 66x48, the extra column and row copying the edge.
    path = str(tmp_path / "shot.mp4")
    frames = smooth_frames(10, 47, 65)
    assert encode_video(frames, path, fps=24, codec="h264") == 10

    info = probe(path)
    assert (info.width, info.height, info.codec, info.pix_fmt) == (66, 48, "h264", "yuv420p")
    assert info.fps == pytest.approx(24)
    decoded = list(decode_video(path))
    assert count_frames(path) == len(decoded) == 10
    for original, frame in zip(frames, decoded, strict=True):
        assert frame.shape == (48, 66, 3) and frame.dtype == np.uint8
        assert np.abs(frame[:47, :65].astype(int) - original).mean() < 6
        assert np.abs(frame[:47, 65].astype(int) - original[:, 64]).mean() < 6  # replicated edge column
        assert np.abs(frame[47, :65].astype(int) - original[46]).mean() < 6  # replicated edge row
    assert [p.name for p in tmp_path.iterdir()] == ["shot.mp4"]  # the temporary file was renamed


def test_h264_even_size_kept(tmp_path: Path) -> None:
    path = str(tmp_path / "shot.mkv")
    encode_video(smooth_frames(3, 32, 48), path)
    assert (probe(path).width, probe(path).height) == (48, 32)
    assert count_frames(path) == 3  # MKV records no frame count: counted by decoding


def test_prores_4444_round_trip(tmp_path: Path) -> None:
    # Several encodes: FFmpeg's prores_ks corrupted 8-pixel runs at random when the width was not a multiple of 16.
    for attempt in range(4):
        path = str(tmp_path / f"shot{attempt}.mov")
        frames = smooth_frames(6, 47, 65)
        encode_video(frames, path, fps=25, codec="prores")
        info = probe(path)
        # The width is padded to a multiple of 16 by repeating the last column; odd heights stay as they are.
        assert (info.width, info.height, info.codec) == (80, 47, "prores")
        assert info.pix_fmt.startswith("yuv444p")
        decoded = list(decode_video(path))
        assert len(decoded) == 6
        for original, frame in zip(frames, decoded, strict=True):
            assert np.abs(frame[:, :65].astype(int) - original).max() <= 2
            assert np.abs(frame[:, 65:].astype(int) - original[:, -1:]).max() <= 2


def test_ffv1_is_lossless(tmp_path: Path) -> None:
    path = str(tmp_path / "shot.mkv")
    frames = noise_frames(5, 33, 41)  # noise: any loss would show
    encode_video(iter(frames), path, codec="ffv1")
    assert probe(path).codec == "ffv1"
    decoded = list(decode_video(path))
    assert len(decoded) == count_frames(path) == 5
    for original, frame in zip(frames, decoded, strict=True):
        assert np.array_equal(frame, original)


def test_bad_codec_name_lists_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'h265'.*h264, prores, ffv1"):
        encode_video(smooth_frames(1, 8, 8), str(tmp_path / "x.mp4"), codec="h265")
    assert set(CODECS) == {"h264", "prores", "ffv1"}


@pytest.mark.parametrize(("codec", "name"), [("ffv1", "x.mov"), ("prores", "x.mp4"), ("h264", "x.avi")])
def test_container_must_fit_codec(tmp_path: Path, codec: str, name: str) -> None:
    with pytest.raises(ValueError, match=f"{name}.*needs a file ending in"):
        VideoWriter(str(tmp_path / name), codec=codec)


def test_mismatched_frame_size_names_the_index(tmp_path: Path) -> None:
    path = tmp_path / "shot.mp4"
    frames = smooth_frames(2, 24, 32) + smooth_frames(1, 24, 30)
    with pytest.raises(VideoError, match=r"frame 2 is 30x24, but frame 0 was 32x24"):
        encode_video(frames, str(path))
    assert list(tmp_path.iterdir()) == []  # neither a partial video nor its temporary file


@pytest.mark.parametrize(
    "bad", [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8)]
)
def test_frames_must_be_rgb_uint8(tmp_path: Path, bad: np.ndarray) -> None:
    with pytest.raises(VideoError, match=r"frame 1 must be uint8 \(H, W, 3\)"):
        encode_video([np.zeros((8, 8, 3), np.uint8), bad], str(tmp_path / "x.mkv"), codec="ffv1")
    assert list(tmp_path.iterdir()) == []


def test_no_frames_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="no frames"):
        encode_video([], str(tmp_path / "x.mp4"))
    assert list(tmp_path.iterdir()) == []


def test_failed_encode_keeps_the_old_video(tmp_path: Path) -> None:
    path = str(tmp_path / "shot.mkv")
    encode_video(noise_frames(2, 8, 8), path, codec="ffv1")
    with pytest.raises(RuntimeError, match="worker died"), VideoWriter(path, codec="ffv1") as writer:
        writer.write(np.zeros((8, 8, 3), np.uint8))
        raise RuntimeError("worker died")
    assert count_frames(path) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["shot.mkv"]


def test_a_feed_encodes_in_order_holding_the_last_frame_for_a_missing_one(tmp_path: Path) -> None:
    path = str(tmp_path / "shot.mkv")
    frames = noise_frames(4, 16, 24)
    feed = VideoFeed(VideoWriter(path, codec="ffv1"), depth=1)
    for frame in (None, frames[0], frames[1], None, frames[2], smooth_frames(1, 8, 12)[0], frames[3]):
        feed.write(frame)  # nothing before the first frame; a smaller frame is scaled to the video's size
    feed.close()
    decoded = list(decode_video(path))
    assert len(decoded) == 6
    for expected, frame in zip([frames[0], frames[1], frames[1], frames[2]], decoded, strict=False):
        assert np.array_equal(frame, expected)
    assert decoded[4].shape == (16, 24, 3) and np.array_equal(decoded[5], frames[3])


def test_a_feed_raises_the_encoders_error_at_close_and_leaves_no_video(tmp_path: Path) -> None:
    feed = VideoFeed(VideoWriter(str(tmp_path / "shot.mkv"), codec="ffv1"))
    feed.write(np.zeros((8, 8, 3), np.uint8))
    feed.write(np.zeros((8, 8), np.uint8))  # not RGB: the encoder thread fails on it
    feed.write(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(VideoError, match=r"frame 1 must be uint8 \(H, W, 3\)"):
        feed.close()
    assert list(tmp_path.iterdir()) == []


def test_an_aborted_feed_leaves_no_video(tmp_path: Path) -> None:
    feed = VideoFeed(VideoWriter(str(tmp_path / "shot.mkv"), codec="ffv1"))
    feed.write(np.zeros((8, 8, 3), np.uint8))
    feed.abort()
    assert list(tmp_path.iterdir()) == []


def test_writer_after_close(tmp_path: Path) -> None:
    writer = VideoWriter(str(tmp_path / "x.mkv"), codec="ffv1")
    writer.write(np.zeros((4, 4, 3), np.uint8))
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(VideoError, match="already closed"):
        writer.write(np.zeros((4, 4, 3), np.uint8))
    assert writer.frames_written == 1 and writer.size == (4, 4)


def test_frame_rate() -> None:
    assert frame_rate(23.976) == Fraction(24000, 1001)
    assert frame_rate(29.97) == Fraction(30000, 1001)
    assert frame_rate(25) == 25
    assert frame_rate(12.5) == Fraction(25, 2)
    with pytest.raises(ValueError, match="positive"):
        frame_rate(0)


def test_ntsc_rate_stored_exactly(tmp_path: Path) -> None:
    path = str(tmp_path / "x.mov")
    encode_video(smooth_frames(2, 16, 16), path, fps=23.976)
    assert probe(path).fps == pytest.approx(24000 / 1001, abs=1e-9)


def test_unreadable_video_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(VideoError, match=r"bad\.mp4"):
        count_frames(str(bad))
    with pytest.raises(VideoError, match=r"missing\.mp4.*does not exist"):
        list(decode_video(str(tmp_path / "missing.mp4")))


def test_s3_round_trip(s3_server: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the local encode happens
    options = s3_server["storage_options"]
    url = f"s3://{s3_server['bucket']}/{uuid.uuid4().hex}/videos/shot.mkv"
    frames = noise_frames(4, 20, 30)
    encode_video(frames, url, codec="ffv1", storage_options=options)

    assert list(tmp_path.iterdir()) == []  # the local temporary file is gone after the upload
    assert fsspec.filesystem("s3", **options).exists(url)
    assert count_frames(url, options) == 4
    assert probe(url, options).width == 30
    for original, frame in zip(frames, decode_video(url, options), strict=True):
        assert np.array_equal(frame, original)
