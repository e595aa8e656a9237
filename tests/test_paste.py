"""Copy-paste of real ships (`paste_ships` of the mixed and full_images samplers, `classifier.paste_ships`):
the pasted pixels and mask are the ship's own, only training ships are pasted, and pairs stay reproducible."""

import numpy as np
import pytest

from shiptoolkit.config import load_config
from shiptoolkit.data.airbus import AirbusIndex
from shiptoolkit.errors import ConfigError
from shiptoolkit.samplers.full_images import FullImageSampler
from shiptoolkit.samplers.mixed import MixedSampler
from shiptoolkit.samplers.paste import ShipPaster

SIZE = 96
SHIP = (20, 26, 30, 50)  # rows 20-25, columns 30-49: a 6 x 20 ship
SHIP_VALUE = 200  # conftest's rect writer paints ships bright on dark noise


@pytest.fixture(scope="module")
def index(tmp_path_factory, rect_writer):
    specs = {f"s{i}.jpg": [SHIP] for i in range(3)} | {f"e{i}.jpg": [] for i in range(5)}
    return AirbusIndex.from_kaggle(rect_writer(tmp_path_factory.mktemp("paste"), specs, size=SIZE), shape=(SIZE, SIZE))


def loader(index):
    return lambda image_id: (index.read_image(image_id), index.mask(image_id))


def test_a_pasted_ship_brings_its_own_pixels_and_mask(index):
    paster = ShipPaster(index, loader(index))
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    image, mask, (row, col) = paster.paste(np.random.default_rng(0), image, mask, 60, 40)
    assert mask.sum() == 6 * 20  # the ship's own mask, turned or not
    assert mask[row, col] == 1
    inside, outside = image[mask == 1].mean(), image[mask == 0].mean()
    assert inside > 0.8 * SHIP_VALUE  # its pixels, the feathered edge barely dimming it
    assert outside < 10  # around it: the black target, but for the edge's blend
    rows, cols = np.nonzero(mask)
    assert abs(rows.mean() - 60) <= 1 and abs(cols.mean() - 40) <= 1


def test_a_ship_pasted_at_the_border_stays_whole_inside_the_image(index):
    paster = ShipPaster(index, loader(index))
    for seed in range(8):
        mask = np.zeros((SIZE, SIZE), np.uint8)
        _, mask, _ = paster.paste(np.random.default_rng(seed), np.zeros((SIZE, SIZE, 3), np.uint8), mask, 0, SIZE - 1)
        assert mask.sum() == 6 * 20


def test_only_the_samplers_own_ships_are_pasted(index, tmp_path, rect_writer):
    train = index.subset(["s0.jpg", "e0.jpg", "e1.jpg"])
    paster = ShipPaster(train, loader(train))
    assert {image_id for image_id, _ in paster.ships} == {"s0.jpg"}
    with pytest.raises(ValueError, match="needs images with ships"):
        ShipPaster(index.subset(["e0.jpg"]), loader(index))


def test_mixed_pasted_patches_hold_a_ship_on_an_empty_image_and_are_reproducible(index):
    sampler = MixedSampler(index, patch_size=32, ship_fraction=1.0, paste_ships=1.0, patches_per_epoch=24, seed=3)
    pairs = [sampler.pair(i) for i in range(24)]
    assert all(mask.any() for _, mask in pairs)
    again = MixedSampler(index, patch_size=32, ship_fraction=1.0, paste_ships=1.0, patches_per_epoch=24, seed=3)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
               for a, b in zip(pairs, (again.pair(i) for i in range(24)), strict=True))
    # every real ship sits at the same place of its image; pasted ones land anywhere
    real = MixedSampler(index, patch_size=32, ship_fraction=1.0, patches_per_epoch=24, seed=3)
    assert sampler.paster is not None and real.paster is None
    centres = {tuple(np.argwhere(m).mean(axis=0).round()) for _, m in pairs}
    assert len(centres) > 12


def test_mixed_paste_refuses_an_index_without_empty_images(index):
    with pytest.raises(ValueError, match="paste_ships=0.5 pastes ships onto images without ships"):
        MixedSampler(index.subset(["s0.jpg", "s1.jpg"]), patch_size=32, paste_ships=0.5)


def test_full_images_replace_ship_images_by_pasted_ones_in_proportion(index):
    sampler = FullImageSampler(index, 64, 0.5, seed=1, paste_ships=0.5)
    pasted = real = 0
    for epoch in range(20):
        for i in range(len(sampler)):
            image_id = sampler.order(epoch)[i]
            image, mask = sampler.pair(i, epoch)
            if index[image_id].n_ships:
                assert mask.any()  # a ship image's turn always shows ships, real or pasted
                # the real ship is always at rows 20-25 (13-17 at 64 px); pasted ones anywhere
                if mask[13:18].sum() == mask.sum() and image.shape == (64, 64, 3):
                    real += 1
                else:
                    pasted += 1
            else:
                assert not mask.any()
    assert 0.3 < pasted / (pasted + real) < 0.7
    again = FullImageSampler(index, 64, 0.5, seed=1, paste_ships=0.5)
    assert np.array_equal(sampler.pair(0, 4)[0], again.pair(0, 4)[0])


@pytest.mark.parametrize("override", ["classifier.paste_ships=1.5", "sampler.paste_ships=-0.1"])
def test_paste_ships_out_of_range_is_refused_at_load(override):
    with pytest.raises(ConfigError, match="paste_ships"):
        load_config("quickstart", [override])
