"""Output names (pipeline/frame_names.py): a colored frame keeps its line art's stem, and no name escapes or hides in
its output folder."""

from __future__ import annotations

import pytest

from model.files import FrameError
from pipeline.frame_names import output_name


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("s3://bucket/shot/frame0001.jpg", "frame0001.png"),
        ("/data/shot/frame2.PNG", "frame2.png"),
        ("frame.v2.tiff", "frame.v2.png"),
        ("noext", "noext.png"),
    ],
)
def test_output_name(url: str, name: str) -> None:
    assert output_name(url) == name


@pytest.mark.parametrize("url", ["../x.png", "shot/../../x.png", "shot/..", "shot/a\\..\\x.png", "shot/", ".png"])
def test_output_name_refuses_escapes(url: str) -> None:
    with pytest.raises(FrameError, match="output"):
        output_name(url)
