"""The episode job behind `inkpaint run`: plan, skip finished shots, color the rest on Ray, record each result.

The plan is written first, as ``<output>/inkpaint-plan.parquet`` (one row per shot: frames, keyframe and why).

Each shot's result is written to the episode's results folder as soon as the shot ends, so a run killed midway
leaves an exact record; rerun with resume (the default), it colors only the shots whose recorded result is missing,
failed, or was made from other inputs, weights or options (the plan's input hash), or whose outputs are gone or
no longer the files written (their SHA-256 in the shot's frames table). A shot colored again for the same inputs
keeps only those of its frames still as they were written.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from dataclasses import dataclass, field, replace

import fsspec

from jobs.manifest import (
    FRAME_TABLE_NAME,
    PLAN_TABLE_NAME,
    RUN_RECORD_NAME,
    SPEC_COPY_NAME,
    ShotRecord,
    frame_table,
    read_results,
    recorded_outputs,
    result_url,
    shot_record,
    write_result,
    write_table,
)
from jobs.plan import EpisodePlan, ShotPlan
from jobs.progress import ProgressReporter
from jobs.recording import NotRecorded, recording
from jobs.report import report_or_warn
from jobs.runner import RunSettings, run_shots
from model.files import write_bytes_atomic
from pipeline.finishing import frame_threads
from pipeline.frame_names import join_url, output_name
from pipeline.outputs import intact_outputs
from pipeline.shot import Shot, ShotOptions, ShotResult
from pipeline.status import ShotStatus

log = logging.getLogger(__name__)


@dataclass
class EpisodeResult:
    """What an episode run did.

    Args:
        results: the shots colored by this run.
        skipped: shots already complete for the same inputs (resume).
        unrecorded: what could not be written down (a results table ...), one line each; the frames are kept.
    """

    results: list[ShotResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unrecorded: list[str] = field(default_factory=list)  # records that could not be written, e.g. on a full disk

    @property
    def failed(self) -> list[ShotResult]:
        return [r for r in self.results if r.status is not ShotStatus.OK]

    def summary(self) -> str:
        frames = sum(r.written for r in self.results)
        seconds = max((r.seconds for r in self.results), default=0.0)
        lines = [
            f"{len(self.results)} shots colored ({frames} frames), {len(self.skipped)} already complete, "
            f"{len(self.failed)} failed"
        ]
        lines += [f"  {r.shot}: {r.status}: {r.error or f'{len(r.failures)} frames failed'}" for r in self.failed]
        if self.results:
            lines.append(f"longest shot took {seconds:.1f} s")
        return "\n".join(lines)


def shot_is_complete(shot: ShotPlan, recorded: ShotRecord | None, options: ShotOptions) -> bool:
    """A recorded ok result for the same input hash, with every output frame still the file written (its SHA-256
    in the shot's frames table; each is read back) and the video there."""
    storage_options = options.storage_options
    if recorded is None or recorded.status is not ShotStatus.OK or recorded.input_hash != shot.input_hash:
        return False
    written = recorded_outputs(shot.output, storage_options)
    if shot.frame_urls:
        expected = {output_name(url, options.cel_format.extension) for url in shot.frame_urls}
        if not expected <= written.keys():
            return False
        written = {name: written[name] for name in expected}
    elif len(written) < shot.frame_count:
        return False
    if len(intact_outputs(shot.output, written, storage_options, workers=frame_threads())) < len(written):
        return False
    return shot.video is None or fsspec.core.url_to_fs(shot.video, **storage_options)[0].exists(shot.video)


def shot_to_run(shot: ShotPlan, recorded: ShotRecord | None, resume: bool, storage_options: dict) -> Shot:
    """The shot as a worker colors it. Resuming a shot recorded for the same input hash, it may keep the frames its
    frames table records, those still as written; frames made from other inputs or options are all colored again."""
    run = shot.shot()
    if not resume or recorded is None or recorded.input_hash != shot.input_hash:
        return run
    return replace(run, recorded_outputs=recorded_outputs(shot.output, storage_options))


def run_episode(
    plan: EpisodePlan, address: str | None = None, resume: bool = True, cpu_workers: int = 1, retries: int = 2
) -> EpisodeResult:
    """Color every shot of the plan that is not complete yet, longest first, through Ray (one worker per GPU, or
    `cpu_workers` workers sharing the CPUs of a cluster without GPUs); a shot whose worker dies is retried up to
    `retries` times."""
    started = time.time()
    options = replace(plan.spec.options, resume=resume)
    storage = options.storage_options
    with recording(url := join_url(plan.spec.output, PLAN_TABLE_NAME)):
        write_table(plan.table(), url, storage)
    spec_json = json.dumps(plan.spec.to_dict(redact=True), indent=2, default=str) + "\n"
    with recording(url := join_url(plan.spec.output, SPEC_COPY_NAME)):
        write_bytes_atomic(spec_json.encode(), url, storage)
    recorded = read_results(plan.spec.output, storage) if resume else {}
    episode = EpisodeResult()
    todo: list[ShotPlan] = []
    for shot in plan.shots:
        if resume and shot_is_complete(shot, recorded.get(shot.name), options):
            episode.skipped.append(shot.name)
        else:
            todo.append(shot)
    if episode.skipped:
        log.info("skipping %d complete shots: %s", len(episode.skipped), ", ".join(episode.skipped))
    if not todo:
        finish_run(plan, episode, started)
        return episode
    todo.sort(key=lambda s: -s.frame_count)  # longest first: the last shot to start is a short one
    log.debug("coloring %d shots, longest first: %s", len(todo), ", ".join(f"{s.name} ({s.frame_count})" for s in todo))
    by_name = {shot.name: shot for shot in todo}

    def record(result: ShotResult) -> None:
        reporter.shot_done(result.shot)
        log.debug("%s", result.summary().splitlines()[0])
        shot = by_name[result.shot]
        record = shot_record(result, shot.keyframe, shot.input_hash, plan.weights_sha256, shot.reference)
        try:  # a shot not recorded is colored again by the next run: its frames are resumed
            if result.error is None:
                with recording(url := join_url(shot.output, FRAME_TABLE_NAME)):
                    write_table(frame_table([result]), url, storage)
            with recording(result_url(plan.spec.output, record.shot)):
                write_result(plan.spec.output, record, storage)
        except NotRecorded as failure:
            log.warning("shot %s: %s (its frames are kept; a rerun records it)", result.shot, failure)
            episode.unrecorded.append(str(failure))

    reporter = ProgressReporter(sum(s.frame_count for s in todo), shots=len(todo))
    try:
        settings = RunSettings(plan.weights, address, retries=retries, cpu_workers=cpu_workers)
        shots = [shot_to_run(shot, recorded.get(shot.name), resume, storage) for shot in todo]
        episode.results = run_shots(shots, options, settings, progress=reporter.update, on_result=record)
    finally:
        reporter.close()
        finish_run(plan, episode, started)  # also after a crash: the shots recorded so far
    return episode


def finish_run(plan: EpisodePlan, episode: EpisodeResult, started: float) -> None:
    """Record the run (when, what it colored and skipped, which weights) beside its results, then its report."""
    storage = plan.spec.options.storage_options
    record = {
        "started": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(time.time() - started, 1),
        "colored": [result.shot for result in episode.results],
        "skipped": episode.skipped,
        "weights": plan.weights,
        "weights_sha256": plan.weights_sha256,
    }
    try:
        data = (json.dumps(record, indent=2) + "\n").encode()
        write_bytes_atomic(data, join_url(plan.spec.output, RUN_RECORD_NAME), storage)
    except OSError as error:
        log.warning("could not record the run in %s: %s", plan.spec.output, error)
    report_or_warn(plan.spec.output, storage)
