"""Episodes end to end through a real local Ray: planning, keyframe assignment, results, resume, faults."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cli import main
from jobs.episode import run_episode
from jobs.manifest import results_table
from jobs.plan import plan_episode
from jobs.spec import load_spec
from pipeline.colorize import ShotColorizer
from pipeline.shot import Shot, ShotOptions
from tests.jobs.sample_episode import SHOTS, write_episode_spec

ROOT = Path(__file__).resolve().parents[2]


def output_files(output: Path) -> dict[str, list[str]]:
    """Every PNG written per shot folder (hidden temporary files included, to catch leftovers)."""
    return {shot: sorted(p.name for p in (output / shot).iterdir() if p.suffix == ".png" or p.name.startswith("."))
            for shot in SHOTS if (output / shot).exists()}  # fmt: skip


def expected_files() -> dict[str, list[str]]:
    return {shot: [f"{shot}_{i + 1:04d}.png" for i in range(frames)] for shot, (_, frames, _) in SHOTS.items()}


def mtimes(output: Path, shot: str) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (output / shot).glob("*.png")}


def test_plan_assigns_keyframes_as_tied_and_by_similarity(episode_inputs, tmp_path):
    plan = plan_episode(load_spec(str(write_episode_spec(episode_inputs, tmp_path / "out", tmp_path / "plan.yaml"))))
    by_shot = {shot.name: shot for shot in plan.shots}
    assert [s.name for s in plan.shots] == ["sh010", "sh020", "sh030"]
    assert by_shot["sh010"].keyframe == "fox" and by_shot["sh010"].position is None
    assert by_shot["sh020"].keyframe == "car" and by_shot["sh020"].position == 2  # sh020_0003.png is its third frame
    assert by_shot["sh030"].keyframe == "fox"  # nothing ties it: its line art is the fox's
    assert "similar" in by_shot["sh030"].reason
    assert [s.frame_count for s in plan.shots] == [6, 7, 5]
    table = plan.table()
    assert table.column("keyframe").to_pylist() == ["fox", "car", "fox"]
    assert len(set(table.column("input_hash").to_pylist())) == 3


@pytest.mark.slow
def test_a_shot_with_two_keyframes_is_colored_from_both(episode_inputs, tmp_path):
    last = episode_inputs / "keys" / "car_last.png"
    last.write_bytes((episode_inputs / "keys" / "car.png").read_bytes())
    keyframes = [
        {"name": "fox", "image": "keys/fox.png", "shots": ["sh010"]},
        {"name": "car", "image": "keys/car.png", "frame": "sh020_0003.png"},
        {"name": "car_last", "image": "keys/car_last.png", "frame": "sh020_0007.png"},
    ]
    output = tmp_path / "out"
    spec = write_episode_spec(episode_inputs, output, tmp_path / "two.yaml", keyframes=keyframes, video=None)
    plan = plan_episode(load_spec(str(spec)))
    sh020 = {shot.name: shot for shot in plan.shots}["sh020"]
    assert (sh020.keyframe, sh020.position) == ("car", 2)
    assert [(name, ref.url, ref.position) for name, ref in sh020.extras] == [("car_last", str(last), 6)]
    assert [(ref.url, ref.position) for ref in sh020.shot().references] == [
        (str(episode_inputs / "keys" / "car.png"), 2), (str(last), 6)
    ]  # fmt: skip
    assert "keyframes car at frame 2, car_last at frame 6: its frame sh020_0003.png" in plan.describe()
    assert plan.table().column("more_keyframes").to_pylist() == [[], ["car_last"], []]
    # The second keyframe is an input of the shot: changing it changes the shot's hash, and only that shot's.
    hashes = {shot.name: shot.input_hash for shot in plan.shots}
    Image.open(last).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(last)
    os.utime(last, ns=(time.time_ns(), time.time_ns() + 10**9))
    changed = {shot.name: shot.input_hash for shot in plan_episode(load_spec(str(spec))).shots}
    assert [name for name in hashes if hashes[name] != changed[name]] == ["sh020"]

    result = CliRunner().invoke(main, ["run", str(spec)])
    assert result.exit_code == 0, result.output
    assert len(list((output / "sh020").glob("*.png"))) == 7
    assert set(results_table(str(output)).column("weights_sha256").to_pylist()) == {plan.weights_sha256}
    assert len(plan.weights_sha256) == 64
    verified = CliRunner().invoke(main, ["verify", str(output)])
    assert verified.exit_code == 0, verified.output
    assert "OK: 18 of 18 frames in 3 shots" in verified.output
    (output / "sh030" / "sh030_0002.png").unlink()
    verified = CliRunner().invoke(main, ["verify", str(output)])
    assert verified.exit_code == 1 and f"{output}/sh030/sh030_0002.png: missing" in verified.output


def test_dry_run_prints_the_plan_and_writes_nothing(episode_inputs, tmp_path):
    spec = write_episode_spec(episode_inputs, tmp_path / "out", tmp_path / "dry.yaml")
    result = CliRunner().invoke(main, ["run", str(spec), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "episode ep-test: 3 shots, 18 frames" in result.output
    assert "sh020" in result.output and "keyframe car at frame 2" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_episode_runs_resumes_and_reruns_only_what_changed(episode_inputs, tmp_path):
    output = tmp_path / "out"
    spec = write_episode_spec(episode_inputs, output, tmp_path / "run.yaml")
    result = CliRunner().invoke(main, ["run", str(spec)])
    assert result.exit_code == 0, result.output
    assert output_files(output) == expected_files()
    for shot in SHOTS:
        with Image.open(output / shot / f"{shot}_0001.png") as image:
            assert image.size == (160, 120) and image.mode == "RGB"
        assert (output / f"{shot}.mp4").stat().st_size > 0
    table = results_table(str(output))
    assert table.column("shot").to_pylist() == ["sh010", "sh020", "sh030"]
    assert table.column("status").to_pylist() == ["ok"] * 3
    assert table.column("written").to_pylist() == [6, 7, 5]
    assert table.column("keyframe").to_pylist() == ["fox", "car", "fox"]

    # A rerun finds every shot complete and touches nothing.
    before = {shot: mtimes(output, shot) for shot in SHOTS}
    again = run_episode(plan_episode(load_spec(str(spec))))
    assert sorted(again.skipped) == ["sh010", "sh020", "sh030"] and again.results == []
    assert {shot: mtimes(output, shot) for shot in SHOTS} == before

    # Another working resolution changes the input hash of every shot: all are colored again.
    changed = write_episode_spec(episode_inputs, output, tmp_path / "run256.yaml", resolution=256)
    redo = run_episode(plan_episode(load_spec(str(changed))))
    assert redo.skipped == [] and sorted(r.shot for r in redo.results) == ["sh010", "sh020", "sh030"]
    assert all(r.status == "ok" for r in redo.results)


@pytest.mark.slow
def test_a_killed_run_rerun_completes_without_recoloring_finished_shots(episode_inputs, tmp_path, request):
    output = tmp_path / "out"
    spec = write_episode_spec(episode_inputs, output, tmp_path / "killed.yaml")
    # A killed run cannot remove its Ray's temp dir: give it one of its own (short, as Ray's socket paths need).
    ray_temp = tempfile.mkdtemp(prefix="ipk-")
    request.addfinalizer(lambda: shutil.rmtree(ray_temp, ignore_errors=True))
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "run", str(spec)], cwd=ROOT, start_new_session=True,
        env={**os.environ, "TMPDIR": ray_temp}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    results = output / "inkpaint-results"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (results.exists() and any(results.glob("*.parquet"))):
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the driver and the Ray it started, mid-episode
    process.wait()
    assert [p.name[:12] for p in Path(ray_temp).iterdir()] == ["inkpaint-ray"]  # its Ray's, left where we remove it
    finished = {p.stem for p in results.glob("*.parquet")}
    assert finished, "no shot finished before the deadline"
    stamps = {shot: mtimes(output, shot) for shot in finished}

    rerun = CliRunner().invoke(main, ["run", str(spec)])
    assert rerun.exit_code == 0, rerun.output
    assert {shot: mtimes(output, shot) for shot in finished} == stamps  # finished shots were not colored again
    assert output_files(output) == {shot: files for shot, files in expected_files().items()}  # none missing, none extra
    assert results_table(str(output)).column("status").to_pylist() == ["ok"] * 3


def shot_worker_pids() -> list[int]:
    """Processes Ray titled as ShotWorker actors ("ray::ShotWorker...")."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"ray::ShotWorker"):
                pids.append(int(entry.name))
    return pids


