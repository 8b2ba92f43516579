"""Nightly batches: every spec in a queue folder, run until complete, under a lock, with a report.

A studio drops job specs (YAML or JSON) into a queue folder (local or a bucket) and schedules
`inkpaint nightly QUEUE` (cron, a systemd timer). Each night's run takes the queue's lock, runs each spec with
resume, so shots finished on an earlier night are skipped and a spec already complete costs only its planning,
and writes a report under ``QUEUE/reports/``. A second run started while the first still holds the lock exits
cleanly without doing anything; the holder refreshes the lock while it works, so the lock of a run that died goes
stale and the next run takes it over.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

import fsspec

from jobs.episode import run_episode
from jobs.manifest import arrow_schema, records_table, write_table
from jobs.plan import plan_episode
from jobs.recording import NotRecorded, recording
from jobs.spec import load_spec
from model.files import natural_key, write_bytes_atomic
from pipeline.status import Status

log = logging.getLogger(__name__)

LOCK_NAME = ".inkpaint-nightly.lock"
REPORTS_FOLDER = "reports"
SPEC_EXTENSIONS = (".yaml", ".yml", ".json")


class SpecStatus(Status):
    """What a night did with one spec: complete (nothing left to color), ran (colored every shot it had left),
    failed (a shot failed or the run could not be recorded) or invalid (the spec could not be planned)."""

    COMPLETE = "complete"
    RAN = "ran"
    FAILED = "failed"
    INVALID = "invalid"


@dataclass
class SpecRun:
    """One spec's row of a night's report.

    Args:
        id: the spec's run id for the night (`run_id`).
        spec: the spec file's URL.
        status: what was done.
        shots: shots planned.
        shots_colored: shots colored successfully this night.
        shots_skipped: shots already complete.
        shots_failed: shots that failed.
        frames: frames written this night.
        seconds: wall time of the spec's run.
        error: what failed, "" when nothing did.
    """

    id: str
    spec: str
    status: SpecStatus = SpecStatus.COMPLETE
    shots: int = 0
    shots_colored: int = 0
    shots_skipped: int = 0
    shots_failed: int = 0
    frames: int = 0
    seconds: float = 0.0
    error: str = ""

    @property
    def failed(self) -> bool:
        return self.status in (SpecStatus.FAILED, SpecStatus.INVALID)


REPORT_SCHEMA = arrow_schema(SpecRun)


class LockHeld(RuntimeError):
    """Another nightly run holds the queue's lock."""


