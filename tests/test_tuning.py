"""Post-processing tuned on validation only, model selection on validation f2, the collapse check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shiptoolkit.config import load_config
from shiptoolkit.errors import ConfigError
from shiptoolkit.inference.prediction import PredictSettings, postprocess
from shiptoolkit.runner import prepare_config
from shiptoolkit.training.callbacks import BestCheckpoint, CollapseGuard, predicts_nothing
from shiptoolkit.training.stage import TrainingCollapsed, train
from shiptoolkit.training.tuning import choose, describe_tuned, f2_grid, gate_candidates, scan_scores


def test_f2_grid_matches_postprocess_for_every_threshold_and_min_area():
    from shiptoolkit.scoring.competition import image_f2_from_labels

    rng = np.random.default_rng(0)
    true = np.zeros((64, 64), np.int32)
    true[5:12, 5:30] = 1
    true[40:44, 40:44] = 2
    prob = np.clip(rng.random((64, 64)) * 0.6 + (true > 0) * 0.35, 0, 1).astype(np.float32)
    settings = PredictSettings()
    grid = f2_grid(true, prob, settings, [0.4, 0.6, 0.8], [0, 5, 20, 100])
    for i, t in enumerate([0.4, 0.6, 0.8]):
        for j, a in enumerate([0, 5, 20, 100]):
            assert grid[i, j] == pytest.approx(image_f2_from_labels(true, postprocess(prob, t, a)))


def test_the_scan_is_joint_not_one_knob_at_a_time():
    # Image 0 is empty with a speck the segmenter calls a ship; image 1 has a ship that only a low
    # threshold finds; the classifier's probabilities separate them. Only the joint choice wins both.
    f2 = np.array([[[0.0, 1.0], [0.0, 1.0]],     # empty image: (threshold, min_area) -> f2
                   [[0.9, 0.9], [0.0, 0.0]]])    # ship image: found at threshold 0.3 only
    empty = np.array([True, False])
    probs = np.array([0.2, 0.8])
    gates = gate_candidates(probs, 0.02, [0.5])
    scores = scan_scores(f2, empty, probs, gates)
    g, t, a = choose(scores, [0.3, 0.7], [0, 50], gates)
    assert scores[g, t, a] == pytest.approx((1.0 + 0.9) / 2)
    assert t == 0 and 0.2 < gates[g] <= 0.8
    no_gate = scan_scores(f2, empty, None, None)
    assert no_gate.shape == (1, 2, 2) and no_gate.max() == pytest.approx((1.0 + 0.9) / 2)


def test_ties_stay_near_the_defaults():
    scores = np.zeros((1, 3, 3))
    assert choose(scores, [0.3, 0.5, 0.7], [0, 20, 80], None) == (0, 1, 0)


def test_saved_postprocessing_is_what_predict_uses_unless_overridden(tmp_path):
    tuned = {"threshold": 0.85, "min_area": 40, "classifier_threshold": 0.3}
    config = prepare_config({"predict": {"threshold": 0.5, "min_area": 0}})
    settings = PredictSettings.from_config(config, tuned)
    assert (settings.threshold, settings.min_area) == (0.85, 40)
    overridden = config.with_overrides(["predict.threshold=0.6"])
    settings = PredictSettings.from_config(overridden, tuned)
    assert (settings.threshold, settings.min_area) == (0.6, 40)


def test_collapse_guard_fires_on_a_model_that_stops_predicting_ships():
    guard = CollapseGuard(patience=2)

    class Model:
        stop_training = False

    guard.set_model(Model())
    guard.on_epoch_end(0, {"val_predicted_pixels": 0.0})  # not learned yet: still learning, not collapsed
    guard.on_epoch_end(1, {"val_predicted_pixels": 0.0})
    assert not guard.collapsed
    guard.on_epoch_end(2, {"val_predicted_pixels": 350.0})
    guard.on_epoch_end(3, {"val_predicted_pixels": 0.0, "val_f2": 0.78})
    assert not guard.collapsed
    guard.on_epoch_end(4, {"val_predicted_pixels": 0.0, "val_f2": 0.78})
    assert guard.collapsed and guard.model.stop_training
    assert predicts_nothing({"val_dice": 0.0}) and not predicts_nothing({"val_dice": 0.4})
    assert not predicts_nothing({"val_predicted_pixels": float("nan"), "val_dice": 0.3})
    # Between val_f2 epochs, validation patches without a ship give dice 0 to any false positive pixel:
    # a model that learns (training dice 0.77) has not collapsed.
    assert not predicts_nothing({"val_predicted_pixels": float("nan"), "val_dice": 0.0, "dice": 0.77})
    assert predicts_nothing({"val_predicted_pixels": float("nan"), "val_dice": 0.5, "dice": 0.0})
    learning = CollapseGuard(patience=2)
    learning.set_model(Model())
    for epoch, logs in enumerate([{"dice": 0.47, "val_dice": 0.0}, {"dice": 0.73, "val_dice": 0.0},
                                  {"dice": 0.76, "val_dice": 0.0, "val_predicted_pixels": 66720.0},
                                  {"dice": 0.77, "val_dice": 0.0}, {"dice": 0.81, "val_dice": 0.0}]):
        learning.on_epoch_end(epoch, {"val_predicted_pixels": float("nan")} | logs)
    assert not learning.collapsed  # cpu_long seed 3 with sampler.empty_on_edges = 0.5, epochs 0-4


def test_best_checkpoint_never_keeps_a_model_that_predicts_nothing(tmp_path):
    saved = []

    class Model:
        def save(self, path):
            saved.append(path)

    best = BestCheckpoint(tmp_path / "best.keras", "val_f2")
    best.set_model(Model())
    best.on_epoch_end(0, {"val_f2": 0.78, "val_predicted_pixels": 0.0})  # the all-empty score: not kept
    best.on_epoch_end(1, {"val_f2": 0.60, "val_predicted_pixels": 500.0})
    best.on_epoch_end(2, {"val_f2": float("nan")})  # an epoch val_f2 skipped
    best.on_epoch_end(3, {"val_f2": 0.70, "val_predicted_pixels": 300.0})
    assert len(saved) == 2 and best.best == 0.70 and best.best_epoch == 4


def test_early_stopping_ignores_epochs_without_val_f2():
    import keras

    from shiptoolkit.training.callbacks import measured_only

    class Model:
        stop_training = False

    stopper = measured_only(keras.callbacks.EarlyStopping("val_f2", patience=2, mode="max"), "val_f2")
    stopper.set_model(Model())
    stopper.on_train_begin()
    for epoch, value in enumerate([0.8, float("nan"), float("nan"), float("nan"), 0.85]):
        stopper.on_epoch_end(epoch, {"val_f2": value})
    assert not stopper.model.stop_training  # three unmeasured epochs are not three epochs without improvement
    stopper.on_epoch_end(5, {"val_f2": 0.84})
    stopper.on_epoch_end(6, {"val_f2": 0.83})
    assert stopper.model.stop_training


def _tiny_config(tmp_path, data, **train):
    return prepare_config({
        "run": {"name": "tiny", "out_dir": str(tmp_path / "runs"), "seed": 3},
        "data": {"path": str(data), "image_size": 64, "val_fraction": 0.3, "test_fraction": 0.25},
        "sampler": {"name": "mixed", "patch_size": 32, "patches_per_epoch": 32},
        "backbone": {"name": "unet", "base_filters": 4, "depth": 2},
        "train": {"epochs": 2, "batch_size": 8, **train},
        "classifier": {"name": "cnn_classifier", "base_filters": 4, "depth": 3, "image_size": 32, "epochs": 1,
                       "batch_size": 8},
        "tune": {"thresholds": [0.5, 0.7], "min_areas": [0, 10]},
        "evaluate": {"plot_examples": 0},
    })


def _rect_specs(n=32):
    rng = np.random.default_rng(0)
    return {f"t{i:02d}.jpg": ([(int(r), int(r) + 8, int(c), int(c) + 20) for r, c in [rng.integers(4, 40, 2)]]
                              if i % 3 == 0 else []) for i in range(n)}


def test_the_test_set_is_never_seen_by_checkpointing_or_tuning(tmp_path, rect_writer, monkeypatch):
    import shiptoolkit.training.callbacks as callbacks
    import shiptoolkit.training.stage as training
    from shiptoolkit.data.source import data_splits
    from shiptoolkit.runner import run

    data = rect_writer(tmp_path / "data", _rect_specs(), size=64)
    config = _tiny_config(tmp_path, data)
    splits = data_splits(config, progress=False)
    test_ids, val_ids = set(splits.test.image_ids), set(splits.validation.image_ids)
    assert test_ids and val_ids and not test_ids & val_ids and not test_ids & set(splits.train.image_ids)
    seen: dict[str, set] = {"checkpoint": set(), "tuning": set()}
    real_score, real_tune = callbacks.score_images, training.tune_postprocess

    def score_spy(model, index, *args, **kwargs):
        seen["checkpoint"] |= set(index.image_ids)
        return real_score(model, index, *args, **kwargs)

    def tune_spy(model, index, *args, **kwargs):
        seen["tuning"] |= set(index.image_ids)
        return real_tune(model, index, *args, **kwargs)

    monkeypatch.setattr(callbacks, "score_images", score_spy)
    monkeypatch.setattr(training, "tune_postprocess", tune_spy)  # the name the training stage calls
    result = run(config, progress=False)
    assert seen["checkpoint"] and seen["checkpoint"] <= val_ids
    assert seen["tuning"] == val_ids
    tuned = json.loads((result.run_dir / "postprocess.json").read_text())
    assert tuned["tuned_on"]["role"] == "validation" and tuned["tuned_on"]["images"] == len(val_ids)
    m = result.evaluate.metrics
    assert m["role"] == "test" and m["images"] == len(test_ids) and "f2_with_defaults" in m
    assert m["postprocess"]["threshold"] == tuned["threshold"]
    history = (result.run_dir / "history.csv").read_text().splitlines()[0]
    assert "val_f2" in history and "val_fp_rate_empty" in history


def test_training_that_collapses_stops_and_says_so(tmp_path, rect_writer, monkeypatch):
    """The quickstart's old failure: ships predicted after the first epoch, then none at all."""
    import shiptoolkit.training.callbacks as callbacks

    pixels = iter([900.0, 0.0, 0.0, 0.0])

    def collapsing(model, index, *args, **kwargs):
        return {"f2": 0.7, "f2_all_empty_baseline": 0.7, "fp_rate_empty": 0.0, "predicted_pixels": next(pixels),
                "images": len(index)}

    monkeypatch.setattr(callbacks, "score_images", collapsing)
    data = rect_writer(tmp_path / "data", _rect_specs(24), size=64)
    config = _tiny_config(tmp_path, data, epochs=4)
    config = prepare_config({**config.values, "classifier": {"name": ""}})
    with pytest.raises(TrainingCollapsed, match="predicted no ship pixel"):
        train(config, progress=False)
    run_dir = next((tmp_path / "runs").iterdir())
    state = json.loads((run_dir / "train_state.json").read_text())
    assert state["status"] == "collapsed" and state["epochs_completed"] == 3
    assert state["best_epoch"] == 1  # the epoch that still predicted ships; never a collapsed one


