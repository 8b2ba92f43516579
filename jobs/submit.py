"""Runs inkpaint on a Ray cluster as Ray Jobs: submit, status, logs and stop against the head's job API.

A submitted run is `python cli.py run SPEC --address auto` executed on the cluster, with this project folder
uploaded as the job's working directory (minus what a run never needs: .git, virtualenvs, outputs, training logs,
tests). The submission id is the idempotency key: submitting an id the cluster already knows starts nothing and
reports the existing job instead, so a scheduler can safely resubmit after a crash or a timeout.

Every function takes the address of the head's job API (the dashboard, `http://HEAD:8265`) and translates what
Ray's JobSubmissionClient raises (a bare RuntimeError with the HTTP status in its text) into errors that name the
address and the id: UnknownJobError (a ValueError), ClusterUnreachableError (a ConnectionError), ClusterAuthError
(a PermissionError) and JobsApiError (a RuntimeError, anything else the API refused).
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

import requests
from ray.exceptions import AuthenticationError
from ray.job_submission import JobStatus, JobSubmissionClient

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the folder holding cli.py: uploaded as the job's working_dir

# Never uploaded with a run (gitignore syntax, as Ray reads it; relative to PROJECT_ROOT). Ray also honours
# .gitignore unless RAY_RUNTIME_ENV_IGNORE_GITIGNORE=1, but a run must not depend on that. Only two forms are used,
# a name matched at any depth and a path anchored at the root with "/", so `is_uploaded` can mirror them exactly.
# Ray refuses packages of ~500 MB and warns from half that; the shipped weights (model/weights/*.safetensors) stay.
UPLOAD_EXCLUDES: tuple[str, ...] = (
    ".git",
    ".venv*",
    "__pycache__",
    "*.pyc",
    "*.egg-info",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    "/out",
    "/runs",
    "/build",
    "/dist",
    "/.whl",
    "/.gpu",
    "/.ci",
    "/model/weights/training",
    "/benchmarks",
    "/docs",
    "/tests",
    "/*.mp4",
    "/*.mov",
    "/*.mkv",
)

# JobSubmissionClient prefers these variables over its address argument (as ray.init does with RAY_ADDRESS).
_ADDRESS_ENVVARS = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")
_SUBMISSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED})


class UnknownJobError(ValueError):
    """The cluster has no job with this submission id."""


class ClusterUnreachableError(ConnectionError):
    """Nothing answers as a Ray job API at this address."""


class ClusterAuthError(PermissionError):
    """The cluster refused the request: token authentication is on and no valid token was sent."""


class JobsApiError(RuntimeError):
    """The job API answered with an error other than an unknown id."""


@dataclass(frozen=True)
class SubmitOutcome:
    """What a submission did.

    Args:
        submission_id: the job's id on the cluster.
        address: the job API it was submitted to.
        created: True if this call started the job; False if the id was already taken and nothing was started.
        status: the job's status right after the call (PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED).
    """

    submission_id: str
    address: str
    created: bool
    status: str

    def summary(self) -> str:
        if self.created:
            return f"submitted {self.submission_id} to {self.address} ({self.status})"
        return f"{self.submission_id} already exists on {self.address} ({self.status}); nothing new was submitted"


@dataclass(frozen=True)
class JobReport:
    """A job's state as the cluster reports it.

    Args:
        submission_id: the job's id on the cluster.
        status: PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED.
        message: Ray's message (for a failure, the reason and the end of the logs).
        entrypoint: the shell command the job runs.
        start_time: when the job started (UTC), if it has.
        end_time: when it ended (UTC), if it has.
        exit_code: the entrypoint's exit code once it exited by itself; None while running and for stopped jobs.
        metadata: the metadata stored with the submission (an inkpaint run stores its spec).
    """

    submission_id: str
    status: str
    message: str
    entrypoint: str
    start_time: datetime | None
    end_time: datetime | None
    exit_code: int | None
    metadata: dict[str, str]

    @property
    def finished(self) -> bool:
        """The job ended (succeeded, failed or was stopped) and its status will not change again."""
        return self.status in _TERMINAL

    def summary(self) -> str:
        """Aligned lines for a terminal: id, status, exit code, times and the message's first line."""
        rows = [
            ("id", self.submission_id),
            ("status", self.status),
            ("exit code", "-" if self.exit_code is None else str(self.exit_code)),
            ("started", _format_time(self.start_time)),
            ("ended", _format_time(self.end_time)),
            ("entrypoint", self.entrypoint),
        ]
        if self.message:
            # Ray appends up to 20,000 characters of logs to a failure's message; `job_logs` has them all.
            rows.append(("message", self.message.splitlines()[0].split(", last available logs")[0]))
        return "\n".join(f"{name:<11}{value}" for name, value in rows)