@pytest.mark.slow
def test_a_worker_killed_mid_shot_is_restarted_and_the_shot_redone(episode_inputs, tmp_path, monkeypatch):
    from jobs import runner

    output = tmp_path / "out"
    plan = plan_episode(load_spec(str(write_episode_spec(episode_inputs, output, tmp_path / "worker.yaml"))))
    killed: list[int] = []
    original = runner.drain

    def drain_and_kill_once(generator, shot, results, progress):
        if not killed:  # the first time the driver hears from a busy worker: kill that worker's process
            [pid] = shot_worker_pids()
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)
        return original(generator, shot, results, progress)

    monkeypatch.setattr(runner, "drain", drain_and_kill_once)
    episode = run_episode(plan)
    assert killed, "the worker was never killed"
    assert [r.status for r in episode.results] == ["ok"] * 3
    assert output_files(output) == expected_files()  # every frame once, no temporary leftovers
    assert np.asarray(Image.open(output / "sh010" / "sh010_0001.png")).shape == (120, 160, 3)
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)  # that worker process is really gone


@pytest.mark.slow
def test_an_episode_in_a_bucket(episode_inputs, s3_server, monkeypatch, tmp_path):
    """Frames and keyframes read from S3, frames, videos and results written back; keys only in the environment."""
    import s3fs

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server["endpoint_url"])
    fs = s3fs.S3FileSystem(**s3_server["storage_options"])
    root = f"{s3_server['bucket']}/episode"
    fs.put(str(episode_inputs / "lines"), f"{root}/lines", recursive=True)
    fs.put(str(episode_inputs / "keys"), f"{root}/keys", recursive=True)
    spec = {
        "episode": "ep-bucket",
        "output": f"s3://{root}/colored",
        "shots": [{"name": "sh010", "frames": f"s3://{root}/lines/sh010"},
                  {"name": "sh020", "frames": f"s3://{root}/lines/sh020"}],
        "keyframes": [{"name": "fox", "image": f"s3://{root}/keys/fox.png", "shots": ["sh010"]},
                      {"name": "car", "image": f"s3://{root}/keys/car.png", "shots": ["sh020"]}],
        "resolution": 128,
    }  # fmt: skip
    spec_url = f"s3://{root}/episode.json"
    fs.pipe(f"{root}/episode.json", json.dumps(spec).encode())

    result = CliRunner().invoke(main, ["run", spec_url])
    assert result.exit_code == 0, result.output
    fs.invalidate_cache()
    written = sorted(p.rpartition("/")[2] for p in fs.ls(f"{root}/colored/sh020"))
    assert written == ["inkpaint-frames.parquet"] + [f"sh020_{i:04d}.png" for i in range(1, 8)]
    colored = np.asarray(Image.open(io.BytesIO(fs.cat(f"{root}/colored/sh020/sh020_0003.png"))))
    assert colored.shape == (120, 160, 3)
    assert fs.size(f"{root}/colored/sh010.mp4") > 0 and fs.size(f"{root}/colored/sh020.mp4") > 0
    table = results_table(f"s3://{root}/colored")
    assert table.column("status").to_pylist() == ["ok", "ok"]
    assert "testing" not in json.dumps(table.to_pylist())  # no credential in the results


