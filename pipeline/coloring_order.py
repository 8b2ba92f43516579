"""The order a shot's frames are colored in: outward from the frames its keyframes were painted on.

Region tracking and chaining decide a frame from its neighbour nearer a keyframe, so that neighbour must be done
first; a shot with one keyframe on its first frame (or on none of its frames) is colored first to last, which is
also the order its video is fed in.
"""

from __future__ import annotations

from collections.abc import Iterable


def outward_order(count: int, starts: int | tuple[int, ...]) -> list[int]:
    """Frame indices outward from the keyframes at `starts`, nearest to one first, at equal distance later before
    earlier: 3 of 6 -> 3, 4, 2, 5, 1, 0; (0, 5) of 6 -> 5, 0, 4, 1, 3, 2. Every frame then comes after its
    neighbour nearer a keyframe, the order region tracking and chaining need."""
    starts = (starts,) if isinstance(starts, int) else starts
    clipped = [min(max(start, 0), count - 1) for start in starts] or [0]
    return sorted(range(count), key=lambda i: (min(abs(i - start) for start in clipped), -i))


def coloring_order(positions: Iterable[int | None], total: int) -> list[int] | None:
    """The order a shot of `total` frames is colored in, outward from the frames its keyframes were painted on
    (`outward_order`); None for first to last: a single keyframe on the first frame or on none of the shot's."""
    starts = tuple(position for position in positions if position is not None and 0 <= position < total)
    if starts in ((), (0,)):
        return None
    return outward_order(total, starts)
