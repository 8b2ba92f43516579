"""Bad settings through the CLI, one case each: weights that are not a colorizer's, job specs with a bad field or a
missing keyframe, buckets that cannot be used. Each is a usage error (exit code 2) with a message naming the file,
field or URL, found before any frame is colored, and nothing is written.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from model.checkpoint import DEFAULT_WEIGHTS
from model.colorizer import PRESETS
from tests.reliability.cli_runs import KEY, SAMPLE, color_shot, copy_sample_frames, invoke

# --- weights -------------------------------------------------------------------------------------------------------


def write_bad_weights(folder: Path, kind: str) -> Path:
    if kind == "pickle":
        path = folder / "weights.pt"
        torch.save({"w": torch.zeros(2)}, path)
    elif kind == "truncated":
        path = folder / "truncated.safetensors"
        data = DEFAULT_WEIGHTS.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:  # the shipped lite tensors under the icme2023 preset's metadata: the tensors do not fit the config
        path = folder / "icme2023.safetensors"
        with safe_open(str(DEFAULT_WEIGHTS), framework="pt") as handle:
            metadata = handle.metadata()
        metadata.update(preset="icme2023", config=json.dumps(PRESETS["icme2023"].to_dict()))
        save_file(load_file(str(DEFAULT_WEIGHTS)), str(path), metadata=metadata)
    return path


@pytest.mark.parametrize(
    ("kind", "needles"),
    [
        pytest.param("pickle", ["is a pickle", "only .safetensors"], id="pickle"),
        pytest.param("truncated", ["is truncated"], id="truncated"),
        pytest.param(
            "other preset",
            ["does not match its config"],
            id="other preset",
        ),
    ],
)
def test_a_bad_weights_file_is_a_usage_error_naming_it(tmp_path, kind, needles):
    weights = write_bad_weights(tmp_path, kind)
    result = color_shot(copy_sample_frames(tmp_path / "frames", (1, 2)), tmp_path / "out", "--weights", weights)
    assert result.exit_code == 2, result.output
    assert f"weights file '{weights}'" in result.output
    for needle in needles:
        assert needle in result.output
    assert not (tmp_path / "out").exists()


# --- job specs -----------------------------------------------------------------------------------------------------


def write_spec(folder: Path, **fields: object) -> Path:
    """A one-shot episode of the sample's first frames, its keyframe tied to the shot; `fields` replace the spec's."""
    copy_sample_frames(folder / "lines", (1, 2))
    shutil.copy(KEY, folder / "key.png")
    spec = {"episode": "ep-bad", "output": "colored", "shots": [{"name": "wave", "frames": "lines"}],
            "keyframes": [{"name": "key", "image": "key.png", "shots": ["wave"]}], "resolution": 128,
            "video": None, **fields}  # fmt: skip
    path = folder / "episode.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


SHOT = {"name": "wave", "frames": "lines"}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize(
    ("fields", "needles"),
    [
        pytest.param({"colour": "red"}, ["colour: unknown field; JobSpec fields are: episode,"], id="unknown key"),
        pytest.param({"shots": [{**SHOT, "fps": 12}]}, ["shots[0].fps: unknown field"], id="unknown key in a shot"),
        pytest.param(
            {"resolution": "high"}, ["resolution: Input should be a valid integer (got 'high')"], id="wrong type"
        ),
        pytest.param(
            {"video": {"codec": "h264", "fps": -24}}, ["video.fps: must be above 0, got -24"], id="negative fps"
        ),
        pytest.param(
            {"shots": [dict(SHOT), dict(SHOT)]},
            ["shots[1].name: 'wave' is also the name of shots[0]"],
            id="shot listed twice",
        ),
        pytest.param(
            {"output": "lines/colored"},
            ["output: ", "is inside the input shots[0].frames"],
            id="output inside an input",
        ),
    ],
)
def test_a_bad_spec_is_a_usage_error_naming_the_field(tmp_path, command, fields, needles):
    spec = write_spec(tmp_path, **fields)
    result = invoke(command, spec)
    assert result.exit_code == 2, result.output
    assert f"spec '{spec}' has 1 problem(s):" in result.output
    for needle in needles:
        assert needle in result.output
    assert not (tmp_path / "colored").exists() and not (tmp_path / "lines" / "colored").exists()


MISSING_KEYFRAMES = [
    pytest.param("nokey.png", id="file missing"),
    pytest.param("keys/nokey.png", id="folder missing"),
]


@pytest.mark.parametrize("image", MISSING_KEYFRAMES)
def test_validate_reports_a_missing_keyframe_file(tmp_path, image):
    spec = write_spec(tmp_path, keyframes=[{"name": "key", "image": image, "shots": ["wave"]}])
    result = invoke("validate", spec)
    assert result.exit_code == 2, result.output
    assert "keyframes[0].image" in result.output and "does not exist" in result.output


@pytest.mark.parametrize(
    "image",
    [
        pytest.param(
            "nokey.png",
            id="file missing",
        ),
        pytest.param(
            "keys/nokey.png",
            id="folder missing",
        ),
    ],
)
def test_run_refuses_a_missing_keyframe_file_before_any_work(tmp_path, image):
    spec = write_spec(tmp_path, keyframes=[{"name": "key", "image": image, "shots": ["wave"]}])
    result = invoke("run", spec)
    assert result.exit_code == 2, result.output
    assert str(tmp_path / image) in result.output and "does not exist" in result.output
    assert "keyframe" in result.output
    assert not (tmp_path / "colored").exists()


# --- buckets -------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def refused_credentials(endpoint_url: str) -> Iterator[None]:
    """While the block runs, the S3 server checks every request's keys against its IAM, where the test's keys do
    not exist: every request is refused (403, InvalidAccessKeyId). The server's earlier setting comes back after."""

    def reset_auth(count: str) -> str:
        request = urllib.request.Request(f"{endpoint_url}/moto-api/reset-auth", data=count.encode(), method="POST",
                                         headers={"Content-Type": "text/plain"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]

    previous = reset_auth("0")
    try:
        yield
    finally:
        reset_auth(previous)


MISSING_BUCKET = "s3://inkpaint-no-such-bucket"
DENIED = r"access key|denied|forbidden|credential|permission"


@pytest.mark.parametrize(
    ("problem", "role"),
    [
        pytest.param("missing bucket", "frames", id="frames in a missing bucket"),
        pytest.param("missing bucket", "reference", id="reference in a missing bucket"),
        pytest.param(
            "missing bucket",
            "output",
            id="output in a missing bucket",
        ),
        pytest.param(
            "refused",
            "frames",
            id="frames with refused credentials",
        ),
        pytest.param("refused", "reference", id="reference with refused credentials"),
        pytest.param(
            "refused",
            "output",
            id="output with refused credentials",
        ),
    ],
)
def test_an_unusable_bucket_is_a_usage_error_naming_the_url(s3_server, monkeypatch, tmp_path, problem, role):
    import s3fs

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server["endpoint_url"])  # as on a cluster: found by every process
    fs = s3fs.S3FileSystem(**s3_server["storage_options"])
    root = f"{s3_server['bucket']}/reliability-{uuid.uuid4().hex[:8]}"
    for index in (1, 2):
        fs.put_file(str(SAMPLE / "frames" / f"frame{index}.png"), f"{root}/frames/frame{index}.png")
    fs.put_file(str(KEY), f"{root}/key.png")
    urls = {"frames": str(copy_sample_frames(tmp_path / "frames", (1, 2))), "reference": str(KEY),
            "output": str(tmp_path / "out")}  # fmt: skip
    if problem == "missing bucket":
        urls[role] = f"{MISSING_BUCKET}/{role}"
    else:
        urls[role] = {
            "frames": f"s3://{root}/frames",
            "reference": f"s3://{root}/key.png",
            "output": f"s3://{root}/out",
        }[role]
    refusing = refused_credentials(s3_server["endpoint_url"]) if problem == "refused" else contextlib.nullcontext()
    with refusing:
        result = color_shot(urls["frames"], urls["output"], reference=urls["reference"])
    assert result.exit_code == 2, result.output
    assert urls[role] in result.output
    assert re.search("does not exist|no such bucket" if problem == "missing bucket" else DENIED, result.output,
                     re.IGNORECASE), result.output  # fmt: skip
    assert not (tmp_path / "out").exists()
    fs.invalidate_cache()
    assert not fs.exists(f"{root}/out")
