"""The seed's sampler: only patches that contain ship pixels."""

from __future__ import annotations

import numpy as np

from shiptoolkit.data.airbus import AirbusIndex
from shiptoolkit.plugins.registry import param_ranges
from shiptoolkit.samplers.patches import PatchSampler


@param_ranges(patches_per_epoch=(0, None))
class ShipPatchSampler(PatchSampler):
    """Patches that all contain ship pixels, cut around ships (the seed's setup; biased to see ships).

    Reproduces the seed project's training data, which taught its model that there is always a
    ship. Use `mixed` to show the model empty sea too.

    Args:
        index: the images to sample from (passed by shiptoolkit).
        patch_size: side of the square patches in pixels (the seed: 128).
        patches_per_epoch: pairs per epoch (0 = one per ship in the index).
        patches_per_image: consecutive patches cut from one image visit (decoded once).
        seed: seed of every random choice.
    """

    def __init__(self, index: AirbusIndex, patch_size: int = 128, patches_per_epoch: int = 0,
                 patches_per_image: int = 4, seed: int = 0) -> None:
        super().__init__(index, patch_size, patches_per_image, seed)
        self.ship_ids = index.ship_ids
        if not self.ship_ids:
            raise ValueError("ship_patches needs images with ships; this index has none.")
        if patches_per_epoch < 0:
            raise ValueError(f"patches_per_epoch must be >= 0. Received: patches_per_epoch={patches_per_epoch}")
        self.length = patches_per_epoch or sum(index[i].n_ships for i in self.ship_ids)

    def __len__(self) -> int:
        return self.length

    def make_plan(self, rng: np.random.Generator) -> np.ndarray:
        groups = -(-self.length // self.patches_per_image)
        return rng.choice(len(self.ship_ids), size=groups, replace=groups > len(self.ship_ids))

    def pair(self, i: int, epoch: int = 0) -> tuple[np.ndarray, np.ndarray]:
        image_id = self.ship_ids[self.plan(epoch)[i // self.patches_per_image]]
        return self.crop(image_id, *self.window_around_ship(self.rng(epoch, i), image_id))
