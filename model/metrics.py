"""Image-quality metrics: PSNR on the 0-255 scale and SSIM (Wang et al. 2004), per image, of torch batches."""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import structural_similarity


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of (B, C, H, W) images in [0, 1], per image (B,), as 0-255 images would give."""
    mse = ((prediction.float() - target.float()) ** 2).flatten(1).mean(dim=1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


def ssim(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of (B, C, H, W) images in [0, 1], per image (B,), channels averaged.

    The paper's definition (Wang et al. 2004, as the ICME 2023 paper reports it): an 11-tap Gaussian window of
    sigma 1.5, population variances, C1 = (0.01 L)^2 and C2 = (0.03 L)^2 with L = 1, the mean taken where the window
    fits inside the image. scikit-image computes it in float64.
    """

    def image(batch: torch.Tensor, index: int) -> np.ndarray:
        return batch[index].detach().to("cpu", torch.float64).permute(1, 2, 0).numpy()  # (H, W, C)

    scores = [
        structural_similarity(image(prediction, i), image(target, i), channel_axis=2, data_range=1.0,
                              gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        for i in range(prediction.shape[0])
    ]  # fmt: skip
    return torch.tensor(scores, dtype=torch.float32)
