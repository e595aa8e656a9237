"""The sampler contract, after torchgeo: what a sampler yields, what its length means, the seed.

A sampler turns an `AirbusIndex` into `(image, mask)` pairs: image (H, W, 3) uint8 RGB and
mask (H, W) uint8 0/1, where (H, W) is `output_shape`. It never sees Keras.

Random access keeps parallel loading reproducible: `pair(i, epoch)` depends only on
`(seed, epoch, i)`, never on which worker asks or in which order, so a run with 4 workers sees
exactly the pairs a run with 1 worker sees. `len(sampler)` is the number of pairs per epoch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

import numpy as np

from shiptoolkit.data.airbus import AirbusIndex


class Sampler(ABC):
    """Base class of every sampler.

    Subclasses implement `__len__` and `pair`; `__init__` must accept the index as first
    argument and keyword parameters with defaults (they become the TOML keys of [sampler]).

    Args:
        index: the images to sample from (already split into train or validation).
        seed: seed of every random choice; pairs are a pure function of (seed, epoch, i).
    """

    def __init__(self, index: AirbusIndex, seed: int = 0) -> None:
        if len(index) == 0:
            raise ValueError(f"{type(self).__name__} needs at least one image; the index is empty.")
        self.index = index
        self.seed = int(seed)
        self.epoch = 0

    @property
    @abstractmethod
    def output_shape(self) -> tuple[int, int]:
        """(height, width) of every pair; the model's input size."""

    @abstractmethod
    def __len__(self) -> int:
        """Pairs per epoch."""

    @abstractmethod
    def pair(self, i: int, epoch: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The i-th `(image, mask)` pair of `epoch`: a pure function of (seed, epoch, i)."""

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch `__iter__` yields (each epoch draws new pairs)."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for i in range(len(self)):
            yield self.pair(i, self.epoch)

    def rng(self, epoch: int, *keys: int) -> np.random.Generator:
        """A generator seeded by (seed, epoch, *keys): the only source of randomness."""
        return np.random.default_rng([self.seed, int(epoch), *map(int, keys)])
