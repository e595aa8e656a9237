"""The ship/no-ship gate, its threshold tuning, and watershed splitting of touching ships."""

import json

import keras
import numpy as np
import pandas as pd
import pytest

from shiptoolkit.config import load_config
from shiptoolkit.data.instances import label_instances, split_touching
from shiptoolkit.errors import ConfigError
from shiptoolkit.inference.gate import Gate, gate_report
from shiptoolkit.inference.prediction import PredictSettings, index_items, postprocess, predict_labels
from shiptoolkit.plugins import get_registry
from shiptoolkit.runner import prepare_config
from shiptoolkit.scoring.evaluate import evaluate
from shiptoolkit.training.stage import train


def constant_model(window: int, value: float):
    """A 'segmenter' that sees a ship everywhere with probability `value` (the seed's failure)."""
    inputs = keras.Input((window, window, 3))
    outputs = keras.layers.Conv2D(1, 1, kernel_initializer="zeros",
                                  bias_initializer=keras.initializers.Constant(value))(inputs)
    return keras.Model(inputs, outputs)


class RectGate:
    """A perfect stand-in classifier: an image holds a ship iff it has a bright pixel."""

    def __init__(self):
        self.input_shape = (None, 32, 32, 3)

    def predict_on_batch(self, x):
        return (x.reshape(len(x), -1).max(axis=1, keepdims=True) > 150).astype("float32")


@pytest.mark.parametrize("name", get_registry("classifier").names())
def test_every_classifier_outputs_one_probability_per_image(name):
    small = {"cnn_classifier": {"base_filters": 4, "depth": 3}}.get(name, {})
    model = get_registry("classifier").create(name, input_shape=(64, 64, 3), **small)
    out = np.asarray(model.predict_on_batch(np.zeros((2, 64, 64, 3), "float32")))
    assert out.shape == (2, 1) and np.all((out >= 0) & (out <= 1))


def test_resnet34_classifier_shares_the_unet_encoder_layer_names():
    from shiptoolkit.models.resnet_unet import resnet34_unet

    classifier = get_registry("classifier").create("resnet34_classifier", input_shape=(64, 64, 3))
    unet_names = {layer.name for layer in resnet34_unet((64, 64, 3)).layers if layer.weights}
    names = {layer.name for layer in classifier.layers if layer.weights}
    assert {"bn_data", "conv0", "stage4_unit3_conv2", "bn1"} <= names
    assert names - {"ship_probability"} <= unet_names


def test_gate_turns_predictions_on_empty_images_into_empty_rows(rect_dataset):
    from shiptoolkit.data.airbus import AirbusIndex

    index = AirbusIndex.from_kaggle(rect_dataset, shape=(96, 96))
    items = index_items(index)
    settings = PredictSettings(overlap=0.0)
    seg = constant_model(32, 0.9)
    ungated = dict(predict_labels(seg, items, settings, progress=False))
    assert all(labels.max() > 0 for labels in ungated.values())  # ships everywhere
    gate = Gate(RectGate(), 32, threshold=0.5)
    gated = dict(predict_labels(seg, items, settings, progress=False, gate=gate))
    for image_id in index.image_ids:
        assert (gated[image_id].max() > 0) == index[image_id].has_ships, image_id


def test_evaluate_reports_f2_with_and_without_the_gate(rect_dataset):
    from shiptoolkit.data.airbus import AirbusIndex

    index = AirbusIndex.from_kaggle(rect_dataset, shape=(96, 96))
    config = load_config({"predict": {"overlap": 0.0}, "evaluate": {"plot_examples": 0, "without_gate": True}})
    result = evaluate(config, constant_model(32, 0.9), index=index, progress=False,
                      gate=Gate(RectGate(), 32, threshold=0.5))
    m = result.metrics
    assert m["false_positive_rate_empty"] == 0.0 and m["gate_precision"] == 1.0 and m["gate_recall"] == 1.0
    assert m["f2_without_gate"] == pytest.approx(0.0)  # every image predicted as one big ship
    assert m["f2"] == pytest.approx(m["f2_all_empty_baseline"])  # ship images still wrong, empty ones right
    assert m["gate_rejected_images"] == len(index.empty_ids)


