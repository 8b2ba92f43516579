"""What inkpaint says when things go wrong, and how: one clear message instead of a traceback (a full disk, weights
that are a folder, an unreachable S3 endpoint, a frame rate that is not a number, too few drawings to train on),
Click's conventions on every command (-h, help on every option, environment variables and defaults shown, failures
on stderr), and logs that a person can read (no Ray warnings for the Ray we start, -v showing inkpaint's own debug
lines and not Pillow's, timestamped progress, an ETA that does not count Ray's start-up)."""

from __future__ import annotations

import errno
import io
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import numpy as np
import pytest
import yaml
from click.testing import Result
from PIL import Image

import cli
from cli import main
from jobs import manifest
from jobs.nightly import LOCK_NAME
from jobs.progress import ProgressReporter
from model.data import split_of
from tests.reliability import cli_runs
from tests.reliability.cli_runs import KEY, copy_sample_frames, invoke

ROOT = Path(__file__).resolve().parents[2]
TIMESTAMP = r"\d\d:\d\d:\d\d"


def color_shot(frames: object, output: object, *extra: object) -> Result:
    """The quickest run that still writes frames: 64 px, batches of 2."""
    return cli_runs.color_shot(frames, output, "--batch-size", "2", *extra, resolution=64)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def hidden_files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.name.startswith(".")]


# --- faults that ended in a traceback --------------------------------------------------------------------------------