def submit_run(
    spec: str, address: str, submission_id: str | None = None, extra_args: Sequence[str] | None = None
) -> SubmitOutcome:
    """Submit `inkpaint run SPEC` to the cluster with this project folder as the job's working directory.

    Args:
        spec: the run's spec: a file inside PROJECT_ROOT (uploaded with it and passed by its relative path) or a URL
            the cluster can read (s3://, gs://, ...), passed as it is.
        address: the head's job API, e.g. http://HEAD:8265.
        submission_id: the idempotency key; default a new "inkpaint-<spec name>-<UTC time>-<random>" id.
        extra_args: further arguments for `inkpaint run` (e.g. ["--resume"]).

    Raises:
        ValueError: the spec cannot reach the cluster (missing, outside the project folder, or in a folder that is
            not uploaded), or the id or address is malformed.
    """
    spec_argument = spec_for_cluster(spec)
    stem = PurePosixPath(spec.rstrip("/")).name.split(".")[0]
    return submit_entrypoint(
        run_entrypoint(spec_argument, extra_args),
        address,
        submission_id or new_submission_id(stem),
        runtime_env=project_runtime_env(),
        metadata={"inkpaint_spec": spec},
    )


def submit_entrypoint(
    entrypoint: str,
    address: str,
    submission_id: str | None = None,
    *,
    runtime_env: dict | None = None,
    metadata: dict[str, str] | None = None,
) -> SubmitOutcome:
    """Submit any shell command as a Ray Job, once per submission id.

    An id the cluster already knows is not submitted again (and nothing is uploaded): the outcome says so and
    carries that job's current status. A submission racing another with the same id ends the same way.

    Args:
        entrypoint: the shell command the job runs on the head.
        address: the head's job API, e.g. http://HEAD:8265.
        submission_id: the idempotency key; default a new "inkpaint-job-<UTC time>-<random>" id.
        runtime_env: Ray runtime environment (e.g. `project_runtime_env()`); None runs in the head's own folder.
        metadata: strings stored with the job.
    """
    submission_id = submission_id or new_submission_id("job")
    check_submission_id(submission_id)
    url = normalize_address(address)
    with _translated_errors(url, submission_id):
        client = _client(url)
        existing = _existing_status(client, submission_id)
        if existing is not None:
            return SubmitOutcome(submission_id, url, created=False, status=existing)
        try:
            client.submit_job(
                entrypoint=entrypoint, submission_id=submission_id, runtime_env=runtime_env, metadata=metadata
            )
        except RuntimeError as error:
            # Ray has no exception type for a used id: the job manager's ValueError comes back inside the text.
            if f"submission_id {submission_id} already exists" not in str(error):
                raise
            status = _existing_status(client, submission_id) or JobStatus.PENDING.value
            return SubmitOutcome(submission_id, url, created=False, status=status)
        return SubmitOutcome(submission_id, url, created=True, status=client.get_job_status(submission_id).value)


