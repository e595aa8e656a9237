"""A synthetic whole scene for tests and demos: a tiled GeoTIFF (or COG) with ships at known map coordinates.

`make_scene(path, ...)` writes a north-up mosaic in a projected CRS (UTM 31N, 1.5 m pixels by default,
as SPOT scenes), 3 or more bands (red, green, blue, near infrared, ...), 8- or 16-bit, with nodata
margins, drawn block by block (`synthetic_render`) so that a 12,288 px scene never needs its whole
array in memory. Beside it: `<stem>.ships.geojson` (the true hulls, RFC 7946 lon/lat), `<stem>.truth.json`
(the same in scene pixels and map coordinates, with each ship's centroid, length, width, heading and
whether it crosses a window border) and `<stem>.labels.tif` (ship ids, 0 = none, on the scene's grid).
rasterio and shapely (the `geo` extra) are imported inside the functions that use them.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from shiptoolkit.errors import DataError
from shiptoolkit.scenes.reading import require_geo
from shiptoolkit.scenes.stitch import core_bounds, window_starts
from shiptoolkit.scenes.synthetic_render import Layout, crosses, make_layout, place_ships, render_block, valid_footprint

BLOCK = 512  # the GeoTIFF's tiles, and the blocks drawn and written at a time
UINT16_GAIN, UINT16_OFFSET = 12.0, 150.0  # 16-bit scenes: value = 8-bit rendering * 12 + 150 (150..3210)
DEFAULT_ORIGIN = (460_000.0, 5_710_000.0)  # UTM 31N, the southern North Sea (2.4 E, 51.5 N)
BAND_NAMES = ("red", "green", "blue", "nir")


@dataclass(frozen=True)
class ShipTruth:
    """One true ship. Map coordinates are in the scene's CRS (metres); pixels are (col, row) of pixel centres."""

    id: int
    polygon: list[tuple[float, float]]  # hull vertices, map coordinates
    pixel_polygon: list[tuple[int, int]]  # the same, scene pixels (as filled)
    centroid: tuple[float, float]  # of the ship's pixels, map coordinates
    pixel_centroid: tuple[float, float]  # (col, row)
    lonlat: tuple[float, float]
    length_m: float
    width_m: float
    heading_deg: float  # bow direction, clockwise from north, [0, 360)
    axis_deg: float  # heading modulo 180 (an oriented box cannot tell bow from stern)
    area_m2: float  # its pixels (pixels two ships both claim belong to neither, as in the Airbus masks)
    crosses_border: bool  # crosses a window edge or overlap middle of detect's `window`/`overlap` grid


@dataclass(frozen=True)
class SceneTruth:
    """What `make_scene` wrote, and where the ships are."""

    path: Path
    geojson: Path
    labels: Path
    truth: Path
    size: int
    bands: int
    dtype: str
    crs: str
    transform: tuple[float, ...]  # GDAL-style affine (a, b, c, d, e, f)
    pixel_size_m: float
    nodata: int | None
    nodata_margin: int
    window: int
    overlap: float
    value_scale: tuple[float, float]  # (gain, offset) from the 8-bit rendering to the stored values
    ships: list[ShipTruth]

    @property
    def crossing(self) -> list[ShipTruth]:
        return [s for s in self.ships if s.crosses_border]

    @property
    def inside(self) -> list[ShipTruth]:
        return [s for s in self.ships if not s.crosses_border]


def border_lines(size: int, window: int, overlap: float) -> np.ndarray:
    """Pixel positions (the same on both axes) where `detect`'s windows cut the scene: their edges and the
    middles of their overlaps (where stitching joins neighbouring windows' cores), inside the scene."""
    stride = max(1, int(round(window * (1 - overlap))))
    starts = window_starts(size, window, stride)
    lines = [*starts, *(s + window for s in starts), *core_bounds(starts, window, stride, size)]
    return np.unique([line for line in lines if 0 < line < size])


