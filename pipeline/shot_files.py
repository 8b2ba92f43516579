"""A shot's files around the engine: its frames, its keyframes' line art, the outputs a rerun keeps, its background
and its video.

pipeline/colorize.py colors; what it reads and writes of a shot besides the frames it reads ahead and writes behind
(pipeline/frames.py, pipeline/outputs.py) is here: how many frames a shot has and a line-art video's frames, the
line art each keyframe was painted over, which outputs a rerun keeps and so which frames it colors again, the
background read once, and the video. jobs/ checks a shot's frame count and background with these before it runs,
without loading a model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterator
from functools import partial

import numpy as np

from model.files import remove_stale_temporaries
from pipeline.cel import Background
from pipeline.finishing import HeldVideoCels, PendingFrame, frame_threads, frame_to_color
from pipeline.frame_names import join_url, output_name, sequence_frame_name
from pipeline.frames import FrameRead, list_frames, read_frame
from pipeline.lineart import LineArt
from pipeline.outputs import WrittenFile, intact_outputs
from pipeline.shot import FrameRecord, Shot, ShotOptions, ShotResult
from pipeline.video import VideoWriter, decode_video, frame_timecode, is_video


def count_shot_frames(shot: Shot, options: ShotOptions) -> int:
    """How many frames a shot has (a video is decoded to count: container frame counts are unreliable)."""
    if shot.frame_urls:
        return len(shot.frame_urls)
    if is_video(shot.frames):
        return sum(1 for _ in decode_video(shot.frames, options.storage_options))
    return len(list_frames(shot.frames, options.storage_options))


def video_line_art(
    url: str, total: int, storage_options: dict, prepare: Callable[[np.ndarray], LineArt], extension: str = ".png"
) -> Iterator[FrameRead]:
    """The frames of a line-art video, prepared, named frame_00001.png ... (`sequence_frame_name`, with
    `extension`)."""
    for index, rgb in enumerate(decode_video(url, storage_options)):
        name = sequence_frame_name(index, total, extension)
        try:
            yield FrameRead(index, name, prepare(rgb), None)
        except ValueError as error:
            yield FrameRead(index, name, None, error)


def keyframe_lines(
    shot: Shot, options: ShotOptions, prepare: Callable[[np.ndarray], LineArt]
) -> list[np.ndarray | None]:
    """The line art each of the shot's keyframes was painted over, made ready by `prepare`: the file the studio gave,
    else the frame it was painted on (when that frame is a file of the shot); None for a keyframe with neither, whose
    lines are then drawn from it (`carrier_from`)."""
    read = partial(read_frame, storage_options=options.storage_options, max_pixels=options.max_pixels, gray="auto")
    urls: list[str] = []
    painted_on = []
    for reference in shot.references:
        lines = None
        if reference.lines is not None:
            try:
                lines = prepare(read(reference.lines)).lines
            except ValueError as error:
                msg = f"keyframe line art {reference.lines!r} (of {reference.url!r}) cannot be used: {error}"
                raise ValueError(msg) from error
        elif reference.position is not None and not is_video(shot.frames):
            urls = urls or list(shot.frame_urls) or list_frames(shot.frames, options.storage_options)
            lines = prepare(read(urls[reference.position])).lines
        painted_on.append(lines)
    return painted_on


def existing_outputs(shot: Shot, options: ShotOptions) -> dict[str, WrittenFile]:
    """The outputs a rerun keeps, by name: with resume, those of `shot.recorded_outputs` still there byte for byte
    (the SHA-256 recorded when they were written) that decode. Any other file under an output's name (changed,
    truncated, never recorded) is colored again and replaced; nothing is kept without resume, nor for a video over
    a background, whose frames need each cel's paper alpha, which a file written over white no longer holds. First,
    temporaries an interrupted run left of the shot's frames are removed."""
    extension = options.cel_format.extension
    remove_stale_temporaries(shot.output, lambda name: name.endswith(extension), options.storage_options)
    if not options.resume or not shot.recorded_outputs or shot_background_url(shot, options):
        return {}
    return intact_outputs(shot.output, shot.recorded_outputs, options.storage_options, workers=frame_threads())


def pending_frame(
    read: FrameRead,
    shot: Shot,
    options: ShotOptions,
    existing: Container[str],
    result: ShotResult,
    order: list[int] | None,
    keep_lines: bool = False,
) -> PendingFrame:
    """Decide what happens to one frame, read in the coloring `order` (None: in shot order): resumed (its output is
    one of the `existing` a rerun keeps), failed, or to be colored. A resumed frame keeps its line art when
    `keep_lines` (a rerun that colors some of the shot's frames), for the frames colored after it to be carried
    through it, and their fill decided on it, exactly as in a run that colored them all."""
    place = order[read.index] if order else read.index  # its place in the shot
    try:
        name = read.url if is_video(shot.frames) else output_name(read.url, options.cel_format.extension)
    except ValueError as error:
        return PendingFrame(place, "", read.url, failure=str(error))
    if name not in existing:
        return frame_to_color(read, name, place)
    result.resumed += 1
    pending = PendingFrame(place, name, read.url, resumed=True)
    if keep_lines and read.error is None:
        pending.art = read.array
    if shot.video:
        out_url = join_url(shot.output, name)
        pending.finished = read_frame(out_url, options.storage_options, max_pixels=options.max_pixels)
    return pending


def shot_background_url(shot: Shot, options: ShotOptions) -> str:
    """The background the shot's video is laid over; "" when there is none (or no video)."""
    return options.background if shot.video is not None else ""


def read_background(url: str, options: ShotOptions) -> Background:
    """The shot's background, read once; raises ValueError naming the file when it cannot be used."""
    try:
        return Background(read_frame(url, options.storage_options, max_pixels=options.max_pixels))
    except ValueError as error:  # FrameError says what is wrong: missing, empty, truncated, not an image, too big
        msg = f"background {url!r} cannot be used: {error}"
        raise ValueError(msg) from error


def shot_video(shot: Shot, options: ShotOptions) -> VideoWriter:
    """The writer of the shot's video. When the shot's first frame's name ends in a number (sh010_0001.png), the
    video starts at that frame's timecode."""
    timecode = None
    if not is_video(shot.frames):
        first = shot.frame_urls[0] if shot.frame_urls else list_frames(shot.frames, options.storage_options)[0]
        if (number := re.search(r"(\d+)\D*$", first.rpartition("/")[2])) is not None:
            timecode = frame_timecode(int(number[1]), options.fps)
    return VideoWriter(shot.video, options.fps, options.codec, options.storage_options, timecode)


def encode_video_from_outputs(
    shot: Shot, options: ShotOptions, records: list[FrameRecord], held: HeldVideoCels | None = None
) -> None:
    """Write the shot's video in frame order from its output frames, or over its background from the cels `held`;
    a frame without one holds the previous frame."""
    video = shot_video(shot, options)
    try:
        for record in records:
            frame = None
            if held is not None:
                frame = held.frame(record.index)
            elif record.output:
                frame = read_frame(record.output, options.storage_options, max_pixels=options.max_pixels)
            video.write_or_hold(frame)
    except BaseException:
        video.abort()
        raise
    video.close()
