"""Running the CLI as a user does, for the reliability tests, and checking that it ended on its own terms."""

from __future__ import annotations

from click.testing import CliRunner, Result

from cli import main


def invoke(*args: object) -> Result:
    """The CLI as a user runs it; an uncaught exception stays in the result (see `assert_clean`)."""
    return CliRunner().invoke(main, [str(arg) for arg in args])


def assert_clean(result: Result) -> None:
    """The command ended with a message and an exit code of its own, not with an uncaught exception."""
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed, f"crashed with {result.exception!r}:\n{result.output}"
    assert "Traceback" not in result.output
