"""What a shot's frames are called and where their outputs may go.

A colored frame keeps its line art's stem (sh010_0001.tif -> sh010_0001.png); frames that came without names (a
video's, arrays) are numbered frame_00001.png .... Every name is checked to stay inside its output folder, two
frames may not share an output name, and an output folder may not be the frames folder however it is spelled
(`resolved_location`): a run must never overwrite the line art it colors.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Iterable

import fsspec

from model.files import FrameError


def check_output_names(urls: Iterable[str]) -> None:
    """Raise FrameError when two frames would be written under one output name (clash.tif and clash.jpg both make
    clash.png: the second would overwrite the first), naming both."""
    seen: dict[str, str] = {}
    for url in urls:
        try:
            name = output_name(url)
        except FrameError:
            continue  # such a frame fails on its own, with its reason
        if name in seen:
            msg = f"frames {seen[name]!r} and {url!r} would both be written as {name!r}; rename one of them"
            raise FrameError(msg)
        seen[name] = url


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a file or folder directly inside an output folder, or None when it can: one path
    segment, neither hidden nor the folder above."""
    if not name.strip():
        return "it is empty"
    if "/" in name or "\\" in name:
        return "it holds a path separator ('/' or '\\'), which would put it in another folder"
    if name.startswith("."):
        return "it starts with '.' (a hidden name, or '..', the folder above)"
    if "\0" in name:
        return "it holds a NUL character"
    return None


def resolved_location(url: str) -> str:
    """Where a file or folder really is, so that two spellings of one place compare equal: a local path made
    absolute with its symbolic links followed (os.path.realpath: 'in', './in/' and a link to it are one place), any
    other URL as its store's protocol and its path normalised ('s3a://bucket/a/./b/' is 's3://bucket/a/b')."""
    protocol, path = fsspec.core.split_protocol(url)
    if protocol in (None, "file", "local"):
        return os.path.realpath(path)
    with contextlib.suppress(ImportError, ValueError):  # an unknown protocol keeps its own name
        names = fsspec.get_filesystem_class(protocol).protocol
        protocol = names if isinstance(names, str) else names[0]
    return f"{protocol}://{posixpath.normpath('/' + path).lstrip('/')}"


def overwrite_problem(frames: str, frame_urls: Iterable[str], output: str) -> str | None:
    """How writing a shot's colored frames into the folder `output` would overwrite its line art, or None.

    It would when `output` is the frames folder `frames`, however spelled ('./in/', an absolute path, a symbolic
    link to it), or when a frame is a symbolic link to the file its colored frame would be written to. An output
    folder inside the frames folder is fine: a shot's frames are only that folder's own files.
    """
    output_at = resolved_location(output)
    if output_at == resolved_location(frames):
        return (f"output folder {output!r} would overwrite the line art: it is the frames folder {frames!r} (both are "
                f"{output_at!r}); choose another folder")  # fmt: skip
    if fsspec.core.split_protocol(output)[0] not in (None, "file", "local"):
        return None  # object stores have no links: another folder holds other files
    for url in frame_urls:
        protocol, path = fsspec.core.split_protocol(url)
        if protocol not in (None, "file", "local") or not os.path.islink(path):
            continue
        try:
            target = f"{output.rstrip('/')}/{output_name(url)}"
        except FrameError:
            continue
        if os.path.realpath(path) == resolved_location(target):
            return (f"output folder {output!r} would overwrite the line art: frame {url!r} is a symbolic link to "
                    f"{os.path.realpath(path)!r}, the file its colored frame would be written to; choose another "
                    "folder")  # fmt: skip
    return None


def join_url(folder: str, name: str) -> str:
    """A file's URL inside a folder URL, whether or not the folder's ends in '/'; the name alone when there is no
    folder (a shot colored in memory has none)."""
    return f"{folder.rstrip('/')}/{name}" if folder else name


def output_name(frame_url: str, extension: str = ".png") -> str:
    """The output file name for an input frame: the same stem (sh010_0001.tif -> sh010_0001.png) with `extension`.

    Raises FrameError for URLs whose name could escape or hide in the output folder: a '..' path segment, a
    backslash, an empty name or stem, or a name starting with '.'.
    """
    segments = frame_url.split("/")
    name = segments[-1]
    problem = None
    if ".." in segments:
        problem = "has a '..' path segment"
    elif "\\" in name:
        problem = "has a backslash in its name"
    elif not name:
        problem = "ends in '/', not a file name"
    elif name.startswith("."):
        problem = "names a hidden file"
    stem = os.path.splitext(name)[0]
    if problem is None and not stem:
        problem = "has an empty file stem"
    if problem is not None:
        msg = f"frame {frame_url!r} {problem}; cannot derive an output name inside the output folder"
        raise FrameError(msg)
    return f"{stem}{extension}"


def sequence_frame_name(index: int, total: int, extension: str = ".png") -> str:
    """The name of frame `index` (0-based) of a sequence of `total` frames that came without file names (a video's,
    or arrays): frame_00001.png ..., zero-padded to fit `total`, with `extension`."""
    return f"frame_{index + 1:0{max(5, len(str(total)))}d}{extension}"
