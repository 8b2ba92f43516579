"""What a shot's frames are colored from: its keyframes, weighted by nearness in time, and the frame colored before.

A shot may have several keyframes (say its first and its last drawing). Every frame attends over the tokens of all
of them together, each keyframe's tokens weighted by how near in time it was painted, so a region seen only in the
last keyframe still finds its color while the nearer keyframe wins where both match. With chaining, the most
recently colored frame on the frame's side of its keyframe joins them at a lower weight: motion far from the
keyframe then finds colors in a drawing that looks like it, and the keyframes stay the authority wherever they
match.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.cielab import rgb_to_lab

# A keyframe this many frames away counts half as much as one painted on the frame itself.
TIMESCALE_FRAMES = 12.0
# The weight of the chained frame, against 1 for a keyframe painted on the frame being colored. Measured with
# benchmarks/shot_quality.py and the wave sample: 0.5 helped the sample (temporal error 2.52 -> 2.14) and hurt the
# OpenMoji shots, whose keyframe stays a good match (region accuracy -3.7 points); 0.2 helps both a little.
CHAIN_WEIGHT = 0.2


@dataclass(frozen=True)
class ShotReference:
    """A colored keyframe of a shot.

    Args:
        url: the colored keyframe.
        position: index (0-based) of the shot's frame it was painted on; None when it is not one of the shot's.
        lines: URL of the keyframe's own line art, when the studio has it; else the frame it was painted on, when
            that is one of the shot's, or lines extracted from the keyframe (pipeline/correspondence.py).
    """

    url: str
    position: int | None = None
    lines: str | None = None


@dataclass(frozen=True)
class FrameReferences:
    """The tokens one frame attends over: (1, M, C) tokens and their (1, M) log weights."""

    tokens: torch.Tensor
    log_weights: torch.Tensor


def stack_references(references: list[FrameReferences]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Reference tokens and log weights for a model call: one shared (1, M, C) set when every frame has the same
    tokens and no weights differ from 1, else one row per frame."""
    first = references[0]
    if all(r.tokens is first.tokens for r in references) and not any(r.log_weights.any() for r in references):
        return first.tokens, None
    return torch.cat([r.tokens for r in references]), torch.cat([r.log_weights for r in references])


# A keyframe with color on fewer of its pixels than this is line art given by mistake (or a gray scan).
UNCOLORED_SHARE = 0.005


def colored_share(rgb: np.ndarray, min_chroma: float = 12.0) -> float:
    """The share of an image's pixels that have color: CIELAB chroma of at least `min_chroma` (grays and black or
    anti-aliased ink have nearly none), measured on a reduced copy."""
    step = max(1, max(rgb.shape[:2]) // 256)
    lab = rgb_to_lab(np.ascontiguousarray(rgb[::step, ::step]))
    return float((np.hypot(lab[..., 1], lab[..., 2]) >= min_chroma).mean())


def uncolored_warning(url: str, image: np.ndarray) -> str | None:
    """A warning naming a keyframe that has almost no color (line art given by mistake, or a gray scan), from
    which the model would paint the shot in grays; None for a colored keyframe."""
    share = colored_share(image)
    if share >= UNCOLORED_SHARE:
        return None
    return (f"reference {url!r} looks like line art, not a colored keyframe: only {100 * share:.2f}% of its pixels "
            "have color; the frames will come out without color")  # fmt: skip


def keyframe_weight(index: int, position: int | None) -> float:
    """How much a keyframe painted on frame `position` counts for frame `index`: 1 on it, 1/2 TIMESCALE_FRAMES
    away, falling off smoothly; a keyframe of unknown position counts fully everywhere."""
    if position is None:
        return 1.0
    return 1.0 / (1.0 + abs(index - position) / TIMESCALE_FRAMES)


class ReferenceBank:
    """The encoded references of one shot and, with `chain`, the finished frames that may join them.

    Chaining must not depend on thread timing: a frame colored in batch k may chain only frames of batch k - 2 or
    before (the caller waits until those are finished, which in a steady stream they already are).

    Args:
        encode: colored image (H, W, 3) uint8 -> (1, M, C) tokens (the model's reference encoder).
        keyframes: (image, position) of each keyframe, the first the main one (see `ShotReference`).
        chain: whether the latest finished frame on a frame's side of its keyframe joins its references.
    """

    def __init__(
        self,
        encode: Callable[[np.ndarray], torch.Tensor],
        keyframes: list[tuple[np.ndarray, int | None]],
        chain: bool = False,
    ) -> None:
        if not keyframes:
            msg = "a shot needs at least one keyframe"
            raise ValueError(msg)
        self.encode = encode
        self.keyframe_tokens = [encode(image) for image, _ in keyframes]
        self.positions = [position for _, position in keyframes]
        self.chain = chain
        self.lock = threading.Lock()
        self.finished: dict[tuple[int, int], list[tuple[int, int, np.ndarray]]] = {}  # side -> (batch, index, image)
        self.encoded: dict[tuple[int, int], tuple[int, torch.Tensor]] = {}  # side -> (index, tokens)

    def side(self, index: int) -> tuple[int, int]:
        """The keyframe nearest to frame `index` and the direction away from it (+1 after, -1 before, 0 on it)."""
        known = [position for position in self.positions if position is not None] or [0]
        nearest = min(known, key=lambda position: (abs(index - position), position))
        return nearest, (index > nearest) - (index < nearest)

    def for_frame(self, index: int, batch: int = 0, with_chain: bool = True) -> FrameReferences:
        """The tokens frame `index`, colored in batch number `batch`, attends over, with their weights; with
        `with_chain` False, the keyframes' alone."""
        tokens = list(self.keyframe_tokens)
        weights = [keyframe_weight(index, position) for position in self.positions]
        chained = self.chained_tokens(self.side(index), batch - 2) if self.chain and with_chain else None
        if chained is None and len(tokens) == 1:  # the common case: one set for every frame, shared
            return FrameReferences(tokens[0], torch.zeros(1, tokens[0].shape[1]))
        if chained is not None:
            tokens.append(chained)
            weights.append(CHAIN_WEIGHT * max(weights))
        total = sum(weights)  # shares summing to 1: together the references weigh what one does in training
        log_weights = [torch.full((1, t.shape[1]), math.log(w / total)) for t, w in zip(tokens, weights, strict=True)]
        return FrameReferences(torch.cat(tokens, dim=1), torch.cat(log_weights, dim=1))

    def chained_tokens(self, side: tuple[int, int], last_batch: int) -> torch.Tensor | None:
        """Tokens of the finished frame farthest from the keyframe on `side` among batches up to `last_batch`."""
        if side[1] == 0:
            return None  # the keyframe's own frame: nothing nearer to chain
        with self.lock:
            candidates = [(abs(index - side[0]), index, image) for batch, index, image in self.finished.get(side, [])
                          if batch <= last_batch]  # fmt: skip
            if not candidates:
                return None
            _, index, image = max(candidates, key=lambda candidate: candidate[0])
            # Older frames on this side will never be chosen again.
            self.finished[side] = [
                entry for entry in self.finished[side] if abs(entry[1] - side[0]) >= abs(index - side[0])
            ]
        if self.encoded.get(side, (None,))[0] != index:
            self.encoded[side] = (index, self.encode(image))
        return self.encoded[side][1]

    def finish(self, index: int, batch: int, image: np.ndarray) -> None:
        """Note a finished frame (H, W, 3) uint8, colored in batch number `batch` (called from any thread)."""
        if not self.chain or self.side(index)[1] == 0:
            return
        with self.lock:
            self.finished.setdefault(self.side(index), []).append((batch, index, image))
