"""The dataset a config names: a Kaggle folder, or a synthetic one generated once into a cache."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from shiptoolkit.config import Config
from shiptoolkit.data.airbus import AirbusIndex
from shiptoolkit.data.split import split_by_image
from shiptoolkit.data.synth import MARKER, generate_dataset


def synthetic_path(config: Config) -> Path:
    d = config["data"]
    name = f"synthetic-{d['synthetic_images']}-{d['synthetic_seed']}-{d['synthetic_empty_fraction']}-{d['image_size']}"
    if d["synthetic_overlap_fraction"]:  # only then, so earlier caches keep their names
        name += f"-overlap{d['synthetic_overlap_fraction']}"
    return Path(d["cache_dir"]).expanduser() / name


def ensure_synthetic(config: Config, progress: bool = True) -> Path:
    """Generate the config's synthetic dataset unless the cache has it; return its folder.

    Generation goes to a temporary folder renamed into place at the end, so an interrupted
    generation is never mistaken for a finished one.
    """
    d = config["data"]
    path = synthetic_path(config)
    if (path / MARKER).is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=path.parent))
    try:
        generate_dataset(tmp / "data", images=d["synthetic_images"], seed=d["synthetic_seed"],
                         empty_fraction=d["synthetic_empty_fraction"], size=d["image_size"], progress=progress,
                         overlap_fraction=d["synthetic_overlap_fraction"])
        if path.exists():  # a finished twin appeared meanwhile (another process): keep it
            return path
        os.replace(tmp / "data", path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def open_dataset(config: Config, progress: bool = True) -> AirbusIndex:
    """The index of the config's data (RLEs validated up front; images are checked as they are read)."""
    d = config["data"]
    shape = (d["image_size"], d["image_size"])
    if d["path"] == "synthetic":
        index = AirbusIndex.from_kaggle(ensure_synthetic(config, progress), shape=shape)
    else:
        index = AirbusIndex.from_kaggle(Path(d["path"]).expanduser(), d["csv"], d["images"], d["on_error"], shape)
    index.validate(check_images=False)
    if d["max_images"] and d["max_images"] < len(index):
        index = _stratified_subset(index, d["max_images"], config["run"]["seed"])
    return index


def _stratified_subset(index: AirbusIndex, n: int, seed: int) -> AirbusIndex:
    """`n` images keeping the empty fraction, chosen by the seed, in index order."""
    rng = np.random.default_rng([seed, 11])
    n_ships = round(n * len(index.ship_ids) / len(index))
    chosen = set()
    for group, k in ((index.ship_ids, n_ships), (index.empty_ids, n - n_ships)):
        chosen.update(group[j] for j in rng.permutation(len(group))[:k])
    return index.subset([i for i in index.image_ids if i in chosen])


def train_val_indexes(config: Config, progress: bool = True) -> tuple[AirbusIndex, AirbusIndex]:
    """(train, validation) of the config's data with run.seed: by image, or by groups of overlapping images."""
    d, seed = config["data"], config["run"]["seed"]
    index = open_dataset(config, progress)
    if d["split"] == "image":
        return split_by_image(index, d["val_fraction"], seed)
    from shiptoolkit.data.groups import find_groups, read_groups_csv, split_by_group

    if d["groups_csv"]:
        root = synthetic_path(config) if d["path"] == "synthetic" else Path(d["path"]).expanduser()
        groups = read_groups_csv(root / d["groups_csv"], index)
    else:
        groups = find_groups(index, progress=progress, workers=config["train"]["workers"])
    return split_by_group(index, groups, d["val_fraction"], seed)
