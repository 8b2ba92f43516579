from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from cli import main
from jobs.plan import input_problems
from jobs.spec import TOP_LEVEL_OPTIONS, SpecError, load_spec, redact_secrets
from pipeline.shot import OPTIONS, ShotOptions

GOOD = {
    "episode": "ep101",
    "output": "colored",
    "shots": [{"name": "sh010", "frames": "lines/sh010"}, {"name": "sh020", "frames": "lines/sh020"}],
    "keyframes": [{"name": "hero", "image": "keys/hero.png", "shots": ["sh010"]}],
}


def write(tmp_path: Path, data: object, name: str = "episode.yaml") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data) if name.endswith(".json") else yaml.safe_dump(data))
    return str(path)


def problems_of(tmp_path: Path, data: dict, name: str = "episode.yaml") -> str:
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, data, name))
    return str(caught.value)


@pytest.mark.parametrize("name", ["episode.yaml", "episode.json"])
def test_a_good_spec_loads_with_paths_relative_to_its_folder(tmp_path, name):
    spec = load_spec(write(tmp_path, GOOD, name))
    assert spec.episode == "ep101"
    assert spec.output == f"{tmp_path}/colored"
    assert [s.frames for s in spec.shots] == [f"{tmp_path}/lines/sh010", f"{tmp_path}/lines/sh020"]
    assert spec.keyframes[0].image == f"{tmp_path}/keys/hero.png" and spec.keyframes[0].shots == ("sh010",)
    assert spec.video and spec.options == ShotOptions()  # defaults


def test_urls_with_a_protocol_and_absolute_paths_are_kept(tmp_path):
    data = {**GOOD, "output": "s3://studio/ep101/colored", "shots": [{"name": "a", "frames": "/mnt/lines/a"}]}
    data["keyframes"] = [{"name": "hero", "image": "gs://studio/keys/hero.png"}]
    spec = load_spec(write(tmp_path, data))
    assert spec.output == "s3://studio/ep101/colored"
    assert spec.shots[0].frames == "/mnt/lines/a" and spec.keyframes[0].image == "gs://studio/keys/hero.png"


def test_every_structural_problem_is_listed_with_its_field_path(tmp_path):
    data = {
        **GOOD,
        "resolution": "256",  # a string, not a number
        "shots": [{"name": "sh010", "frames": "lines/sh010", "fps": 12}, {"name": "sh020"}],
        "colour": "blue",
    }
    message = problems_of(tmp_path, data)
    assert f"spec '{tmp_path}/episode.yaml' has 4 problem(s)" in message
    assert "resolution: Input should be a valid integer (got '256')" in message
    assert "shots[0].fps: unknown field; ShotSpec fields are: name, frames" in message
    assert "shots[1].frames: missing field" in message
    assert "colour: unknown field; JobSpec fields are: episode, output, keyframes" in message


def test_meaning_problems_name_the_fields(tmp_path):
    data = {
        **GOOD,
        "output": "lines/sh020/colored",  # inside an input folder
        "shots": [*GOOD["shots"], {"name": "sh010", "frames": "lines/sh030"}],
        "keyframes": [
            {"name": "hero", "image": "keys/hero.png", "shots": ["sh099"]},
            {"name": "hero", "image": "lines/sh020/colored/key.png"},
        ],
        "video": {"codec": "mpeg2", "fps": 0},
        "fill": "glossy",
        "guide_lines": "erase",
    }
    message = problems_of(tmp_path, data)
    assert "shots[2].name: 'sh010' is also the name of shots[0]" in message
    assert "keyframes[0].shots[0]: no shot is named 'sh099'" in message
    assert "keyframes[1].name: 'hero' is also keyframes[0]" in message
    assert f"output: '{tmp_path}/lines/sh020/colored' is inside the input shots[1].frames" in message
    assert "keyframes[1].image" in message and "is inside the output folder" in message
    assert "fill: unknown fill 'glossy'; choose one of auto, soft, flat" in message
    assert "guide_lines: unknown guide lines 'erase'; choose one of paint, keep, off" in message
    soft_locked = problems_of(tmp_path, {**GOOD, "fill": "soft", "palette_lock": True})
    assert "palette_lock: locks the colors of flat regions: fill must be flat or auto" in soft_locked
    assert "video.codec: unknown codec 'mpeg2'" in message and "video.fps: must be above 0, got 0" in message
    assert f"spec '{tmp_path}/episode.yaml' has 9 problem(s)" in message  # the options' and the rest's at once


def test_a_spec_needs_shots_and_keyframes(tmp_path):
    message = problems_of(tmp_path, {"episode": "e", "output": "out", "keyframes": []})
    assert "shots: give at least one shot, or a sequence" in message
    assert "keyframes: give at least one colored keyframe" in message


