"""Reading a scene window by window: bands, 16-bit scaling, nodata, pixel size and resampling (`SceneReader`).

A scene is any raster rasterio opens (GeoTIFF, COG, VRT, ...). Windows are read one at a time,
padded where they run past the scene's edges (a padded pixel is nodata), and turned into the
(H, W, 3) uint8 RGB a model takes: the chosen bands, in the model's input order, scaled to
0..255 when the scene is not 8-bit. Nothing here holds more than one window and one small
overview of the scene, whatever the scene's size.
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shiptoolkit.errors import ConfigError, DataError, ShiptoolkitError

GEO_EXTRA = "pip install 'shiptoolkit[geo]'"
OVERVIEW_SIDE = 1024  # the longest side of the overview read for percentile scaling
PIXEL_SIZE_TOLERANCE = 0.1  # a scene's pixel size may differ this much (relative) from data.pixel_size_m silently
METRES_PER_DEGREE = 111_320.0  # along the equator (and, nearly, along a meridian)


class GeoExtraMissingError(ShiptoolkitError, ModuleNotFoundError):
    """rasterio, shapely or pyogrio (the `geo` extra) is not installed."""


def require_geo() -> None:
    """Raise `GeoExtraMissingError` naming the extra unless rasterio, shapely and pyogrio import."""
    for module in ("rasterio", "shapely", "pyogrio"):
        try:
            __import__(module)
        except ImportError as exc:
            raise GeoExtraMissingError(f"Whole scenes need the `geo` extra ({module} is not installed: {exc}). "
                                       f"Install it: {GEO_EXTRA}", name=module) from None


def parse_bands(bands: str | tuple[int, ...] | list[int] | None) -> tuple[int, ...] | None:
    """'1,2,3' (or a sequence) -> (1, 2, 3): the scene's bands, 1-based, in the model's input (R, G, B) order."""
    if bands is None or bands == "":
        return None
    items = [b.strip() for b in bands.split(",")] if isinstance(bands, str) else list(bands)
    try:
        out = tuple(int(b) for b in items)
    except (TypeError, ValueError):
        raise ConfigError(f"--bands {bands!r} is not a list of band numbers: give three 1-based numbers in the "
                          "model's R,G,B order, e.g. --bands 1,2,3 (or 3,2,1 for a BGR scene).") from None
    if len(out) != 3 or min(out) < 1:
        raise ConfigError(f"--bands {bands!r}: give three band numbers, each 1 or more, in the model's R,G,B order, "
                          "e.g. --bands 1,2,3.")
    return out


@dataclass(frozen=True)
class Scaling:
    """How scene values become 0..255: a percentile stretch (`pN,pM`, per band) or one fixed range (`lo,hi`)."""

    low: float
    high: float
    percentile: bool

    def __str__(self) -> str:
        return f"p{self.low:g},p{self.high:g}" if self.percentile else f"{self.low:g},{self.high:g}"


def parse_scale(scale: str | tuple[float, float] | None) -> Scaling | None:
    """'p2,p98' (percentile stretch), '0,3000' (fixed range) or a (low, high) pair -> `Scaling`; None stays None."""
    if scale is None or scale == "":
        return None
    fix = "give --scale p2,p98 (a percentile stretch per band) or --scale 0,3000 (a fixed range of scene values)"
    parts = [p.strip() for p in scale.split(",")] if isinstance(scale, str) else [str(v) for v in scale]
    percentile = all(p.lower().startswith("p") for p in parts)
    try:
        low, high = (float(p[1:] if percentile else p) for p in parts)
    except ValueError:
        raise ConfigError(f"--scale {scale!r} is neither a percentile pair nor a range: {fix}.") from None
    if not low < high or (percentile and not 0 <= low < high <= 100):
        raise ConfigError(f"--scale {scale!r}: low must be below high (percentiles within 0..100): {fix}.")
    return Scaling(low, high, percentile)


def pixel_size_m(crs: Any, transform: Any, height: int) -> tuple[float, float]:
    """(x, y) ground size of a pixel in metres: from the transform, in the CRS's linear unit, or from degrees
    (a geographic CRS) at the scene's central latitude."""
    xres = math.hypot(transform.a, transform.d)
    yres = math.hypot(transform.b, transform.e)
    if crs is not None and crs.is_geographic:
        lat = transform.f + transform.e * height / 2
        return xres * METRES_PER_DEGREE * math.cos(math.radians(lat)), yres * METRES_PER_DEGREE
    factor = crs.linear_units_factor[1] if crs is not None and crs.is_projected else 1.0
    return xres * factor, yres * factor


