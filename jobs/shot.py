"""The one-shot job behind `colorize-shot`: check the inputs, run the shot on Ray, report."""

from __future__ import annotations

from jobs.progress import ProgressReporter
from jobs.runner import RunSettings, run_shots
from model.checkpoint import read_checkpoint_info
from pipeline.colorize import Shot, ShotOptions, ShotResult, count_shot_frames, is_video
from pipeline.frames import read_frame
from pipeline.video import CODECS


def check_shot(shot: Shot, options: ShotOptions, weights: str) -> int:
    """Raise ValueError naming the file and the problem for inputs that cannot work; returns the frame count."""
    if options.codec not in CODECS:
        msg = f"unknown video codec {options.codec!r}; choose one of {sorted(CODECS)}"
        raise ValueError(msg)
    read_checkpoint_info(weights)  # raises CheckpointError (a ValueError) for a bad weights file
    try:
        read_frame(shot.reference, options.storage_options, max_pixels=options.max_pixels)
    except FileNotFoundError as error:
        msg = f"reference {shot.reference!r} does not exist"
        raise ValueError(msg) from error
    except ValueError as error:
        msg = f"reference {shot.reference!r} is not a usable image: {error}"
        raise ValueError(msg) from error
    if not is_video(shot.frames) and shot.output.rstrip("/") == shot.frames.rstrip("/"):
        msg = f"output folder {shot.output!r} is the frames folder; choose another so inputs are never overwritten"
        raise ValueError(msg)
    return count_shot_frames(shot, options)


def colorize_one_shot(shot: Shot, options: ShotOptions, weights: str, address: str | None = None) -> ShotResult:
    """Check the inputs (ValueError on bad ones), then color the shot through Ray with progress on stderr."""
    total = check_shot(shot, options, weights)
    reporter = ProgressReporter(total)
    try:
        [result] = run_shots([shot], options, RunSettings(weights=weights, address=address), progress=reporter.update)
    finally:
        reporter.close()
    return result
