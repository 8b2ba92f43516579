"""What inkpaint writes can be trusted: no file lands outside its place, and no damaged file passes as intact.

One case each, through the CLI as a user runs it: a name derived from a spec that would leave the output folder,
an output folder that is the frames folder under another spelling or through a symbolic link, outputs damaged
between two runs, an output folder copied elsewhere and verified there, symbolically linked frames, and the
temporaries a killed run leaves. The colored outputs two tests start from are made once per module (`colored`,
`episode`) and copied before anything is changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from jobs.manifest import FRAME_TABLE_NAME, read_records, read_table
from pipeline.cuts import split_sequence
from pipeline.frames import list_frames
from pipeline.shot import FrameRecord
from pipeline.video import decode_video
from tests.reliability.cli_runs import KEY, SAMPLE, color_shot, copy_sample_frames, invoke

ROOT = Path(__file__).resolve().parents[2]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under a folder (links followed) by its path relative to the folder, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def frame_rows(output: Path) -> dict[str, FrameRecord]:
    """The shot's frames table, as stored, by input file name."""
    return {row.frame.rsplit("/", 1)[-1]: row for row in read_records(str(output / FRAME_TABLE_NAME), FrameRecord)}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def decodes_in_color(path: Path) -> bool:
    """The file is a whole image of the sample's size with clearly colored pixels (not line art)."""
    with Image.open(path) as image:
        image.load()
        rgb = np.asarray(image.convert("RGB")).astype(int)
    return rgb.shape == (300, 400, 3) and float((rgb.std(axis=2) > 20).mean()) > 0.05


def write_spec(folder: Path, spec: dict) -> Path:
    path = folder / "episode.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def colored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample shot colored once (12 frames); tests copy it before changing anything."""
    output = tmp_path_factory.mktemp("colored") / "out"
    result = color_shot(SAMPLE / "frames", output)
    assert result.exit_code == 0, result.output
    return output


