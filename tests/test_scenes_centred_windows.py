"""Centred windows: ships at window borders predicted again on a window centred on them (`shiptoolkit.scenes.recentre`).

The model here blurs: its ship probability is the mean red / 255 over 15x15 pixels with zero padding,
so a window's edge pixels see only part of a ship (as a U-Net sees no context past its input's
edge): a hull across a border loses its pixels at the border and stitching alone leaves two pieces.
"""

import json

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from test_scenes_detect import rgb_scene, write_scene

from shiptoolkit.cli import cli
from shiptoolkit.errors import ConfigError
from shiptoolkit.inference.prediction import predict_images
from shiptoolkit.models.saving import save_model
from shiptoolkit.scenes.detect import detect_scenes, load_detector
from shiptoolkit.scenes.recentre import at_border, centred_window, clusters
from shiptoolkit.scenes.stitch import Piece

WINDOW = 64  # overlap 0: core borders at 64, 128, 192
SHIP = (96, 116, 40, 90)  # rows 96..115, columns 40..89: across the border at column 64


@pytest.fixture(scope="module")
def blur_run(tmp_path_factory, red_blur_model):
    run = tmp_path_factory.mktemp("blur")
    save_model(red_blur_model(15), run / "best.keras")
    (run / "config.toml").write_text('[run]\nname = "blur"\n')
    return run


@pytest.fixture(scope="module")
def blur(blur_run):
    return load_detector(blur_run)


def pieces_of(found: list[dict]) -> list[int]:
    return sorted(f["properties"]["pixels"] for f in found)


def run_detect(detector, scene, out, **kwargs):
    summary = detect_scenes(detector, scene, out, window=WINDOW, overlap=0.0, progress=False, **kwargs)
    return summary, json.loads(out.read_text())["features"]


def centred_chip_pixels(detector, scene, size: int = 256) -> int:
    """Ship pixels `predict_images` finds on a chip centred on SHIP (the reference a centred window stands for)."""
    r0, r1, c0, c1 = SHIP
    top, left = (r0 + r1 - size) // 2, (c0 + c1 - size) // 2
    with rasterio.open(scene) as src:
        chip = src.read(window=rasterio.windows.Window(left, top, size, size), boundless=True, fill_value=0)
    (prediction,) = predict_images(detector.model, [("chip", chip.transpose(1, 2, 0))], detector.settings)
    return int((prediction.prob > detector.settings.threshold).sum())


def test_a_hull_across_a_border_comes_out_once_and_as_on_a_chip_centred_on_it(blur, tmp_path):
    scene = write_scene(tmp_path / "scene.tif", rgb_scene(ships=[SHIP]))
    plain, found = run_detect(blur, scene, tmp_path / "plain.geojson", border_context=0)
    assert len(found) == 2 and plain.scenes[0].centred_windows == 0  # the border's pixels lost: two pieces
    summary, found = run_detect(blur, scene, tmp_path / "recentring.geojson")
    assert len(found) == 1 and summary.scenes[0].centred_windows == 1
    assert pieces_of(found) == [centred_chip_pixels(blur, scene)]
    stated = json.loads((tmp_path / "recentring.geojson").read_text())["shiptoolkit"]
    assert stated["border_context"] == 96 and stated["overlap"] == 0.0


def test_ships_inside_windows_are_left_as_their_window_predicts_them(blur, tmp_path):
    inside = (20, 30, 10, 40)  # within the first window, > 8 px from every border
    scene = write_scene(tmp_path / "scene.tif", rgb_scene(ships=[inside]))
    plain, a = run_detect(blur, scene, tmp_path / "plain.geojson", border_context=0)
    summary, b = run_detect(blur, scene, tmp_path / "recentring.geojson")
    assert summary.scenes[0].centred_windows == 0 and a == b and len(a) == 1


def test_the_probability_map_holds_the_centred_window_over_the_hull(blur, tmp_path):
    scene = write_scene(tmp_path / "scene.tif", rgb_scene(ships=[SHIP]))
    run_detect(blur, scene, tmp_path / "ships.geojson", probabilities=tmp_path / "p.tif")
    with rasterio.open(tmp_path / "p.tif") as src:
        row = src.read(1)[106, 40:90]
    assert (row[10:40] > 127).all()  # no gap of sea at the border (column 64) any more