def _check(size: int, bands: int, dtype: str, window: int, overlap: float, nodata_margin: int) -> None:
    if size < 64:
        raise ValueError(f"size must be >= 64 px. Received: size={size}")
    if bands < 3:
        raise ValueError(f"bands must be >= 3 (red, green, blue, then near infrared, ...). Received: bands={bands}")
    if dtype not in ("uint8", "uint16"):
        raise ValueError(f"dtype must be 'uint8' or 'uint16'. Received: dtype={dtype!r}")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be a fraction of the window in [0, 1). Received: overlap={overlap}")
    if not 0 <= nodata_margin < size // 4:
        raise ValueError(f"nodata_margin must be in [0, size/4={size // 4}) px. "
                         f"Received: nodata_margin={nodata_margin}")


def make_scene(path: str | Path, size: int = 3072, bands: int = 3, dtype: str = "uint8", crs: str = "EPSG:32631",
               pixel_size: float = 1.5, origin: tuple[float, float] = DEFAULT_ORIGIN, nodata_margin: int = 64,
               ships: int | None = None, seed: int = 0, window: int = 768, overlap: float = 0.0,
               crossing_fraction: float = 0.4, nodata: int | None = 0, mask: bool = False, cog: bool = False,
               coast: bool | None = None) -> SceneTruth:
    """Write a synthetic scene at `path` (a new .tif) and its truth beside it; return the truth.

    Args:
        path: the GeoTIFF to write; it and its companions must not exist (never overwritten).
        size: height and width in pixels (12,288 px: about 340 km² at 1.5 m).
        bands: 3 (red, green, blue) or more (then near infrared, then red/NIR mixtures).
        dtype: "uint8", or "uint16" (values = 8-bit rendering * 12 + 150, as a 12-bit sensor's counts).
        crs: a projected CRS in metres.
        pixel_size: metres.
        origin: (x, y) of the scene's top-left corner in `crs`.
        nodata_margin: px of nodata on each side, with one corner cut diagonally (0: none).
        ships: how many (default: 2 per 768 px chip of area, at least 2).
        seed: the scene is a pure function of its arguments (except `path`, `cog`).
        window: `shiptoolkit detect --window` (px): about `crossing_fraction` of the ships cross the borders of
            its windows (`border_lines`); the others lie clear of every border.
        overlap: `shiptoolkit detect --overlap` (the fraction of a window shared with its neighbour).
        crossing_fraction: the share of ships placed across window borders.
        nodata: the value of pixels outside the footprint (valid pixels are never it), or None with `mask`.
        mask: also (or, with nodata=None, instead) write an internal GDAL mask of the footprint.
        cog: write a Cloud-Optimized GeoTIFF (with overviews) instead of a plain tiled one.
        coast: land along one side, with piers (default: decided by the seed, half the time).
    """
    _check(size, bands, dtype, window, overlap, nodata_margin)
    require_geo()
    if nodata_margin and nodata is None and not mask:
        raise ValueError("nodata margins need a nodata value or mask=True. Received: nodata=None, mask=False")
    path = Path(path)
    names = _companions(path)
    existing = [p for p in [path, *names.values()] if p.exists()]
    if existing:
        raise DataError(f"{str(existing[0])!r} exists; synth never overwrites. Choose a new name or folder.")
    layout = make_layout(size, seed, coast)
    count = max(2, round(2 * (size / 768) ** 2)) if ships is None else ships
    place_ships(layout, count, crossing_fraction, border_lines(size, window, overlap), nodata_margin)
    transform = (pixel_size, 0.0, origin[0], 0.0, -pixel_size, origin[1])
    truth = SceneTruth(path, names["geojson"], names["labels"], names["truth"], size, bands, dtype, crs, transform,
                       pixel_size, nodata, nodata_margin, window, overlap,
                       (UINT16_GAIN, UINT16_OFFSET) if dtype == "uint16" else (1.0, 0.0),
                       _truths(layout, transform, crs, border_lines(size, window, overlap)))
    _write_rasters(layout, truth, mask, cog)
    _write_geojson(truth)
    names["truth"].write_text(json.dumps(_truth_dict(truth), indent=1))
    return truth


def _companions(path: Path) -> dict[str, Path]:
    stem = path.name.removesuffix(path.suffix)
    return {"geojson": path.with_name(f"{stem}.ships.geojson"), "labels": path.with_name(f"{stem}.labels.tif"),
            "truth": path.with_name(f"{stem}.truth.json")}


