"""Ship patches mixed with empty sea patches in a controlled ratio: the seed's lesson."""

from __future__ import annotations

import numpy as np

from shiptoolkit.data.airbus import AirbusIndex
from shiptoolkit.plugins.registry import param_ranges
from shiptoolkit.samplers.paste import ShipPaster
from shiptoolkit.samplers.patches import PatchSampler

EMPTY_TRIES = 12
EDGE_SCALE = 8  # edge strength is measured on the image shrunk 8x: a coastline, not the texture of the land


def edge_strength(image: np.ndarray) -> np.ndarray:
    """Per cell of the grey image shrunk EDGE_SCALE times: (gradient magnitude - its median)^2, 0 below it.

    Open sea is near its median everywhere; coastlines, piers, cloud rims and ships stand out, and
    squaring lets the strongest of them (a coastline more than a textured land) take most draws.
    """
    import cv2

    height, width = image.shape[:2]
    size = (max(1, width // EDGE_SCALE), max(1, height // EDGE_SCALE))
    shrunk = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    small = shrunk.astype(np.float32).mean(axis=-1)  # shrunk first: ~0.7 ms a 768 px image, not 11
    magnitude = cv2.magnitude(cv2.Sobel(small, cv2.CV_32F, 1, 0), cv2.Sobel(small, cv2.CV_32F, 0, 1))
    return np.maximum(magnitude - np.median(magnitude), 0.0) ** 2


@param_ranges(ship_fraction=(0.0, 1.0), empty_from_ship_images=(0.0, 1.0), empty_on_edges=(0.0, 1.0),
              paste_ships=(0.0, 1.0), patches_per_epoch=(0, None))
class MixedSampler(PatchSampler):
    """A `ship_fraction` of patches around ships; the rest empty sea, from empty images and ship-free areas.

    The seed project trained on ship patches only and saw ships everywhere. Empty patches come
    both from images without ships and from the ship-free parts of ship images, so the model
    also learns the sea right next to ships. The ship/empty split of each epoch is exact (up to
    rounding to whole groups of `patches_per_image`).

    Args:
        index: the images to sample from (passed by shiptoolkit).
        patch_size: side of the square patches in pixels.
        ship_fraction: fraction of patches that contain ship pixels, in [0, 1].
        empty_from_ship_images: fraction of the empty patches cut from ship-free areas of ship
            images (the rest come from images without ships).
        empty_on_edges: fraction of the empty patches placed on strong image edges (a point drawn
            with probability growing with the edge strength, see `edge_strength`) instead of
            anywhere: hard negatives. Coastlines and piers cover ~1% of the sea a uniform draw
            sees, and an untrained eye for them is what fills a coast with "ships".
        paste_ships: fraction of the ship patches made by pasting a real ship (cut from a training
            image along its mask) onto an empty training image at a random place, the patch cut
            around it: the same ships on open sea, land and cloud, so that "harbour => ship" cannot be
            learnt (real ship images are mostly harbours, real empty ones mostly open sea). Needs
            images without ships; see `shiptoolkit.samplers.paste`.
        patches_per_epoch: pairs per epoch (0 = the number of ships / ship_fraction).
        patches_per_image: consecutive patches cut from one image visit (decoded once).
        seed: seed of every random choice.
    """

    def __init__(self, index: AirbusIndex, patch_size: int = 128, ship_fraction: float = 0.5,
                 empty_from_ship_images: float = 0.3, empty_on_edges: float = 0.0, paste_ships: float = 0.0,
                 patches_per_epoch: int = 0, patches_per_image: int = 4, seed: int = 0) -> None:
        super().__init__(index, patch_size, patches_per_image, seed)
        if not 0.0 <= ship_fraction <= 1.0:
            raise ValueError(f"ship_fraction must be in [0, 1]. Received: ship_fraction={ship_fraction}")
        if not 0.0 <= empty_from_ship_images <= 1.0:
            raise ValueError("empty_from_ship_images must be in [0, 1]. "
                             f"Received: empty_from_ship_images={empty_from_ship_images}")
        if not 0.0 <= empty_on_edges <= 1.0:
            raise ValueError(f"empty_on_edges must be in [0, 1]. Received: empty_on_edges={empty_on_edges}")
        if not 0.0 <= paste_ships <= 1.0:
            raise ValueError(f"paste_ships must be in [0, 1]. Received: paste_ships={paste_ships}")
        if patches_per_epoch < 0:
            raise ValueError(f"patches_per_epoch must be >= 0. Received: patches_per_epoch={patches_per_epoch}")
        self.ship_ids, self.empty_ids = index.ship_ids, index.empty_ids
        if ship_fraction > 0 and not self.ship_ids:
            raise ValueError(f"ship_fraction={ship_fraction} needs images with ships; this index has none.")
        if ship_fraction < 1 and not self.empty_ids and not self.ship_ids:
            raise ValueError("mixed needs images to cut empty patches from.")
        self.ship_fraction, self.empty_from_ship_images = ship_fraction, empty_from_ship_images
        self.empty_on_edges = empty_on_edges
        if paste_ships > 0 and not self.empty_ids:
            raise ValueError(f"paste_ships={paste_ships} pastes ships onto images without ships; this index has none. "
                             "Set sampler.paste_ships = 0.")
        self.paste_ships = paste_ships
        self.paster = ShipPaster(index, self.load) if paste_ships > 0 and self.ship_ids else None
        ships = sum(index[i].n_ships for i in self.ship_ids)
        default = round(ships / ship_fraction) if ship_fraction > 0 else len(index)
        self.length = patches_per_epoch or max(1, default)

    def __len__(self) -> int:
        return self.length

    def make_plan(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Per group: kind (0 ship, 1 empty from a ship image, 2 empty image) and the image's position."""
        groups = -(-self.length // self.patches_per_image)
        n_ship = round(groups * self.ship_fraction)
        n_from_ships = round((groups - n_ship) * self.empty_from_ship_images) if self.ship_ids else 0
        if not self.empty_ids:
            n_from_ships = groups - n_ship
        kinds = np.array([0] * n_ship + [1] * n_from_ships + [2] * (groups - n_ship - n_from_ships))
        kinds = kinds[rng.permutation(groups)]
        pool = {0: len(self.ship_ids), 1: len(self.ship_ids), 2: len(self.empty_ids)}
        images = np.array([rng.integers(pool[k]) if pool[k] else 0 for k in kinds])
        return kinds, images

    def pair(self, i: int, epoch: int = 0) -> tuple[np.ndarray, np.ndarray]:
        kinds, images = self.plan(epoch)
        group = i // self.patches_per_image
        kind, position = int(kinds[group]), int(images[group])
        rng = self.rng(epoch, i)
        if kind == 0:
            if self.paster is not None and rng.random() < self.paste_ships:
                return self.pasted_ship(rng)
            image_id = self.ship_ids[position]
            return self.crop(image_id, *self.window_around_ship(rng, image_id))
        on_edges = self.empty_on_edges > 0 and rng.random() < self.empty_on_edges
        if kind == 1:
            image_id = self.ship_ids[position]
            image, mask = self.load(image_id)
            p = self.patch_size
            edges = edge_strength(image) if on_edges else None
            for _ in range(EMPTY_TRIES):  # a ship-free window of a ship image
                top, left = self.edge_window(rng, edges) if on_edges else self.random_window(rng)
                if not mask[top:top + p, left:left + p].any():
                    return self.crop(image_id, top, left)
            if not self.empty_ids:  # crowded image and nowhere else to go: the emptiest window seen
                return self.crop(image_id, top, left)
            position = int(rng.integers(len(self.empty_ids)))  # crowded image: an empty image instead
        image_id = self.empty_ids[position]
        if on_edges:
            return self.crop(image_id, *self.edge_window(rng, edge_strength(self.load(image_id)[0])))
        return self.crop(image_id, *self.random_window(rng))

    def pasted_ship(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A window around a real ship pasted onto a random empty image (see `paste_ships`)."""
        image, mask = (a.copy() for a in self.load(self.empty_ids[int(rng.integers(len(self.empty_ids)))]))
        image, mask, (row, col) = self.paster.paste_anywhere(rng, image, mask)
        top, left = self.window_containing(rng, row, col)
        window = (slice(top, top + self.patch_size), slice(left, left + self.patch_size))
        return image[window].copy(), mask[window].copy()

    def edge_window(self, rng: np.random.Generator, edges: np.ndarray) -> tuple[int, int]:
        """Top-left of a window that contains a point drawn in proportion to `edges` (uniform if it is all 0)."""
        total = float(edges.sum())
        if total <= 0:
            return self.random_window(rng)
        cell = int(np.searchsorted(np.cumsum(edges, axis=None), rng.random() * total, side="right"))
        cell = min(cell, edges.size - 1)
        height, width = self.index.shape
        row = min(height - 1, (cell // edges.shape[1]) * EDGE_SCALE + int(rng.integers(EDGE_SCALE)))
        col = min(width - 1, (cell % edges.shape[1]) * EDGE_SCALE + int(rng.integers(EDGE_SCALE)))
        return self.window_containing(rng, row, col)
