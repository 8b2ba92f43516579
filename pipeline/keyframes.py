"""Decide which keyframes color which shot.

:func:`assign_keyframes` gives every shot its keyframes: an explicit tie to the shot first, then a keyframe painted
on one of the shot's frames, then the keyframe whose line art looks most like the shot's. The likeness is
measured by pipeline/likeness.py with the colorizer's own line-art encoder, so "alike" means alike to the network
that will color the shot. The shots come from the spec or from :func:`pipeline.cuts.split_sequence`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.cuts import ShotFrames

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Keyframe:
    """A colored keyframe and what the user tied it to.

    Args:
        name: the keyframe's name.
        image: URL of the colored keyframe.
        line: URL of the keyframe's line art; None extracts it from the colored image when it is needed.
        shots: names of the shots this keyframe colors, whatever their line art looks like.
        frame: file name (the last path segment, e.g. "frame0012.png") of the frame the keyframe was painted on:
            it colors the shot holding that frame.
    """

    name: str
    image: str
    line: str | None = None
    shots: tuple[str, ...] = ()
    frame: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.shots, str):
            msg = (
                f"keyframe {self.name!r}: shots must be a sequence of shot names, got the single string {self.shots!r}"
            )
            raise ValueError(msg)
        object.__setattr__(self, "shots", tuple(self.shots))


@dataclass(frozen=True)
class KeyframeAssignment:
    """Which keyframe colors a shot, and why.

    Args:
        shot: the shot's name.
        keyframe: the keyframe's name.
        reason: a short sentence for people reading the plan.
        position: the index within the shot of the frame the keyframe was painted on, when that frame is in this
            shot; else None.
        extras: more keyframes of the shot (tied to it, or painted on its frames) as (name, position) pairs: the
            shot is colored from all of them, each weighted by how near in time it was painted.
    """

    shot: str
    keyframe: str
    reason: str
    position: int | None
    extras: tuple[tuple[str, int | None], ...] = ()


Similarity = Callable[[ShotFrames, Keyframe], float]


def _frame_name(url: str) -> str:
    """The last path segment of a frame URL."""
    return url.rstrip("/").rpartition("/")[2]


def _listing(names: Sequence[str], limit: int = 8) -> str:
    """'a', 'b', 'c' ... for a message, with a count of the rest."""
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _check_unique(names: Sequence[str], what: str) -> None:
    """Raise a ValueError naming the first name given twice."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            msg = f"two {what}s are named {name!r}; {what} names must be unique"
            raise ValueError(msg)
        seen.add(name)


def _keyframe_homes(shots: Sequence[ShotFrames], keyframes: Sequence[Keyframe]) -> dict[str, tuple[str, int]]:
    """For each keyframe tied to a frame: (shot name, index of the frame in that shot)."""
    places: dict[str, list[tuple[str, int]]] = {}
    for shot in shots:
        for position, url in enumerate(shot.frames):
            places.setdefault(_frame_name(url), []).append((shot.name, position))
    homes = {}
    for key in keyframes:
        if key.frame is None:
            continue
        found = places.get(key.frame, [])
        if not found:
            hint = " (give the frame's file name, not a path)" if "/" in key.frame else ""
            msg = f"keyframe {key.name!r} is tied to frame {key.frame!r}{hint}, which is in none of the shots' frames"
            raise ValueError(msg)
        holders = list(dict.fromkeys(shot for shot, _ in found))
        if len(holders) > 1:
            msg = (
                f"keyframe {key.name!r} is tied to frame {key.frame!r}, a name found in {len(holders)} shots "
                f"({_listing(holders)}); tie the keyframe to its shot instead"
            )
            raise ValueError(msg)
        homes[key.name] = found[0]
    return homes


def keyframe_frame_problem(shots: Sequence[ShotFrames], keyframe: Keyframe) -> str | None:
    """Why the frame `keyframe` is tied to cannot place it (a name in none of the shots' frames, or in several
    shots), in the words `assign_keyframes` refuses it with; None when it can, or when it names no frame."""
    if keyframe.frame is None:
        return None
    try:
        _keyframe_homes(shots, [keyframe])
    except ValueError as error:
        return str(error)
    return None


