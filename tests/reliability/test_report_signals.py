"""The report's signals see paint that comes and goes between frames, on a shot that moves (jobs/report.py,
pipeline/consistency.py): real PNG frames of the sample with faults painted in, read back as a run left them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from jobs.manifest import FRAME_TABLE_NAME, frame_table, read_frames, write_table
from jobs.report import quality_signals
from pipeline.colorize import ShotColorizer
from pipeline.frames import read_frame
from pipeline.quality import QualitySignals
from pipeline.shot import Shot, ShotOptions
from pipeline.status import FrameStatus
from tests.reliability.leaking_shot import (
    BETWEEN_ARM_AND_HEAD,
    SAMPLE,
    leaking_colors,
    paper_blob,
    region_at,
    truth,
    write_colored_shot,
)


def signals_of(root: Path, colors: dict[int, np.ndarray]) -> QualitySignals:
    """The report's signals of `colors` written as a shot's output under root."""
    output = write_colored_shot(root, "wave", colors)
    rows = sorted(read_frames(str(output / FRAME_TABLE_NAME)), key=lambda row: row.index)
    return quality_signals(rows, read_frame(str(SAMPLE / "key.png")), {})


def test_paint_leaking_onto_the_paper_flags_exactly_the_frames_it_is_on(tmp_path) -> None:
    blobs = {number: int(paper_blob(number, center).sum()) for number, center in BETWEEN_ARM_AND_HEAD.items()}
    assert all(1_400 <= size <= 2_000 for size in blobs.values()), blobs  # as much as the old coloring leaked
    leaking = signals_of(tmp_path / "leaking", leaking_colors())
    assert leaking.frames_checked == 12
    flagged = {flag.frame: flag for flag in leaking.flagged}
    assert sorted(flagged) == ["frame4.png", "frame8.png", "frame9.png"]  # 8 and 9 leak one after the other
    for number, size in blobs.items():
        flag = flagged[f"frame{number}.png"]
        assert flag.signal == "paint on paper"
        assert 0.8 * size <= flag.pixels <= 1.1 * size, (flag, size)
    clean = signals_of(tmp_path / "truth", leaking_colors({}))
    assert clean.flagged == [] and clean.frames_checked == 12
    assert leaking.suspicion > clean.suspicion + 0.2


def test_frames_are_not_compared_across_a_frame_that_failed(tmp_path) -> None:
    output = write_colored_shot(tmp_path, "wave", leaking_colors())
    rows = sorted(read_frames(str(output / FRAME_TABLE_NAME)), key=lambda row: row.index)
    # frame7.png, the clean frame before the leaks
    rows[6] = replace(rows[6], status=FrameStatus.FAILED, output="", reason="truncated")
    signals = quality_signals(rows, read_frame(str(SAMPLE / "key.png")), {})
    assert signals.frames_checked == 11
    assert [flag.frame for flag in signals.flagged] == ["frame4.png", "frame8.png", "frame9.png"]


def test_a_region_painted_another_color_or_partly_left_unpainted_is_flagged(tmp_path) -> None:
    colors = leaking_colors({})
    colors[6][region_at(6, (200, 290))] = (120, 200, 90)  # the whole shirt green on frame 6
    face = region_at(10, (240, 200))
    ys, xs = np.mgrid[: face.shape[0], : face.shape[1]]
    hole = face & ((xs - 240) ** 2 + (ys - 205) ** 2 <= 16**2)
    colors[10][hole] = 255  # a patch of the face left as paper on frame 10 (too small to change the face's color)
    signals = signals_of(tmp_path, colors)
    found = sorted((flag.frame, flag.signal) for flag in signals.flagged)
    assert found == [("frame10.png", "paper in paint"), ("frame6.png", "region color")]
    sizes = {"region color": region_at(6, (200, 290)).sum(), "paper in paint": hole.sum()}
    for flag in signals.flagged:
        assert 0.7 * sizes[flag.signal] <= flag.pixels <= 1.1 * sizes[flag.signal], (flag, sizes)


def test_the_sample_colored_by_the_model_alone_flags_the_frames_that_leak(tmp_path) -> None:
    """The old coloring (the model's colors alone) of samples/wave, judged by the report, against the truth."""
    shot = Shot(name="wave", frames=str(SAMPLE / "frames"), reference=str(SAMPLE / "key.png"),
                output=str(tmp_path / "out"), keyframe_position=0)  # fmt: skip
    result = ShotColorizer.from_weights().run(shot, ShotOptions(color_source="model"))
    assert result.status == "ok", result.summary()
    leaking = set()
    for number in range(1, 13):
        painted = np.asarray(Image.open(tmp_path / "out" / f"frame{number}.png").convert("RGB")).min(axis=2) < 200
        paper = cv2.erode((truth(number).min(axis=2) >= 250).view(np.uint8), np.ones((7, 7), np.uint8)) > 0
        if (painted & paper).sum() > 600:  # 0.5% of the frame, away from the lines
            leaking.add(f"frame{number}.png")
    if not leaking:
        pytest.skip("the model's colors alone no longer leak onto the sample's paper: nothing to find")
    table = tmp_path / "out" / FRAME_TABLE_NAME
    write_table(frame_table([result]), str(table))  # as the run leaves it; read back as the report reads it
    signals = quality_signals(sorted(read_frames(str(table)), key=lambda row: row.index),
                              read_frame(str(SAMPLE / "key.png")), {})  # fmt: skip
    assert {flag.frame for flag in signals.flagged} == leaking, f"frames that leak: {sorted(leaking)}"
    assert {flag.signal for flag in signals.flagged} == {"paint on paper"}