def test_gate_report_scores_rejected_images_as_predicted_empty():
    rows = [{"f2": 0.0, "empty": True}, {"f2": 0.0, "empty": True}, {"f2": 0.8, "empty": False},
            {"f2": 0.0, "empty": False}]
    probs = np.array([0.1, 0.3, 0.9, 0.2])
    report = gate_report(rows, probs, 0.6)
    assert report["gate_precision"] == 1.0 and report["gate_recall"] == 0.5
    assert report["f2_with_gate"] == pytest.approx(0.7) and report["f2_without_gate"] == pytest.approx(0.2)


def test_splitting_separates_two_touching_rectangles():
    mask = np.zeros((64, 64), np.uint8)
    mask[10:30, 10:30] = 1
    mask[24:44, 28:48] = 1  # overlaps the first one's corner: one blob with a neck
    assert label_instances(mask).max() == 1
    labels = split_touching(mask)
    assert labels.max() == 2
    assert sorted(np.bincount(labels.ravel())[1:]) == pytest.approx([400, 400], abs=40)
    assert postprocess(mask.astype("float32"), split="watershed").max() == 2


@pytest.mark.parametrize("angle", range(0, 180, 15))
def test_splitting_keeps_single_ships_whole(angle):
    import cv2

    mask = np.zeros((120, 120), np.uint8)
    cv2.ellipse(mask, (60, 60), (40, 7), angle, 0, 360, 1, -1)
    assert split_touching(mask).max() == 1
    assert split_touching(mask, min_area=10_000).max() == 0


def test_classifier_config_is_validated():
    with pytest.raises(ConfigError, match="Did you mean 'epochs'"):
        load_config({"classifier": {"name": "cnn_classifier", "epoch": 2}})
    with pytest.raises(ConfigError, match="no name"):
        load_config({"classifier": {"depth": 3}})
    with pytest.raises(ConfigError, match="ship_fraction"):
        load_config({"classifier": {"name": "cnn_classifier", "ship_fraction": 1.0}})
    with pytest.raises(ConfigError, match="watershed"):
        load_config({"predict": {"split": "distance"}})


def test_training_with_a_classifier_writes_the_gate_and_tunes_it_jointly(tmp_path, rect_writer):
    rng = np.random.default_rng(0)
    specs = {f"g{i:02d}.jpg": ([(int(r), int(r) + 8, int(c), int(c) + 20) for r, c in [rng.integers(4, 40, 2)]]
                              if i % 3 == 0 else []) for i in range(24)}
    data = rect_writer(tmp_path / "data", specs, size=64)
    config = prepare_config({
        "run": {"name": "gated", "out_dir": str(tmp_path / "runs"), "seed": 1},
        "data": {"path": str(data), "image_size": 64, "val_fraction": 0.25, "test_fraction": 0.25},
        "sampler": {"name": "mixed", "patch_size": 32, "patches_per_epoch": 32},
        "backbone": {"name": "unet", "base_filters": 4, "depth": 2},
        "train": {"epochs": 1, "batch_size": 8},
        "classifier": {"name": "cnn_classifier", "base_filters": 4, "depth": 3, "image_size": 32, "epochs": 2,
                       "batch_size": 8},
        "tune": {"thresholds": [0.5], "min_areas": [0]},
        "predict": {"split": "watershed"},
        "evaluate": {"plot_examples": 0, "without_gate": True},
    })
    result = train(config, progress=False)
    info = json.loads(result.gate_path.read_text())
    assert info["classifier"] == "cnn_classifier" and info["tuned_in"] == "postprocess.json"
    tuned = json.loads((result.run_dir / "postprocess.json").read_text())
    assert tuned["tuned_on"]["images"] == 5 and 0.0 <= tuned["classifier_threshold"] <= 1.0
    assert (result.run_dir / "classifier.keras").is_file()
    assert len(pd.read_csv(result.run_dir / "classifier_history.csv")) >= 1
    # evaluate finds the gate beside the model file and reports both f2 values and the baseline.
    metrics = evaluate(config, result.best_model_path, progress=False).metrics
    assert {"f2", "f2_without_gate", "f2_without_split", "f2_all_empty_baseline", "gate_recall"} <= set(metrics)
    assert metrics["gate_threshold"] == pytest.approx(tuned["classifier_threshold"])
    # So does `shiptoolkit evaluate --run`, into a new run directory.
    from click.testing import CliRunner

    from shiptoolkit.cli import cli

    out = CliRunner().invoke(cli, ["evaluate", "--run", str(result.run_dir), "--quiet",
                                   "--set", f"run.out_dir={json.dumps(str(tmp_path / 'evals'))}"])
    assert out.exit_code == 0, out.output
    assert "all-empty baseline f2" in out.output and "f2_without_gate" in out.output
    assert (next((tmp_path / "evals").iterdir()) / "metrics.json").is_file()
    # A run interrupted after the segmenter resumes with the tuning only.
    (result.run_dir / "postprocess.json").unlink()
    resumed = train(None, resume=result.run_dir, progress=False)
    assert (result.run_dir / "postprocess.json").is_file() and resumed.epochs_run == 0


