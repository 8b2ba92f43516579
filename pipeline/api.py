"""Coloring shots from Python (a notebook, a script): in this process, without Ray or the command line.

- `colorize_frames`: line-art frames and a colored keyframe as numpy arrays in, the colored frames as arrays out;
  nothing is written.
- `colorize_folder`: a folder of line-art frames (or a video of them, on any fsspec URL) and a keyframe file in, one
  PNG per frame (and a video, if asked) out, as `colorize-shot` writes them.

Both take the shot's options as keyword arguments, the fields of `ShotOptions` (`fill="flat"`, `resolution=512`,
`color_source="combined"` ...), which checks them: a bad value raises its `InvalidOptions`, naming the field. Both
color through the same `ShotColorizer` engine, so `colorize_frames` returns exactly the pixels that `colorize_folder`
writes for the same frames saved as PNGs.

A `ShotColorizer` holds the loaded weights on their device, set up once. Without one, each call loads the shipped
weights on the CPU (about 0.7 s on a 2-core CPU); to color many shots, set one up and pass it to every call:

    colorizer = ShotColorizer.from_weights(device="cuda")  # weights, device, precision, compile: once
    colored = [colorize_frames(frames, keyframe, colorizer=colorizer) for frames, keyframe in shots]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.colorize import ShotColorizer
from pipeline.frame_names import overwrite_problem
from pipeline.frames import list_frames
from pipeline.references import ShotReference
from pipeline.shot import Shot, ShotOptions, ShotResult
from pipeline.video import is_video

__all__ = ["ShotColorizer", "colorize_folder", "colorize_frames"]


def colorize_frames(
    frames: Sequence[np.ndarray],
    keyframe: np.ndarray,
    *,
    keyframe_position: int | None = None,
    extra_keyframes: Sequence[tuple[np.ndarray, int | None]] = (),
    colorizer: ShotColorizer | None = None,
    **options: Any,
) -> list[np.ndarray]:
    """Color a shot's line-art frames like its keyframe, in memory.

    Args:
        frames: the shot's line art in order, each (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA (straight alpha:
            lines drawn on transparent paper), uint8 or uint16, dark ink on light or transparent paper, as read from
            the files (`np.asarray(PIL.Image.open(path))`); sizes may differ.
        keyframe: the colored keyframe, (H, W, 3) uint8 RGB; its size need not be the frames'.
        keyframe_position: index (0-based) into `frames` of the frame the keyframe was painted on: frames are then
            colored outward from it, and its lines carry the colors. None: the keyframe is none of `frames`.
        extra_keyframes: more keyframes of the shot (say its last drawing), each (H, W, 3) uint8 with the index of
            the frame it was painted on (or None); every frame draws on all of them, the nearer weighing more.
        colorizer: the loaded weights to color with (`ShotColorizer.from_weights`); None loads the shipped weights
            on the CPU for this call. Its precision and compile are the options' unless given.
        options: `ShotOptions` fields; those about files (fps, codec, resume, storage_options, max_pixels,
            layers, file_format) do nothing.

    Returns:
        The colored frames, one for each of `frames`, in order and each its size: (H, W, 3) RGB over white, or with
        `paper="transparent"` (H, W, 4) RGBA; uint8, or uint16 for 16-bit frames (`depth`).

    Raises:
        ValueError: a frame or keyframe that is not such an array, or a keyframe position outside `frames`;
            `InvalidOptions` (a ValueError) for an option's value; TypeError for an unknown option.
        RuntimeError: a frame could not be colored; the message is the shot's summary, with each frame's reason.
    """
    shot_options = _shot_options(colorizer, options)
    colorizer = colorizer or _shipped_colorizer(shot_options)
    keyframes = [(keyframe, keyframe_position), *extra_keyframes]
    colored, result = colorizer.run_arrays(frames, keyframes, shot_options)
    if result.failures:
        raise RuntimeError(result.summary())
    return colored  # type: ignore[return-value]  # no failures: every frame is there


def colorize_folder(
    frames: str,
    keyframe: str,
    output: str,
    *,
    keyframe_position: int | None = None,
    extra_keyframes: Sequence[tuple[str, int | None]] = (),
    video: str | None = None,
    colorizer: ShotColorizer | None = None,
    **options: Any,
) -> ShotResult:
    """Color the line art in a folder (or a video) like its keyframe, writing one PNG per frame into `output`, named
    as the frame with .png (a video's frames: frame_00001.png ...), as `colorize-shot` does.

    Args:
        frames: a folder of line-art images, or a video file of line art; a path or an fsspec URL (s3://...).
        keyframe: the colored keyframe's path or URL.
        output: the folder receiving the PNGs (created if missing); not the frames folder.
        keyframe_position: index (0-based, in natural order of the frames' names) of the frame the keyframe was
            painted on; None: none of them. See `colorize_frames`.
        extra_keyframes: more keyframes, each (path or URL, index of the frame it was painted on or None).
        video: a video file to write too (.mp4, .mov, .mkv; `codec`, `fps` options), or None.
        colorizer: as for `colorize_frames`.
        options: `ShotOptions` fields.

    Returns:
        What happened (`ShotResult`): frames written and failed with their reasons; `.summary()` says it in lines.
        An unreadable keyframe or folder is reported there too (`.error`), not raised.

    Raises:
        ValueError: the output folder would overwrite the line art; `InvalidOptions` for an option's value.
    """
    shot_options = _shot_options(colorizer, options)
    if not is_video(frames):
        try:
            urls = list_frames(frames, shot_options.storage_options)
        except ValueError:
            urls = []  # the run reports what is wrong with the folder
        if (problem := overwrite_problem(frames, urls, output)) is not None:
            raise ValueError(problem)
    colorizer = colorizer or _shipped_colorizer(shot_options)
    extra = tuple(ShotReference(url, position) for url, position in extra_keyframes)
    name = frames.rstrip("/").rsplit("/", 1)[-1] or "shot"
    shot = Shot(name, frames, keyframe, output, video, keyframe_position=keyframe_position, extra_references=extra)
    return colorizer.run(shot, shot_options)


def _shot_options(colorizer: ShotColorizer | None, options: dict[str, Any]) -> ShotOptions:
    """The options checked by ShotOptions; precision and compile, unless given, those `colorizer` was set up with."""
    if colorizer is not None:
        options = {"precision": colorizer.precision, "compile": colorizer.compile, **options}
    return ShotOptions(**options)


def _shipped_colorizer(options: ShotOptions) -> ShotColorizer:
    """The shipped weights on the CPU, set up for the options' precision and compile."""
    return ShotColorizer.from_weights(precision=options.precision, compile=options.compile)
