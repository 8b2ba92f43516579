"""Image-quality metrics: PSNR on the 0-255 scale and SSIM (Wang et al. 2004), per image, of torch batches."""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import structural_similarity


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of (B, C, H, W) images in [0, 1], per image (B,), as 0-255 images would give."""
    mse = ((prediction.float() - target.float()) ** 2).flatten(1).mean(dim=1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


# The paper's Gaussian window: sigma 1.5 over 11 taps (scikit-image's 2 * int(3.5 * sigma + 0.5) + 1).
SSIM_SIGMA = 1.5
SSIM_WINDOW = 11


def image_ssim(prediction: np.ndarray, target: np.ndarray, data_range: float) -> float:
    """Mean SSIM of one (H, W, C) image against its target, channels averaged: the project's one SSIM, which
    training, `inkpaint eval` and the benchmarks all report.

    The paper's definition (Wang et al. 2004, as the ICME 2023 paper reports it): an 11-tap Gaussian window of
    sigma 1.5, population variances, C1 = (0.01 L)^2 and C2 = (0.03 L)^2 with L = `data_range` (1.0 for images in
    [0, 1], 255 for uint8), the mean taken where the window fits inside the image. scikit-image computes it in
    float64. (Its default, a 7-pixel uniform window with sample covariances, scores the same images differently.)

    Raises:
        ValueError: an image smaller than the window (SSIM_WINDOW pixels a side).
    """
    if min(prediction.shape[:2]) < SSIM_WINDOW:
        msg = f"SSIM needs images of at least {SSIM_WINDOW} x {SSIM_WINDOW} pixels; this one is {prediction.shape}"
        raise ValueError(msg)
    score = structural_similarity(prediction, target, channel_axis=2, data_range=data_range, gaussian_weights=True,
                                  sigma=SSIM_SIGMA, use_sample_covariance=False)  # fmt: skip
    return float(score)


def ssim(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean SSIM (`image_ssim`) of (B, C, H, W) images in [0, 1], per image (B,)."""

    def image(batch: torch.Tensor, index: int) -> np.ndarray:
        return batch[index].detach().to("cpu", torch.float64).permute(1, 2, 0).numpy()  # (H, W, C)

    scores = [image_ssim(image(prediction, i), image(target, i), data_range=1.0) for i in range(prediction.shape[0])]
    return torch.tensor(scores, dtype=torch.float32)
