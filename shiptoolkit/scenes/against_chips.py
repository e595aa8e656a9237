"""What `predict` finds on the chip of each true ship of a synthetic scene: the reference for stitching.

A ship inside one of `detect`'s windows has that window as its chip (`window_origin`): `predict`
on it sees what `detect` saw (all of it, on a model that takes whole windows; on a model that
predicts by sliding patches, `detect` adds the patches across the window's borders, see
`shiptoolkit.scenes.lattice`). A ship across window borders is cut by the windows; on a
window-sized chip centred on it (`chip_origin`, on the scene's patch lattice when there is one),
read as `detect` reads the scene, `predict` sees it whole, with all the context it can have. Scoring
both against the same truth, the same way (each instance vectorised as `detect` vectorises its
ships, then its IoU with the true ship's pixels on the scene grid), tells apart what stitching costs
from what the model misses anyway: `found by detect` vs `found by predict on its chip`, ship by ship
(`paired_difference`: a paired estimate, with far less noise than two recalls over different ships).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shiptoolkit.inference.prediction import predict_images
from shiptoolkit.scenes.against_truth import ON_SHIP, ship_iou
from shiptoolkit.scenes.detect import Detector
from shiptoolkit.scenes.lattice import Lattice, scene_lattice
from shiptoolkit.scenes.reading import SceneReader
from shiptoolkit.scenes.ships import ship_of
from shiptoolkit.scenes.stitch import Piece, WindowGrid
from shiptoolkit.scenes.synthetic import SceneTruth, ShipTruth

BATCH = 8  # chips predicted together


@dataclass(frozen=True)
class ChipMatch:
    """One true ship on its chip: the best IoU of predict's instances with it, found (IoU >= 0.5), that
    instance's centroid (col, row) in scene pixels (None when no instance lies on the ship), and how many
    instances lie on it (ON_SHIP of their pixels or more: more than one, the model left the hull in pieces)."""

    ship: ShipTruth
    iou: float
    found: bool
    centroid: tuple[float, float] | None
    instances: int = 0


def chip_origin(ship: ShipTruth, size: int, window: int, lattice: Lattice | None = None) -> tuple[int, int]:
    """(row, col) of the window-sized chip centred on the ship, kept inside the scene when it fits; with the
    scene's `lattice` (a model that predicts by sliding patches), on the nearest lattice line, so that `predict`
    lays its patches on the chip where `detect` laid them on the scene (a chip `stride` / 2 px off would blend other
    patches: up to a few px of centroid on the quickstart model, as `predict` on two chips of one ship differs)."""
    col, row = ship.pixel_centroid
    origin = []
    for centre in (row, col):
        start = int(np.clip(round(centre) - window // 2, 0, max(0, size - window)))
        if lattice is not None:
            start = min(lattice.snap(start + lattice.stride // 2), lattice.snap(max(0, size - window)))
        origin.append(start)
    return origin[0], origin[1]


def window_origin(ship: ShipTruth, truth: SceneTruth) -> tuple[int, int]:
    """(row, col) of the window of `detect`'s grid (the truth's window and overlap) whose core holds the ship's
    centroid."""
    from bisect import bisect

    grid = WindowGrid(truth.size, truth.size, truth.window, truth.overlap)
    col, row = ship.pixel_centroid
    return grid.rows[bisect(grid.row_bounds, row) - 1], grid.cols[bisect(grid.col_bounds, col) - 1]


def predict_on_centred_chips(detector: Detector, truth: SceneTruth, ships: Sequence[ShipTruth], window: int,
                             iou: float = 0.5, centred: bool = True) -> list[ChipMatch]:
    """A `ChipMatch` per ship: `predict_images` (what `predict` runs on a decoded image: same model, settings,
    gate and post-processing) on the chip centred on it, or (`centred` False) on its window of detect's grid."""
    import rasterio

    out: list[ChipMatch] = []
    lattice = scene_lattice(detector, window, truth.overlap)
    with SceneReader(truth.path) as reader, rasterio.open(truth.labels) as labels:
        for start in range(0, len(ships), BATCH):
            batch = list(ships[start:start + BATCH])
            origins = [chip_origin(ship, truth.size, window, lattice) if centred else window_origin(ship, truth)
                       for ship in batch]
            chips = []
            for k, (r0, c0) in enumerate(origins):
                image, valid = reader.read(r0, c0, window)
                image[~valid] = 0
                chips.append((str(k), image))
            predictions = predict_images(detector.model, chips, detector.settings, detector.gate)
            for ship, (r0, c0), prediction in zip(batch, origins, predictions, strict=True):
                out.append(_best(detector, reader, labels, truth, ship, (r0, c0), prediction.prob, iou))
    return out


def _best(detector: Detector, reader: SceneReader, labels, truth: SceneTruth, ship: ShipTruth,
          origin: tuple[int, int], prob: np.ndarray, iou: float) -> ChipMatch:
    """The chip's instance that matches the ship best, vectorised and scored as `detect`'s ships are."""
    from rasterio.windows import Window

    r0, c0 = origin
    instances = detector.settings.labels(prob)
    height, width = instances.shape
    on_ship = labels.read(1, window=Window(c0, r0, width, height), boundless=True, fill_value=0) == ship.id
    best, centroid, lying = -1.0, None, 0
    for k in np.unique(instances[on_ship & (instances > 0)]):
        rows, cols = np.nonzero(instances == k)
        lying += int(on_ship[rows, cols].sum()) >= ON_SHIP * rows.size
        piece = Piece(rows.astype(np.int32) + r0, cols.astype(np.int32) + c0, prob[rows, cols], float("nan"))
        polygon = ship_of(piece, reader.transform, reader.info.pixel_size_m).polygon
        value, there = ship_iou(truth, labels, polygon, ship)
        if value > best:
            best, centroid = value, there
    best = max(best, 0.0)
    return ChipMatch(ship, best, best >= iou, centroid, lying)


def paired_difference(a: Sequence[bool], b: Sequence[bool]) -> tuple[float, float]:
    """mean(a) - mean(b) over the same ships, and its standard error (paired: only the ships found by one and
    not the other count)."""
    n = len(a)
    if n == 0:
        return float("nan"), float("nan")
    only_a = sum(x and not y for x, y in zip(a, b, strict=True))
    only_b = sum(y and not x for x, y in zip(a, b, strict=True))
    diff = (only_a - only_b) / n
    return diff, math.sqrt(max(0.0, only_a + only_b - n * diff * diff)) / n
