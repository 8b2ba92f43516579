"""Fixtures of the jobs tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.jobs.sample_episode import render_episode


@pytest.fixture(scope="session")
def episode_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test episode's inputs (`tests.jobs.sample_episode.render_episode`), rendered once per session."""
    return render_episode(tmp_path_factory.mktemp("episode"))
