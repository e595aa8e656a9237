"""The dataset a config names: a Kaggle folder, or a synthetic one generated once into a cache."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shiptoolkit.config import Config, as_config
from shiptoolkit.data.airbus import IMAGES_DIR, AirbusIndex
from shiptoolkit.data.folds import split_fold
from shiptoolkit.data.groups import find_groups, read_groups_csv, split_by_group
from shiptoolkit.data.split import split_by_image
from shiptoolkit.data.synth import MARKER, generate_dataset
from shiptoolkit.errors import ConfigError, DataError

# The synthetic test set is generated with its own seed: no scene, ship or distractor is shared
# with the training/validation data (the seed's image ids and drawings are a function of it).
TEST_SEED_OFFSET = 1_000_003
# The test split of real data depends on the data alone (not run.seed): every run shares it.
TEST_SPLIT_SEED = 20_181_231


NO_TEST_SET = ("No test set: set data.test_fraction (a part of the data held out), data.test_path (a labelled "
               "folder) or, for synthetic data, data.synthetic_test_images; or score the validation images with "
               "evaluate.images=validation (tuned on them: not a test figure).")


def check_data_config(config: Config, stages: Iterable[str] = ("train",)) -> None:
    """Refuse now what `data_splits` (or a stage) would refuse later, so that no run directory is made
    for it: a data.path / data.test_path that is no folder (naming what a relative path is resolved
    against), two test sets, and `stages` that need a test set the config does not define."""
    d, cv = config.settings.data, config.settings.cv
    for key, value in (("data.path", "" if d.path == "synthetic" else d.path), ("data.test_path", d.test_path)):
        if value and not Path(value).expanduser().is_dir():
            looked = Path(value).expanduser().absolute()
            base = "" if Path(value).expanduser().is_absolute() else (
                f" (a relative {key} is relative to the working directory, {Path.cwd()}, not to the config file)")
            raise DataError(f"{key} = {value!r} is not a folder: looked at {looked}{base}. Point {key} at a folder in "
                            f"the Kaggle layout (an absolute path works from anywhere), or create a synthetic one "
                            f"with `shiptoolkit synth {value}`.")
    _check_test_sources(config)
    needs = [f"{stage} (with {stage}.images=test)" for stage in ("predict", "evaluate")
             if stage in stages and getattr(config.settings, stage).images == "test"]
    has_test = (cv.fold >= 0 or d.test_fraction > 0 or bool(d.test_path)
                or (d.path == "synthetic" and d.synthetic_test_images > 0))
    if needs and not has_test:
        raise ConfigError(f"{NO_TEST_SET} Needed by the stage(s) {', '.join(needs)}; checked before training.")


def _check_test_sources(config: Config) -> None:
    """One test set at most: cv.fold, data.test_fraction and data.test_path exclude one another."""
    d, cv = config.settings.data, config.settings.cv
    if cv.fold >= 0 and (d.test_fraction or d.test_path):
        raise ConfigError(f"cv.fold={cv.fold}: a cross-validation fold is its run's test set; set "
                          "data.test_fraction = 0 and data.test_path = \"\" (one test set).")
    if d.test_path and d.test_fraction:
        raise ConfigError("Set data.test_path or data.test_fraction, not both: one test set.")


@dataclass
class DataSplits:
    """The three roles of the data, never mixed: train (fit), validation (checkpoint choice and
    every tuned number), test (reported only, never a choice). `test` is None when the config
    defines no test set; `test_source` says where it came from."""

    train: AirbusIndex
    validation: AirbusIndex
    test: AirbusIndex | None
    test_source: str
    problems: list = field(default_factory=list)  # every image left out (data.on_error = "skip"), with why

    def role(self, name: str) -> AirbusIndex:
        """The index of a role ("train", "validation" or "test"), with a clear error when it is absent."""
        index = getattr(self, name)
        if name == "test" and index is None:
            raise ConfigError(NO_TEST_SET)
        if not len(index):
            raise ConfigError(f"No {name} images: raise data.val_fraction (validation) or data.test_fraction (test).")
        return index


def synthetic_path(config: Config, test: bool = False) -> Path:
    d = config.settings.data
    images, seed = _synthetic_params(config, test)
    name = f"synthetic-{images}-{seed}-{d.synthetic_empty_fraction}-{d.image_size}"
    if d.synthetic_overlap_fraction and not test:  # only then, so earlier caches keep their names
        name += f"-overlap{d.synthetic_overlap_fraction}"
    return Path(d.cache_dir).expanduser() / name


def _synthetic_params(config: Config, test: bool) -> tuple[int, int]:
    d = config.settings.data
    if test:
        return d.synthetic_test_images, d.synthetic_seed + TEST_SEED_OFFSET
    return d.synthetic_images, d.synthetic_seed


def ensure_synthetic(config: Config, progress: bool = True, test: bool = False) -> Path:
    """Generate the config's synthetic dataset (or, with `test`, its independent test set) unless
    the cache has it; return its folder.

    Generation goes to a temporary folder renamed into place at the end, so an interrupted
    generation is never mistaken for a finished one.
    """
    d = config.settings.data
    path = synthetic_path(config, test)
    images, seed = _synthetic_params(config, test)
    if (path / MARKER).is_file():
        _check_cache(path, images)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=path.parent))
    try:
        generate_dataset(tmp / "data", images=images, seed=seed, empty_fraction=d.synthetic_empty_fraction,
                         size=d.image_size, progress=progress,
                         overlap_fraction=0.0 if test else d.synthetic_overlap_fraction)
        if path.exists():  # a finished twin appeared meanwhile (another process): keep it
            return path
        os.replace(tmp / "data", path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _check_cache(path: Path, images: int) -> None:
    """A finished cache must still hold every image: one folder listing, so a cache that lost files
    (a cleaned /tmp, a disk error) is a clear error instead of a silently smaller dataset."""
    folder = path / IMAGES_DIR
    found = sum(1 for _ in os.scandir(folder)) if folder.is_dir() else 0
    if found != images:
        raise DataError(f"The synthetic dataset cache {str(path)!r} holds {found} of its {images} images (files were "
                        "deleted after it was made). Delete that folder and run again to regenerate it.")


def _shape(config: Config) -> tuple[int, int]:
    return config.settings.data.image_size, config.settings.data.image_size


def _open(config: Config, root: Path) -> AirbusIndex:
    d = config.settings.data
    index = AirbusIndex.from_kaggle(root, d.csv, d.images, d.on_error, _shape(config))
    index.validate(check_images=False)
    return index


def open_dataset(config: Config | str | Path | dict, progress: bool = True) -> AirbusIndex:
    """The index of the config's data (RLEs validated up front; images are checked as they are read).

    `config`: a `Config`, a TOML path or a dict, as `run` takes it."""
    config = as_config(config, "open_dataset")
    d = config.settings.data
    if d.path == "synthetic":
        index = AirbusIndex.from_kaggle(ensure_synthetic(config, progress), shape=_shape(config))
        index.validate(check_images=False)
    else:
        index = _open(config, Path(d.path).expanduser())
    if d.max_images and d.max_images < len(index):
        problems = index.problems
        index = stratified_subset(index, d.max_images, config.settings.run.seed)
        index.problems = list(problems)  # what was skipped is still reported
    return index


def stratified_subset(index: AirbusIndex, n: int, seed: int) -> AirbusIndex:
    """`n` images keeping the empty fraction, chosen by the seed, in index order (all of them if n is 0 or more)."""
    if not n or n >= len(index):
        return index
    rng = np.random.default_rng([seed, 11])
    n_ships = round(n * len(index.ship_ids) / len(index))
    chosen = set()
    for group, k in ((index.ship_ids, n_ships), (index.empty_ids, n - n_ships)):
        chosen.update(group[j] for j in rng.permutation(len(group))[:k])
    return index.subset([i for i in index.image_ids if i in chosen])


def data_splits(config: Config, progress: bool = True) -> DataSplits:
    """Train, validation and test of the config's data.

    The test set comes first, from cv.fold (a cross-validation fold of the data, `data.folds`),
    data.test_path (a labelled folder), data.test_fraction (held out of the data by a fixed seed,
    by group with split = "groups") or, for synthetic data, an independent synthetic dataset;
    validation is then split from the rest with run.seed.
    """
    d, seed = config.settings.data, config.settings.run.seed
    index = open_dataset(config, progress)
    if not len(index):
        skipped = f" ({len(index.problems)} skipped: {index.problems[0].message})" if index.problems else ""
        raise DataError(f"The dataset at data.path={d.path!r} has no usable image{skipped}: its CSV "
                        f"{d.csv!r} lists none (a header only?). Point data.path at a folder in the Kaggle "
                        "layout, or use data.path = \"synthetic\".")
    test, test_source = None, ""
    groups = _groups(config, index, progress) if d.split == "groups" else None
    cv = config.settings.cv
    _check_test_sources(config)
    if cv.fold >= 0:
        index, test = split_fold(index, cv.fold, cv.folds, cv.seed, groups)
        test_source = f"cross-validation fold {cv.fold} of {cv.folds} (cv.seed={cv.seed}) of {d.path}"
    if d.test_fraction:
        index, test = _split(index, groups, d.test_fraction, TEST_SPLIT_SEED)
        test_source = f"data.test_fraction={d.test_fraction} of {d.path}"
    if d.test_path:
        test = _open(config, Path(d.test_path).expanduser())
        test_source = f"data.test_path={d.test_path}"
    elif test is None and d.path == "synthetic" and d.synthetic_test_images and cv.fold < 0:
        test = AirbusIndex.from_kaggle(ensure_synthetic(config, progress, test=True), shape=_shape(config))
        test_source = (f"independent synthetic set ({d.synthetic_test_images} images, seed "
                       f"{d.synthetic_seed + TEST_SEED_OFFSET})")
    train, validation = _split(index, groups, d.val_fraction, seed)
    if not len(train):
        raise DataError(f"No training images are left after holding out data.test_fraction={d.test_fraction} and "
                        f"data.val_fraction={d.val_fraction} of {len(index)} image(s): lower them, or add images.")
    problems = list(index.problems) + (list(test.problems) if test is not None else [])
    return DataSplits(train, validation, test, test_source, problems)


def train_val_indexes(config: Config, progress: bool = True) -> tuple[AirbusIndex, AirbusIndex]:
    """(train, validation) of the config's data: what `data_splits` gives, test set left out."""
    splits = data_splits(config, progress)
    return splits.train, splits.validation


def _split(index: AirbusIndex, groups: dict[str, str] | None, fraction: float, seed: int):
    if groups is None:
        return split_by_image(index, fraction, seed)
    return split_by_group(index, {i: groups[i] for i in index.image_ids}, fraction, seed)


def _groups(config: Config, index: AirbusIndex, progress: bool) -> dict[str, str]:
    d = config.settings.data
    if d.groups_csv:
        root = synthetic_path(config) if d.path == "synthetic" else Path(d.path).expanduser()
        return read_groups_csv(root / d.groups_csv, index)
    return find_groups(index, progress=progress, workers=config.settings.train.workers, cache=group_cache_path(config))


def group_cache_path(config: Config) -> Path | None:
    """The tile-hash cache file data.group_cache names (relative to data.cache_dir), None when it is off."""
    d = config.settings.data
    if not d.group_cache:
        return None
    return Path(d.cache_dir).expanduser() / Path(d.group_cache).expanduser()  # an absolute group_cache stays as is