def test_a_missing_test_set_is_a_clear_error(tmp_path, rect_writer):
    from shiptoolkit.data.source import data_splits
    from shiptoolkit.errors import ConfigError

    data = rect_writer(tmp_path / "data", _rect_specs(12), size=64)
    splits = data_splits(load_config({"data": {"path": str(data), "image_size": 64, "val_fraction": 0.3}}),
                         progress=False)
    with pytest.raises(ConfigError, match="data.test_fraction"):
        splits.role("test")


def test_the_split_depth_is_tuned_with_the_threshold_and_used_by_predict(tmp_path):
    """Two ships joined by a neck in the prediction: a watershed at depth 1.5 splits them, at depth
    50 it cannot; with the config's depth 50 and 1.5 among tune.split_depths, the scan picks 1.5."""
    import cv2
    import keras

    from shiptoolkit.data.airbus import AirbusIndex
    from shiptoolkit.data.rle import rle_encode
    from shiptoolkit.training.tuning import tune_postprocess

    (tmp_path / "train_v2").mkdir()
    rows = ["ImageId,EncodedPixels"]
    for i in range(3):
        image, ships = np.zeros((64, 64, 3), np.uint8), []
        for r0 in (10, 26):  # two 12x30 hulls, 4 px apart
            mask = np.zeros((64, 64), np.uint8)
            mask[r0:r0 + 12, 16:46] = 1
            ships.append(mask)
            rows.append(f"p{i}.png,{rle_encode(mask)}")
        image[..., 0] = 255 * sum(ships)
        image[22:26, 29:33, 0] = 255  # the neck: predicted ship, not in the masks
        cv2.imwrite(str(tmp_path / "train_v2" / f"p{i}.png"), np.ascontiguousarray(image[..., ::-1]))
    (tmp_path / "train_ship_segmentations_v2.csv").write_text("\n".join(rows) + "\n")
    index = AirbusIndex.from_kaggle(tmp_path, shape=(64, 64))
    inputs = keras.Input((None, None, 3))  # outputs the red channel / 255: the probabilities drawn above
    conv = keras.layers.Conv2D(1, 1, use_bias=False)
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.array([1 / 255, 0, 0], "float32").reshape(1, 1, 3, 1)])
    settings = PredictSettings(split="watershed", split_depth=50.0)
    info = tune_postprocess(model, index, settings, [0.5], [0], progress=False, split_depths=[1.5])
    assert info["split_depth"] == 1.5 and info["f2"] > info["f2_with_defaults"], info
    assert {row["split_depth"] for row in info["scan"]} == {1.5, 50.0}
    assert PredictSettings.from_config(load_config({"predict": {"split": "watershed"}}), info).split_depth == 1.5
    config = load_config({"predict": {"split": "watershed"}}, ["predict.split_depth=7"])
    assert PredictSettings.from_config(config, info).split_depth == 7  # an override still wins
    assert "split depth 1.5" in describe_tuned(info)
    with pytest.raises(ConfigError, match="tune.split_depths"):
        load_config({"tune": {"split_depths": [0.0]}})


