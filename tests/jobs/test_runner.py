"""The Ray runner: GPU pinning with faked GPUs, results in input order."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import pytest
import ray

from jobs.runner import RunSettings, ray_session, run_shots, worker_resources
from model.checkpoint import DEFAULT_WEIGHTS
from pipeline.shot import Shot, ShotOptions

pytestmark = pytest.mark.slow  # a local Ray with two faked GPUs

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "wave"


@pytest.fixture
def fake_two_gpu_ray():
    # Ray fakes GPUs on a CPU machine: actors get distinct GPU ids while torch still runs on the CPU.
    temp_dir = tempfile.mkdtemp(prefix="inkpaint-t-")
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, _temp_dir=temp_dir, logging_level="WARNING",
             log_to_driver=False)  # fmt: skip
    yield
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def own_temp(monkeypatch):
    """The system temp dir, for this test alone (short, as Ray's socket paths need)."""
    temp = tempfile.mkdtemp(prefix="ipt-")
    monkeypatch.setattr(tempfile, "tempdir", temp)
    yield Path(temp)
    shutil.rmtree(temp, ignore_errors=True)


def test_a_local_ray_removes_its_temp_dir_after_a_run_and_keeps_it_after_a_failure(own_temp, caplog):
    with ray_session(None):
        assert ray.get(ray.put(7)) == 7
        assert [p.name[:12] for p in own_temp.iterdir()] == ["inkpaint-ray"]
    assert not ray.is_initialized()
    assert list(own_temp.iterdir()) == []

    with pytest.raises(KeyboardInterrupt), ray_session(None):  # Ctrl-C: not an error to look into
        raise KeyboardInterrupt
    assert not ray.is_initialized()
    assert list(own_temp.iterdir()) == []

    with (
        caplog.at_level(logging.WARNING, logger="jobs.runner"),
        pytest.raises(RuntimeError, match="shot exploded"),
        ray_session(None),
    ):
        raise RuntimeError("shot exploded")
    assert not ray.is_initialized()
    [kept] = own_temp.iterdir()
    assert (kept / "session_latest" / "logs").is_dir()  # what a person needs to see why the run failed
    assert f"the local Ray's logs are kept in {kept}" in caplog.text


def test_each_gpu_gets_its_own_worker(fake_two_gpu_ray, tmp_path):
    count, resources = worker_resources()
    assert count == 2 and resources["num_gpus"] == 1
    shots = [
        Shot(f"shot{i}", str(SAMPLE / "frames"), str(SAMPLE / "key.png"), str(tmp_path / f"out{i}")) for i in range(2)
    ]
    progress: dict[str, int] = {}
    results = run_shots(shots, ShotOptions(resolution=128, batch_size=6), RunSettings(str(DEFAULT_WEIGHTS)),
                        progress=lambda shot, done: progress.__setitem__(shot, done))  # fmt: skip
    assert [r.shot for r in results] == ["shot0", "shot1"]
    assert all(r.status == "ok" and r.written == 12 for r in results)
    assert sorted(r.gpu for r in results) == ["0", "1"]
    assert progress == {"shot0": 12, "shot1": 12}
