"""Nightly batches: a queue of specs run to completion under a lock, with a report; overlapping runs."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from jobs.manifest import read_records, results_table
from jobs.nightly import LOCK_NAME, LockHeld, QueueLock, SpecRun, SpecStatus, queued_specs, run_id
from tests.jobs.sample_episode import write_episode_spec

ROOT = Path(__file__).resolve().parents[2]
ONE_SHOT = {"shots": [{"name": "sh010", "frames": "lines/sh010"}],
            "keyframes": [{"name": "fox", "image": "keys/fox.png"}]}  # fmt: skip


def make_queue(episode_inputs: Path, tmp_path: Path, invalid: bool = True) -> Path:
    """A queue folder with a one-shot spec of the test episode (and, optionally, a spec with a mistake)."""
    queue = tmp_path / "queue"
    queue.mkdir()
    write_episode_spec(episode_inputs, tmp_path / "out", queue / "ep-fox.yaml", **ONE_SHOT)
    if invalid:
        (queue / "ep-broken.yaml").write_text("episode: broken\noutput: out\nshots: []\nkeyframes: []\n")
    (queue / "notes.txt").write_text("not a spec")
    return queue


def test_queue_lists_specs_and_ids_are_stable(tmp_path):
    (tmp_path / "b10.yaml").write_text("")
    (tmp_path / "b9.json").write_text("")
    (tmp_path / "readme.md").write_text("")
    assert queued_specs(str(tmp_path)) == [f"{tmp_path}/b9.json", f"{tmp_path}/b10.yaml"]
    assert run_id(f"{tmp_path}/b9.json", datetime.date(2026, 11, 24)) == "b9-20261124"
    with pytest.raises(ValueError, match="does not exist"):
        queued_specs(str(tmp_path / "nope"))


def test_lock_excludes_a_second_holder_and_a_stale_lock_is_taken_over(tmp_path):
    with QueueLock(str(tmp_path), heartbeat=0.1):
        held = json.loads((tmp_path / LOCK_NAME).read_text())
        with pytest.raises(LockHeld, match=f"locked by {held['owner']}"):
            QueueLock(str(tmp_path)).acquire()
        time.sleep(0.3)
        assert json.loads((tmp_path / LOCK_NAME).read_text())["refreshed"] > held["refreshed"]  # heartbeat
    assert not (tmp_path / LOCK_NAME).exists()  # released
    (tmp_path / LOCK_NAME).write_text(json.dumps({"owner": "dead-host:1", "started": 0, "refreshed": time.time() - 60}))
    with QueueLock(str(tmp_path), stale_after=30) as lock:
        assert json.loads((tmp_path / LOCK_NAME).read_text())["owner"] == lock.owner


@pytest.mark.slow
def test_nightly_runs_the_queue_reports_and_skips_what_is_complete(episode_inputs, tmp_path):
    queue = make_queue(episode_inputs, tmp_path)
    first = CliRunner().invoke(main, ["nightly", str(queue)])
    assert first.exit_code == 1, first.output  # the broken spec is reported as a failure
    assert "1 shots colored" in first.output and "ep-broken-" in first.output and "invalid" in first.output
    reports = sorted((queue / "reports").iterdir())
    assert [p.suffix for p in reports] == [".parquet", ".txt"]
    runs = {run.spec.rpartition("/")[2]: run for run in read_records(str(reports[0]), SpecRun)}
    fox, broken = runs["ep-fox.yaml"], runs["ep-broken.yaml"]
    assert fox.status is SpecStatus.RAN and fox.frames == 6
    assert broken.status is SpecStatus.INVALID and "give at least one shot" in broken.error
    assert "FAILED: ep-broken-" in reports[1].read_text()

    (queue / "ep-broken.yaml").unlink()
    second = CliRunner().invoke(main, ["nightly", str(queue)])
    assert second.exit_code == 0, second.output
    assert "0 shots colored, 1 already done" in second.output and "everything succeeded" in second.output
    assert not (queue / LOCK_NAME).exists()


@pytest.mark.slow
def test_two_nightly_runs_at_once_do_nothing_twice(episode_inputs, tmp_path):
    queue = make_queue(episode_inputs, tmp_path, invalid=False)
    command = [sys.executable, str(ROOT / "cli.py"), "nightly", str(queue)]
    runs = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(2)]  # fmt: skip
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    worked = [out for out in outputs if "1 shots colored" in out]
    waited = [out for out in outputs if "nothing to do: queue" in out and "locked by" in out]
    assert len(worked) == 1 and len(waited) == 1, outputs
    table = results_table(str(tmp_path / "out"))
    assert table.column("written").to_pylist() == [6] and table.column("resumed").to_pylist() == [0]