def _context_model(side):
    """Ship probability = red - 2 x (mean red over the model's input): a long red block (a "coast")
    is dark inside any window that holds much of it, but lit on a whole image, where its mean is diluted."""
    import keras

    inputs = keras.Input((side, side, 3))
    red = keras.layers.Conv2D(1, 1, use_bias=False, name="red")(inputs)
    mean = keras.layers.GlobalAveragePooling2D(keepdims=True, name="mean")(red)
    twice = keras.layers.Rescaling(2.0, name="twice")(mean)
    model = keras.Model(inputs, keras.layers.ReLU(name="relu")(keras.layers.Subtract(name="minus")([red, twice])))
    model.get_layer("red").set_weights([np.array([1 / 255, 0, 0], "float32").reshape(1, 1, 3, 1)])
    return model


def _coast_and_ships(tmp_path, n=4):
    """64 px images: a small ship (in the masks) and a 32x16 red "coast" (not a ship) on every image."""
    import cv2

    from shiptoolkit.data.airbus import AirbusIndex
    from shiptoolkit.data.rle import rle_encode

    (tmp_path / "train_v2").mkdir()
    rows = ["ImageId,EncodedPixels"]
    for i in range(n):
        image, mask = np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64), np.uint8)
        mask[6 + i:10 + i, 6:14] = 1
        image[..., 0] = 255 * mask
        image[32:64, 32:48, 0] = 255
        rows.append(f"c{i}.png,{rle_encode(mask)}")
        cv2.imwrite(str(tmp_path / "train_v2" / f"c{i}.png"), np.ascontiguousarray(image[..., ::-1]))
    (tmp_path / "train_ship_segmentations_v2.csv").write_text("\n".join(rows) + "\n")
    return AirbusIndex.from_kaggle(tmp_path, shape=(64, 64))


