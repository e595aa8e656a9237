"""Train/validation split by image: no image (and so no patch of it) on both sides."""

from __future__ import annotations

import numpy as np

from shiptoolkit.data.airbus import AirbusIndex


def split_by_image(index: AirbusIndex, val_fraction: float = 0.05, seed: int = 0) -> tuple[AirbusIndex, AirbusIndex]:
    """Split images into (train, validation), stratified by whether an image has ships.

    Both sides keep the dataset's empty fraction; at least one validation image when
    `val_fraction > 0` and there are two images or more. Deterministic for a seed.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1). Received: val_fraction={val_fraction}")
    if val_fraction == 0 or len(index) < 2:
        return index, index.subset([])
    rng = np.random.default_rng([seed, 7])
    val: list[str] = []
    for group in (index.ship_ids, index.empty_ids):
        n = int(round(len(group) * val_fraction))
        val += [group[i] for i in rng.permutation(len(group))[:n]]
    if not val:
        val = [index.image_ids[int(rng.integers(len(index)))]]
    chosen = set(val)
    return index.subset([i for i in index.image_ids if i not in chosen]), index.subset(val)
