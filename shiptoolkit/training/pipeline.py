"""Batches for `model.fit`: a `keras.utils.PyDataset` over a sampler, with worker threads.

Why PyDataset with threads: JPEG decoding (OpenCV), RLE painting (numpy) and albumentations
release the GIL, so threads parallelise without pickling samplers to processes, and the
batch for step b is a pure function of (seed, epoch, b): reproducible with any worker count.
Samplers already draw a new random order each epoch, so batches keep the sampler's order
(which also keeps a sampler's image cache effective).
"""

from __future__ import annotations

import math
import threading
import warnings

import keras
import numpy as np

from shiptoolkit.errors import DataError
from shiptoolkit.samplers.base import Sampler
from shiptoolkit.training.augment import Augmenter

SKIP_TRIES = 10


class SamplerBatches(keras.utils.PyDataset):
    """(x float32 (B, H, W, 3) in 0..255, y float32 (B, H, W, 1)) batches from a sampler.

    Args:
        sampler: the pairs.
        batch_size: pairs per batch.
        augmenter: applied to every pair (training only), or None.
        steps: batches per epoch (None = len(sampler) / batch_size, rounded up); items past the
            sampler's length wrap around.
        workers: loading threads.
        on_error: "skip" replaces an unreadable image's pair by the next item (counted in
            `skipped`); "raise" stops.
        epoch: the epoch the first batches belong to (set when resuming).
        fixed_epoch: always draw this epoch's pairs (validation: the same pairs every epoch).
        seam_channel: y gets a second channel, the seams between touching ships (mask value 2,
            see `AirbusIndex.seams`).
    """

    def __init__(self, sampler: Sampler, batch_size: int, augmenter: Augmenter | None = None, steps: int | None = None,
                 workers: int = 2, on_error: str = "raise", epoch: int = 0, fixed_epoch: bool = False,
                 seam_channel: bool = False) -> None:
        super().__init__(workers=max(1, workers), use_multiprocessing=False, max_queue_size=max(4, 2 * workers))
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
        self.sampler, self.batch_size, self.augmenter = sampler, batch_size, augmenter
        self.steps = steps or math.ceil(len(sampler) / batch_size)
        self.on_error, self.epoch, self.fixed_epoch, self.seam_channel = on_error, epoch, fixed_epoch, seam_channel
        self.skipped: list[str] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.steps

    def _pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.sampler)
        for attempt in range(SKIP_TRIES):
            try:
                image, mask = self.sampler.pair((i + attempt) % n, self.epoch)
                break
            except DataError as exc:
                if self.on_error != "skip":
                    raise
                with self._lock:
                    self.skipped.append(str(exc))
        else:
            raise DataError(f"{SKIP_TRIES} consecutive items could not be read; last: {self.skipped[-1]}")
        if self.augmenter is not None:
            image, mask = self.augmenter(image, mask, self.epoch, i)
        return image, mask

    def __getitem__(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= b < self.steps:
            raise IndexError(f"batch {b} out of range (0..{self.steps - 1})")
        pairs = [self._pair(b * self.batch_size + k) for k in range(self.batch_size)]
        x = np.stack([p[0] for p in pairs]).astype("float32")
        masks = np.stack([p[1] for p in pairs])
        y = (masks > 0)[..., None]
        if self.seam_channel:
            y = np.concatenate([y, (masks == 2)[..., None]], axis=-1)
        return x, y.astype("float32")

    def on_epoch_end(self) -> None:
        if not self.fixed_epoch:
            self.epoch += 1
        if self.skipped:
            warnings.warn(f"{len(self.skipped)} unreadable item(s) skipped so far; first: {self.skipped[0]}",
                          stacklevel=2)


class ShipLabelBatches(SamplerBatches):
    """(x float32 (B, H, W, 3), has-ship float32 (B, 1)) batches: image-level labels for classifiers."""

    def __getitem__(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = super().__getitem__(b)
        return x, y.reshape(len(y), -1).max(axis=1, keepdims=True)