def test_pieces_near_a_border_are_clustered_into_one_centred_window():
    def piece(r0, r1, c0, c1):
        rows, cols = np.mgrid[r0:r1, c0:c1]
        return Piece(rows.ravel().astype(np.int32), cols.ravel().astype(np.int32), np.ones(rows.size, np.float32),
                     float("nan"))

    left, right, far = piece(100, 110, 40, 61), piece(100, 110, 67, 90), piece(10, 20, 10, 30)
    borders = np.array([64, 128])
    assert at_border(left, borders, borders, 8) and at_border(right, borders, borders, 8)
    assert not at_border(far, borders, borders, 8) and not at_border(left, borders, borders, 3)
    groups = clusters([left, right, far], 8)
    assert sorted(len(g) for g in groups) == [1, 2]
    window = centred_window([left, right], 96)
    assert window.size % 32 == 0 and window.size >= 50 + 2 * 96
    assert window.row <= 100 and window.row + window.size >= 110 + 96
    assert window.col <= 40 - 96 + 1 and window.col + window.size >= 90 + 96


def test_a_bad_border_context_is_named_with_its_range(blur_run, tmp_path):
    scene = write_scene(tmp_path / "scene.tif", rgb_scene(ships=[SHIP]))
    with pytest.raises(ConfigError, match=r"--border-context -1.*0\.\.4096"):
        detect_scenes(blur_run, scene, tmp_path / "x.geojson", border_context=-1, progress=False)
    result = CliRunner().invoke(cli, ["detect", str(blur_run), str(scene), "--out", str(tmp_path / "c.geojson"),
                                      "--window", "64", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "1 centred window(s)" in result.output and not (tmp_path / "x.geojson").exists()


def test_what_a_centred_window_finds_replaces_every_ship_it_overlaps_once():
    from types import SimpleNamespace

    from shiptoolkit.scenes.recentre import Recentring
    from shiptoolkit.scenes.stitch import WindowGrid

    def piece(r0, r1, c0, c1):
        rows, cols = np.mgrid[r0:r1, c0:c1]
        return Piece(rows.ravel().astype(np.int32), cols.ravel().astype(np.int32), np.ones(rows.size, np.float32),
                     float("nan"))

    reader = SimpleNamespace(width=256, height=256)
    repair = Recentring(SimpleNamespace(settings=None), reader, WindowGrid(256, 256, 64, 0.0))
    earlier = piece(30, 40, 10, 20)  # handed out with an earlier row: far from every border
    repair.remember(earlier, 0, False)
    whole, twice = piece(30, 90, 10, 20), piece(50, 70, 10, 20)  # two centred windows saw the hull, one all of it
    repair.predict = lambda windows: [twice, whole]
    keep, new = repair([piece(60, 70, 10, 20)], top=64)  # a piece at the border at row 64
    assert keep == [] and [p is whole for p in new] == [True] and repair.superseded == {0}
    repair.remember(whole, 1, True)
    repair.predict = lambda windows: []
    late, far = piece(80, 90, 10, 20), piece(200, 210, 200, 210)  # `late` shares pixels with the centred window's hull
    assert not any(at_border(p, np.array([64, 128, 192]), np.array([64, 128, 192]), 8) for p in (late, far))
    keep, new = repair([late, far], top=128)
    assert [p is far for p in keep] == [True] and new == []


@pytest.fixture(scope="module")
def gated(tmp_path_factory, red_channel_model):
    """A pointwise segmenter (red / 255) behind a gate that says "ship" only when enough of its view is red: a
    whole 20 x 40 hull in a 64 px view, not its half."""
    import dataclasses

    import keras

    from shiptoolkit.inference.gate import Gate

    run = tmp_path_factory.mktemp("gated")
    save_model(red_channel_model(32), run / "best.keras")
    (run / "config.toml").write_text('[run]\nname = "gated"\n')
    inputs = keras.Input((WINDOW, WINDOW, 3))
    dense = keras.layers.Dense(1, activation="sigmoid")
    classifier = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(inputs)))
    dense.set_weights([np.array([[100 / 255], [0], [0]], "float32"), np.array([-20.0], "float32")])  # red > 0.2
    return dataclasses.replace(load_detector(run), gate=Gate(classifier, WINDOW, 0.5))


def test_a_hull_whose_halves_every_window_gate_rejects_is_found_through_a_border_view(gated, tmp_path):
    border, corner, inside = (100, 120, 44, 84), (177, 207, 177, 207), (20, 30, 10, 20)
    scene = write_scene(tmp_path / "scene.tif", rgb_scene(ships=[border, corner, inside]))
    plain, found = run_detect(gated, scene, tmp_path / "plain.geojson", border_context=0)
    assert found == [] and plain.scenes[0].rejected == 16  # every window sees too little red: all rejected
    summary, found = run_detect(gated, scene, tmp_path / "recentring.geojson")
    # the hull across a border (its view between two windows) and the one on a corner (its view of four)
    # come out whole; the small one inside a rejected window stays rejected, as predict rejects its chip
    assert pieces_of(found) == [20 * 40, 30 * 30]
    checked, accepted = summary.scenes[0].border_views
    assert checked == 12 + 12 + 9  # 4 x 4 windows: 12 borders side by side, 12 above each other, 9 corners
    assert accepted == 3  # the hull across a border is whole in a corner's view too: found once all the same
