"""Copy-paste of real ships: a ship cut out of a training image along its mask, pasted onto another image.

Real ship images are often harbours and real empty images often open sea, so a model trained on
them can learn "land or a quay => ship". Pasting the same ships onto the training set's *empty*
images (open sea, fields, villages, cloud) shows every ship in surroundings it was never photographed
in, and the unpasted empties stay negatives: what is left to tell the two apart is the ship itself.

The cut-outs come only from the images the sampler was given (a run's training split), so no
validation or test ship is ever pasted. The paste is feathered over about a pixel (a hard edge would
be a cue the model could learn instead of the ship); the mask is the ship's own mask.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from shiptoolkit.data.airbus import AirbusIndex
from shiptoolkit.data.rle import parse_rle, runs_to_pixels

MARGIN = 2  # pixels of the source around the ship, for the feathered edge to blend over
FEATHER_SIGMA = 0.7
CACHE_CUTOUTS = 4096  # cut-outs kept in memory (small: a median ship is ~20 x 20 px)

Loader = Callable[[str], tuple[np.ndarray, np.ndarray]]


def feathered(mask: np.ndarray) -> np.ndarray:
    """Alpha of a pasted ship: 1 inside, falling to 0 over about a pixel across its outline."""
    import cv2

    alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), FEATHER_SIGMA)
    return np.clip(np.maximum(alpha, 0.6 * mask), 0.0, 1.0)  # thin ships keep most of their contrast


class ShipPaster:
    """Cut-outs of the ships of `index`'s ship images, pasted onto other images.

    Args:
        index: the images whose ships may be pasted (a run's training images).
        load: `image_id -> (image, mask)` at the index's size (e.g. a sampler's cached loader).
    """

    def __init__(self, index: AirbusIndex, load: Loader) -> None:
        if not index.ship_ids:
            raise ValueError("pasting ships needs images with ships to cut them from; this index has none.")
        self.index, self.load = index, load
        self.ships = [(image_id, k) for image_id in index.ship_ids for k in range(index[image_id].n_ships)]
        self._cutouts: OrderedDict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def cutout(self, image_id: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(pixels (h, w, 3) uint8, mask (h, w) uint8) of ship `k` of an image: its bounding box plus MARGIN."""
        key = (image_id, k)
        if key in self._cutouts:
            return self._cutouts[key]
        height, width = self.index.shape
        starts, lengths = parse_rle(self.index[image_id].rles[k], self.index.shape)
        pixels = runs_to_pixels(starts, lengths)
        rows, cols = pixels % height, pixels // height  # RLE counts down the columns
        top, left = max(0, int(rows.min()) - MARGIN), max(0, int(cols.min()) - MARGIN)
        bottom, right = min(height, int(rows.max()) + MARGIN + 1), min(width, int(cols.max()) + MARGIN + 1)
        image = self.load(image_id)[0]
        mask = np.zeros((bottom - top, right - left), np.uint8)
        mask[rows - top, cols - left] = 1
        cut = (image[top:bottom, left:right].copy(), mask)
        self._cutouts[key] = cut  # dict writes are atomic under the GIL; a race only cuts a ship twice
        while len(self._cutouts) > CACHE_CUTOUTS:
            self._cutouts.popitem(last=False)
        return cut

    def paste(self, rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, row: int, col: int
              ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """A random ship (random quarter turn and flip) pasted centred near (row, col), kept inside the image.

        Modifies and returns `image` and `mask` (pass copies): the ship's pixels are blended in with a
        feathered alpha, its mask is set in `mask` (a ship pasted over another takes the shared pixels).
        Also returns one pixel of the pasted ship (row, col): a window around it holds the ship.
        """
        pixels, ship = self.cutout(*self.ships[int(rng.integers(len(self.ships)))])
        turns, flip = int(rng.integers(4)), bool(rng.random() < 0.5)
        pixels, ship = np.rot90(pixels, turns), np.rot90(ship, turns)
        if flip:
            pixels, ship = pixels[:, ::-1], ship[:, ::-1]
        h, w = min(ship.shape[0], image.shape[0]), min(ship.shape[1], image.shape[1])
        pixels, ship = pixels[:h, :w], ship[:h, :w]
        top = int(np.clip(row - h // 2, 0, image.shape[0] - h))
        left = int(np.clip(col - w // 2, 0, image.shape[1] - w))
        window = (slice(top, top + h), slice(left, left + w))
        alpha = feathered(ship)[..., None]
        blended = alpha * pixels.astype(np.float32) + (1.0 - alpha) * image[window].astype(np.float32)
        image[window] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        mask[window] = np.maximum(mask[window], ship)
        rows, cols = np.nonzero(ship)
        j = int(rng.integers(rows.size))
        return image, mask, (top + int(rows[j]), left + int(cols[j]))

    def paste_anywhere(self, rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, ships: int = 1
                       ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """`ships` ships pasted at random places; also returns a pixel of the last one."""
        pixel = (0, 0)
        for _ in range(ships):
            row, col = int(rng.integers(image.shape[0])), int(rng.integers(image.shape[1]))
            image, mask, pixel = self.paste(rng, image, mask, row, col)
        return image, mask, pixel
