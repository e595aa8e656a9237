"""One lattice of patches over a whole scene, for models that predict by sliding patches: no window borders.

A model with a fixed input (the quickstart's 64 px) predicts a chip by patches `stride` apart
(predict.overlap), blended by their weights, the last one flush with the chip's far edge; its
probability at a pixel depends only on the patches that cover it. So `detect` lays one lattice of
patches over the whole scene, `stride` apart from the scene's origin: each window predicts the
patches that start inside it (their far ends reach `extra` = patch - stride px into the next
windows, read with the window), and what they add past its far edges is carried to the windows on
its right and below, which add it to their own. Every pixel then gets the blend of every patch of
the lattice that covers it, as on a chip that holds it well inside: a ship across a window border is
predicted as if there were no border (no seam, nothing to predict again), for the patches `predict`
spends on the same pixels cut into chips (window / stride per side: the flush patch's place), less the patches that
see nodata alone (a collar, the padding past the scene's edges), which change no valid pixel.

A window the gate rejects is not predicted (its probabilities are 0, as `predict` gives a rejected
chip) and adds nothing to its neighbours; a ship cut by the border of a rejected window is predicted
again on a centred window (`shiptoolkit.scenes.recentre`), placed on the lattice (`LatticeBlend.beside_rejected`).
"""

from __future__ import annotations

from bisect import bisect
from dataclasses import dataclass

import numpy as np

from shiptoolkit.inference.prediction import blend_weights, sliding_window, window_predictions, window_stride
from shiptoolkit.scenes.stitch import Piece, Tile, WindowGrid


