"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator

import pytest

# gcsfs's default filesystem first asks Google's storage-control gRPC API whether a bucket is zonal or hierarchical;
# the GCS emulator speaks only the JSON API, so every such call would wait out a 60 s timeout before falling back.
# gcsfs reads this switch when it is imported, whichever test imports it first; Ray workers inherit it.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"


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


EXIT_STATUS = pytest.StashKey[int]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[EXIT_STATUS] = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave without interpreter teardown, keeping pytest's exit status.

    About one full run in eight segfaulted after the summary was printed (all tests passed, exit 139), during
    interpreter finalization. Native threads that nothing of ours owns are alive then: `ray.shutdown()` leaves Ray
    2.60's driver-side GCS client and gRPC threads running (gcs_client_io_service, event_engine, grpc_global_timer,
    timer_manager), beside fsspec's IO loop and torch's thread pools. C++ threads still running while exit() destroys
    static objects is how Ray's known exit crashes happen (ray-project/ray#36885, #49547). It did not reproduce in
    isolation without this hook (10 processes of three Ray sessions and torch work, 10 of s3fs on moto, 8 of
    Playwright's Chromium, 3 of torch.compile, and 10 pytest runs of the Ray, S3, PyAV and report tests all exited 0;
    nor did 48 processes that each did all of it before a normal exit: torch on 2 threads (8 of them torch.compile),
    s3fs on moto with fsspec's IO loop left running, a PyAV x264 encode on threads, OpenCV's DIS flow on 2 threads,
    then a local Ray started, used by an actor and shut down), so it stays, limited to the end of a session: every
    test and the summary are done by now. To hunt the crash, set INKPAINT_TEST_FINALIZE=1 and run the whole suite
    with `python -X faulthandler -m pytest`: the interpreter then tears down as usual, and a crash prints every
    thread's stack.
    """
    status = config.stash.get(EXIT_STATUS, None)
    if status is None or os.environ.get("INKPAINT_TEST_FINALIZE") == "1":
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
