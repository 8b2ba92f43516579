"""Running the CLI as a user does, for the reliability tests, and checking that it ended on its own terms."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner, Result

from cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "wave"
KEY = SAMPLE / "key.png"


def invoke(*args: object) -> Result:
    """The CLI as a user runs it. It must end with a message and an exit code of its own, never with an uncaught
    exception or a traceback: every test that runs the CLI checks that much."""
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed, f"crashed with {result.exception!r}:\n{result.output}"
    assert "Traceback" not in result.output
    return result


def color_shot(
    frames: object, output: object, *extra: object, reference: object = KEY, resolution: int = 128
) -> Result:
    """colorize-shot on `frames` at a small working resolution, like the sample's keyframe unless told otherwise."""
    return invoke("shot", frames, "-r", reference, "-o", output, "--resolution", resolution, *extra)


def copy_sample_frames(folder: Path, indices: range | tuple[int, ...]) -> Path:
    """The sample shot's frames numbered `indices`, copied into `folder` (made if missing); returns `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in indices:
        shutil.copy(SAMPLE / "frames" / f"frame{index}.png", folder / f"frame{index}.png")
    return folder
