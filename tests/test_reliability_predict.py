"""Reliability of prediction: each test names the repro it guards against (clear error or correct result)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
from click.testing import CliRunner

from shiptoolkit.cli import cli
from shiptoolkit.inference.submission import SubmissionWriter, read_submission
from shiptoolkit.models.saving import ModelFileError, load_model, save_model


def ship_everywhere_model(window: int = 32, channels: int = 1, in_channels: int = 3):
    """Probability 0.9 at every pixel: every image of the submission gets one full-image ship."""
    inputs = keras.Input((window, window, in_channels))
    outputs = keras.layers.Conv2D(channels, 1, kernel_initializer="zeros",
                                  bias_initializer=keras.initializers.Constant(0.9))(inputs)
    return keras.Model(inputs, outputs)


def saved(model, path: Path) -> str:
    return str(save_model(model, path))


def predict(*args: str):
    return CliRunner().invoke(cli, ["predict", *args, "--quiet"])


def clean_failure(result, *names: str) -> None:
    """Exit 1, one message without a traceback, naming each of `names`."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output, result.output
    for name in names:
        assert name in result.output, (name, result.output)


def max_pixel(rle: str) -> int:
    """The last pixel (1-based) a run-length code covers."""
    numbers = [int(n) for n in rle.split()]
    return max(start + length - 1 for start, length in zip(numbers[::2], numbers[1::2], strict=True))


def write_image(path: Path, height: int, width: int) -> Path:
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 60, (height, width, 3), dtype=np.uint8))
    return path


# -- 1. images that are not data.image_size square -------------------------------------------------

def test_predict_on_a_folder_with_a_128px_image_among_96px_ones_is_refused_naming_image_and_size(
        tmp_path, rect_dataset):
    """Repro: `predict --images DIR` with one 128x128 image among 96 px ones (data.image_size=96) exited 0
    and wrote RLE past pixel 96*96. Now: exit 1 naming the image, its size, data.image_size, and no file."""
    images = rect_dataset / "train_v2"
    write_image(images / "big.jpg", 128, 128)
    out = tmp_path / "sub.csv"
    result = predict("--model", saved(ship_everywhere_model(), tmp_path / "m.keras"), "--images", str(images),
                     "--out", str(out), "--set", "data.image_size=96")
    clean_failure(result, "big.jpg", "128x128", "96x96", "data.image_size", "--set data.on_error=skip")
    assert not out.exists()


def test_predict_skips_a_500x600_image_with_on_error_skip_lists_it_and_keeps_rle_inside_image_size(
        tmp_path, rect_dataset):
    """Repro: a 500x600 image (data.image_size=96) got RLE in its own geometry. With data.on_error=skip it
    gets an empty row, is listed as skipped in the output, and no RLE leaves the 96x96 square."""
    images = rect_dataset / "train_v2"
    write_image(images / "odd.png", 500, 600)
    out = tmp_path / "sub.csv"
    result = predict("--model", saved(ship_everywhere_model(), tmp_path / "m.keras"), "--images", str(images),
                     "--out", str(out), "--set", "data.image_size=96", "--set", "data.on_error=skip")
    assert result.exit_code == 0, result.output
    assert "1 skipped" in result.output and "odd.png" in result.output and "600x500" in result.output
    rows = read_submission(out)
    assert len(rows) == 13 and rows["odd.png"] == []
    assert all(max_pixel(rle) <= 96 * 96 for rles in rows.values() for rle in rles)
    assert sum(map(len, rows.values())) == 12  # the 96 px images still predicted


# -- 2. models that are not ship segmenters ----------------------------------------------------------

@pytest.mark.parametrize("model_kind, expected", [
    ("three_channel_output", ["outputs 3 channels", "(None, H, W, 1)"]),
    ("dense_classifier", ["one number per image", "(None, 1)", "(None, H, W, 1)"]),
    ("four_channel_input", ["4 channels", "(None, H, W, 3)"]),
    ("two_channels_without_seam_channel", ["2 channels", "train.seam_channel"]),
])
def test_predict_refuses_a_model_that_is_not_a_one_channel_segmenter(tmp_path, rect_dataset, model_kind, expected):
    """Repro: a 3-channel-output model or a Dense(1) classifier wrote a submission and exited 0; a 4-channel-input
    model died in a Keras traceback; a 2-channel model without train.seam_channel read channel 2 as seams.
    Now: ModelFileError naming the file, what it found and what is expected, and no submission."""
    if model_kind == "dense_classifier":
        inputs = keras.Input((32, 32, 3))
        model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(inputs)))
    else:
        channels = {"three_channel_output": 3, "two_channels_without_seam_channel": 2}.get(model_kind, 1)
        model = ship_everywhere_model(channels=channels, in_channels=4 if model_kind == "four_channel_input" else 3)
    path = saved(model, tmp_path / f"{model_kind}.keras")
    out = tmp_path / "sub.csv"
    result = predict("--model", path, "--images", str(rect_dataset / "train_v2"), "--out", str(out),
                     "--set", "data.image_size=96")
    clean_failure(result, f"{model_kind}.keras", *expected)
    assert not out.exists()


