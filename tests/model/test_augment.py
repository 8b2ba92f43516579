"""Training augmentations: TPS reference warp, hue/saturation shift, shared pair affine, line-art degradations, the
batch recipe."""

from __future__ import annotations

import pytest
import torch

from model.augment import (
    LINE_DEGRADATIONS,
    AugmentConfig,
    degrade_line_art,
    hsv_to_rgb,
    hue_saturation_shift,
    make_training_batch,
    rgb_to_hsv,
)
from model.line_degradations import (
    add_paper_texture,
    binarise_lines,
    blur_lines,
    change_line_weight,
    lighten_lines,
    random_paper,
)
from model.warps import random_pair_affine, tps_warp


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def coordinate_images(batch: int, height: int, width: int) -> torch.Tensor:
    """(B, 2, H, W) images whose pixels hold their own x and y in [0, 1], so a warp's displacement can be read off."""
    ys = torch.linspace(0, 1, height).view(height, 1).expand(height, width)
    xs = torch.linspace(0, 1, width).view(1, width).expand(height, width)
    return torch.stack([xs, ys]).expand(batch, 2, height, width).clone()


def test_tps_warp_with_no_shift_is_the_identity() -> None:
    images = torch.rand(3, 3, 40, 56, generator=seeded())
    warped = tps_warp(images, max_shift=0.0, generator=seeded())
    torch.testing.assert_close(warped, images, atol=1e-5, rtol=0)


def test_tps_warp_moves_the_inside_and_keeps_the_corners() -> None:
    images = coordinate_images(4, 64, 64)
    warped = tps_warp(images, max_shift=0.2, generator=seeded(1))
    displacement = (warped - images).abs().amax(dim=1)  # (B, H, W), in units of the image size
    assert displacement[:, 16:48, 16:48].mean() > 0.02  # the middle moved by more than a pixel on average
    for row, col in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
        assert displacement[:, row, col].max() < 2 / 64  # corners stay within two pixels
    assert warped.shape == images.shape and torch.isfinite(warped).all()


def test_tps_warp_is_deterministic_per_seed_and_differs_per_sample() -> None:
    images = torch.rand(2, 3, 32, 32, generator=seeded())
    first = tps_warp(images, generator=seeded(7))
    assert torch.equal(first, tps_warp(images, generator=seeded(7)))
    assert not torch.allclose(first, tps_warp(images, generator=seeded(8)))
    same = images[:1].expand(2, -1, -1, -1)
    warped = tps_warp(same, generator=seeded(7))
    assert not torch.allclose(warped[0], warped[1])  # each sample gets its own spline


def test_tps_warp_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_shift"):
        tps_warp(torch.rand(1, 3, 8, 8), max_shift=-0.1)
    with pytest.raises(ValueError, match="shape"):
        tps_warp(torch.rand(3, 8, 8))


def test_hue_shift_keeps_whites_greys_and_blacks() -> None:
    levels = torch.tensor([0.0, 0.25, 0.5, 0.8, 1.0])
    greys = levels.view(1, 1, 1, 5).expand(4, 3, 6, 5).clone()
    shifted = hue_saturation_shift(greys, torch.tensor([0.1, 0.33, 0.5, 0.9]), torch.tensor([0.0, 0.5, 1.5, 3.0]))
    torch.testing.assert_close(shifted, greys, atol=1e-6, rtol=0)


def test_hue_shift_turns_red_into_green_and_a_full_turn_changes_nothing() -> None:
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1.0
    green = hue_saturation_shift(red, torch.tensor([1 / 3]), torch.tensor([1.0]))
    torch.testing.assert_close(green[0, :, 0, 0], torch.tensor([0.0, 1.0, 0.0]), atol=1e-5, rtol=0)
    images = torch.rand(3, 3, 16, 16, generator=seeded())
    full_turn = hue_saturation_shift(images, torch.ones(3), torch.ones(3))
    torch.testing.assert_close(full_turn, images, atol=1e-5, rtol=0)


