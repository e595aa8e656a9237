"""The benchmark's reference for stitching: `predict` on a chip centred on each true ship, scored as detect's ships.

The scene is a synthetic scene's truth redrawn as bright red hulls on a dark sea, and the model is
`red_channel_model` (ship probability = red / 255): it finds every true ship's pixels exactly, so a
chip centred on a ship must find it, where the truth puts it, and so must `detect` (paired: 0).
"""

import dataclasses
import math

import numpy as np
import pytest
import rasterio

from shiptoolkit.models.saving import save_model
from shiptoolkit.scenes.against_chips import chip_origin, paired_difference, predict_on_centred_chips, window_origin
from shiptoolkit.scenes.against_truth import read_polygons, score_against_truth, ship_iou
from shiptoolkit.scenes.detect import detect_scenes, load_detector
from shiptoolkit.scenes.synthetic import make_scene

SIZE, WINDOW = 256, 64


@pytest.fixture(scope="module")
def red_truth(tmp_path_factory):
    """A make_scene truth whose scene shows exactly its ships' pixels in red (230) on a sea of 20."""
    folder = tmp_path_factory.mktemp("chips")
    truth = make_scene(folder / "made.tif", size=SIZE, window=WINDOW, overlap=0.0, ships=6, seed=3, nodata_margin=0)
    with rasterio.open(truth.labels) as src:
        ships = src.read(1) > 0
        profile = {**src.profile, "count": 3, "dtype": "uint8", "nodata": None}
    bands = np.full((3, SIZE, SIZE), 20, np.uint8)
    bands[0][ships] = 230
    with rasterio.open(folder / "red.tif", "w", **profile) as dst:
        dst.write(bands)
    return dataclasses.replace(truth, path=folder / "red.tif")


@pytest.fixture(scope="module")
def detector(tmp_path_factory, red_channel_model):
    run = tmp_path_factory.mktemp("run")
    save_model(red_channel_model(32), run / "best.keras")
    (run / "config.toml").write_text('[run]\nname = "chips"\n')
    return load_detector(run)


def test_predict_on_a_centred_chip_finds_each_ship_where_the_truth_puts_it(red_truth, detector):
    chips = predict_on_centred_chips(detector, red_truth, red_truth.ships, WINDOW)
    assert [c.ship.id for c in chips] == [s.id for s in red_truth.ships]
    assert all(c.found and c.iou > 0.8 for c in chips), [(c.ship.id, c.iou) for c in chips]
    for chip in chips:
        assert math.dist(chip.centroid, chip.ship.pixel_centroid) < 1.0


def test_detect_and_the_chips_agree_ship_by_ship(red_truth, detector, tmp_path):
    detect_scenes(detector, red_truth.path, tmp_path / "ships.gpkg", window=WINDOW, progress=False)
    score = score_against_truth(red_truth, read_polygons(tmp_path / "ships.gpkg", red_truth.crs))
    chips = predict_on_centred_chips(detector, red_truth, red_truth.ships, WINDOW)
    assert any(s.crosses_border for s in red_truth.ships)
    assert paired_difference([m.found for m in score.matches], [c.found for c in chips]) == (0.0, 0.0)
    for match, chip in zip(score.matches, chips, strict=True):  # detect's centroids are predict's
        assert math.dist(match.centroid, chip.centroid) < 1.0 and match.centroids == (match.centroid,)


def test_ship_iou_of_a_true_polygon_with_its_own_ship_is_high_and_with_another_zero(red_truth):
    import shapely

    first, second = red_truth.ships[:2]
    with rasterio.open(red_truth.labels) as labels:
        own, _ = ship_iou(red_truth, labels, shapely.Polygon(first.polygon), first)
        other, _ = ship_iou(red_truth, labels, shapely.Polygon(first.polygon), second)
    assert own > 0.7 and other == 0.0


def test_paired_difference_counts_only_the_ships_one_found_and_the_other_not():
    diff, se = paired_difference([True, True, False, False], [True, False, True, True])
    assert diff == pytest.approx(-0.25) and se == pytest.approx(math.sqrt(3 - 4 * 0.0625) / 4)
    assert paired_difference([True, False], [True, False]) == (0.0, 0.0)
    assert all(math.isnan(x) for x in paired_difference([], []))


def test_chips_stay_inside_the_scene(red_truth):
    ship = dataclasses.replace(red_truth.ships[0], pixel_centroid=(3.0, SIZE - 2.0))
    assert chip_origin(ship, SIZE, WINDOW) == (SIZE - WINDOW, 0)


def test_a_ship_inside_a_window_has_that_window_as_its_chip(red_truth, detector):
    inside = [s for s in red_truth.ships if not s.crosses_border]
    assert inside
    for ship in inside:
        row, col = window_origin(ship, red_truth)
        assert row % WINDOW == 0 and col % WINDOW == 0  # overlap 0: the windows are the 64 px grid
        assert row <= ship.pixel_centroid[1] < row + WINDOW and col <= ship.pixel_centroid[0] < col + WINDOW
    chips = predict_on_centred_chips(detector, red_truth, inside, WINDOW, centred=False)
    assert all(c.found and c.instances == 1 for c in chips), [(c.ship.id, c.iou, c.instances) for c in chips]