def test_a_two_channel_model_predicts_with_seam_channel_but_a_three_channel_model_fails_evaluate_too(
        tmp_path, rect_dataset):
    """Repro: the shape check must hold on every prediction path: a 2-channel model is fine with
    train.seam_channel (CLI predict exits 0), and `evaluate()` refuses a 3-channel model up front."""
    from shiptoolkit.config import load_config
    from shiptoolkit.data.airbus import AirbusIndex
    from shiptoolkit.scoring.evaluate import evaluate

    path = saved(ship_everywhere_model(channels=2), tmp_path / "seams.keras")
    result = predict("--model", path, "--images", str(rect_dataset / "train_v2"), "--out", str(tmp_path / "s.csv"),
                     "--set", "data.image_size=96", "--set", "train.seam_channel=true")
    assert result.exit_code == 0, result.output
    index = AirbusIndex.from_kaggle(rect_dataset, shape=(96, 96))
    config = load_config({"evaluate": {"plot_examples": 0}})
    with pytest.raises(ModelFileError, match=r"outputs 3 channels.*\(None, H, W, 1\)"):
        evaluate(config, ship_everywhere_model(channels=3), index=index, progress=False)


# -- 3. unsafe or invalid .keras files -----------------------------------------------------------

def test_load_model_of_a_keras_file_whose_activation_is_os_system_is_a_model_file_error(tmp_path, rect_dataset):
    """Repro: a .keras whose config.json sets an activation to os.system was refused with a Keras
    traceback (TypeError). Now: ModelFileError naming the file, and a clean CLI message."""
    good = saved(ship_everywhere_model(), tmp_path / "good.keras")
    with zipfile.ZipFile(good) as src:
        files = {name: src.read(name) for name in src.namelist()}
    config = json.loads(files["config.json"])
    conv = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Conv2D")
    assert conv["config"]["activation"] == "linear"  # what Keras writes for a built-in: a name
    conv["config"]["activation"] = {"module": "os", "class_name": "function", "config": "system",
                                    "registered_name": "system"}
    files["config.json"] = json.dumps(config).encode()
    evil = tmp_path / "evil.keras"
    with zipfile.ZipFile(evil, "w") as dst:
        for name, data in files.items():
            dst.writestr(name, data)
    with pytest.raises(ModelFileError, match="evil.keras.*could not be loaded safely"):
        load_model(evil)
    result = predict("--model", str(evil), "--images", str(rect_dataset / "train_v2"), "--out",
                     str(tmp_path / "s.csv"), "--set", "data.image_size=96")
    clean_failure(result, "evil.keras", "could not be loaded safely", "system")


def test_a_text_file_named_x_keras_is_said_to_be_no_keras_zip_not_file_not_found(tmp_path, rect_dataset):
    """Repro: a text file named x.keras made Keras say "File not found" (it exists). Now: it is not a .keras
    model (a zip archive); was it saved with model.save('x.keras')?"""
    text = tmp_path / "x.keras"
    text.write_text("not a model\n")
    with pytest.raises(ModelFileError, match="not a .keras model.*zip archive.*model.save"):
        load_model(text)
    result = predict("--model", str(text), "--images", str(rect_dataset / "train_v2"), "--out",
                     str(tmp_path / "s.csv"))
    clean_failure(result, "x.keras", "zip archive", "model.save(")
    assert "not found" not in result.output


# -- 4. a run directory's [plugins] modules are code ---------------------------------------------

@pytest.fixture
def received_run(tmp_path):
    """A run directory from elsewhere: best.keras, and a config.toml whose plugin writes a marker on import."""
    run = tmp_path / "received-run"
    run.mkdir()
    save_model(ship_everywhere_model(), run / "best.keras")
    marker = tmp_path / "plugin-was-imported"
    (run / "marker_plugin.py").write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n")
    (run / "config.toml").write_text(f"""
[run]
out_dir = "{(tmp_path / 'evals').as_posix()}"
[data]
image_size = 96
path = "{(tmp_path / 'rects').as_posix()}"
test_fraction = 0.25
[evaluate]
plot_examples = 0
[plugins]
modules = ["marker_plugin.py"]
""")
    return run, marker, f"local:{(run / 'marker_plugin.py').resolve()}"


