"""`shiptoolkit detect`: ships on whole georeferenced scenes, stitched across windows, written as vectors.

Scenes are tiny GeoTIFFs written here (dark sea, bright red rectangles for ships) and the model is
`red_channel_model` (its ship probability is red / 255), so every ship's pixels are known exactly.
"""

import json
import sys

import numpy as np
import pytest
import rasterio  # noqa: F401  (the `geo` extra, in the dev extra too: these tests run wherever the tests do)
import shapely
from affine import Affine
from click.testing import CliRunner
from rasterio.warp import transform as warp

from shiptoolkit.cli import cli
from shiptoolkit.errors import ConfigError, DataError
from shiptoolkit.models.saving import save_model
from shiptoolkit.scenes.detect import detect_scenes, load_detector
from shiptoolkit.scenes.reading import GeoExtraMissingError, require_geo
from shiptoolkit.scenes.stitch import WindowGrid

CRS = "EPSG:32631"  # UTM 31N: metres
ORIGIN = (500_000.0, 5_000_000.0)
PIXEL = 1.5
TRANSFORM = Affine(PIXEL, 0.0, ORIGIN[0], 0.0, -PIXEL, ORIGIN[1])
SEA, SHIP = 20, 230
WINDOW, OVERLAP = 64, 0.25  # stride 48: core borders at 56, 104, 152, ... (window starts + 8)


def write_scene(path, bands: np.ndarray, nodata=None, crs=CRS, transform=TRANSFORM, **options):
    """A GeoTIFF of (count, H, W) `bands`."""
    count, height, width = bands.shape
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=count, dtype=bands.dtype,
                       crs=crs, transform=transform, nodata=nodata, **options) as dst:
        dst.write(bands)
    return path


def rgb_scene(size: int = 256, ships=(), dtype="uint8", sea=SEA, ship=SHIP) -> np.ndarray:
    """(3, size, size): sea everywhere, each (r0, r1, c0, c1) ship bright red."""
    bands = np.full((3, size, size), sea, dtype)
    for r0, r1, c0, c1 in ships:
        bands[0, r0:r1, c0:c1] = ship
    return bands


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, red_channel_model):
    run = tmp_path_factory.mktemp("run")
    save_model(red_channel_model(32), run / "best.keras")
    (run / "config.toml").write_text('[run]\nname = "scenes"\n')
    return run


@pytest.fixture(scope="module")
def detector(run_dir):
    return load_detector(run_dir)


def detect(detector, scene, out, **kwargs):
    return detect_scenes(detector, scene, out, window=WINDOW, overlap=OVERLAP, progress=False, **kwargs)


def features(path):
    return json.loads(path.read_text())["features"]


def test_the_window_cores_tile_the_scene():
    grid = WindowGrid(200, 130, 64, 0.25)
    covered = np.zeros((200, 130), int)
    for tile in grid:
        (r0, r1), (c0, c1) = tile.core_rows, tile.core_cols
        assert tile.row <= r0 < r1 <= tile.row + 64 and tile.col <= c0 < c1 <= tile.col + 64
        covered[r0:r1, c0:c1] += 1
    assert (covered == 1).all()


