"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

# gcsfs's default filesystem first asks Google's storage-control gRPC API whether a bucket is zonal or hierarchical;
# the GCS emulator speaks only the JSON API, so every such call would wait out a 60 s timeout before falling back.
# gcsfs reads this switch when it is imported, whichever test imports it first; Ray workers inherit it.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

# A crash while the interpreter tears down, after the summary, prints every thread's stack (tests/teardown_faults.py).
pytest_plugins = ["tests.teardown_faults"]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict]:
    """A local S3 (moto) over HTTP for the whole session, so other processes (Ray workers) can reach it too.

    Yields a dict: endpoint_url, storage_options (for fsspec/s3fs) and bucket (an existing, shared bucket; use a
    unique prefix per test).
    """
    pytest.importorskip("moto.server", reason="moto[server] is needed for S3 tests")
    s3fs = pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as mp:
        # botocore looks for credentials before it talks to any endpoint; a developer's real profile must never be
        # picked up by a test.
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            mp.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            mp.delenv(name, raising=False)

        # Port 0: the OS picks a free port, so parallel test sessions do not collide.
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint_url = f"http://{host}:{port}"
        storage_options = {"endpoint_url": endpoint_url, "key": "testing", "secret": "testing"}
        bucket = "inkpaint-test"
        s3fs.S3FileSystem(**storage_options).mkdir(bucket)
        try:
            yield {"endpoint_url": endpoint_url, "storage_options": storage_options, "bucket": bucket}
        finally:
            server.stop()


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[dict]:
    """A local Google Cloud Storage emulator (gcp-storage-emulator, in memory) over HTTP for the whole session, so
    Ray workers can reach it too.

    Yields a dict: endpoint_url, storage_options (for fsspec/gcsfs: the endpoint and anonymous access, so no
    credential is looked for, neither a developer's nor a cloud VM's metadata server) and bucket (an existing,
    shared bucket; use a unique prefix per test).
    """
    emulator = pytest.importorskip("gcp_storage_emulator.server", reason="gcp-storage-emulator is needed for GCS tests")
    gcsfs = pytest.importorskip("gcsfs")
    if gcsfs.GCSFileSystem is not gcsfs.core.GCSFileSystem:
        pytest.fail("gcsfs was imported before GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false was set")

    with socket.socket() as probe:  # create_server cannot report a port the OS picked: find a free one first
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bucket = "inkpaint-test"
    server = emulator.create_server("127.0.0.1", port, in_memory=True, default_bucket=bucket)
    server.start()
    endpoint_url = f"http://127.0.0.1:{port}"
    try:
        yield {
            "endpoint_url": endpoint_url,
            "storage_options": {"endpoint_url": endpoint_url, "token": "anon"},
            "bucket": bucket,
        }
    finally:
        server.stop()