def test_saturation_zero_gives_grey_of_the_same_value() -> None:
    images = torch.rand(2, 3, 8, 8, generator=seeded())
    grey = hue_saturation_shift(images, torch.zeros(2), torch.zeros(2))
    torch.testing.assert_close(grey, images.amax(dim=1, keepdim=True).expand_as(images), atol=1e-6, rtol=0)


def test_hsv_round_trip() -> None:
    images = torch.rand(2, 3, 16, 16, generator=seeded())
    torch.testing.assert_close(hsv_to_rgb(rgb_to_hsv(images)), images, atol=1e-5, rtol=0)


def test_pair_affine_moves_line_and_color_alike_with_white_fill() -> None:
    color = torch.rand(16, 3, 32, 32, generator=seeded())
    line = color.mean(dim=1, keepdim=True)  # line art that is a pixelwise function of the color image
    line_out, color_out = random_pair_affine(line, color, seeded(3))
    # Bilinear sampling is linear, so the same transform keeps line == mean(color) exactly.
    torch.testing.assert_close(line_out, color_out.mean(dim=1, keepdim=True), atol=1e-5, rtol=0)
    assert not torch.allclose(color_out, color)
    assert color_out.min() >= 0 and color_out.max() <= 1
    black = torch.zeros(16, 3, 32, 32)
    _, black_out = random_pair_affine(torch.zeros(16, 1, 32, 32), black, seeded(3))
    assert (black_out == 1).any(dim=1).flatten(1).any(dim=1).sum() >= 8  # most zoomed-out/shifted frames show paper


def test_pair_affine_is_deterministic_per_seed() -> None:
    color = torch.rand(4, 3, 16, 16, generator=seeded())
    line = torch.rand(4, 1, 16, 16, generator=seeded(1))
    first = random_pair_affine(line, color, seeded(5))
    second = random_pair_affine(line, color, seeded(5))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_make_training_batch_shapes_ranges_and_dtypes() -> None:
    line = torch.randint(0, 256, (4, 1, 32, 32), dtype=torch.uint8, generator=seeded())
    color = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=seeded(1))
    line_in, reference, target = make_training_batch(line, color, AugmentConfig(), seeded(2))
    assert line_in.shape == (4, 1, 32, 32) and reference.shape == target.shape == (4, 3, 32, 32)
    assert line_in.dtype == reference.dtype == target.dtype == torch.float32
    assert line_in.min() >= 0 and line_in.max() <= 1
    for images in (reference, target):
        assert images.min() >= -1 and images.max() <= 1 and torch.isfinite(images).all()
    again = make_training_batch(line, color, AugmentConfig(), seeded(2))
    assert all(torch.equal(a, b) for a, b in zip((line_in, reference, target), again, strict=True))


def test_make_training_batch_without_augmentation_passes_the_pair_through() -> None:
    line = torch.rand(2, 1, 16, 16, generator=seeded())
    color = torch.rand(2, 3, 16, 16, generator=seeded(1))
    off = AugmentConfig(max_shift=0.0, hue=False, saturation=(1.0, 1.0), affine=False, noise_std=0.0)
    line_in, reference, target = make_training_batch(line, color, off.without_line_degradations(), seeded())
    torch.testing.assert_close(line_in, line)
    torch.testing.assert_close(target, color * 2 - 1)
    torch.testing.assert_close(reference, target, atol=1e-5, rtol=0)


def test_make_training_batch_recolors_target_and_reference_together() -> None:
    line = torch.ones(2, 1, 16, 16)
    color = torch.zeros(2, 3, 16, 16)
    color[:, 0] = 0.9  # saturated red
    hue_only = AugmentConfig(max_shift=0.0, hue=True, saturation=(1.0, 1.0), affine=False, noise_std=0.0)
    _, reference, target = make_training_batch(line, color, hue_only, seeded(4))
    assert not torch.allclose(target, color * 2 - 1, atol=0.05)  # the hue moved ...
    torch.testing.assert_close(reference, target, atol=1e-5, rtol=0)  # ... in the reference too


def test_reference_noise_has_the_configured_spread() -> None:
    color = torch.full((2, 3, 32, 32), 0.5)
    noisy = AugmentConfig(max_shift=0.0, hue=False, saturation=(1.0, 1.0), affine=False, noise_std=0.05)
    _, reference, target = make_training_batch(torch.ones(2, 1, 32, 32), color, noisy, seeded())
    spread = ((reference - target) / 2).std().item()  # back in [0, 1] pixel units
    assert 0.04 < spread < 0.06


