"""A colored shot that leaks on purpose, for the report's signals: the sample's ground truth with faults painted in.

The old coloring of samples/wave spilled skin paint onto the paper between the raised arm and the head on some
frames (1,500-2,000 pixels each); `leaking_colors` paints such a blob onto the truth frames named. The truth frames
are OpenMoji-derived, CC BY-SA 4.0 (samples/wave/ATTRIBUTION.txt).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from jobs.manifest import FRAME_TABLE_NAME, frame_table, shot_record, write_result, write_table
from pipeline.regions import segment_regions
from pipeline.shot import FrameRecord, ShotResult
from pipeline.status import FrameStatus

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "wave"
FRAMES = 12
SKIN = (193, 154, 101)  # the character's skin in the keyframe
SHIRT = (146, 211, 245)
# Where the paper between the arm and the head is, per frame (x, y): the character moves.
BETWEEN_ARM_AND_HEAD = {4: (136, 200), 8: (150, 200), 9: (154, 200)}
BLOB_RADIUS = 27


def line_art(number: int) -> np.ndarray:
    return np.asarray(Image.open(SAMPLE / "frames" / f"frame{number}.png").convert("L"))


def truth(number: int) -> np.ndarray:
    return np.array(Image.open(SAMPLE / "truth" / f"frame{number}.png").convert("RGB"))


def paper_blob(number: int, center: tuple[int, int], radius: int = BLOB_RADIUS) -> np.ndarray:
    """(H, W) bool: the paper of frame `number`'s background within `radius` of `center` (never a line)."""
    lines = line_art(number)
    regions = segment_regions(lines)
    ys, xs = np.mgrid[: lines.shape[0], : lines.shape[1]]
    disk = (xs - center[0]) ** 2 + (ys - center[1]) ** 2 <= radius**2
    return disk & (regions == regions[0, 0]) & (truth(number).min(axis=2) >= 250)


def region_at(number: int, point: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the closed region of frame `number`'s line art holding `point` (x, y)."""
    regions = segment_regions(line_art(number))
    return regions == regions[point[1], point[0]]


def leaking_colors(leaks: dict[int, tuple[int, int]] | None = None) -> dict[int, np.ndarray]:
    """The truth frames (1-based numbers) with a blob of skin on the paper at each of `leaks`' centers."""
    colors = {number: truth(number) for number in range(1, FRAMES + 1)}
    for number, center in (BETWEEN_ARM_AND_HEAD if leaks is None else leaks).items():
        colors[number][paper_blob(number, center)] = SKIN
    return colors


def write_colored_shot(root: Path, name: str, colors: dict[int, np.ndarray], seconds: float = 3.0) -> Path:
    """Write `colors` as shot `name`'s output under root/name, with its frames table and its row in root's
    results, as a run records them; returns the shot's output folder."""
    output = root / name
    output.mkdir(parents=True)
    records = []
    for number, image in sorted(colors.items()):
        Image.fromarray(image).save(output / f"frame{number}.png")
        frame, written = SAMPLE / "frames" / f"frame{number}.png", output / f"frame{number}.png"
        records.append(FrameRecord(frame=str(frame), output=str(written), status=FrameStatus.WRITTEN, index=number - 1))
    result = ShotResult(shot=name, frames=len(records), written=len(records), records=records, seconds=seconds,
                        output=str(output), worker="render-node-1 (node 5f2a)")  # fmt: skip
    write_table(frame_table([result]), str(output / FRAME_TABLE_NAME))
    record = shot_record(result, keyframe="wave-key", input_hash="", reference=str(SAMPLE / "key.png"))
    write_result(str(root), record)
    return output
