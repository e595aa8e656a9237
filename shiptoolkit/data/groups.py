"""Groups of overlapping images, and a train/validation split that keeps each group on one side.

The Airbus training images are 768x768 crops of larger scenes, cut at offsets that are multiples
of 256 px, so one 256 px tile often appears in several images (one team counted ~58k groups).
Split by image, the same sea and the same ships land on both sides and validation scores are
flattered. Here every 256 px tile (a 3x3 grid) gets a perceptual hash; images sharing an
informative tile are joined (union-find), and `split_by_group` moves whole groups.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from shiptoolkit.data.airbus import AirbusIndex
from shiptoolkit.errors import DataError

HASH_SIDE = 16  # thumbnail side: 256 bits per tile
# Tiles whose thumbnail varies less than this (grey levels) are plain sea or cloud: they would
# join unrelated images, so they do not count.
MIN_TILE_STD = 2.0


def tile_hashes(image: np.ndarray, grid: int = 3) -> list[bytes | None]:
    """A perceptual hash per tile of a grid x grid split (row-major), None for featureless tiles.

    The hash is the sign of each pixel of a 16x16 grey thumbnail against the thumbnail's mean:
    averaging over 16x16 px areas absorbs JPEG noise, so the same tile cut from two files gives
    the same bits.
    """
    import cv2

    gray = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2GRAY)
    th, tw = gray.shape[0] // grid, gray.shape[1] // grid
    out: list[bytes | None] = []
    for r in range(grid):
        for c in range(grid):
            tile = gray[r * th:(r + 1) * th, c * tw:(c + 1) * tw]
            thumb = cv2.resize(tile, (HASH_SIDE, HASH_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)
            out.append(None if thumb.std() < MIN_TILE_STD else np.packbits(thumb > thumb.mean()).tobytes())
    return out


class _UnionFind:
    def __init__(self, items: list[str]) -> None:
        self.parent = {i: i for i in items}

    def find(self, i: str) -> str:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]  # path halving
            i = self.parent[i]
        return i

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # the smallest id names the group


def find_groups(index: AirbusIndex, grid: int = 3, progress: bool = True, workers: int = 2) -> dict[str, str]:
    """image id -> group id (the group's smallest image id): images sharing a tile are one group.

    Images are read in a streaming thread pool; only their hashes are kept.
    """
    from tqdm import tqdm

    ids = index.image_ids
    groups = _UnionFind(ids)
    first_seen: dict[bytes, str] = {}
    with ThreadPoolExecutor(max(1, workers)) as pool:
        hashes = pool.map(lambda i: tile_hashes(index.read_image(i), grid), ids)
        for image_id, tiles in tqdm(zip(ids, hashes, strict=True), total=len(ids), desc="group images",
                                    unit="img", disable=not progress):
            for h in tiles:
                if h is not None:
                    groups.union(image_id, first_seen.setdefault(h, image_id))
    return {i: groups.find(i) for i in ids}


def read_groups_csv(path: str | Path, index: AirbusIndex) -> dict[str, str]:
    """image id -> group from a CSV with columns `ImageId,group`; every image of `index` must be there."""
    from shiptoolkit.data.tables import read_csv_columns

    frame = read_csv_columns(path, ("ImageId", "group"), "Groups (data.groups_csv)")
    groups = dict(zip(frame["ImageId"], frame["group"], strict=True))
    absent = [i for i in index.image_ids if i not in groups]
    if absent:
        raise DataError(f"Groups CSV {str(path)!r} has no group for {len(absent)} image(s) of the dataset, "
                        f"e.g. {absent[:3]}. Give every image a group (its own id for a lone image).")
    return {i: groups[i] for i in index.image_ids}


def split_by_group(index: AirbusIndex, groups: dict[str, str], val_fraction: float = 0.05,
                   seed: int = 0) -> tuple[AirbusIndex, AirbusIndex]:
    """Split into (train, validation) moving whole groups, stratified by whether a group has ships.

    Each stratum sends groups, in an order drawn from the seed, to validation until it holds
    about `val_fraction` of the stratum's images. At least one group goes to validation when
    `val_fraction > 0` and there are two groups or more.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1). Received: val_fraction={val_fraction}")
    members: dict[str, list[str]] = defaultdict(list)
    for image_id in index.image_ids:
        members[groups[image_id]].append(image_id)
    if val_fraction == 0 or len(members) < 2:
        return index, index.subset([])
    rng = np.random.default_rng([seed, 13])
    strata: dict[bool, list[str]] = {True: [], False: []}
    for g in sorted(members):
        strata[any(index[i].has_ships for i in members[g])].append(g)
    val: list[str] = []
    for stratum in strata.values():
        target = round(sum(len(members[g]) for g in stratum) * val_fraction)
        taken = 0
        for k in rng.permutation(len(stratum)):
            if taken >= target:
                break
            group = members[stratum[k]]
            if taken and taken + len(group) - target > target - taken:  # overshoots more than it helps
                continue
            val += group
            taken += len(group)
    if not val:
        val = members[sorted(members)[int(rng.integers(len(members)))]]
    chosen = set(val)
    return index.subset([i for i in index.image_ids if i not in chosen]), index.subset(
        [i for i in index.image_ids if i in chosen])