def test_augment_config_rejects_inverted_saturation_range() -> None:
    with pytest.raises(ValueError, match="saturation"):
        AugmentConfig(saturation=(1.3, 0.7))


# ---------------------------------------------------------------------------------------------------------------------
# Line-art degradations


def line_art(batch: int = 4) -> torch.Tensor:
    """(B, 1, 48, 48) white paper with black strokes 1, 2 and 3 px wide, a box and a one-pixel diagonal."""
    line = torch.ones(batch, 1, 48, 48)
    line[:, :, 8, 4:44] = 0
    line[:, :, 14:16, 4:44] = 0
    line[:, :, 20:23, 4:44] = 0
    line[:, :, 28:44, 6] = 0
    line[:, :, 28:44, 20] = 0
    line[:, :, 28, 6:21] = 0
    line[:, :, 43, 6:21] = 0
    steps = torch.arange(28, 44)
    line[:, :, steps, steps] = 0
    return line


def only(name: str, probability: float = 1.0) -> AugmentConfig:
    """The default config with one line-art degradation at `probability` and the others off."""
    return AugmentConfig(**{**dict.fromkeys(LINE_DEGRADATIONS, 0.0), name: probability})


def test_thicker_lines_have_more_ink_and_thinner_lines_less_but_survive() -> None:
    line = line_art(3)
    amounts = torch.tensor([1.0, -0.7, 0.0])
    changed = change_line_weight(line, amounts)
    ink = (changed < 0.5).flatten(1).sum(dim=1)
    original = (line < 0.5).sum().item() / 3
    assert ink[0] > 1.5 * original  # every stroke grew by a pixel on each side
    assert (changed[1] > line[1]).any() and (changed[1] >= line[1]).all()  # lighter everywhere it changed
    assert changed[1, 0, 8, 4:44].max() < 0.75  # the one-pixel stroke fades but stays
    torch.testing.assert_close(changed[2], line[2])
    assert changed.min() >= 0 and changed.max() <= 1


def test_lighter_lines_raise_the_ink_and_keep_the_paper() -> None:
    line = line_art(2)
    lighter = lighten_lines(line, torch.tensor([0.5, 0.0]))
    ink = line[0] == 0
    assert lighter[0][ink].mean() == pytest.approx(0.5)
    assert (lighter[0][~ink] == 1).all()
    torch.testing.assert_close(lighter[1], line[1])


def test_blur_softens_the_lines_per_sample() -> None:
    line = line_art(2)
    blurred = blur_lines(line, torch.tensor([1.2, 0.4]))
    softened = ((blurred > 0.05) & (blurred < 0.95)).flatten(1).sum(dim=1)
    assert softened[0] > softened[1] > 0  # the wider blur softens more pixels
    assert blurred.min() >= 0 and blurred.max() <= 1 + 1e-6
    assert (blurred[:, :, :4] > 0.999).all()  # paper far from the lines stays white
    # A blur moves ink around without creating or destroying it (the strokes are far from the border).
    torch.testing.assert_close(blurred.sum(dim=(1, 2, 3)), line.sum(dim=(1, 2, 3)), rtol=1e-5, atol=1e-2)


def test_binarised_lines_take_only_two_values() -> None:
    soft = blur_lines(line_art(2), torch.tensor([1.0, 1.0]))
    hard = binarise_lines(soft, torch.tensor([0.4, 0.7]))
    assert set(hard.unique().tolist()) == {0.0, 1.0}
    assert (hard[1] == 0).sum() > (hard[0] == 0).sum()  # a higher threshold keeps more ink
    out = degrade_line_art(soft, only("binarise_prob"), seeded())
    assert set(out.unique().tolist()) == {0.0, 1.0}


