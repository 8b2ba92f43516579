"""Image files shared by training and coloring: natural order of names and atomic writes (decoding is tested through
`read_frame` in tests/pipeline/test_frames.py)."""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path

import fsspec
import pytest

from model import files
from model.files import is_image_name, natural_key, write_bytes_atomic


def test_natural_key_orders_numbers_by_value_and_text_by_letter_whatever_its_case() -> None:
    names = ["frame10.png", "frame2.png", "Frame1.png", "frame1b.png", "frame02.png"]
    assert sorted(names, key=natural_key) == ["Frame1.png", "frame1b.png", "frame02.png", "frame2.png", "frame10.png"]
    mixed = ["SH010_0010.png", "sh010_0002.png", "sh2_0001.png", "Sh010_0001.PNG", "a.png", "B.png", "c9.png"]
    expected = ["a.png", "B.png", "c9.png", "sh2_0001.png", "Sh010_0001.PNG", "sh010_0002.png", "SH010_0010.png"]
    assert sorted(mixed, key=natural_key) == expected
    # Names equal but for case or leading zeros sort the same from any listing order.
    ties = ["frame1.png", "Frame1.png", "frame01.png", "FRAME1.png"]
    assert sorted(ties, key=natural_key) == sorted(reversed(ties), key=natural_key)


def test_image_names_by_extension_in_any_case() -> None:
    assert all(map(is_image_name, ["a.png", "B.JPG", "c.jpeg", "d.Tif", "e.tiff", "f.webp", "s3://b/x/g.PNG"]))
    assert not any(map(is_image_name, ["a.gif", "notes.txt", "clip.mov", "png", "frame.png.bak"]))


class _DiesHalfway(io.BufferedWriter):
    """A file that writes half of what it is given, then fails like a full disk or a killed process."""

    def write(self, data: bytes) -> int:  # type: ignore[override]
        super().write(bytes(data)[: len(data) // 2])
        self.flush()
        raise OSError(28, "No space left on device")


def test_an_interrupted_write_leaves_no_final_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def dying_open(path: str, mode: str = "r", *args: object, **kwargs: object) -> io.BufferedWriter:
        return _DiesHalfway(io.FileIO(path, "w"))

    monkeypatch.setattr(files, "open", dying_open, raising=False)
    with pytest.raises(OSError, match="No space"):
        write_bytes_atomic(bytes(1000), str(tmp_path / "f1.png"))
    assert list(tmp_path.iterdir()) == []  # no truncated final file, and the temporary one was removed


def test_a_failed_rename_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f1.png"
    write_bytes_atomic(b"old", str(target))

    def no_rename(src: str, dst: str) -> None:
        raise KeyboardInterrupt  # e.g. Ctrl-C between writing and renaming

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(KeyboardInterrupt):
        write_bytes_atomic(b"new", str(target))
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f1.png"]


def test_a_write_creates_its_folders_and_replaces_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out" / "deep" / "weights.safetensors"
    write_bytes_atomic(b"first", str(target))
    write_bytes_atomic(b"second", str(target))
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["weights.safetensors"]  # no temporary left


def test_a_write_goes_by_rename_on_stores_without_atomic_put(monkeypatch: pytest.MonkeyPatch) -> None:
    # memory:// uploads atomically; pretend it does not, to exercise the temporary-name-then-mv path.
    monkeypatch.setattr(files, "_ATOMIC_PUT_PROTOCOLS", frozenset())
    root = f"memory://inkpaint-{uuid.uuid4().hex}"
    write_bytes_atomic(b"data", f"{root}/out/f1.png")
    fs = fsspec.filesystem("memory")
    assert [p.rsplit("/", 1)[1] for p in fs.ls(f"{root}/out", detail=False)] == ["f1.png"]
    assert fs.cat_file(f"{root}/out/f1.png") == b"data"


def test_gcs_writes_are_one_upload_each_small_or_resumable(gcs_server: dict, tmp_path: Path) -> None:
    # gcsfs sends a file of 5 MiB or more as a resumable upload (a session, then chunks), smaller data in one request.
    storage = gcs_server["storage_options"]
    prefix = f"{gcs_server['bucket']}/{uuid.uuid4().hex}"
    root = f"gs://{prefix}"
    large = tmp_path / "shot.mp4"
    large.write_bytes(os.urandom(6 * 2**20))
    files.put_file_atomic(str(large), f"{root}/shot.mp4", storage)
    write_bytes_atomic(b"small", f"{root}/f1.png", storage)
    write_bytes_atomic(b"replaced", f"{root}/f1.png", storage)
    fs = fsspec.filesystem("gs", **storage)
    assert sorted(fs.ls(root, detail=False)) == [f"{prefix}/f1.png", f"{prefix}/shot.mp4"]  # no temporaries
    assert fs.cat_file(f"{root}/shot.mp4") == large.read_bytes()
    assert fs.cat_file(f"{root}/f1.png") == b"replaced"
