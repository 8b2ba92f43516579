"""An episode's plan: the spec turned into shots, each with its frames, its keyframe (and why) and an input hash.

Planning lists every frame folder, cuts a long sequence into shots (the spec's cuts, or detected from the line
art), assigns each shot its keyframe (pipeline.keyframes) and fingerprints each shot's inputs, weights and options so
that a rerun can tell finished shots from changed ones. It reads only listings, thumbnails and a few frames.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from dataclasses import dataclass

import fsspec
import pyarrow as pa

from jobs.inputs import read_keyframe, weights_problem
from jobs.manifest import PLAN_SCHEMA, PlannedShot, records_table
from jobs.spec import JobSpec, SpecError, check_spec
from model.checkpoint import DEFAULT_WEIGHTS, load_colorizer, read_checkpoint_info
from model.files import storage_connection_errors
from pipeline.cuts import ShotFrames, detect_cuts, read_thumbnails, split_sequence
from pipeline.frame_names import check_output_names, join_url, overwrite_problem
from pipeline.frames import list_frames, read_frame
from pipeline.keyframes import Keyframe, Similarity, assign_keyframes, keyframe_frame_problem
from pipeline.likeness import line_art_similarity
from pipeline.references import ShotReference
from pipeline.shot import OPTIONS, Shot, ShotOptions
from pipeline.shot_files import count_shot_frames, read_background
from pipeline.video import CODECS, is_video

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShotPlan:
    """One shot as it will run.

    Args:
        name: the shot's name.
        frames: its frames folder (for a cut shot, the sequence's folder) or video file.
        frame_urls: its frames in order (empty for a video file).
        frame_count: how many frames it has.
        keyframe: the assigned keyframe's name.
        reference: the keyframe's colored image.
        reason: why that keyframe.
        position: index of the keyframe's own frame in the shot, when it has one there.
        output: folder receiving the shot's PNGs.
        video: the shot's video file, or None.
        input_hash: fingerprint of frames, keyframes, weights and options: equal hashes color equal frames.
        extras: the shot's more keyframes, as (name, reference) pairs; every frame is colored from all of them.
        reference_lines: the keyframe's own line art, when the spec gives it.
    """

    name: str
    frames: str
    frame_urls: tuple[str, ...]
    frame_count: int
    keyframe: str
    reference: str
    reason: str
    position: int | None
    output: str
    video: str | None
    input_hash: str
    extras: tuple[tuple[str, ShotReference], ...] = ()
    reference_lines: str | None = None

    def shot(self) -> Shot:
        return Shot(self.name, self.frames, self.reference, self.output, self.video, frame_urls=self.frame_urls,
                    keyframe_position=self.position,
                    extra_references=tuple(reference for _, reference in self.extras),
                    reference_lines=self.reference_lines)  # fmt: skip


@dataclass(frozen=True)
class EpisodePlan:
    """Every shot of an episode as it will run, and how the plan was made.

    Args:
        spec: the job spec.
        shots: the shots in spec order (explicit shots first, then the sequence's).
        cuts: frame indices starting each shot of the sequence after its first.
        cuts_from: "spec", "detected", or "" without a sequence.
        weights: the weights file every worker loads.
        weights_sha256: its checksum, recorded with every shot's result.
    """

    spec: JobSpec
    shots: tuple[ShotPlan, ...]
    cuts: tuple[int, ...]
    cuts_from: str
    weights: str
    weights_sha256: str = ""

    @property
    def frame_count(self) -> int:
        return sum(shot.frame_count for shot in self.shots)

    def table(self) -> pa.Table:
        """The plan as a table: one row per shot."""
        rows = [
            PlannedShot(shot=s.name, frames=s.frame_count, source=s.frames, keyframe=s.keyframe, reason=s.reason,
                        keyframe_position=s.position, output=s.output, video=s.video, input_hash=s.input_hash,
                        more_keyframes=[name for name, _ in s.extras])
            for s in self.shots
        ]  # fmt: skip
        return records_table(rows, PLAN_SCHEMA)

    def describe(self) -> str:
        """The plan for a person (the --dry-run output)."""
        options = self.spec.options
        lines = [
            f"episode {self.spec.episode}: {len(self.shots)} shots, {self.frame_count} frames -> {self.spec.output}",
            f"weights {self.weights}; working resolution {options.resolution}; "
            + (f"video {options.codec} at {options.fps:g} fps" if self.spec.video else "no video"),
        ]
        if self.cuts_from:
            lines.append(f"sequence {self.spec.sequence.frames}: cuts at frames {list(self.cuts)} ({self.cuts_from})")
        width = max(len(s.name) for s in self.shots)
        for s in self.shots:
            keys = [(s.keyframe, s.position)] + [(name, reference.position) for name, reference in s.extras]
            named = ", ".join(name + (f" at frame {at}" if at is not None else "") for name, at in keys)
            label = "keyframes" if s.extras else "keyframe"
            lines.append(f"  {s.name:<{width}} {s.frame_count:>6} frames  {label} {named}: {s.reason}")
        return "\n".join(lines)


def input_problems(spec: JobSpec) -> list[str]:
    """The spec's inputs that cannot be used, each as 'field: what is wrong': keyframes that are missing or do not
    decode, frame folders that do not exist, a weights file that is refused. Keyframes with no color, or too small,
    are logged as warnings (`jobs.inputs.read_keyframe`)."""
    storage = spec.options.storage_options
    problems = []
    for index, key in enumerate(spec.keyframes):
        for name, url in (("image", key.image), ("line", key.line)):
            if not url:
                continue
            try:
                if name == "image":
                    read_keyframe(url, storage, max_pixels=spec.options.max_pixels, resolution=spec.options.resolution)
                else:
                    read_frame(url, storage, max_pixels=spec.options.max_pixels)
            except ValueError as error:
                problems.append(f"keyframes[{index}].{name}: {error}")
    if spec.video and spec.options.background:
        try:
            read_background(spec.options.background, spec.options)
        except ValueError as error:
            problems.append(f"video.background: {error}")
    folders = [(f"shots[{i}].frames", s.frames) for i, s in enumerate(spec.shots)]
    folders += [("sequence.frames", spec.sequence.frames)] if spec.sequence else []
    listed: list[ShotFrames] = []
    for field_name, url in folders:
        fs, path = fsspec.core.url_to_fs(url, **storage)
        try:
            with storage_connection_errors():
                found = fs.exists(path)
        except OSError as error:
            problems.append(f"{field_name}: {url!r} cannot be reached: {error}")
            continue
        if not found:
            problems.append(f"{field_name}: {url!r} does not exist")
            continue
        try:  # a video file stands for its frames, as in the plan
            listed.append(ShotFrames(field_name, (url,) if is_video(url) else tuple(list_frames(url, storage))))
        except ValueError as error:
            problems.append(f"{field_name}: {error}")
    if len(listed) == len(folders):  # keyframes tied to a frame, checked as the plan will place them
        for index, key in enumerate(spec.keyframes):
            keyframe = Keyframe(key.name, key.image, key.line, tuple(key.shots), key.frame)
            if (problem := keyframe_frame_problem(listed, keyframe)) is not None:
                problems.append(f"keyframes[{index}].frame: {problem}")
    if (problem := weights_problem(spec.weights or str(DEFAULT_WEIGHTS))) is not None:
        problems.append(f"weights: {problem}")
    return problems


def plan_episode(spec: JobSpec) -> EpisodePlan:
    """Turn a spec into a plan; raises ValueError naming the input for folders or files that cannot be used."""
    if problems := check_spec(spec):  # a spec made in code, not read by load_spec, is checked here
        raise SpecError("\n".join([f"episode {spec.episode!r}: {len(problems)} problem(s):",
                                   *(f"  {problem}" for problem in problems)]))  # fmt: skip
    problems = input_problems(spec)
    if problems:
        raise SpecError("\n".join([f"episode {spec.episode!r}: {len(problems)} input(s) cannot be used:",
                                   *(f"  {problem}" for problem in problems)]))  # fmt: skip
    weights = spec.weights or str(DEFAULT_WEIGHTS)
    weights_hash = read_checkpoint_info(weights).sha256
    options = spec.options
    # A video shot has no frame files: its file stands for its frames (it can be tied to a keyframe by name).
    shots = [ShotFrames(s.name, _list_shot(s.frames, options) or (s.frames,)) for s in spec.shots]
    sources = {s.name: s.frames for s in spec.shots}
    cuts: tuple[int, ...] = ()
    cuts_from = ""
    if spec.sequence is not None:
        urls = list_frames(spec.sequence.frames, options.storage_options)
        if spec.sequence.cuts is not None:
            cuts, cuts_from = tuple(c for c in spec.sequence.cuts if c < len(urls)), "spec"
        else:
            cuts = tuple(detect_cuts(read_thumbnails(urls, options.storage_options)))
            cuts_from = "detected"
        for shot in split_sequence(urls, cuts, spec.sequence.name_prefix):
            shots.append(shot)
            sources[shot.name] = spec.sequence.frames

    keyframes = [Keyframe(k.name, k.image, k.line, tuple(k.shots), k.frame) for k in spec.keyframes]
    similarity = lazy_similarity(weights, options.storage_options)
    assignments = {a.shot: a for a in assign_keyframes(shots, keyframes, similarity)}
    references = {k.name: k.image for k in spec.keyframes}
    keyframe_lines = {k.name: k.line for k in spec.keyframes}

    fingerprinted = fingerprint_options(spec, weights_hash)
    plans = []
    for shot in shots:
        assignment = assignments[shot.name]
        source = sources[shot.name]
        video = join_url(spec.output, shot.name + CODECS[options.codec].extensions[0]) if spec.video else None
        reference = references[assignment.keyframe]
        extras = tuple((name, ShotReference(references[name], at, keyframe_lines[name]))
                       for name, at in assignment.extras)  # fmt: skip
        frame_urls = () if is_video(source) else shot.frames
        try:
            check_output_names(frame_urls)
        except ValueError as error:
            raise SpecError(f"shot {shot.name!r}: {error}") from error
        output = join_url(spec.output, shot.name)
        if (problem := overwrite_problem(source, frame_urls, output)) is not None:  # a shot folder linked to frames
            raise SpecError(f"shot {shot.name!r}: {problem}")
        count = len(frame_urls) or count_shot_frames(Shot(shot.name, source, reference, ""), options)
        plans.append(
            ShotPlan(
                name=shot.name, frames=source, frame_urls=frame_urls, frame_count=count,
                keyframe=assignment.keyframe, reference=reference, reason=assignment.reason,
                position=assignment.position, output=output, video=video,
                input_hash=shot_hash(source, frame_urls, (ShotReference(reference, assignment.position),
                                                          *(ref for _, ref in extras)),
                                     fingerprinted, options.storage_options),
                extras=extras, reference_lines=keyframe_lines[assignment.keyframe],
            )
        )  # fmt: skip
    return EpisodePlan(spec=spec, shots=tuple(plans), cuts=cuts, cuts_from=cuts_from, weights=weights,
                       weights_sha256=weights_hash)  # fmt: skip


def _list_shot(frames: str, options: ShotOptions) -> tuple[str, ...]:
    """A shot folder's frames in order; a video file's frames are not listed (empty)."""
    return () if is_video(frames) else tuple(list_frames(frames, options.storage_options))


def lazy_similarity(weights: str, storage_options: dict) -> Similarity:
    """Line-art similarity from the colorizer's own line-art encoder, loaded (on the CPU) only if a shot needs it."""
    loaded: list[Similarity] = []

    def similarity(shot: ShotFrames, keyframe: Keyframe) -> float:
        if not loaded:
            loaded.append(line_art_similarity(load_colorizer(weights)[0], storage_options))
        return loaded[0](shot, keyframe)

    return similarity


def fingerprint_options(spec: JobSpec, weights_sha256: str) -> dict:
    """What besides the frames and the keyframe changes a shot's output: the weights, every option declared to
    change it (`Option.changes_output`; the video's only when a video is written; those not
    `Option.fingerprinted_at_default` only at another value) and the keyframes' line art.

    Results tables record the fingerprint: the same inputs must give the same bytes as long as the output would
    not change, or a rerun colors finished shots again (tests/jobs/test_input_hash.py pins them)."""
    values = {
        name: value
        for name, option in OPTIONS.items()
        if option.changes_output
        and ((value := getattr(spec.options, name)) != option.default or option.fingerprinted_at_default)
    }
    video = {name: values.pop(name) for name in list(values) if OPTIONS[name].video}
    return {
        "weights": weights_sha256,
        **values,
        "reference_lines": sorted(k.line for k in spec.keyframes if k.line),
        "video": video if spec.video else None,
        "format": 2,
    }


def file_fingerprints(urls: list[str], storage_options: dict) -> list[str]:
    """Per file: its URL with size and modification stamp (mtime, or an object store's ETag), listed per folder."""
    by_folder: dict[str, list[str]] = {}
    for url in urls:
        by_folder.setdefault(url.rpartition("/")[0], []).append(url)
    stamps = []
    for folder, members in by_folder.items():
        fs, root = fsspec.core.url_to_fs(folder, **storage_options)
        listing = {os.path.basename(e["name"].rstrip("/")): e for e in fs.ls(root, detail=True)}
        for url in members:
            entry = listing.get(url.rpartition("/")[2], {})
            if entry.get("islink"):  # a linked frame is the drawing it links to: the listing stamps the link itself
                with contextlib.suppress(OSError):
                    entry = {**entry, "mtime": os.stat(entry["name"]).st_mtime}
            stamp = entry.get("ETag") or entry.get("etag") or entry.get("mtime") or entry.get("LastModified") or ""
            stamps.append(f"{url}|{entry.get('size', '')}|{stamp}")
    return stamps


def shot_hash(
    source: str,
    frame_urls: tuple[str, ...],
    references: tuple[ShotReference, ...],
    options: dict,
    storage_options: dict,
) -> str:
    """A hex fingerprint of everything a shot's output depends on: its frames, its keyframes (files and the frames
    they were painted on) and the options."""
    inputs = list(frame_urls) if frame_urls else [source]
    digest = hashlib.sha256()
    payload = {"frames": file_fingerprints(inputs, storage_options),
               "references": file_fingerprints([reference.url for reference in references], storage_options),
               "positions": [[reference.url, reference.position] for reference in references],
               "options": options}  # fmt: skip
    digest.update(json.dumps(payload, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]