def test_a_ship_at_known_map_coordinates_comes_back_there(detector, tmp_path):
    scene = write_scene(tmp_path / "scene.tif", rgb_scene(ships=[(100, 110, 40, 70)]))
    summary = detect(detector, scene, tmp_path / "ships.geojson")
    assert summary.ships == 1 and summary.windows == 25
    (ship,) = features(tmp_path / "ships.geojson")
    x, y = ORIGIN[0] + 55 * PIXEL, ORIGIN[1] - 105 * PIXEL  # the rectangle's centre in the scene's CRS
    (lon,), (lat,) = warp(CRS, "EPSG:4326", [x], [y])
    p = ship["properties"]
    assert p["centroid_x"] == pytest.approx(lon, abs=1e-7) and p["centroid_y"] == pytest.approx(lat, abs=1e-7)
    assert p["pixels"] == 300 and p["area_m2"] == pytest.approx(300 * PIXEL**2)
    assert p["length_m"] == pytest.approx(30 * PIXEL) and p["width_m"] == pytest.approx(10 * PIXEL)
    assert p["heading_deg"] == pytest.approx(90.0) and p["confidence"] == pytest.approx(SHIP / 255, abs=1e-3)
    assert p["scene"] == str(scene)
    # the GeoPackage keeps the scene's CRS: the polygon is the rectangle's outline, exactly
    from pyogrio.raw import read

    detect(detector, scene, tmp_path / "ships.gpkg")
    meta, _, geometry, _ = read(tmp_path / "ships.gpkg")[:4]
    assert rasterio.crs.CRS.from_user_input(meta["crs"]) == rasterio.crs.CRS.from_user_input(CRS)
    polygon = shapely.from_wkb(geometry[0])
    assert polygon.bounds == pytest.approx((ORIGIN[0] + 40 * PIXEL, ORIGIN[1] - 110 * PIXEL,
                                            ORIGIN[0] + 70 * PIXEL, ORIGIN[1] - 100 * PIXEL))
    assert polygon.area == pytest.approx(300 * PIXEL**2)


def test_ships_across_window_borders_come_out_once_and_whole(detector, tmp_path):
    # across a vertical border (56), a horizontal one (104), a corner (56, 56), and a diagonal line of
    # pixels that crosses from one core into the next only through a corner (8-connected)
    ships = [(10, 16, 30, 90), (80, 130, 200, 206), (40, 70, 45, 66)]
    bands = rgb_scene(ships=ships)
    for k in range(20):
        bands[0, 140 + k, 94 + k] = SHIP  # passes (151, 105) -> (152, 106): core rows and columns change at once
    scene = write_scene(tmp_path / "scene.tif", bands)
    found = features(tmp_path / "ships.geojson") if detect(detector, scene, tmp_path / "ships.geojson") else []
    assert sorted(f["properties"]["pixels"] for f in found) == sorted([20, 6 * 60, 50 * 6, 30 * 21])


def test_nodata_is_never_predicted_nor_counted(detector, tmp_path):
    bands = rgb_scene(ships=[(100, 110, 150, 180)])
    bands[:, :, :80] = SHIP  # a bright margin, marked nodata: the model would call it a ship
    scene = write_scene(tmp_path / "scene.tif", bands, nodata=SHIP)
    summary = detect(detector, scene, tmp_path / "ships.geojson")
    (ship,) = features(tmp_path / "ships.geojson")
    assert ship["properties"]["pixels"] == 300  # the ship's red is SHIP, but its green and blue are not
    assert summary.scenes[0].nodata == 5  # the first column of windows lies in the margin: not predicted
    assert summary.km2 == pytest.approx((256 * 256 - 256 * 80) * PIXEL**2 / 1e6)


def test_four_bands_in_another_order_and_16_bit_scenes(detector, tmp_path):
    rgb = rgb_scene(ships=[(100, 110, 40, 70)])
    four = np.stack([np.full_like(rgb[0], 99), rgb[2], rgb[1], rgb[0]])  # NIR, B, G, R
    scene = write_scene(tmp_path / "four.tif", four, photometric="MINISBLACK")  # not RGBA: GDAL's default
    with pytest.raises(ConfigError, match="R,G,B"):  # 4 bands without colour interpretation: which ones?
        detect(detector, scene, tmp_path / "none.geojson")
    assert detect(detector, scene, tmp_path / "four.geojson", bands="4,3,2").ships == 1
    assert detect(detector, scene, tmp_path / "wrong.geojson", bands="1,2,3").ships == 0
    deep = write_scene(tmp_path / "deep.tif", rgb_scene(ships=[(100, 110, 40, 70)], dtype="uint16", sea=300,
                                                        ship=2700))
    summary = detect(detector, deep, tmp_path / "fixed.geojson", scale="0,3000")
    (ship,) = features(tmp_path / "fixed.geojson")
    assert ship["properties"]["confidence"] == pytest.approx(round(2700 / 3000 * 255) / 255, abs=1e-3)
    stated = json.loads((tmp_path / "fixed.geojson").read_text())["shiptoolkit"]["scenes"][str(deep)]
    assert stated["scale"] == "0,3000" and stated["dtype"] == "uint16" and summary.ships == 1
    assert detect(detector, deep, tmp_path / "stretch.geojson", scale="p2,p98").ships == 1