@dataclass
class SceneInfo:
    """What a scene was read as: stated in the output's metadata."""

    path: str
    crs: str
    width: int
    height: int
    bands: tuple[int, ...]
    dtype: str
    scale: str
    band_ranges: list[tuple[float, float]] = field(default_factory=list)
    pixel_size_m: tuple[float, float] = (0.0, 0.0)
    source_pixel_size_m: tuple[float, float] = (0.0, 0.0)
    resampled: bool = False

    def metadata(self) -> dict:
        return {"crs": self.crs, "width": self.width, "height": self.height, "bands": list(self.bands),
                "dtype": self.dtype, "scale": self.scale, "band_ranges": [list(r) for r in self.band_ranges],
                "pixel_size_m": list(self.pixel_size_m), "source_pixel_size_m": list(self.source_pixel_size_m),
                "resampled": self.resampled}


def open_scene(path: str | Path):
    """The scene opened with rasterio, or a `DataError` naming it and why it cannot be read."""
    import rasterio

    try:
        return rasterio.open(path)
    except (rasterio.errors.RasterioIOError, OSError) as exc:
        raise DataError(f"Cannot read the scene {str(path)!r}: {exc}. Give a raster rasterio/GDAL reads "
                        "(GeoTIFF, COG, VRT, ...); check the path.") from None


def scene_bands(src, bands: tuple[int, ...] | None, path: Path) -> tuple[int, ...]:
    """The bands to read from an open scene (checked to exist), after checking that it is georeferenced."""
    if src.crs is None:
        raise DataError(f"The scene {str(path)!r} has no CRS (not georeferenced): ships could not be placed on "
                        "the map. Give it one, e.g. gdal_edit.py -a_srs EPSG:32631 SCENE.")
    if bands is not None:
        bad = [b for b in bands if b > src.count]
        if bad:
            raise ConfigError(f"--bands {','.join(map(str, bands))}: the scene {str(path)!r} has {src.count} "
                              f"band(s), so band {bad[0]} does not exist. Give three of 1..{src.count} in the "
                              "model's R,G,B order.")
        return bands
    names = [c.name for c in src.colorinterp]
    if all(c in names for c in ("red", "green", "blue")):
        return tuple(names.index(c) + 1 for c in ("red", "green", "blue"))
    if src.count == 3:
        return (1, 2, 3)
    raise ConfigError(f"The scene {str(path)!r} has {src.count} band(s) without red/green/blue colour "
                      "interpretation: say which three are the model's R,G,B, e.g. --bands 1,2,3.")


def check_scene(path: str | Path, bands=None) -> None:
    """Fail early (before a model loads) on a scene that cannot be read, is not georeferenced or lacks a band."""
    with open_scene(path) as src:
        scene_bands(src, parse_bands(bands), Path(path))