def _pixel_to_map(transform: tuple[float, ...], col: float, row: float) -> tuple[float, float]:
    """Map coordinates of the centre of pixel (col, row) (or of any point given in pixel-centre units)."""
    a, _, c, _, e, f = transform
    return c + (col + 0.5) * a, f + (row + 0.5) * e


def _truths(layout: Layout, transform: tuple[float, ...], crs: str, lines: np.ndarray) -> list[ShipTruth]:
    from rasterio.warp import transform as reproject_points

    px = transform[0]
    out = []
    for i, ship in enumerate(layout.ships, start=1):
        rows, cols = np.nonzero(ship.mask)
        pixel_centroid = (float(cols.mean() + ship.c0), float(rows.mean() + ship.r0))
        centroid = _pixel_to_map(transform, *pixel_centroid)
        lon, lat = reproject_points(crs, "EPSG:4326", [centroid[0]], [centroid[1]])
        heading = float(np.degrees(np.arctan2(np.cos(ship.angle), -np.sin(ship.angle))) % 360)
        out.append(ShipTruth(
            i, [_pixel_to_map(transform, float(c), float(r)) for c, r in ship.polygon],
            [(int(c), int(r)) for c, r in ship.polygon], centroid, pixel_centroid, (lon[0], lat[0]),
            round(float(ship.length) * px, 2), round(float(ship.width) * px, 2), round(heading, 2),
            round(heading % 180, 2),
            float(ship.mask.sum()) * px * px, crosses(ship, lines)))
    return out


def _profile(truth: SceneTruth, count: int, dtype: str, nodata: int | None) -> dict:
    return {"driver": "GTiff", "width": truth.size, "height": truth.size, "count": count, "dtype": dtype,
            "crs": truth.crs, "transform": _affine(truth.transform), "nodata": nodata, "tiled": True,
            "blockxsize": BLOCK, "blockysize": BLOCK, "compress": "deflate", "predictor": 2, "BIGTIFF": "IF_SAFER"}


def _affine(transform: tuple[float, ...]):
    from rasterio.transform import Affine

    return Affine(*transform)


def _write_rasters(layout: Layout, truth: SceneTruth, mask: bool, cog: bool) -> None:
    """The scene (through a temporary file, renamed when complete) and its labels, block by block."""
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.windows import Window

    partial = truth.path.with_name(f".{truth.path.name}.partial-{os.getpid()}")
    scene_file = partial.with_suffix(".gtiff") if cog else partial
    try:
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), \
                rasterio.open(scene_file, "w", **_profile(truth, truth.bands, truth.dtype, truth.nodata)) as dst, \
                rasterio.open(truth.labels, "w", **_profile(truth, 1, "uint16", None)) as labels:
            dst.descriptions = tuple(BAND_NAMES[b] if b < 4 else f"red_nir_mix_{b - 3}" for b in range(truth.bands))
            dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue,
                               *[ColorInterp.undefined] * (truth.bands - 3)]  # detect's default bands: R, G, B
            dst.update_tags(shiptoolkit_synthetic=f"seed {layout.seed}", value_scale=json.dumps(truth.value_scale))
            for r0 in range(0, truth.size, BLOCK):
                for c0 in range(0, truth.size, BLOCK):
                    h, w = min(BLOCK, truth.size - r0), min(BLOCK, truth.size - c0)
                    pixels, valid = _block(layout, truth, r0, c0, h, w)
                    window = Window(c0, r0, w, h)
                    dst.write(pixels, window=window)
                    if mask:
                        dst.write_mask(valid.astype(np.uint8) * 255, window=window)
                    labels.write(_labels(layout, r0, c0, h, w)[None], window=window)
        if cog:
            _to_cog(scene_file, partial)
        partial.rename(truth.path)
    except BaseException:
        for leftover in (partial, scene_file, truth.labels):
            leftover.unlink(missing_ok=True)
        raise
    finally:
        scene_file.unlink(missing_ok=True) if cog else None


def _to_cog(source: Path, target: Path) -> None:
    import rasterio
    from rasterio.shutil import copy

    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        copy(source, target, driver="COG", COMPRESS="DEFLATE", PREDICTOR="YES", BLOCKSIZE=BLOCK, BIGTIFF="IF_SAFER")