@pytest.mark.slow
def test_an_episode_in_a_gcs_bucket(episode_inputs, gcs_server, tmp_path):
    """gs:// through Ray workers, with the spec's storage_options: a shot read from the bucket and colored into it
    comes back with the very PNG bytes the same shot colored on disk gets, beside its video and results."""
    import gcsfs

    storage = gcs_server["storage_options"]
    fs = gcsfs.GCSFileSystem(**storage)
    root = f"{gcs_server['bucket']}/episode"
    lines = episode_inputs / "lines" / "sh020"
    for frame in lines.iterdir():
        fs.put_file(str(frame), f"{root}/lines/sh020/{frame.name}")
    fs.put_file(str(episode_inputs / "keys" / "car.png"), f"{root}/keys/car.png")
    spec = {
        "episode": "ep-gcs",
        "output": f"gs://{root}/colored",
        "shots": [{"name": "sh020", "frames": f"gs://{root}/lines/sh020"}],
        "keyframes": [{"name": "car", "image": f"gs://{root}/keys/car.png", "shots": ["sh020"]}],
        "resolution": 128,
        "storage_options": storage,
    }
    (tmp_path / "episode.json").write_text(json.dumps(spec))

    result = CliRunner().invoke(main, ["run", str(tmp_path / "episode.json")])
    assert result.exit_code == 0, result.output
    local = ShotColorizer.from_weights().run(
        Shot("sh020", str(lines), str(episode_inputs / "keys" / "car.png"), str(tmp_path / "local")),
        ShotOptions(resolution=128),
    )
    assert local.status == "ok", local.summary()
    fs.invalidate_cache()
    names = [f"sh020_{i:04d}.png" for i in range(1, 8)]
    assert sorted(p.rpartition("/")[2] for p in fs.ls(f"{root}/colored/sh020")) == ["inkpaint-frames.parquet", *names]
    for name in names:
        assert fs.cat_file(f"{root}/colored/sh020/{name}") == (tmp_path / "local" / name).read_bytes(), name
    assert fs.size(f"{root}/colored/sh020.mp4") > 0
    table = results_table(f"gs://{root}/colored", storage)
    assert table.column("status").to_pylist() == ["ok"]


