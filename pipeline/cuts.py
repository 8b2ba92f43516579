"""Cut a long line-art sequence into shots.

Every frame becomes a small blurred map of where its ink is (:func:`thumbnail`); consecutive maps are compared while
allowing a small shift (:func:`line_change`), so a drawing that moves a little changes little. A cut is a change
well above the changes around it (:func:`detect_cuts`): a fast shot's every frame changes a lot, a still shot's
hardly at all, and one fixed threshold could not serve both. :func:`split_sequence` turns the cuts into
:class:`ShotFrames`, the shots that :mod:`pipeline.keyframes` then gives their keyframes.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from model.xdog import gaussian_blur
from pipeline.frame_names import name_problem
from pipeline.frames import FrameReader

THUMBNAIL_SIZE = 64
# Ink is spread by a 3x3 max filter and a Gaussian of 1.5 px at the thumbnail's size (about 1/20 of the frame in
# all): a line that moved a few pixels still overlaps its old place, while a different drawing does not.
_INK_SPREAD = 3
_INK_BLUR_SIGMA = 1.5
# line_change forgives a shift of up to 3 thumbnail pixels (about 1/20 of the frame): a pan, a walking character.
# On fast-moving OpenMoji shots (160x120, 8 frames) it cut the largest frame-to-frame change from 0.55 to 0.24.
DEFAULT_MAX_SHIFT = 3

# A cut must be at least `ratio` times the shot's usual change and at least `floor`. Measured on 40 animated OpenMoji
# shots (10 drawings x slow, fast, zoom and pan moves, 8 frames at 160x120): frame-to-frame changes within a shot
# were 0.05-0.32 (median 0.06 for the slow move, 0.15-0.20 for the others), and no change was more than 1.25 times
# the median of its neighbours; from the last frame of one shot to the first of another of a different drawing the
# change was at least 0.26 (5th percentile 0.45, median 0.72).
# - ratio 2: leaves room over the 1.25 of smooth motion for the jerkier motion of real animation, while a cut out of
#   a fast shot (usual change ~0.2) still clears it. Joining two of those shots or of 10 still ones (2,250 ordered
#   pairs of different drawings), ratio 2 with floor 0.25 missed 7 cuts and found no false ones; 2.5 missed 68 and
#   3 missed 242. The same shots held on twos or threes gave no false cuts either. A missed cut is the costlier
#   mistake: the second shot is colored from the first shot's keyframe, while a false cut only splits a shot whose
#   halves are then (most likely) keyed alike.
# - floor 0.25: in a still shot the usual change is ~0 and the ratio alone would call a blink a cut; a gesture
#   moves a part of the ink, a cut replaces most of it (the closest pair, a turtle and a camera drawn at one size,
#   changed by 0.26).
DEFAULT_RATIO = 2.0
DEFAULT_FLOOR = 0.25
# 4 frames (1/6 s at 24 fps): shorter "shots" are flashes, smears or impact frames, not shots a colorist keys on
# their own. Of cuts closer than this the stronger one is kept.
DEFAULT_MIN_SHOT_LENGTH = 4
# The usual change around a candidate is the median of up to this many changes on each side of it.
_NEIGHBOURS = 4
# Changes below this are a drawing held for another frame (animation on twos and threes); they say nothing about
# how fast the shot moves, so the usual change is taken over the others.
_HOLD = 0.02
# ... but over at least this many: around a cut in a held (still) shot the only other change may be a second cut a
# few frames away (a flash frame), and taken alone it would hide both. With fewer, the shot is held: usual change 0.
_MIN_MOVING = 2


def thumbnail(gray: np.ndarray, size: int = THUMBNAIL_SIZE) -> np.ndarray:
    """A small picture of where a frame's ink is, for comparing line art between frames.

    The frame is area-downscaled to size x size (whatever its aspect: frames of one sequence share it), then the ink
    is spread a little (3x3 max filter, Gaussian blur) so that a small motion overlaps rather than replaces it.

    Args:
        gray: line art, (H, W) uint8, 0 = ink, 255 = paper.
        size: side of the square thumbnail in pixels.

    Returns:
        float32 (size, size) array, 0 = paper, larger = more ink nearby.
    """
    if gray.ndim != 2 or gray.dtype != np.uint8:
        msg = f"thumbnail expects a (H, W) uint8 gray frame, got {gray.dtype} {gray.shape}"
        raise ValueError(msg)
    if size < 8:
        msg = f"thumbnail size must be at least 8 pixels, got {size}"
        raise ValueError(msg)
    ink = Image.fromarray(255 - gray, "L").resize((size, size), Image.Resampling.BOX)
    ink = ink.filter(ImageFilter.MaxFilter(_INK_SPREAD))
    return gaussian_blur(np.asarray(ink, dtype=np.float32) / 255, _INK_BLUR_SIGMA)


def line_change(a: np.ndarray, b: np.ndarray, *, max_shift: int = DEFAULT_MAX_SHIFT) -> float:
    """How different two thumbnails' line art is: 0 for the same ink, 1 for ink in entirely different places.

    The sum of absolute differences over the sum of the ink of both, at the best of all shifts of `a` by up to
    `max_shift` pixels each way (ink shifted out of the frame counts for neither), so a pan or a walk changes less
    than a new drawing. A blank frame against a blank frame is 0, against any drawing 1.

    Args:
        a: a thumbnail from :func:`thumbnail`.
        b: another thumbnail of the same size.
        max_shift: the largest shift forgiven, in thumbnail pixels.
    """
    if a.shape != b.shape or a.ndim != 2:
        msg = f"line_change compares two thumbnails of one (size, size) shape, got {a.shape} and {b.shape}"
        raise ValueError(msg)
    if max_shift < 0:
        msg = f"line_change max_shift must be >= 0, got {max_shift}"
        raise ValueError(msg)
    padded = np.pad(a, max_shift)  # paper around the frame: ink shifted out of it is gone
    windows = np.lib.stride_tricks.sliding_window_view(padded, b.shape)  # (2s+1, 2s+1, size, size)
    # Each shift is measured against the ink it keeps, so pushing ink out of the frame does not pass for a match.
    total = windows.sum(axis=(2, 3), dtype=np.float64) + b.sum(dtype=np.float64)  # (2s+1, 2s+1)
    difference = np.abs(windows - b).sum(axis=(2, 3), dtype=np.float64)
    if not total.any():
        return 0.0
    ratios = np.divide(difference, total, out=np.ones_like(total), where=total > 0)
    return min(1.0, float(ratios.min()))


def frame_changes(thumbnails: Sequence[np.ndarray], *, max_shift: int = DEFAULT_MAX_SHIFT) -> list[float]:
    """The line change from each frame to the next: element i is the change from frame i to frame i + 1.

    Args:
        thumbnails: thumbnails of the frames in order, all of one size.
        max_shift: see :func:`line_change`.
    """
    for index, thumb in enumerate(thumbnails):
        if thumb.shape != thumbnails[0].shape:
            msg = f"thumbnail {index} is {thumb.shape}, thumbnail 0 is {thumbnails[0].shape}; make all at one size"
            raise ValueError(msg)
    return [line_change(a, b, max_shift=max_shift) for a, b in itertools.pairwise(thumbnails)]


def detect_cuts(
    thumbnails: Sequence[np.ndarray],
    *,
    ratio: float = DEFAULT_RATIO,
    floor: float = DEFAULT_FLOOR,
    min_shot_length: int = DEFAULT_MIN_SHOT_LENGTH,
    max_shift: int = DEFAULT_MAX_SHIFT,
) -> list[int]:
    """The frames that start a new shot in a sequence holding several shots back to back.

    The change into frame i is a cut when it is at least `floor` and at least `ratio` times the shot's usual
    change there: the median of up to 4 changes on each side of it, leaving out the candidate itself and held
    drawings (0 when fewer than 2 are left: the shot is held still there). Cuts closer than `min_shot_length`
    frames to each other or to either end of the sequence are dropped, weakest first (strength = change /
    threshold). The defaults, and why, are at the top of this module.

    Args:
        thumbnails: thumbnails of the frames in order (see :func:`read_thumbnails`), all of one size.
        ratio: how many times the usual change a cut must be; at least 1.
        floor: the smallest change that can be a cut, in (0, 1].
        min_shot_length: the fewest frames a shot may have; 1 allows one-frame shots.
        max_shift: see :func:`line_change`.

    Returns:
        Sorted indices of the first frame of every shot but the first (never 0); empty for a single shot.
    """
    if not ratio >= 1:
        msg = f"detect_cuts ratio must be >= 1 (a cut stands out from the shot's usual change), got {ratio}"
        raise ValueError(msg)
    if not 0 < floor <= 1:
        msg = f"detect_cuts floor must be in (0, 1] (line_change's range), got {floor}"
        raise ValueError(msg)
    if min_shot_length < 1:
        msg = f"detect_cuts min_shot_length must be >= 1 frame, got {min_shot_length}"
        raise ValueError(msg)

    changes = frame_changes(thumbnails, max_shift=max_shift)
    candidates: list[tuple[float, int]] = []  # (strength, first frame of the new shot)
    for k, change in enumerate(changes):
        if change < floor:
            continue
        around = changes[max(0, k - _NEIGHBOURS) : k] + changes[k + 1 : k + 1 + _NEIGHBOURS]
        moving = [c for c in around if c >= _HOLD]
        usual = float(np.median(moving)) if len(moving) >= _MIN_MOVING else 0.0
        threshold = max(floor, ratio * usual)
        if change >= threshold:
            candidates.append((change / threshold, k + 1))

    count = len(thumbnails)
    cuts: list[int] = []
    for _, frame in sorted(candidates, key=lambda item: (-item[0], item[1])):
        fits_ends = frame >= min_shot_length and count - frame >= min_shot_length
        if fits_ends and all(abs(frame - cut) >= min_shot_length for cut in cuts):
            cuts.append(frame)
    return sorted(cuts)


def read_thumbnails(
    urls: Sequence[str], storage_options: dict | None = None, size: int = THUMBNAIL_SIZE
) -> list[np.ndarray]:
    """Thumbnails of a sequence's frames, read ahead on threads as gray line art.

    Args:
        urls: the frames in order (e.g. from :func:`pipeline.frames.list_frames`).
        storage_options: fsspec options for the URLs.
        size: thumbnail side, see :func:`thumbnail`.

    Returns:
        One float32 (size, size) thumbnail per URL. A frame that cannot be read raises a ValueError naming it: a
        missing frame would shift every later frame's place and put cuts in the wrong place.
    """
    thumbnails = []
    for read in FrameReader(urls, storage_options, gray=True):
        if read.error is not None:
            msg = (
                f"cannot detect cuts: frame {read.index} of the sequence, {read.url!r}, could not be read: {read.error}"
            )
            raise ValueError(msg) from read.error
        thumbnails.append(thumbnail(read.array, size))
    return thumbnails


@dataclass(frozen=True)
class ShotFrames:
    """One shot's line-art frames.

    Args:
        name: the shot's name.
        frames: the frame URLs in order (a list is stored as a tuple).
    """

    name: str
    frames: tuple[str, ...]

    def __post_init__(self) -> None:
        if isinstance(self.frames, str):
            msg = f"shot {self.name!r}: frames must be a sequence of frame URLs, got the single string {self.frames!r}"
            raise ValueError(msg)
        object.__setattr__(self, "frames", tuple(self.frames))  # hashable, so features can be cached per shot
        if not self.frames:
            msg = f"shot {self.name!r} has no frames"
            raise ValueError(msg)


def split_sequence(urls: Sequence[str], cuts: Sequence[int], name_prefix: str = "shot") -> list[ShotFrames]:
    """Cut a sequence's frames into shots named prefix001, prefix002, ...

    Args:
        urls: the sequence's frames in order.
        cuts: the first frame of every shot but the first, increasing (as :func:`detect_cuts` returns).
        name_prefix: shot names are this followed by a 3-digit number from 001.
    """
    if not urls:
        msg = "cannot split an empty sequence into shots: no frame URLs given"
        raise ValueError(msg)
    first = f"{name_prefix}001"
    if (problem := name_problem(first)) is not None:  # shot names become folder names
        msg = f"name prefix {name_prefix!r} makes shot names like {first!r} that cannot name a folder: {problem}"
        raise ValueError(msg)
    bounds = [0, *cuts, len(urls)]
    for before, after in itertools.pairwise(bounds):
        if not before < after:
            msg = f"cuts {list(cuts)} must increase strictly and lie in 1..{len(urls) - 1} for {len(urls)} frames"
            raise ValueError(msg)
    return [
        ShotFrames(f"{name_prefix}{number:03d}", tuple(urls[start:end]))
        for number, (start, end) in enumerate(itertools.pairwise(bounds), start=1)
    ]
