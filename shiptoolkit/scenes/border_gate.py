"""The gate across window borders: a ship cut in two by a border is shown to each window's gate in halves.

The gate (the run's ship/no-ship classifier) decides per window, as `predict` decides per chip;
but a hull across a border is seen by each of its two (or four) windows' gates in part, and
both may say "no ship" where a chip centred on it would say "ship": then no window predicts it
and no centred window (`shiptoolkit.scenes.recentre`) is ever asked for. So where every window around a
stretch of border was rejected, the gate also sees a window-sized view centred on that stretch
(between two windows side by side, two above each other, or on the corner of four), put together
from the windows already read (no read, one classifier pass: ~1% of a window's segmentation).
Where it says "ship", the segmenter runs on a strip of that view along the border, `strip` px
each side, and the ship pixels it finds within `gap` px of the border are handed on as seeds: a
centred window centred on them predicts the ship, whole, and decides whether it is one.

It keeps the lower half of each window of the previous row of windows (for the borders below
them) and the window to the left: memory grows with the scene's width, not its height.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shiptoolkit.data.instances import label_instances
from shiptoolkit.inference.prediction import predict_images
from shiptoolkit.scenes.stitch import Piece, Tile

# px each side of a border the segmenter sees in an accepted border view: the context a centred window gives a ship
# (recentre.DEFAULT_CONTEXT); on a 64/48 patch lattice, every pixel within 32 px of the border as the scene has it
DEFAULT_STRIP = 96


@dataclass
class _Seen:
    """A window's image (or its lower half), valid pixels, and whether the gate rejected it."""

    image: np.ndarray
    valid: np.ndarray
    rejected: bool


@dataclass(frozen=True)
class BorderView:
    """A window-sized view centred on a stretch of border: its scene origin, and the border lines in it (view
    rows / columns; None where the view has none)."""

    row: int
    col: int
    border_row: int | None
    border_col: int | None


class BorderGate:
    """Border views for the gate where every window around them was rejected (see the module doc).

    Feed every window of a non-overlapping `WindowGrid` in its order to `add` (its image, valid mask and whether
    the gate rejected it); `seeds()` after the last window of a row hands out the seed pieces found so far.
    """

    def __init__(self, detector, window: int, gap: int, strip: int = DEFAULT_STRIP) -> None:
        self.detector, self.window, self.gap, self.strip = detector, int(window), int(gap), int(strip)
        self.above: dict[int, _Seen] = {}  # column j -> the lower half of window (i - 1, j)
        self.below: dict[int, _Seen] = {}  # the same for the row in progress
        self.left: _Seen | None = None  # window (i, j - 1), whole
        self.pending: list[tuple[BorderView, np.ndarray, np.ndarray, float]] = []  # accepted views (and their
        # ship probability), waiting for seeds()
        self.checked = 0  # border views the gate saw
        self.accepted = 0  # and said "ship" to

    def add(self, tile: Tile, image: np.ndarray, valid: np.ndarray, rejected: bool) -> None:
        """One window; its border views with the windows to the left, above, and above-left are gated now."""
        half = self.window // 2
        seen = _Seen(image, valid, rejected)
        views: list[tuple[BorderView, np.ndarray, np.ndarray]] = []
        left, up = (self.left if tile.j else None), self.above.get(tile.j)
        if left is not None and left.rejected and rejected:
            views.append((BorderView(tile.row, tile.col - half, None, half),
                          np.concatenate([left.image[:, half:], image[:, :half]], axis=1),
                          np.concatenate([left.valid[:, half:], valid[:, :half]], axis=1)))
        if up is not None and up.rejected and rejected:
            views.append((BorderView(tile.row - half, tile.col, half, None),
                          np.concatenate([up.image, image[:half]]), np.concatenate([up.valid, valid[:half]])))
        corner = self.above.get(tile.j - 1) if tile.j else None
        if left is not None and up is not None and corner is not None and all(
                s.rejected for s in (left, up, corner, seen)):
            top = (np.concatenate([corner.image[:, half:], up.image[:, :half]], axis=1),
                   np.concatenate([corner.valid[:, half:], up.valid[:, :half]], axis=1))
            bottom = (np.concatenate([left.image[:half, half:], image[:half, :half]], axis=1),
                      np.concatenate([left.valid[:half, half:], valid[:half, :half]], axis=1))
            views.append((BorderView(tile.row - half, tile.col - half, half, half),
                          np.concatenate([top[0], bottom[0]]), np.concatenate([top[1], bottom[1]])))
        self.left = seen
        self.below[tile.j] = _Seen(image[half:].copy(), valid[half:].copy(), rejected)  # not a view: the window goes
        if views:
            self._gate(views)

    def _gate(self, views: list) -> None:
        gate = self.detector.gate
        probabilities = gate.ship_probability([image for _, image, _ in views])
        self.checked += len(views)
        for (view, image, valid), p in zip(views, probabilities, strict=True):
            if gate.accepts(float(p)):
                self.accepted += 1
                self.pending.append((view, image, valid, float(p)))

    def seeds(self, row_done: bool = True) -> list[Piece]:
        """The seed pieces of the accepted border views so far (their segmenter's ship pixels within `gap` px of
        the border); with `row_done`, the row in progress becomes the row above."""
        out: list[Piece] = []
        if self.pending:
            strips = [self._strip(view, image, valid) for view, image, valid, _ in self.pending]
            predictions = predict_images(self.detector.model, [(str(k), s[1]) for k, s in enumerate(strips)],
                                         self.detector.settings)
            for (origin, _, valid, lines), prediction, (*_, p) in zip(strips, predictions, self.pending, strict=True):
                out += self._near(origin, np.where(valid, prediction.prob, 0.0), lines, p)
            self.pending = []
        if row_done:
            self.above, self.below, self.left = self.below, {}, None
        return out

    def _strip(self, view: BorderView, image: np.ndarray, valid: np.ndarray):
        """(scene origin, image, valid, border lines in it) of the part of a view within `strip` px of its
        border(s): a band along one border, the central square at a corner."""
        size, s = self.window, self.strip
        r0, r1 = (view.border_row - s, view.border_row + s) if view.border_row is not None else (0, size)
        c0, c1 = (view.border_col - s, view.border_col + s) if view.border_col is not None else (0, size)
        r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, size), min(c1, size)
        lines = (None if view.border_row is None else view.border_row - r0,
                 None if view.border_col is None else view.border_col - c0)
        return (view.row + r0, view.col + c0), image[r0:r1, c0:c1], valid[r0:r1, c0:c1], lines

    def _near(self, origin: tuple[int, int], prob: np.ndarray, lines: tuple[int | None, int | None],
              gate: float) -> list[Piece]:
        """The ship components of a strip with a pixel within `gap` px of its border line(s), as scene pieces
        (`gate`: the view's ship probability)."""
        labels = label_instances(prob > self.detector.settings.threshold)
        near = np.zeros(labels.shape, bool)
        row_line, col_line = lines
        if row_line is not None:
            near[max(row_line - self.gap, 0):row_line + self.gap] = True
        if col_line is not None:
            near[:, max(col_line - self.gap, 0):col_line + self.gap] = True
        out = []
        for k in np.unique(labels[near & (labels > 0)]):
            rows, cols = np.nonzero(labels == k)
            out.append(Piece((rows + origin[0]).astype(np.int32), (cols + origin[1]).astype(np.int32),
                             prob[rows, cols].astype(np.float32), gate))
        return out
