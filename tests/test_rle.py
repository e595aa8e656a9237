import numpy as np
import pytest

from shiptoolkit.data.rle import (
    mask_to_runs,
    parse_rle,
    rle_decode,
    rle_encode,
    rles_to_labels,
    rles_to_mask,
    runs_to_pixels,
)
from shiptoolkit.errors import DataError


def test_kaggle_test_vector_is_column_major_one_indexed():
    mask = np.zeros((768, 768), np.uint8)
    mask[100:110, 200:240] = 1
    values = rle_encode(mask).split()
    assert values[:4] == ["153701", "10", "154469", "10"]
    assert len(values) == 80  # 40 pairs: one run per column


@pytest.mark.parametrize("seed", range(10))
def test_round_trip_random_masks(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 80, 2))
    mask = (rng.random(shape) < rng.random()).astype(np.uint8)
    assert np.array_equal(rle_decode(rle_encode(mask), shape), mask)


def test_thin_ship_keeps_edge_pixels():
    # The seed decoded runs as polygon corners: a 3-pixel-wide ship came back at IoU 0.67.
    mask = np.zeros((768, 768), np.uint8)
    mask[300:303, 100:160] = 1
    assert rle_decode(rle_encode(mask)).sum() == mask.sum()


def test_runs_may_wrap_to_next_column():
    decoded = rle_decode("767 4", (768, 768))  # rows 766,767 of col 0 and rows 0,1 of col 1
    assert decoded[766:, 0].all() and decoded[:2, 1].all() and decoded.sum() == 4


def test_empty_values_are_empty_masks():
    for empty in ("", "  ", None, float("nan")):
        assert rle_decode(empty, (4, 4)).sum() == 0
    assert rle_encode(np.zeros((5, 5))) == ""


@pytest.mark.parametrize("bad, match", [
    ("1 2 3", "odd number"),
    ("1 x", "non-integer value 'x'"),
    ("0 3", "not positive"),
    ("5 0", "length 0 is not positive"),
    ("16 2", "past the 4x4 image"),
    ("1 5 3 2", "overlap or are out of order"),
    ("9 1 1 1", "overlap or are out of order"),
])
def test_malformed_rle_errors(bad, match):
    with pytest.raises(DataError, match=match):
        parse_rle(bad, (4, 4))


def test_union_and_labels():
    a = np.zeros((20, 20), np.uint8)
    a[2:5, 2:5] = 1
    b = np.zeros((20, 20), np.uint8)
    b[10:12, 3:9] = 1
    rles = [rle_encode(a), rle_encode(b)]
    assert np.array_equal(rles_to_mask(rles, (20, 20)), a | b)
    labels = rles_to_labels(rles, (20, 20))
    assert set(np.unique(labels)) == {0, 1, 2} and (labels == 2).sum() == b.sum()


def test_runs_to_pixels_matches_mask():
    rng = np.random.default_rng(3)
    mask = (rng.random((30, 30)) < 0.3).astype(np.uint8)
    pixels = runs_to_pixels(*mask_to_runs(mask))
    assert np.array_equal(pixels, np.flatnonzero(mask.T.reshape(-1)))
