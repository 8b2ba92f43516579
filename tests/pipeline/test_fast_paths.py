"""The fast paths give the colors of the plain path: torch.compile to the last bit that float32 reordering allows,
bfloat16 through the whole pipeline (its colors pixel by pixel: test_precision.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.colorize import Shot, ShotColorizer, ShotOptions
from pipeline.frames import read_frame

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "wave"


@pytest.fixture(scope="module")
def colorizer() -> ShotColorizer:
    return ShotColorizer.from_weights()


@pytest.fixture(scope="module")
def sample() -> tuple[list[np.ndarray], np.ndarray]:
    frames = [read_frame(str(SAMPLE / "frames" / f"frame{i}.png"), gray=True) for i in (1, 5, 9, 12)]
    return frames, read_frame(str(SAMPLE / "key.png"))


def predict(colorizer: ShotColorizer, sample, **configuration) -> np.ndarray:
    frames, key = sample
    colorizer.configure(**configuration)
    try:
        tokens = colorizer.encode_reference(key, 256)
        return np.stack(colorizer.predict_colors(frames, tokens, 256)).astype(np.int16)
    finally:
        colorizer.configure()


def test_auto_precision_is_float32_on_the_cpu(colorizer, sample) -> None:
    assert np.array_equal(predict(colorizer, sample, precision="auto"), predict(colorizer, sample))
    colorizer.configure("auto")
    assert colorizer.autocast_dtype is None


@pytest.mark.slow
def test_compiled_model_gives_the_same_colors(colorizer, sample) -> None:
    plain = predict(colorizer, sample)
    compiled = predict(colorizer, sample, compile=True)
    assert np.abs(compiled - plain).max() <= 1  # float32 sums in another order may round a level the other way


@pytest.mark.slow
def test_a_compile_that_fails_falls_back_to_the_plain_model(sample, monkeypatch, caplog) -> None:
    def failing_backend(graph, example_inputs):
        raise RuntimeError("no C++ compiler found")

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **_: real_compile(model, backend=failing_backend))
    colorizer = ShotColorizer.from_weights()  # its own: the fallback is kept for the colorizer's life
    plain = predict(colorizer, sample)
    with caplog.at_level(logging.WARNING, logger="pipeline.colorize"):
        fallback = predict(colorizer, sample, compile=True)
    assert np.array_equal(fallback, plain)
    assert "torch.compile failed" in caplog.text and "no C++ compiler found" in caplog.text
    colorizer.configure(compile=True)
    assert colorizer.colorize == colorizer.model.colorize  # later shots do not try again


def test_a_shot_runs_in_bfloat16_through_the_pipeline(colorizer, tmp_path) -> None:
    outputs = {}
    for precision in ("float32", "bfloat16"):
        shot = Shot("s", str(SAMPLE / "frames"), str(SAMPLE / "key.png"), str(tmp_path / precision))
        result = colorizer.run(shot, ShotOptions(precision=precision, fill="soft", batch_size=4))
        assert result.status == "ok" and result.written == 12
        outputs[precision] = np.asarray(Image.open(tmp_path / precision / "frame7.png"), dtype=np.int16)
    assert np.abs(outputs["bfloat16"] - outputs["float32"]).mean() < 2.0


def test_an_unknown_precision_is_refused(colorizer) -> None:
    with pytest.raises(ValueError, match="unknown precision 'half'; choose one of auto, float32, bfloat16"):
        colorizer.configure("half")
