"""A crash after the summary, while the interpreter tears down, prints every thread's stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

CRASHES_AT_EXIT = """
import atexit, ctypes, threading, time

def test_passes():
    threading.Thread(target=time.sleep, args=(60,), name="lingering", daemon=True).start()
    atexit.register(ctypes.string_at, 0)  # reads address 0 once pytest has returned: a segfault during teardown
"""


def run_pytest(folder: Path, *plugin: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin, str(folder)]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(sys.platform == "win32", reason="a segfault is a POSIX signal")
def test_a_crash_during_teardown_prints_every_threads_stack(tmp_path):
    (tmp_path / "test_crashes_at_exit.py").write_text(CRASHES_AT_EXIT)

    bare = run_pytest(tmp_path)
    assert bare.returncode == -signal.SIGSEGV and "1 passed" in bare.stdout
    assert "Fatal Python error" not in bare.stderr  # pytest has turned its own handler off by then

    traced = run_pytest(tmp_path, "-p", "tests.teardown_faults")
    assert traced.returncode == -signal.SIGSEGV and "1 passed" in traced.stdout
    assert "Fatal Python error: Segmentation fault" in traced.stderr
    assert "string_at" in traced.stderr  # the crashing thread's stack
    assert traced.stderr.count("hread 0x") == 2  # the lingering thread, then the crashing one ("Current thread")
