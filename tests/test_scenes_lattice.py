"""One lattice of patches over the scene for models that predict by sliding patches (`shiptoolkit.scenes.lattice`).

The model here takes 16 px patches (predict.overlap 0.25: 12 px apart) and blurs: its ship probability
is the mean red / 255 over 5x5 pixels with zero padding, so a patch's edge pixels see less of a ship
and every pixel's probability depends on which patches cover it and how they are blended. Windows of
48 px (4 strides) do not overlap.
"""

import dataclasses
import json

import numpy as np
import pytest
import rasterio
from test_scenes_detect import rgb_scene, write_scene

from shiptoolkit.inference.prediction import predict_probabilities
from shiptoolkit.models.saving import save_model
from shiptoolkit.scenes.detect import detect_scenes, load_detector
from shiptoolkit.scenes.lattice import Lattice, scene_lattice
from shiptoolkit.scenes.recentre import centred_window
from shiptoolkit.scenes.stitch import Piece

PATCH, WINDOW, SIZE = 16, 48, 144


@pytest.fixture(scope="module")
def patch_run(tmp_path_factory, red_blur_model):
    run = tmp_path_factory.mktemp("patches")
    save_model(red_blur_model(5, PATCH), run / "best.keras")
    (run / "config.toml").write_text('[run]\nname = "patches"\n[predict]\noverlap = 0.25\nwhole_image = false\n')
    return run


@pytest.fixture(scope="module")
def patches(patch_run):
    return load_detector(patch_run)


def run_detect(detector, scene, out, **kwargs):
    summary = detect_scenes(detector, scene, out, window=WINDOW, overlap=0.0, progress=False, **kwargs)
    return summary, json.loads(out.read_text())["features"]


def whole_scene(detector, scene) -> np.ndarray:
    """`predict_probabilities` on the whole scene as one image: the lattice with no window borders at all."""
    with rasterio.open(scene) as src:
        image = src.read().transpose(1, 2, 0)
    return predict_probabilities(detector.model, image[None], window=PATCH, overlap=0.25)[0]


def test_the_lattice_is_the_model_patches_on_windows_a_whole_number_of_strides(patches):
    assert scene_lattice(patches, WINDOW, 0.0) == Lattice(16, 12)
    assert scene_lattice(patches, WINDOW, 0.0).extra == 4
    assert scene_lattice(patches, 50, 0.0) is None  # 50 px windows: not a whole number of strides
    assert scene_lattice(patches, WINDOW, 0.25) is None  # overlapping windows: centred windows instead
    resized = dataclasses.replace(patches, settings=dataclasses.replace(patches.settings, resize=32))
    assert scene_lattice(resized, WINDOW, 0.0) is None


def test_every_pixel_gets_the_probability_of_the_scene_predicted_without_window_borders(patches, tmp_path):
    rng = np.random.default_rng(0)
    bands = rng.integers(0, 255, (3, SIZE, SIZE), dtype=np.uint8)
    scene = write_scene(tmp_path / "noise.tif", bands)
    summary, _ = run_detect(patches, scene, tmp_path / "out.geojson", probabilities=tmp_path / "prob.tif")
    assert summary.scenes[0].windows == 9 and summary.scenes[0].centred_windows == 0
    with rasterio.open(tmp_path / "prob.tif") as src:
        stitched = src.read(1).astype(np.float32) / 255  # the COG stores probabilities in 8 bits
    inner = SIZE - PATCH  # past it the whole-scene prediction's last patch is flush with the scene's edge
    expected = whole_scene(patches, scene)[:inner, :inner]
    assert np.abs(stitched[:inner, :inner] - expected).max() <= 0.5 / 255 + 1e-6
    # the windows' own borders (48, 96) are where predicting windows apart would differ most: no trace of them
    with rasterio.open(scene) as src:
        window = src.read(window=rasterio.windows.Window(0, 0, WINDOW, WINDOW)).transpose(1, 2, 0)
    apart = predict_probabilities(patches.model, window[None], window=PATCH, overlap=0.25)[0]
    assert np.abs(apart[:, WINDOW - 4:] - expected[:WINDOW, WINDOW - 4:WINDOW]).max() > 0.02


def test_a_hull_across_a_border_comes_out_once_as_without_borders_and_no_window_is_predicted_again(patches, tmp_path):
    hull = (60, 80, 30, 70)  # rows 60..79, columns 30..69: across the border at column 48
    scene = write_scene(tmp_path / "scene.tif", rgb_scene(size=SIZE, ships=[hull]))
    summary, found = run_detect(patches, scene, tmp_path / "out.geojson")
    assert len(found) == 1 and summary.scenes[0].centred_windows == 0
    expected = whole_scene(patches, scene) > patches.settings.threshold
    assert found[0]["properties"]["pixels"] == int(expected.sum())
    stated = json.loads((tmp_path / "out.geojson").read_text())["shiptoolkit"]
    assert stated["patch_lattice"] == {"patch": 16, "stride": 12}


