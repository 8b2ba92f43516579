"""Building blocks of the colorizer: CBAM, stop-gradient attention and residual blocks.

CBAM follows Woo et al. (ECCV 2018); stop-gradient attention (SGA) follows Li et al. (ECCV 2022) as used by
Cao et al., "Attention-Aware Anime Line Drawing Colorization" (ICME 2023). See ../shared/PAPER.md for the numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelAttention(nn.Module):
    """CBAM's channel gate: average- and max-pooled descriptors through one shared MLP, summed, sigmoid.

    Args:
        channels: feature channels.
        reduction: hidden width of the MLP is ``channels // reduction`` (at least 1).
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1))  # (B, C, 1, 1)
        peak = self.mlp(F.adaptive_max_pool2d(x, 1))  # (B, C, 1, 1)
        return x * torch.sigmoid(avg + peak)


class SpatialAttention(nn.Module):
    """CBAM's spatial gate: per-pixel channel mean and max through a 7x7 conv, sigmoid.

    Args:
        kernel_size: size of the conv over the two-channel (mean, max) map.
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)  # (B, 1, H, W)
        peak = x.amax(dim=1, keepdim=True)  # (B, 1, H, W)
        return x * torch.sigmoid(self.conv(torch.cat([mean, peak], dim=1)))


class CBAM(nn.Module):
    """Convolutional Block Attention Module: channel attention, then spatial attention.

    Args:
        channels: feature channels.
        reduction: channel MLP reduction.
        kernel_size: spatial attention kernel.
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.channel(x)
        x = self.spatial(x)
        return x


class EncoderLayer(nn.Module):
    """One encoder layer as the paper has it: Conv3x3 -> CBAM -> BatchNorm -> LeakyReLU(0.2).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: 1, or 2 to halve the resolution.
        reduction: CBAM channel reduction.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, reduction: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.attention = CBAM(out_channels, reduction)
        self.norm = nn.BatchNorm2d(out_channels)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.attention(self.conv(x))))


class ConvNormAct(nn.Module):
    """Conv -> BatchNorm -> LeakyReLU(0.2), the unit of the decoder and of the bottleneck projections.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: conv kernel; padding keeps the size.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the input, then ReLU (the paper's bottleneck block).

    Args:
        channels: channels in and out.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


def stop_gradient_attention_map(
    queries: torch.Tensor, keys: torch.Tensor, key_log_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """The SGA attention map, computed without gradient from the raw, unprojected tokens.

    Li et al. show that letting gradients flow through the attention map makes it fight the value path
    (gradient conflict); the ICME 2023 colorizer therefore treats the map as a constant. No sqrt(d) scaling and no
    positional encoding, as in the paper. The map is computed in float32 even under autocast because the unscaled
    logits are large.

    Args:
        queries: (B, N, C) tokens that attend.
        keys: (B, M, C) tokens attended over.
        key_log_weights: (B or 1, M) log weight of each key, or None (all 1). Several references are attended
            over by concatenating their keys; giving each reference's keys the log of its share of the total weight
            (shares summing to 1) keeps the map's total mass that of one reference, as in training. A key's column
            is scaled by its weight after the normalisation over queries (every key otherwise passes on its whole
            message somewhere), and its logits are raised by its log weight in units of the query's logit standard
            deviation, so that a query matching keys of two references equally picks the heavier one (unscaled, the
            logits of a trained model spread over tens of units and a plain log weight would be lost in them).

    Returns:
        (B, N, M) map: softmax over keys, then L1-normalised over queries.
    """
    with torch.no_grad():
        logits = torch.bmm(queries.float(), keys.float().transpose(1, 2))  # (B, N, M)
        if key_log_weights is not None:
            spread = logits.std(dim=-1, keepdim=True) if logits.shape[-1] > 1 else torch.ones_like(logits)
            logits = logits + key_log_weights.float()[:, None, :] * spread
        attention = torch.softmax(logits, dim=-1)
        attention = attention / (attention.sum(dim=1, keepdim=True) + 1e-8)
        if key_log_weights is not None:
            attention = attention * key_log_weights.float().exp()[:, None, :]
    return attention


class StopGradientAttention(nn.Module):
    """Z = BatchNorm1d(A . LeakyReLU(W_msg Y) + LeakyReLU(W_src X)) + X, with A from `stop_gradient_attention_map`.

    Used as cross-attention (X: line-art tokens, Y: reference tokens) and as self-attention (Y = X).

    Args:
        channels: token width C.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.message = nn.Linear(channels, channels, bias=False)
        self.source = nn.Linear(channels, channels, bias=False)
        self.act = nn.LeakyReLU(0.2)
        self.norm = nn.BatchNorm1d(channels)

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        return_attention: bool = False,
        key_log_weights: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        attention = stop_gradient_attention_map(x, y, key_log_weights)  # (B, N, M)
        gathered = torch.bmm(attention.to(y.dtype), self.act(self.message(y)))  # (B, N, C)
        mixed = gathered + self.act(self.source(x))  # (B, N, C)
        z = self.norm(mixed.transpose(1, 2)).transpose(1, 2) + x  # BatchNorm1d wants (B, C, N)
        return (z, attention) if return_attention else z
