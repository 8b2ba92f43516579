from __future__ import annotations

import math

import pytest
import torch

from model.blocks import CBAM, StopGradientAttention, stop_gradient_attention_map
from model.colorizer import PRESETS, Colorizer, ColorizerConfig, build_colorizer

TINY = ColorizerConfig(
    encoder_channels=(4, 4, 8, 8, 8, 8, 16, 16, 16, 16), bottleneck_channels=16, res_blocks=1, cbam_reduction=2
)


@pytest.fixture(scope="module")
def presets() -> dict[str, Colorizer]:
    torch.manual_seed(0)
    return {name: build_colorizer(name).eval() for name in PRESETS}


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize(("height", "width"), [(64, 64), (48, 80), (112, 32)])
def test_output_shape_and_range_at_any_multiple_of_16(presets, preset, height, width):
    model = presets[preset]
    line = torch.rand(2, 1, height, width)
    reference = torch.rand(1, 3, 96, 64) * 2 - 1  # a reference of another size than the frames
    with torch.inference_mode():
        out = model.colorize(line, model.encode_reference(reference)).image
    assert out.shape == (2, 3, height, width)
    assert torch.isfinite(out).all()
    assert out.abs().max() <= 1


def test_paper_preset_has_the_papers_size():
    config = PRESETS["icme2023"]
    assert config.token_channels == 992
    parameters = sum(p.numel() for p in Colorizer(config).parameters())
    assert 80e6 < parameters < 88e6  # the paper reports 84M


def test_sizes_not_multiple_of_stride_are_refused():
    model = Colorizer(TINY).eval()
    with pytest.raises(ValueError, match=r"line art is 50x64; .* multiples of 16"):
        model(torch.rand(1, 1, 64, 50), torch.rand(1, 3, 64, 64))


def test_every_trainable_parameter_gets_a_gradient():
    torch.manual_seed(1)
    model = Colorizer(TINY).train()
    out = model(torch.rand(2, 1, 32, 48), torch.rand(2, 3, 48, 32) * 2 - 1)
    out.square().mean().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []
    # A CBAM gate with one hidden unit may start behind a dead ReLU; everything else must get a non-zero gradient.
    zero = [name for name, p in model.named_parameters() if p.grad.abs().sum() == 0]
    assert all(".mlp." in name for name in zero), zero


def test_no_gradient_reaches_the_attention_map():
    torch.manual_seed(2)
    x = torch.randn(2, 6, 8, requires_grad=True)
    y = torch.randn(2, 5, 8, requires_grad=True)
    attention = stop_gradient_attention_map(x, y)
    assert not attention.requires_grad
    # Softmax over keys then L1 over queries: every key column sums to one.
    torch.testing.assert_close(attention.sum(dim=1), torch.ones(2, 5))
    layer = StopGradientAttention(8)
    z, returned = layer(x, y, return_attention=True)
    assert not returned.requires_grad
    z.sum().backward()
    assert x.grad is not None and y.grad is not None  # through the value and source projections


def test_gradient_through_values_equals_a_detached_map():
    """The layer's gradient equals that of a copy whose map is an explicit constant: nothing flows through A."""
    torch.manual_seed(3)
    layer = StopGradientAttention(8).train()
    x = torch.randn(2, 6, 8, requires_grad=True)
    y = torch.randn(2, 5, 8, requires_grad=True)
    layer(x, y).pow(2).sum().backward()
    grad_x, grad_y = x.grad.clone(), y.grad.clone()
    x.grad = y.grad = None
    constant = stop_gradient_attention_map(x, y).clone()
    gathered = torch.bmm(constant, layer.act(layer.message(y)))
    mixed = gathered + layer.act(layer.source(x))
    z = layer.norm(mixed.transpose(1, 2)).transpose(1, 2) + x
    z.pow(2).sum().backward()
    torch.testing.assert_close(x.grad, grad_x)
    torch.testing.assert_close(y.grad, grad_y)


def test_a_frame_alone_matches_the_same_frame_in_a_batch():
    torch.manual_seed(4)
    model = build_colorizer("lite").eval()
    lines = torch.rand(4, 1, 64, 96)
    with torch.inference_mode():
        tokens = model.encode_reference(torch.rand(1, 3, 64, 64) * 2 - 1)
        batch = model.colorize(lines, tokens).image
        alone = model.colorize(lines[2:3], tokens).image
    torch.testing.assert_close(alone[0], batch[2], atol=1e-5, rtol=1e-4)


def test_reference_encoded_once_equals_full_forward():
    torch.manual_seed(5)
    model = Colorizer(TINY).eval()
    line, reference = torch.rand(3, 1, 32, 32), torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.inference_mode():
        direct = model(line, reference.expand(3, -1, -1, -1))
        cached = model.colorize(line, model.encode_reference(reference)).image
    torch.testing.assert_close(direct, cached)


def test_attention_maps_on_request():
    model = Colorizer(TINY).eval()
    with torch.inference_mode():
        out = model.colorize(torch.rand(1, 1, 32, 64), model.encode_reference(torch.rand(1, 3, 64, 64)), True)
    assert out.attention["cross"].shape == (1, 8, 16)  # 2x4 line-art tokens over 4x4 reference tokens
    assert out.attention["self"].shape == (1, 8, 8)


def test_colors_come_from_the_reference():
    """With the same line art, two references of different colors give different outputs."""
    torch.manual_seed(6)
    # Train mode: BatchNorm on batch statistics, since an untrained network's running statistics shrink everything.
    model = Colorizer(TINY).train()
    line = torch.rand(1, 1, 32, 32)
    red = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1).expand(1, 3, 32, 32)
    blue = torch.tensor([-1.0, -1.0, 1.0]).view(1, 3, 1, 1).expand(1, 3, 32, 32)
    with torch.no_grad():
        difference = (model(line, red) - model(line, blue)).abs().max()
    assert difference > 1e-3


def test_cbam_keeps_shape_and_gates_in_unit_range():
    cbam = CBAM(32)
    x = torch.randn(2, 32, 9, 7).abs()
    y = cbam(x)
    assert y.shape == x.shape
    assert (y <= x + 1e-6).all()  # both gates are sigmoids in (0, 1)


def test_key_log_weights_share_the_attention_between_references():
    torch.manual_seed(0)
    queries = torch.randn(1, 5, 16)
    keys = torch.cat([queries, queries], dim=1)  # two references matching every query equally well
    even = stop_gradient_attention_map(queries, keys)
    assert even[0, :, :5].sum().item() == pytest.approx(even[0, :, 5:].sum().item(), rel=1e-4)
    two_thirds, one_third = math.log(2 / 3), math.log(1 / 3)
    weights = torch.cat([torch.full((1, 5), two_thirds), torch.full((1, 5), one_third)], dim=1)
    tilted = stop_gradient_attention_map(queries, keys, weights)
    # Each reference passes on its share: together as much as one reference alone (5 keys, each column 1).
    assert tilted[0, :, :5].sum().item() == pytest.approx(5 * 2 / 3, rel=1e-3)
    assert tilted[0, :, 5:].sum().item() == pytest.approx(5 * 1 / 3, rel=1e-3)
    alone = stop_gradient_attention_map(queries, queries).sum().item()
    assert tilted.sum().item() == pytest.approx(alone, rel=1e-3)
    # And a query that matches both equally leans toward the heavier one before the normalisation.
    assert (tilted[0, :, :5].diagonal() >= tilted[0, :, 5:].diagonal()).all()
