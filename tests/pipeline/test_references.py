"""Several keyframes per shot, weighted by nearness in time, and chaining the previously colored frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.cielab import rgb_to_lab
from pipeline.colorize import ShotColorizer
from pipeline.references import TIMESCALE_FRAMES, ReferenceBank, ShotReference, keyframe_weight
from pipeline.shot import Shot, ShotOptions

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "wave"
HAIR = (106, 70, 47)  # the sample keyframe's hair color
GREEN = (40, 170, 60)


@pytest.fixture(scope="module")
def colorizer() -> ShotColorizer:
    return ShotColorizer.from_weights()


def delta_e(a, b) -> float:
    lab = rgb_to_lab(np.array([a, b], dtype=np.uint8))
    return float(np.linalg.norm(lab[0] - lab[1]))


def test_a_region_seen_only_in_the_second_keyframe_gets_its_color(colorizer, tmp_path):
    key = np.asarray(Image.open(SAMPLE / "key.png").convert("RGB"))
    hair = np.abs(key.astype(int) - HAIR).sum(axis=2) < 40
    without_hair, green_hair = key.copy(), np.full_like(key, 255)
    without_hair[hair] = 255
    green_hair[hair] = GREEN  # a color nothing else in either keyframe has
    Image.fromarray(without_hair).save(tmp_path / "first.png")
    Image.fromarray(green_hair).save(tmp_path / "second.png")
    truth = np.asarray(Image.open(SAMPLE / "truth" / "frame7.png").convert("RGB"))
    truth_hair = np.abs(truth.astype(int) - HAIR).sum(axis=2) < 40

    def hair_greenness(extra: tuple[ShotReference, ...], out: str) -> float:
        shot = Shot("s", str(SAMPLE / "frames"), str(tmp_path / "first.png"), str(tmp_path / out),
                    extra_references=extra)  # fmt: skip
        # The model's attention over both keyframes: the carried colors come from the main keyframe alone here.
        assert colorizer.run(shot, ShotOptions(fill="soft", color_source="model")).status == "ok"
        colored = np.asarray(Image.open(tmp_path / out / "frame7.png").convert("RGB"))
        return -float(np.median(rgb_to_lab(colored[truth_hair])[:, 1]))  # -a*: green is negative a*

    alone = hair_greenness((), "alone")
    both = hair_greenness((ShotReference(str(tmp_path / "second.png")),), "both")
    assert alone < 5 and both > alone + 10, (alone, both)


def test_a_keyframe_counts_less_the_further_away_it_was_painted():
    assert keyframe_weight(7, 7) == 1.0
    assert keyframe_weight(7 + int(TIMESCALE_FRAMES), 7) == pytest.approx(0.5)
    assert keyframe_weight(0, 30) < keyframe_weight(0, 10) < 1.0
    assert keyframe_weight(100, None) == 1.0

    def encode(image: np.ndarray) -> torch.Tensor:
        return torch.full((1, 4, 8), float(image[0, 0, 0]))

    first, last = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 9, np.uint8)
    bank = ReferenceBank(encode, [(first, 0), (last, 40)])
    near_start, near_end = bank.for_frame(3), bank.for_frame(38)
    assert near_start.tokens.shape == (1, 8, 8)
    # Each keyframe's share of the weight, as a log: the nearer one has the larger share, the shares sum to 1.
    for refs, near, far in ((near_start, slice(0, 4), slice(4, 8)), (near_end, slice(4, 8), slice(0, 4))):
        shares = refs.log_weights[0].exp()
        assert shares[near].min() > 2 * shares[far].max()
        assert shares[0] + shares[4] == pytest.approx(1.0)


def test_chaining_joins_a_finished_frame_and_gives_the_same_result_every_run(colorizer, tmp_path):
    def colored(out: str, chain: bool) -> list[np.ndarray]:
        shot = Shot("s", str(SAMPLE / "frames"), str(SAMPLE / "key.png"), str(tmp_path / out))
        options = ShotOptions(fill="soft", chain=chain, batch_size=2, color_source="model")
        assert colorizer.run(shot, options).status == "ok"
        return [np.asarray(Image.open(tmp_path / out / f"frame{i}.png")) for i in range(1, 13)]

    plain, chained, again = colored("plain", False), colored("chained", True), colored("again", True)
    # Batches 0 and 1 (frames 1-4) have nothing finished two batches back; from frame 5 on the chain counts.
    assert all(np.array_equal(a, b) for a, b in zip(plain[:4], chained[:4], strict=True))
    assert any(not np.array_equal(a, b) for a, b in zip(plain[4:], chained[4:], strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(chained, again, strict=True))
