"""The sampler contract for every registered sampler, then each sampler's own statistics."""

import cv2
import numpy as np
import pytest

from shiptoolkit.data.airbus import AirbusIndex
from shiptoolkit.data.split import split_by_image
from shiptoolkit.errors import ConfigError
from shiptoolkit.plugins import get_registry
from shiptoolkit.training.augment import build_augment

SIZE = 96


@pytest.fixture(scope="module")
def index(tmp_path_factory, rect_writer):
    root = tmp_path_factory.mktemp("samplers")
    specs = {}
    for i in range(20):
        if i % 2 == 0:
            specs[f"s{i:02d}.jpg"] = [(5 + i, 12 + i, 10, 40), (60, 64, 70 - i, 90 - i // 2)]
        else:
            specs[f"e{i:02d}.jpg"] = []
    return AirbusIndex.from_kaggle(rect_writer(root, specs, size=SIZE), shape=(SIZE, SIZE))


def small_params(name):
    return {"size": 64} if name == "full_images" else {"patch_size": 32}


@pytest.mark.parametrize("name", get_registry("sampler").names())
def test_sampler_contract(name, index):
    registry = get_registry("sampler")
    sampler = registry.create(name, index, seed=3, **small_params(name))
    pairs = list(sampler)
    assert len(pairs) == len(sampler) > 0
    for image, mask in pairs:
        assert image.dtype == np.uint8 and image.shape == (*sampler.output_shape, 3)
        assert mask.dtype == np.uint8 and mask.shape == sampler.output_shape and set(np.unique(mask)) <= {0, 1}
    again = registry.create(name, index, seed=3, **small_params(name))
    last = len(sampler) - 1
    # pure in (seed, epoch, i): independent of call order and of other calls
    assert np.array_equal(again.pair(last, 0)[0], pairs[last][0])
    assert np.array_equal(again.pair(0, 0)[1], pairs[0][1])
    epoch1 = [sampler.pair(i, 1)[0] for i in range(len(sampler))]
    assert any(not np.array_equal(a[0], b) for a, b in zip(pairs, epoch1, strict=True))  # a new draw each epoch


def test_ship_patches_always_contain_ships(index):
    sampler = get_registry("sampler").create("ship_patches", index, patch_size=32, patches_per_epoch=200)
    assert all(mask.any() for _, mask in sampler)


def test_ship_patches_find_small_ships(tmp_path, rect_writer):
    # One big and one 2x2 ship per image: ships are picked uniformly, so ~half the patches hold the small one.
    specs = {f"s{i}.jpg": [(5, 7, 5, 7), (40, 90, 30, 90)] for i in range(3)}
    idx = AirbusIndex.from_kaggle(rect_writer(tmp_path, specs, size=SIZE), shape=(SIZE, SIZE))
    sampler = get_registry("sampler").create("ship_patches", idx, patch_size=16, patches_per_epoch=300)
    small = sum(1 for _, m in sampler if 0 < m.sum() <= 4)
    assert 0.35 < small / 300 < 0.65


def test_mixed_ship_fraction_over_1000_draws(index):
    sampler = get_registry("sampler").create("mixed", index, patch_size=32, ship_fraction=0.3,
                                              patches_per_epoch=1000)
    has_ship = np.array([mask.any() for _, mask in sampler])
    assert abs(has_ship.mean() - 0.3) <= 0.05


def test_mixed_empty_patches_come_from_both_sources(index):
    sampler = get_registry("sampler").create("mixed", index, patch_size=32, ship_fraction=0.0,
                                              empty_from_ship_images=0.5, patches_per_epoch=400, patches_per_image=1)
    kinds, images = sampler.plan(0)
    assert set(kinds.tolist()) == {1, 2} and abs((kinds == 1).mean() - 0.5) < 0.05
    assert not any(mask.any() for _, mask in sampler)  # empty means no ship pixel at all


def test_mixed_empty_on_edges_draws_hard_negatives(tmp_path, rect_writer):
    # Empty images of dark noise with one bright pier (not a ship): edge-placed empty patches land on it.
    size = 192
    specs = {f"e{i}.jpg": [] for i in range(4)} | {f"s{i}.jpg": [(20, 30, 150, 170)] for i in range(4)}
    root = rect_writer(tmp_path, specs, size=size)
    for i in range(4):
        path = root / "train_v2" / f"e{i}.jpg"
        image = cv2.imread(str(path))
        image[100:104, 20 + 10 * i:130] = 250
        cv2.imwrite(str(path), image)
    idx = AirbusIndex.from_kaggle(root, shape=(size, size))

    def pier_share(on_edges):
        sampler = get_registry("sampler").create("mixed", idx, patch_size=32, ship_fraction=0.0,
                                                  empty_from_ship_images=0.5, empty_on_edges=on_edges,
                                                  patches_per_epoch=400, patches_per_image=1, seed=1)
        kinds = sampler.plan(0)[0]
        pairs = list(sampler)
        assert not any(mask.any() for _, mask in pairs)  # on edges or not, never a ship pixel
        from_empty = [image for (image, _), kind in zip(pairs, kinds, strict=True) if kind == 2]
        return np.mean([(image.min(axis=-1) > 200).any() for image in from_empty])

    uniform, on_edges = pier_share(0.0), pier_share(1.0)
    assert uniform < 0.3 and on_edges > 0.65, (uniform, on_edges)  # a window holding a point drawn next to it
    half = pier_share(0.5)
    assert uniform + 0.15 < half < on_edges - 0.15, half  # a fraction of the empty patches, not all


def test_full_images_sizes_and_empty_fraction(index):
    full = get_registry("sampler").create("full_images", index)
    assert full.output_shape == (SIZE, SIZE) and len(full) == 20  # natural: every image once
    resized = get_registry("sampler").create("full_images", index, size=48, empty_fraction=0.2)
    assert len(resized) == 10 + round(10 * 0.2 / 0.8)  # all ship images + empties for a 20% share
    assert all(image.shape == (48, 48, 3) for image, _ in resized)
    empty_share = np.mean([not m.any() for _, m in resized])
    assert empty_share == pytest.approx((len(resized) - 10) / len(resized))  # 2 of 12: close to 20%


def test_split_has_no_image_on_both_sides_and_keeps_empty_fraction(index):
    train, val = split_by_image(index, 0.2, seed=1)
    assert not set(train.image_ids) & set(val.image_ids)
    assert len(train) + len(val) == len(index) and len(val) == 4
    assert len(val.empty_ids) == 2  # stratified
    assert split_by_image(index, 0.2, seed=1)[1].image_ids == val.image_ids
    with pytest.raises(ValueError, match="val_fraction"):
        split_by_image(index, 1.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"patch_size": 500}, "patch_size must be between 8 and the image size 96"),
    ({"patch_size": 32, "ship_fraction": 1.5}, "ship_fraction must be in"),
    ({"patch_size": 32, "empty_on_edges": -0.1}, "empty_on_edges must be in"),
    ({"patch_size": 32, "patches_per_image": 0}, "patches_per_image must be >= 1"),
])
def test_mixed_bad_parameters(index, kwargs, match):
    with pytest.raises(ValueError, match=match):
        get_registry("sampler").create("mixed", index, **kwargs)


