"""Patch machinery shared by the patch samplers: image cache, ship lookup, windows."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from shiptoolkit.data.airbus import AirbusIndex
from shiptoolkit.data.rle import parse_rle, runs_to_pixels
from shiptoolkit.plugins.registry import param_ranges
from shiptoolkit.samplers.base import Sampler


# Checked at config load; the upper bound of patch_size is data.image_size (a cross-field check
# in config.py). Subclasses inherit these ranges.
@param_ranges(patch_size=(8, None), patches_per_image=(1, None))
class PatchSampler(Sampler):
    """Base of samplers that cut square patches; keeps a small LRU cache of decoded images.

    Consecutive items of an epoch come from the same image (`patches_per_image` of them), so
    one JPG decode serves several patches; the cache is shared by the loading threads.

    Args:
        index: the images to sample from.
        patch_size: side of the square patches in pixels.
        patches_per_image: consecutive patches cut from one image visit.
        seed: seed of every random choice.
    """

    cache_size = 16

    def __init__(self, index: AirbusIndex, patch_size: int = 128, patches_per_image: int = 4, seed: int = 0) -> None:
        super().__init__(index, seed)
        side = min(index.shape)
        if not 8 <= patch_size <= side:
            raise ValueError(f"patch_size must be between 8 and the image size {side}. "
                             f"Received: patch_size={patch_size}")
        if patches_per_image < 1:
            raise ValueError(f"patches_per_image must be >= 1. Received: patches_per_image={patches_per_image}")
        self.patch_size = patch_size
        self.patches_per_image = patches_per_image
        self._cache: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()
        self._plans: dict[int, object] = {}

    @property
    def output_shape(self) -> tuple[int, int]:
        return (self.patch_size, self.patch_size)

    def load(self, image_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(image, mask) of an image, decoded once and kept while recently used."""
        with self._lock:
            if image_id in self._cache:
                self._cache.move_to_end(image_id)
                return self._cache[image_id]
        pair = (self.index.read_image(image_id), self.index.mask(image_id))
        with self._lock:
            self._cache[image_id] = pair
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return pair

    def plan(self, epoch: int):
        """Per-epoch plan (computed once per epoch, shared by threads): see subclasses' `make_plan`."""
        with self._lock:
            if epoch not in self._plans:
                self._plans = {epoch: self.make_plan(self.rng(epoch, 2**31))}  # keep only the current epoch
            return self._plans[epoch]

    def make_plan(self, rng: np.random.Generator):
        raise NotImplementedError

    def crop(self, image_id: str, top: int, left: int) -> tuple[np.ndarray, np.ndarray]:
        image, mask = self.load(image_id)
        window = (slice(top, top + self.patch_size), slice(left, left + self.patch_size))
        return image[window].copy(), mask[window].copy()

    def window_around_ship(self, rng: np.random.Generator, image_id: str) -> tuple[int, int]:
        """Top-left of a window that contains a random pixel of a random ship of the image.

        Each ship of the image is equally likely, whatever its size, so small ships are not lost.
        """
        rles = self.index[image_id].rles
        starts, lengths = parse_rle(rles[int(rng.integers(len(rles)))], self.index.shape)
        pixels = runs_to_pixels(starts, lengths)
        pixel = int(pixels[rng.integers(pixels.size)])
        height = self.index.shape[0]
        return self.window_containing(rng, pixel % height, pixel // height)

    def window_containing(self, rng: np.random.Generator, row: int, col: int) -> tuple[int, int]:
        """Top-left of a random window that contains pixel (row, col), the pixel anywhere in it."""
        height, width = self.index.shape
        p = self.patch_size
        top = int(rng.integers(max(0, row - p + 1), min(row, height - p) + 1))
        left = int(rng.integers(max(0, col - p + 1), min(col, width - p) + 1))
        return top, left

    def random_window(self, rng: np.random.Generator) -> tuple[int, int]:
        height, width = self.index.shape
        return int(rng.integers(0, height - self.patch_size + 1)), int(rng.integers(0, width - self.patch_size + 1))
