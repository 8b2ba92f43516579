"""model/metrics.py: the project's one SSIM, whatever the images' scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.metrics import SSIM_WINDOW, image_ssim, ssim


def test_uint8_frames_and_their_0_1_tensors_score_the_same_ssim() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (2, 24, 32, 3), dtype=np.uint8)
    output = np.clip(truth.astype(int) + rng.integers(-40, 41, truth.shape), 0, 255).astype(np.uint8)
    frames = [image_ssim(o, t, data_range=255) for o, t in zip(output, truth, strict=True)]
    tensors = ssim(*(torch.from_numpy(a).permute(0, 3, 1, 2) / 255.0 for a in (output, truth)))
    assert 0 < min(frames) < max(frames) < 1
    assert tensors.tolist() == pytest.approx(frames, abs=1e-6)
    assert image_ssim(truth[0], truth[0], data_range=255) == pytest.approx(1.0)


def test_an_image_smaller_than_the_window_is_refused_with_its_size() -> None:
    small = np.zeros((SSIM_WINDOW - 1, 32, 3), np.uint8)
    with pytest.raises(ValueError, match=r"at least 11 x 11 pixels; this one is \(10, 32, 3\)"):
        image_ssim(small, small, data_range=255)