def test_a_long_sequence_is_cut_into_shots_and_keyframes_follow_their_frames(episode_inputs, tmp_path):
    sequence = tmp_path / "act1"
    sequence.mkdir()
    number = 0
    for shot in SHOTS:  # the three shots back to back in one folder, numbered through
        for frame in sorted((episode_inputs / "lines" / shot).iterdir()):
            number += 1
            (sequence / f"act1_{number:04d}.png").write_bytes(frame.read_bytes())
    keyframes = [{"name": "fox", "image": "keys/fox.png"}, {"name": "car", "image": "keys/car.png",
                                                            "frame": "act1_0009.png"}]  # fmt: skip
    spec = write_episode_spec(episode_inputs, tmp_path / "out", tmp_path / "seq.yaml", shots=[], keyframes=keyframes,
                              sequence={"frames": str(sequence)})  # fmt: skip
    plan = plan_episode(load_spec(str(spec)))
    assert plan.cuts == (6, 13) and plan.cuts_from == "detected"
    assert [(s.name, s.frame_count, s.keyframe, s.position) for s in plan.shots] == [
        ("shot001", 6, "fox", None), ("shot002", 7, "car", 2), ("shot003", 5, "fox", None)
    ]  # fmt: skip
    assert "cuts at frames [6, 13] (detected)" in plan.describe()
    overridden = write_episode_spec(episode_inputs, tmp_path / "out", tmp_path / "cuts.yaml", shots=[],
                                    keyframes=keyframes, sequence={"frames": str(sequence), "cuts": [9]})  # fmt: skip
    plan = plan_episode(load_spec(str(overridden)))
    assert plan.cuts_from == "spec" and [s.frame_count for s in plan.shots] == [9, 9]


@pytest.mark.slow
def test_a_shot_with_a_bad_frame_fails_the_run_and_is_named(episode_inputs, tmp_path):
    lines = tmp_path / "lines"
    for shot in ("sh010", "sh020"):
        (lines / shot).mkdir(parents=True)
        for frame in (episode_inputs / "lines" / shot).iterdir():
            (lines / shot / frame.name).write_bytes(frame.read_bytes())
    (lines / "sh020" / "sh020_0004.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    shots = [{"name": s, "frames": str(lines / s)} for s in ("sh010", "sh020")]
    keyframes = [{"name": "fox", "image": "keys/fox.png"}]
    output = tmp_path / "out"
    spec = write_episode_spec(episode_inputs, output, tmp_path / "bad.yaml", shots=shots, keyframes=keyframes)
    result = CliRunner().invoke(main, ["run", str(spec)])
    assert result.exit_code == 1
    assert "failed shots: sh020" in result.output
    table = results_table(str(output))
    assert table.column("status").to_pylist() == ["ok", "partial"] and table.column("failed").to_pylist() == [0, 1]
    assert len(list((output / "sh020").glob("*.png"))) == 6  # the other frames of the shot are colored
    assert (output / "inkpaint-plan.parquet").exists()
