"""Writing down what a run did (results tables, the plan, the run's description) when storage refuses: a full disk,
a bucket that stops taking writes. What could not be written is named in one line instead of a traceback. A rerun
colors again the frames that no frames table records (resume trusts only what a table vouches for), and records the
shot."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pipeline.shot import ShotResult


class NotRecorded(RuntimeError):
    """A record of a run could not be written.

    Args:
        url: the file that could not be written.
        error: why (an OSError, such as ENOSPC).
        result: the shot whose record it was, when there is one: its summary still says what was done.
    """

    def __init__(self, url: str, error: OSError, result: ShotResult | None = None) -> None:
        self.url, self.error, self.result = url, error, result
        # strerror without the file name: an atomic write fails on its temporary name, which means nothing to a user.
        super().__init__(f"could not write {url}: {error.strerror or error}")


@contextmanager
def recording(url: str) -> Iterator[None]:
    """Raise NotRecorded naming `url` when the block's write fails with an OSError."""
    try:
        yield
    except OSError as error:
        raise NotRecorded(url, error) from error
