"""A small real episode for the jobs tests: three shots of two OpenMoji drawings and their colored keyframes.

Test modules import these helpers; `episode_inputs` (tests/jobs/conftest.py) renders the episode once a session."""

from __future__ import annotations

from pathlib import Path

import yaml
from PIL import Image

from model.data import openmoji_svg_dir
from model.synthetic_shots import Motion, render_openmoji_shot

SIZE = (160, 120)
# Two drawings that look nothing alike (a fox's face, a car); sh030 is the fox again, moving differently, so only
# its line art can say which keyframe it needs.
SHOTS = {
    "sh010": ("1F98A", 6, Motion(translate_start=(-0.1, 0.0), translate_end=(0.1, 0.0))),
    "sh020": ("1F697", 7, Motion(scale_start=0.9, scale_end=1.1)),
    "sh030": ("1F98A", 5, Motion(rotate_start=-10.0, rotate_end=10.0, translate_end=(0.0, 0.05))),
}


def render_episode(root: Path) -> Path:
    """Write lines/<shot>/<shot>_000N.png line art, keys/fox.png (sh010's frame 1) and keys/car.png (sh020's frame 3)
    under root; returns root."""
    (root / "keys").mkdir()
    for shot, (drawing, frames, motion) in SHOTS.items():
        arrays = render_openmoji_shot(openmoji_svg_dir() / f"{drawing}.svg", frames, *SIZE, motion)
        folder = root / "lines" / shot
        folder.mkdir(parents=True)
        for index in range(frames):
            Image.fromarray(arrays.line[index]).save(folder / f"{shot}_{index + 1:04d}.png")
        if shot == "sh010":
            Image.fromarray(arrays.color[0]).save(root / "keys" / "fox.png")
        if shot == "sh020":
            Image.fromarray(arrays.color[2]).save(root / "keys" / "car.png")
    (root / "ATTRIBUTION.txt").write_text("Drawings: OpenMoji (openmoji.org), CC BY-SA 4.0.\n")
    return root


def write_episode_spec(inputs: Path, output: Path | str, path: Path | None = None, **fields: object) -> Path:
    """A spec of the test episode at `path` (default inputs/episode.yaml): fox tied to sh010, car tied to sh020's
    frame 3, sh030 left to similarity. `fields` replace the spec's own; "lines/" and "keys/" paths in them are
    made absolute under `inputs`, so the spec can live anywhere."""
    spec = {
        "episode": "ep-test",
        "output": str(output),
        "shots": [{"name": shot, "frames": f"lines/{shot}"} for shot in SHOTS],
        "keyframes": [
            {"name": "fox", "image": "keys/fox.png", "shots": ["sh010"]},
            {"name": "car", "image": "keys/car.png", "frame": "sh020_0003.png"},
        ],
        "resolution": 128,
        **fields,
    }
    for shot in spec["shots"]:
        shot["frames"] = str(inputs / shot["frames"])
    for keyframe in spec["keyframes"]:
        keyframe["image"] = str(inputs / keyframe["image"])
    path = path or inputs / "episode.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