def test_geojson_is_rfc_7946(detector, tmp_path):
    scene = write_scene(tmp_path / "scene.tif", rgb_scene(ships=[(100, 110, 40, 70), (20, 30, 150, 160)]))
    detect(detector, scene, tmp_path / "ships.geojson")
    collection = json.loads((tmp_path / "ships.geojson").read_text())
    assert collection["type"] == "FeatureCollection" and "crs" not in collection
    for feature in collection["features"]:
        polygon = shapely.geometry.shape(feature["geometry"])
        assert polygon.is_valid and polygon.exterior.is_ccw  # right-hand rule: outer rings counter-clockwise
        lon, lat = polygon.centroid.x, polygon.centroid.y
        assert 2.9 < lon < 3.1 and 45.1 < lat < 45.2  # UTM 31N, 500 km east, 5000 km north
        assert shapely.from_wkt(feature["properties"]["obb"]).is_valid


def test_an_existing_output_is_never_written_over(detector, tmp_path):
    scene = write_scene(tmp_path / "scene.tif", rgb_scene(ships=[(100, 110, 40, 70)]))
    out = tmp_path / "ships.fgb"
    out.write_text("mine")
    with pytest.raises(ConfigError, match="--force"):
        detect(detector, scene, out)
    assert out.read_text() == "mine"
    assert detect(detector, scene, out, force=True).ships == 1
    assert out.read_bytes()[:3] == b"fgb" and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_clear_errors_for_a_missing_extra_an_unreadable_scene_and_bad_bands(detector, tmp_path, monkeypatch,
                                                                            red_channel_model):
    from shiptoolkit.scenes.detect import Detector

    scene = write_scene(tmp_path / "scene.tif", rgb_scene())
    fixed = Detector(red_channel_model(32), detector.settings)  # not made free-size: windows of 32 px at least
    with pytest.raises(ConfigError, match=r"--window 16 is smaller than the model's fixed input \(32 px\)"):
        detect_scenes(fixed, scene, tmp_path / "a.geojson", window=16, progress=False)
    with pytest.raises(ConfigError, match=r"band 5 does not exist.*1\.\.3"):
        detect(detector, scene, tmp_path / "a.geojson", bands="1,2,5")
    with pytest.raises(ConfigError, match="three band numbers"):
        detect(detector, scene, tmp_path / "a.geojson", bands="1,2")
    broken = tmp_path / "broken.tif"
    broken.write_text("not a raster")
    with pytest.raises(DataError, match="broken.tif"):
        detect(detector, broken, tmp_path / "a.geojson")
    with pytest.raises(ConfigError, match=".gpkg"):
        detect(detector, scene, tmp_path / "a.shp")
    monkeypatch.setitem(sys.modules, "pyogrio", None)
    with pytest.raises(GeoExtraMissingError, match=r"pip install 'shiptoolkit\[geo\]'"):
        require_geo()


def test_the_cli_detects_and_reports_errors_without_a_traceback(run_dir, tmp_path):
    scene = write_scene(tmp_path / "scene.tif", rgb_scene(ships=[(100, 110, 40, 70)]))
    out = tmp_path / "ships.geojson"
    args = ["detect", str(run_dir), str(scene), "--out", str(out), "--window", "64", "--quiet"]
    result = CliRunner().invoke(cli, [*args, "--probabilities", str(tmp_path / "p.tif")])
    assert result.exit_code == 0, result.output
    assert "1 ship" in result.output and len(features(out)) == 1
    with rasterio.open(tmp_path / "p.tif") as probs:
        assert probs.crs == rasterio.crs.CRS.from_user_input(CRS) and probs.transform == TRANSFORM
        assert probs.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG" and probs.dtypes[0] == "uint8"
        assert probs.read(1)[105, 55] == SHIP and probs.read(1)[5, 5] == SEA
    again = CliRunner().invoke(cli, [*args, "--bands", "1,2,5", "--force"])
    assert again.exit_code == 1 and "Traceback" not in again.output and "band 5" in again.output
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "--force" in again.output and "Traceback" not in again.output
    again = CliRunner().invoke(cli, ["detect", str(scene), "--out", str(out)])
    assert again.exit_code == 2 and "is not a folder" in again.output and "--model" in again.output
    model = ["detect", "--model", str(run_dir / "best.keras"), str(scene), str(scene), "--window", "64", "--quiet"]
    again = CliRunner().invoke(cli, [*model, "--out", str(tmp_path / "twice.fgb")])
    assert again.exit_code == 0 and "2 ship(s) on 2 scene(s)" in again.output, again.output


