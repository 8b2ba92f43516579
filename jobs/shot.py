"""The one-shot job behind `colorize-shot`: check the inputs, run the shot on Ray, report."""

from __future__ import annotations

import datetime
import json
import logging
import os
import time
from dataclasses import asdict, replace

import fsspec

from jobs.inputs import read_keyframe, weights_problem
from jobs.manifest import (
    FRAME_TABLE_NAME,
    RUN_RECORD_NAME,
    SPEC_COPY_NAME,
    frame_table,
    recorded_outputs,
    result_url,
    shot_record,
    write_result,
    write_table,
)
from jobs.progress import ProgressReporter
from jobs.recording import NotRecorded, recording
from jobs.report import report_or_warn
from jobs.runner import RunSettings, run_shots
from model.checkpoint import read_checkpoint_info
from model.files import write_bytes_atomic
from pipeline.frame_names import check_output_names, join_url, overwrite_problem
from pipeline.frames import list_frames, read_frame
from pipeline.shot import Shot, ShotOptions, ShotResult
from pipeline.shot_files import count_shot_frames, read_background, shot_background_url
from pipeline.video import VideoWriter, is_video

log = logging.getLogger(__name__)


def check_shot(shot: Shot, options: ShotOptions, weights: str) -> int:
    """Raise ValueError naming the file and the problem for inputs that cannot work; returns the frame count."""
    if shot.video is not None:
        VideoWriter(shot.video, options.fps, options.codec, options.storage_options)  # checks codec and container
    if background := shot_background_url(shot, options):
        read_background(background, options)
    elif options.background:
        msg = f"background {options.background!r} is what the video is laid over: give a video to write too"
        raise ValueError(msg)
    if (problem := weights_problem(weights)) is not None:
        raise ValueError(problem)
    for reference in shot.references:
        try:
            read_keyframe(reference.url, options.storage_options, max_pixels=options.max_pixels,
                          resolution=options.resolution)  # fmt: skip
        except ValueError as error:  # FrameError says what is wrong: missing, empty, truncated, not an image, too big
            msg = f"reference {reference.url!r} cannot be used: {error}"
            raise ValueError(msg) from error
        if reference.lines is not None:
            try:
                read_frame(reference.lines, options.storage_options, max_pixels=options.max_pixels)
            except ValueError as error:
                msg = f"keyframe line art {reference.lines!r} cannot be used: {error}"
                raise ValueError(msg) from error
    if is_video(shot.frames):
        total = count_shot_frames(shot, options)
    else:
        urls = list(shot.frame_urls) or list_frames(shot.frames, options.storage_options)
        check_output_names(urls)
        if (problem := overwrite_problem(shot.frames, urls, shot.output)) is not None:
            raise ValueError(problem)
        total = len(urls)
    for reference in shot.references:
        if reference.position is not None and reference.position >= total:
            msg = (
                f"reference {reference.url!r} is placed on frame {reference.position + 1}, but the shot has "
                f"{total} frames"
            )
            raise ValueError(msg)
    check_output_writable(shot.output, options.storage_options)
    return total


def check_output_writable(url: str, storage_options: dict) -> None:
    """Make sure the output can be written before any work starts, so that a wrong place is a usage error.

    A local folder is created now. An object store has no folders (and s3fs's makedirs would create a missing
    bucket): a small probe object is written and removed, which fails for a missing bucket or refused credentials.
    """
    fs, root = fsspec.core.url_to_fs(url, **storage_options)
    if "file" not in fs.protocol:
        probe = join_url(url, ".inkpaint-write-check")
        try:
            write_bytes_atomic(b"", probe, storage_options)
            fs.rm_file(fs._strip_protocol(probe))
        except OSError as error:
            msg = f"output {url!r} cannot be written: {error}"
            raise ValueError(msg) from error
        return
    try:
        fs.makedirs(root, exist_ok=True)
    except OSError as error:
        msg = f"output folder {url!r} cannot be created: {error}"
        raise ValueError(msg) from error
    if not os.access(root, os.W_OK):
        msg = f"output folder {url!r} is not writable"
        raise ValueError(msg)


