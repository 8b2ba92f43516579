"""Untrusted files and secrets: credentials never reach what a run writes or says; spec files cannot build
objects."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "wave"
FAKE_KEY = "AKIAINKPAINTFAKEKEY7"
FAKE_SECRET = "inkpaint-fake-secret-0451-do-not-leak"


@pytest.mark.slow
def test_credentials_in_a_spec_appear_in_nothing_the_run_writes_or_says(s3_server, tmp_path, caplog):
    import s3fs

    fs = s3fs.S3FileSystem(**s3_server["storage_options"])
    root = f"{s3_server['bucket']}/secrets"
    fs.put(str(SAMPLE / "frames"), f"{root}/frames", recursive=True)
    fs.put_file(str(SAMPLE / "key.png"), f"{root}/key.png")
    output = tmp_path / "out"  # a local output, read back byte by byte below
    spec = {
        "episode": "secrets",
        "output": str(output),
        "shots": [{"name": "wave", "frames": f"s3://{root}/frames"}, {"name": "gone", "frames": f"s3://{root}/nope"}],
        "keyframes": [{"name": "key", "image": f"s3://{root}/key.png"}],
        "resolution": 128,
        # moto accepts any keys: the run works with these, so everything that could carry them is exercised.
        "storage_options": {"endpoint_url": s3_server["endpoint_url"], "key": FAKE_KEY, "secret": FAKE_SECRET},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    caplog.set_level(logging.INFO)  # what a run logs; botocore signs requests with the key ID at DEBUG
    refused = CliRunner().invoke(main, ["run", str(path)])  # a missing frames folder: an error message
    assert refused.exit_code == 2 and "shots[1].frames" in refused.output
    spec["shots"] = spec["shots"][:1]
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 0, result.output
    reported = CliRunner().invoke(main, ["report", str(output)])
    said = refused.output + result.output + reported.output + caplog.text
    written = [p for p in output.rglob("*") if p.is_file()]
    assert len(written) > 12 and (output / "inkpaint-spec.json").exists()
    for secret in (FAKE_KEY, FAKE_SECRET):
        assert secret not in said
        leaks = [str(p) for p in written if secret.encode() in p.read_bytes()]
        assert leaks == [], f"{secret} written to {leaks}"
    assert '"key": "***"' in (output / "inkpaint-spec.json").read_text()


def test_a_yaml_spec_cannot_build_objects(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f'episode: !!python/object/apply:os.system ["touch {marker}"]\noutput: out\nkeyframes: []\n')
    for command in ("validate", "run"):
        result = CliRunner().invoke(main, [command, str(path)])
        assert result.exit_code == 2, result.output
        assert str(path) in result.output and "python/object" in result.output
    assert not marker.exists()