def test_unreadable_specs_say_what_is_wrong(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(str(tmp_path / "missing.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("episode: [unclosed\n")
    with pytest.raises(SpecError, match=r"broken.yaml' is not valid YAML"):
        load_spec(str(broken))
    listed = tmp_path / "list.yaml"
    listed.write_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="expected a mapping of fields"):
        load_spec(str(listed))


def test_credentials_are_masked_when_shown(tmp_path):
    options = {
        "key": "AKIA123",
        "secret": "shh",
        "client_kwargs": {"endpoint_url": "http://x", "aws_session_token": "t"},
    }
    spec = load_spec(write(tmp_path, {**GOOD, "storage_options": options}))
    shown = json.dumps(spec.to_dict())
    assert "AKIA123" not in shown and "shh" not in shown and '"t"' not in shown
    assert "http://x" in shown
    assert redact_secrets({"anon": True}) == {"anon": True}


def test_validate_command(tmp_path):
    runner = CliRunner()
    for folder in ("lines/sh010", "lines/sh020", "keys"):
        (tmp_path / folder).mkdir(parents=True)
    Image.new("RGB", (64, 48), (200, 80, 40)).save(tmp_path / "keys" / "hero.png")
    for shot in ("sh010", "sh020"):  # a frame folder with no images is refused by validate as by run
        Image.new("L", (64, 48), 255).save(tmp_path / "lines" / shot / f"{shot}_0001.png")
    good = runner.invoke(main, ["validate", write(tmp_path, GOOD)])
    assert good.exit_code == 0, good.output
    assert "is valid: episode ep101, 2 shots, 1 keyframes" in good.output
    bad = runner.invoke(main, ["validate", write(tmp_path, {**GOOD, "batch_size": 0}, "bad.yaml")])
    assert bad.exit_code == 2
    assert "batch_size: must be at least 1, got 0" in bad.output
    assert "Traceback" not in bad.output


def test_every_option_of_a_spec_reaches_the_shot_options(tmp_path):
    chosen = {"fill": "flat", "palette_lock": True, "track": False, "chain": True, "clean_lines": False,
              "guide_lines": "keep", "precision": "bfloat16", "compile": True, "max_pixels": 1000, "batch_size": 2,
              "resolution": 320, "color_source": "model", "storage_options": {"anon": True}, "paper": "transparent",
              "layers": True, "depth": "16", "file_format": "tiff"}  # fmt: skip
    assert set(chosen) == set(TOP_LEVEL_OPTIONS)  # every option a spec file sets at its top level
    video = {"codec": "ffv1", "fps": 12, "background": "s3://studio/bg/sh010.png"}
    spec = load_spec(write(tmp_path, {**GOOD, **chosen, "video": video}))
    assert {name: getattr(spec.options, name) for name in chosen} == chosen
    assert (spec.options.codec, spec.options.fps, spec.options.resume) == ("ffv1", 12.0, True)
    assert spec.options.background == "s3://studio/bg/sh010.png"
    assert load_spec(write(tmp_path, spec.to_dict(redact=False), "again.json")) == spec  # laid out as a file is


def test_a_missing_background_is_an_input_problem_resolved_against_the_spec(tmp_path):
    spec = load_spec(write(tmp_path, {**GOOD, "video": {"background": "bg/sh010.png"}}))
    assert spec.options.background == str(tmp_path / "bg" / "sh010.png")
    problems = input_problems(spec)
    assert f"video.background: background {str(tmp_path / 'bg' / 'sh010.png')!r} cannot be used" in "\n".join(problems)


def test_a_spec_without_video_keeps_its_options_and_says_so(tmp_path):
    spec = load_spec(write(tmp_path, {**GOOD, "video": None}))
    assert not spec.video and spec.to_dict()["video"] is None
    message = problems_of(tmp_path, {**GOOD, "video": {"codec": "h264", "crf": 18}})
    assert "video.crf: unknown field; video fields are: fps, codec, background" in message
    assert "video: expected a mapping (fps, codec, background) or null, got 'h264'" in problems_of(
        tmp_path, {**GOOD, "video": "h264"}
    )
    assert "options: unknown field; JobSpec fields are:" in problems_of(tmp_path, {**GOOD, "options": {}})


def test_the_command_line_and_spec_files_take_the_same_ranges(tmp_path):
    for name, value in (("resolution", 15), ("resolution", 4097), ("batch_size", 0), ("max_pixels", 0)):
        spec_message = problems_of(tmp_path, {**GOOD, name: value})
        option = OPTIONS[name]
        assert f"{name}: must be {option.bounds()}, got {value}" in spec_message
        shot = CliRunner().invoke(main, ["shot", str(tmp_path), "-r", "key.png", "-o", "out",
                                         f"--{name.replace('_', '-')}", str(value)])  # fmt: skip
        assert shot.exit_code == 2 and f"Invalid value for '--{name.replace('_', '-')}'" in shot.output
