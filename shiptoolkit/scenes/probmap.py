"""The stitched ship probabilities of a scene as a georeferenced Cloud-Optimized GeoTIFF (`--probabilities`).

Each window writes its core (see `shiptoolkit.scenes.stitch`) into a tiled GeoTIFF as uint8
(probability x 255; nodata pixels 0), so the map is exactly what the ships were cut from; once
the scene is done it is copied to a COG (deflate, with overviews) and renamed into place.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from shiptoolkit.scenes.stitch import Tile
from shiptoolkit.scenes.vectors import check_free, temporary_beside

BLOCK = 512


def probability_paths(path: str | Path | None, scenes: list[Path]) -> list[Path | None]:
    """Where each scene's map goes: `path` itself for one scene, `<stem>-<scene stem>.tif` beside it for several."""
    if path is None:
        return [None] * len(scenes)
    path = Path(path)
    if len(scenes) == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{Path(scene).stem}{path.suffix or '.tif'}") for scene in scenes]


class ProbabilityMap:
    """A uint8 probability raster on a scene's grid, written window core by window core."""

    def __init__(self, path: str | Path, width: int, height: int, crs, transform, force: bool = False) -> None:
        import rasterio

        self.path, self.force = Path(path), force
        check_free(self.path, force, "--probabilities")
        self.tiled = temporary_beside(self.path.with_suffix(".tiled.tif"))
        self.dataset = rasterio.open(self.tiled, "w", driver="GTiff", width=width, height=height, count=1,
                                     dtype="uint8", crs=crs, transform=transform, tiled=True, blockxsize=BLOCK,
                                     blockysize=BLOCK, compress="deflate")

    def write(self, tile: Tile, probs: np.ndarray) -> None:
        """The core probabilities (float, 0..1) of a tile."""
        self.write_at(tile.core_rows[0], tile.core_cols[0], probs)

    def write_at(self, row: int, col: int, probs: np.ndarray) -> None:
        """Probabilities (float, 0..1) over the scene pixels from (row, col), e.g. a centred window's, written over
        what its windows wrote there."""
        from rasterio.windows import Window

        values = np.clip(np.asarray(probs) * 255.0, 0, 255).round().astype(np.uint8)
        self.dataset.write(values, 1, window=Window(col, row, values.shape[1], values.shape[0]))

    def close(self) -> Path:
        """Copy to a COG beside the target and rename it into place; returns the path."""
        from rasterio.shutil import copy

        self.dataset.close()
        tmp = temporary_beside(self.path)
        try:
            copy(self.tiled, tmp, driver="COG", compress="DEFLATE", blocksize=BLOCK)
            check_free(self.path, self.force, "--probabilities")
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
            self.tiled.unlink(missing_ok=True)
        return self.path

    def discard(self) -> None:
        self.dataset.close()
        self.tiled.unlink(missing_ok=True)
