"""A shot finished before must still be recognised as done: the same spec gives the input hash main's code gave
(tests/jobs/input_hashes.yaml says how those were made). A renamed, dropped or newly fingerprinted option fails it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import fsspec
import pytest
import yaml

from jobs.plan import fingerprint_options, shot_hash
from jobs.spec import load_spec
from pipeline.references import ShotReference

FIXTURE = yaml.safe_load((Path(__file__).with_name("input_hashes.yaml")).read_text())
ROOT = FIXTURE["root"]
FRAMES = tuple(f"{ROOT}/lines/f{number}.png" for number in (1, 2, 3))
KEY = f"{ROOT}/keys/hero.png"


@pytest.fixture(scope="module", autouse=True)
def inputs() -> None:
    """The frames and keyframe the fixture's hashes were computed over: files of 10 to 13 bytes, in memory."""
    for size, url in enumerate([*FRAMES, KEY], start=10):
        with fsspec.open(url, "wb") as handle:
            handle.write(b"x" * size)


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=[case["case"] for case in FIXTURE["cases"]])
def test_a_spec_gives_the_input_hash_it_gave_before(tmp_path, case) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(case["spec"]))
    spec = load_spec(str(path))
    options = fingerprint_options(spec, "0" * 64)
    assert shot_hash(f"{ROOT}/lines", FRAMES, (ShotReference(KEY, 0),), options, {}) == case["hash"]


@pytest.mark.parametrize(("name", "value"), [("paper", "transparent"), ("layers", True), ("depth", "16"),
                                             ("file_format", "tiff")])  # fmt: skip
def test_an_option_added_later_changes_the_fingerprint_only_away_from_its_default(tmp_path, name, value) -> None:
    case = FIXTURE["cases"][0]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(case["spec"]))
    spec = load_spec(str(path))
    assert name not in fingerprint_options(spec, "0" * 64)
    changed = fingerprint_options(replace(spec, options=replace(spec.options, **{name: value})), "0" * 64)
    assert changed[name] == value
