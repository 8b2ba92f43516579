"""The fast paths give the colors of the plain path: torch.compile to the last bit that float32 reordering allows,
bfloat16 through the whole pipeline (its colors pixel by pixel: test_precision.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.colorize import ShotColorizer
from pipeline.frames import read_frame
from pipeline.shot import InvalidOptions, Shot, ShotOptions

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "wave"


@pytest.fixture(scope="module")
def colorizer() -> ShotColorizer:
    return ShotColorizer.from_weights()


@pytest.fixture(scope="module")
def sample() -> tuple[list[np.ndarray], np.ndarray]:
    frames = [read_frame(str(SAMPLE / "frames" / f"frame{i}.png"), gray=True) for i in (1, 5, 9, 12)]
    return frames, read_frame(str(SAMPLE / "key.png"))


def predict(colorizer: ShotColorizer, sample) -> np.ndarray:
    frames, key = sample
    tokens = colorizer.encode_reference(key, 256)
    return np.stack(colorizer.predict_colors(frames, tokens, 256)).astype(np.int16)


def test_auto_precision_is_float32_on_the_cpu(colorizer, sample) -> None:
    assert colorizer.precision == "auto" and colorizer.autocast_dtype is None
    assert np.array_equal(predict(colorizer, sample), predict(ShotColorizer.from_weights(precision="float32"), sample))


@pytest.mark.slow
def test_compiled_model_gives_the_same_colors(colorizer, sample) -> None:
    plain = predict(colorizer, sample)
    compiled = predict(ShotColorizer.from_weights(compile=True), sample)
    assert np.abs(compiled - plain).max() <= 1  # float32 sums in another order may round a level the other way


@pytest.mark.slow
def test_a_compile_that_fails_falls_back_to_the_plain_model(colorizer, sample, monkeypatch, caplog) -> None:
    def failing_backend(graph, example_inputs):
        raise RuntimeError("no C++ compiler found")

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **_: real_compile(model, backend=failing_backend))
    compiled = ShotColorizer.from_weights(compile=True)
    with caplog.at_level(logging.WARNING, logger="pipeline.colorize"):
        fallback = predict(compiled, sample)
    assert np.array_equal(fallback, predict(colorizer, sample))
    assert "torch.compile failed" in caplog.text and "no C++ compiler found" in caplog.text
    assert compiled.colorize == compiled.model.colorize  # later shots do not try again


def test_a_shot_runs_in_bfloat16_through_the_pipeline(colorizer, tmp_path) -> None:
    outputs = {}
    for precision, engine in (("auto", colorizer), ("bfloat16", ShotColorizer.from_weights(precision="bfloat16"))):
        shot = Shot("s", str(SAMPLE / "frames"), str(SAMPLE / "key.png"), str(tmp_path / precision))
        result = engine.run(shot, ShotOptions(precision=precision, fill="soft", batch_size=4))
        assert result.status == "ok" and result.written == 12
        outputs[precision] = np.asarray(Image.open(tmp_path / precision / "frame7.png"), dtype=np.int16)
    assert np.abs(outputs["bfloat16"] - outputs["auto"]).mean() < 2.0


def test_a_shot_asking_for_another_precision_or_compile_is_refused(colorizer, tmp_path) -> None:
    shot = Shot("s", str(SAMPLE / "frames"), str(SAMPLE / "key.png"), str(tmp_path / "out"))
    with pytest.raises(ValueError, match="asks for precision bfloat16, this colorizer runs precision auto"):
        colorizer.run(shot, ShotOptions(precision="bfloat16"))
    with pytest.raises(ValueError, match="asks for precision auto, compiled, this colorizer runs precision auto:"):
        colorizer.run(shot, ShotOptions(compile=True))
    assert colorizer.autocast_dtype is None and not (tmp_path / "out").exists()


def test_an_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown precision 'half'; choose one of auto, float32, bfloat16"):
        ShotColorizer.from_weights(precision="half")
    with pytest.raises(InvalidOptions, match="precision: unknown precision 'half'; choose one of auto, float32"):
        ShotOptions(precision="half")
