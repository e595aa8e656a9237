"""Tile hashes cached on disk: a second `find_groups` reads no image; a stale or damaged cache changes no result."""

import os
import sqlite3
import warnings

import numpy as np
import pytest

from shiptoolkit.config import load_config
from shiptoolkit.data import groups as groups_module
from shiptoolkit.data.airbus import AirbusIndex
from shiptoolkit.data.groups import find_groups
from shiptoolkit.data.hash_cache import TABLE, TileHashCache, decode_tiles, encode_tiles, file_key
from shiptoolkit.data.source import group_cache_path
from shiptoolkit.data.synth import generate_dataset

SIZE = 96  # 32 px tiles, JPEG-block aligned


@pytest.fixture
def dataset(tmp_path_factory, tmp_path):
    """A fresh copy (tests touch and rewrite its files) of a small overlapping-crops dataset."""
    import shutil

    source = tmp_path_factory.getbasetemp() / "hash_cache_source"
    if not source.exists():
        generate_dataset(source, images=24, size=SIZE, overlap_fraction=0.6, seed=2, workers=1, progress=False)
    root = tmp_path / "data"
    shutil.copytree(source, root)
    return AirbusIndex.from_kaggle(root, shape=(SIZE, SIZE))


@pytest.fixture
def reads(monkeypatch):
    """The image ids read (and so hashed) since the test began."""
    seen = []
    original = AirbusIndex.read_image

    def counting(self, image_id):
        seen.append(image_id)
        return original(self, image_id)

    monkeypatch.setattr(AirbusIndex, "read_image", counting)
    return seen


def groups_of(index, cache, **kw):
    return find_groups(index, progress=False, workers=1, cache=cache, **kw)


def test_second_run_reads_no_image_and_finds_the_same_groups(dataset, reads, tmp_path):
    cache = tmp_path / "cache" / "hashes.sqlite"
    without = groups_of(dataset, None)
    assert len(reads) == len(dataset) and not cache.exists()
    first = groups_of(dataset, cache)
    assert len(reads) == 2 * len(dataset) and cache.is_file()
    second = groups_of(dataset, cache)
    assert len(reads) == 2 * len(dataset)  # nothing read again
    assert without == first == second
    assert len(set(without.values())) < len(dataset)  # the data has real groups to get wrong


