"""PatchGAN discriminator used only for training (the paper's, after SGA): spectral-norm convs on image + line art."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """Scores overlapping patches of concat(image, line art) as real or generated.

    Args:
        in_channels: image channels plus line-art channels.
        width: channels of the first conv; doubled by each following stride-2 conv.
        downsamplings: number of spectral-norm 4x4 stride-2 convs.
    """

    def __init__(self, in_channels: int = 4, width: int = 16, downsamplings: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_channels
        for index in range(downsamplings):
            channels = width * 2**index
            layers += [spectral_norm(nn.Conv2d(previous, channels, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, True)]
            previous = channels
        layers.append(nn.Conv2d(previous, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, line: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([image, line * 2 - 1], dim=1))