def _block(layout: Layout, truth: SceneTruth, r0: int, c0: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """One block as stored: (bands, h, w) in the scene's dtype (valid pixels never equal nodata), and the footprint."""
    image, _ = render_block(layout, r0, c0, h, w, truth.bands)
    gain, offset = truth.value_scale
    top = 255 * gain + offset
    values = np.clip(np.rint(np.clip(image, 0, 255) * gain + offset), 1, top).astype(truth.dtype)
    if truth.nodata is not None and 1 <= truth.nodata <= top:
        values[values == truth.nodata] = truth.nodata + (1 if truth.nodata < top else -1)
    rows, cols = np.mgrid[r0:r0 + h, c0:c0 + w]
    valid = valid_footprint(rows, cols, truth.size, truth.nodata_margin)
    values[~valid] = truth.nodata or 0
    return np.ascontiguousarray(values.transpose(2, 0, 1)), valid


def _labels(layout: Layout, r0: int, c0: int, h: int, w: int) -> np.ndarray:
    out = np.zeros((h, w), np.uint16)
    for i, ship in enumerate(layout.ships, start=1):
        sh, sw = ship.mask.shape
        top, left, bottom, right = max(ship.r0, r0), max(ship.c0, c0), min(ship.r0 + sh, r0 + h), min(ship.c0 + sw,
                                                                                                       c0 + w)
        if top < bottom and left < right:
            part = ship.mask[top - ship.r0:bottom - ship.r0, left - ship.c0:right - ship.c0].astype(bool)
            out[top - r0:bottom - r0, left - c0:right - c0][part] = i
    return out


def _write_geojson(truth: SceneTruth) -> None:
    """The true hulls as RFC 7946 GeoJSON: lon/lat (EPSG:4326), exterior rings counterclockwise, no `crs` member."""
    from rasterio.warp import transform_geom
    from shapely.geometry import Polygon, mapping
    from shapely.geometry.polygon import orient

    features = []
    for ship in truth.ships:
        geometry = transform_geom(truth.crs, "EPSG:4326", {"type": "Polygon", "coordinates": [ship.polygon]})
        polygon = orient(Polygon(geometry["coordinates"][0]), 1.0)
        ring = [[round(x, 7), round(y, 7)] for x, y in mapping(polygon)["coordinates"][0]]
        properties = {k: v for k, v in asdict(ship).items() if k not in ("polygon", "pixel_polygon", "lonlat")}
        properties.update(scene=truth.path.name, centroid=list(ship.lonlat))
        features.append({"type": "Feature", "id": ship.id, "geometry": {"type": "Polygon", "coordinates": [ring]},
                         "properties": properties})
    truth.geojson.write_text(json.dumps({"type": "FeatureCollection", "features": features}))


def _truth_dict(truth: SceneTruth) -> dict:
    out = asdict(truth)
    for key in ("path", "geojson", "labels", "truth"):
        out[key] = Path(out[key]).name
    return out


def load_truth(path: str | Path) -> SceneTruth:
    """A scene's truth read back from its `<stem>.truth.json` (or from the scene's path)."""
    path = Path(path)
    if not path.name.endswith(".truth.json"):
        path = _companions(path)["truth"]
    data = json.loads(path.read_text())
    for key in ("path", "geojson", "labels", "truth"):
        data[key] = path.parent / data[key]
    ships = [ShipTruth(**{k: [tuple(p) for p in v] if k in ("polygon", "pixel_polygon") else
                          tuple(v) if isinstance(v, list) else v for k, v in s.items()}) for s in data.pop("ships")]
    return SceneTruth(**{**data, "transform": tuple(data["transform"]), "value_scale": tuple(data["value_scale"]),
                         "ships": ships})


def generate_scene(out: str | Path, name: str = "scene.tif", **options) -> SceneTruth:
    """`make_scene` into a new folder `out` (absent or empty), filled in a temporary folder and renamed when done:
    an interrupted synth leaves nothing behind."""
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{str(out)!r} is not an empty folder; synth never overwrites. Choose a new folder.")
    work = out.parent / f".{out.name}.synth-{os.getpid()}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        make_scene(work / name, **options)
        if out.exists():
            out.rmdir()
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return load_truth(out / name)