def job_status(address: str, submission_id: str) -> JobReport:
    """The job's status, message, times and exit code."""
    check_submission_id(submission_id)
    url = normalize_address(address)
    with _translated_errors(url, submission_id):
        details = _client(url).get_job_info(submission_id)
    return JobReport(
        submission_id=details.submission_id or submission_id,
        status=details.status.value,
        message=details.message or "",
        entrypoint=details.entrypoint,
        start_time=_from_millis(details.start_time),
        end_time=_from_millis(details.end_time),
        exit_code=details.driver_exit_code,
        metadata=dict(details.metadata or {}),
    )


def job_logs(address: str, submission_id: str) -> str:
    """Everything the job has printed so far (stdout and stderr of its entrypoint, with Ray's setup lines)."""
    check_submission_id(submission_id)
    url = normalize_address(address)
    with _translated_errors(url, submission_id):
        return _client(url).get_job_logs(submission_id)


def stop_job(address: str, submission_id: str) -> bool:
    """Ask the job to stop (SIGTERM, then SIGKILL after Ray's grace period); False if it was not running anyway."""
    check_submission_id(submission_id)
    url = normalize_address(address)
    with _translated_errors(url, submission_id):
        return bool(_client(url).stop_job(submission_id))


def wait_for_job(address: str, submission_id: str, timeout: float | None = None, poll: float = 0.5) -> JobReport:
    """Poll until the job has finished and return its final report.

    Raises:
        TimeoutError: it had not finished after `timeout` seconds (its last status in the message).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        report = job_status(address, submission_id)
        if report.finished:
            return report
        if deadline is not None and time.monotonic() > deadline:
            msg = f"job {submission_id!r} on {address} is still {report.status} after {timeout:g} s"
            raise TimeoutError(msg)
        time.sleep(poll)


def run_entrypoint(spec: str, extra_args: Sequence[str] | None = None) -> str:
    """The shell command of a run: `python cli.py run SPEC --address auto [ARGS...]`, every word quoted."""
    return shlex.join(["python", "cli.py", "run", spec, "--address", "auto", *(extra_args or ())])


def project_runtime_env(root: Path = PROJECT_ROOT) -> dict:
    """Ray runtime_env uploading the project folder without UPLOAD_EXCLUDES.

    Raises:
        ValueError: `root` is not a source checkout (an installed inkpaint would upload all of site-packages).
    """
    if not (root / "cli.py").is_file() or not (root / "pyproject.toml").is_file():
        msg = (
            f"cannot upload {str(root)!r} as the job's working directory: it holds no cli.py and pyproject.toml; "
            "submit runs from a source checkout of inkpaint"
        )
        raise ValueError(msg)
    return {"working_dir": str(root), "excludes": list(UPLOAD_EXCLUDES)}


def is_uploaded(relative_path: str | PurePosixPath) -> bool:
    """Whether a path relative to the project root is uploaded, by UPLOAD_EXCLUDES (.gitignore aside)."""
    parts = PurePosixPath(relative_path).parts
    for pattern in UPLOAD_EXCLUDES:
        if pattern.startswith("/"):
            anchored = pattern[1:].split("/")
            if len(parts) >= len(anchored) and all(map(fnmatchcase, parts, anchored)):
                return False
        elif any(fnmatchcase(part, pattern) for part in parts):
            return False
    return True


def spec_for_cluster(spec: str, root: Path = PROJECT_ROOT) -> str:
    """The spec as the job on the cluster names it: a URL unchanged, a local file by its path within `root`.

    Raises:
        ValueError: a local spec that is missing, outside `root`, or excluded from the upload.
    """
    if "://" in spec:
        return spec
    path = Path(spec).expanduser().resolve()
    if not path.is_file():
        msg = f"spec {spec!r} is not a file"
        raise ValueError(msg)
    try:
        relative = path.relative_to(root.resolve()).as_posix()
    except ValueError:
        msg = (
            f"spec {spec!r} is outside the project folder {str(root)!r}, the only local folder uploaded to the "
            "cluster; move it into the project or give a URL the cluster can read (s3://...)"
        )
        raise ValueError(msg) from None
    if not is_uploaded(relative):
        msg = (
            f"spec {spec!r} is in a folder that is not uploaded to the cluster ({relative!r} matches "
            "jobs.submit.UPLOAD_EXCLUDES); move it elsewhere in the project"
        )
        raise ValueError(msg)
    return relative


def new_submission_id(name: str) -> str:
    """A readable unique id: inkpaint-<name>-<UTC yyyymmdd-hhmmss>-<4 hex digits>."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "run"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"inkpaint-{stem[:60]}-{stamp}-{secrets.token_hex(2)}"