def test_a_gate_without_its_classifier_file_is_a_clear_error(tmp_path):
    from shiptoolkit.inference.gate import load_gate

    config = load_config({"classifier": {"name": "cnn_classifier"}})
    with pytest.raises(ConfigError, match="no classifier.keras"):
        load_gate(config, tmp_path)


def two_moored_ships():
    """Two ships flush side by side: one blob without a neck, which shape alone cannot split."""
    labels = np.zeros((40, 40), np.int32)
    labels[5:13, 4:36] = 1
    labels[13:21, 4:36] = 2
    return labels


def test_seams_mark_where_two_ships_touch():
    from shiptoolkit.data.instances import seam_pixels

    seams = seam_pixels(two_moored_ships())
    assert set(np.unique(np.nonzero(seams)[0])) == {12, 13}  # one pixel row on each side of the seam
    single = np.zeros((40, 40), np.int32)
    single[5:13, 4:36] = 1
    assert not seam_pixels(single).any()


def test_seam_channel_splits_ships_moored_side_by_side():
    from shiptoolkit.data.instances import seam_pixels, split_by_seams

    labels = two_moored_ships()
    prob = (labels > 0).astype("float32")
    assert split_touching(labels > 0).max() == 1  # no neck: the distance watershed cannot
    split = split_by_seams(prob, seam_pixels(labels).astype("float32"))
    assert split.max() == 2 and sorted(np.bincount(split.ravel())[1:]) == [256, 256]
    assert postprocess(prob, split="watershed", seam=seam_pixels(labels).astype("float32")).max() == 2
    # A blob that is all seam keeps its label instead of vanishing.
    assert split_by_seams(prob, np.ones_like(prob)).max() == 1


def test_seam_channel_batches_and_two_channel_prediction(tmp_path, rect_writer):
    from shiptoolkit.data.airbus import AirbusIndex
    from shiptoolkit.inference.prediction import predict_probabilities
    from shiptoolkit.training.pipeline import SamplerBatches

    root = rect_writer(tmp_path / "d", {"a.jpg": [(5, 13, 4, 36), (13, 21, 4, 36)], "b.jpg": []}, size=64)
    index = AirbusIndex.from_kaggle(root, shape=(64, 64))
    index.seams = True
    assert set(np.unique(index.mask("a.jpg"))) == {0, 1, 2} and index.subset(["a.jpg"]).seams
    sampler = get_registry("sampler").create("full_images", index, seed=0)
    x, y = SamplerBatches(sampler, 2, seam_channel=True)[0]
    assert y.shape == (2, 64, 64, 2) and y[..., 1].sum() == 64 and set(np.unique(y)) == {0.0, 1.0}
    model = get_registry("backbone").create("unet", input_shape=(32, 32, 3), classes=2, base_filters=4, depth=2)
    assert predict_probabilities(model, x.astype("uint8"), overlap=0.25).shape == (2, 64, 64, 2)


