"""Ray Jobs against a real Ray head on 127.0.0.1: submit once per id, status and exit codes, logs, stop, upload, CLI."""

from __future__ import annotations

import contextlib
import http.server
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from ray.job_submission import JobSubmissionClient

from cli import main
from jobs.submit import (
    PROJECT_ROOT,
    ClusterAuthError,
    ClusterUnreachableError,
    UnknownJobError,
    check_submission_id,
    is_uploaded,
    job_logs,
    job_status,
    new_submission_id,
    normalize_address,
    project_runtime_env,
    run_entrypoint,
    spec_for_cluster,
    stop_job,
    submit_entrypoint,
    submit_run,
    wait_for_job,
)

JOB_TIMEOUT = 90.0  # seconds; a job takes 2-4 s on an idle 2-core box, far more while something else trains


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def closed_address() -> str:
    return f"http://127.0.0.1:{free_port()}"


def python_command(code: str) -> str:
    return shlex.join([sys.executable, "-c", code])


def pids_mentioning(text: str) -> list[int]:
    """Processes whose command line contains `text` (Linux /proc; none elsewhere)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if text.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
    return pids


def wait_until_running(address: str, submission_id: str) -> None:
    deadline = time.monotonic() + JOB_TIMEOUT
    while job_status(address, submission_id).status == "PENDING":
        assert time.monotonic() < deadline, f"{submission_id} never started"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def head() -> Iterator[str]:
    """A Ray head with its dashboard on free ports of 127.0.0.1, for this module; yields the job API's URL.

    Its temp dir, TMPDIR and HOME are a fresh folder under the system temp (short: Ray's socket paths must stay
    short), so nothing lands in the user's ~/.ray, nor in /tmp (the dashboard's multiprocessing forkserver left a
    pymp-* folder there on every run: the head is stopped by a signal). Token auth is off: the test process may
    already hold another cluster's token (ray.init turns token auth on for its own process), and this head must
    accept whatever it sends.
    """
    root = Path(tempfile.mkdtemp(prefix="inkpaint-head-"))
    (root / "home").mkdir()
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_API_SERVER", "RAY_AUTH"))}
    # PATH: a job's `python` must be this virtualenv's, as a cluster's is the one inkpaint is installed in.
    env.update(HOME=str(root / "home"), TMPDIR=str(root), RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0",
               PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")  # fmt: skip
    dashboard_port = free_port()
    command = [
        str(bin_dir / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
        "--port", str(free_port()), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard_port),
        "--include-dashboard", "true", "--num-cpus", "1", "--temp-dir", str(root / "ray"), "--disable-usage-stats",
        # Fixed defaults (10001, 52365) would collide with any other Ray on this machine.
        "--ray-client-server-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
    ]  # fmt: skip
    log = (root / "head.log").open("w")
    # --block: `ray start` stays the parent of every Ray process and stops them all on SIGTERM; its own session
    # lets teardown kill exactly this head (never `ray stop`, which stops every Ray of the user on the machine).
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{dashboard_port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"ray start exited with {process.returncode}:\n{(root / 'head.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/jobs/", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the job API at {url} did not answer within 120 s")
            time.sleep(0.25)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # Workers and job drivers get their own process groups: end any that outlived the head, found by our dir.
        for pid in pids_mentioning(str(root)):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_a_job_that_succeeds_reports_exit_code_0_and_its_output(head):
    outcome = submit_entrypoint(python_command("print('hello from the job')"), head, "t-ok")
    assert outcome.created and outcome.submission_id == "t-ok" and outcome.address == head
    report = wait_for_job(head, "t-ok", timeout=JOB_TIMEOUT)
    assert (report.status, report.exit_code) == ("SUCCEEDED", 0)
    assert report.finished and report.start_time is not None and report.end_time >= report.start_time
    assert "hello from the job" in job_logs(head, "t-ok")
    assert "exit code  0" in report.summary()


@pytest.mark.slow
def test_a_failing_job_reports_failed_and_its_exit_code(head):
    submit_entrypoint(python_command("import sys; print('about to fail'); sys.exit(3)"), head, "t-fail")
    report = wait_for_job(head, "t-fail", timeout=JOB_TIMEOUT)
    assert (report.status, report.exit_code) == ("FAILED", 3)
    assert "exit code 3" in report.message
    assert report.summary().splitlines()[-1] == "message    Job entrypoint command failed with exit code 3"
    assert "about to fail" in job_logs(head, "t-fail")


@pytest.mark.slow
def test_resubmitting_an_id_starts_nothing_new(head):
    first = submit_entrypoint(python_command("print('first run')"), head, "t-once")
    again = submit_entrypoint(python_command("print('second run')"), head, "t-once")
    assert first.created and not again.created
    assert again.status in ("PENDING", "RUNNING", "SUCCEEDED") and "already exists" in again.summary()
    wait_for_job(head, "t-once", timeout=JOB_TIMEOUT)
    third = submit_entrypoint(python_command("print('third run')"), head, "t-once")
    assert not third.created and third.status == "SUCCEEDED"
    jobs = [job for job in JobSubmissionClient(head).list_jobs() if job.submission_id == "t-once"]
    assert len(jobs) == 1
    logs = job_logs(head, "t-once")
    assert "first run" in logs and "second run" not in logs and "third run" not in logs


@pytest.mark.slow
def test_stop_ends_a_running_job_as_stopped(head):
    submit_entrypoint(python_command("import time; print('sleeping', flush=True); time.sleep(300)"), head, "t-stop")
    wait_until_running(head, "t-stop")
    assert stop_job(head, "t-stop")
    report = wait_for_job(head, "t-stop", timeout=JOB_TIMEOUT)
    assert report.status == "STOPPED" and report.exit_code is None
    assert not stop_job(head, "t-stop")  # already ended: nothing to stop, not an error


@pytest.mark.slow
def test_the_upload_has_the_weights_and_code_without_heavy_folders(head):
    listing = "find . -type f | sort; du -sk ."
    submit_entrypoint(listing, head, "t-upload", runtime_env=project_runtime_env())
    report = wait_for_job(head, "t-upload", timeout=JOB_TIMEOUT)
    assert report.status == "SUCCEEDED", job_logs(head, "t-upload")
    lines = job_logs(head, "t-upload").splitlines()
    files = {line[2:] for line in lines if line.startswith("./")}
    assert {"cli.py", "jobs/submit.py", "model/weights/inkpaint-lite.safetensors", "pyproject.toml"} <= files
    assert all(is_uploaded(name) for name in files)
    for name in files:
        assert not name.startswith((".git/", "tests/", "model/weights/training/", "out/")), name
        assert "__pycache__" not in name and ".egg-info" not in name, name
    kib = int(next(line for line in lines if line.endswith("\t.")).split()[0])
    assert kib < 40_000, f"the working dir on the cluster is {kib} KiB"


@pytest.mark.slow
def test_unknown_ids_name_the_id_and_the_address(head):
    for call in (job_status, job_logs, stop_job):
        with pytest.raises(UnknownJobError, match=f"no job 'no-such-job' on the Ray cluster at {head}"):
            call(head, "no-such-job")


def test_an_unreachable_address_is_named():
    address = closed_address()
    with pytest.raises(ClusterUnreachableError, match=f"cannot reach a Ray job API at {address}"):
        job_status(address, "t-ok")
    bare = address.removeprefix("http://")  # Ray alone would wait 40 s for a GCS at a bare HOST:PORT
    with pytest.raises(ClusterUnreachableError, match=f"http://{bare}"):
        submit_entrypoint("true", bare, "t-nowhere")


@contextlib.contextmanager
def http_server_answering(status: int) -> Iterator[str]:
    """A local HTTP server that answers every GET with `status`; yields its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"Unauthorized: Missing authentication token" if status == 401 else b"not here")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_cluster_refusing_the_token_says_how_to_send_one():
    with http_server_answering(401) as address:
        with pytest.raises(ClusterAuthError) as refused:
            job_status(address, "t-ok")
        result = CliRunner().invoke(main, ["logs", "t-ok", "--address", address])
    assert address in str(refused.value) and "RAY_AUTH_MODE=token" in str(refused.value)
    assert result.exit_code == 2 and "RAY_AUTH_TOKEN" in result.output