class SceneReader:
    """One scene, read window by window as uint8 RGB; `read(row, col, size)` -> (image, valid mask).

    Args:
        path: the scene.
        bands: its bands (1-based) in the model's R, G, B order; default: the bands its colour
            interpretation says are red, green and blue, else 1,2,3 for a 3-band scene.
        scale: `Scaling` for scenes that are not 8-bit (default for them: p2,p98).
        model_pixel_m: the ground size of the model's pixels (data.pixel_size_m).
        resample: read the scene resampled (bilinear) to `model_pixel_m` pixels; else a
            scene more than 10% off only warns.
    """

    def __init__(self, path: str | Path, bands=None, scale: Scaling | None = None, model_pixel_m: float = 1.5,
                 resample: bool = False) -> None:
        self.path = Path(path)
        self.source = open_scene(path)
        self.lock = threading.Lock()  # a GDAL dataset is not thread-safe: windows read ahead, centred windows on demand
        try:
            self._prepare(bands, scale, model_pixel_m, resample)
        except BaseException:
            if getattr(self, "dataset", self.source) is not self.source:
                self.dataset.close()
            self.source.close()
            raise

    def _prepare(self, bands, scale: Scaling | None, model_pixel_m: float, resample: bool) -> None:
        src = self.source
        self.bands = scene_bands(src, parse_bands(bands), self.path)
        self.dtype = src.dtypes[self.bands[0] - 1]
        if scale is None and self.dtype != "uint8":
            scale = Scaling(2.0, 98.0, True)
        self.scaling = scale
        source_m = pixel_size_m(src.crs, src.transform, src.height)
        self.dataset = self._grid(src, source_m, model_pixel_m, resample)
        self._nodata_from_bands = _mask_is_nodata(self.dataset, self.bands)
        self.ranges = self._ranges() if scale is not None else []
        self.info = SceneInfo(str(self.path), src.crs.to_string(), self.width, self.height, self.bands, self.dtype,
                              str(scale) if scale else "none (8-bit)", self.ranges,
                              pixel_size_m(src.crs, self.transform, self.height), source_m,
                              self.dataset is not src)

    @property
    def width(self) -> int:
        return self.dataset.width

    @property
    def height(self) -> int:
        return self.dataset.height

    @property
    def transform(self):
        return self.dataset.transform

    @property
    def crs(self):
        return self.source.crs

    def close(self) -> None:
        if self.dataset is not self.source:
            self.dataset.close()
        self.source.close()

    def __enter__(self) -> SceneReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _grid(self, src, source_m: tuple[float, float], model_m: float, resample: bool):
        """The dataset to read windows from: the scene, or a resampled view of it at the model's pixel size."""
        ratio = (source_m[0] + source_m[1]) / 2 / model_m
        if abs(ratio - 1) <= PIXEL_SIZE_TOLERANCE:
            return src
        if not resample:
            warnings.warn(f"The scene {str(self.path)!r} has {source_m[0]:.3g} m pixels, the model was trained on "
                          f"{model_m:g} m ones (data.pixel_size_m): ships will look {ratio:.2f}x their trained size. "
                          "Pass --resample to read the scene at the model's pixel size.", stacklevel=3)
            return src
        from affine import Affine
        from rasterio.enums import Resampling
        from rasterio.vrt import WarpedVRT

        width, height = max(1, round(src.width * ratio)), max(1, round(src.height * ratio))
        transform = src.transform @ Affine.scale(src.width / width, src.height / height)
        return WarpedVRT(src, crs=src.crs, transform=transform, width=width, height=height,
                         resampling=Resampling.bilinear)

    def _ranges(self) -> list[tuple[float, float]]:
        """(low, high) per band: the fixed range, or the percentiles of an overview read (never the whole scene)."""
        s = self.scaling
        if not s.percentile:
            return [(s.low, s.high)] * 3
        step = max(1, math.ceil(max(self.width, self.height) / OVERVIEW_SIDE))
        shape = (3, max(1, self.height // step), max(1, self.width // step))
        data = self.dataset.read(self.bands, out_shape=shape, masked=True)
        out = []
        for band in data:
            values = band.compressed()
            if values.size == 0:
                raise DataError(f"The scene {str(self.path)!r} is all nodata: nothing to detect ships on.")
            low, high = np.percentile(values, [s.low, s.high])
            out.append((float(low), float(max(high, low + 1e-6))))
        return out

    def read(self, row: int, col: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(image (size, size, 3) uint8, valid (size, size) bool) of the window at (row, col); the parts past the
        scene's edges (and its nodata) are 0 and not valid."""
        from rasterio.windows import Window

        image = np.zeros((size, size, 3), np.uint8)
        valid = np.zeros((size, size), bool)
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + size, self.height), min(col + size, self.width)
        if r1 <= r0 or c1 <= c0:
            return image, valid
        window = Window(c0, r0, c1 - c0, r1 - r0)
        with self.lock:
            data = self.dataset.read(self.bands, window=window)
            if self._nodata_from_bands:  # GDAL's mask band would read and compare every band again
                mask = (data != self.dataset.nodata).any(axis=0)
            else:
                mask = self.dataset.dataset_mask(window=window) > 0
        inner = (slice(r0 - row, r1 - row), slice(c0 - col, c1 - col))
        image[inner] = np.where(mask[..., None], self._to_uint8(data), 0)
        valid[inner] = mask
        return image, valid

    def _to_uint8(self, data: np.ndarray) -> np.ndarray:
        """(3, h, w) scene values -> (h, w, 3) uint8."""
        if not self.ranges:
            return np.moveaxis(data, 0, -1).astype(np.uint8, copy=False)
        out = np.empty(data.shape[1:] + (3,), np.uint8)
        for k, (low, high) in enumerate(self.ranges):
            scaled = (data[k].astype(np.float32) - low) * (255.0 / (high - low))
            out[..., k] = np.clip(scaled, 0, 255).round().astype(np.uint8)
        return out


def _mask_is_nodata(dataset, bands: list[int]) -> bool:
    """Whether the dataset's valid mask is "some band is not the nodata value" (GDAL's mask for a nodata value, no
    mask band or alpha) and every band is read: then it is computed from the bands read, as GDAL computes it."""
    from rasterio.enums import MaskFlags

    nodata = dataset.nodata
    return (nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata))
            and all(list(flags) == [MaskFlags.nodata] for flags in dataset.mask_flag_enums)
            and sorted(bands) == list(range(1, dataset.count + 1)))
