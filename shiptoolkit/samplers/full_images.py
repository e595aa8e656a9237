"""Whole images, at full size or resized, with control over how many empty images an epoch sees."""

from __future__ import annotations

import threading

import numpy as np

from shiptoolkit.data.airbus import AirbusIndex
from shiptoolkit.plugins.registry import Range, param_ranges
from shiptoolkit.samplers.base import Sampler
from shiptoolkit.samplers.paste import ShipPaster

MAX_PASTED = 3  # ships pasted onto one image: 1 to 3 (most real ship images hold one to three ships)


# size 0 = full size; negative empty_fraction = the data's natural fraction.
@param_ranges(size=Range(8, None, also=(0,)), empty_fraction=Range(None, 1.0, high_open=True),
              cache_images=(0, None), paste_ships=(0.0, 1.0))
class FullImageSampler(Sampler):
    """Whole images (optionally resized), with `empty_fraction` to down-sample the ~78% empty ones.

    Training on full images shows the model the big picture (coasts, clouds, wakes) that
    patches cut away. Resizing loses small ships: at `size = 256` a 100 px ship keeps ~11 px.

    Args:
        index: the images to sample from (passed by shiptoolkit).
        size: output height and width (0 = the images' own size); images are resized with area
            interpolation, masks with nearest neighbour.
        empty_fraction: fraction of each epoch's images without ships; every ship image is used
            once per epoch and empty images are drawn anew each epoch to fill the rest
            (negative = keep the data's natural fraction: every image once).
        seed: seed of every random choice.
        cache_images: keep up to this many resized pairs in memory (0 = off): with `size` set,
            decoding a 768 px JPEG costs more than training on its small copy, and balanced
            epochs show every ship image again each epoch.
        paste_ships: fraction of each epoch's ship images replaced by an empty image with 1 to 3
            real ships (cut from the ship images along their masks) pasted at random places: the same
            ships on open sea, land and cloud (see `shiptoolkit.samplers.paste`). Pasted images are
            made anew each time, not cached.
    """

    def __init__(self, index: AirbusIndex, size: int = 0, empty_fraction: float = -1.0, seed: int = 0,
                 cache_images: int = 0, paste_ships: float = 0.0) -> None:
        super().__init__(index, seed)
        if size < 0 or (size and size < 8):
            raise ValueError(f"size must be 0 (full size) or >= 8. Received: size={size}")
        if empty_fraction >= 1.0:
            raise ValueError(f"empty_fraction must be < 1 (negative = natural). Received: {empty_fraction=}")
        if not 0.0 <= paste_ships <= 1.0:
            raise ValueError(f"paste_ships must be in [0, 1]. Received: paste_ships={paste_ships}")
        self.size = size
        self.empty_fraction = empty_fraction
        self.ship_ids, self.empty_ids = index.ship_ids, index.empty_ids
        if paste_ships > 0 and not (self.ship_ids and self.empty_ids):
            raise ValueError(f"paste_ships={paste_ships} needs images with ships and images without; this index has "
                             f"{len(self.ship_ids)} and {len(self.empty_ids)}. Set paste_ships = 0.")
        self.paste_ships = paste_ships
        self.paster = ShipPaster(index, self.read) if paste_ships > 0 else None
        if empty_fraction < 0 or not self.ship_ids:
            self.n_empty = len(self.empty_ids)
        else:
            self.n_empty = min(len(self.empty_ids), round(len(self.ship_ids) * empty_fraction / (1 - empty_fraction)))
        self._order: tuple[int, list[str]] | None = None
        self.cache_images = cache_images if size else 0
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # insertion order = eviction order
        self._lock = threading.Lock()

    @property
    def output_shape(self) -> tuple[int, int]:
        return (self.size, self.size) if self.size else tuple(self.index.shape)

    def __len__(self) -> int:
        return len(self.ship_ids) + self.n_empty

    def order(self, epoch: int) -> list[str]:
        """The epoch's images: all ship images plus `n_empty` empty ones drawn for this epoch, shuffled."""
        if self._order is None or self._order[0] != epoch:
            rng = self.rng(epoch, 2**31)
            empties = [self.empty_ids[j] for j in rng.permutation(len(self.empty_ids))[: self.n_empty]]
            ids = self.ship_ids + empties
            self._order = (epoch, [ids[j] for j in rng.permutation(len(ids))])
        return self._order[1]

    def read(self, image_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(image, mask) at the images' own size."""
        return self.index.read_image(image_id), self.index.mask(image_id)

    def resized(self, image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.size and (self.size, self.size) != image.shape[:2]:
            import cv2

            image = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask, (self.size, self.size), interpolation=cv2.INTER_NEAREST)
        return image, mask

    def pair(self, i: int, epoch: int = 0) -> tuple[np.ndarray, np.ndarray]:
        image_id = self.order(epoch)[i]
        if self.paster is not None and self.index[image_id].n_ships:
            rng = self.rng(epoch, i)
            if rng.random() < self.paste_ships:  # this ship image's turn is taken by pasted ships
                image, mask = self.read(self.empty_ids[int(rng.integers(len(self.empty_ids)))])
                ships = 1 + int(rng.integers(MAX_PASTED))
                image, mask, _ = self.paster.paste_anywhere(rng, image.copy(), mask.copy(), ships)
                return self.resized(image, mask)
        cached = self._cache.get(image_id)
        if cached is not None:
            return cached[0].copy(), cached[1].copy()  # augmentation must not alter the cache
        image, mask = self.resized(*self.read(image_id))
        if self.cache_images:
            with self._lock:
                if len(self._cache) >= self.cache_images:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[image_id] = (image, mask)
            return image.copy(), mask.copy()
        return image, mask