def test_a_server_that_is_not_ray_is_named():
    with http_server_answering(404) as address, pytest.raises(ClusterUnreachableError, match="not as a Ray job API"):
        job_status(address, "t-ok")


@pytest.mark.slow
def test_address_variables_do_not_override_the_given_address(head, monkeypatch):
    submit_entrypoint("true", head, "t-env")
    monkeypatch.setenv("RAY_ADDRESS", closed_address())
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", closed_address())
    assert job_status(head, "t-env").submission_id == "t-env"
    assert os.environ["RAY_ADDRESS"] != head  # put back as they were


def test_addresses_and_ids_are_checked_before_any_request():
    assert normalize_address("http://head:8265/") == "http://head:8265"
    assert normalize_address("head:8265") == "http://head:8265"
    for bad in ("auto", "", "ray://head:10001"):
        with pytest.raises(ValueError, match="address"):
            normalize_address(bad)
    for bad in ("a/b", "x y", "-x", "", "x" * 129):
        with pytest.raises(ValueError, match="submission id"):
            check_submission_id(bad)
    generated = new_submission_id("ep 12 (final)")
    check_submission_id(generated)
    assert generated.startswith("inkpaint-ep-12-final-2") and generated != new_submission_id("ep 12 (final)")


def test_specs_are_named_as_the_cluster_sees_them(tmp_path):
    assert spec_for_cluster("s3://bucket/ep12.yaml") == "s3://bucket/ep12.yaml"
    assert spec_for_cluster(str(PROJECT_ROOT / "samples" / "README.md")) == "samples/README.md"
    outside = tmp_path / "ep12.yaml"
    outside.write_text("episode: ep12\n")
    with pytest.raises(ValueError, match="outside the project folder"):
        spec_for_cluster(str(outside))
    with pytest.raises(ValueError, match="not uploaded"):
        spec_for_cluster(str(PROJECT_ROOT / "tests" / "jobs" / "test_submit.py"))
    with pytest.raises(ValueError, match="is not a file"):
        spec_for_cluster(str(tmp_path / "missing.yaml"))
    assert run_entrypoint("specs/ep 12.yaml", ["--no-resume"]) == (
        "python cli.py run 'specs/ep 12.yaml' --address auto --no-resume"
    )
    assert is_uploaded("model/weights/inkpaint-lite.safetensors")
    for name in (".git/HEAD", ".venv-gpu/bin/python", "jobs/__pycache__/submit.pyc", "model/weights/training/a"):
        assert not is_uploaded(name), name


