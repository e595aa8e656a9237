"""Groups of overlapping images, and a train/validation split that keeps each group on one side.

The Airbus training images are 768 px crops of larger satellite scenes, cut at offsets that are
multiples of 256 px: the same 256 px tile reappears in several images. A split by image then
puts copies of validation pixels into training, and validation scores come out optimistic.
`find_groups` links images that share a tile (by a perceptual hash of each 256 px tile, robust
to JPEG noise), and `split_by_group` sends whole groups to one side.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from shiptoolkit.data.airbus import AirbusIndex
from shiptoolkit.data.hash_cache import TileHashCache, file_key
from shiptoolkit.data.tables import read_csv_columns
from shiptoolkit.errors import DataError

HASH_SIDE = 16  # thumbnail side: 256 bits per tile, so unrelated textured tiles practically never collide
# Tiles whose thumbnail varies less than this (grey levels, 0..255) carry no identity: open sea,
# thick cloud and black borders look alike in thousands of unrelated images, and their
# mean-threshold bits are only noise (or all alike), so they would link unrelated images.
MIN_TILE_STD = 2.0
# Nor do tiles whose bits form just one bright and one dark region: a straight coastline, a cloud
# edge or a smooth gradient gives nearly the same half-and-half pattern in unrelated images.
MIN_REGIONS = 3
READ_CHUNK = 64  # images submitted to the thread pool at a time: memory stays a few images
# Bump when `tile_hashes` changes in a way the constants above do not show: hashes cached on disk
# by an earlier version are then not reused.
HASH_VERSION = 1


def tile_hashes(image: np.ndarray, grid: int = 3) -> list[bytes | None]:
    """Perceptual hash of each of the grid x grid tiles of an image (row by row; None: uninformative).

    Each tile (768 px image, grid 3: 256 px tiles) goes grey, loses a thin border, is averaged
    down to 16x16 with INTER_AREA (which averages JPEG noise away), and each bit says whether
    a thumbnail pixel is brighter than the thumbnail mean: 32 bytes per tile. The border is
    dropped because JPEG decoding smooths colour across block edges, so a tile's outermost
    pixels depend on its neighbours, which differ between two crops sharing the tile.

    Tiles that would link unrelated images get None: a thumbnail std below `MIN_TILE_STD`
    (open sea, cloud) or fewer than `MIN_REGIONS` bright and dark regions (an edge, a gradient).
    Crops encoded alike (same JPEG quality, tiles on 8 px block boundaries, as in the Kaggle
    data and `shiptoolkit synth`) hash shared tiles identically; re-encoding at another quality
    flips bits near the mean, and such copies are mostly not found.
    """
    import cv2

    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be HxWx3. Received shape {image.shape}")
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)
    rows = np.round(np.linspace(0, grey.shape[0], grid + 1)).astype(int)
    cols = np.round(np.linspace(0, grey.shape[1], grid + 1)).astype(int)
    hashes: list[bytes | None] = []
    for r0, r1 in zip(rows[:-1], rows[1:], strict=True):
        for c0, c1 in zip(cols[:-1], cols[1:], strict=True):
            margin = max(1, min(r1 - r0, c1 - c0) // 16)
            tile = grey[r0 + margin:r1 - margin, c0 + margin:c1 - margin]
            thumb = cv2.resize(tile, (HASH_SIDE, HASH_SIDE), interpolation=cv2.INTER_AREA)
            bits = thumb > thumb.mean()
            if thumb.std() < MIN_TILE_STD or _regions(bits) < MIN_REGIONS:
                hashes.append(None)
            else:
                hashes.append(np.packbits(bits).tobytes())
    return hashes


def _regions(bits: np.ndarray) -> int:
    """Connected regions (4-connected) of set plus unset bits."""
    import cv2

    ones = bits.astype(np.uint8)
    return cv2.connectedComponents(ones, connectivity=4)[0] + cv2.connectedComponents(1 - ones, connectivity=4)[0] - 2


def hash_params(grid: int, shape: tuple[int, int]) -> str:
    """Everything a tile hash depends on besides the image file: cached hashes are reused only for equal params.

    The shape is in because reading checks it: a cache filled for other sizes must not let a
    wrong-size image through.
    """
    return (f"version={HASH_VERSION} side={HASH_SIDE} grid={grid} min_std={MIN_TILE_STD} "
            f"min_regions={MIN_REGIONS} shape={shape[0]}x{shape[1]}")


def _hashes_streamed(index: AirbusIndex, grid: int, workers: int,
                     cache: str | Path | None = None) -> Iterator[list[bytes | None]]:
    """Tile hashes of every image in index order, reading a bounded number of images at a time.

    Images whose file (same path, size and mtime) was hashed with the same parameters before
    come from the cache at `cache` without being read; the others are read, hashed and stored.
    """
    ids = index.image_ids
    folder = str(index.image_dir.resolve())  # once: resolving 192,556 paths one by one costs seconds

    def read_and_hash(image_id: str) -> list[bytes | None]:
        return tile_hashes(index.read_image(image_id), grid)

    with (TileHashCache(cache, hash_params(grid, index.shape), grid * grid) as cached,
          ThreadPoolExecutor(max(1, workers)) as pool):  # decoding releases the GIL: threads suffice
        for a in range(0, len(ids), READ_CHUNK):
            chunk = ids[a:a + READ_CHUNK]
            keys = [file_key(os.path.join(folder, image_id)) for image_id in chunk]
            tiles = cached.lookup(keys)
            todo = [k for k, t in enumerate(tiles) if t is None]
            for k, hashes in zip(todo, pool.map(read_and_hash, [chunk[k] for k in todo]), strict=True):
                tiles[k] = hashes
            cached.store([(keys[k], tiles[k]) for k in todo if keys[k] is not None])
            yield from tiles


def find_groups(index: AirbusIndex, grid: int = 3, progress: bool = True, workers: int = 2,
                cache: str | Path | None = None) -> dict[str, str]:
    """Group images that share an informative tile (transitively): image id -> group id.

    The group id is the group's smallest image id, so it does not depend on the index order.
    Images are read once, streamed; only the hashes are kept (32 bytes per tile). A hash found in
    more than grid*grid images is generic, not a shared place, and links nothing.

    Args:
        index: the dataset.
        grid: tiles per side (Airbus: 3, i.e. 256 px tiles of 768 px images).
        progress: show a progress bar.
        workers: threads reading and hashing images.
        cache: a file of tile hashes kept between runs (see `shiptoolkit.data.hash_cache`): an image
            hashed before, unchanged since, is not read again. None: no cache.
    """
    from tqdm import tqdm

    ids = index.image_ids
    parent = list(range(len(ids)))  # union-find over image positions

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving keeps the trees flat
            i = parent[i]
        return i

    # A real tile lies in at most grid*grid crops (one per position in the crop). A hash shared
    # by more images is a generic pattern (a regular texture, a sensor artefact), not one place:
    # linking through it would chain unrelated images into one giant group, so it is ignored.
    most = grid * grid
    owners: dict[bytes, list[int]] = {}  # tile hash -> the images that have it (up to most + 1)
    hashes = _hashes_streamed(index, grid, workers, cache)
    for i, tiles in enumerate(tqdm(hashes, total=len(ids), desc="tile hashes", unit="img", disable=not progress)):
        for h in set(t for t in tiles if t is not None):
            images = owners.setdefault(h, [])
            if len(images) <= most:
                images.append(i)
    for images in owners.values():
        if len(images) <= most:
            for j in images[1:]:
                a, b = root(images[0]), root(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    smallest: dict[int, str] = {}
    for i, image_id in enumerate(ids):
        r = root(i)
        smallest[r] = min(smallest.get(r, image_id), image_id)
    return {image_id: smallest[root(i)] for i, image_id in enumerate(ids)}


def read_groups_csv(path: str | Path, index: AirbusIndex) -> dict[str, str]:
    """Read user-given groups (`ImageId,group`) for the images of `index`: image id -> group.

    Every image of the index needs a group: a missing one is an error (silently treating it as
    a group of its own could leak it). Rows for images outside the index are ignored, so one
    file serves `data.max_images` subsets too.

    Raises:
        DataError: naming the file and what is wrong with it.
    """

    path = Path(path).expanduser()
    frame = read_csv_columns(path, ("ImageId", "group"), "Groups (data.groups_csv; leave it empty to find groups "
                                                         "by tile hashing)")
    image_ids = frame["ImageId"].str.strip()
    group_ids = frame["group"].str.strip()
    blank = image_ids[group_ids == ""].tolist()
    if blank:
        raise DataError(f"Groups CSV {str(path)!r}: {len(blank)} row(s) have an empty group, e.g. {blank[:3]}.")
    conflicting = frame.assign(ImageId=image_ids, group=group_ids).groupby("ImageId")["group"].nunique()
    conflicting = conflicting[conflicting > 1].index.tolist()
    if conflicting:
        raise DataError(f"Groups CSV {str(path)!r}: {len(conflicting)} image(s) are in two groups or more, "
                        f"e.g. {conflicting[:3]}.")
    given = dict(zip(image_ids.tolist(), group_ids.tolist(), strict=True))
    absent = [i for i in index.image_ids if i not in given]
    if absent:
        raise DataError(f"Groups CSV {str(path)!r} has no group for {len(absent)} of the dataset's "
                        f"{len(index)} images, e.g. {absent[:5]}. Every image needs a row (an image "
                        "alone can be its own group).")
    return {i: given[i] for i in index.image_ids}


def split_by_group(index: AirbusIndex, groups: dict[str, str], val_fraction: float = 0.05,
                   seed: int = 0) -> tuple[AirbusIndex, AirbusIndex]:
    """Split into (train, validation) keeping every group on one side: no tile on both sides.

    Like `split_by_image`, stratified and deterministic for a seed: groups are stratified by
    whether any member has ships, and groups are taken in a seeded order while they bring each
    stratum's validation image count closer to its share of round(len(index) * val_fraction).
    At least one validation group when `val_fraction > 0` and there are two groups or more;
    at least one training group always.

    Args:
        index: the dataset.
        groups: image id -> group id, for every image (from `find_groups` or `read_groups_csv`).
        val_fraction: fraction of images (not groups) to hold out.
        seed: seed of the choice.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1). Received: val_fraction={val_fraction}")
    absent = [i for i in index.image_ids if i not in groups]
    if absent:
        raise DataError(f"{len(absent)} image(s) have no group, e.g. {absent[:5]}.")
    members: dict[str, list[str]] = {}  # group -> its images, groups in order of first appearance
    for image_id in index.image_ids:
        members.setdefault(groups[image_id], []).append(image_id)
    if val_fraction == 0 or len(members) < 2:
        return index, index.subset([])
    names = list(members)
    has_ships = [any(index[i].has_ships for i in members[g]) for g in names]
    ship_groups = [g for g, s in zip(names, has_ships, strict=True) if s]
    empty_groups = [g for g, s in zip(names, has_ships, strict=True) if not s]
    target = max(1, round(len(index) * val_fraction))
    ship_images = sum(len(members[g]) for g in ship_groups)
    ship_target = min(target, round(ship_images * val_fraction))
    rng = np.random.default_rng([seed, 7])
    chosen: list[str] = []
    for stratum, want in ((ship_groups, ship_target), (empty_groups, target - ship_target)):
        count = 0
        for k in rng.permutation(len(stratum)):
            size = len(members[stratum[k]])
            if abs(count + size - want) < abs(count - want):  # only while it gets closer
                chosen.append(stratum[k])
                count += size
    if not chosen:  # every group is far larger than the target: the smallest one, seeded on ties
        sizes = np.array([len(members[g]) for g in names])
        smallest = np.flatnonzero(sizes == sizes.min())
        chosen = [names[int(smallest[rng.integers(len(smallest))])]]
    if len(chosen) == len(names):  # keep something to train on
        chosen.pop()
    val = {i for g in chosen for i in members[g]}
    return (index.subset([i for i in index.image_ids if i not in val]),
            index.subset([i for i in index.image_ids if i in val]))