def _absolute(url: str | None) -> str | None:
    """A local path made absolute (against the current folder); URLs stay."""
    return url if url is None or "://" in url else os.path.abspath(url)


def write_run_description(shot: Shot, options: ShotOptions) -> None:
    """Record what was asked (frames, keyframes, options; never storage options) beside the frames, for the report.

    Local paths are recorded absolute, and the folder the shot was run from as `working_folder`: the results and
    frames tables keep the paths as given, and the report resolves those against it."""
    asked = {key: value for key, value in asdict(options).items() if key != "storage_options"}
    references = [{**asdict(reference), "url": _absolute(reference.url), "lines": _absolute(reference.lines)}
                  for reference in shot.references]  # fmt: skip
    description = {"episode": shot.name, "frames": _absolute(shot.frames), "video": _absolute(shot.video),
                   "references": references, "working_folder": os.getcwd(), **asked}  # fmt: skip
    data = (json.dumps(description, indent=2) + "\n").encode()
    write_bytes_atomic(data, join_url(shot.output, SPEC_COPY_NAME), options.storage_options)


def write_run_record(shot: Shot, options: ShotOptions, weights: str, weights_sha256: str, started: float) -> None:
    """Record the run as an episode's is recorded (`jobs.episode.finish_run`): when, how long, which weights."""
    record = {
        "started": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(time.time() - started, 1),
        "colored": [shot.name],
        "skipped": [],
        "weights": weights,
        "weights_sha256": weights_sha256,
    }
    data = (json.dumps(record, indent=2) + "\n").encode()
    write_bytes_atomic(data, join_url(shot.output, RUN_RECORD_NAME), options.storage_options)


def colorize_one_shot(shot: Shot, options: ShotOptions, weights: str, address: str | None = None) -> ShotResult:
    """Check the inputs (ValueError on bad ones), then color the shot through Ray with progress on stderr."""
    started = time.time()
    total = check_shot(shot, options, weights)
    if options.resume:  # the frames an earlier run wrote here, as it wrote them: the only ones a rerun may keep
        shot = replace(shot, recorded_outputs=recorded_outputs(shot.output, options.storage_options))
    log.debug("shot %s: %d frames, weights %s, checked; coloring it on Ray", shot.name, total, weights)
    reporter = ProgressReporter(total)
    try:
        [result] = run_shots([shot], options, RunSettings(weights=weights, address=address), progress=reporter.update)
    finally:
        reporter.close()
    if result.error is None:
        try:
            record_shot(shot, options, weights, result, started)
        except NotRecorded as failure:
            raise NotRecorded(failure.url, failure.error, result) from failure.error
        report_or_warn(shot.output, options.storage_options)
    return result


def record_shot(shot: Shot, options: ShotOptions, weights: str, result: ShotResult, started: float) -> None:
    """Write the shot's frames table, its result row and the run's description; NotRecorded names a write that
    failed (a rerun colors the unrecorded frames again and records the shot)."""
    storage = options.storage_options
    with recording(table := join_url(shot.output, FRAME_TABLE_NAME)):
        write_table(frame_table([result]), table, storage)
    weights_sha256 = read_checkpoint_info(weights).sha256
    record = shot_record(result, keyframe=shot.reference, input_hash="", weights_sha256=weights_sha256,
                         reference=shot.reference)  # fmt: skip
    with recording(result_url(shot.output, record.shot)):
        write_result(shot.output, record, storage)
    with recording(join_url(shot.output, SPEC_COPY_NAME)):
        write_run_description(shot, options)
    with recording(join_url(shot.output, RUN_RECORD_NAME)):
        write_run_record(shot, options, weights, weights_sha256, started)
