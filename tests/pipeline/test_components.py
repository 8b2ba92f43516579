"""Connected components over runs: the runs' labels agree with the painted label image."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.components import component_runs, label_components


@pytest.mark.parametrize("density", [0.0, 0.3, 0.6, 1.0])
def test_every_mask_pixel_finds_the_run_of_its_component(density: float) -> None:
    mask = np.random.default_rng(int(density * 10)).random((37, 53)) < density
    labels, count = label_components(mask)
    runs = component_runs(mask)
    pixels = np.flatnonzero(mask)
    assert runs.count == count
    assert np.array_equal(runs.labels[runs.run_of(pixels)], labels.ravel()[pixels])
    assert (labels[~mask] == 0).all()
    lengths = runs.ends - runs.starts
    assert lengths.sum() == mask.sum() and (lengths > 0).all()


def test_runs_that_overlap_between_rows_join_and_diagonal_touches_do_not() -> None:
    mask = np.zeros((4, 8), dtype=bool)
    mask[0, 0:3] = mask[1, 2:5] = True  # overlap at column 2: one component
    mask[2, 5] = True  # touches (1, 4) diagonally only: a component of its own
    mask[3, 0:8] = True  # touches (2, 5) from below: joins it
    labels, count = label_components(mask)
    assert count == 2
    assert labels[0, 0] == labels[1, 4] != labels[2, 5] == labels[3, 7]
