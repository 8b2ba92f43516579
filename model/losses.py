"""Training losses of the paper: 30 L1 + 1 LSGAN + 0.01 perceptual + 50 style.

The perceptual and style terms need VGG19 weights, which cannot be downloaded here: they are read from a
safetensors file the user gives (torchvision's key names, ``features.N.weight``). Without one, training runs on
L1 + LSGAN and says so.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

log = logging.getLogger(__name__)

# VGG19's conv widths, "M" for max-pool; indices below follow torchvision's `features` numbering.
VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512)
VGG19_TAPS = {"relu1_2": 3, "relu2_2": 8, "relu3_4": 17, "relu4_4": 26, "relu5_4": 35}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class LossWeights:
    """Weights of the generator's loss terms (the paper's values by default)."""

    l1: float = 30.0
    adversarial: float = 1.0
    perceptual: float = 0.01
    style: float = 50.0


class VGG19Features(nn.Module):
    """Frozen VGG19 convolutional trunk returning the activations at `VGG19_TAPS`.

    Args:
        taps: names of the layers to return, in order.
    """

    def __init__(self, taps: tuple[str, ...] = tuple(VGG19_TAPS)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = 3
        for width in VGG19_LAYOUT:
            if width == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(previous, width, 3, padding=1), nn.ReLU(inplace=False)]
                previous = width
        self.taps = {VGG19_TAPS[name]: name for name in taps}
        self.features = nn.Sequential(*layers[: max(self.taps) + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> VGG19Features:
        """Load torchvision-named VGG19 weights (``features.N.weight`` or ``N.weight``) from a safetensors file."""
        model = cls()
        tensors = load_file(str(path))
        state = {k.removeprefix("features."): v for k, v in tensors.items() if not k.startswith("classifier.")}
        wanted = {k.removeprefix("features."): v for k, v in model.state_dict().items()}
        missing = sorted(set(wanted) - set(state))
        if missing:
            msg = f"VGG19 weights {str(path)!r} lack {missing[:4]}; expected torchvision's vgg19 `features` keys"
            raise ValueError(msg)
        model.features.load_state_dict({k: state[k] for k in wanted})
        return model

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Activations of an image in [-1, 1] at each tap, in order."""
        x = ((image + 1) / 2 - self.mean) / self.std
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                outputs.append(x)
        return outputs


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, C) Gram matrix normalised by the number of elements."""
    B, C, H, W = features.shape
    flat = features.reshape(B, C, H * W)  # (B, C, HW)
    return torch.bmm(flat, flat.transpose(1, 2)) / (C * H * W)


def lsgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN: the generator wants its patches scored 1."""
    return F.mse_loss(fake_scores, torch.ones_like(fake_scores))


def lsgan_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN: real patches to 1, generated ones to 0."""
    real = F.mse_loss(real_scores, torch.ones_like(real_scores))
    fake = F.mse_loss(fake_scores, torch.zeros_like(fake_scores))
    return (real + fake) / 2


class GeneratorLoss(nn.Module):
    """The generator's weighted loss; returns the total and its named terms.

    Args:
        weights: the terms' weights.
        vgg: a VGG19 feature extractor, or None to train without perceptual and style terms.
    """

    def __init__(self, weights: LossWeights | None = None, vgg: VGG19Features | None = None) -> None:
        super().__init__()
        self.weights = weights or LossWeights()
        self.vgg = vgg
        if vgg is None:
            log.info("no VGG19 weights given: training without the perceptual and style loss terms")

    def forward(
        self, prediction: torch.Tensor, target: torch.Tensor, fake_scores: torch.Tensor | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        w = self.weights
        terms = {"l1": F.l1_loss(prediction, target)}
        if fake_scores is not None:
            terms["adversarial"] = lsgan_generator_loss(fake_scores)
        if self.vgg is not None:
            predicted_features = self.vgg(prediction.float())
            with torch.no_grad():
                target_features = self.vgg(target.float())
            pairs = list(zip(predicted_features, target_features, strict=True))
            terms["perceptual"] = sum(F.l1_loss(p, t) for p, t in pairs)
            terms["style"] = sum(F.l1_loss(gram_matrix(p), gram_matrix(t)) for p, t in pairs)
        total = sum(getattr(w, name) * value for name, value in terms.items())
        # Detached tensors, not floats: reading a value would make the GPU wait every step.
        return total, {name: value.detach() for name, value in terms.items()}
