"""k-fold cross-validation folds: which images are each fold's test set.

A fold follows from a seeded SHA-256 hash of the ImageId (or, with `data.split = "groups"`, of
the group: overlapping crops never sit in two folds) and from the ships, never from the order
of the CSV or from `run.seed`: every fold run of a cross-validation, resumed or re-run on
another machine, finds the same folds. Within each stratum (images without ships, with one
ship, with several) the units are taken in hash order and each goes to the fold that holds the
fewest images of that stratum so far, so every fold keeps the data's mix of empty and ship images.
"""

from __future__ import annotations

import hashlib

from shiptoolkit.data.airbus import AirbusIndex


def _hash(name: str, seed: int) -> int:
    return int(hashlib.sha256(f"{name}\0{seed}".encode()).hexdigest(), 16)


def _stratum(ships: int) -> int:
    return min(ships, 2)  # no ship, one ship, several ships


def assign_folds(index: AirbusIndex, folds: int, seed: int = 0, groups: dict[str, str] | None = None) -> dict[str, int]:
    """{image id: its fold in [0, folds)}, stratified by ships, whole groups in one fold.

    Args:
        index: the dataset.
        folds: the number of folds (k >= 2).
        seed: `cv.seed`: another seed, another assignment.
        groups: image id -> group id (`data.groups`), or None to assign images one by one.
    """
    if folds < 2:
        raise ValueError(f"folds must be >= 2. Received: folds={folds}")
    members: dict[str, list[str]] = {}
    for image_id in index.image_ids:
        members.setdefault(groups[image_id] if groups is not None else image_id, []).append(image_id)
    strata: dict[int, list[str]] = {}
    for unit, images in members.items():
        strata.setdefault(_stratum(sum(index[i].n_ships for i in images)), []).append(unit)
    fold_of: dict[str, int] = {}
    for stratum in sorted(strata):
        filled = [0] * folds
        for unit in sorted(strata[stratum], key=lambda u: _hash(u, seed)):
            fold = min(range(folds), key=lambda f: (filled[f], (f - _hash(unit, seed)) % folds))
            filled[fold] += len(members[unit])
            fold_of.update((i, fold) for i in members[unit])
    return fold_of


def split_fold(index: AirbusIndex, fold: int, folds: int, seed: int = 0,
               groups: dict[str, str] | None = None) -> tuple[AirbusIndex, AirbusIndex]:
    """(the other folds, fold `fold`): the fold is a cross-validation run's test set."""
    if not 0 <= fold < folds:
        raise ValueError(f"fold must be in [0, {folds}). Received: fold={fold}")
    fold_of = assign_folds(index, folds, seed, groups)
    return (index.subset([i for i in index.image_ids if fold_of[i] != fold]),
            index.subset([i for i in index.image_ids if fold_of[i] == fold]))
