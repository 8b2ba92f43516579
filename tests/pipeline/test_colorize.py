"""ShotColorizer in-process (no Ray): names, sizes, modes, lines, resume, atomic writes, per-frame records; a shot
leaves the colorizer as it was."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import frames as frames_module
from pipeline.colorize import ShotColorizer
from pipeline.outputs import WrittenFile
from pipeline.regions import keyframe_palette, segment_regions
from pipeline.shot import Shot, ShotOptions
from pipeline.video import decode_video

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "wave"


@pytest.fixture(scope="module")
def colorizer() -> ShotColorizer:
    return ShotColorizer.from_weights()


@pytest.fixture
def mixed_shot(tmp_path) -> Path:
    """Sample frames re-saved in mixed modes and formats, at an odd size, with names that need natural sorting."""
    folder = tmp_path / "frames"
    folder.mkdir()
    modes = ["L", "RGB", "RGBA", "P", "LA", "I;16"]
    for index in range(1, 7):
        line = Image.open(SAMPLE / "frames" / f"frame{index}.png").convert("L").crop((0, 0, 333, 251))
        mode = modes[index - 1]
        if mode == "I;16":
            image = Image.fromarray(np.asarray(line).astype(np.uint16) * 257)
            image.save(folder / f"shot_{index}.tif")
        else:
            line.convert(mode).save(folder / f"shot_{index}.png")
    return folder


def run(colorizer, frames: Path, out: Path, **options):
    shot = Shot("s", str(frames), str(SAMPLE / "key.png"), str(out))
    return colorizer.run(shot, ShotOptions(**options))


def test_mixed_modes_come_back_with_their_names_sizes_and_lines(colorizer, mixed_shot, tmp_path):
    result = run(colorizer, mixed_shot, tmp_path / "out", batch_size=4)
    assert result.status == "ok" and result.written == 6
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [f"shot_{i}.png" for i in range(1, 7)]
    assert [Path(r.frame).stem for r in result.records] == [f"shot_{i}" for i in range(1, 7)]  # natural order
    for record in result.records:
        colored = np.asarray(Image.open(record.output))
        assert colored.shape == (251, 333, 3)
        assert record.bytes == Path(record.output).stat().st_size
    first = np.asarray(Image.open(tmp_path / "out" / "shot_1.png")).astype(int)
    line = np.asarray(Image.open(SAMPLE / "frames" / "frame1.png").convert("L"))[:251, :333]
    assert first[line < 60].max(axis=1).mean() < 80


def test_batch_size_does_not_change_the_result(colorizer, tmp_path):
    one = run(colorizer, SAMPLE / "frames", tmp_path / "one", batch_size=1)
    four = run(colorizer, SAMPLE / "frames", tmp_path / "four", batch_size=5)
    assert one.written == four.written == 12
    for name in ("frame1.png", "frame11.png"):
        a = np.asarray(Image.open(tmp_path / "one" / name)).astype(int)
        b = np.asarray(Image.open(tmp_path / "four" / name)).astype(int)
        assert np.abs(a - b).max() <= 2


def test_gray_files_read_as_gray_color_the_same_as_the_same_art_saved_in_rgb(colorizer, tmp_path):
    rgb_frames = tmp_path / "rgb"
    rgb_frames.mkdir()
    for frame in (SAMPLE / "frames").glob("*.png"):
        Image.open(frame).convert("RGB").save(rgb_frames / frame.name)
    gray = run(colorizer, SAMPLE / "frames", tmp_path / "gray")  # the sample is saved in mode L
    rgb = run(colorizer, rgb_frames, tmp_path / "from_rgb")
    assert gray.written == rgb.written == 12
    for index in (1, 6, 12):
        name = f"frame{index}.png"
        assert np.array_equal(np.asarray(Image.open(tmp_path / "gray" / name)),
                              np.asarray(Image.open(tmp_path / "from_rgb" / name)))  # fmt: skip


def test_resume_skips_frames_already_written(colorizer, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = run(colorizer, SAMPLE / "frames", out)
    recorded = {Path(r.output).name: WrittenFile(r.bytes, r.sha256) for r in first.records}
    (out / "frame4.png").unlink()
    (out / "frame6.png").write_bytes((out / "frame6.png").read_bytes()[:-20])  # damaged since: colored again
    before = (out / "frame9.png").stat().st_mtime_ns
    shot = Shot("s", str(SAMPLE / "frames"), str(SAMPLE / "key.png"), str(out), recorded_outputs=recorded)
    result = colorizer.run(shot, ShotOptions())
    assert (result.written, result.resumed) == (2, 10)
    assert (out / "frame9.png").stat().st_mtime_ns == before
    assert {r.status for r in result.records} == {"written", "resumed"}
    assert all((r.bytes, r.sha256) == recorded[Path(r.output).name] for r in result.records if r.status == "resumed")
    assert run(colorizer, SAMPLE / "frames", out).resumed == 0  # nothing recorded: no file is trusted


@pytest.mark.parametrize("position", [None, 5])
def test_frames_colored_on_resume_are_byte_for_byte_those_of_an_uninterrupted_run(colorizer, tmp_path, position):
    """Carried colors chain from frame to frame: the frames colored again are carried through those kept."""
    shot = Shot("s", str(SAMPLE / "frames"), str(SAMPLE / "key.png"), str(tmp_path), keyframe_position=position)
    first = colorizer.run(shot, ShotOptions(color_source="combined"))
    whole = {path.name: path.read_bytes() for path in tmp_path.glob("*.png")}
    recorded = {Path(r.output).name: WrittenFile(r.bytes, r.sha256) for r in first.records}
    redo = ["frame1.png", "frame8.png", "frame9.png", "frame12.png"]
    for name in redo:
        (tmp_path / name).unlink()
    again = colorizer.run(replace(shot, recorded_outputs=recorded), ShotOptions(color_source="combined"))
    assert (again.written, again.resumed) == (4, 8)
    assert {name: (tmp_path / name).read_bytes() == whole[name] for name in redo} == dict.fromkeys(redo, True)


@pytest.mark.slow
def test_a_crash_mid_write_leaves_no_partial_png(colorizer, tmp_path, monkeypatch):
    real_replace = os.replace

    def crash_on_frame5(source, target):
        if str(target).endswith("frame5.png"):
            raise OSError("disk vanished")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", crash_on_frame5)
    result = run(colorizer, SAMPLE / "frames", tmp_path / "out")
    assert result.status == "partial" and result.written == 11
    assert [f.frame.rsplit("/", 1)[-1] for f in result.failures] == ["frame5.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if "frame5" in p.name) == []


def test_a_shot_leaves_the_colorizer_as_it_was(colorizer, tmp_path):
    before = dict(vars(colorizer))
    assert run(colorizer, SAMPLE / "frames", tmp_path / "out", color_source="model", chain=True).status == "ok"
    assert vars(colorizer) == before


def test_missing_reference_is_a_failed_shot_not_an_exception(colorizer, tmp_path):
    shot = Shot("s", str(SAMPLE / "frames"), str(tmp_path / "missing.png"), str(tmp_path / "out"))
    result = colorizer.run(shot, ShotOptions())
    assert result.status == "failed" and "missing.png" in result.error


def test_frames_are_colored_outward_from_the_keyframe_and_the_video_stays_in_order(colorizer, tmp_path, monkeypatch):
    read_order: list[str] = []
    original = frames_module.read_frame

    def logged(url, *args, **kwargs):
        read_order.append(Path(url).name)
        return original(url, *args, **kwargs)

    monkeypatch.setattr(frames_module, "read_frame", logged)
    video = tmp_path / "shot.mkv"
    shot = Shot("s", str(SAMPLE / "frames"), str(SAMPLE / "key.png"), str(tmp_path / "out"), str(video),
                keyframe_position=4)  # fmt: skip
    result = colorizer.run(shot, ShotOptions(codec="ffv1", batch_size=2))
    assert result.status == "ok", result.summary()
    line_reads = [name for name in read_order if name.startswith("frame")]
    assert line_reads[:5] == ["frame5.png", "frame6.png", "frame4.png", "frame7.png", "frame3.png"]
    assert [record.index for record in result.records] == list(range(12))  # recorded in frame order
    decoded = list(decode_video(str(video)))
    assert len(decoded) == 12
    for index, frame in enumerate(decoded):  # FFV1 is lossless: the video's frames are the PNGs, in frame order
        assert np.array_equal(frame, np.asarray(Image.open(tmp_path / "out" / f"frame{index + 1}.png"))), index


def test_flat_fill_gives_each_closed_region_one_color(colorizer, tmp_path):
    # The model's colors alone (the carried colors are the keyframe's, flat already: tests/pipeline/
    # test_correspondence.py).
    soft = run(colorizer, SAMPLE / "frames", tmp_path / "soft", resolution=128, fill="soft", color_source="model")
    flat = run(colorizer, SAMPLE / "frames", tmp_path / "flat", resolution=128, fill="flat", color_source="model")
    assert soft.status == flat.status == "ok"
    lines = np.asarray(Image.open(SAMPLE / "frames" / "frame5.png").convert("L"))
    labels = segment_regions(lines)
    paper = lines == 255  # away from the lines' anti-aliased edges, which the multiply darkens
    # Regions walled all round by lines (not the background, which leaks into the open arm and shirt): those the
    # flat fill may not split.
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    closed = np.setdiff1d(np.unique(labels[paper]), edge)
    assert len(closed) >= 3
    colors = {"soft": 0, "flat": 0}
    for fill in colors:
        image = np.asarray(Image.open(tmp_path / fill / "frame5.png")).reshape(-1, 3)
        for region in closed:
            inside = image[((labels == region) & paper).ravel()]
            if len(inside) >= 16:
                colors[fill] = max(colors[fill], len(np.unique(inside, axis=0)))
    assert colors["flat"] == 1  # every region of pure paper is one color
    assert colors["soft"] > 1  # which the model alone does not give


def test_palette_lock_paints_regions_only_in_the_keyframes_colors(colorizer, tmp_path):
    result = run(colorizer, SAMPLE / "frames", tmp_path / "locked", resolution=128, fill="flat", palette_lock=True,
                 color_source="model")  # fmt: skip
    assert result.status == "ok"
    palette = {tuple(color) for color in keyframe_palette(np.asarray(Image.open(SAMPLE / "key.png").convert("RGB")))}
    lines = np.asarray(Image.open(SAMPLE / "frames" / "frame7.png").convert("L"))
    labels = segment_regions(lines)
    sizes = np.bincount(labels.ravel())
    big_paper = (lines == 255) & (sizes[labels] >= 16) & (labels > 0)
    image = np.asarray(Image.open(tmp_path / "locked" / "frame7.png"))
    used = {tuple(color) for color in np.unique(image[big_paper], axis=0).tolist()}
    assert used and used <= palette


def test_a_shot_in_a_gcs_bucket_is_colored_as_it_is_on_disk(colorizer, gcs_server, tmp_path):
    """gs:// in and out through gcsfs, with the storage options a user passes: the bucket ends up with the very PNG
    bytes a local run writes (each one upload, no temporaries), a video of them, and a rerun there resumes."""
    import gcsfs

    storage = gcs_server["storage_options"]
    fs = gcsfs.GCSFileSystem(**storage)
    root = f"{gcs_server['bucket']}/{uuid.uuid4().hex}"
    for frame in (SAMPLE / "frames").iterdir():
        fs.put_file(str(frame), f"{root}/frames/{frame.name}")
    fs.put_file(str(SAMPLE / "key.png"), f"{root}/key.png")
    bucket_shot = Shot("s", f"gs://{root}/frames", f"gs://{root}/key.png", f"gs://{root}/out", f"gs://{root}/s.mkv")
    local_shot = Shot("s", str(SAMPLE / "frames"), str(SAMPLE / "key.png"), str(tmp_path / "out"))
    in_bucket = colorizer.run(bucket_shot, ShotOptions(codec="ffv1", storage_options=storage))
    local = colorizer.run(local_shot, ShotOptions())
    assert in_bucket.status == local.status == "ok", in_bucket.summary()
    assert in_bucket.written == local.written == 12

    fs.invalidate_cache()
    names = sorted(path.rpartition("/")[2] for path in fs.ls(f"{root}/out", detail=False))
    assert names == sorted(path.name for path in (tmp_path / "out").iterdir())
    for name in names:
        assert fs.cat_file(f"{root}/out/{name}") == (tmp_path / "out" / name).read_bytes(), name
    decoded = list(decode_video(f"gs://{root}/s.mkv", storage))
    for index, frame in enumerate(decoded):  # FFV1 is lossless: the video's frames are the local run's PNGs
        assert np.array_equal(frame, np.asarray(Image.open(tmp_path / "out" / f"frame{index + 1}.png"))), index
    assert len(decoded) == 12

    # Resume: the recorded files still there are kept, and the one removed is colored again, alike in both places.
    recorded = {Path(record.output).name: WrittenFile(record.bytes, record.sha256) for record in local.records}
    fs.rm_file(f"{root}/out/frame4.png")
    (tmp_path / "out" / "frame4.png").unlink()
    for shot, shot_storage in ((bucket_shot, storage), (local_shot, {})):
        again = colorizer.run(replace(shot, recorded_outputs=recorded), ShotOptions(storage_options=shot_storage))
        assert (again.written, again.resumed) == (1, 11)
    assert fs.cat_file(f"{root}/out/frame4.png") == (tmp_path / "out" / "frame4.png").read_bytes()
