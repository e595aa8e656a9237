import numpy as np
import pytest

from shiptoolkit.data.airbus import AirbusIndex
from shiptoolkit.data.synth import generate_dataset, render_scene
from shiptoolkit.errors import DataError


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "d"
    summary = generate_dataset(root, images=40, seed=3, empty_fraction=0.5, size=128, workers=1, progress=False)
    return root, summary


def test_layout_counts_and_exact_empty_fraction(small):
    root, summary = small
    index = AirbusIndex.from_kaggle(root, shape=(128, 128))
    assert len(index) == summary.images == 40
    assert len(index.empty_ids) == summary.empty_images == 20
    assert sum(r.n_ships for r in index) == summary.ships > 0
    assert index.validate() == []  # every RLE parses, every image opens at 128x128


def test_csv_masks_match_the_drawn_ships():
    for seed in range(5):
        image, masks = render_scene(np.random.default_rng(seed), size=192, n_ships=3)
        assert image.shape == (192, 192, 3) and image.dtype == np.uint8
        assert 1 <= len(masks) <= 3
        stacked = np.sum(masks, axis=0)
        assert stacked.max() == 1  # touching ships never overlap
        ship, sea = stacked.astype(bool), ~stacked.astype(bool)
        # Hulls are painted with their own tone: pixels differ from the sea around them.
        assert np.abs(image[ship].mean(0) - image[sea].mean(0)).max() > 10 or ship.sum() < 30


def test_decoded_csv_equals_rendered_masks(small):
    root, _ = small
    from shiptoolkit.data.synth import _ship_count, image_id

    index = AirbusIndex.from_kaggle(root, shape=(128, 128))
    i = next(i for i in range(40) if index[image_id(3, i)].has_ships)
    rng = np.random.default_rng([3, i])
    _, masks = render_scene(rng, 128, _ship_count(rng))
    decoded = index.labels(image_id(3, i))
    assert decoded.max() == len(masks)
    for k, mask in enumerate(masks, start=1):
        assert np.array_equal(decoded == k, mask.astype(bool))


def test_deterministic_for_any_worker_count(tmp_path, small):
    root, _ = small
    other = tmp_path / "again"
    generate_dataset(other, images=40, seed=3, empty_fraction=0.5, size=128, workers=2, progress=False)
    csv = "train_ship_segmentations_v2.csv"
    assert (other / csv).read_text() == (root / csv).read_text()
    first = sorted((root / "train_v2").iterdir())[0].name
    assert (other / "train_v2" / first).read_bytes() == (root / "train_v2" / first).read_bytes()


def test_ship_areas_follow_the_real_distribution():
    from shiptoolkit.data.synth import _ship_masks

    rng = np.random.default_rng(0)
    areas = [m.sum() for _ in range(60) for m in _ship_masks(rng, 768, 4, np.zeros((768, 768), bool))]
    assert 15 <= min(areas) and max(areas) <= 12_000
    assert 200 < np.median(areas) < 900  # real data: median 408


def test_refuses_to_overwrite(small, tmp_path):
    root, _ = small
    with pytest.raises(DataError, match="not empty"):
        generate_dataset(root, images=2, size=64, progress=False)
    with pytest.raises(ValueError, match="empty_fraction"):
        generate_dataset(tmp_path / "x", images=2, empty_fraction=1.5)


def test_full_size_images(tmp_path):
    summary = generate_dataset(tmp_path / "full", images=4, seed=1, empty_fraction=0.5, workers=1, progress=False)
    index = AirbusIndex.from_kaggle(tmp_path / "full")
    assert summary.images == 4 and index.read_image(index.image_ids[0]).shape == (768, 768, 3)