def test_windows_are_chosen_on_validation_only_where_they_score_higher(tmp_path):
    """A model whose output depends on its input's extent: on whole images the coast is a false ship,
    in 32 px windows it is dark. The scan tries both ways and keeps windows; predict then uses them."""
    from shiptoolkit.training.tuning import tune_postprocess

    index = _coast_and_ships(tmp_path)
    model = _context_model(32)
    info = tune_postprocess(model, index, PredictSettings(), [0.5], [0], progress=False, try_windows=True)
    assert info["whole_image"] is False and info["f2"] == pytest.approx(1.0), info
    assert info["f2_with_defaults"] == pytest.approx(5 / 6)  # whole images: the coast is one false ship per image
    assert {row["whole_image"] for row in info["scan"]} == {True, False}
    assert "sliding windows" in describe_tuned(info)
    assert PredictSettings.from_config(load_config({}), info).whole_image is False
    config = load_config({}, ["predict.whole_image=true"])
    assert PredictSettings.from_config(config, info).whole_image is True  # an override still wins
    # without try_windows (tune.windows = false), or for a config that already predicts by windows: no scan;
    # the joint scan is never below either way alone
    whole_only = tune_postprocess(model, index, PredictSettings(), [0.5], [0], progress=False)
    windows_only = tune_postprocess(model, index, PredictSettings(whole_image=False), [0.5], [0], progress=False,
                                    try_windows=True)
    assert "whole_image" not in whole_only and "whole_image" not in windows_only
    assert info["f2"] >= max(whole_only["f2"], windows_only["f2"]) and whole_only["f2"] < windows_only["f2"]


