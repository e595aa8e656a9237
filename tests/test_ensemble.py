"""Ensembles (`shiptoolkit.ensembles`): several runs' probabilities averaged, post-processing re-tuned on the
members' own validation images; `predict`/`evaluate` take several --run or a folder of runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from shiptoolkit.cli import cli
from shiptoolkit.config import load_config
from shiptoolkit.data.source import data_splits
from shiptoolkit.ensembles import members_postprocess, open_ensemble
from shiptoolkit.errors import ConfigError
from shiptoolkit.inference.ensemble import Member, ensemble_segmenter, find_members, is_folder_of_runs
from shiptoolkit.inference.gate import Gate
from shiptoolkit.inference.prediction import PredictSettings, predict_probabilities, whole_image_model
from shiptoolkit.models.classifiers import cnn_classifier
from shiptoolkit.models.saving import load_model, save_model
from shiptoolkit.rundir import RunDir
from shiptoolkit.training.tuning import tune_postprocess


def segmenter(red: float = 10.0, green: float = 0.0, bias: float = -5.0):
    """Ship probability sigmoid(red x R/255 + green x G/255 + bias) on 32 px windows: bright ships score high."""
    inputs = keras.Input((32, 32, 3))
    conv = keras.layers.Conv2D(1, 1, activation="sigmoid")
    model = keras.Model(inputs, conv(keras.layers.Rescaling(1 / 255)(inputs)))
    conv.set_weights([np.array([red, green, 0], "float32").reshape(1, 1, 3, 1), np.array([bias], "float32")])
    return model


@pytest.fixture
def data(tmp_path, rect_writer):
    """A 64 px Kaggle-layout dataset (20 images, ships on some) and a folder of 6 other images to predict."""
    specs = {f"d{i:02d}.jpg": ([(8 + i, 20 + i, 10, 40)] if i % 2 == 0 else []) for i in range(20)}
    root = rect_writer(tmp_path / "data", specs, size=64)
    new = rect_writer(tmp_path / "new", {f"n{i}.jpg": ([(30, 40, 5 + i, 35 + i)] if i % 3 else []) for i in range(6)},
                      size=64)
    return root, new / "train_v2"


def make_run(root: Path, data_root: Path, model=None, gate: bool = False, image_size: int = 64, seed: int = 42,
             classifier_size: int = 32, tune: bool = True) -> RunDir:
    """A run directory as training leaves it: best.keras, config.toml and (with `tune`) the postprocess.json
    that training's tuning writes (tuned on the run's own validation images)."""
    run = RunDir(root)
    run.path.mkdir(parents=True)
    save_model(model or segmenter(), run.best)
    classifier = ""
    if gate:
        keras.utils.set_random_seed(seed)
        save_model(cnn_classifier((classifier_size, classifier_size, 3), base_filters=4, depth=2), run.classifier)
        run.gate.write_text(json.dumps({"threshold": 0.5}))
        classifier = (f'[classifier]\nname = "cnn_classifier"\nbase_filters = 4\ndepth = 2\n'
                      f"image_size = {classifier_size}\n")
    run.config.write_text(
        f'[run]\nseed = {seed}\nout_dir = "{root.parent / "evaluations"}"\nname = "tiny"\n'
        f'[data]\npath = "{data_root}"\nimage_size = {image_size}\nval_fraction = 0.3\ntest_fraction = 0.25\n'
        "[tune]\nthresholds = [0.3, 0.5, 0.7]\nmin_areas = [0, 20]\nwindows = false\n"
        "[evaluate]\nplot_examples = 1\n" + classifier)
    if tune:
        config = load_config(run.config)
        s = config.settings
        gate_obj = Gate(load_model(run.classifier), classifier_size, 0.5) if gate else None
        run.save_tuned(tune_postprocess(load_model(run.best), data_splits(config, False).validation,
                                        PredictSettings.from_config(config), s.tune.thresholds, s.tune.min_areas,
                                        gate_obj, s.classifier.tune_threshold, s.tune.gate_floor, False))
    return run


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    return result.output


def test_an_ensemble_of_two_copies_of_a_run_predicts_what_the_run_predicts(tmp_path, data):
    data_root, images = data
    run = make_run(tmp_path / "runs" / "a", data_root, gate=True)
    cv = tmp_path / "cv"
    for fold in (0, 1):  # a folder of runs, as a cross-validation leaves them
        shutil.copytree(run.path, cv / f"tiny-fold{fold}-20260101-000000")
    single, both = tmp_path / "single.csv", tmp_path / "both.csv"
    invoke("predict", "--run", str(run.path), "--images", str(images), "--out", str(single))
    output = invoke("predict", "--run", str(cv), "--images", str(images), "--out", str(both))
    assert "ensemble of 2 runs" in output and "segmenter and gate probabilities averaged" in output
    assert "re-tuned on" in output and "out-of-fold validation images" in output
    assert both.read_bytes() == single.read_bytes()


def test_an_ensemble_of_two_models_gives_the_mean_of_their_probabilities(tmp_path, data):
    data_root, _ = data
    a = make_run(tmp_path / "a", data_root, segmenter(10.0, 0.0, -5.0), tune=False)
    b = make_run(tmp_path / "b", data_root, segmenter(4.0, 3.0, -3.0), tune=False)
    members = [Member(run, load_config(run.config)) for run in (a, b)]
    ensemble = ensemble_segmenter(members)
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    pa, pb = (predict_probabilities(load_model(r.best), images) for r in (a, b))  # sliding 32 px windows
    np.testing.assert_allclose(predict_probabilities(ensemble, images), (pa + pb) / 2, atol=1e-6)
    whole = whole_image_model(ensemble)  # whole images: the ensemble frees its input size like one model does
    assert whole.input_shape == (None, None, None, 3)
    wa, wb = (predict_probabilities(whole_image_model(load_model(r.best)), images) for r in (a, b))
    np.testing.assert_allclose(predict_probabilities(whole, images), (wa + wb) / 2, atol=1e-6)


def test_a_folder_of_runs_is_found_as_members(tmp_path, data):
    run = make_run(tmp_path / "a", data[0], tune=False)
    cv = tmp_path / "cv"
    for fold in (1, 0):
        shutil.copytree(run.path, cv / f"tiny-fold{fold}-20260101-000000")
    (cv / "notes").mkdir()  # not a run: no config.toml, no best.keras
    (cv / "summary.json").write_text("{}")
    assert find_members([cv]) == [cv / "tiny-fold0-20260101-000000", cv / "tiny-fold1-20260101-000000"]
    assert find_members([run.path, cv])[0] == run.path
    assert is_folder_of_runs(cv) and not is_folder_of_runs(run.path)
    with pytest.raises(ConfigError, match="neither a run directory"):
        find_members([cv / "notes"])


@pytest.mark.parametrize("key", ["data.image_size", "classifier.image_size"])
def test_members_that_read_images_differently_are_refused_naming_the_key_and_runs(tmp_path, data, key):
    other = {"image_size": 96} if key == "data.image_size" else {"classifier_size": 48}
    a = make_run(tmp_path / "a", data[0], gate=True, tune=False)
    b = make_run(tmp_path / "b", data[0], gate=True, tune=False, **other)
    with pytest.raises(ConfigError, match=rf"disagree on {key} .*{a.path}: .*{b.path}: "):
        open_ensemble([a.path, b.path])
    result = CliRunner().invoke(cli, ["predict", "--run", str(a.path), "--run", str(b.path), "--images",
                                      str(data[1]), "--out", str(tmp_path / "x.csv")])
    assert result.exit_code != 0 and key in result.output and not (tmp_path / "x.csv").exists()


def test_evaluate_with_two_runs_reports_f2_beside_the_all_empty_baseline(tmp_path, data):
    a = make_run(tmp_path / "runs" / "a", data[0], segmenter(10.0, 0.0, -5.0), seed=1, tune=False)
    b = make_run(tmp_path / "runs" / "b", data[0], segmenter(8.0, 1.0, -4.5), seed=2, tune=False)
    output = invoke("evaluate", "--run", str(a.path), "--run", str(b.path))
    assert "ensemble of 2 runs" in output and "re-tuned on" in output
    assert "f2:" in output and "all-empty baseline f2:" in output
    folder = next((tmp_path / "runs" / "evaluations").glob("tiny-ensemble-*"))
    saved = json.loads(RunDir(folder).metrics.read_text())
    assert {"f2", "f2_all_empty_baseline"} <= set(saved["metrics"])
    assert saved["tuned"]["ensemble"]["members"] == [str(a.path), str(b.path)]
    assert RunDir(folder).read_tuned()["tuned_on"]["role"].startswith("out-of-fold validation")
    # the members' validation images were tuned on: scoring them would be no test figure
    refused = CliRunner().invoke(cli, ["evaluate", "--run", str(a.path), "--run", str(b.path),
                                       "--set", "evaluate.images=validation", "--quiet"])
    assert refused.exit_code != 0 and "trained or validated on by a member" in refused.output


def test_without_re_tuning_the_members_settings_are_used_common_or_median(tmp_path, data):
    runs = [make_run(tmp_path / name, data[0], tune=False) for name in "abc"]
    for run, (threshold, min_area) in zip(runs, [(0.4, 10), (0.6, 30), (0.5, 40)], strict=True):
        run.save_tuned({"threshold": threshold, "min_area": min_area, "classifier_threshold": None})
    members = [Member(r, load_config(r.config)) for r in runs]
    tuned, how = members_postprocess(members)
    assert (tuned["threshold"], tuned["min_area"]) == (0.5, 30) and "median" in how
    tuned, how = members_postprocess(members[:1] * 2)
    assert (tuned["threshold"], tuned["min_area"]) == (0.4, 10) and "common" in how
