"""Augmentation with albumentations, configured in TOML, deterministic per item.

    [augment]
    transforms = [{name = "HorizontalFlip", p = 0.5}, {name = "RandomBrightnessContrast", brightness_limit = 0.2}]

Each item is augmented with generators seeded by (seed, epoch, i), so an augmented epoch is
the same whatever the number of loading threads. Validation data is never augmented.
"""

from __future__ import annotations

import random
import threading
from typing import Any

import numpy as np

from shiptoolkit.config.transforms import build_transform as _build_one  # the same checks as config loading
from shiptoolkit.config.transforms import transform_classes as _transform_classes
from shiptoolkit.errors import ConfigError


class Augmenter:
    """Applies a list of albumentations transforms to (image, mask) pairs, reproducibly.

    Args:
        transforms: `[{name = "HorizontalFlip", p = 0.5}, ...]` as in the TOML file.
        seed: base seed; item `key` values are mixed in.
    """

    def __init__(self, transforms: list[dict[str, Any]], seed: int = 0) -> None:
        classes = _transform_classes()
        self.specs = list(transforms)
        self._check = [_build_one(s, i, classes) for i, s in enumerate(self.specs)]  # fail early
        self.seed = seed
        self._local = threading.local()  # a Compose per thread: its random state is mutable

    def _compose(self):
        compose = getattr(self._local, "compose", None)
        if compose is None:
            import albumentations as A

            classes = _transform_classes()
            compose = A.Compose([_build_one(s, i, classes) for i, s in enumerate(self.specs)])
            self._local.compose = compose
        return compose

    def __call__(self, image: np.ndarray, mask: np.ndarray, *key: int) -> tuple[np.ndarray, np.ndarray]:
        """Augment one pair; the result is a pure function of (seed, *key, inputs)."""
        rng = np.random.default_rng([self.seed, *key])
        compose = self._compose()
        compose.set_random_state(rng, random.Random(int(rng.integers(2**63))))
        out = compose(image=image, mask=mask)
        if out["image"].shape[:2] != image.shape[:2]:
            raise ConfigError(f"augment.transforms change the size {image.shape[:2]} -> {out['image'].shape[:2]}; "
                              "use size-preserving transforms (samplers set the size).")
        return out["image"], out["mask"]


def build_augment(transforms: list[dict[str, Any]], seed: int = 0) -> Augmenter | None:
    """An `Augmenter` for the TOML list, or None when the list is empty."""
    return Augmenter(transforms, seed) if transforms else None
