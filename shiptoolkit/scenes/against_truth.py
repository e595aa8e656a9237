"""Detected ships scored against a synthetic scene's truth: found or not, found more than once, where.

Each detected polygon (in the scene's CRS) is rasterised on the scene's grid inside its own
bounding box only and compared with the truth's `labels.tif` there, so scoring a 12,288 px scene
reads no more of it than the ships cover. A true ship is *found* when a detection's IoU with its
pixels is at least `iou` (0.5, as the Airbus metric's lowest threshold); a detection lies *on* a
ship when at least a quarter of its pixels are that ship's, and a ship with two or more
detections on it was found more than once: in pieces the model left apart (a gap of sea between
them), or in pieces whose pixels touch (`touching`: what stitching must never leave apart, unless
the post-processing's splitting of touching ships cut them, as `predict` would).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shiptoolkit.scenes.synthetic import SceneTruth, ShipTruth

ON_SHIP = 0.25  # a detection lies on a ship when at least this share of its pixels are the ship's


@dataclass(frozen=True)
class ShipMatch:
    """One true ship against the detections: how many lie on it, the best IoU, that detection's centroid."""

    truth: ShipTruth
    detections: int
    iou: float
    found: bool
    centroid: tuple[float, float] | None  # (col, row) of the best detection's pixels, scene pixels
    touching: int = 0  # pairs of its detections whose pixels touch (8-connected)
    centroids: tuple[tuple[float, float], ...] = ()  # (col, row) of every detection on it


@dataclass(frozen=True)
class TruthScore:
    matches: list[ShipMatch]
    detected: int  # detections in all
    false: int  # detections on no true ship

    def recall(self, crossing: bool | None = None) -> float:
        """Share of true ships found: all of them, or only those across window borders (True) or inside (False)."""
        chosen = [m for m in self.matches if crossing is None or m.truth.crosses_border == crossing]
        return sum(m.found for m in chosen) / len(chosen) if chosen else float("nan")

    def duplicates(self, crossing: bool | None = None) -> int:
        """Detections beyond the first on the same true ship."""
        return sum(max(0, m.detections - 1) for m in self.matches
                   if crossing is None or m.truth.crosses_border == crossing)


def read_polygons(path: str | Path, crs: str) -> list:
    """The polygons of a vector file (`detect`'s output), reprojected to `crs` (a GeoJSON is lon/lat)."""
    import shapely
    from pyogrio.raw import read
    from rasterio.crs import CRS
    from rasterio.warp import transform

    meta, _, geometry, _ = read(str(path))
    polygons = list(shapely.from_wkb(geometry)) if geometry is not None and len(geometry) else []
    source = CRS.from_user_input(meta["crs"]) if meta.get("crs") else CRS.from_epsg(4326)
    if not polygons or source == CRS.from_user_input(crs):
        return polygons

    def move(coords: np.ndarray) -> np.ndarray:
        xs, ys = transform(source, crs, coords[:, 0].tolist(), coords[:, 1].tolist())
        return np.column_stack([xs, ys])

    return list(shapely.transform(np.array(polygons, object), move))


def score_against_truth(truth: SceneTruth, polygons: Sequence, iou: float = 0.5) -> TruthScore:
    """Score detected polygons (shapely, in the scene's CRS) against the ships of `truth`."""
    import rasterio

    on: dict[int, list[tuple[float, tuple[float, float], object]]] = {s.id: [] for s in truth.ships}
    false = 0
    pixel_area = truth.pixel_size_m ** 2
    sizes = {s.id: round(s.area_m2 / pixel_area) for s in truth.ships}
    with rasterio.open(truth.labels) as labels:
        for polygon in polygons:
            ids, counts, pixels, centroid = _overlaps(labels, polygon)
            lying = [(int(i), int(c)) for i, c in zip(ids, counts, strict=True) if i and c >= ON_SHIP * pixels]
            false += not lying
            for ship, inter in lying:
                on[ship].append((inter / (pixels + sizes[ship] - inter), centroid, polygon))
    matches = []
    for ship in truth.ships:
        best = max(on[ship.id], default=(0.0, None, None), key=lambda found: found[0])
        pieces = [found[2] for found in on[ship.id]]
        touching = sum(a.distance(b) < 0.5 * truth.pixel_size_m for k, a in enumerate(pieces) for b in pieces[k + 1:])
        matches.append(ShipMatch(ship, len(pieces), best[0], best[0] >= iou, best[1], touching,
                                 tuple(found[1] for found in on[ship.id])))
    return TruthScore(matches, len(polygons), false)


def ship_iou(truth: SceneTruth, labels, polygon, ship: ShipTruth) -> tuple[float, tuple[float, float]]:
    """(IoU of a polygon's pixels with one true ship's, the polygon's pixel centroid (col, row)), as
    `score_against_truth` measures it; `labels`: the open labels.tif of `truth`."""
    ids, counts, pixels, centroid = _overlaps(labels, polygon)
    inter = int(sum(int(c) for i, c in zip(ids, counts, strict=True) if int(i) == ship.id))
    size = round(ship.area_m2 / truth.pixel_size_m ** 2)
    return (inter / (pixels + size - inter) if pixels else 0.0), centroid


def _overlaps(labels, polygon) -> tuple[np.ndarray, np.ndarray, int, tuple[float, float]]:
    """(truth ids under the polygon, their pixel counts, its pixels, its pixels' centroid (col, row))."""
    from rasterio.features import rasterize
    from rasterio.windows import Window, from_bounds

    box = from_bounds(*polygon.bounds, transform=labels.transform)
    c0, r0 = max(0, int(np.floor(box.col_off)) - 1), max(0, int(np.floor(box.row_off)) - 1)
    c1 = min(labels.width, int(np.ceil(box.col_off + box.width)) + 1)
    r1 = min(labels.height, int(np.ceil(box.row_off + box.height)) + 1)
    if c1 <= c0 or r1 <= r0:
        return np.zeros(0, int), np.zeros(0, int), 0, (float("nan"), float("nan"))
    window = Window(c0, r0, c1 - c0, r1 - r0)
    data = labels.read(1, window=window)
    inside = rasterize([polygon], out_shape=data.shape, transform=labels.window_transform(window)).astype(bool)
    rows, cols = np.nonzero(inside)
    if not rows.size:
        return np.zeros(0, int), np.zeros(0, int), 0, (float("nan"), float("nan"))
    ids, counts = np.unique(data[inside], return_counts=True)
    return ids, counts, int(rows.size), (float(cols.mean() + c0), float(rows.mean() + r0))
