"""Hostile or broken control files: job specs and the nightly queue's lock. Each ends with a clear message and the
exit code of its kind, quickly, without a traceback and without taking the queue hostage."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml

from jobs.nightly import LOCK_NAME
from tests.reliability.cli_runs import invoke

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "wave"


def write_spec(folder: Path, **fields: object) -> Path:
    """A one-shot episode of the sample's first two frames; `fields` replace the spec's own."""
    (folder / "lines").mkdir(parents=True, exist_ok=True)
    for index in (1, 2):
        shutil.copy(SAMPLE / "frames" / f"frame{index}.png", folder / "lines" / f"frame{index}.png")
    shutil.copy(SAMPLE / "key.png", folder / "key.png")
    spec = {"episode": "ep", "output": "colored", "shots": [{"name": "wave", "frames": "lines"}],
            "keyframes": [{"name": "key", "image": "key.png"}], "resolution": 128, "video": None,
            **fields}  # fmt: skip
    path = folder / "episode.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


# --- specs -----------------------------------------------------------------------------------------------------------

# Billion laughs: 9 levels of 9 aliases each, about 390 million strings once expanded, in a few hundred bytes.
LEVELS = "abcdefghi"
ALIAS_BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{name}: &{name} [{', '.join([f'*{LEVELS[level]}'] * 9)}]\n" for level, name in enumerate(LEVELS[1:])
)


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, command):
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 600
    started = time.monotonic()
    result = invoke(command, path)
    assert time.monotonic() - started < 5  # was: past 120 s and 4 GB of memory
    assert result.exit_code == 2, result.output
    assert str(path) in result.output and "alias" in result.output


def test_a_nightly_queue_with_an_alias_bomb_reports_it_as_invalid(tmp_path):
    queue = tmp_path / "queue"
    queue.mkdir()
    (queue / "bomb.yaml").write_text(ALIAS_BOMB)
    started = time.monotonic()
    result = invoke("nightly", queue)
    assert time.monotonic() - started < 5
    assert result.exit_code == 1, result.output
    assert "bomb-" in result.output and "invalid" in result.output and "alias" in result.output


def test_any_yaml_alias_in_a_spec_is_refused_with_its_line(tmp_path):
    path = write_spec(tmp_path)
    text = path.read_text().replace("resolution: 128", "resolution: &size 128\nbatch_size: *size")
    path.write_text(text)
    result = invoke("validate", path)
    assert result.exit_code == 2, result.output
    assert "alias" in result.output and "line" in result.output


@pytest.mark.parametrize("fps", [".nan", ".inf", "-.inf"])
def test_a_spec_video_fps_that_is_not_a_finite_number_is_a_spec_error(tmp_path, fps):
    path = write_spec(tmp_path)
    path.write_text(path.read_text().replace("video: null", f"video: {{codec: h264, fps: {fps}}}"))
    for command in ("validate", "run"):
        result = invoke(command, path)
        assert result.exit_code == 2, result.output
        assert "video.fps" in result.output and "finite" in result.output
    assert not (tmp_path / "colored").exists()


@pytest.mark.parametrize(
    ("fields", "empty_lines", "needles"),
    [
        pytest.param(
            {"keyframes": [{"name": "key", "image": "key.png", "frame": "frame9.png"}]},
            False,
            ["keyframes[0].frame", "'frame9.png'", "in none of the shots' frames"],
            id="a keyframe frame in no shot",
        ),
        pytest.param({}, True, ["shots[0].frames", "holds no image files"], id="a frame folder with no images"),
    ],
)
def test_validate_and_a_dry_run_agree(tmp_path, fields, empty_lines, needles):
    path = write_spec(tmp_path, **fields)
    if empty_lines:
        for frame in (tmp_path / "lines").iterdir():
            frame.unlink()
    validated = invoke("validate", path)
    planned = invoke("run", path, "--dry-run")
    for result in (validated, planned):
        assert result.exit_code == 2, result.output
        assert all(needle in result.output for needle in needles), result.output
    said = next(line.strip() for line in planned.output.splitlines() if needles[-1] in line)
    assert said in validated.output  # the same words from both
    assert not (tmp_path / "colored").exists()


def test_validate_still_passes_a_keyframe_frame_that_is_in_a_shot(tmp_path):
    path = write_spec(tmp_path, keyframes=[{"name": "key", "image": "key.png", "frame": "frame2.png"}])
    result = invoke("validate", path)
    assert result.exit_code == 0, result.output


# --- the nightly lock --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "why"),
    [
        pytest.param("null", "unreadable", id="null"),
        pytest.param("[1]", "unreadable", id="a list"),
        pytest.param('"locked"', "unreadable", id="a string"),
        pytest.param("{not json", "unreadable", id="not JSON"),
        pytest.param('{"owner": "x", "started": 0, "refreshed": "soon"}', "unreadable", id="a time that is text"),
        pytest.param(
            json.dumps({"owner": "clock-ahead:1", "started": 0, "refreshed": time.time() + 86400}),
            "in the future",
            id="refreshed tomorrow",
        ),
    ],
)
def test_a_junk_nightly_lock_is_taken_over_and_the_report_says_so(tmp_path, content, why):
    queue = tmp_path / "queue"
    queue.mkdir()
    (queue / LOCK_NAME).write_text(content)
    result = invoke("nightly", queue)
    assert result.exit_code == 0, result.output
    assert "nothing to do" not in result.output
    assert "took over" in result.output and why in result.output
    [report] = (queue / "reports").glob("nightly-*.txt")
    assert "took over" in report.read_text() and why in report.read_text()
    assert not (queue / LOCK_NAME).exists()  # released after the run


def test_a_lock_refreshed_a_moment_ago_still_holds(tmp_path):
    queue = tmp_path / "queue"
    queue.mkdir()
    (queue / LOCK_NAME).write_text(json.dumps({"owner": "busy:1", "started": time.time(), "refreshed": time.time()}))
    result = invoke("nightly", queue)
    assert result.exit_code == 0 and "nothing to do" in result.output and "busy:1" in result.output
    assert not (queue / "reports").exists()
    assert json.loads((queue / LOCK_NAME).read_text())["owner"] == "busy:1"
