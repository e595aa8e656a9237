"""Stitching windows into ships that come out once and whole, in memory that does not grow with the scene.

Windows overlap; each owns the *core* of its area: the pixels closer to its centre than to any other
window's (the overlap is cut in its middle), so the cores tile the scene and every pixel's
probability comes from the window that sees it with the most context. A window's ship pixels are
labelled inside its core (8-connected) as *fragments*; fragments that touch across a core
border (8-connected too, corners included) are joined by a union-find. Windows come row by row:
once a row of windows is done, a ship none of whose pixels lies on that row's last core line
cannot grow any more, and is handed out (`ScenePieces.finished`), its fragments forgotten.

So memory holds the windows in flight, one line of fragment ids across the scene's width (an
int64 per column), the last core column of the window to the left, and the pixels of the ships
still open: never the scene's probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from shiptoolkit.data.instances import label_instances


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Starts of windows of side `window`, `stride` apart, covering [0, size); the last may run past the edge
    (read padded), so no window is squeezed against it."""
    count = 1 if size <= window else math.ceil((size - window) / stride) + 1
    return [k * stride for k in range(count)]


def core_bounds(starts: list[int], window: int, stride: int, size: int) -> list[int]:
    """Bounds of the windows' cores along one axis: window k owns [bounds[k], bounds[k + 1])."""
    return [0] + [s + (window - stride) // 2 for s in starts[1:]] + [size]


@dataclass(frozen=True)
class Tile:
    """One window: its row/column in the grid of windows, its start in scene pixels, and its core."""

    i: int
    j: int
    row: int
    col: int
    core_rows: tuple[int, int]
    core_cols: tuple[int, int]

    def core(self, array: np.ndarray) -> np.ndarray:
        """The core part of a window-sized array."""
        (r0, r1), (c0, c1) = self.core_rows, self.core_cols
        return array[r0 - self.row:r1 - self.row, c0 - self.col:c1 - self.col]

    @property
    def core_pixels(self) -> int:
        return (self.core_rows[1] - self.core_rows[0]) * (self.core_cols[1] - self.core_cols[0])


class WindowGrid:
    """The windows over a height x width scene, row by row, with `overlap` (a fraction of `window`) shared."""

    def __init__(self, height: int, width: int, window: int, overlap: float) -> None:
        self.height, self.width, self.window = height, width, window
        self.stride = max(1, int(round(window * (1 - overlap))))
        self.rows = window_starts(height, window, self.stride)
        self.cols = window_starts(width, window, self.stride)
        self.row_bounds = core_bounds(self.rows, window, self.stride, height)
        self.col_bounds = core_bounds(self.cols, window, self.stride, width)

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def __iter__(self) -> Iterator[Tile]:
        for i, row in enumerate(self.rows):
            for j, col in enumerate(self.cols):
                yield Tile(i, j, row, col, (self.row_bounds[i], self.row_bounds[i + 1]),
                           (self.col_bounds[j], self.col_bounds[j + 1]))


@dataclass
class Piece:
    """A ship's pixels (scene rows and columns), their probabilities, and the gate's verdict on its windows."""

    rows: np.ndarray
    cols: np.ndarray
    probs: np.ndarray
    gate: float

    @staticmethod
    def join(parts: list[Piece]) -> Piece:
        if len(parts) == 1:
            return parts[0]
        gates = [p.gate for p in parts if not math.isnan(p.gate)]
        return Piece(np.concatenate([p.rows for p in parts]), np.concatenate([p.cols for p in parts]),
                     np.concatenate([p.probs for p in parts]), max(gates) if gates else float("nan"))


class ScenePieces:
    """Fragments of ships from the windows of one scene, joined across core borders (see the module doc).

    Feed every `Tile` of a `WindowGrid`, in its order, to `add` (with its core's ship mask and
    probabilities); `finished()` after each row of windows, and `rest()` at the end, hand out the
    complete ships as `Piece`s.
    """

    def __init__(self, width: int) -> None:
        self.parent: dict[int, int] = {}
        self.pieces: dict[int, Piece] = {}
        self.next_id = 1
        self.above = np.zeros(width, np.int64)  # the fragment ids on the last core line of the previous row
        self.line = np.zeros(width, np.int64)  # the same line of the row in progress
        self.left: np.ndarray | None = None  # the last core column of the window to the left
        self.width = width

    def find(self, k: int) -> int:
        root = k
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[k] != root:
            self.parent[k], k = root, self.parent[k]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def add(self, tile: Tile, mask: np.ndarray, probs: np.ndarray, gate: float = float("nan")) -> None:
        """The core's ship `mask` (bool) and `probs` (float) of `tile`; `gate`: its window's ship probability."""
        if not mask.any():  # most cores are sea: nothing to label, store or join
            c0, c1 = tile.core_cols
            self.line[c0:c1] = 0
            self.left = np.zeros(mask.shape[0], np.int64)
            return
        labels = label_instances(mask)
        count = int(labels.max()) if labels.size else 0
        offset = self.next_id - 1

        def ids(edge: np.ndarray) -> np.ndarray:  # fragment ids along one edge of the core (0: no ship)
            return np.where(edge > 0, edge.astype(np.int64) + offset, 0)

        if count:
            self._store(tile, labels, probs, count, gate)
        self._join_left(ids(labels[:, 0]), tile)
        self._join_above(ids(labels[0]), tile)
        c0, c1 = tile.core_cols
        self.line[c0:c1] = ids(labels[-1])
        self.left = ids(labels[:, -1])

    def _store(self, tile: Tile, labels, probs, count: int, gate: float) -> None:
        r, c = (a.astype(np.int32) for a in np.nonzero(labels))  # 4 bytes a coordinate: open ships stay small
        local = labels[r, c]
        order = np.argsort(local, kind="stable")
        r, c, local = r[order], c[order], local[order]
        values = probs[r, c].astype(np.float32)
        bounds = np.searchsorted(local, np.arange(1, count + 2))
        for k in range(count):
            part = slice(bounds[k], bounds[k + 1])
            key = self.next_id + k
            self.parent[key] = key
            self.pieces[key] = Piece(r[part] + tile.core_rows[0], c[part] + tile.core_cols[0], values[part], gate)
        self.next_id += count

    def _join_left(self, first: np.ndarray, tile: Tile) -> None:
        """Join the fragments on the core's first column with those on the last column of the window to the left."""
        if tile.j == 0 or self.left is None:
            return
        for shift in (-1, 0, 1):  # 8-connectivity: the rows above and below count too
            a = first[max(0, -shift):len(first) - max(0, shift)]
            b = self.left[max(0, shift):len(self.left) - max(0, -shift)]
            self._join_pairs(a, b)

    def _join_above(self, top: np.ndarray, tile: Tile) -> None:
        """Join the fragments on the core's first row with those on the last core line of the row above."""
        if tile.i == 0:
            return
        c0, c1 = tile.core_cols
        for shift in (-1, 0, 1):
            lo, hi = max(c0 + shift, 0), min(c1 + shift, self.width)
            a = top[lo - shift - c0:hi - shift - c0]
            self._join_pairs(a, self.above[lo:hi])

    def _join_pairs(self, a: np.ndarray, b: np.ndarray) -> None:
        both = (a > 0) & (b > 0)
        for x, y in set(zip(a[both].tolist(), b[both].tolist(), strict=True)):
            self.union(x, y)

    def finished(self, bottom: int = 0, gap: int = 0) -> list[Piece]:
        """Call after the last window of a row: the ships that cannot grow any more (none on the row's last line)
        and, with `gap`, none of whose pixels lies within `gap` rows of `bottom` (the row's core end), so that
        ships near each other across that border come out together (see `shiptoolkit.scenes.recentre`)."""
        self.above, self.line = self.line, np.zeros(self.width, np.int64)
        self.left = None
        open_roots = {self.find(int(k)) for k in np.unique(self.above) if k}
        if gap > 0:
            open_roots |= {self.find(k) for k, piece in self.pieces.items() if int(piece.rows.max()) >= bottom - gap}
        return self._take(lambda root: root not in open_roots)

    def rest(self) -> list[Piece]:
        """Every ship still open (call once, after the last row)."""
        return self._take(lambda root: True)

    def _take(self, done) -> list[Piece]:
        groups: dict[int, list[int]] = {}
        for key in list(self.pieces):
            groups.setdefault(self.find(key), []).append(key)
        out = []
        for root, keys in sorted(groups.items()):
            if not done(root):
                continue
            out.append(Piece.join([self.pieces.pop(k) for k in keys]))
        for root, keys in groups.items():
            if done(root):
                for k in keys:
                    del self.parent[k]
        return out
