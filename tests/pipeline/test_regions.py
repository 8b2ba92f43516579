from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from pipeline.regions import dilate, keyframe_palette, label_components, segment_regions
from tests.pipeline.line_drawings import region_count, split_line


def flood_fill_reference(paper: np.ndarray) -> np.ndarray:
    """Plain BFS 4-connected labelling, to check the vectorised one against."""
    height, width = paper.shape
    labels = np.zeros(paper.shape, dtype=np.int32)
    count = 0
    for i in range(height):
        for j in range(width):
            if not paper[i, j] or labels[i, j]:
                continue
            count += 1
            labels[i, j] = count
            queue = deque([(i, j)])
            while queue:
                y, x = queue.popleft()
                for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                    if 0 <= ny < height and 0 <= nx < width and paper[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = count
                        queue.append((ny, nx))
    return labels


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two labellings group the pixels identically (label numbers may differ)."""
    pairs = set(zip(a.ravel().tolist(), b.ravel().tolist(), strict=True))
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


def test_two_pixel_gap_is_closed_by_default() -> None:
    lines = split_line(2)
    labels = segment_regions(lines)
    assert region_count(labels) == 2
    assert labels[:, :19].max() == labels[:, :19].min() != labels[:, 21:].min()


def test_six_pixel_gap_is_left_open() -> None:
    assert region_count(segment_regions(split_line(6))) == 1


def test_gap_one_closes_nothing() -> None:
    assert region_count(segment_regions(split_line(2), gap=1)) == 1


@pytest.mark.parametrize("gap_px", [2, 6])
def test_labels_cover_paper_and_never_ink(gap_px: int) -> None:
    lines = split_line(gap_px)
    labels = segment_regions(lines)
    assert labels.dtype == np.int32
    assert (labels[lines >= 160] > 0).all()
    assert (labels[lines < 160] == 0).all()


def test_thin_enclosed_strip_swallowed_by_closing_is_its_own_region() -> None:
    lines = np.full((30, 40), 255, dtype=np.uint8)
    lines[10] = 0
    lines[13] = 0  # rows 11-12: a 2-px strip the 3x3 closing fills completely
    labels = segment_regions(lines)
    strip = labels[11:13]
    assert (strip > 0).all()
    assert len(np.unique(strip)) == 1
    assert strip[0, 0] not in (labels[5, 5], labels[20, 5])
    assert region_count(labels) == 3


def test_labelling_matches_flood_fill_on_noise() -> None:
    rng = np.random.default_rng(1)
    lines = np.where(rng.random((70, 90)) < 0.45, 0, 255).astype(np.uint8)
    labels = segment_regions(lines, gap=1)
    reference = flood_fill_reference(lines >= 160)
    assert labels.max() == reference.max() > 50
    assert same_partition(labels, reference)


def test_line_art_that_is_not_8_bit_is_refused() -> None:
    with pytest.raises(ValueError, match="uint8"):
        segment_regions(np.zeros((4, 4), dtype=np.float32))


def test_keyframe_palette_keeps_the_painted_colors_not_the_edges():
    key = np.zeros((60, 90, 3), np.uint8)
    key[:, :40] = (250, 200, 150)  # skin, 40 columns
    key[:, 40:70] = (40, 60, 200)  # shirt, 30 columns
    key[:, 70:] = (20, 20, 20)  # hair, 20 columns
    key[:, 39] = (150, 130, 170)  # an anti-aliased edge: a colour of its own, one column wide
    key[5, 5] = (1, 2, 3)  # a stray pixel
    palette = keyframe_palette(key, min_share=0.02)
    assert palette.tolist() == [[250, 200, 150], [40, 60, 200], [20, 20, 20]]  # most used first
    assert keyframe_palette(key, min_share=0.02, max_colors=1).tolist() == [[250, 200, 150]]


def test_components_join_across_rows_where_they_overlap_and_not_where_they_touch_diagonally() -> None:
    mask = np.zeros((4, 8), dtype=bool)
    mask[0, 0:3] = mask[1, 2:5] = True  # overlap at column 2: one component
    mask[2, 5] = True  # touches (1, 4) diagonally only: a component of its own
    mask[3, 0:8] = True  # touches (2, 5) from below: joins it
    labels, count = label_components(mask)
    assert count == 2
    assert labels[0, 0] == labels[1, 4] == 1  # numbered in the raster order of their first pixels
    assert labels[2, 5] == labels[3, 7] == 2
    assert (labels[~mask] == 0).all()


@pytest.mark.parametrize("size", [2, 3, 4])
def test_a_dilation_by_an_even_square_reaches_one_pixel_further_after_than_before(size: int) -> None:
    mask = np.zeros((9, 9), dtype=bool)
    mask[4, 4] = True
    rows, columns = np.nonzero(dilate(mask, size))
    before = (size - 1) // 2
    assert (rows.min(), rows.max()) == (4 - before, 4 + size - 1 - before)
    assert (columns.min(), columns.max()) == (4 - before, 4 + size - 1 - before)