@pytest.mark.parametrize("command, trust", [("predict", "--trust-run-plugins"), ("evaluate", "--trust-run-plugins"),
                                            ("predict", "--plugin")])
def test_a_received_run_dir_does_not_import_its_plugin_modules_unless_trusted(tmp_path, rect_dataset, received_run,
                                                                             plugin_cleanup, command, trust):
    """Repro: `predict --run RUN` (and `evaluate --run RUN`) imported the [plugins] modules of RUN/config.toml
    without notice: a received run directory ran code. Now they are skipped with a message (stderr) naming the
    module and how to load it, and imported only with --trust-run-plugins or the global --plugin option."""
    run, marker, name = received_run
    plugin_cleanup.append(name)
    args = [command, "--run", str(run), "--quiet"]
    if command == "predict":
        args += ["--images", str(rect_dataset / "train_v2"), "--out", str(tmp_path / "s.csv")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert not marker.exists()
    assert "marker_plugin.py" in result.stderr and "--trust-run-plugins" in result.stderr
    assert "--plugin" in result.stderr
    if command == "predict":
        assert len(read_submission(tmp_path / "s.csv")) == 12
        args[-1] = str(tmp_path / "trusted.csv")
    if trust == "--plugin":  # the user names the module: loaded, and no notice
        trusted = CliRunner().invoke(cli, ["--plugin", str(run / "marker_plugin.py"), *args])
        assert "Not importing" not in trusted.output
    else:
        trusted = CliRunner().invoke(cli, [*args, trust])
    assert trusted.exit_code == 0, trusted.output
    assert marker.read_text() == "ran"


# -- 5. truncated images, half-written submissions, --overwrite ----------------------------------

def truncated_jpg(path: Path) -> Path:
    write_image(path, 96, 96)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def test_predict_on_a_truncated_jpg_leaves_no_half_written_submission_and_names_the_image(tmp_path, rect_dataset):
    """Repro: a truncated JPG made predict fail but left a header-only --out behind, and the rerun was refused
    with "(or pass overwrite=True)", no CLI option. Now: the failure names the image and --set data.on_error=skip,
    no file is left, and the rerun with skip writes the submission listing the image as skipped."""
    images = rect_dataset / "train_v2"
    truncated_jpg(images / "img05.jpg")
    out = tmp_path / "out" / "sub.csv"
    model = saved(ship_everywhere_model(), tmp_path / "m.keras")
    result = predict("--model", model, "--images", str(images), "--out", str(out), "--set", "data.image_size=96")
    clean_failure(result, "img05.jpg", "--set data.on_error=skip")
    assert not out.exists() and not any(out.parent.iterdir())  # no temporary file either
    rerun = predict("--model", model, "--images", str(images), "--out", str(out), "--set", "data.image_size=96",
                    "--set", "data.on_error=skip")
    assert rerun.exit_code == 0, rerun.output
    assert "1 skipped" in rerun.output and "img05.jpg" in rerun.output
    rows = read_submission(out)
    assert len(rows) == 12 and rows["img05.jpg"] == []


def test_predict_refuses_an_existing_out_naming_the_overwrite_flag_and_overwrite_replaces_it(tmp_path, rect_dataset):
    """Repro: an existing --out was refused with "(or pass overwrite=True)", which is no CLI option.
    Now the message names --overwrite, and --overwrite replaces the file."""
    out = tmp_path / "sub.csv"
    out.write_text("old\n")
    model = saved(ship_everywhere_model(), tmp_path / "m.keras")
    args = ["--model", model, "--images", str(rect_dataset / "train_v2"), "--out", str(out),
            "--set", "data.image_size=96"]
    clean_failure(predict(*args), "sub.csv", "--overwrite")
    assert out.read_text() == "old\n"
    result = predict(*args, "--overwrite")
    assert result.exit_code == 0, result.output
    assert len(read_submission(out)) == 12


def test_submission_writer_interrupted_by_an_error_leaves_no_file(tmp_path):
    """Repro: SubmissionWriter wrote straight into the target, so an error mid-stream left a partial file."""
    path = tmp_path / "sub.csv"
    with pytest.raises(RuntimeError), SubmissionWriter(path) as writer:
        writer.write("a.jpg", np.ones((4, 4), np.int32))
        raise RuntimeError("the model failed")
    assert list(tmp_path.iterdir()) == []
    with SubmissionWriter(path) as writer:
        writer.write("a.jpg", np.ones((4, 4), np.int32))
    assert read_submission(path) == {"a.jpg": ["1 16"]} and list(tmp_path.iterdir()) == [path]