def test_a_scene_at_another_pixel_size_warns_or_is_resampled(detector, tmp_path):
    coarse = Affine(3.0, 0.0, ORIGIN[0], 0.0, -3.0, ORIGIN[1])  # 3 m pixels; the model's are 1.5 m
    scene = write_scene(tmp_path / "coarse.tif", rgb_scene(128, ships=[(50, 55, 20, 35)]), transform=coarse)
    with pytest.warns(UserWarning, match=r"3 m pixels.*1\.5 m.*--resample"):
        kept = detect(detector, scene, tmp_path / "kept.geojson")
    (ship,) = features(tmp_path / "kept.geojson")
    assert kept.scenes[0].info["resampled"] is False and ship["properties"]["area_m2"] == pytest.approx(75 * 9.0)
    resampled = detect(detector, scene, tmp_path / "resampled.gpkg", resample=True)
    info = resampled.scenes[0].info
    assert info["resampled"] is True and (info["width"], info["height"]) == (256, 256)
    assert info["pixel_size_m"] == [1.5, 1.5] and resampled.ships == 1
    assert resampled.km2 == pytest.approx(kept.km2)  # the same ground, in 4x the pixels


def test_a_geographic_scene_gets_metres_from_degrees(detector, tmp_path):
    degrees = Affine(1.5 / 111_320, 0.0, 3.0, 0.0, -1.5 / 111_320, 0.0)  # at the equator: 1.5 m pixels
    scene = write_scene(tmp_path / "lonlat.tif", rgb_scene(128, ships=[(50, 60, 20, 50)]), crs="EPSG:4326",
                        transform=degrees)
    detect(detector, scene, tmp_path / "ships.fgb")
    from pyogrio.raw import read

    meta, _, geometry, fields = read(tmp_path / "ships.fgb")[:4]
    assert rasterio.crs.CRS.from_user_input(meta["crs"]).to_epsg() == 4326
    length = fields[list(meta["fields"]).index("length_m")][0]
    assert length == pytest.approx(30 * 1.5, rel=1e-3)
    assert shapely.from_wkb(geometry[0]).bounds[0] == pytest.approx(3.0 + 20 * 1.5 / 111_320)


def test_the_gate_decides_per_window(detector, tmp_path, red_channel_model):
    import keras

    from shiptoolkit.inference.gate import Gate
    from shiptoolkit.scenes.detect import Detector

    inputs = keras.Input((32, 32, 3))
    classifier = keras.Model(inputs, keras.layers.GlobalMaxPooling2D()(red_channel_model(32)(inputs)))
    scene = write_scene(tmp_path / "scene.tif", rgb_scene(ships=[(100, 110, 40, 70)]))
    strict = Detector(detector.model, detector.settings, Gate(classifier, 32, 0.95))  # red 230/255 = 0.90 < 0.95
    summary = detect(strict, scene, tmp_path / "strict.geojson")
    assert summary.ships == 0 and summary.scenes[0].rejected == summary.scenes[0].predicted == 25
    lenient = Detector(detector.model, detector.settings, Gate(classifier, 32, 0.5))
    assert detect(lenient, scene, tmp_path / "lenient.geojson").scenes[0].rejected == 21  # 4 windows see the ship
    (ship,) = features(tmp_path / "lenient.geojson")
    assert ship["properties"]["gate_probability"] == pytest.approx(SHIP / 255, abs=0.01)


