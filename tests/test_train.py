"""Training on tiny synthetic data: the loss falls, the run directory is complete, runs resume."""

import json

import numpy as np
import pandas as pd
import pytest

from shiptoolkit.data.airbus import AirbusIndex
from shiptoolkit.plugins import get_registry
from shiptoolkit.runner import prepare_config
from shiptoolkit.training.pipeline import SamplerBatches
from shiptoolkit.training.stage import train


@pytest.fixture(scope="module")
def dataset(small_ship_dataset):
    return small_ship_dataset(24)


def tiny_config(dataset, tmp_path, **extra):
    raw = {
        "run": {"name": "tiny", "out_dir": str(tmp_path / "runs"), "stages": ["train"], "seed": 1},
        "data": {"path": str(dataset), "image_size": 64, "val_fraction": 0.25},
        "sampler": {"name": "mixed", "patch_size": 32, "ship_fraction": 0.6, "patches_per_epoch": 96},
        "backbone": {"name": "unet", "base_filters": 8, "depth": 2, "dropout": 0.0},
        "loss": {"name": "bce_dice"},
        "train": {"epochs": 3, "batch_size": 8, "learning_rate": 0.01, "workers": 2, "early_stopping_patience": 0,
                  "schedule": "constant"},
    }
    for section, values in extra.items():
        raw.setdefault(section, {}).update(values)
    return prepare_config(raw)


def test_pipeline_batches_are_reproducible_and_advance(dataset):
    index = AirbusIndex.from_kaggle(dataset, shape=(64, 64))
    sampler = get_registry("sampler").create("mixed", index, patch_size=32, patches_per_epoch=20, seed=2)
    batches = SamplerBatches(sampler, batch_size=8, workers=2)
    x, y = batches[1]
    assert x.shape == (8, 32, 32, 3) and y.shape == (8, 32, 32, 1) and x.dtype == y.dtype == np.float32
    assert len(batches) == 3
    assert np.array_equal(SamplerBatches(sampler, batch_size=8, workers=1)[1][0], x)
    batches.on_epoch_end()
    assert not np.array_equal(batches[1][0], x)  # the next epoch draws new pairs


def test_tiny_training_lowers_the_loss_and_writes_the_run_dir(dataset, tmp_path):
    result = train(tiny_config(dataset, tmp_path), progress=False)
    history = result.history["loss"]
    assert history[-1] < history[0]
    files = {p.name for p in result.run_dir.iterdir()}
    assert {"config.toml", "best.keras", "last.keras", "history.csv", "history.png", "train_state.json"} <= files
    assert json.loads((result.run_dir / "train_state.json").read_text())["status"] == "completed"
    assert len(pd.read_csv(result.run_dir / "history.csv")) == 3
    assert "val_f2" in result.history  # checkpoints monitor the competition metric, not pixel accuracy


def test_resume_continues_from_the_checkpoint(dataset, tmp_path):
    first = train(tiny_config(dataset, tmp_path, train={"epochs": 1}), progress=False)
    with pytest.raises(Exception, match="already trained 1 of train.epochs=1"):
        train(None, resume=first.run_dir, progress=False)
    resumed = train(None, resume=first.run_dir, overrides=["train.epochs=2"], progress=False)
    assert resumed.run_dir == first.run_dir and resumed.epochs_run == 1
    history = pd.read_csv(first.run_dir / "history.csv")
    assert history["epoch"].tolist() == [0, 1]


def test_runs_never_overwrite(dataset, tmp_path):
    config = tiny_config(dataset, tmp_path, train={"epochs": 1})
    a = train(config, progress=False).run_dir
    b = train(config, progress=False).run_dir
    assert a != b and a.parent == b.parent


def test_mirrored_strategy_on_cpu(dataset, tmp_path):
    result = train(tiny_config(dataset, tmp_path, train={"epochs": 1, "strategy": "mirrored"}), progress=False)
    assert result.epochs_run == 1 and np.isfinite(result.history["loss"][0])


def test_nan_terminates_and_fails_loudly(dataset, tmp_path):
    from shiptoolkit.training.stage import TrainingFailed

    config = tiny_config(dataset, tmp_path, train={"epochs": 3, "learning_rate": 1e12, "optimizer": "sgd",
                                                   "collapse_patience": 0})
    with pytest.raises(TrainingFailed, match="loss became NaN"):
        train(config, progress=False)
    run_dir = next((tmp_path / "runs").iterdir())
    state = json.loads((run_dir / "train_state.json").read_text())
    assert state["status"] == "failed_nan" and not (run_dir / "postprocess.json").exists()