@pytest.fixture(scope="module")
def episode(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An episode of two shots (frames 1-3 and 4-6 of the sample) colored once; returns its folder, holding
    lines/, key.png and colored/."""
    root = tmp_path_factory.mktemp("episode")
    copy_sample_frames(root / "lines" / "a", (1, 2, 3))
    copy_sample_frames(root / "lines" / "b", (4, 5, 6))
    shutil.copy(KEY, root / "key.png")
    spec = write_spec(root, episode_spec("colored"))
    result = invoke("run", spec)
    assert result.exit_code == 0, result.output
    return root


def episode_spec(output: str) -> dict:
    return {"episode": "ep-writes", "output": output,
            "shots": [{"name": "a", "frames": "lines/a"}, {"name": "b", "frames": "lines/b"}],
            "keyframes": [{"name": "key", "image": "key.png", "shots": ["a", "b"]}],
            "resolution": 128, "video": None}  # fmt: skip


# --- 1. names derived from a spec stay inside the output -------------------------------------------------------


@pytest.mark.parametrize("prefix", ["../../escaped_", "sub/shot", ".hidden", "..\\escaped_"])
def test_a_sequence_name_prefix_cannot_write_outside_the_output(tmp_path, prefix):
    job = tmp_path / "studio" / "job"
    copy_sample_frames(job / "lines", (1, 2, 3, 4))
    shutil.copy(KEY, job / "key.png")
    spec = write_spec(job, {"episode": "ep", "output": "colored", "resolution": 128, "video": None,
                            "sequence": {"frames": "lines", "cuts": [2], "name_prefix": prefix},
                            "keyframes": [{"name": "key", "image": "key.png"}]})  # fmt: skip
    before = snapshot(tmp_path)
    for command in ("validate", "run"):
        result = invoke(command, spec)
        assert result.exit_code == 2, f"{command}: {result.output}"
        assert "sequence.name_prefix" in result.output and repr(prefix) in result.output, result.output
    assert snapshot(tmp_path) == before  # nothing written, anywhere
    with pytest.raises(ValueError, match="name prefix"):
        split_sequence([str(job / "lines" / f"frame{i}.png") for i in (1, 2, 3, 4)], [2], prefix)


# --- 2. the output is never the frames folder, however it is spelled ----------------------------------------------


@pytest.mark.parametrize("spelling", ["./in/", "absolute", "link-to-in", "frame-links-into-output"])
def test_an_output_that_would_overwrite_the_line_art_is_refused(tmp_path, monkeypatch, spelling):
    monkeypatch.chdir(tmp_path)
    copy_sample_frames(tmp_path / "in", (1, 2, 3))
    output = {"./in/": "./in/", "absolute": str(tmp_path / "in"), "link-to-in": "link"}.get(spelling, "out")
    (tmp_path / "link").symlink_to("in")
    if spelling == "frame-links-into-output":
        # The line art of frame 1 lives in the output folder; the frames folder links to it.
        copy_sample_frames(tmp_path / "out", (1,))
        (tmp_path / "in" / "frame1.png").unlink()
        (tmp_path / "in" / "frame1.png").symlink_to(tmp_path / "out" / "frame1.png")
    before = snapshot(tmp_path)
    result = color_shot("in", output, "--no-resume")
    assert result.exit_code == 2, result.output
    assert "would overwrite" in result.output and repr(output) in result.output, result.output
    assert snapshot(tmp_path) == before  # not one line-art file replaced, nothing added


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_spec_whose_output_links_to_the_frames_folder_is_refused(tmp_path, command):
    copy_sample_frames(tmp_path / "lines", (1, 2))
    shutil.copy(KEY, tmp_path / "key.png")
    (tmp_path / "colored").symlink_to("lines")
    spec = write_spec(tmp_path, {**episode_spec("colored"), "shots": [{"name": "a", "frames": "lines"}],
                                 "keyframes": [{"name": "key", "image": "key.png", "shots": ["a"]}]})  # fmt: skip
    before = snapshot(tmp_path)
    result = invoke(command, spec)
    assert result.exit_code == 2, result.output
    assert "output:" in result.output and "shots[0].frames" in result.output
    assert f"it resolves to {os.path.realpath(tmp_path / 'lines')!r}" in result.output  # where the link leads
    assert snapshot(tmp_path) == before


def test_an_output_folder_inside_the_frames_folder_is_allowed(tmp_path):
    """Frames are the folder's own files, so a subfolder receiving the colored frames overwrites none of them."""
    from jobs.shot import check_shot
    from model.checkpoint import DEFAULT_WEIGHTS
    from pipeline.shot import Shot, ShotOptions

    frames = copy_sample_frames(tmp_path / "in", (1, 2))
    shot = Shot("in", str(frames), str(KEY), str(frames / "colored"))
    assert check_shot(shot, ShotOptions(resolution=128), str(DEFAULT_WEIGHTS)) == 2


# --- 3. a rerun keeps only the outputs still as they were written --------------------------------------------------


@pytest.mark.slow
def test_a_rerun_recolors_damaged_outputs_and_records_only_what_it_wrote(colored, tmp_path):
    output = tmp_path / "out"
    shutil.copytree(colored, output)
    frame3 = (output / "frame3.png").read_bytes()
    (output / "frame3.png").write_bytes(frame3[: len(frame3) // 2])  # truncated
    shutil.copy(KEY, output / "frame5.png")  # a whole PNG, but not the one written
    frame8 = bytearray((output / "frame8.png").read_bytes())
    frame8[len(frame8) // 2] ^= 0xFF  # one byte changed, the size kept
    (output / "frame8.png").write_bytes(bytes(frame8))
    result = color_shot(SAMPLE / "frames", output)
    assert result.exit_code == 0, result.output
    assert "3 frames colored, 9 already done" in result.output
    rows = frame_rows(output)
    assert sorted(name for name, row in rows.items() if row.status == "written") == [
        "frame3.png", "frame5.png", "frame8.png"]  # fmt: skip
    for name, row in rows.items():
        png = output / name
        assert decodes_in_color(png), name
        assert (row.bytes, row.sha256) == (png.stat().st_size, sha256(png)), name
    assert sha256(output / "frame5.png") != sha256(KEY)
    verified = invoke("verify", output)
    assert verified.exit_code == 0 and "OK: 12 of 12" in verified.output, verified.output


@pytest.mark.slow
def test_an_episode_rerun_recolors_a_damaged_frame_instead_of_calling_its_shot_complete(episode, tmp_path):
    # The episode's output copied here, its inputs left where they are: the same inputs, so the same input hashes.
    shutil.copytree(episode / "colored", tmp_path / "colored")
    spec = {**episode_spec("colored"), "shots": [{"name": name, "frames": str(episode / "lines" / name)}
                                                 for name in ("a", "b")]}  # fmt: skip
    spec["keyframes"][0]["image"] = str(episode / "key.png")
    write_spec(tmp_path, spec)
    damaged = tmp_path / "colored" / "b" / "frame5.png"
    damaged.write_bytes(damaged.read_bytes()[:100])
    kept = sha256(tmp_path / "colored" / "a" / "frame2.png")
    result = invoke("run", tmp_path / "episode.yaml")
    assert result.exit_code == 0, result.output
    assert "1 shots colored (1 frames), 1 already complete, 0 failed" in result.output
    assert decodes_in_color(damaged)
    assert sha256(tmp_path / "colored" / "a" / "frame2.png") == kept
    assert frame_rows(tmp_path / "colored" / "b")["frame5.png"].sha256 == sha256(damaged)
    verified = invoke("verify", tmp_path / "colored")
    assert verified.exit_code == 0 and "OK: 6 of 6 frames in 2 shots" in verified.output, verified.output


# --- 4. verify checks the folder it is given -----------------------------------------------------------------------


@pytest.mark.slow
def test_verify_checks_the_folder_it_is_given_not_the_paths_recorded_at_render_time(colored, episode, tmp_path):
    shot_copy = tmp_path / "shot"
    shutil.copytree(colored, shot_copy)
    damaged = bytearray((shot_copy / "frame3.png").read_bytes())
    damaged[-30] ^= 0xFF
    (shot_copy / "frame3.png").write_bytes(bytes(damaged))
    (shot_copy / "frame7.png").unlink()
    result = invoke("verify", shot_copy)
    assert result.exit_code == 1, result.output
    assert "2 PROBLEMS: 10 of 12 frames" in result.output
    assert f"{shot_copy / 'frame3.png'}: checksum differs" in result.output
    assert f"{shot_copy / 'frame7.png'}: missing" in result.output
    assert {row.output for row in frame_rows(shot_copy).values()} == {f"frame{i}.png" for i in range(1, 13)}
    # A table written before outputs were stored relative holds the absolute paths of the original: still the copy.
    table = read_table(str(shot_copy / FRAME_TABLE_NAME))
    old = [str(colored / name) if name else "" for name in table.column("output").to_pylist()]
    pq.write_table(table.set_column(table.schema.get_field_index("output"), "output", pa.array(old)),
                   shot_copy / FRAME_TABLE_NAME)  # fmt: skip
    assert invoke("verify", shot_copy).output == result.output

    episode_copy = tmp_path / "episode"
    shutil.copytree(episode / "colored", episode_copy)
    (episode_copy / "a" / "frame1.png").unlink()
    result = invoke("verify", episode_copy)
    assert result.exit_code == 1 and f"{episode_copy / 'a' / 'frame1.png'}: missing" in result.output, result.output
    assert "1 PROBLEMS: 5 of 6 frames in 2 shots" in result.output
    assert invoke("verify", colored).exit_code == 0  # the original is untouched and intact


# --- 5. symbolically linked frames -----------------------------------------------------------------------------


@pytest.mark.slow
def test_symlinked_frames_are_colored_and_a_broken_link_fails_by_name(tmp_path):
    art = copy_sample_frames(tmp_path / "art", (3,))
    shot = copy_sample_frames(tmp_path / "shot", (1, 2, 5))
    (shot / "frame3.png").symlink_to(art / "frame3.png")  # a drawing kept in another folder
    (shot / "frame4.png").symlink_to("frame2.png")  # a held drawing: the same file again
    (shot / "frame6.png").symlink_to(art / "gone.png")  # broken
    (shot / "folder.png").symlink_to(art, target_is_directory=True)  # a folder, not a frame
    assert [Path(url).name for url in list_frames(str(shot))] == [f"frame{i}.png" for i in range(1, 7)]
    before = snapshot(tmp_path / "art")
    result = color_shot(shot, tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert "5 frames colored, 0 already done, 1 failed, of 6" in result.output
    rows = frame_rows(tmp_path / "out")
    assert rows["frame6.png"].status == "failed"
    assert "frame6.png" in rows["frame6.png"].reason and "broken symbolic link" in rows["frame6.png"].reason
    for index in (3, 4):
        assert rows[f"frame{index}.png"].status == "written"
        assert decodes_in_color(tmp_path / "out" / f"frame{index}.png")
    assert (shot / "frame3.png").is_symlink() and snapshot(tmp_path / "art") == before


def test_a_linked_frame_stamps_its_shots_input_hash_with_the_drawing_it_links_to(tmp_path):
    """A rerun skips a shot whose input hash is unchanged: a linked frame's drawing redrawn must change it."""
    from jobs.plan import plan_episode
    from jobs.spec import load_spec

    art = copy_sample_frames(tmp_path / "art", (3,))
    copy_sample_frames(tmp_path / "lines" / "a", (1, 2))
    (tmp_path / "lines" / "a" / "frame3.png").symlink_to(art / "frame3.png")
    shutil.copy(KEY, tmp_path / "key.png")
    spec = write_spec(tmp_path, {**episode_spec("colored"), "shots": [{"name": "a", "frames": "lines/a"}],
                                 "keyframes": [{"name": "key", "image": "key.png", "shots": ["a"]}]})  # fmt: skip
    before = plan_episode(load_spec(str(spec))).shots[0].input_hash
    drawing = bytearray((art / "frame3.png").read_bytes())
    drawing[-40] ^= 0xFF  # redrawn: other bytes, the same size, a later time
    (art / "frame3.png").write_bytes(bytes(drawing))
    stamp = (art / "frame3.png").stat().st_mtime + 10
    os.utime(art / "frame3.png", (stamp, stamp))
    assert plan_episode(load_spec(str(spec))).shots[0].input_hash != before


# --- 6. temporaries a killed run left --------------------------------------------------------------------------

KILLED_WRITER = """
import os, signal, sys
import numpy as np
from pipeline import outputs
from pipeline.video import VideoWriter

video, frame = sys.argv[1], sys.argv[2]
writer = VideoWriter(video)
for level in range(60):  # enough frames for the encoder to write its first packets: the temporary is on disk
    writer.write(np.full((300, 400, 3), level, np.uint8))
os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)  # killed between a PNG's write and rename
outputs.write_frame(np.zeros((300, 400, 3), np.uint8), frame)
"""


@pytest.mark.slow
def test_a_rerun_removes_the_temporaries_a_killed_run_left_and_nothing_else(colored, tmp_path):
    output = tmp_path / "out"
    shutil.copytree(colored, output)
    video = tmp_path / "clip.mp4"
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(video), str(output / "frame4.png")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = sorted(p.name for p in [*tmp_path.iterdir(), *output.iterdir()] if ".tmp-" in p.name)
    assert [name.split(".tmp-")[0] for name in left] == [".clip.mp4", ".frame4.png"], left
    others = [tmp_path / ".clip.mp4.tmp-notes", tmp_path / f".other.mp4.tmp-{'0' * 32}",
              tmp_path / f"clip.mp4.tmp-{'1' * 32}", output / f".frame4.png.tmp-{'2' * 31}"]  # fmt: skip
    for path in others:
        path.write_text("not inkpaint's")
    result = color_shot(SAMPLE / "frames", output, "--video", video)
    assert result.exit_code == 0, result.output
    assert sum(1 for _ in decode_video(str(video))) == 12
    after = sorted(p for p in [*tmp_path.iterdir(), *output.iterdir()] if ".tmp-" in p.name)
    assert after == sorted(others)
    assert all(path.read_text() == "not inkpaint's" for path in others)
    assert not os.path.exists(output / ".frame4.png")
