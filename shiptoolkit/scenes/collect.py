"""Finished pieces of one scene -> its ships: centred windows, the gate across borders, the split, vectors.

`ShipCollector` is what `detect_scene` hands each row's finished pieces to: those at window
borders are predicted again on centred windows (`shiptoolkit.scenes.recentre`), joined by the seeds of
border views the gate accepted where every window around a border was rejected
(`shiptoolkit.scenes.border_gate`); then the post-processing's split (`predict.split`) and the
vector features. A ship that a later centred window sees again is superseded by it: each comes out once.
"""

from __future__ import annotations

import numpy as np

from shiptoolkit.scenes.border_gate import BorderGate
from shiptoolkit.scenes.recentre import Recentring
from shiptoolkit.scenes.ships import Ship, ship_of, split_pieces
from shiptoolkit.scenes.stitch import Piece, Tile, WindowGrid


class ShipCollector:
    """The ships of one scene, row of windows by row (see the module doc).

    `border_context` 0: no centred windows (and no border views); `min_size`: the smallest centred window the model
    takes; `prob_map`: the scene's `ProbabilityMap` or None; `blend`: the scene's `LatticeBlend` when the model's
    patches lie on one lattice (no window borders then: only ships beside a window the gate rejected are predicted
    again, on centred windows placed on the lattice), or None.
    """

    def __init__(self, detector, reader, grid: WindowGrid, border_context: int, min_size: int = 0,
                 prob_map=None, blend=None) -> None:
        self.detector, self.reader = detector, reader
        self.recentring = Recentring(detector, reader, grid, border_context, min_size=min_size, prob_map=prob_map,
                                     lattice=blend.lattice if blend is not None else None,
                                     needed=blend.beside_rejected if blend is not None else None) \
            if border_context > 0 else None
        self.gap = self.recentring.gap if self.recentring is not None else 0
        # seeds for centred windows where every window around a border was rejected: the gate saw a cut hull in halves
        self.border = BorderGate(detector, grid.window, self.gap) if self.recentring is not None \
            and detector.gate is not None and grid.stride == grid.window else None
        self.found: list[tuple[int, Ship]] = []  # (key, ship): a centred window may supersede a ship by its key

    def saw(self, tile: Tile, image: np.ndarray, valid: np.ndarray, gate_probability: float) -> None:
        """A window as read, and its gate's ship probability (for the border views)."""
        if self.border is not None:
            self.border.add(tile, image, valid, bool(valid.any()) and not self.detector.gate.accepts(gate_probability))

    def finished(self, pieces: list[Piece], top: int) -> None:
        """The pieces finished with a row of windows whose first scene row is `top` (all that is left, at the end)."""
        pieces = pieces + (self.border.seeds() if self.border is not None else [])
        s = self.detector.settings
        groups = self.recentring(pieces, top) if self.recentring is not None else (pieces, [])
        for centred, group in enumerate(groups):
            for piece in split_pieces(group, s.min_area, s.split, s.split_depth):
                if self.recentring is not None:
                    self.recentring.remember(piece, len(self.found), bool(centred))
                self.found.append((len(self.found), ship_of(piece, self.reader.transform,
                                                            self.reader.info.pixel_size_m)))

    def ships(self) -> list[Ship]:
        gone = self.recentring.superseded if self.recentring is not None else set()
        return [ship for key, ship in self.found if key not in gone]

    @property
    def centred_windows(self) -> int:
        return self.recentring.windows if self.recentring is not None else 0

    @property
    def border_views(self) -> tuple[int, int]:
        """Border views the gate saw, and accepted."""
        return (self.border.checked, self.border.accepted) if self.border is not None else (0, 0)