def test_a_changed_file_is_hashed_again(dataset, reads, tmp_path):
    cache = tmp_path / "hashes.sqlite"
    groups_of(dataset, cache)
    touched, rewritten = dataset.image_ids[:2]
    stat = os.stat(dataset.image_path(touched))
    os.utime(dataset.image_path(touched), ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same bytes, new mtime
    # Another crop's content in place of `rewritten`, even keeping its mtime: its size differs, so its
    # old hashes (which would now give wrong groups) are not used.
    old = os.stat(dataset.image_path(rewritten))
    donor = next(i for i in dataset.image_ids[2:] if os.stat(dataset.image_path(i)).st_size != old.st_size)
    dataset.image_path(rewritten).write_bytes(dataset.image_path(donor).read_bytes())
    os.utime(dataset.image_path(rewritten), ns=(old.st_atime_ns, old.st_mtime_ns))
    del reads[:]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a changed file is expected, not a damaged entry
        cached = groups_of(dataset, cache)
    assert sorted(reads) == sorted([touched, rewritten])
    assert cached == groups_of(dataset, None)
    assert cached[rewritten] == cached[donor]  # identical images share every tile


def test_changed_hashing_parameters_reuse_nothing(dataset, reads, tmp_path, monkeypatch):
    cache = tmp_path / "hashes.sqlite"
    groups_of(dataset, cache)
    del reads[:]
    groups_of(dataset, cache, grid=2)
    assert len(reads) == len(dataset)
    for name, value in (("HASH_VERSION", 2), ("MIN_TILE_STD", 3.0), ("MIN_REGIONS", 4), ("HASH_SIDE", 8)):
        with monkeypatch.context() as patch:
            patch.setattr(groups_module, name, value)
            del reads[:]
            changed = groups_of(dataset, cache)
            assert len(reads) == len(dataset), name
            if name == "HASH_VERSION":
                assert changed == groups_of(dataset, None)


def test_a_corrupt_cache_file_warns_and_is_rebuilt(dataset, reads, tmp_path):
    cache = tmp_path / "hashes.sqlite"
    expected = groups_of(dataset, cache)
    data = cache.read_bytes()  # bit rot past the first page: still recognisably our cache (see test_hostile_data)
    cache.write_bytes(data[:4096] + b"this is not a database" * ((len(data) - 4096) // 22 + 1))
    with pytest.warns(UserWarning, match="hashes.sqlite.*damaged.*starting it anew"):
        assert groups_of(dataset, cache) == expected
    del reads[:]
    assert groups_of(dataset, cache) == expected and not reads  # rebuilt: the next run reads nothing


def test_damaged_entries_are_hashed_again(dataset, reads, tmp_path):
    cache = tmp_path / "hashes.sqlite"
    expected = groups_of(dataset, cache)
    with sqlite3.connect(cache) as db:  # flip one byte of one image's stored hashes (bit rot)
        path, blob = db.execute(f"SELECT path, tiles FROM {TABLE} WHERE length(tiles) > 40 LIMIT 1").fetchone()
        damaged = bytes([blob[0], blob[1] ^ 0x01]) + blob[2:]
        db.execute(f"UPDATE {TABLE} SET tiles = ? WHERE path = ?", (damaged, path))
    db.close()
    del reads[:]
    with pytest.warns(UserWarning, match="damaged entries"):
        assert groups_of(dataset, cache) == expected
    assert [str(dataset.image_dir.resolve() / i) for i in reads] == [path]


def test_an_unusable_location_warns_once_and_runs_without_cache(dataset, reads, tmp_path):
    (tmp_path / "a_file").write_text("")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        groups = groups_of(dataset, tmp_path / "a_file" / "hashes.sqlite")  # its folder cannot be created
    messages = [str(w.message) for w in caught if "Tile-hash cache" in str(w.message)]
    assert len(messages) == 1 and "cannot be used" in messages[0] and 'data.group_cache' in messages[0]
    assert groups == groups_of(dataset, None) and len(reads) == 2 * len(dataset)


def test_uninformative_tiles_round_trip_as_none(tmp_path):
    tiles = [None, bytes(range(32)), None, b"\xff" * 32, None, b"", b"\x00" * 32, None, None]
    assert decode_tiles(encode_tiles(tiles)) == tiles
    assert decode_tiles(encode_tiles(tiles)[:-3]) is None  # a truncated entry is not read as hashes
    image = tmp_path / "img.jpg"
    image.write_bytes(b"12345")
    key = file_key(image)
    with TileHashCache(tmp_path / "c.sqlite", "p", 9) as writer, TileHashCache(tmp_path / "c.sqlite", "p", 9) as reader:
        assert reader.lookup([key, None]) == [None, None]
        writer.store([(key, tiles)])
        assert reader.lookup([key, None]) == [tiles, None]  # a second connection (process) sees it at once
        assert (reader.hits, reader.misses) == (1, 3)
    with TileHashCache(tmp_path / "c.sqlite", "other params", 9) as other:
        assert other.lookup([key]) == [None]


def test_the_config_names_the_cache_file(tmp_path):
    config = load_config({"data": {"cache_dir": str(tmp_path)}})
    assert group_cache_path(config) == tmp_path / "tile_hashes.sqlite"
    assert group_cache_path(config.with_overrides(["data.group_cache="])) is None
    elsewhere = tmp_path / "x" / "h.sqlite"
    assert group_cache_path(config.with_overrides([f"data.group_cache={elsewhere}"])) == elsewhere


def test_a_groups_run_fills_the_cache_in_cache_dir(tmp_path, reads):
    from shiptoolkit.data.source import train_val_indexes

    config = load_config({"data": {"synthetic_images": 12, "image_size": SIZE, "synthetic_overlap_fraction": 0.5,
                                   "cache_dir": str(tmp_path), "split": "groups", "val_fraction": 0.25}})
    first = train_val_indexes(config, progress=False)
    assert (tmp_path / "tile_hashes.sqlite").is_file() and len(reads) == 12
    second = train_val_indexes(config, progress=False)
    assert len(reads) == 12 and [i.image_ids for i in first] == [i.image_ids for i in second]
    off = config.with_overrides(["data.group_cache=", f"data.cache_dir={tmp_path / 'other'}"])
    train_val_indexes(off, progress=False)
    assert len(reads) == 24 and not list((tmp_path / "other").glob("*.sqlite"))


def test_cached_hashes_equal_fresh_ones(dataset, tmp_path):
    cache = tmp_path / "hashes.sqlite"
    groups_of(dataset, cache)
    keys = [file_key(dataset.image_dir.resolve() / i) for i in dataset.image_ids]
    with TileHashCache(cache, groups_module.hash_params(3, dataset.shape), 9) as cached:
        stored = cached.lookup(keys)
    fresh = [groups_module.tile_hashes(dataset.read_image(i)) for i in dataset.image_ids]
    assert stored == fresh
    assert any(t is None for tiles in fresh for t in tiles)  # None tiles were among them
    assert np.mean([t is None for tiles in fresh for t in tiles]) < 1