class FullDisk:
    """A stand-in for the driver's writer (jobs.manifest's, which writes the results tables) on a disk that is full:
    every write whose path holds `marker` fails with ENOSPC, as a real full disk does, on the temporary name."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.refused: list[str] = []

    def __call__(self, data: bytes, url: str, storage_options: dict | None = None) -> None:
        if self.marker in url:
            self.refused.append(url)
            folder, _, name = url.rpartition("/")
            raise OSError(errno.ENOSPC, "No space left on device", f"{folder}/.{name}.tmp-0451")
        manifest_write(data, url, storage_options)


manifest_write = manifest.write_bytes_atomic


@pytest.mark.slow
def test_a_full_disk_while_recording_a_shot_ends_with_a_message_the_summary_and_exit_1(tmp_path, monkeypatch):
    frames, output = copy_sample_frames(tmp_path / "frames", (1, 2)), tmp_path / "out"
    full = FullDisk(str(output))
    monkeypatch.setattr(manifest, "write_bytes_atomic", full)
    result = color_shot(frames, output)
    assert result.exit_code == 1, result.output
    assert full.refused, "the fault was never hit"
    assert re.search(r"^shot frames: 2 frames colored", result.stdout, re.MULTILINE), result.stdout  # the summary
    [message] = [line for line in result.stderr.splitlines() if "could not write" in line]
    assert full.refused[0] in message and "No space left on device" in message and ".tmp-" not in message
    assert sorted(p.name for p in output.glob("*.png")) == ["frame1.png", "frame2.png"]  # the work is kept
    assert hidden_files(output) == []

    monkeypatch.setattr(manifest, "write_bytes_atomic", manifest_write)  # space freed: the rerun records it all
    again = color_shot(frames, output)
    assert again.exit_code == 0, again.output
    # No table vouched for the frames the full disk left unrecorded: they are colored again, then recorded.
    assert "2 frames colored, 0 already done" in again.stdout
    assert (output / manifest.FRAME_TABLE_NAME).exists()


def write_episode(folder: Path, **fields: object) -> Path:
    copy_sample_frames(folder / "lines", (1, 2))
    shutil.copy(KEY, folder / "key.png")
    spec = {"episode": "ep", "output": "colored", "shots": [{"name": "wave", "frames": "lines"}],
            "keyframes": [{"name": "key", "image": "key.png"}], "resolution": 64, "batch_size": 2, "video": None,
            **fields}  # fmt: skip
    path = folder / "episode.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_a_full_disk_before_an_episode_starts_is_one_message_and_exit_1(tmp_path, monkeypatch):
    spec = write_episode(tmp_path)
    full = FullDisk(str(tmp_path / "colored"))
    monkeypatch.setattr(manifest, "write_bytes_atomic", full)
    result = invoke("run", spec)
    assert result.exit_code == 1, result.output
    [refused] = full.refused
    assert refused.endswith(manifest.PLAN_TABLE_NAME)
    assert f"could not write {refused}: No space left on device" in result.stderr
    assert not list((tmp_path / "colored").glob("wave/*.png"))  # nothing was colored


@pytest.mark.slow
def test_a_full_disk_while_recording_an_episode_ends_with_the_summary_and_exit_1(tmp_path, monkeypatch):
    spec = write_episode(tmp_path)
    full = FullDisk(f"/{manifest.RESULTS_FOLDER}/")
    monkeypatch.setattr(manifest, "write_bytes_atomic", full)
    result = invoke("run", spec)
    assert result.exit_code == 1, result.output
    assert full.refused
    assert "1 shots colored (2 frames)" in result.stdout
    assert f"could not write {full.refused[0]}: No space left on device" in result.stderr
    monkeypatch.setattr(manifest, "write_bytes_atomic", manifest_write)
    again = invoke("run", spec)
    assert again.exit_code == 0, again.output
    assert (tmp_path / "colored" / manifest.RESULTS_FOLDER / "wave.parquet").exists()


def test_a_full_disk_when_the_nightly_report_is_written_is_one_message_and_exit_1(tmp_path, monkeypatch):
    queue = tmp_path / "queue"
    queue.mkdir()
    full = FullDisk("/reports/")
    monkeypatch.setattr(manifest, "write_bytes_atomic", full)
    result = invoke("nightly", queue)
    assert result.exit_code == 1, result.output
    [refused] = full.refused
    assert f"could not write {refused}: No space left on device" in result.stderr
    assert not (queue / LOCK_NAME).exists()  # released all the same


def test_weights_that_are_a_folder_are_a_usage_error_naming_it(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    frames = copy_sample_frames(tmp_path / "frames", (1, 2))
    spec = write_episode(tmp_path / "episode", weights=str(folder))
    for result in (
        color_shot(frames, tmp_path / "out", "--weights", folder),
        invoke("eval", "--weights", folder, "--limit", "1"),
        invoke("validate", spec),
        invoke("run", spec),
    ):
        assert result.exit_code == 2, result.output
        assert str(folder) in result.output and "folder" in result.output
    assert not (tmp_path / "out").exists()


@pytest.fixture
def unreachable_s3(monkeypatch) -> Iterator[str]:
    """An S3 endpoint on a closed port of this machine; botocore tries each request once (its own retries would
    only make the test slower: the message is the same)."""
    S3FileSystem = pytest.importorskip("s3fs").S3FileSystem
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    # fsspec reuses a filesystem made with the same options, which may know another test's endpoint.
    S3FileSystem.clear_instance_cache()
    yield f"http://127.0.0.1:{closed_port()}"
    S3FileSystem.clear_instance_cache()


@pytest.mark.parametrize("command", ["validate", "run"])
def test_an_unreachable_s3_endpoint_is_one_message_naming_it_and_what_was_read(tmp_path, unreachable_s3, command):
    spec = write_episode(tmp_path, keyframes=[{"name": "key", "image": "s3://studio/keys/key.png"}],
                         storage_options={"endpoint_url": unreachable_s3})  # fmt: skip
    result = invoke(command, spec)
    assert result.exit_code == 2, result.output
    assert result.output.count("Error:") == 1
    assert "s3://studio/keys/key.png" in result.output and unreachable_s3.removeprefix("http://") in result.output


def test_an_unreachable_s3_endpoint_for_a_shot_is_one_message(tmp_path, unreachable_s3, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", unreachable_s3)
    frames = copy_sample_frames(tmp_path / "frames", (1, 2))
    result = invoke("shot", frames, "-r", "s3://studio/keys/key.png", "-o", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert "s3://studio/keys/key.png" in result.output and unreachable_s3.removeprefix("http://") in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [("--fps", "nan"), ("--fps", "inf"), ("--fps", "-inf"), ("--fps", "NaN")],
)
def test_a_frame_rate_that_is_not_a_finite_number_is_refused_at_the_cli(tmp_path, option, value):
    frames = copy_sample_frames(tmp_path / "frames", (1, 2))
    result = color_shot(frames, tmp_path / "out", "--video", tmp_path / "v.mp4", option, value)
    assert result.exit_code == 2, result.output
    assert option in result.output and value in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", ["--lr-generator", "--lr-discriminator", "--max-minutes", "--warp"])
def test_training_options_refuse_nan(tmp_path, option):
    data = write_colored_drawings(tmp_path / "drawings", 6)  # a few seconds' work, should nan ever pass
    result = invoke("train", "-o", tmp_path / "run", "--data", data, "--steps", "1", "--resolution", "32",
                    "--workers", "1", "--device", "cpu", option, "nan")  # fmt: skip
    assert result.exit_code == 2 and option in result.output and "nan" in result.output, result.output
    assert not (tmp_path / "run").exists()


def write_colored_drawings(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        image = np.full((40, 40, 3), 255, np.uint8)
        image[8:32, 8:32] = rng.integers(0, 255, 3)
        image[8:32, 8] = image[8:32, 31] = image[8, 8:32] = image[31, 8:32] = 0  # a square's outline
        Image.fromarray(image).save(folder / f"drawing{index + 1}.png")
    return folder


def test_training_on_too_few_drawings_is_refused_before_the_first_step(tmp_path):
    data = write_colored_drawings(tmp_path / "drawings", 6)
    assert not [p for p in data.iterdir() if split_of(p.name) == "val"]  # none of them falls in the validation split
    output = tmp_path / "run"
    result = invoke("train", "-o", output, "--data", data, "--steps", "1", "--resolution", "32", "--batch-size", "2",
                    "--no-adversarial", "--workers", "1", "--device", "cpu")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert str(data) in result.output and "6 drawings" in result.output and "validation" in result.output
    assert re.search(r"at least \d+ drawings", result.output), result.output
    assert not output.exists()  # refused before anything was written


# --- Click conventions -----------------------------------------------------------------------------------------------


def all_commands() -> dict[str, click.Command]:
    return {"inkpaint": main, **{f"inkpaint {name}": command for name, command in main.commands.items()}}


def test_every_option_of_every_command_has_help():
    missing = [f"{name} {'/'.join(param.opts)}" for name, command in all_commands().items()
               for param in command.params if isinstance(param, click.Option) and not param.help]  # fmt: skip
    assert missing == []


def test_colorize_shot_answers_dash_h(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["colorize-shot", "-h"])
    with pytest.raises(SystemExit) as ended:
        cli.colorize_shot()
    assert ended.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())  # Click wraps long lines
    assert shown.startswith("Usage: colorize-shot")
    assert "env var: INKPAINT_WEIGHTS" in shown and "env var: RAY_ADDRESS" in shown
    assert "default: 24.0" in shown  # --fps


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("shot", ["env var: INKPAINT_WEIGHTS", "env var: RAY_ADDRESS", "default: 24.0", "default: 256"]),
        ("run", ["env var: RAY_ADDRESS", "default: 1"]),
        ("nightly", ["env var: RAY_ADDRESS"]),
        ("eval", ["env var: INKPAINT_WEIGHTS", "default: 16"]),
    ],
)
def test_dash_h_shows_environment_variables_and_defaults(command, shown):
    result = invoke(command, "-h")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # Click wraps long lines
    assert all(needle in text for needle in shown), result.output


@pytest.mark.slow
def test_a_failed_frame_is_reported_on_stderr_and_the_summary_on_stdout(tmp_path):
    frames = copy_sample_frames(tmp_path / "frames", (1, 2))
    (frames / "frame3.png").write_bytes(b"")
    result = color_shot(frames, tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith("shot frames: 2 frames colored"), result.stdout
    assert "failed:" not in result.stdout
    assert re.search(r"failed: .*frame3\.png.*empty file", result.stderr), result.stderr


# --- logging ---------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_verbose_logs_inkpaints_own_debug_lines_and_no_third_party_noise(tmp_path):
    """The CLI as a user runs it, in its own process: stderr is what a person or a log collector sees."""
    frames = copy_sample_frames(tmp_path / "frames", (1, 2, 3))
    env = {key: value for key, value in os.environ.items() if key not in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    env["HOME"] = str(tmp_path)  # Ray writes its token under ~/.ray
    command = [sys.executable, "-m", "cli", "-v", "shot", str(frames), "-r", str(KEY), "-o", str(tmp_path / "out"),
               "--resolution", "64", "--batch-size", "2"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    debug = [line for line in lines if " DEBUG " in line]
    assert debug, done.stderr
    foreign = [line for line in debug if not re.search(r" DEBUG (jobs|pipeline|model|cli)[.:]", line)]
    assert foreign == [], "\n".join(foreign[:10])
    assert any("shot frames" in line and "start" in line for line in debug), "\n".join(debug)
    assert "Token authentication" not in done.stderr
    progress = [line for line in lines if "progress:" in line]
    assert progress and all(re.match(TIMESTAMP + " progress: ", line) for line in progress), progress


@pytest.fixture
def logging_levels():
    """The levels setup_logging sets, put back after the test."""
    names = ["", *cli.OWN_LOGGERS, *cli.THIRD_PARTY_LOGGERS]
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_debug_lines_are_inkpaints_own_and_only_under_verbose(logging_levels):
    cli.setup_logging(verbose=False)
    assert not logging.getLogger("jobs.runner").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("jobs.runner").isEnabledFor(logging.INFO)
    cli.setup_logging(verbose=True)
    assert logging.getLogger("jobs.runner").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("pipeline.colorize").isEnabledFor(logging.DEBUG)
    for name in ("PIL.PngImagePlugin", "fsspec.local", "s3fs", "botocore.credentials", "urllib3.connectionpool"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
        assert logging.getLogger(name).isEnabledFor(logging.WARNING), name


def test_the_eta_counts_from_the_first_frame_not_from_the_start_of_ray(monkeypatch):
    clock = {"now": 1000.0}
    monkeypatch.setattr("jobs.progress.time.monotonic", lambda: clock["now"])
    stream = io.StringIO()
    reporter = ProgressReporter(100, stream=stream, interval=0.0)
    clock["now"] += 30  # Ray starts and the model loads
    reporter.update("shot", 0)  # the shot starts
    clock["now"] += 10
    reporter.update("shot", 10)
    last = stream.getvalue().splitlines()[-1]
    assert re.match(TIMESTAMP + r" progress: 10/100 frames, 1\.00 frames/s, ETA 90 s$", last), last
