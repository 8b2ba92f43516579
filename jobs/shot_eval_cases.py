"""The shots `inkpaint eval --shots DIR` scores (`jobs.shot_eval`): found in DIR, each read as a case.

Each entry of DIR is one shot:
- a case folder: ``reference.png`` (the colored keyframe, frame 0), ``lines/`` (line art of the frames to color,
  0 ink, 255 paper) and ``truth/`` (their colored frames, under the same names), used as it is;
- a folder of colored frames, or a video file: cut at its first cut (`pipeline.cuts.detect_cuts` on the frames'
  line art), at most `max_frames` frames, and written as a case folder (`write_case_folder`). Frame 0 is the
  keyframe; every later frame is stripped to line art by the binary XDoG the model was trained on
  (`pipeline.correspondence.keyframe_line_art`, sigma 0.5 as in the development set) and becomes a target.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.files import natural_key
from pipeline.correspondence import keyframe_line_art
from pipeline.cuts import detect_cuts, thumbnail
from pipeline.frame_names import output_name
from pipeline.frames import list_frames, read_frame
from pipeline.lineart import resize_bilinear
from pipeline.outputs import write_frame
from pipeline.video import decode_video, is_video

log = logging.getLogger(__name__)

# Frames taken from a video or a frame folder, the keyframe included: 2 s at 24 fps, enough to show drift and
# flicker, and a folder of many shots still scores in minutes.
DEFAULT_MAX_FRAMES = 48
# A cut closer than this to the end of the frames read is not found (`detect_cuts` needs frames on both sides):
# read this many more than `max_frames`, so that every cut within them is seen.
CUT_LOOKAHEAD = 8
REFERENCE_NAME, LINES_FOLDER, TRUTH_FOLDER = "reference.png", "lines", "truth"


@dataclass(frozen=True)
class ShotSource:
    """One entry of the shots folder.

    Args:
        name: the entry's name in DIR (a video's with its extension).
        path: its path.
        kind: "case" (a prepared case folder), "frames" (a folder of colored frames) or "video".
    """

    name: str
    path: Path
    kind: str


def find_shots(folder: str | Path) -> list[ShotSource]:
    """The shots in a folder, in natural order of their names; other files are skipped with a warning.

    A folder holding reference.png, lines/ or truth/ is a case folder (and fails later if one is missing), any
    other folder a folder of colored frames; a file with a video extension is a video.

    Raises:
        ValueError: the folder does not exist or holds no shot.
    """
    root = Path(folder)
    if not root.is_dir():
        msg = f"shots folder {str(folder)!r} is not a folder"
        raise ValueError(msg)
    sources, skipped = [], []
    for entry in sorted(root.iterdir(), key=lambda path: natural_key(path.name)):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            parts = (entry / REFERENCE_NAME, entry / LINES_FOLDER, entry / TRUTH_FOLDER)
            sources.append(ShotSource(entry.name, entry, "case" if any(p.exists() for p in parts) else "frames"))
        elif is_video(entry.name):
            sources.append(ShotSource(entry.name, entry, "video"))
        else:
            skipped.append(entry.name)
    if skipped:
        log.warning("shots folder %s: skipping %d files that are neither folders nor videos: %s", root, len(skipped),
                    ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""))  # fmt: skip
    if not sources:
        msg = (
            f"shots folder {str(folder)!r} holds no shot: expected case folders (reference.png, lines/, truth/), "
            "folders of colored frames, or videos"
        )
        raise ValueError(msg)
    return sources


def read_colored_frames(source: ShotSource, count: int) -> list[np.ndarray]:
    """The first `count` frames of a frame folder or a video, (H, W, 3) uint8 each, all of one size.

    Raises:
        ValueError: a frame that cannot be read (FrameError, VideoError), or frames of different sizes.
    """
    if source.kind == "video":
        with closing(decode_video(str(source.path))) as frames:
            images = list(itertools.islice(frames, count))
    else:
        images = [read_frame(url) for url in list_frames(str(source.path))[:count]]
    for index, image in enumerate(images):
        if image.shape != images[0].shape:
            msg = (
                f"{source.kind} {str(source.path)!r}: frame {index} is {image.shape[1]}x{image.shape[0]} but frame 0 "
                f"is {images[0].shape[1]}x{images[0].shape[0]}; a shot's frames must share one size"
            )
            raise ValueError(msg)
    return images


def first_shot_length(lines: Sequence[np.ndarray]) -> int:
    """How many of the frames, from the first, belong to the first shot: up to the first cut `detect_cuts` finds in
    their line art (which, like the project's cut detection everywhere, ignores "shots" under 4 frames)."""
    if len(lines) < 2:
        return len(lines)
    cuts = detect_cuts([thumbnail(frame) for frame in lines])
    return cuts[0] if cuts else len(lines)


def write_case_folder(source: ShotSource, folder: Path, max_frames: int = DEFAULT_MAX_FRAMES) -> Path:
    """Turn a frame folder or a video into a case folder: its first shot, at most `max_frames` frames; frame 0 is
    reference.png, the others lines/NNNN.png (XDoG) and truth/NNNN.png. Returns `folder`.

    Args:
        source: a "frames" or "video" source.
        folder: where to write the case (created).
        max_frames: the most frames taken, the keyframe included.

    Raises:
        ValueError: unreadable frames, frames of different sizes, or fewer than 2 frames in the first shot.
    """
    frames = read_colored_frames(source, max_frames + CUT_LOOKAHEAD)
    lines = [keyframe_line_art(frame) for frame in frames]  # the carried colors extract a keyframe's lines alike
    shot_length = first_shot_length(lines)
    if shot_length < min(len(frames), max_frames + 1):
        log.info("%s: a cut before frame %d; scoring the %d frames before it", source.name, shot_length, shot_length)
    length = min(shot_length, max_frames)
    if length < 2:
        msg = f"{source.kind} {str(source.path)!r} has {length} frame(s): need a keyframe and a frame to color"
        raise ValueError(msg)
    (folder / LINES_FOLDER).mkdir(parents=True)
    (folder / TRUTH_FOLDER).mkdir()
    write_frame(frames[0], str(folder / REFERENCE_NAME))
    digits = max(4, len(str(length - 1)))
    for index in range(1, length):
        name = f"{index:0{digits}d}.png"
        write_frame(lines[index], str(folder / LINES_FOLDER / name))
        write_frame(frames[index], str(folder / TRUTH_FOLDER / name))
    return folder


@dataclass
class CaseData:
    """A case read into memory.

    Args:
        name: the shot's name.
        kind: see `ShotSource`.
        folder: the case folder the pipeline reads (reference.png, lines/, truth/).
        keyframe: frame 0 at the targets' size, (H, W, 3) uint8.
        output_names: the pipeline's output file name of each target frame, in order.
        lines: line art of the targets, (H, W) uint8 each.
        truth: the true colored targets, (H, W, 3) uint8 each.
    """

    name: str
    kind: str
    folder: Path
    keyframe: np.ndarray
    output_names: list[str]
    lines: list[np.ndarray]
    truth: list[np.ndarray]


def load_case(folder: Path, name: str, kind: str = "case") -> CaseData:
    """Read a case folder; frames are matched to their truth by file stem.

    Raises:
        ValueError: a missing or unreadable file or folder, a frame without its truth, or frames of different sizes.
    """
    reference = folder / REFERENCE_NAME
    if not reference.is_file():
        msg = f"case folder {str(folder)!r} has no {REFERENCE_NAME}"
        raise ValueError(msg)
    for path in (folder / LINES_FOLDER, folder / TRUTH_FOLDER):
        if not path.is_dir():
            msg = f"case folder {str(folder)!r} has no {path.name}/ folder"
            raise ValueError(msg)
    keyframe = read_frame(str(reference))
    line_urls = list_frames(str(folder / LINES_FOLDER))
    truth_urls = {Path(url).stem: url for url in list_frames(str(folder / TRUTH_FOLDER))}
    missing = [Path(url).name for url in line_urls if Path(url).stem not in truth_urls]
    if missing:
        msg = f"case folder {str(folder)!r}: no truth/ frame for {', '.join(missing[:5])}" + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise ValueError(msg)
    lines, truth = [], []
    for url in line_urls:
        line, true = read_frame(url, gray=True), read_frame(truth_urls[Path(url).stem])
        for other, what in ((true, "its truth"), (lines[0] if lines else line, "the first frame")):
            if other.shape[:2] != line.shape:
                msg = (
                    f"case folder {str(folder)!r}: lines/{Path(url).name} is {line.shape[1]}x{line.shape[0]} but "
                    f"{what} is {other.shape[1]}x{other.shape[0]}; a shot's frames and truth must share one size"
                )
                raise ValueError(msg)
        lines.append(line)
        truth.append(true)
    keyframe = resize_bilinear(keyframe, lines[0].shape)
    return CaseData(name, kind, folder, keyframe, [output_name(url) for url in line_urls], lines, truth)
