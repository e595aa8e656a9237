"""Leak-free validation: overlapping synthetic crops, tile-hash groups, and the group-aware split."""

from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from shiptoolkit.config import load_config
from shiptoolkit.data.airbus import AirbusIndex
from shiptoolkit.data.groups import find_groups, read_groups_csv, split_by_group, tile_hashes
from shiptoolkit.data.split import split_by_image
from shiptoolkit.data.synth import generate_dataset
from shiptoolkit.errors import ConfigError, DataError

SIZE = 96  # tiles of 32 px: JPEG-block aligned, like the real data's 256 px tiles


@pytest.fixture(scope="module")
def overlapping(tmp_path_factory):
    root = tmp_path_factory.mktemp("overlap") / "d"
    generate_dataset(root, images=48, size=SIZE, overlap_fraction=0.6, seed=1, workers=1, progress=False)
    index = AirbusIndex.from_kaggle(root, shape=(SIZE, SIZE))
    scenes = dict(pd.read_csv(root / "scenes.csv").values)
    return root, index, scenes


def test_synthetic_crops_overlap_and_are_recorded(overlapping):
    root, index, scenes = overlapping
    assert set(scenes) == set(index.image_ids)
    crops = [s for s in scenes.values() if s.startswith("scene")]
    assert len(crops) == pytest.approx(48 * 0.6, abs=1)
    # Two crops of one scene share a tile exactly (offsets are multiples of the tile side).
    by_scene = defaultdict(list)
    for image_id, scene in scenes.items():
        by_scene[scene].append(image_id)
    assert all(len(v) >= 2 for k, v in by_scene.items() if k.startswith("scene"))


def test_overlapping_datasets_are_deterministic(tmp_path):
    for name in ("a", "b"):
        generate_dataset(tmp_path / name, images=10, size=SIZE, overlap_fraction=0.5, seed=4,
                         workers=1 if name == "a" else 2, progress=False)
    for rel in ("train_ship_segmentations_v2.csv", "scenes.csv"):
        assert (tmp_path / "a" / rel).read_text() == (tmp_path / "b" / rel).read_text()
    with pytest.raises(ValueError, match="overlap_fraction"):
        generate_dataset(tmp_path / "c", images=4, size=SIZE, overlap_fraction=1.5)


def test_tile_hashes_recover_the_scenes(overlapping):
    _, index, scenes = overlapping
    groups = find_groups(index, progress=False)
    groups_of_scene, scenes_of_group = defaultdict(set), defaultdict(set)
    for image_id in index.image_ids:
        groups_of_scene[scenes[image_id]].add(groups[image_id])
        scenes_of_group[groups[image_id]].add(scenes[image_id])
    assert all(len(g) == 1 for g in groups_of_scene.values())  # every scene's crops found together
    assert all(len(s) == 1 for s in scenes_of_group.values())  # and no unrelated images merged


@pytest.mark.parametrize("seed", range(6))
def test_group_split_never_puts_overlapping_crops_on_both_sides(overlapping, seed):
    _, index, scenes = overlapping
    train, val = split_by_group(index, find_groups(index, progress=False), 0.2, seed)
    assert len(train) + len(val) == len(index) and len(val) >= 1
    assert not {scenes[i] for i in train.image_ids} & {scenes[i] for i in val.image_ids}


def test_split_by_image_leaks_overlapping_crops(overlapping):
    _, index, scenes = overlapping
    leaks = 0
    for seed in range(6):
        train, val = split_by_image(index, 0.2, seed)
        leaks += len({scenes[i] for i in train.image_ids} & {scenes[i] for i in val.image_ids})
    assert leaks > 0  # the problem the group split solves is real


def test_groups_csv_is_checked(overlapping, tmp_path):
    _, index, _ = overlapping
    with pytest.raises(DataError, match="not found"):
        read_groups_csv(tmp_path / "none.csv", index)
    (tmp_path / "bad.csv").write_text("ImageId,cluster\na.jpg,1\n")
    with pytest.raises(DataError, match="lacks column"):
        read_groups_csv(tmp_path / "bad.csv", index)
    (tmp_path / "part.csv").write_text("ImageId,group\n" + f"{index.image_ids[0]},g1\n")
    with pytest.raises(DataError, match=f"part.csv.* no group for {len(index) - 1} of the dataset's {len(index)}"):
        read_groups_csv(tmp_path / "part.csv", index)
    (tmp_path / "twice.csv").write_text(f"ImageId,group\n{index.image_ids[0]},a\n{index.image_ids[0]},b\n")
    with pytest.raises(DataError, match="two groups"):
        read_groups_csv(tmp_path / "twice.csv", index)


def test_featureless_tiles_link_nothing():
    rng = np.random.default_rng(0)
    textured = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    hashes = tile_hashes(textured)
    assert len(hashes) == 9 and len(set(hashes)) == 9 and all(len(h) == 32 for h in hashes)
    assert tile_hashes(np.full((768, 768, 3), 40, np.uint8)) == [None] * 9  # open sea
    edge = np.zeros((96, 96, 3), np.uint8)
    edge[:, 50:] = 200  # a straight coastline: the same half-and-half pattern in unrelated images
    assert all(h is None for h in tile_hashes(edge))


def test_config_split_groups_end_to_end(tmp_path):
    from shiptoolkit.data.source import synthetic_path, train_val_indexes

    with pytest.raises(ConfigError, match="groups"):
        load_config({"data": {"split": "group"}})
    config = load_config({"data": {"synthetic_images": 24, "image_size": SIZE, "synthetic_overlap_fraction": 0.5,
                                   "cache_dir": str(tmp_path), "split": "groups", "val_fraction": 0.25}})
    assert synthetic_path(config).name.endswith("-overlap0.5")
    train, val = train_val_indexes(config, progress=False)
    scenes = dict(pd.read_csv(synthetic_path(config) / "scenes.csv").values)
    assert len(val) and not {scenes[i] for i in train.image_ids} & {scenes[i] for i in val.image_ids}
    # A user-given groups file is used as is.
    pd.DataFrame({"ImageId": list(scenes), "group": list(scenes.values())}).to_csv(
        synthetic_path(config) / "my_groups.csv", index=False)
    config = config.with_overrides(["data.groups_csv=my_groups.csv"])
    train, val = train_val_indexes(config, progress=False)
    assert not {scenes[i] for i in train.image_ids} & {scenes[i] for i in val.image_ids}


def test_a_generic_tile_shared_by_many_images_links_nothing(tmp_path, monkeypatch):
    from shiptoolkit.data import groups as groups_module

    # 12 unrelated images whose hashes all contain one generic tile (more than 9 = 3x3 crops).
    fake = {f"g{i:02d}.jpg": [b"generic", bytes([i]) * 32] + [None] * 7 for i in range(12)}
    fake.update({"a.jpg": [b"place"] + [None] * 8, "b.jpg": [b"place"] + [None] * 8})
    index = AirbusIndex.from_rows([(i, "") for i in fake], tmp_path, shape=(SIZE, SIZE))
    monkeypatch.setattr(groups_module, "_hashes_streamed", lambda index, grid, workers, cache: iter(
        [fake[i] for i in index.image_ids]))
    groups = find_groups(index, progress=False)
    assert groups["a.jpg"] == groups["b.jpg"] == "a.jpg"  # a real shared place still links
    assert len({groups[f"g{i:02d}.jpg"] for i in range(12)}) == 12