@pytest.fixture(scope="module")
def gated_patches(patch_run):
    """The patch model behind a gate that says "ship" when more than about a fifth of its 48 px view is red."""
    import keras

    from shiptoolkit.inference.gate import Gate

    inputs = keras.Input((WINDOW, WINDOW, 3))
    dense = keras.layers.Dense(1, activation="sigmoid")
    classifier = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(inputs)))
    dense.set_weights([np.array([[100 / 255], [0], [0]], "float32"), np.array([-20.0], "float32")])  # red > 0.2
    return dataclasses.replace(load_detector(patch_run), gate=Gate(classifier, WINDOW, 0.5))


def test_a_hull_reaching_into_a_window_the_gate_rejects_is_predicted_whole_on_a_centred_window(gated_patches,
                                                                                               tmp_path):
    hull = (10, 30, 20, 52)  # 28 of its 32 columns in window (0, 0), accepted; 4 in window (0, 1), rejected
    scene = write_scene(tmp_path / "scene.tif", rgb_scene(size=SIZE, ships=[hull]))
    plain, found = run_detect(gated_patches, scene, tmp_path / "plain.geojson", border_context=0)
    assert plain.scenes[0].rejected == 8 and len(found) == 1  # cut at the border: the rejected side is 0
    expected = int((whole_scene(gated_patches, scene) > gated_patches.settings.threshold).sum())
    assert found[0]["properties"]["pixels"] < expected
    summary, found = run_detect(gated_patches, scene, tmp_path / "centred.geojson")
    assert summary.scenes[0].centred_windows == 1 and len(found) == 1
    assert found[0]["properties"]["pixels"] == expected  # the centred window's patches are the lattice's


def test_centred_windows_on_a_lattice_start_on_it_and_end_a_whole_number_of_strides_later():
    lattice = Lattice(64, 48)
    rows, cols = np.arange(1000, 1041), np.arange(2000, 2011)
    piece = Piece(np.repeat(rows, cols.size).astype(np.int32), np.tile(cols, rows.size).astype(np.int32),
                  np.ones(rows.size * cols.size, np.float32), float("nan"))
    window = centred_window([piece], 96, 64, lattice)
    assert window.row % 48 == 0 and window.col % 48 == 0 and (window.size - 64) % 48 == 0
    assert window.row <= 1000 - 96 and window.row + window.size >= 1041 + 96
    assert window.col <= 2000 - 96 and window.col + window.size >= 2011 + 96
    assert window.size < 2 * 96 + 41 + 2 * 48 + 64  # no bigger than the context and the snapping need


def test_the_cli_says_the_scene_was_predicted_on_one_lattice(patch_run, tmp_path):
    from click.testing import CliRunner

    from shiptoolkit.cli import cli

    scene = write_scene(tmp_path / "scene.tif", rgb_scene(size=SIZE, ships=[(60, 80, 30, 70)]))
    result = CliRunner().invoke(cli, ["detect", str(patch_run), str(scene), "--out", str(tmp_path / "s.geojson"),
                                      "--window", str(WINDOW), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "1 ship(s)" in result.output and "one lattice of 16 px patches 12 px apart (no borders)" in result.output


class PatchCounter:
    """The model, counting the patches it is given."""

    def __init__(self, model):
        self.model, self.input_shape, self.patches = model, model.input_shape, 0

    def predict_on_batch(self, x):
        self.patches += len(x)
        return self.model.predict_on_batch(x)


def test_patches_of_nodata_alone_are_not_predicted_and_change_no_valid_pixel(patches, tmp_path):
    rng = np.random.default_rng(2)
    bands = rng.integers(1, 255, (3, SIZE, SIZE), dtype=np.uint8)
    bands[:, :24] = 0  # a nodata collar: the lattice's first row of patches (rows 0..15) sees nothing else
    scene = write_scene(tmp_path / "collar.tif", bands, nodata=0)
    counted = dataclasses.replace(patches, model=PatchCounter(patches.model),  # batches of 4: none padded
                                  settings=dataclasses.replace(patches.settings, batch_size=4))
    run_detect(counted, scene, tmp_path / "out.geojson", probabilities=tmp_path / "prob.tif")
    per_window = (WINDOW // 12) ** 2  # 16 patches start in a 48 px window
    assert counted.model.patches == 9 * per_window - 3 * (WINDOW // 12)  # the top row of 3 windows: 4 fewer each
    with rasterio.open(tmp_path / "prob.tif") as src:
        stitched = src.read(1).astype(np.float32) / 255
    inner = SIZE - PATCH
    expected = whole_scene(patches, scene)[24:inner, :inner]  # predict on the scene as one image, collar and all
    assert np.abs(stitched[24:inner, :inner] - expected).max() <= 0.5 / 255 + 1e-6
    assert stitched[:24].max() == 0  # nodata is never a ship