@pytest.mark.slow
def test_cli_submits_inkpaint_run_once_from_the_uploaded_project(head):
    runner = CliRunner()
    # `run ... --help` exercises the upload, cli.py on the cluster and the run command's options, not an episode.
    spec = "file:///nonexistent/ep12.yaml"
    args = ["submit", spec, "--address", head, "--id", "t-cli-run", "--", "--help"]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "submitted t-cli-run" in first.output
    again = runner.invoke(main, args)
    assert again.exit_code == 0 and "t-cli-run already exists" in again.output
    waited = runner.invoke(main, ["status", "t-cli-run", "--address", head, "--wait"])
    assert waited.exit_code == 0, waited.output + job_logs(head, "t-cli-run")
    assert "SUCCEEDED" in waited.output and "exit code  0" in waited.output
    report = job_status(head, "t-cli-run")
    assert report.entrypoint == run_entrypoint(spec, ["--help"])
    assert report.metadata["inkpaint_spec"] == spec
    logs = runner.invoke(main, ["logs", "t-cli-run", "--address", head])
    assert logs.exit_code == 0 and "Usage: cli.py run" in logs.output and "--address" in logs.output


@pytest.mark.slow
def test_cli_status_logs_and_stop(head):
    runner = CliRunner()
    submit_entrypoint(python_command("print('cli says hi')"), head, "t-cli")
    wait_for_job(head, "t-cli", timeout=JOB_TIMEOUT)
    # The address from the environment, as a studio sets it once.
    status = runner.invoke(main, ["status", "t-cli"], env={"RAY_API_SERVER_ADDRESS": head})
    assert status.exit_code == 0, status.output
    assert "SUCCEEDED" in status.output and "exit code  0" in status.output
    waited = runner.invoke(main, ["status", "t-cli", "--address", head, "--wait"])
    assert waited.exit_code == 0
    logs = runner.invoke(main, ["logs", "t-cli", "--address", head])
    assert logs.exit_code == 0 and "cli says hi" in logs.output
    stop = runner.invoke(main, ["stop", "t-cli", "--address", head])
    assert stop.exit_code == 0 and "t-cli is not running (SUCCEEDED)" in stop.output

    submit_entrypoint(python_command("import sys; sys.exit(3)"), head, "t-cli-fail")
    waited = runner.invoke(main, ["status", "t-cli-fail", "--address", head, "--wait"])
    assert waited.exit_code == 1 and "FAILED" in waited.output and "exit code  3" in waited.output
    status = runner.invoke(main, ["status", "t-cli-fail", "--address", head])
    assert status.exit_code == 0  # without --wait: the status could be read

    submit_entrypoint(python_command("import time; time.sleep(300)"), head, "t-cli-stop")
    wait_until_running(head, "t-cli-stop")
    stop = runner.invoke(main, ["stop", "t-cli-stop", "--address", head])
    assert stop.exit_code == 0 and "stopping t-cli-stop" in stop.output
    assert wait_for_job(head, "t-cli-stop", timeout=JOB_TIMEOUT).status == "STOPPED"


