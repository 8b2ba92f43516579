"""Faulthandler stays on after the test session, while the interpreter tears down.

pytest's faulthandler plugin turns the handler off in its `pytest_unconfigure`. A crash after the summary, while
exit() joins threads and destroys native objects, would then end the run with a bare exit 139 and no trace. This
plugin turns it back on, last, so such a crash prints every thread's Python stack to the real stderr.

Why it is here: session 1 saw one full run in about eight segfault after a green summary (exit 139). Native
threads that nothing of ours owns are still running then: Ray's GCS client and gRPC threads outlive `ray.shutdown()`
(ray-project/ray#36885, #49547), beside fsspec's IO loop and torch's pools. The suite ended with `os._exit` for a
while to hide the crash. It never came back: not in 60 runs of the suite as it was on the day it was seen (5c83fd9),
nor in 33 full runs of today's suite with a normal teardown (6 of them CI exactly: a fresh clone, a fresh venv, cold
caches), nor in 30 runs of the torch.compile tests with a cold inductor cache, nor in 48 processes that each did the
suite's native work. So the suite now tears down as any program does, and should the crash return, this plugin's
output names the thread.
"""

from __future__ import annotations

import faulthandler
import sys

import pytest


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    faulthandler.enable(file=sys.__stderr__, all_threads=True)