def test_whole_images_win_a_tie_with_windows(tmp_path):
    import keras

    from shiptoolkit.training.tuning import tune_postprocess

    index = _coast_and_ships(tmp_path)
    inputs = keras.Input((32, 32, 3))  # red channel / 255: the same probabilities either way
    conv = keras.layers.Conv2D(1, 1, use_bias=False)
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.array([1 / 255, 0, 0], "float32").reshape(1, 1, 3, 1)])
    info = tune_postprocess(model, index, PredictSettings(), [0.5], [0], progress=False, try_windows=True)
    assert info["whole_image"] is True, info


def test_a_free_size_model_predicts_by_predict_window_when_whole_images_are_off(tmp_path):
    """An export has a free input size: predict.window (written into its manifest) gives it the windows
    the run was tuned with."""
    from shiptoolkit.inference.prediction import index_items, predict_items, predict_probabilities

    index = _coast_and_ships(tmp_path, n=1)
    free = _context_model(None)
    image = index.read_image(index.image_ids[0])[None]
    windows = predict_probabilities(free, image, window=32)
    whole = predict_probabilities(free, image)
    assert not np.allclose(windows, whole)
    for settings, expected in ((PredictSettings(whole_image=False, window=32), windows),
                               (PredictSettings(whole_image=True, window=32), whole),
                               (PredictSettings(whole_image=False), whole)):
        (p,) = predict_items(free, index_items(index), settings, progress=False)
        np.testing.assert_allclose(p.prob, expected[0], atol=1e-6)
    with pytest.raises(ConfigError, match="predict.window"):
        load_config({"predict": {"window": -1}})