@pytest.mark.slow
def test_cli_user_mistakes_exit_2_naming_the_value(head):
    runner = CliRunner()
    for command in ("status", "logs", "stop"):
        result = runner.invoke(main, [command, "no-such-job", "--address", head])
        assert result.exit_code == 2 and "no job 'no-such-job'" in result.output, result.output
    address = closed_address()
    result = runner.invoke(main, ["status", "t-ok", "--address", address])
    assert result.exit_code == 2 and address in result.output
    result = runner.invoke(main, ["submit", "/nonexistent/ep12.yaml", "--address", head])
    assert result.exit_code == 2 and "/nonexistent/ep12.yaml" in result.output
    result = runner.invoke(main, ["status", "t-ok"], env={"RAY_API_SERVER_ADDRESS": None})
    assert result.exit_code == 2 and "--address" in result.output


@pytest.mark.slow
def test_a_submitted_episode_is_colored_on_the_cluster(head):
    """The bundled sample episode, submitted as a Ray Job: the driver on the head plans it and colors it there."""
    spec = str(PROJECT_ROOT / "samples" / "episode.yaml")
    outcome = submit_run(spec, head, submission_id="t-sample-episode")
    assert outcome.created
    report = wait_for_job(head, "t-sample-episode", timeout=300)
    logs = job_logs(head, "t-sample-episode")
    assert report.status == "SUCCEEDED" and report.exit_code == 0, logs
    assert "episode sample: 1 shots, 12 frames" in logs  # the plan, printed by `inkpaint run` on the cluster
    assert "1 shots colored (12 frames), 0 already complete, 0 failed" in logs
