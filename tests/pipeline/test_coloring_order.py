"""The order a shot's frames are colored in (pipeline/coloring_order.py): each frame after its neighbour nearer a
keyframe."""

from __future__ import annotations

from pipeline.coloring_order import coloring_order, outward_order


def test_outward_order_goes_nearest_first():
    assert outward_order(6, 3) == [3, 4, 2, 5, 1, 0]
    assert outward_order(4, 0) == [0, 1, 2, 3]
    assert outward_order(3, 2) == [2, 1, 0]
    assert outward_order(1, 0) == [0]


def test_frames_are_colored_outward_from_every_keyframe():
    assert outward_order(6, (0, 5)) == [5, 0, 4, 1, 3, 2]
    order = outward_order(20, (4, 15))
    assert sorted(order) == list(range(20))
    for position, index in enumerate(order):  # each frame after its neighbour nearer a keyframe
        if index not in (4, 15):
            nearest = min((4, 15), key=lambda k: (abs(index - k), k))
            neighbour = index - 1 if index > nearest else index + 1
            assert order.index(neighbour) < position


def test_a_shot_is_colored_first_to_last_unless_a_keyframe_is_painted_inside_it():
    assert coloring_order([0], 5) is None  # painted on the first frame
    assert coloring_order([None], 5) is None  # painted on none of the shot's frames
    assert coloring_order([None, 7, -1], 5) is None  # positions outside the shot are not starts
    assert coloring_order([2], 5) == [2, 3, 1, 4, 0]
    assert coloring_order([0, 4], 5) == [4, 0, 3, 1, 2]