def check_submission_id(submission_id: str) -> None:
    """Raise ValueError for an id that cannot be a path segment of the job API's URLs."""
    if not _SUBMISSION_ID.fullmatch(submission_id):
        msg = (
            f"submission id {submission_id!r} is not valid: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
        raise ValueError(msg)


def normalize_address(address: str) -> str:
    """http(s)://HOST:PORT without a trailing slash; a bare HOST:PORT gets http://.

    Ray would read a bare HOST:PORT as a GCS address and wait 40 s for a GCS there, so the scheme is added here.

    Raises:
        ValueError: an empty address, "auto", or a scheme other than http/https (e.g. ray://).
    """
    address = address.strip().rstrip("/")
    if not address or address == "auto":
        msg = f"Ray job API address {address!r} is not usable: give the head's dashboard URL, e.g. http://HEAD:8265"
        raise ValueError(msg)
    if "://" not in address:
        return f"http://{address}"
    scheme = address.split("://", 1)[0]
    if scheme not in ("http", "https"):
        msg = (
            f"Ray job API address {address!r} has scheme {scheme!r}; jobs are submitted over http(s) to the head's "
            "dashboard, e.g. http://HEAD:8265"
        )
        raise ValueError(msg)
    return address


def _client(url: str) -> JobSubmissionClient:
    """A client for exactly `url`, whatever RAY_ADDRESS / RAY_API_SERVER_ADDRESS say (they would override it).

    The variables are hidden for the constructor's few milliseconds; a thread reading them at that moment would
    miss them (the CLI has no such thread).
    """
    hidden = {name: os.environ.pop(name) for name in _ADDRESS_ENVVARS if name in os.environ}
    try:
        return JobSubmissionClient(url)
    finally:
        os.environ.update(hidden)


def _existing_status(client: JobSubmissionClient, submission_id: str) -> str | None:
    """The status of the job with this id, or None if the cluster has none."""
    try:
        return client.get_job_status(submission_id).value
    except RuntimeError as error:
        if _is_not_found(error):
            return None
        raise


def _is_not_found(error: Exception) -> bool:
    return isinstance(error, RuntimeError) and "status code 404" in str(error)


@contextmanager
def _translated_errors(url: str, submission_id: str) -> Iterator[None]:
    """Turn what JobSubmissionClient raises into errors naming the address and the id."""
    try:
        yield
    except AuthenticationError as error:
        msg = (
            f"the Ray cluster at {url} refused the request for job {submission_id!r}: {error}. A cluster with token "
            "authentication needs RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN or ~/.ray/auth_token) here too"
        )
        raise ClusterAuthError(msg) from error
    except (ConnectionError, requests.exceptions.RequestException) as error:
        msg = f"cannot reach a Ray job API at {url} (the head's dashboard, e.g. http://HEAD:8265): {error}"
        raise ClusterUnreachableError(msg) from error
    except RuntimeError as error:
        if _is_not_found(error):
            msg = f"no job {submission_id!r} on the Ray cluster at {url}"
            raise UnknownJobError(msg) from error
        if "Version check returned 404" in str(error):
            msg = f"{url} answers, but not as a Ray job API (no /api/version); give the head's dashboard URL"
            raise ClusterUnreachableError(msg) from error
        msg = f"the Ray job API at {url} failed for job {submission_id!r}: {error}"
        raise JobsApiError(msg) from error


def _from_millis(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, tz=timezone.utc)


def _format_time(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")
