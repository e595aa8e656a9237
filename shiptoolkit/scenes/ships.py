"""A ship's pixels -> its vector feature: polygon, oriented box, centroid, size, heading, confidence.

The polygon follows the pixel grid (the outline of the ship's pixels, straight runs merged into
one edge), in the scene's CRS; the oriented bounding box is the smallest rotated rectangle around
it. Lengths are in metres from the pixel size (a geographic CRS converted at the scene's
latitude); `heading_deg` is the bearing of the long axis from grid north, clockwise, in [0, 180):
bow and stern are not told apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shiptoolkit.data.instances import split_touching
from shiptoolkit.scenes.stitch import Piece

# The attributes of every ship, in the output's column order (the geometry comes with them).
FIELDS = ("scene", "ship", "length_m", "width_m", "heading_deg", "area_m2", "confidence", "gate_probability",
          "pixels", "centroid_x", "centroid_y", "obb")


@dataclass
class Ship:
    """One ship: geometries in the scene's CRS (shapely) and its attributes."""

    polygon: object
    obb: object
    centroid: tuple[float, float]
    length_m: float
    width_m: float
    heading_deg: float
    area_m2: float
    confidence: float
    gate_probability: float
    pixels: int


def split_pieces(pieces: list[Piece], min_area: int, split: str, split_depth: float) -> list[Piece]:
    """Pieces of at least `min_area` pixels; with split = "watershed", touching ships cut apart first."""
    out = []
    for piece in pieces:
        parts = [piece] if split != "watershed" else _watershed(piece, split_depth)
        out += [p for p in parts if p.rows.size >= max(min_area, 1)]
    return out


def _watershed(piece: Piece, depth: float) -> list[Piece]:
    r0, c0 = int(piece.rows.min()), int(piece.cols.min())
    mask = np.zeros((int(piece.rows.max()) - r0 + 1, int(piece.cols.max()) - c0 + 1), bool)
    mask[piece.rows - r0, piece.cols - c0] = True
    labels = split_touching(mask, depth)[piece.rows - r0, piece.cols - c0]
    if labels.max() <= 1:
        return [piece]
    return [Piece(piece.rows[labels == k], piece.cols[labels == k], piece.probs[labels == k], piece.gate)
            for k in range(1, int(labels.max()) + 1) if (labels == k).any()]


def ship_of(piece: Piece, transform, pixel_m: tuple[float, float]) -> Ship:
    """The `Ship` of a piece's pixels, on a scene grid with this affine `transform` and (x, y) pixel size in metres."""
    import shapely
    from affine import Affine
    from shapely.affinity import affine_transform

    outline = pixel_outline(piece)  # in pixel coordinates (x = column, y = row)
    box = shapely.oriented_envelope(outline)
    length_m, width_m, heading = _box_size(box, pixel_m)
    to_map = tuple(Affine(*transform[:6]).to_shapely())
    return Ship(
        polygon=affine_transform(outline, to_map),
        obb=affine_transform(box, to_map),
        centroid=transform @ (float(piece.cols.mean()) + 0.5, float(piece.rows.mean()) + 0.5),
        length_m=length_m, width_m=width_m, heading_deg=heading,
        area_m2=float(piece.rows.size * pixel_m[0] * pixel_m[1]),
        confidence=float(piece.probs.mean()), gate_probability=piece.gate, pixels=int(piece.rows.size))


def pixel_outline(piece: Piece):
    """The outline of a piece's pixels as a (Multi)Polygon in pixel coordinates, on the pixel grid."""
    import shapely
    from affine import Affine
    from rasterio.features import shapes

    r0, c0 = int(piece.rows.min()), int(piece.cols.min())
    mask = np.zeros((int(piece.rows.max()) - r0 + 1, int(piece.cols.max()) - c0 + 1), np.uint8)
    mask[piece.rows - r0, piece.cols - c0] = 1
    polygons = [shapely.geometry.shape(geom) for geom, value in
                shapes(mask, mask=mask.astype(bool), connectivity=8, transform=Affine.translation(c0, r0)) if value]
    merged = shapely.union_all(polygons) if len(polygons) > 1 else polygons[0]
    return shapely.simplify(merged, 0)  # drop the vertices inside straight runs of the staircase


def _box_size(box, pixel_m: tuple[float, float]) -> tuple[float, float, float]:
    """(length, width, heading) of an oriented box given in pixel coordinates."""
    coords = np.asarray(box.exterior.coords) if box.geom_type == "Polygon" else np.asarray(box.coords)
    if len(coords) < 3:  # a line (one row of pixels): oriented_envelope is degenerate
        coords = np.vstack([coords, coords[-1:]])
    edges = [(coords[k + 1] - coords[k]) * np.asarray(pixel_m) for k in range(2)]
    sizes = [float(np.hypot(*e)) for e in edges]
    long_edge = edges[int(np.argmax(sizes))]
    heading = math.degrees(math.atan2(long_edge[0], -long_edge[1])) % 180.0  # rows grow southwards
    return max(sizes), min(sizes), round(heading, 2) % 180.0
