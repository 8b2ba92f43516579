"""Image-quality metrics: PSNR on the 0-255 scale and SSIM (Wang et al. 2004), per image, in torch."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of (B, C, H, W) images in [0, 1], per image (B,), as 0-255 images would give."""
    mse = ((prediction.float() - target.float()) ** 2).flatten(1).mean(dim=1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


def gaussian_window(size: int = 11, sigma: float = 1.5, device: torch.device | None = None) -> torch.Tensor:
    """A normalised 1-D Gaussian, (size,)."""
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    window = torch.exp(-(coords**2) / (2 * sigma**2))
    return window / window.sum()


def ssim(prediction: torch.Tensor, target: torch.Tensor, window_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM of (B, C, H, W) images in [0, 1], per image (B,), Gaussian window, channels averaged."""
    x, y = prediction.float(), target.float()
    B, C, H, W = x.shape
    window = gaussian_window(window_size, sigma, x.device)
    horizontal = window.view(1, 1, 1, -1).expand(C, 1, 1, window_size)
    vertical = window.view(1, 1, -1, 1).expand(C, 1, window_size, 1)

    def blur(image: torch.Tensor) -> torch.Tensor:
        # Valid convolution (no padding) as the reference implementation does.
        return F.conv2d(F.conv2d(image, horizontal, groups=C), vertical, groups=C)

    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    covariance = blur(x * y) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * covariance + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (numerator / denominator).flatten(1).mean(dim=1)
