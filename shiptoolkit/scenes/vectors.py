"""Writing ships as vector features: GeoJSON (RFC 7946, lon/lat), GeoPackage or FlatGeobuf (the scene's CRS).

The format follows the output's extension. An existing file is never written over unless asked
(`force`): the features go to a temporary file beside it, renamed into place once complete.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shiptoolkit.errors import ConfigError
from shiptoolkit.scenes.ships import FIELDS, Ship

DRIVERS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".fgb": "FlatGeobuf"}
LONLAT = "EPSG:4326"


@dataclass
class SceneShips:
    """The ships of one scene, in its CRS (a rasterio CRS)."""

    name: str
    crs: object
    ships: list[Ship] = field(default_factory=list)


def output_driver(path: str | Path) -> str:
    """The OGR driver of an output path, from its extension (or a `ConfigError` naming the ones known)."""
    suffix = Path(path).suffix.lower()
    if suffix not in DRIVERS:
        raise ConfigError(f"--out {str(path)!r}: unknown vector format {suffix or '(no extension)'!r}; end the name "
                          "in .geojson (RFC 7946, lon/lat), .gpkg (GeoPackage) or .fgb (FlatGeobuf).")
    return DRIVERS[suffix]


def check_free(path: str | Path, force: bool, option: str = "--out") -> None:
    """Refuse to write over an existing file unless `force`, naming the way out."""
    path = Path(path)
    if path.exists() and not force:
        raise ConfigError(f"{option} {str(path)!r} exists already: shiptoolkit never writes over a file. Give a new "
                          "name, or pass --force to replace it (force=True in Python).")
    if path.is_dir():
        raise ConfigError(f"{option} {str(path)!r} is a folder: give a file name.")


def temporary_beside(path: Path) -> Path:
    """A temporary name in the same folder and with the same extension (so that the rename is atomic)."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")


def _reproject(geoms: np.ndarray, src_crs, dst_crs) -> np.ndarray:
    import shapely
    from rasterio.crs import CRS
    from rasterio.warp import transform

    if CRS.from_user_input(src_crs) == CRS.from_user_input(dst_crs) or not len(geoms):
        return geoms

    def move(coords: np.ndarray) -> np.ndarray:
        xs, ys = transform(src_crs, dst_crs, coords[:, 0].tolist(), coords[:, 1].tolist())
        return np.column_stack([xs, ys])

    return shapely.transform(geoms, move)


def _columns(groups: list[SceneShips], dst_crs) -> tuple[np.ndarray, dict[str, list]]:
    """(polygons, attribute columns) of every ship, the geometries reprojected to `dst_crs`."""
    import shapely

    polygons, columns = [], {name: [] for name in FIELDS}
    for group in groups:
        ships = group.ships
        polys = _reproject(np.array([s.polygon for s in ships], object), group.crs, dst_crs)
        boxes = _reproject(np.array([s.obb for s in ships], object), group.crs, dst_crs)
        centres = _reproject(shapely.points([s.centroid for s in ships]) if ships else np.array([], object),
                             group.crs, dst_crs)
        polygons += list(polys)
        for k, ship in enumerate(ships):
            row = {"scene": group.name, "ship": k + 1, "length_m": ship.length_m, "width_m": ship.width_m,
                   "heading_deg": ship.heading_deg, "area_m2": ship.area_m2, "confidence": ship.confidence,
                   "gate_probability": ship.gate_probability, "pixels": ship.pixels,
                   "centroid_x": float(centres[k].x), "centroid_y": float(centres[k].y),
                   "obb": shapely.to_wkt(boxes[k], rounding_precision=-1)}
            for name in FIELDS:
                columns[name].append(row[name])
    return np.array(polygons, object), columns


def write_ships(path: str | Path, groups: list[SceneShips], metadata: dict, force: bool = False) -> Path:
    """Write every ship to `path` (format by extension) through a temporary file; returns `path`.

    GeoJSON is RFC 7946: lon/lat (EPSG:4326), counter-clockwise outer rings, no "crs" member; the
    run's settings (bands, scaling, pixel sizes) are its top-level "shiptoolkit" member. A
    GeoPackage or FlatGeobuf keeps the first scene's CRS (other scenes are reprojected to it) and
    holds the same settings as the layer's metadata item "shiptoolkit".
    """
    path = Path(path)
    driver = output_driver(path)
    check_free(path, force)
    dst_crs = LONLAT if driver == "GeoJSON" else (groups[0].crs if groups else LONLAT)
    polygons, columns = _columns(groups, dst_crs)
    tmp = temporary_beside(path)
    try:
        if driver == "GeoJSON":
            _write_geojson(tmp, polygons, columns, metadata)
        else:
            _write_ogr(tmp, driver, polygons, columns, dst_crs, metadata)
        check_free(path, force)  # appeared meanwhile?
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _null(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def _write_geojson(path: Path, polygons: np.ndarray, columns: dict[str, list], metadata: dict) -> None:
    import shapely

    oriented = shapely.orient_polygons(polygons, exterior_cw=False) if len(polygons) else polygons
    features = [{"type": "Feature", "geometry": json.loads(shapely.to_geojson(geom)),
                 "properties": {name: _null(columns[name][k]) for name in FIELDS}}
                for k, geom in enumerate(oriented)]
    collection = {"type": "FeatureCollection", "shiptoolkit": metadata, "features": features}
    path.write_text(json.dumps(collection, allow_nan=False))


def _write_ogr(path: Path, driver: str, polygons: np.ndarray, columns: dict[str, list], crs, metadata: dict) -> None:
    import shapely
    from pyogrio.raw import write
    from rasterio.crs import CRS

    arrays = []
    for name in FIELDS:
        values = columns[name]
        if name in ("scene", "obb"):
            arrays.append(np.array(values, object))
        elif name in ("ship", "pixels"):
            arrays.append(np.array(values, np.int64))
        else:
            arrays.append(np.array(values, np.float64))
    write(str(path), shapely.to_wkb(polygons) if len(polygons) else np.array([], object), arrays, list(FIELDS),
          driver=driver, layer="ships", geometry_type="MultiPolygon", promote_to_multi=True,
          crs=CRS.from_user_input(crs).to_wkt(), layer_metadata={"shiptoolkit": json.dumps(metadata)})
