from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from pipeline.cielab import rgb_to_lab
from pipeline.coloring_order import outward_order
from pipeline.composite import multiply_lines
from pipeline.region_vote import paint_regions, region_vote
from pipeline.regions import segment_regions
from pipeline.tracking import RegionTracker, estimate_shift, ink_map

SKY = (200, 225, 250)
RED = (220, 40, 40)
SIZE = (160, 120)  # width, height


def ball_frame(x: int, y: int = 60) -> np.ndarray:
    """Line art: a boxed frame with a ring of radius 20 centred at (x, y)."""
    image = Image.new("L", SIZE, 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, SIZE[0] - 1, SIZE[1] - 1], outline=0, width=2)
    draw.ellipse([x - 20, y - 20, x + 20, y + 20], outline=0, width=3)
    return np.asarray(image)


def painted(lines: np.ndarray, inside: tuple, outside: tuple, x: int, y: int = 60) -> np.ndarray:
    """The frame's paint: `inside` within the ring, `outside` elsewhere."""
    yy, xx = np.mgrid[: lines.shape[0], : lines.shape[1]]
    colors = np.empty((*lines.shape, 3), np.uint8)
    colors[:] = outside
    colors[(yy - y) ** 2 + (xx - x) ** 2 < 20**2] = inside
    return colors


def test_estimate_shift_finds_the_move_between_two_drawings():
    before, after = ball_frame(60), ball_frame(71, 63)
    # Measured on a grid of at most 128 a side: within a pixel of the move at the frame's 160 x 120.
    dy, dx = estimate_shift(ink_map(before), ink_map(after), before.shape)
    assert abs(dy - 3) <= 1 and abs(dx - 11) <= 1
    dy, dx = estimate_shift(ink_map(after), ink_map(before), before.shape)
    assert abs(dy + 3) <= 1 and abs(dx + 11) <= 1
    assert estimate_shift(ink_map(before), ink_map(before), before.shape) == (0, 0)


def test_a_moving_region_keeps_the_keyframes_color_while_the_model_wavers():
    keyframe = multiply_lines(painted(ball_frame(40), RED, SKY, 40), ball_frame(40))
    tracker = RegionTracker([(keyframe, 0)])
    rng = np.random.default_rng(0)
    ball_colors = []
    for index, x in enumerate(range(40, 120, 5)):
        lines = ball_frame(x)
        # The model's vote wavers by up to ~15 Delta E from frame to frame, around the right colors.
        wobble = rng.integers(-12, 13, size=3)
        model = painted(lines, np.clip(np.add(RED, wobble), 0, 255), np.clip(np.add(SKY, -wobble), 0, 255), x)
        vote = region_vote(model, segment_regions(lines))
        out = paint_regions(model, vote, tracker.decide(index, vote, lines))
        ball_colors.append(tuple(out[60, x]))
        assert tuple(out[5, 5]) == tuple(out[110, 150])  # the sky is one color
    assert len(set(ball_colors)) == 1
    assert np.abs(np.subtract(ball_colors[0], RED)).max() <= 3  # and it is the keyframe's red, not a wobble
    assert len(tracker.decided) <= 2  # only the frame the next one is matched to is kept


def test_a_clear_disagreement_or_a_new_region_takes_the_models_vote():
    keyframe = multiply_lines(painted(ball_frame(40), RED, SKY, 40), ball_frame(40))
    tracker = RegionTracker([(keyframe, 0)])
    lines = ball_frame(45)
    green = (40, 180, 60)  # Delta E far above the disagreement threshold from red
    model = painted(lines, green, SKY, 45)
    vote = region_vote(model, segment_regions(lines))
    out = paint_regions(model, vote, tracker.decide(0, vote, lines))
    assert np.abs(out[60, 45].astype(int) - green).max() <= 3
    # A second ball appears where the keyframe had sky: its own vote, not the sky it overlaps.
    image = Image.fromarray(ball_frame(45))
    ImageDraw.Draw(image).ellipse([100, 40, 140, 80], outline=0, width=3)
    lines = np.asarray(image)
    model = painted(lines, RED, SKY, 45)
    model[(np.mgrid[:120, :160][0] - 60) ** 2 + (np.mgrid[:120, :160][1] - 120) ** 2 < 400] = RED
    vote = region_vote(model, segment_regions(lines))
    out = paint_regions(model, vote, tracker.decide(1, vote, lines))
    assert np.abs(out[60, 120].astype(int) - RED).max() <= 3


def test_frames_before_the_keyframe_are_matched_toward_it():
    position = 3
    keyframe = multiply_lines(painted(ball_frame(70), RED, SKY, 70), ball_frame(70))
    tracker = RegionTracker([(keyframe, position)])
    chosen = {}
    for index in outward_order(7, position):
        x = 70 + 4 * (index - position)
        lines = ball_frame(x)
        model = painted(lines, (200, 70, 60) if index % 2 else (235, 30, 50), SKY, x)
        vote = region_vote(model, segment_regions(lines))
        chosen[index] = tuple(paint_regions(model, vote, tracker.decide(index, vote, lines))[60, x])
    assert len(set(chosen.values())) == 1
    lab = rgb_to_lab(np.array([chosen[0], RED], np.uint8))
    assert np.linalg.norm(lab[0] - lab[1]) < 2
