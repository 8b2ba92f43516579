"""Job specs: what an episode run colors, written by a person as YAML or JSON and validated on load.

A spec names the episode, its shots (folders of line-art frames, or one long sequence cut into shots), its colored
keyframes, where the results go and how to color them. Loading checks the file's structure (pydantic dataclasses:
unknown keys, wrong types and missing fields are refused; each option's range or choices as pipeline.shot declares
them) and then its meaning (duplicate names, unknown shots, an output inside an input); every problem is reported at
once, each with the file, the field's path and what was expected. Relative paths in a spec are relative to the
spec's own folder.

    episode: ep101
    output: s3://studio/ep101/colored
    shots:
      - {name: sh010, frames: lines/sh010}
    sequence: {frames: lines/act2, cuts: [48, 96]}   # optional; without cuts they are detected
    keyframes:
      - {name: hero, image: keys/hero.png, shots: [sh010]}
      - {name: street, image: keys/street.png, frame: act2_0050.png}
    video: {codec: prores, fps: 25}   # optional; null for PNG frames only
    resolution: 320                   # any option of pipeline.shot.ShotOptions but resume, by its field name
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, field, replace
from pathlib import PurePosixPath
from typing import Any

import fsspec
import yaml
from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from model.files import storage_connection_errors
from pipeline.frame_names import name_problem, resolved_location
from pipeline.shot import OPTIONS, InvalidOptions, ShotOptions

_STRICT = ConfigDict(extra="forbid", strict=True)
SECRET_WORDS = ("key", "secret", "token", "password", "credential")


class SpecError(ValueError):
    """A spec that cannot be run; the message lists every problem found, one per line."""


@dataclass(frozen=True, config=_STRICT)
class ShotSpec:
    """One shot: a folder (or video file) of line-art frames.

    Args:
        name: the shot's name; its output folder and video are named after it.
        frames: folder URL of the shot's line-art frames, or a video file of line art.
    """

    name: str
    frames: str


@dataclass(frozen=True, config=_STRICT)
class SequenceSpec:
    """One long line-art sequence holding several shots back to back, cut into shots by the planner.

    Args:
        frames: folder URL of the frames, in natural order.
        cuts: indices of the frames that start a new shot (0-based); None detects them from the line art.
        name_prefix: shots are named prefix001, prefix002, ...
    """

    frames: str
    cuts: tuple[int, ...] | None = None
    name_prefix: str = "shot"


@dataclass(frozen=True, config=_STRICT)
class KeyframeSpec:
    """A colored keyframe, optionally tied to shots or to one frame.

    Args:
        name: the keyframe's name in the plan.
        image: URL of the colored keyframe.
        line: URL of the keyframe's line art (else extracted from the colored image when it is needed).
        shots: the shots this keyframe colors, whatever their line art looks like.
        frame: the file name of the frame this keyframe was painted on: it colors the shot holding that frame.
    """

    name: str
    image: str
    line: str | None = None
    shots: tuple[str, ...] = ()
    frame: str | None = None


@dataclass(frozen=True, config=_STRICT)
class JobSpec:
    """An episode to color.

    A spec file gives the options as top-level keys (`resolution: 320`) and the video's in its video section
    (`video: {codec: prores, fps: 25}`, or `video: null` for PNG frames only); `load_spec` gathers them into
    `options`, and `to_dict` lays them out again so.

    Args:
        episode: the episode's name.
        output: folder URL receiving a folder of PNGs and a video per shot, and the results tables.
        keyframes: the colored keyframes.
        shots: the shots given one by one.
        sequence: a long sequence cut into shots.
        video: whether each shot is also written as a video (its codec and frame rate are in `options`).
        weights: colorizer weights (None: the shipped default).
        options: how every shot is colored (pipeline.shot.ShotOptions; not `resume`, which a run chooses).
    """

    episode: str
    output: str
    keyframes: tuple[KeyframeSpec, ...]
    shots: tuple[ShotSpec, ...] = ()
    sequence: SequenceSpec | None = None
    video: bool = True
    weights: str | None = None
    options: ShotOptions = field(default_factory=ShotOptions)

    def to_dict(self, redact: bool = True) -> dict[str, Any]:
        """The spec as plain data laid out as in a spec file; with `redact`, storage options that look like
        credentials are masked."""
        data = asdict(self)
        options = {name: value for name, value in data.pop("options").items() if OPTIONS[name].in_spec}
        video = {name: options.pop(name) for name in VIDEO_OPTIONS}
        data["video"] = video if self.video else None
        if redact:
            options["storage_options"] = redact_secrets(options["storage_options"])
        return data | options


# The options a spec file sets: the video's in its video section, the others as top-level keys.
VIDEO_OPTIONS = tuple(name for name, option in OPTIONS.items() if option.in_spec and option.video)
TOP_LEVEL_OPTIONS = tuple(name for name, option in OPTIONS.items() if option.in_spec and not option.video)


@dataclass(frozen=True, config=_STRICT)
class _SpecOptions:
    """A spec file's options, validated apart from the rest so that either's problems do not hide the other's."""

    options: ShotOptions


