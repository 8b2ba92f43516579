"""Connected components of a binary image: 4-connected groups of pixels, found over horizontal runs.

numpy only (scipy, scikit-image and OpenCV are not dependencies). A component is a set of runs, the maximal
horizontal stretches of the mask within a row, that overlap from row to row; a union-find over the runs takes a
handful of vectorised passes instead of a Python loop over pixels. `component_runs` stops at the runs and their
labels, for callers that need only a few pixels or counts per component; `label_components` paints a label image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ComponentRuns:
    """The runs of a mask and the component of each, in row-major order.

    Args:
        shape: (H, W) of the mask.
        rows: (R,) row of each run.
        starts: (R,) first column of each run.
        ends: (R,) one past the last column of each run.
        labels: (R,) int32 component of each run, 1..count.
        count: number of components.
    """

    shape: tuple[int, int]
    rows: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    labels: np.ndarray
    count: int

    def run_of(self, pixels: np.ndarray) -> np.ndarray:
        """The run holding each of `pixels`, flat indices of pixels inside the mask (sorted or not)."""
        width = self.shape[1]
        run_keys = self.rows.astype(np.int64) * width + self.starts
        return np.searchsorted(run_keys, pixels, side="right") - 1


def component_runs(mask: np.ndarray) -> ComponentRuns:
    """The 4-connected components of a (H, W) bool mask, as labelled runs."""
    height, width = mask.shape
    padded = np.zeros((height, width + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)  # +1 where a run starts, -1 one past where it ends
    # Flat indices (several times faster than 2-D nonzero), in row-major order, so ends pair with starts.
    rows, starts = np.divmod(np.flatnonzero(edges == 1), width + 1)
    ends = np.flatnonzero(edges == -1) % (width + 1)
    count = len(starts)
    if count == 0:
        return ComponentRuns((height, width), rows, starts, ends, np.zeros(0, dtype=np.int32), 0)

    # Runs touch across rows when they overlap on some column. Keys row * stride + column sort runs globally; for
    # each run the touching runs of the row above form one contiguous slice of that order, found by binary search.
    stride = width + 1
    start_keys = rows.astype(np.int64) * stride + starts
    end_keys = rows.astype(np.int64) * stride + ends
    above = (rows - 1).astype(np.int64) * stride
    first = np.searchsorted(end_keys, above + starts, side="right")
    last = np.searchsorted(start_keys, above + ends, side="left")
    touching = np.maximum(last - first, 0)
    lower = np.repeat(np.arange(count), touching)
    upper = np.arange(touching.sum()) - np.repeat(np.cumsum(touching) - touching, touching) + np.repeat(first, touching)

    # Union-find by hooking roots onto smaller roots, then full path compression, until every edge is inside a set.
    parent = np.arange(count)
    while True:
        root_a, root_b = parent[lower], parent[upper]
        split = root_a != root_b
        if not split.any():
            break
        root_a, root_b = root_a[split], root_b[split]
        parent[np.maximum(root_a, root_b)] = np.minimum(root_a, root_b)  # any winner works: it only ever decreases
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped

    roots, run_labels = np.unique(parent, return_inverse=True)
    return ComponentRuns((height, width), rows, starts, ends, run_labels.astype(np.int32) + 1, len(roots))


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected components of a bool mask -> (int32 labels, 0 outside the mask and 1..N inside; N)."""
    runs = component_runs(mask)
    height, width = mask.shape
    if runs.count == 0:
        return np.zeros((height, width), dtype=np.int32), 0
    # Paint runs with a difference array: +label at the start, -label one past the end, summed along each row.
    delta = np.zeros((height, width + 1), dtype=np.int32)
    delta[runs.rows, runs.starts] = runs.labels
    delta[runs.rows, runs.ends] -= runs.labels
    return np.cumsum(delta[:, :width], axis=1, dtype=np.int32), runs.count  # the last column only closes runs
