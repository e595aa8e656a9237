"""The synthetic whole scene (`shiptoolkit synth --scene`): georeferenced where it says, ships where its truth
says (some across window borders), nodata margins, 4 bands and 16 bits, never written over."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio  # the `geo` extra, in the dev extra too: these tests run wherever the tests do
import shapely
from click.testing import CliRunner
from rasterio import features
from rasterio.transform import from_origin

from shiptoolkit.cli import cli
from shiptoolkit.errors import DataError
from shiptoolkit.scenes.synthetic import border_lines, generate_scene, load_truth, make_scene

SMALL = {"size": 320, "window": 128, "overlap": 0.125, "nodata_margin": 16, "seed": 1}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """The same small scene with 8 ships and with none (the sea and distractors do not depend on the ships)."""
    folder = tmp_path_factory.mktemp("scenes")
    return (make_scene(folder / "ships.tif", ships=8, **SMALL), make_scene(folder / "empty.tif", ships=0, **SMALL))


def read(path, band=None):
    with rasterio.open(path) as src:
        return src.read(band) if band else src.read()


def test_the_scene_is_a_tiled_compressed_geotiff_in_utm_with_1_5_m_pixels(scenes):
    truth = scenes[0]
    with rasterio.open(truth.path) as src:
        assert src.crs.to_epsg() == 32631 and src.transform == from_origin(460_000.0, 5_710_000.0, 1.5, 1.5)
        assert (src.width, src.height, src.count, src.dtypes[0]) == (320, 320, 3, "uint8")
        assert src.profile["tiled"] and src.compression.value == "DEFLATE"
        assert src.descriptions == ("red", "green", "blue")
    with rasterio.open(truth.labels) as labels:
        assert labels.crs.to_epsg() == 32631 and labels.transform == from_origin(460_000.0, 5_710_000.0, 1.5, 1.5)


def test_ships_are_drawn_exactly_where_the_truth_puts_them(scenes):
    with_ships, without = scenes
    labels = read(with_ships.labels, 1)
    changed = (read(with_ships.path) != read(without.path)).any(0)
    assert changed[labels > 0].mean() > 0.97 and not changed[labels == 0].any()
    with rasterio.open(with_ships.path) as src:
        transform = src.transform
    for ship in with_ships.ships:
        drawn = labels == ship.id
        shape = [({"type": "Polygon", "coordinates": [ship.polygon]}, 1)]
        polygon = features.rasterize(shape, out_shape=labels.shape, transform=transform).astype(bool)
        touched = features.rasterize(shape, out_shape=labels.shape, transform=transform, all_touched=True)
        assert not (drawn & (touched == 0)).any()  # nothing drawn outside the map polygon
        assert (polygon & drawn).sum() >= 0.75 * polygon.sum()  # nor much of it left undrawn (moored pairs
        # share none of the pixels both hulls cover, as in the Airbus masks)
        rows, cols = np.nonzero(drawn)
        x, y = transform @ (cols.mean() + 0.5, rows.mean() + 0.5)
        assert np.hypot(x - ship.centroid[0], y - ship.centroid[1]) < 0.01
        assert ship.area_m2 == pytest.approx(drawn.sum() * 1.5 * 1.5)


def test_the_truth_geojson_is_rfc_7946_lon_lat_and_matches_the_map_polygons(scenes):
    truth = scenes[0]
    data = json.loads(truth.geojson.read_text())
    assert "crs" not in data and len(data["features"]) == len(truth.ships)
    for feature, ship in zip(data["features"], truth.ships, strict=True):
        polygon = shapely.geometry.shape(feature["geometry"])
        assert polygon.is_valid and polygon.exterior.is_ccw  # RFC 7946: exterior rings counterclockwise
        lon, lat = polygon.centroid.x, polygon.centroid.y
        assert 2.3 < lon < 2.5 and 51.4 < lat < 51.6  # UTM 31N, the southern North Sea
        assert np.hypot(lon - ship.lonlat[0], (lat - ship.lonlat[1])) < 1e-4
        assert feature["properties"]["length_m"] == ship.length_m and feature["properties"]["scene"] == "ships.tif"


def test_some_ships_cross_window_borders_and_the_others_none(scenes):
    truth = scenes[0]
    assert truth.crossing and truth.inside
    labels = read(truth.labels, 1)
    lines = border_lines(320, 128, 0.125)
    for ship in truth.ships:
        rows, cols = np.nonzero(labels == ship.id)
        across = any(((lines > v.min()) & (lines <= v.max())).any() for v in (rows, cols))
        assert across == ship.crosses_border, ship


def test_nodata_margins_carry_the_nodata_value_and_the_footprint_never_does(scenes):
    truth = scenes[0]
    pixels = read(truth.path)
    with rasterio.open(truth.path) as src:
        assert src.nodata == 0
        valid = src.dataset_mask() > 0
    assert (pixels[:, :16] == 0).all() and (pixels[:, :, -16:] == 0).all() and (pixels[:, 20, 20] == 0).all()
    assert valid[100:200, 100:200].all() and not valid[:16].any()
    assert (pixels[:, valid] > 0).all()  # a valid pixel is never taken for nodata


def test_four_bands_and_16_bits_hold_the_same_scene(tmp_path, scenes):
    truth = make_scene(tmp_path / "wide.tif", ships=8, bands=4, dtype="uint16", **SMALL)
    pixels = read(truth.path)
    with rasterio.open(truth.path) as src:
        assert (src.count, src.dtypes[0], src.descriptions[3]) == (4, "uint16", "nir")
        assert [c.name for c in src.colorinterp][:3] == ["red", "green", "blue"]  # what detect reads by default
    eight_bit = read(scenes[0].path).astype(np.float64)
    valid = eight_bit.all(0)
    assert np.abs(pixels[:3, valid] - (eight_bit[:, valid] * 12 + 150)).max() <= 12  # within one 8-bit step
    assert truth.value_scale == (12.0, 150.0) and (pixels[:, ~valid] == 0).all()
    assert load_truth(truth.path) == truth


def test_a_cloud_optimized_scene_with_a_mask_instead_of_a_nodata_value(tmp_path):
    truth = make_scene(tmp_path / "cog.tif", ships=2, nodata=None, mask=True, cog=True, **SMALL)
    with rasterio.open(truth.path) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG" and src.nodata is None
        mask = src.dataset_mask()
    assert not mask[:16].any() and mask[100:200, 100:200].all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cog.labels.tif", "cog.ships.geojson", "cog.tif",
                                                          "cog.truth.json"]  # no temporary file left


def test_an_existing_scene_or_a_non_empty_folder_is_never_written_over(tmp_path, scenes):
    with pytest.raises(DataError, match="never overwrites"):
        make_scene(scenes[0].path, **SMALL)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not an empty folder"):
        generate_scene(tmp_path / "out", **SMALL)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]
    with pytest.raises(ValueError, match="bands must be >= 3"):
        make_scene(tmp_path / "two.tif", bands=2)


def test_the_cli_writes_a_scene_and_refuses_options_of_the_other_kind(tmp_path):
    out = tmp_path / "scene"
    args = ["synth", str(out), "--scene", "--scene-size", "256", "--window", "128", "--overlap", "0.125",
            "--bands", "4", "--dtype", "uint16", "--nodata-margin", "8", "--seed", "3"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "256 x 256 px" in result.output and "4 bands uint16" in result.output
    assert load_truth(out / "scene.tif").bands == 4
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "never overwrites" in again.output and "Traceback" not in again.output
    mixed = CliRunner().invoke(cli, ["synth", str(tmp_path / "x"), "--scene", "--images", "3"])
    assert mixed.exit_code == 2 and "--images applies to a dataset of images, not to --scene" in mixed.output
    lonely = CliRunner().invoke(cli, ["synth", str(tmp_path / "x"), "--bands", "4"])
    assert lonely.exit_code == 2 and "--bands applies to a scene (add --scene)" in lonely.output
    assert not (tmp_path / "x").exists()
