"""Fine-tuning: `train.init_from` and `classifier.init_from` copy weights by layer name and shape, say what
they loaded and what not, and refuse a wrong path or another architecture before anything trains."""

import json
import re

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from shiptoolkit.cli import cli
from shiptoolkit.errors import ConfigError
from shiptoolkit.models.classifiers import cnn_classifier
from shiptoolkit.models.init_weights import init_model_from, weighted_layers
from shiptoolkit.models.saving import save_model
from shiptoolkit.models.unet import unet
from shiptoolkit.rundir import RunDir
from shiptoolkit.runner import prepare_config, run
from shiptoolkit.training import stage
from shiptoolkit.training.stage import train


def tiny_unet(size=64, **params):
    model = unet((size, size, 3), **{"base_filters": 4, "depth": 2, **params})
    model.compile(optimizer="adam", loss="binary_crossentropy")  # as a run builds it: compiled
    return model


def saved_run(tmp_path, model, label="best"):
    """A folder holding `model` as the run file `label` (best.keras, classifier.keras)."""
    folder = tmp_path / f"source_{label}"
    save_model(model, getattr(RunDir(folder), label))
    return folder


def assert_same_weights(a, b, names):
    for name in names:
        for x, y in zip(a.get_layer(name).get_weights(), b.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("as_file", [False, True])
def test_a_run_directory_or_a_keras_file_loads_every_layer_by_name(tmp_path, as_file, capsys):
    source = tiny_unet()
    folder = saved_run(tmp_path, source)
    target = tiny_unet()
    value = str(RunDir(folder).best) if as_file else str(folder)
    report = init_model_from(target, value, "train.init_from", progress=True)
    names = list(weighted_layers(target))
    assert report.loaded == names and report.loaded_values == target.count_params()
    assert not (report.not_in_source or report.mismatched or report.unused)
    assert_same_weights(source, target, names)
    printed = capsys.readouterr().out
    assert f"train.init_from {RunDir(folder).best}: loaded {len(names)} of {len(names)} layers" in printed


def test_another_input_size_loads_every_layer(tmp_path):
    source = tiny_unet(64)
    target = tiny_unet(128)  # fully convolutional: no weight depends on the input size
    report = init_model_from(target, str(saved_run(tmp_path, source)), "train.init_from", progress=False)
    assert len(report.loaded) == report.layers
    assert_same_weights(source, target, report.loaded)


def test_another_depth_names_each_mismatch_with_both_shapes_and_loads_the_rest(tmp_path):
    source = tiny_unet(depth=2)
    target = tiny_unet(depth=3)
    before = target.get_layer("bottlenecka_conv").get_weights()
    report = init_model_from(target, str(saved_run(tmp_path, source)), "train.init_from", progress=False)
    text = str(report)
    assert "bottlenecka_conv (3, 3, 16, 32) here vs (3, 3, 8, 16) there" in text
    assert "not in the source: down2a_conv" in text and "shape mismatch:" in text
    assert {"down0a_conv", "down1b_conv", "mask"} <= set(report.loaded)
    assert_same_weights(source, target, ["down0a_conv", "down1b_conv", "mask"])
    for kept, now in zip(before, target.get_layer("bottlenecka_conv").get_weights(), strict=True):
        np.testing.assert_array_equal(kept, now)  # a mismatched layer keeps its own weights
    assert re.search(rf"loaded {len(report.loaded)} of {report.layers} layers \([\d,]+ of [\d,]+ weights\)", text)


def test_a_different_architecture_is_a_config_error_naming_the_key(tmp_path):
    folder = saved_run(tmp_path, cnn_classifier((32, 32, 3), base_filters=4, depth=3))
    with pytest.raises(ConfigError, match=r"train\.init_from = .*no layer of the source fits.*'cnn_classifier' there"
                                          r".*set backbone\.name"):
        init_model_from(tiny_unet(), str(folder), "train.init_from", progress=False)


def test_a_nested_model_matches_its_layers_by_their_own_names(tmp_path):
    flat = tiny_unet()
    inner = unet((64, 64, 3), base_filters=4, depth=2)
    nested = keras.Sequential([keras.Input((64, 64, 3)), inner, keras.layers.Dense(1, name="extra")])
    report = init_model_from(nested, str(saved_run(tmp_path, flat)), "train.init_from", progress=False)
    assert "unet/down0a_conv" in report.loaded and report.not_in_source == ["extra"]
    assert_same_weights(flat, inner, [n.rpartition("/")[2] for n in report.loaded])


@pytest.mark.parametrize("make, match", [
    (lambda tmp: tmp / "nowhere", r"train\.init_from = '.*nowhere': .*nowhere does not exist"),
    (lambda tmp: tmp, r"train\.init_from = .*has no best\.keras"),
    (lambda tmp: (tmp / "model.keras").write_text("no zip") and tmp / "model.keras", r"is not a \.keras model"),
])
def test_a_wrong_path_fails_before_a_run_directory_or_the_data(tmp_path, make, match, monkeypatch):
    monkeypatch.setattr(stage, "data_splits", lambda *a: pytest.fail("the data was opened"))
    value = str(make(tmp_path))
    config = prepare_config({"run": {"out_dir": str(tmp_path / "runs")}, "train": {"init_from": value}})
    with pytest.raises(ConfigError, match=match):
        train(config, progress=False)
    with pytest.raises(ConfigError, match=match):
        run(config, progress=False)
    assert not (tmp_path / "runs").exists()


def test_classifier_init_from_loads_the_runs_classifier(tmp_path):
    source = cnn_classifier((32, 32, 3), base_filters=4, depth=3)
    folder = saved_run(tmp_path, source, "classifier")
    target = cnn_classifier((64, 64, 3), base_filters=4, depth=3)  # another image_size: pooled head, same weights
    report = init_model_from(target, str(folder), "classifier.init_from", progress=False)
    assert report.loaded == list(weighted_layers(target)) and report.source == RunDir(folder).classifier
    assert_same_weights(source, target, report.loaded)
    with pytest.raises(ConfigError, match=r"classifier\.init_from = .*has no classifier\.keras"):
        init_model_from(target, str(saved_run(tmp_path, source)), "classifier.init_from", progress=False)


def test_fine_tuning_a_previous_tiny_run_end_to_end(small_ship_dataset, tmp_path, monkeypatch):
    config = prepare_config({
        "run": {"name": "pre", "out_dir": str(tmp_path / "runs"), "stages": ["train"], "seed": 1},
        "data": {"path": str(small_ship_dataset(24)), "image_size": 64, "val_fraction": 0.25},
        "sampler": {"name": "mixed", "patch_size": 32, "patches_per_epoch": 16},
        "backbone": {"name": "unet", "base_filters": 4, "depth": 2},
        "train": {"epochs": 1, "batch_size": 8, "workers": 1, "val_f2_images": 2, "schedule": "constant"},
        "tune": {"enabled": False},
        "classifier": {"name": "cnn_classifier", "base_filters": 4, "depth": 3, "image_size": 32, "epochs": 1,
                       "batch_size": 8, "steps_per_epoch": 1},
    })
    first = train(config, progress=False)
    assert first.init_from == []
    out = CliRunner().invoke(cli, ["train", str(first.run_dir / RunDir.FILES["config"]), "--quiet",
                                           "--set", f"train.init_from={first.run_dir}",
                                           "--set", f"classifier.init_from={first.run_dir}", "--set", "run.name=fine"])
    assert out.exit_code == 0, out.output
    assert re.search(r"train\.init_from .*best\.keras: loaded (\d+) of \1 layers", out.output)
    assert re.search(r"classifier\.init_from .*classifier\.keras: loaded (\d+) of \1 layers", out.output)
    fine = RunDir(next((tmp_path / "runs").glob("fine-*")))
    assert f'init_from = "{first.run_dir}"' in fine.config.read_text()  # the saved config says what was used
    assert "loaded" in fine.read_state()["init_from"] and "loaded" in json.loads(fine.gate.read_text())["init_from"]
    # --resume continues from the run's own last.keras: init_from never overrides it
    monkeypatch.setattr(stage, "init_model_from", lambda *a, **k: pytest.fail("init_from applied on resume"))
    resumed = train(None, resume=fine.path, overrides=["train.epochs=2"], progress=False)
    assert resumed.epochs_run == 1