def test_augmentation_moves_image_and_mask_together_and_is_reproducible():
    augment = build_augment([{"name": "HorizontalFlip", "p": 1.0}])
    image = np.zeros((8, 8, 3), np.uint8)
    image[:, :2] = 255
    mask = (image[..., 0] > 0).astype(np.uint8)
    out_image, out_mask = augment(image, mask, 0, 1)
    assert out_image[:, -2:].all() and np.array_equal(out_mask, (out_image[..., 0] > 0).astype(np.uint8))
    random_aug = build_augment([{"name": "RandomRotate90", "p": 1.0}, {"name": "GaussNoise", "p": 1.0}])
    assert np.array_equal(random_aug(image, mask, 4, 2)[0], random_aug(image, mask, 4, 2)[0])
    assert build_augment([]) is None


@pytest.mark.parametrize("transforms, match", [
    ([{"name": "HorizontalFlp"}], "unknown albumentations transform 'HorizontalFlp'. Did you mean 'HorizontalFlip'"),
    ([{"name": "HorizontalFlip", "p": "often"}], r"transforms\[0\] \(HorizontalFlip\): invalid parameters"),
    ([{"p": 0.5}], "must be a table with a name"),
])
def test_augmentation_errors(transforms, match):
    with pytest.raises(ConfigError, match=match):
        build_augment(transforms)
