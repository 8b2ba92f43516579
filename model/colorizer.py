"""The reference-based line-art colorizer.

Implements the generator of Yu Cao, Hao Tian, P. Y. Mok, "Attention-Aware Anime Line Drawing Colorization",
ICME 2023 (arXiv 2212.10988): two CBAM encoders (line art, reference), multi-scale tokens, stop-gradient cross- then
self-attention, a residual bottleneck and a U-Net decoder with skips from the line-art encoder.

Where this code departs from the paper's published code, and why:
- Tokens are pooled to the encoder's deepest grid (H/16 x W/16) instead of a hard-coded 16x16, so any height and
  width that are multiples of 16 work, and the reference may have a different size from the line art.
- Encoding the reference is separate from coloring, so a shot encodes its keyframe once; several references are
  attended over together by concatenating their tokens.
- The bottleneck may run at a narrower width than the tokens (``bottleneck_channels``): it holds 85% of the paper's
  parameters and most of its time, and the `lite` preset, our default, narrows it.
- The decoder takes one Conv-BN-LeakyReLU per skip (two per resolution), widths mirroring the encoder.
- Under autocast only the bottleneck and the decoder run in reduced precision. Both encoders and both attention
  blocks stay in float32: the attention logits are large unscaled dot products of the tokens, and tokens rounded to
  bfloat16 moved whole regions of a real frame to another color (up to 58 of 429 regions at 512).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from model.blocks import ConvNormAct, EncoderLayer, ResidualBlock, StopGradientAttention

PAPER_ENCODER_CHANNELS = (16, 16, 32, 32, 64, 64, 128, 128, 256, 256)


@dataclass(frozen=True)
class ColorizerConfig:
    """Shape of a colorizer; `PRESETS` holds the named ones.

    Args:
        encoder_channels: output channels of each encoder layer (both encoders).
        downsample_layers: indices of the encoder layers with stride 2.
        cbam_reduction: CBAM channel-MLP reduction.
        bottleneck_channels: width of the residual bottleneck; None keeps the token width, as the paper.
        res_blocks: residual blocks in the bottleneck.
        line_channels: channels of the line-art input.
        reference_channels: channels of the reference input.
    """

    encoder_channels: tuple[int, ...] = PAPER_ENCODER_CHANNELS
    downsample_layers: tuple[int, ...] = (1, 3, 5, 7)
    cbam_reduction: int = 16
    bottleneck_channels: int | None = None
    res_blocks: int = 4
    line_channels: int = 1
    reference_channels: int = 3

    @property
    def stride(self) -> int:
        """Total downsampling of the encoder: frame sides must be multiples of it."""
        return 2 ** len(self.downsample_layers)

    @property
    def token_channels(self) -> int:
        """Width of an attention token: every encoder feature pooled to the deepest grid, concatenated."""
        return sum(self.encoder_channels)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ColorizerConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            msg = f"unknown colorizer config fields {unknown}; expected some of {sorted(known)}"
            raise ValueError(msg)
        tuples = {k: tuple(v) for k, v in values.items() if isinstance(v, list)}
        return cls(**{**values, **tuples})


PRESETS: dict[str, ColorizerConfig] = {
    "icme2023": ColorizerConfig(),
    "lite": ColorizerConfig(
        encoder_channels=(16, 16, 32, 32, 64, 64, 96, 96, 128, 128),
        bottleneck_channels=192,
        res_blocks=3,
    ),
}
DEFAULT_PRESET = "lite"


@dataclass(frozen=True)
class FeatureInfo:
    """Channels and stride of one encoder output."""

    channels: int
    stride: int


class Encoder(nn.Module):
    """A stack of `EncoderLayer`s that returns every layer's output (the U-Net skips and the token sources).

    Args:
        in_channels: image channels.
        channels: output channels per layer.
        downsample_layers: indices of stride-2 layers.
        reduction: CBAM reduction.
    """

    def __init__(
        self, in_channels: int, channels: tuple[int, ...], downsample_layers: tuple[int, ...], reduction: int = 16
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        self.feature_info: list[FeatureInfo] = []
        stride, previous = 1, in_channels
        for index, width in enumerate(channels):
            layer_stride = 2 if index in downsample_layers else 1
            stride *= layer_stride
            self.layers.append(EncoderLayer(previous, width, stride=layer_stride, reduction=reduction))
            self.feature_info.append(FeatureInfo(width, stride))
            previous = width

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


def features_to_tokens(features: list[torch.Tensor]) -> torch.Tensor:
    """Average-pool every feature map to the deepest grid and concatenate: (B, h*w, sum of channels)."""
    deepest = features[-1]
    B, _, h, w = deepest.shape
    pooled = [F.avg_pool2d(f, kernel_size=f.shape[-1] // w) if f.shape[-1] != w else f for f in features]
    grid = torch.cat(pooled, dim=1)  # (B, C, h, w)
    return grid.flatten(2).transpose(1, 2)  # (B, h*w, C)


def float32_only(tensor: torch.Tensor) -> torch.autocast:
    """A region where autocast is off on `tensor`'s device: the parts of the model whose rounding decides colors."""
    return torch.autocast(tensor.device.type, enabled=False)


class Bottleneck(nn.Module):
    """Residual blocks on the token grid, optionally at a narrower width; returns concat(z, res(z)).

    Args:
        channels: token width.
        width: residual width (projected by 1x1 convs when it differs from `channels`).
        blocks: number of residual blocks.
    """

    def __init__(self, channels: int, width: int, blocks: int) -> None:
        super().__init__()
        self.project_in = ConvNormAct(channels, width, kernel_size=1) if width != channels else nn.Identity()
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.out_channels = channels + width

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, self.blocks(self.project_in(z))], dim=1)


