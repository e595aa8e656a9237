"""Ships at window borders, predicted again on a window centred on them ("centred windows").

Windows that do not overlap cost what `predict` costs on the same pixels cut into chips, and a
ship inside one is predicted exactly as `predict` predicts it on that chip. But a ship across a
border is seen in two halves, each at the edge of its window with no context beyond it: halves are
missed, or come out in two pieces with a gap of sea at the border. So every stitched ship that
comes within `gap` px of a core border (ships near each other form one cluster) is predicted again
on one small window centred on the cluster, `context` px wider than it on every side, as `predict`
would see it on a chip centred on it; the instances of that window that overlap the cluster
replace it (none: the centred view sees no ship there, and the cluster is dropped). The cost is
one window of about (ship + 2 x context)² px per ship at a border, not a wider overlap everywhere.

A centred window sees more than its cluster: a part of the same hull that its window left apart from
the rest, further from the border, or the same ship seen by another centred window. So what a centred
window finds replaces every ship already found that shares a pixel with it (`Recentring.remember`
keeps the pixels of the ships found in the last rows of windows, as far up as a centred window can
reach), and a ship found later that shares a pixel with it is dropped: each ship comes out once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from shiptoolkit.data.instances import label_instances
from shiptoolkit.inference.prediction import predict_images
from shiptoolkit.scenes.lattice import Lattice
from shiptoolkit.scenes.stitch import Piece, WindowGrid

DEFAULT_CONTEXT = 96  # px of scene around a ship at a border in its centred window (the context 0.25 overlap gave)
DEFAULT_GAP = 8  # px from a core border within which a ship counts as "at" it
ALIGN = 128  # centred window sides: multiples of this (of the U-Nets' total stride, 32, and few shapes to trace)


@dataclass(frozen=True)
class CentredWindow:
    """One window predicted again: its origin and side in scene pixels, and the stitched pieces it replaces."""

    row: int
    col: int
    size: int
    pieces: tuple[Piece, ...]


def at_border(piece: Piece, row_bounds: np.ndarray, col_bounds: np.ndarray, gap: int) -> bool:
    """Whether some pixel of the piece lies within `gap` px of an interior core border (bounds: the borders'
    scene rows / columns: pixel r touches border b when r == b - 1 or r == b)."""
    for values, bounds in ((piece.rows, row_bounds), (piece.cols, col_bounds)):
        if bounds.size:
            lo, hi = int(values.min()), int(values.max())
            near = bounds[(bounds > lo - gap) & (bounds <= hi + gap)]  # only borders within reach of the bbox
            if near.size and (np.abs(np.unique(values)[:, None] + 0.5 - near[None, :]) < gap).any():
                return True
    return False


def _bbox(pieces) -> tuple[int, int, int, int]:
    return (min(int(p.rows.min()) for p in pieces), min(int(p.cols.min()) for p in pieces),
            max(int(p.rows.max()) for p in pieces) + 1, max(int(p.cols.max()) for p in pieces) + 1)


def clusters(pieces: list[Piece], gap: int) -> list[list[Piece]]:
    """Pieces whose bounding boxes come within `gap` px of each other, grouped (one centred window each)."""
    boxes = np.array([_bbox([p]) for p in pieces], np.int64).reshape(-1, 4)
    parent = list(range(len(pieces)))

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a in range(len(pieces)):
        close = ((boxes[:, 0] < boxes[a, 2] + gap) & (boxes[a, 0] < boxes[:, 2] + gap)
                 & (boxes[:, 1] < boxes[a, 3] + gap) & (boxes[a, 1] < boxes[:, 3] + gap))
        for b in np.nonzero(close)[0]:
            parent[find(int(b))] = find(a)
    groups: dict[int, list[Piece]] = {}
    for k, piece in enumerate(pieces):
        groups.setdefault(find(k), []).append(piece)
    return list(groups.values())


def centred_window(pieces: list[Piece], context: int, min_size: int = 0, lattice: Lattice | None = None
                   ) -> CentredWindow:
    """The square window centred on the pieces' bounding box, `context` px wider on every side, its side a
    multiple of ALIGN (at least 2 x ALIGN) and at least `min_size`; with the scene's `lattice` (a model that
    predicts by sliding patches), its origin on the lattice and its side a whole number of patch strides, so that
    its patches are the scene's (`shiptoolkit.scenes.lattice`) and the ship's probabilities those of the
    borderless scene."""
    r0, c0, r1, c1 = _bbox(pieces)
    if lattice is not None:
        row, col = lattice.snap(r0 - context), lattice.snap(c0 - context)
        reach = max(r1 + context - row, c1 + context - col, lattice.patch)
        side = lattice.patch + lattice.stride * math.ceil((reach - lattice.patch) / lattice.stride)
        return CentredWindow(row, col, side, tuple(pieces))
    side = max(r1 - r0, c1 - c0) + 2 * context
    side = max(int(min_size), 2 * ALIGN, ALIGN * math.ceil(side / ALIGN))
    return CentredWindow((r0 + r1 - side) // 2, (c0 + c1 - side) // 2, side, tuple(pieces))


@dataclass
class _Found:
    """A ship already handed out: its key, bounding box, pixels (flat scene indices, sorted), from a centred window."""

    key: int
    box: tuple[int, int, int, int]
    flat: np.ndarray
    centred: bool


class Recentring:
    """Replaces the stitched ships at core borders by what a window centred on them finds (see the module doc).

    `detector` is a `shiptoolkit.scenes.detect.Detector`, `reader` the scene's `SceneReader`, `grid` its
    `WindowGrid`; `min_size`: the smallest window the model takes (its fixed input, or its training scale when
    predict.resize is set); `prob_map`: the scene's `ProbabilityMap` (the centred windows' probabilities are
    written over the clusters), or None; `lattice`: the scene's patch lattice (centred windows placed on it), or
    None; `needed`: which pieces at a border need a centred window (default: all; on a lattice, those beside a
    window the gate rejected, given `gap`). Call it on each batch of finished pieces, then `remember` each ship
    handed out; `superseded` holds the keys of those a later centred window replaced.
    """

    def __init__(self, detector, reader, grid: WindowGrid, context: int = DEFAULT_CONTEXT, gap: int = DEFAULT_GAP,
                 min_size: int = 0, prob_map=None, lattice: Lattice | None = None,
                 needed: Callable[[Piece, int], bool] | None = None) -> None:
        self.detector, self.reader, self.context, self.gap = detector, reader, int(context), int(gap)
        self.min_size, self.prob_map, self.lattice, self.needed = int(min_size), prob_map, lattice, needed
        self.row_bounds = np.asarray(grid.row_bounds[1:-1], np.int64)
        self.col_bounds = np.asarray(grid.col_bounds[1:-1], np.int64)
        self.windows = 0  # centred windows predicted so far
        self.found: list[_Found] = []  # ships handed out that a centred window could still reach
        self.superseded: set[int] = set()
        self._reach = grid.window  # rows above a finished row that a centred window may reach: its tallest so far

    def __call__(self, pieces: list[Piece], top: int = 0) -> tuple[list[Piece], list[Piece]]:
        """(the pieces not at core borders, the centred windows' instances that replace those at borders); `top`:
        the first scene row of the row of windows just finished (ships handed out well above it are out of every
        centred window's reach and forgotten)."""
        at = [at_border(p, self.row_bounds, self.col_bounds, self.gap)
              and (self.needed is None or self.needed(p, self.gap)) for p in pieces]
        keep = [p for p, a in zip(pieces, at, strict=True) if not a]
        todo = [centred_window(group, self.context, self.min_size, self.lattice)
                for group in clusters([p for p, a in zip(pieces, at, strict=True) if a], self.gap)]
        new = _once(self.predict(todo), self.reader.width)  # (box, pixels, piece) of each
        for found in self.found:
            if any(_share(found.box, found.flat, box, flat) for box, flat, _ in new):
                self.superseded.add(found.key)
        self.found = [f for f in self.found if f.key not in self.superseded and f.box[2] >= top - self._reach]
        centred = [f for f in self.found if f.centred] + [_Found(-1, box, flat, True) for box, flat, _ in new]
        if centred:  # each kept piece's box and pixels once, not once per centred ship
            boxed = [(_bbox([p]), _flat(p, self.reader.width), p) for p in keep]
            keep = [p for box, flat, p in boxed if not any(_share(c.box, c.flat, box, flat) for c in centred)]
        return keep, [p for _, _, p in new]

    def remember(self, piece: Piece, key: int, centred: bool) -> None:
        """A ship handed out (after the post-processing's split) under `key`, from a centred window or not: a later
        centred window that shares a pixel with it supersedes it (and a later ship that shares one with a centred
        window's is dropped)."""
        self.found.append(_Found(key, _bbox([piece]), _flat(piece, self.reader.width), centred))

    def predict(self, windows: list[CentredWindow]) -> list[Piece]:
        """The instances of each window that overlap the pieces it replaces, as scene `Piece`s."""
        if not windows:
            return []
        self._reach = max(self._reach, max(w.size for w in windows))
        reads = [self.reader.read(w.row, w.col, w.size) for w in windows]
        s = self.detector.settings
        predictions = predict_images(self.detector.model, [(str(k), image) for k, (image, _) in enumerate(reads)], s)
        self.windows += len(windows)
        out: list[Piece] = []
        for window, (_, valid), prediction in zip(windows, reads, predictions, strict=True):
            prob = np.where(valid, prediction.prob.astype(np.float32, copy=False), np.float32(0))
            out += self._replace(window, prob)
        return out

    def _replace(self, window: CentredWindow, prob: np.ndarray) -> list[Piece]:
        labels = label_instances(prob > self.detector.settings.threshold)
        old = np.zeros(prob.shape, bool)
        for piece in window.pieces:
            old[piece.rows - window.row, piece.cols - window.col] = True
        gates = [p.gate for p in window.pieces if not math.isnan(p.gate)]
        gate = max(gates) if gates else float("nan")
        if self.prob_map is not None:
            self._write_map(window, prob)
        out = []
        for k in np.unique(labels[old]):
            if k:
                rows, cols = np.nonzero(labels == k)
                out.append(Piece((rows + window.row).astype(np.int32), (cols + window.col).astype(np.int32),
                                 prob[rows, cols], gate))
        return out

    def _write_map(self, window: CentredWindow, prob: np.ndarray) -> None:
        """The centred window's probabilities over its cluster (and `gap` px around it), in the probability map."""
        r0, c0, r1, c1 = _bbox(window.pieces)
        r0, c0 = max(r0 - self.gap, 0, window.row), max(c0 - self.gap, 0, window.col)
        r1 = min(r1 + self.gap, self.reader.height, window.row + window.size)
        c1 = min(c1 + self.gap, self.reader.width, window.col + window.size)
        self.prob_map.write_at(r0, c0, prob[r0 - window.row:r1 - window.row, c0 - window.col:c1 - window.col])


def _flat(piece: Piece, width: int) -> np.ndarray:
    return np.unique(piece.rows.astype(np.int64) * width + piece.cols)


def _share(box_a, flat_a: np.ndarray, box_b, flat_b: np.ndarray) -> bool:
    """Whether two pixel sets share a pixel (their boxes first: most pairs are far apart)."""
    if box_a[0] >= box_b[2] or box_b[0] >= box_a[2] or box_a[1] >= box_b[3] or box_b[1] >= box_a[3]:
        return False
    return bool(np.intersect1d(flat_a, flat_b, assume_unique=True).size)


def _once(pieces: list[Piece], width: int) -> list[tuple[tuple, np.ndarray, Piece]]:
    """Centred windows' pieces, each ship once: of pieces that share pixels (two centred windows saw the same ship),
    the largest; each as (bounding box, flat pixel indices, piece), for the overlap tests that follow."""
    out: list[tuple[tuple, np.ndarray, Piece]] = []
    for piece in sorted(pieces, key=lambda p: -p.rows.size):
        box, flat = _bbox([piece]), _flat(piece, width)
        if not any(_share(box, flat, b, f) for b, f, _ in out):
            out.append((box, flat, piece))
    return out