def _with_extras(extras: Sequence[Keyframe]) -> str:
    """'' without more keyframes, else a clause naming them."""
    if not extras:
        return ""
    return f"; with {len(extras)} more of its keyframes ({_listing([k.name for k in extras])})"


def assign_keyframes(
    shots: Sequence[ShotFrames], keyframes: Sequence[Keyframe], similarity: Similarity | None = None
) -> list[KeyframeAssignment]:
    """Give every shot its keyframes.

    For each shot, in order of precedence:
    1. the keyframes tied to the shot by name and those painted on one of its frames: all of them color the shot,
       the main one (reported first) being the first tied to it by name, else the first painted on its frames;
    2. (none of those) the only keyframe, when there is one;
    3. the keyframe with the highest `similarity` to the shot (the first of equals). Every keyframe is a candidate,
       also one tied to other shots: it is still a colored picture of what it shows.

    Args:
        shots: the shots, with their frame URLs.
        keyframes: the keyframes, in the spec's order.
        similarity: a score of how alike a shot's and a keyframe's line art are (higher = more alike), such as
            :func:`line_art_similarity` gives; needed only when some shot falls to rule 3.

    Returns:
        One assignment per shot, in `shots` order.
    """
    if not keyframes:
        msg = f"no keyframes given: at least one colored keyframe is needed to color {len(shots)} shots"
        raise ValueError(msg)
    _check_unique([shot.name for shot in shots], "shot")
    _check_unique([key.name for key in keyframes], "keyframe")
    shot_names = [shot.name for shot in shots]
    known = set(shot_names)
    for key in keyframes:
        for name in key.shots:
            if name not in known:
                shown = _listing(shot_names)
                msg = f"keyframe {key.name!r} is tied to shot {name!r}, which is not one of the shots ({shown})"
                raise ValueError(msg)
    homes = _keyframe_homes(shots, keyframes)

    def position(key: Keyframe, shot: ShotFrames) -> int | None:
        home = homes.get(key.name)
        return home[1] if home is not None and home[0] == shot.name else None

    assignments = []
    for shot in shots:
        tied = [key for key in keyframes if shot.name in key.shots]
        painted = [key for key in keyframes if key not in tied and homes.get(key.name, ("",))[0] == shot.name]
        extras: list[Keyframe] = []
        if tied or painted:
            chosen, *extras = tied + painted
            reason = "tied to the shot in the spec" if tied else f"its frame {chosen.frame} is in this shot"
            reason += _with_extras(extras)
        elif len(keyframes) == 1:
            chosen = keyframes[0]
            reason = "the only keyframe"
        else:
            chosen, reason = _most_similar(shot, keyframes, similarity)
        more = tuple((key.name, position(key, shot)) for key in extras)
        assignments.append(KeyframeAssignment(shot.name, chosen.name, reason, position(chosen, shot), more))
    return assignments


def _most_similar(
    shot: ShotFrames, keyframes: Sequence[Keyframe], similarity: Similarity | None
) -> tuple[Keyframe, str]:
    """The keyframe most like the shot by `similarity`, and the reason naming the runner-up."""
    if similarity is None:
        msg = (
            f"shot {shot.name!r} has no keyframe tied to it or to one of its frames, and no similarity was given "
            f"to choose among the {len(keyframes)} keyframes ({_listing([k.name for k in keyframes])}) by line art"
        )
        raise ValueError(msg)
    scores = []
    for key in keyframes:
        score = float(similarity(shot, key))
        if not math.isfinite(score):
            msg = f"similarity of shot {shot.name!r} and keyframe {key.name!r} is {score}, not a finite number"
            raise ValueError(msg)
        scores.append(score)
    order = sorted(range(len(keyframes)), key=lambda i: (-scores[i], i))
    best, runner_up = order[0], order[1]
    reason = (
        f"most similar line art (similarity {scores[best]:.2f}; "
        f"next best {keyframes[runner_up].name} {scores[runner_up]:.2f})"
    )
    return keyframes[best], reason
