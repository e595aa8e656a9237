"""`shiptoolkit export`: each format, reloaded with its own runtime, reproduces the Keras probabilities;
the JSON beside it holds the settings in force; `predict --model EXPORT` predicts as the run does."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from shiptoolkit.cli import cli
from shiptoolkit.errors import ShiptoolkitError
from shiptoolkit.inference.export import export_run
from shiptoolkit.inference.exported import MANIFEST, load_export, require_format
from shiptoolkit.inference.prediction import whole_image_model
from shiptoolkit.inference.submission import read_submission
from shiptoolkit.models.classifiers import cnn_classifier
from shiptoolkit.models.saving import load_model, save_model
from shiptoolkit.models.unet import unet
from shiptoolkit.rundir import RunDir

TOLERANCE = 1e-4  # max abs difference in probability, export vs Keras


def make_run(root: Path, image_size: int = 768, gate: bool = True, segmenter=None) -> RunDir:
    """A run directory as training leaves it: a tiny random U-Net (patch-trained: 32 px input), config.toml,
    postprocess.json (tuned threshold, min_area, gate threshold) and, with `gate`, a classifier."""
    keras.utils.set_random_seed(0)
    run = RunDir(root)
    run.path.mkdir(parents=True)
    save_model(segmenter or unet((32, 32, 3), base_filters=4, depth=2), run.best)
    classifier = ""
    if gate:
        save_model(cnn_classifier((32, 32, 3), base_filters=4, depth=2), run.classifier)
        run.gate.write_text(json.dumps({"threshold": 0.5}))
        classifier = '[classifier]\nname = "cnn_classifier"\nbase_filters = 4\ndepth = 2\nimage_size = 32\n'
    run.config.write_text(f"[data]\nimage_size = {image_size}\n"
                          '[predict]\nthreshold = 0.5\nmin_area = 0\nsplit = "watershed"\nsplit_depth = 2.0\n'
                          + classifier)
    run.save_tuned({"threshold": 0.45, "min_area": 7, "classifier_threshold": 0.3})
    return run


def cli_predict(images: str, *args: str) -> dict:
    """`shiptoolkit predict ARGS --images IMAGES`, which must succeed; the submission it wrote (--out)."""
    result = CliRunner().invoke(cli, ["predict", *args, "--images", images, "--quiet"])
    assert result.exit_code == 0, result.output
    return read_submission(args[args.index("--out") + 1])


def keras_probabilities(model_path: Path, image: np.ndarray) -> np.ndarray:
    return np.asarray(whole_image_model(load_model(model_path)).predict_on_batch(image))


def random_image(side: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (1, side, side, 3)).astype(np.float32)


def test_saved_model_export_reloaded_with_tf_saved_model_load_matches_keras_on_a_768_image(tmp_path):
    import tensorflow as tf

    run = make_run(tmp_path / "run")
    result = export_run(run.path, "saved_model", tmp_path / "export")
    out = result.path
    assert sorted(p.name for p in out.iterdir()) == ["classifier", "segmenter", MANIFEST]

    image = random_image(768)
    served = tf.saved_model.load(str(out / "segmenter")).signatures["serving_default"]
    got = next(iter(served(image=tf.constant(image)).values())).numpy()
    expected = keras_probabilities(run.best, image)
    assert got.shape == expected.shape == (1, 768, 768, 1)
    diff = float(np.abs(got - expected).max())
    print(f"saved_model segmenter 768x768 max abs diff: {diff:.3g}")
    assert diff <= TOLERANCE

    small = random_image(32, seed=2)
    classifier = tf.saved_model.load(str(out / "classifier")).signatures["serving_default"]
    got = next(iter(classifier(image=tf.constant(small)).values())).numpy()
    assert got.shape == (1, 1)
    assert float(np.abs(got - load_model(run.classifier).predict_on_batch(small)).max()) <= TOLERANCE

    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest == result.manifest
    assert manifest["format"] == "saved_model" and manifest["image_size"] == 768
    assert manifest["segmenter"]["input"]["shape"] == [None, None, None, 3]
    assert manifest["segmenter"]["output"]["shape"] == [None, None, None, 1]
    post = manifest["postprocess"]
    assert (post["threshold"], post["min_area"]) == (0.45, 7)  # tuned, from postprocess.json
    assert (post["split"], post["split_depth"]) == ("watershed", 2.0)  # the config's [predict]
    assert manifest["gate"]["file"] == "classifier"
    assert (manifest["gate"]["image_size"], manifest["gate"]["threshold"]) == (32, 0.3)  # tuned gate threshold
    assert manifest["check"]["segmenter_max_abs_diff"] <= TOLERANCE
    assert manifest["check"]["classifier_max_abs_diff"] <= TOLERANCE


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_onnx_and_tflite_exports_reloaded_with_their_runtime_match_keras(tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("tf2onnx")
        ort = pytest.importorskip("onnxruntime")
    run = make_run(tmp_path / "run", image_size=256)  # a small image size: converters and runtimes on a CPU
    out = export_run(run.path, fmt, tmp_path / "export").path
    assert sorted(p.name for p in out.iterdir()) == sorted([f"classifier.{fmt}", f"segmenter.{fmt}", MANIFEST])

    image, small = random_image(256), random_image(32, seed=2)
    if fmt == "onnx":
        def run_file(path, x):
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            return session.run(None, {session.get_inputs()[0].name: x})[0]
    else:
        def run_file(path, x):
            from shiptoolkit.inference.exported import _tflite_interpreter

            interpreter = _tflite_interpreter(path)
            source = interpreter.get_input_details()[0]["index"]
            interpreter.resize_tensor_input(source, list(x.shape))
            interpreter.allocate_tensors()
            interpreter.set_tensor(source, x)
            interpreter.invoke()
            return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    got = run_file(out / f"segmenter.{fmt}", image)
    expected = keras_probabilities(run.best, image)
    assert got.shape == expected.shape == (1, 256, 256, 1)
    diff = float(np.abs(got - expected).max())
    print(f"{fmt} segmenter 256x256 max abs diff: {diff:.3g}")
    assert diff <= TOLERANCE
    got = run_file(out / f"classifier.{fmt}", small)
    assert float(np.abs(got - load_model(run.classifier).predict_on_batch(small)).max()) <= TOLERANCE
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["format"] == fmt and manifest["segmenter"]["file"] == f"segmenter.{fmt}"
    assert manifest["check"]["segmenter_max_abs_diff"] <= TOLERANCE


def test_a_format_whose_packages_are_missing_is_a_clear_error_naming_them_and_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # as if not installed
    with pytest.raises(ShiptoolkitError, match=r"tf2onnx.*shiptoolkit\[onnx\]"):
        require_format("onnx")
    run = make_run(tmp_path / "run", image_size=64, gate=False)
    result = CliRunner().invoke(cli, ["export", str(run.path), "--format", "onnx", "--out", str(tmp_path / "e")])
    assert result.exit_code == 1, result.output
    assert "tf2onnx" in result.output and "shiptoolkit[onnx]" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "e").exists()


def test_an_export_that_does_not_reproduce_the_model_is_refused_and_nothing_is_written(tmp_path, monkeypatch):
    import shiptoolkit.inference.export as export

    monkeypatch.setattr(export, "_max_abs_diff", lambda *args: 0.5)
    run = make_run(tmp_path / "run", image_size=64, gate=False)
    with pytest.raises(ShiptoolkitError, match="does not reproduce the Keras model"):
        export_run(run.path, "saved_model", tmp_path / "export")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_export_cli_refuses_an_existing_out_and_overwrite_replaces_only_an_earlier_export(tmp_path):
    run = make_run(tmp_path / "run", image_size=64, gate=False)
    out = tmp_path / "export"
    args = ["export", str(run.path), "--format", "saved_model", "--out", str(out)]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "segmenter" in first.output and "no gate" in first.output and "max abs diff" in first.output
    assert json.loads((out / MANIFEST).read_text())["gate"] is None

    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "--overwrite" in again.output
    replaced = CliRunner().invoke(cli, [*args, "--overwrite", "--set", "predict.threshold=0.7"])
    assert replaced.exit_code == 0, replaced.output
    assert json.loads((out / MANIFEST).read_text())["postprocess"]["threshold"] == 0.7  # --set wins over tuned

    other = tmp_path / "not-an-export"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    refused = CliRunner().invoke(cli, ["export", str(run.path), "--format", "saved_model", "--out", str(other),
                                       "--overwrite"])
    assert refused.exit_code == 1 and "not an export" in refused.output
    assert (other / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "not-an-export", "run"]  # no staging left


def red_channel_segmenter():
    """Ship probability sigmoid(10 (red/255 - 0.5)): clear of any threshold on the rect images (dark ground,
    bright ships), so the Keras model and its export give the same submission."""
    inputs = keras.Input((32, 32, 3))
    conv = keras.layers.Conv2D(1, 1, activation="sigmoid")
    model = keras.Model(inputs, conv(keras.layers.Rescaling(1 / 255)(inputs)))
    conv.set_weights([np.array([10.0, 0, 0], "float32").reshape(1, 1, 3, 1), np.array([-5.0], "float32")])
    return model


@pytest.mark.parametrize("fmt, gate", [("saved_model", True), ("onnx", False)])
def test_predict_with_an_export_writes_the_submission_the_run_writes(tmp_path, rect_dataset, fmt, gate):
    if fmt == "onnx":
        pytest.importorskip("tf2onnx")
        pytest.importorskip("onnxruntime")
    run = make_run(tmp_path / "run", image_size=96, gate=gate, segmenter=red_channel_segmenter())
    export = tmp_path / "export"
    assert CliRunner().invoke(cli, ["export", str(run.path), "--format", fmt, "--out", str(export)]).exit_code == 0
    images = str(rect_dataset / "train_v2")

    def predict(*args):
        return cli_predict(images, *args)

    from_run = predict("--run", str(run.path), "--out", str(tmp_path / "run.csv"))
    from_export = predict("--model", str(export), "--out", str(tmp_path / "export.csv"))
    assert from_export == from_run
    assert sum(map(len, from_run.values())) > 0  # ships found: the comparison is not of empty files
    segmenter_file = str(export / json.loads((export / MANIFEST).read_text())["segmenter"]["file"])
    from_file = predict("--model", segmenter_file, "--out", str(tmp_path / "file.csv"))
    assert from_file == from_run
    # --set still wins over the export's settings
    strict = predict("--model", str(export), "--out", str(tmp_path / "strict.csv"), "--set", "predict.threshold=0.99")
    assert sum(map(len, strict.values())) == 0
    if gate:  # the export's gate runs: a threshold no image reaches leaves every image empty
        gated = predict("--model", str(export), "--out", str(tmp_path / "gated.csv"), "--set", "classifier.threshold=1")
        assert sum(map(len, gated.values())) == 0


def test_predict_export_gate_is_the_exports_and_can_be_dropped(tmp_path):
    run = make_run(tmp_path / "run", image_size=64)
    loaded = load_export(export_run(run.path, "saved_model", tmp_path / "export").path)
    config, gate = loaded.predict_config()
    assert gate is not None and (gate.image_size, gate.threshold) == (32, 0.3)
    assert (config.settings.predict.threshold, config.settings.predict.min_area) == (0.45, 7)
    assert config.settings.data.image_size == 64
    _, gate = loaded.predict_config(overrides=["classifier.threshold=0.8"])
    assert gate.threshold == 0.8
    config, gate = loaded.predict_config(overrides=["classifier.name=''"])
    assert gate is None and config.settings.classifier.name == ""


def test_predict_model_on_a_folder_that_is_no_export_says_what_it_reads(tmp_path, rect_dataset):
    run = make_run(tmp_path / "run", image_size=96, gate=False)
    result = CliRunner().invoke(cli, ["predict", "--model", str(run.path), "--images", str(rect_dataset / "train_v2"),
                                      "--out", str(tmp_path / "s.csv")])
    assert result.exit_code == 2
    assert "shiptoolkit export" in result.output and f"--run {run.path}" in result.output
    assert not (tmp_path / "s.csv").exists()


def context_segmenter(side=32):
    """Ship probability = red - 2 x (mean red over the input): its output depends on the input's extent,
    so whole images and windows give different probabilities."""
    inputs = keras.Input((side, side, 3))
    red = keras.layers.Conv2D(1, 1, use_bias=False, name="red")(inputs)
    mean = keras.layers.Rescaling(2.0)(keras.layers.GlobalAveragePooling2D(keepdims=True)(red))
    model = keras.Model(inputs, keras.layers.ReLU()(keras.layers.Subtract()([red, mean])))
    model.get_layer("red").set_weights([np.array([1 / 255, 0, 0], "float32").reshape(1, 1, 3, 1)])
    return model


def test_an_export_of_a_run_tuned_to_windows_predicts_by_windows_of_the_training_size(tmp_path, rect_dataset):
    run = make_run(tmp_path / "run", image_size=96, gate=False, segmenter=context_segmenter())
    run.save_tuned({"threshold": 0.45, "min_area": 0, "whole_image": False, "classifier_threshold": None})
    export = tmp_path / "export"
    assert CliRunner().invoke(cli, ["export", str(run.path), "--format", "saved_model", "--out", str(export)]
                              ).exit_code == 0
    post = json.loads((export / MANIFEST).read_text())["postprocess"]
    assert (post["whole_image"], post["window"]) == (False, 32)
    images = str(rect_dataset / "train_v2")

    def predict(*args):
        return cli_predict(images, *args)

    from_run = predict("--run", str(run.path), "--out", str(tmp_path / "run.csv"))
    assert predict("--model", str(export), "--out", str(tmp_path / "export.csv")) == from_run
    whole = predict("--model", str(export), "--out", str(tmp_path / "whole.csv"), "--set", "predict.whole_image=true")
    assert whole != from_run  # the windows above were really windows
