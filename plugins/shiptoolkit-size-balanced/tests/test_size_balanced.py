import numpy as np
import pytest

from shiptoolkit.data.airbus import AirbusIndex
from shiptoolkit.data.rle import rle_encode
from shiptoolkit_size_balanced import SizeBalancedSampler


@pytest.fixture
def index(tmp_path):
    """Three tiny ships and one big one: uniform-per-ship sampling would see the big one 25%."""
    import cv2

    (tmp_path / "img").mkdir()
    rows = []
    for n, (r0, r1, c0, c1) in enumerate([(5, 7, 5, 8), (20, 22, 20, 23), (40, 42, 9, 12), (50, 90, 40, 90)]):
        mask = np.zeros((96, 96), np.uint8)
        mask[r0:r1, c0:c1] = 1
        image = np.where(mask[..., None] > 0, 220, 30).astype(np.uint8).repeat(3, axis=2)
        cv2.imwrite(str(tmp_path / "img" / f"s{n}.jpg"), image)
        rows.append((f"s{n}.jpg", rle_encode(mask)))
    return AirbusIndex.from_rows(rows, tmp_path / "img", shape=(96, 96))


def test_every_patch_has_ship_pixels_and_is_deterministic(index):
    sampler = SizeBalancedSampler(index, patch_size=32, patches_per_epoch=40, seed=1)
    pairs = list(sampler)
    assert len(pairs) == 40
    assert all(m.shape == (32, 32) and m.any() for _, m in pairs)
    image, mask = sampler.pair(7)
    again = SizeBalancedSampler(index, patch_size=32, patches_per_epoch=40, seed=1).pair(7)
    assert np.array_equal(image, again[0]) and np.array_equal(mask, again[1])


def test_size_bins_are_balanced(index):
    # Edges put the three 6-px ships in one bin and the 2,000-px ship in another: half each.
    sampler = SizeBalancedSampler(index, patch_size=32, area_edges=(100,), patches_per_epoch=400)
    big = sum(sampler.pair(i)[1].sum() > 50 for i in range(400))
    assert 0.40 < big / 400 < 0.60


def test_bad_parameters_are_named(index):
    with pytest.raises(ValueError, match="patch_size=500"):
        SizeBalancedSampler(index, patch_size=500)
    with pytest.raises(ValueError, match="area_edges"):
        SizeBalancedSampler(index, patch_size=32, area_edges=(10, 5))
