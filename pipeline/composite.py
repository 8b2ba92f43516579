"""Lay the artist's lines over the model's colors: the fill, then the composite, at the frame's full size.

The model's colors come at the working resolution; they are scaled to the frame's own size and the line art, which is
never resampled, is multiplied over them (`multiply_lines`), so a 4K frame keeps its crisp lines. The fill decides
what lies under the lines: "soft" keeps the colors as the model predicted; "flat" gives every closed paint region
one color, a vote of the model's colors inside it (`vote_frame`, pipeline/region_vote.py); "auto" picks flat when
the line art encloses regions (`has_closed_regions`). Colored guide lines are then painted over or kept
(`finish_frame`, pipeline/guidelines.py).
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.cel import Cel
from pipeline.cielab import rgb_to_lab
from pipeline.guidelines import GUIDE_LINE_MODES, finish_guide_lines
from pipeline.lineart import LineArt, resize_bilinear
from pipeline.region_vote import RegionVote, paint_regions, region_colors, vote_regions, vote_regions_sampled
from pipeline.regions import paint_under_lines, segment_regions

FILLS = ("auto", "soft", "flat")
# With fill "auto", a shot is filled flat when its first frame's paint regions outside the largest one hold at least
# this share of its paper: open sketch lines leave nearly all the paper in one region, and flat fill would paint it
# one color.
CLOSED_PAPER_SHARE = 0.02
# Frames at least this many times larger than the model's working resolution are voted on a grid of every
# `sampled_vote_step`-th pixel (`vote_regions_sampled`), which still samples every pixel of the model's colors:
# 3-7x less vote time for a 1080p frame at 256 or 512, with the region colors of a full vote (in a comparison on
# the sample and an OpenMoji drawing, 0.02-0.08% of a frame's pixels differed by more than 10 levels, all at
# region edges).
SAMPLED_VOTE_UPSCALE = 3.0
SAMPLED_VOTE_MAX_STEP = 3


def sampled_vote_step(upscale: float) -> int:
    """The grid step of a sampled vote for colors enlarged `upscale` times: 2, or 3 from 3.5x up."""
    return max(2, min(SAMPLED_VOTE_MAX_STEP, int(upscale - 0.5)))


def has_closed_regions(art: LineArt, *, gap: int = 3) -> bool:
    """Whether the line art encloses paint regions that a flat fill can color (see CLOSED_PAPER_SHARE)."""
    labels = segment_regions(art.boundaries, gap=gap)
    sizes = np.bincount(labels.ravel())[1:]
    paper = int(sizes.sum())
    return paper > 0 and (paper - int(sizes.max())) >= CLOSED_PAPER_SHARE * paper


def upscale_lab(colors: np.ndarray, frame_shape: tuple[int, int]) -> np.ndarray:
    """CIELAB of colors (h, w, 3) uint8, taken at their own size and scaled bilinearly to (H, W, 3) float32: the
    conversion is the costly part, and a small image has far fewer pixels to convert."""
    return resize_bilinear(rgb_to_lab(colors), frame_shape)


def vote_frame(colors: np.ndarray, art: LineArt, *, gap: int = 3) -> tuple[np.ndarray, RegionVote]:
    """The model's colors (h, w, 3) uint8 at the working resolution over a frame's line art -> the colors at the
    frame's size and the vote of its paint regions, segmented from `art.boundaries`
    (`pipeline.region_vote.vote_regions`)."""
    frame_shape = art.shape
    full = resize_bilinear(colors, frame_shape)
    upscale = frame_shape[0] / colors.shape[0]
    if upscale < SAMPLED_VOTE_UPSCALE:
        lab = upscale_lab(colors, frame_shape)
        return full, vote_regions(full, art.boundaries, gap=gap, upscale=upscale, lab=lab)
    labels = segment_regions(art.boundaries, gap=gap)
    step = sampled_vote_step(upscale)
    grid_lab = upscale_lab(colors, labels[::step, ::step].shape)
    return full, vote_regions_sampled(full, labels, grid_lab, step, wall_width=max(2, round(2 * upscale / step)))


def multiply_lines(colors: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Lay the artist's line art (H, W) uint8 over colors (H, W, 3) uint8 by multiplication: a * b / 255, rounded
    (OpenCV's, which releases the GIL; Pillow's ImageChops.multiply held it, and rounded down)."""
    return cv2.multiply(colors, cv2.merge([lines, lines, lines]), scale=1 / 255)


def finish_frame(full: np.ndarray, art: LineArt, guide_lines: str = "paint", labels: np.ndarray | None = None) -> Cel:
    """Colors (H, W, 3) uint8 at the frame's size -> the finished frame (with its parts, a `Cel`): the colors run on
    under the lines (`paint_under_lines`), the lines multiplied over them, then the guide lines painted over or kept
    in their own color (`finish_guide_lines`).

    Args:
        full: the fill.
        art: the frame's line art.
        guide_lines: "paint" or "keep" (see `prepare_line_art`).
        labels: the paint regions of `art.boundaries` when at hand (flat fill), else the paper is found here.
    """
    full = paint_under_lines(full, art.lines)
    finished = multiply_lines(full, art.lines)
    if art.guides is None:
        return Cel(finished, full, art)
    if labels is None:
        labels = (art.boundaries >= 160).astype(np.int32)
    mode = guide_lines if guide_lines in GUIDE_LINE_MODES else "paint"
    return Cel(finish_guide_lines(finished, art.source, art.guides, labels, mode), full, art)


def composite_lines(
    colors: np.ndarray,
    art: LineArt,
    fill: str = "soft",
    palette: np.ndarray | None = None,
    guide_lines: str = "paint",
) -> Cel:
    """Colors (h, w, 3) uint8 at the working resolution + the frame's line art -> the finished frame (a `Cel`).

    The colors are scaled bilinearly to the frame's size and multiplied by the line art, which is never resampled.
    Done in 8-bit (Pillow's resize, integer multiply): this runs once per frame at full resolution, beside the
    model, and float32 work there cost as much as a third of the model's time. With `fill` "flat", every closed
    paint region between the lines first takes one color, a vote of the model's colors inside it
    (pipeline/region_vote.py), locked to `palette` when one is given; "soft" keeps the colors as the model predicted.
    ("auto" is decided per shot, by `has_closed_regions`, before this is called.)
    """
    if fill not in ("soft", "flat"):
        msg = f"unknown fill {fill!r} here; choose soft or flat"
        raise ValueError(msg)
    if fill == "soft":
        return finish_frame(resize_bilinear(colors, art.shape), art, guide_lines)
    full, vote = vote_frame(colors, art)
    return finish_frame(paint_regions(full, vote, region_colors(vote.lab, palette)), art, guide_lines, vote.labels)