def test_open_ships_are_bounded_by_one_line_of_windows_not_by_the_scene():
    from shiptoolkit.scenes.stitch import ScenePieces

    size, grid = 2000, WindowGrid(2000, 2000, 64, 0.25)
    mask = np.zeros((size, size), bool)
    mask[5:900:10, :] = True  # 90 ships, each as wide as the scene: it crosses every vertical border of its row
    mask[1000:1100, 1000] = True  # and a tall one across two horizontal borders
    pieces, found, most_open = ScenePieces(size), [], 0
    for tile in grid:
        core = tile.core(mask[tile.row:tile.row + 64, tile.col:tile.col + 64])
        pieces.add(tile, core, core.astype(np.float32))
        if tile.j == len(grid.cols) - 1:
            found += pieces.finished()
            most_open = max(most_open, len(pieces.pieces), len(pieces.parent))
    found += pieces.rest()
    assert len(found) == 91 and sorted({p.rows.size for p in found}) == [100, 2000]  # once and whole
    assert most_open <= len(grid.cols) + 1  # open: the fragments on one line of windows, whatever the scene's height


def test_a_scene_smaller_than_a_window_is_padded(detector, tmp_path):
    bands = rgb_scene(50, ships=[(10, 15, 5, 45)])[:, :40]  # 40 rows x 50 columns, window 64
    scene = write_scene(tmp_path / "small.tif", np.ascontiguousarray(bands))
    summary = detect(detector, scene, tmp_path / "ships.geojson")
    (ship,) = features(tmp_path / "ships.geojson")
    assert summary.windows == 1 and ship["properties"]["pixels"] == 200
    assert summary.km2 == pytest.approx(40 * 50 * PIXEL**2 / 1e6)  # the padding is not counted


def test_several_scenes_go_to_one_file_in_the_first_scenes_crs(detector, tmp_path):
    utm = write_scene(tmp_path / "utm.tif", rgb_scene(128, ships=[(50, 60, 20, 50)]))
    east = 1.5 / 111_320 / np.cos(np.radians(45.0))  # 1.5 m pixels at 45° N
    lonlat = write_scene(tmp_path / "lonlat.tif", rgb_scene(128, ships=[(10, 20, 20, 50)]), crs="EPSG:4326",
                         transform=Affine(east, 0.0, 3.0, 0.0, -1.5 / 111_320, 45.0))
    summary = detect(detector, [utm, lonlat], tmp_path / "both.gpkg", probabilities=tmp_path / "p.tif")
    assert [s.ships for s in summary.scenes] == [1, 1]
    assert [s.probabilities.name for s in summary.scenes] == ["p-utm.tif", "p-lonlat.tif"]
    from pyogrio.raw import read

    meta, _, geometry, fields = read(tmp_path / "both.gpkg")[:4]
    assert rasterio.crs.CRS.from_user_input(meta["crs"]).to_epsg() == 32631
    centre = shapely.from_wkb(geometry[1]).centroid  # the lonlat scene's ship, moved into UTM 31N
    (x,), (y,) = warp("EPSG:4326", CRS, [3.0 + 35 * east], [45.0 - 15 * 1.5 / 111_320])
    assert (centre.x, centre.y) == pytest.approx((x, y), abs=0.5)
    assert list(fields[0]) == [str(utm), str(lonlat)]


@pytest.mark.parametrize("bands", [None, "1,2,3"])
def test_the_valid_mask_read_is_gdals(tmp_path, bands):
    """The mask of a nodata value is computed from the bands read (all of them) as GDAL's mask band computes it: a
    pixel is valid where some band is not nodata; with a band left out, GDAL's own mask is read."""
    from rasterio.windows import Window

    from shiptoolkit.scenes.reading import SceneReader

    data = np.random.default_rng(3).integers(0, 3, (4 if bands else 3, 64, 64), dtype=np.uint8)  # many zeros
    scene = write_scene(tmp_path / "scene.tif", data, nodata=0)
    with SceneReader(scene, bands) as reader, rasterio.open(scene) as src:
        _, valid = reader.read(8, 8, 48)
        assert reader._nodata_from_bands is (bands is None)
        np.testing.assert_array_equal(valid, src.dataset_mask(window=Window(8, 8, 48, 48)) > 0)
        assert 0 < valid.mean() < 1