class Decoder(nn.Module):
    """U-Net decoder: for each skip, deepest first, upsample x2 when the skip is finer, concat, Conv-BN-LeakyReLU.

    Args:
        in_channels: channels of the bottleneck output.
        skips: feature info of the skips, deepest first.
        out_channels: image channels produced (through a 1x1 conv and tanh).
    """

    def __init__(self, in_channels: int, skips: list[FeatureInfo], out_channels: int = 3) -> None:
        super().__init__()
        self.stages = nn.ModuleList()
        self.upsample: list[bool] = []
        stride, previous = skips[0].stride, in_channels
        for skip in skips:
            self.upsample.append(skip.stride < stride)
            self.stages.append(ConvNormAct(previous + skip.channels, skip.channels))
            stride, previous = skip.stride, skip.channels
        self.head = nn.Conv2d(previous, out_channels, 1)

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for stage, upsample, skip in zip(self.stages, self.upsample, skips, strict=True):
            if upsample:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = stage(torch.cat([x, skip], dim=1))
        return torch.tanh(self.head(x))


@dataclass
class ColorizerOutput:
    """The colored frames and, on request, the cross- and self-attention maps (B, N, M) and (B, N, N)."""

    image: torch.Tensor
    attention: dict[str, torch.Tensor] = field(default_factory=dict)


class Colorizer(nn.Module):
    """Reference-based colorizer.

    Value ranges: line art in [0, 1] with 1 = paper; reference and output images in [-1, 1].

    Args:
        config: the network's shape; see `PRESETS`.
    """

    def __init__(self, config: ColorizerConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or PRESETS[DEFAULT_PRESET]
        channels, down = config.encoder_channels, config.downsample_layers
        self.line_encoder = Encoder(config.line_channels, channels, down, config.cbam_reduction)
        self.reference_encoder = Encoder(config.reference_channels, channels, down, config.cbam_reduction)
        tokens = config.token_channels
        self.cross_attention = StopGradientAttention(tokens)
        self.self_attention = StopGradientAttention(tokens)
        self.bottleneck = Bottleneck(tokens, config.bottleneck_channels or tokens, config.res_blocks)
        skips = self.line_encoder.feature_info[-2::-1]  # f9 .. f1
        self.decoder = Decoder(self.bottleneck.out_channels, skips, out_channels=config.reference_channels)

    def for_inference(self, device: str | torch.device = "cpu") -> Colorizer:
        """Move to `device` in eval mode with the weights channels-last, the layout the convolutions run fastest
        in on CPUs (oneDNN) and GPUs (cuDNN); the activations follow the weights' layout. Returns self."""
        return self.to(device, memory_format=torch.channels_last).eval()

    def check_size(self, image: torch.Tensor, what: str) -> None:
        """Raise a ValueError unless the image's height and width are multiples of the encoder stride."""
        H, W = image.shape[-2:]
        stride = self.config.stride
        if H % stride or W % stride or H == 0 or W == 0:
            msg = f"{what} is {W}x{H}; width and height must be positive multiples of {stride}"
            raise ValueError(msg)

    def encode_reference(self, reference: torch.Tensor) -> torch.Tensor:
        """Tokens of a batch of references (B, 3, H, W) in [-1, 1]: (B, M, C). Encode a keyframe once per shot."""
        self.check_size(reference, "reference")
        with float32_only(reference):
            return features_to_tokens(self.reference_encoder(reference.float()))

    def colorize(
        self,
        line: torch.Tensor,
        reference_tokens: torch.Tensor,
        return_attention: bool = False,
        reference_log_weights: torch.Tensor | None = None,
    ) -> ColorizerOutput:
        """Color line art (B, 1, H, W) in [0, 1] from reference tokens (B or 1, M, C); output (B, 3, H, W).

        Tokens of several references may be concatenated along M to attend over all of them at once;
        `reference_log_weights` (B or 1, M) then says how much each token counts (see
        `model.blocks.stop_gradient_attention_map`), e.g. by how near in time its reference is.
        """
        self.check_size(line, "line art")
        B, _, H, W = line.shape
        with float32_only(line):
            features = self.line_encoder(line.float() * 2 - 1)
            x = features_to_tokens(features)  # (B, N, C)
            y = reference_tokens.float()
            y = y.expand(B, -1, -1) if y.shape[0] == 1 else y
            z, cross = self.cross_attention(x, y, return_attention=True, key_log_weights=reference_log_weights)
            z, self_map = self.self_attention(z, z, return_attention=True)
        h, w = H // self.config.stride, W // self.config.stride
        grid = z.transpose(1, 2).reshape(B, -1, h, w)  # (B, C, h, w)
        image = self.decoder(self.bottleneck(grid), features[-2::-1])
        attention = {"cross": cross, "self": self_map} if return_attention else {}
        return ColorizerOutput(image=image, attention=attention)

    def forward(self, line: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return self.colorize(line, self.encode_reference(reference)).image


def build_colorizer(preset: str = DEFAULT_PRESET) -> Colorizer:
    """A freshly initialised colorizer of a named preset."""
    if preset not in PRESETS:
        msg = f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}"
        raise ValueError(msg)
    return Colorizer(PRESETS[preset])


def preset_name(config: ColorizerConfig) -> str | None:
    """The name of the preset equal to `config`, or None for a custom shape."""
    return next((name for name, preset in PRESETS.items() if preset == config), None)