def test_training_a_seam_channel(tmp_path, rect_writer):
    specs = {f"s{i:02d}.jpg": [(5 + i, 13 + i, 4, 36), (13 + i, 21 + i, 4, 36)] if i % 2 == 0 else []
             for i in range(12)}
    data = rect_writer(tmp_path / "data", specs, size=64)
    config = prepare_config({
        "run": {"name": "seams", "out_dir": str(tmp_path / "runs"), "seed": 1},
        "data": {"path": str(data), "image_size": 64, "val_fraction": 0.25, "test_fraction": 0.25},
        "sampler": {"name": "full_images"},
        "backbone": {"name": "unet", "base_filters": 4, "depth": 2},
        "train": {"epochs": 1, "batch_size": 4, "seam_channel": True},
        "predict": {"split": "watershed"},
        "evaluate": {"plot_examples": 2},
    })
    result = train(config, progress=False)
    model = keras.models.load_model(result.best_model_path, compile=False)
    assert model.output_shape[-1] == 2
    metrics = evaluate(config, result.best_model_path, run_dir=result.run_dir, progress=False).metrics
    assert {"f2", "f2_without_split", "f2_all_empty_baseline"} <= set(metrics)
    with pytest.raises(ConfigError, match="one-class backbone"):
        from shiptoolkit.training.stage import build_model

        build_model(prepare_config({**config.values, "backbone": {"name": "unet", "classes": 3}}), (32, 32, 3))


def test_tuning_picks_a_gate_that_rejects_the_empty_images(rect_dataset):
    from shiptoolkit.data.airbus import AirbusIndex
    from shiptoolkit.training.tuning import tune_postprocess

    index = AirbusIndex.from_kaggle(rect_dataset, shape=(96, 96))
    info = tune_postprocess(constant_model(32, 0.9), index, PredictSettings(overlap=0.0), [0.5], [0],
                            gate=Gate(RectGate(), 32, threshold=0.0), progress=False)
    assert 0.0 < info["classifier_threshold"] <= 1.0
    assert info["f2"] >= info["f2_all_empty_baseline"] > info["f2_with_defaults"]
    assert info["tuned_on"] == {**info["tuned_on"], "role": "validation", "images": len(index)}


def test_predict_uses_the_saved_postprocessing_unless_overridden(tmp_path, rect_dataset):
    from shiptoolkit.inference.stage import predict_stage
    from shiptoolkit.inference.submission import read_submission
    from shiptoolkit.models.saving import save_model
    from shiptoolkit.rundir import RunDir

    run = tmp_path / "run"
    run.mkdir()
    model = save_model(constant_model(32, 0.9), run / "best.keras")  # a ship everywhere at p = 0.9
    RunDir(run).save_tuned({"threshold": 0.95, "min_area": 0, "classifier_threshold": None})
    config = load_config({"predict": {"overlap": 0.0}, "data": {"image_size": 96}})
    images = str(rect_dataset / "train_v2")
    tuned = predict_stage(config, model, run, progress=False, images=images, out=tmp_path / "tuned.csv")
    assert tuned.summary.ships == 0  # the tuned threshold 0.95 is above every probability
    overridden = predict_stage(config.with_overrides(["predict.threshold=0.5"]), model, run, progress=False,
                               images=images, out=tmp_path / "overridden.csv")
    assert overridden.summary.ships == 12 and len(read_submission(tmp_path / "overridden.csv")) == 12