@dataclass
class QueueLock:
    """A lock file in the queue folder, refreshed by its holder every `heartbeat` seconds.

    Args:
        queue: the queue folder URL.
        stale_after: seconds after the holder's last refresh when the lock counts as abandoned.
        heartbeat: seconds between refreshes.
        storage_options: fsspec options.
    """

    queue: str
    stale_after: float = 600.0
    heartbeat: float = 60.0
    storage_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.url = f"{self.queue.rstrip('/')}/{LOCK_NAME}"
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.fs, self.path = fsspec.core.url_to_fs(self.url, **self.storage_options)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.taken_over: str | None = None  # what was wrong with the lock taken over, for the report

    def read(self) -> dict | None:
        """The lock's content, or None when there is none; content that is not a lock's (not JSON, not a mapping,
        times that are not numbers) reads as {"owner": "unreadable", "refreshed": 0.0, "content": its start}."""
        self.fs.invalidate_cache(self.path)
        try:
            data = self.fs.cat_file(self.path)
        except FileNotFoundError:
            return None
        try:
            held = json.loads(data)
            if isinstance(held, dict):
                float(held.get("refreshed", 0))
                float(held.get("started", 0))
                return held
        except (ValueError, TypeError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            pass
        return {"owner": "unreadable", "refreshed": 0.0, "content": data[:40].decode("utf-8", "replace")}

    def stale_reason(self, held: dict) -> str | None:
        """Why a lock found in the queue is abandoned, or None while its holder keeps refreshing it. A refresh time
        further ahead than one heartbeat (more than clocks drift) is junk that would otherwise hold forever."""
        if held.get("owner") == "unreadable":
            return f"its content is unreadable ({held.get('content', '')!r})"
        age = time.time() - float(held.get("refreshed", 0))
        if age < -self.heartbeat:
            return f"its refresh time is {-age:.0f} s in the future"
        if age >= self.stale_after:
            return f"it was last refreshed {age:.0f} s ago"
        return None

    def _content(self, started: float) -> bytes:
        return json.dumps({"owner": self.owner, "started": started, "refreshed": time.time()}).encode()

    def acquire(self) -> None:
        """Take the lock, or raise LockHeld naming the holder; an abandoned lock is taken over."""
        held = self.read()
        self.taken_over = None
        if held is not None:
            reason = self.stale_reason(held)
            if reason is None:
                since = datetime.datetime.fromtimestamp(float(held.get("started", 0)), datetime.timezone.utc)
                msg = f"queue {self.queue!r} is locked by {held.get('owner')} since {since:%Y-%m-%d %H:%M} UTC"
                raise LockHeld(msg)
            holder = "" if held.get("owner") == "unreadable" else f" from {held.get('owner')}"
            self.taken_over = f"took over the queue's lock {self.url}{holder}: {reason}"
            log.warning(self.taken_over)
        self.started = time.time()
        if held is None and "file" in self.fs.protocol:
            self._create_exclusive()
        else:
            write_bytes_atomic(self._content(self.started), self.url, self.storage_options)
        # Object stores have no create-if-absent here: two runs racing both write; the later write wins, and the
        # earlier writer sees someone else's name when it reads back, and steps aside.
        time.sleep(0.2)
        held = self.read()
        if held is None or held.get("owner") != self.owner:
            msg = f"queue {self.queue!r} was locked by {held and held.get('owner')} at the same moment"
            raise LockHeld(msg)
        self._thread = threading.Thread(target=self._refresh, name="nightly-lock", daemon=True)
        self._thread.start()

    def _create_exclusive(self) -> None:
        """Create the local lock file only if it does not exist (O_EXCL), so two local runs cannot both win."""
        try:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError as error:
            msg = f"queue {self.queue!r} was locked by another run at the same moment"
            raise LockHeld(msg) from error
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(self._content(self.started))

    def _refresh(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                write_bytes_atomic(self._content(self.started), self.url, self.storage_options)
            except OSError as error:  # a storage hiccup: try again at the next beat
                log.warning("could not refresh the nightly lock %s: %s", self.url, error)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        held = self.read()
        if held is not None and held.get("owner") == self.owner:
            self.fs.rm(self.path)

    def __enter__(self) -> QueueLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def queued_specs(queue: str, storage_options: dict | None = None) -> list[str]:
    """The spec files of a queue folder, in natural order."""
    fs, root = fsspec.core.url_to_fs(queue, **(storage_options or {}))
    try:
        entries = fs.ls(root, detail=True)
    except FileNotFoundError as error:
        msg = f"queue folder {queue!r} does not exist"
        raise ValueError(msg) from error
    names = [
        e["name"].rstrip("/").rpartition("/")[2] for e in entries
        if e.get("type") == "file" and e["name"].lower().endswith(SPEC_EXTENSIONS)
    ]  # fmt: skip
    return [f"{queue.rstrip('/')}/{name}" for name in sorted(names, key=natural_key)]


def run_id(spec_url: str, day: datetime.date) -> str:
    """The stable id of one spec's run on one night: its file stem and the date."""
    stem = spec_url.rstrip("/").rpartition("/")[2].rsplit(".", 1)[0]
    return f"{stem}-{day:%Y%m%d}"


def run_spec(spec_url: str, day: datetime.date, address: str | None) -> SpecRun:
    """Run one spec with resume; its report row (never raises for a bad spec or a failed shot)."""
    run = SpecRun(id=run_id(spec_url, day), spec=spec_url)
    started = time.monotonic()
    try:
        plan = plan_episode(load_spec(spec_url))
    except (ValueError, OSError) as error:
        run.status, run.error = SpecStatus.INVALID, str(error)
        return run
    try:
        episode = run_episode(plan, address=address, resume=True)
    except NotRecorded as error:
        run.status, run.error, run.seconds = SpecStatus.FAILED, str(error), time.monotonic() - started
        return run
    run.shots, run.shots_colored = len(plan.shots), len(episode.results) - len(episode.failed)
    run.shots_skipped, run.shots_failed = len(episode.skipped), len(episode.failed)
    run.frames, run.seconds = sum(r.written for r in episode.results), time.monotonic() - started
    if episode.failed or episode.unrecorded:
        errors = [f"{r.shot}: {r.error or 'frames failed'}" for r in episode.failed] + episode.unrecorded
        run.status, run.error = SpecStatus.FAILED, "; ".join(errors)
    elif episode.results:
        run.status = SpecStatus.RAN
    return run


def summarize(runs: list[SpecRun], day: datetime.date, notes: tuple[str, ...] = ()) -> str:
    """The report a person reads in the morning; `notes` (such as a lock taken over) follow its first line."""
    frames = sum(r.frames for r in runs)
    hours = sum(r.seconds for r in runs) / 3600
    failed = [r for r in runs if r.failed]
    lines = [
        f"inkpaint nightly {day:%Y-%m-%d}: {len(runs)} specs, {sum(r.shots_colored for r in runs)} shots colored, "
        f"{sum(r.shots_skipped for r in runs)} already done, {sum(r.shots_failed for r in runs)} failed, "
        f"{frames} frames, {hours:.2f} hours"
    ]
    lines += [f"  note: {note}" for note in notes]
    lines += [f"  {r.id}: {r.status}" + (f": {r.error}" if r.error else "") for r in runs]
    lines.append("FAILED: " + ", ".join(r.id for r in failed) if failed else "everything succeeded")
    return "\n".join(lines)


def run_nightly(
    queue: str, address: str | None = None, day: datetime.date | None = None, storage_options: dict | None = None
) -> tuple[list[SpecRun], str]:
    """Run every spec of the queue under its lock and write the report; (report rows, summary).

    Raises LockHeld when another run holds the queue, ValueError when the queue folder does not exist, NotRecorded
    when the report cannot be written.
    """
    day = day or datetime.datetime.now(datetime.timezone.utc).date()
    storage_options = storage_options or {}
    specs = queued_specs(queue, storage_options)
    with QueueLock(queue, storage_options=storage_options) as lock:
        runs = []
        for spec_url in specs:
            log.info("nightly: %s", run_id(spec_url, day))
            runs.append(run_spec(spec_url, day, address))
        summary = summarize(runs, day, (lock.taken_over,) if lock.taken_over else ())
        reports = f"{queue.rstrip('/')}/{REPORTS_FOLDER}"
        with recording(table := f"{reports}/nightly-{day:%Y%m%d}.parquet"):
            write_table(records_table(runs, REPORT_SCHEMA), table, storage_options)
        with recording(text := f"{reports}/nightly-{day:%Y%m%d}.txt"):
            write_bytes_atomic((summary + "\n").encode(), text, storage_options)
    return runs, summary
