"""Checks of a job's input files before any work starts, one way for `colorize-shot` (jobs/shot.py) and an
episode's plan (jobs/plan.py): the weights file and the colored keyframes. Each caller words a problem for its own
user (a ValueError for one shot, a list of 'field: problem' lines for a spec)."""

from __future__ import annotations

import logging

import numpy as np

from model.checkpoint import read_checkpoint_info
from model.files import storage_connection_errors
from pipeline.frames import read_frame
from pipeline.references import uncolored_warning

log = logging.getLogger(__name__)


def weights_problem(weights: str) -> str | None:
    """Why the weights file cannot be used (missing, not safetensors, not a colorizer, a store that cannot be
    reached), or None when it can."""
    try:
        with storage_connection_errors():
            read_checkpoint_info(weights)
    except ValueError as error:  # CheckpointError names the file and the problem
        return str(error)
    except OSError as error:
        return f"weights {weights!r} cannot be read: {error}"
    return None


def read_keyframe(url: str, storage_options: dict | None, *, max_pixels: int, resolution: int) -> np.ndarray:
    """A colored keyframe, decoded; raises FrameError (a ValueError) naming it when it cannot be read.

    Logs a warning for a keyframe with almost no color (line art given by mistake) and for one smaller than half
    the working resolution, which holds too little of the drawing's colors to be reliable.
    """
    image = read_frame(url, storage_options, max_pixels=max_pixels)
    if (warning := uncolored_warning(url, image)) is not None:
        log.warning(warning)
    if max(image.shape[:2]) < resolution / 2:
        log.warning("reference %r is %dx%d, less than half the working resolution (%d): it holds too little of the "
                    "drawing's colors to be reliable; give a larger keyframe", url, image.shape[1], image.shape[0],
                    resolution)  # fmt: skip
    return image
