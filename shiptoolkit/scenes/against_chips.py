"""What `predict` finds on a chip centred on each true ship of a synthetic scene: the reference for stitching.

A ship across window borders is cut by `detect`'s windows and stitched; on a window-sized chip
centred on it, read as `detect` reads the scene, `predict` sees it whole, with all the context it
can have. Scoring both against the same truth, the same way (each instance vectorised as `detect`
vectorises its ships, then its IoU with the true ship's pixels on the scene grid), tells apart
what stitching costs from what the model misses anyway: `found by detect` vs `found by predict on
its chip`, ship by ship (`paired_difference`: a paired estimate, with far less noise than two
recalls over different ships).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shiptoolkit.inference.prediction import predict_images
from shiptoolkit.scenes.against_truth import ship_iou
from shiptoolkit.scenes.detect import Detector
from shiptoolkit.scenes.reading import SceneReader
from shiptoolkit.scenes.ships import ship_of
from shiptoolkit.scenes.stitch import Piece
from shiptoolkit.scenes.synthetic import SceneTruth, ShipTruth

BATCH = 8  # chips predicted together


@dataclass(frozen=True)
class ChipMatch:
    """One true ship on its centred chip: the best IoU of predict's instances with it, found (IoU >= 0.5), and
    that instance's centroid (col, row) in scene pixels (None when no instance lies on the ship)."""

    ship: ShipTruth
    iou: float
    found: bool
    centroid: tuple[float, float] | None


def chip_origin(ship: ShipTruth, size: int, window: int) -> tuple[int, int]:
    """(row, col) of the window-sized chip centred on the ship, kept inside the scene when it fits."""
    col, row = ship.pixel_centroid
    top = int(np.clip(round(row) - window // 2, 0, max(0, size - window)))
    left = int(np.clip(round(col) - window // 2, 0, max(0, size - window)))
    return top, left


def predict_on_centred_chips(detector: Detector, truth: SceneTruth, ships: Sequence[ShipTruth], window: int,
                             iou: float = 0.5) -> list[ChipMatch]:
    """A `ChipMatch` per ship: `predict_images` (what `predict` runs on a decoded image: same model, settings,
    gate and post-processing) on the chip centred on it."""
    import rasterio

    out: list[ChipMatch] = []
    with SceneReader(truth.path) as reader, rasterio.open(truth.labels) as labels:
        for start in range(0, len(ships), BATCH):
            batch = list(ships[start:start + BATCH])
            origins = [chip_origin(ship, truth.size, window) for ship in batch]
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
    best, centroid = -1.0, None
    for k in np.unique(instances[on_ship & (instances > 0)]):
        rows, cols = np.nonzero(instances == k)
        piece = Piece(rows.astype(np.int32) + r0, cols.astype(np.int32) + c0, prob[rows, cols], float("nan"))
        polygon = ship_of(piece, reader.transform, reader.info.pixel_size_m).polygon
        value, there = ship_iou(truth, labels, polygon, ship)
        if value > best:
            best, centroid = value, there
    best = max(best, 0.0)
    return ChipMatch(ship, best, best >= iou, centroid)


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