def test_paper_texture_keeps_the_lines_detectable() -> None:
    line = line_art(8)
    textured = degrade_line_art(line, only("paper_texture_prob"), seeded(2))
    ink, paper = line == 0, line == 1
    for sample in range(8):
        inked, papered = textured[sample][ink[sample]], textured[sample][paper[sample]]
        assert inked.max() < papered.min()  # one threshold still separates ink from paper
        assert papered.std() > 0.005 and papered.mean() < 1  # the paper is no longer flat white
    paper_brightness = random_paper((8, 1, 48, 48), seeded(3), line)
    assert paper_brightness.min() >= 0.6 and paper_brightness.max() <= 1
    torch.testing.assert_close(add_paper_texture(line, torch.ones_like(line), torch.zeros_like(line)), line)


@pytest.mark.parametrize("name", LINE_DEGRADATIONS)
def test_each_degradation_changes_the_line_art_and_stays_in_range(name: str) -> None:
    line = blur_lines(line_art(4), torch.full((4,), 0.6))  # anti-aliased, so binarising changes it too
    out = degrade_line_art(line, only(name), seeded(1))
    assert out.shape == line.shape and torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1
    changed = (out - line).abs().flatten(1).amax(dim=1) > 0.01
    assert changed.all()  # probability 1: every sample


def test_degradations_pick_samples_at_their_probability() -> None:
    line = line_art(64)
    out = degrade_line_art(line, only("grey_lines_prob", 0.5), seeded(5))
    changed = (out != line).flatten(1).any(dim=1)
    assert 16 < changed.sum() < 48
    torch.testing.assert_close(out[~changed], line[~changed])


def test_default_config_degrades_the_line_art_deterministically() -> None:
    line = line_art(16)
    color = torch.rand(16, 3, 48, 48, generator=seeded())
    first = make_training_batch(line, color, AugmentConfig(), seeded(11))
    again = make_training_batch(line, color, AugmentConfig(), seeded(11))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    other = make_training_batch(line, color, AugmentConfig(), seeded(12))
    assert not torch.equal(first[0], other[0])
    plain = make_training_batch(line, color, AugmentConfig().without_line_degradations(), seeded(11))
    assert not torch.equal(first[0], plain[0])  # some of the 16 line images were degraded


def test_without_line_degradations_the_batch_is_what_it_was() -> None:
    line = line_art(6)
    color = torch.rand(6, 3, 48, 48, generator=seeded())
    off = AugmentConfig().without_line_degradations()
    line_in, reference, target = make_training_batch(line, color, off, seeded(4))
    # The line art went through the pair affine only, which draws the generator's first numbers ...
    expected_line, _ = random_pair_affine(line, color, seeded(4))
    assert torch.equal(line_in, expected_line)
    # ... and the degradations come after the colors and references, which they leave exactly as they were.
    _, degraded_reference, degraded_target = make_training_batch(line, color, AugmentConfig(), seeded(4))
    assert torch.equal(reference, degraded_reference) and torch.equal(target, degraded_target)
    assert all(getattr(off, name) == 0 for name in LINE_DEGRADATIONS)


def test_augment_config_rejects_a_probability_outside_0_1() -> None:
    with pytest.raises(ValueError, match="line_blur_prob"):
        AugmentConfig(line_blur_prob=1.5)
    with pytest.raises(ValueError, match="binarise_prob"):
        AugmentConfig(binarise_prob=-0.1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_batch_on_gpu_matches_cpu_with_a_cpu_generator() -> None:
    line = torch.rand(4, 1, 32, 32, generator=seeded())
    color = torch.rand(4, 3, 32, 32, generator=seeded(1))
    config = AugmentConfig(binarise_prob=1.0)  # every degradation in play, the hard threshold on every sample
    cpu = make_training_batch(line, color, config, seeded(9))
    gpu = make_training_batch(line.cuda(), color.cuda(), config, seeded(9))
    for a, b in zip(cpu[1:], gpu[1:], strict=True):
        assert b.is_cuda
        torch.testing.assert_close(b.cpu(), a, atol=1e-4, rtol=0)
    # A pixel that lands within rounding of the random threshold may binarise the other way on the other device.
    differs = (gpu[0].cpu() - cpu[0]).abs() > 1e-4
    assert gpu[0].is_cuda and differs.float().mean() < 1e-3