@dataclass(frozen=True)
class Lattice:
    """Patches of side `patch`, `stride` apart from the scene's origin (both in scene pixels)."""

    patch: int
    stride: int

    @property
    def extra(self) -> int:
        """How far a window's last patches reach past its far edges (read with the window)."""
        return self.patch - self.stride

    def snap(self, value: int) -> int:
        """The lattice line at or before a scene row / column."""
        return (int(value) // self.stride) * self.stride


def scene_lattice(detector, window: int, overlap: float) -> Lattice | None:
    """The lattice of a model that predicts by sliding patches (its fixed input side, or predict.window for a
    free-size model with predict.whole_image off), on windows that do not overlap and are a whole number of
    strides; None otherwise (whole windows in one pass, predict.resize, overlapping windows: centred windows then)."""
    s = detector.settings
    if s.resize or overlap:
        return None
    shape = getattr(detector.model, "input_shape", None)
    if not isinstance(shape, tuple) or len(shape) != 4:
        return None
    fixed = shape[1] if shape[1] is not None and shape[1] == shape[2] else None
    patch = fixed or sliding_window(detector.model, s)
    if not patch or patch > window:
        return None
    stride = window_stride(patch, s.overlap)  # predict's: the lattice's patches are those predict lays on a chip
    return Lattice(int(patch), stride) if window % stride == 0 and stride <= patch else None


def lattice_weights(lattice: Lattice, side: int) -> np.ndarray:
    """The sum of `predict`'s blend weights (gaussian) of the lattice patches that start inside a window read `side`
    px wide (S, S): the same for every window."""
    p = lattice.patch
    weights = blend_weights(p, p, "gaussian")
    total = np.zeros((side, side), np.float32)
    for r in range(0, side - p + 1, lattice.stride):
        for c in range(0, side - p + 1, lattice.stride):
            total[r:r + p, c:c + p] += weights
    return total


def lattice_sums(model, images: np.ndarray, lattice: Lattice, batch_size: int = 32, tta: bool = False,
                 valid: np.ndarray | None = None) -> np.ndarray:
    """Weighted sums of the ship probability (N, S, S) of the lattice patches that start inside windows read
    `lattice.extra` px wider than their side: images (N, S, S, 3) uint8, S = window + extra. The weights are
    `predict`'s (gaussian blend, their sum `lattice_weights`), the flips its TTA. With `valid` (N, S, S) bool, a
    patch with no valid pixel (nodata: a scene's collar, the padding past its edges) is not predicted: it covers no
    valid pixel, so no valid pixel's sums or weights change (the weight sum stays the whole lattice's)."""
    n, side = images.shape[:2]
    p = lattice.patch
    starts = range(0, side - p + 1, lattice.stride)
    weights = blend_weights(p, p, "gaussian")
    sums = np.zeros((n, side, side), np.float32)
    for i in range(n):  # one window's patches at a time: memory that does not depend on how many the gate let by
        boxes = [(r, c) for r in starts for c in starts if valid is None or valid[i, r:r + p, c:c + p].any()]
        if not boxes:
            continue
        patches = np.stack([images[i, r:r + p, c:c + p] for r, c in boxes]).astype(np.float32)
        preds = window_predictions(model, patches, batch_size, tta)[..., 0]  # the ship channel (no seams on scenes)
        for (r, c), pred in zip(boxes, preds, strict=True):
            sums[i, r:r + p, c:c + p] += pred * weights
    return sums


class LatticeBlend:
    """Adds up the lattice across window borders, window by window in grid order (see the module doc).

    Memory: the contributions to the next row of windows (`extra` rows across the scene's width) and to the
    window on the right (`extra` columns of one window), not the scene's probabilities.
    """

    def __init__(self, lattice: Lattice, grid: WindowGrid) -> None:
        self.lattice, self.grid, self.window, self.extra = lattice, grid, grid.window, lattice.extra
        self.total = lattice_weights(lattice, grid.window + lattice.extra)  # every window's own weight sum
        self.width = grid.cols[-1] + grid.window + self.extra
        self.below = self._band()
        self.next_below = self._band()
        self.left: tuple[np.ndarray, np.ndarray] | None = None
        self.row = 0
        self.rejected: set[tuple[int, int]] = set()  # (i, j) of the windows the gate rejected

    def _band(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((self.extra, self.width), np.float32), np.zeros((self.extra, self.width), np.float32)

    def core(self, tile: Tile, sums: np.ndarray | None, rejected: bool = False) -> np.ndarray:
        """The window's probabilities (window x window) from its own sums (None: not predicted) and what the
        windows before it carried over; keeps what it carries over to the next ones."""
        w, e = self.window, self.extra
        if tile.i != self.row:  # a new row of windows: what the last row carried down is this row's
            self.below, self.next_below, self.row = self.next_below, self._band(), tile.i
        if tile.j == 0:
            self.left = None
        if rejected:
            self.rejected.add((tile.i, tile.j))
        if sums is None:
            self.left = None
            return np.zeros((w, w), np.float32)
        total = self.total
        num, den = sums[:w, :w].copy(), total[:w, :w].copy()
        if self.left is not None:
            num[:, :e] += self.left[0]
            den[:, :e] += self.left[1]
        c = tile.col
        num[:e] += self.below[0][:, c:c + w]
        den[:e] += self.below[1][:, c:c + w]
        self.left = (sums[:w, w:w + e], total[:w, w:w + e])
        self.next_below[0][:, c:c + w + e] += sums[w:w + e, :w + e]
        self.next_below[1][:, c:c + w + e] += total[w:w + e, :w + e]
        return num / den  # every core pixel lies under a patch of its own window: den > 0

    def beside_rejected(self, piece: Piece, gap: int) -> bool:
        """Whether the piece comes within `gap` px of a window the gate rejected (its hull may go on there, not
        predicted: a centred window predicts it whole)."""
        rows = bisect(self.grid.row_bounds, int(piece.rows.min()) - gap) - 1, \
            bisect(self.grid.row_bounds, int(piece.rows.max()) + gap) - 1
        cols = bisect(self.grid.col_bounds, int(piece.cols.min()) - gap) - 1, \
            bisect(self.grid.col_bounds, int(piece.cols.max()) + gap) - 1
        return any((i, j) in self.rejected for i in range(max(rows[0], 0), rows[1] + 1)
                   for j in range(max(cols[0], 0), cols[1] + 1))
