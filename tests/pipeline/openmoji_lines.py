"""Line-art frames of moving OpenMoji drawings (CC BY-SA 4.0), for the cut and keyframe tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from model.data import openmoji_svg_dir
from model.synthetic_shots import Motion, render_openmoji_shot

WIDTH, HEIGHT = 160, 120
FOX, CAR, TREE = "1F98A", "1F697", "1F333"
# From OpenMoji's test split: drawings the shipped weights were not trained on.
ELEPHANT, CAMERA = "1F418", "1F4F7"

DRIFT = Motion(translate_end=(0.1, -0.05), rotate_start=-5.0, rotate_end=10.0, scale_end=0.9, bob=0.02)
ZOOM = Motion(scale_start=0.6, scale_end=1.0, rotate_start=-10.0, rotate_end=5.0)


def svg(name: str) -> Path:
    """The OpenMoji drawing of that code point."""
    return openmoji_svg_dir() / f"{name}.svg"


def line_frames(name: str, frames: int, motion: Motion) -> np.ndarray:
    """(frames, HEIGHT, WIDTH) uint8 line art of the drawing moving by motion."""
    return render_openmoji_shot(svg(name), frames, WIDTH, HEIGHT, motion).line


def write_frames(folder: Path, frames: np.ndarray) -> list[str]:
    """Save frames as folder/frame0000.png, ...; returns their paths in order."""
    folder.mkdir(parents=True, exist_ok=True)
    urls = []
    for index, frame in enumerate(frames):
        path = folder / f"frame{index:04d}.png"
        Image.fromarray(frame).save(path)
        urls.append(str(path))
    return urls