_SPEC_ADAPTER = TypeAdapter(JobSpec)
_OPTIONS_ADAPTER = TypeAdapter(_SpecOptions)
_SECTIONS = {"shots": ShotSpec, "keyframes": KeyframeSpec, "sequence": SequenceSpec}


def spec_key(option: str) -> str:
    """Where a spec file sets an option: 'resolution', 'video.fps'."""
    return f"video.{option}" if option in VIDEO_OPTIONS else option


def split_options(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """A spec file's mapping split into JobSpec's other fields (`video` made a yes or no) and the option values
    (top-level keys and the video section's), with the problems of its video section."""
    data = dict(data)
    problems = []
    if "options" in data:  # JobSpec's own field: a file writes the options out
        problems.append(f"options: unknown field; {known_fields(JobSpec)}")
        del data["options"]
    options = {name: data.pop(name) for name in TOP_LEVEL_OPTIONS if name in data}
    video = data.pop("video", {})
    if isinstance(video, dict):
        options |= {name: video[name] for name in VIDEO_OPTIONS if name in video}
        problems += [f"video.{name}: unknown field; video fields are: {', '.join(VIDEO_OPTIONS)}"
                     for name in video if name not in VIDEO_OPTIONS]  # fmt: skip
    elif video is not None:
        problems.append(f"video: expected a mapping ({', '.join(VIDEO_OPTIONS)}) or null, got {video!r:.60}")
    return data | {"video": video is not None}, options, problems


def redact_secrets(options: dict[str, Any]) -> dict[str, Any]:
    """A copy of fsspec options with values of credential-like keys (key, secret, token...) masked, at any depth."""
    masked: dict[str, Any] = {}
    for name, value in options.items():
        if isinstance(value, dict):
            masked[name] = redact_secrets(value)
        elif any(word in name.lower() for word in SECRET_WORDS):
            masked[name] = "***"
        else:
            masked[name] = value
    return masked


def known_fields(section: type) -> str:
    """'JobSpec fields are: episode, ...', as a spec file spells them (JobSpec's with its options laid out)."""
    names = [name for name in section.__dataclass_fields__ if name != "options"]
    names += TOP_LEVEL_OPTIONS if section is JobSpec else []
    return f"{section.__name__} fields are: {', '.join(names)}"


def describe_problem(problem: Any) -> str:
    """A pydantic error as a person reads it: unknown fields list the known ones, wrong values show the value."""
    location = problem["loc"]
    if problem["type"] == "unexpected_keyword_argument":
        return (
            f"unknown field; {known_fields(_SECTIONS.get(str(location[0]), JobSpec) if len(location) > 1 else JobSpec)}"
        )
    if problem["type"] == "missing":
        return "missing field"
    return f"{problem['msg']} (got {problem['input']!r:.60})"


def field_path(location: tuple[str | int, ...]) -> str:
    """('shots', 2, 'frames') -> 'shots[2].frames'."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def option_problems(error: ValidationError) -> list[str]:
    """What pydantic and ShotOptions' own checks found wrong with a spec's options, each at the place a spec file
    sets the option: 'resolution: ...', 'video.fps: ...'."""
    problems = []
    for problem in error.errors():
        if isinstance(invalid := problem.get("ctx", {}).get("error"), InvalidOptions):
            problems += [f"{spec_key(name)}: {what}" for name, what in invalid.problems]
        else:
            problems.append(f"{spec_key(str(problem['loc'][1]))}: {describe_problem(problem)}")
    return problems


class SpecLoader(yaml.SafeLoader):
    """yaml.SafeLoader without aliases: a spec never needs one, and nested aliases expand a few hundred bytes into
    billions of nodes ("billion laughs") once the data is walked."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.get_event()
            msg = f"found the alias *{event.anchor}; a spec may not use aliases: write the value out"
            raise yaml.composer.ComposerError(None, None, msg, event.start_mark)
        return super().compose_node(parent, index)


def read_spec_data(url: str, storage_options: dict | None = None) -> Any:
    """The parsed YAML or JSON of a spec file (JSON is YAML, but its own parser gives better messages)."""
    try:
        with storage_connection_errors(), fsspec.open(url, "rt", encoding="utf-8", **(storage_options or {})) as handle:
            text = handle.read()
    except FileNotFoundError as error:
        msg = f"spec {url!r} does not exist"
        raise SpecError(msg) from error
    except (OSError, UnicodeDecodeError) as error:
        msg = f"spec {url!r} cannot be read: {error}"
        raise SpecError(msg) from error
    try:
        return json.loads(text) if url.lower().endswith(".json") else yaml.load(text, Loader=SpecLoader)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        msg = f"spec {url!r} is not valid {'JSON' if url.lower().endswith('.json') else 'YAML'}: {error}"
        raise SpecError(msg) from error


def load_spec(url: str, storage_options: dict | None = None) -> JobSpec:
    """Read, check and resolve a spec file; raises SpecError listing every problem with its field path."""
    data = read_spec_data(url, storage_options)
    if not isinstance(data, dict):
        msg = f"spec {url!r}: expected a mapping of fields (episode, output, shots, keyframes ...), got {data!r:.80}"
        raise SpecError(msg)
    data, option_values, problems = split_options(data)
    spec = options = None
    # JSON mode: strict types (no '256' for 256) while nested mappings still build the dataclasses.
    try:
        spec = _SPEC_ADAPTER.validate_json(json.dumps(data, default=str))
    except ValidationError as error:
        problems += [f"{field_path(problem['loc'])}: {describe_problem(problem)}" for problem in error.errors()]
    try:
        options = _OPTIONS_ADAPTER.validate_json(json.dumps({"options": option_values}, default=str)).options
    except ValidationError as error:
        problems += option_problems(error)
    if spec is not None:  # its meaning is checked even when an option is wrong: every problem at once
        spec = resolve_paths(spec, spec_folder(url))
        problems += check_spec(spec)
    if problems:
        raise SpecError("\n".join([f"spec {url!r} has {len(problems)} problem(s):", *(f"  {p}" for p in problems)]))
    if options.background:  # an input like the frames and keyframes: relative to the spec's folder
        options = replace(options, background=resolve(options.background, spec_folder(url)))
    return replace(spec, options=options)


def spec_folder(url: str) -> str:
    """The folder relative paths in a spec are resolved against."""
    fs, path = fsspec.core.url_to_fs(url)
    folder = str(PurePosixPath(path).parent)
    return folder if "file" in fs.protocol else fs.unstrip_protocol(folder)


def resolve(url: str, folder: str) -> str:
    """A spec URL made absolute: URLs with a protocol and absolute paths stay, others join the spec's folder."""
    if "://" in url or url.startswith("/"):
        return url
    joined = f"{folder.rstrip('/')}/{url}"
    return joined if "://" in joined else os.path.normpath(joined)


def resolve_paths(spec: JobSpec, folder: str) -> JobSpec:
    """The spec with every input and output URL resolved against the spec's folder."""

    def keyframe(k: KeyframeSpec) -> KeyframeSpec:
        return replace(k, image=resolve(k.image, folder), line=resolve(k.line, folder) if k.line else None)

    sequence = replace(spec.sequence, frames=resolve(spec.sequence.frames, folder)) if spec.sequence else None
    return replace(
        spec,
        output=resolve(spec.output, folder),
        shots=tuple(replace(s, frames=resolve(s.frames, folder)) for s in spec.shots),
        sequence=sequence,
        keyframes=tuple(keyframe(k) for k in spec.keyframes),
        weights=resolve(spec.weights, folder) if spec.weights else None,
    )


def inside(url: str, folder: str) -> bool:
    """Whether `url` is `folder` or lies under it, wherever they really are (`resolved_location`: symbolic links
    followed, './', '..' and trailing slashes normalised), however each is spelled."""
    url, folder = resolved_location(url), resolved_location(folder).rstrip("/")
    return url == folder or url.startswith(folder + "/")


def resolves_to(url: str) -> str:
    """' (it resolves to ...)' when symbolic links make a local `url` another place than it reads as, else ''."""
    protocol, path = fsspec.core.split_protocol(url)
    where = resolved_location(url)
    linked = protocol in (None, "file", "local") and where != os.path.abspath(path)
    return f" (it resolves to {where!r})" if linked else ""


def check_spec(spec: JobSpec) -> list[str]:
    """Problems of meaning that types cannot catch, each as 'field.path: what is wrong'."""
    problems: list[str] = []
    if not spec.episode.strip():
        problems.append("episode: must not be empty")
    if not spec.shots and spec.sequence is None:
        problems.append("shots: give at least one shot, or a sequence to cut into shots")
    if not spec.keyframes:
        problems.append("keyframes: give at least one colored keyframe")

    seen: dict[str, str] = {}
    for index, shot in enumerate(spec.shots):
        where = f"shots[{index}]"
        if (problem := name_problem(shot.name)) is not None:
            problems.append(f"{where}.name: {shot.name!r} cannot name a folder inside the output: {problem}")
        elif shot.name in seen:
            problems.append(f"{where}.name: {shot.name!r} is also the name of {seen[shot.name]}")
        seen.setdefault(shot.name, where)
    if spec.sequence is not None:
        cuts = spec.sequence.cuts or ()
        if any(c <= 0 for c in cuts) or list(cuts) != sorted(set(cuts)):
            problems.append(f"sequence.cuts: must be increasing frame indices above 0, got {list(cuts)}")
        first = f"{spec.sequence.name_prefix}001"
        prefix_clash = [name for name in seen if name.startswith(spec.sequence.name_prefix)]
        if (problem := name_problem(first)) is not None:
            problems.append(
                f"sequence.name_prefix: {spec.sequence.name_prefix!r} would name shots like {first!r}, which cannot "
                f"name a folder inside the output: {problem}"
            )
        elif prefix_clash:
            problems.append(
                f"sequence.name_prefix: {spec.sequence.name_prefix!r} would name shots like {prefix_clash[0]!r}, "
                "which is already a shot's name; choose another prefix"
            )

    keyframe_names: dict[str, int] = {}
    for index, keyframe in enumerate(spec.keyframes):
        where = f"keyframes[{index}]"
        if keyframe.name in keyframe_names:
            problems.append(f"{where}.name: {keyframe.name!r} is also keyframes[{keyframe_names[keyframe.name]}]")
        keyframe_names.setdefault(keyframe.name, index)
        for position, shot_name in enumerate(keyframe.shots):
            if shot_name not in seen and not (spec.sequence and shot_name.startswith(spec.sequence.name_prefix)):
                problems.append(f"{where}.shots[{position}]: no shot is named {shot_name!r}")

    frame_inputs = [(f"shots[{i}].frames", s.frames) for i, s in enumerate(spec.shots)]
    frame_inputs += [("sequence.frames", spec.sequence.frames)] if spec.sequence else []
    for where, url in frame_inputs:
        if inside(spec.output, url):
            problems.append(f"output: {spec.output!r}{resolves_to(spec.output)} is inside the input {where} = "
                            f"{url!r}{resolves_to(url)}; outputs never go there")  # fmt: skip
    keyframe_inputs = [(f"keyframes[{i}].{kind}", url) for i, k in enumerate(spec.keyframes)
                       for kind, url in (("image", k.image), ("line", k.line)) if url]  # fmt: skip
    for where, url in frame_inputs + keyframe_inputs:
        if inside(url, spec.output):
            problems.append(f"{where}: {url!r}{resolves_to(url)} is inside the output folder {spec.output!r}"
                            f"{resolves_to(spec.output)}, which the run writes")  # fmt: skip
    return problems
