"""Several devices on one machine, on CPU: the CPU split into 2 logical devices, in a subprocess (the split
must happen before TensorFlow initialises), so CI covers `mirrored` prediction and training over 2 replicas."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from shiptoolkit.errors import ConfigError
from shiptoolkit.inference.replicas import MirroredModel, forward, replica_count, spread

TWO_DEVICES = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from shiptoolkit.inference import replicas

SHARDS = []  # per call of a MirroredModel: [(rows, device) of each replica's shard]
_distribute = replicas.MirroredModel._distribute


def recording(self, x, per_replica):
    values = _distribute(self, x, per_replica)
    SHARDS.append([(int(t.shape[0]), t.device.rpartition("/device:")[2])
                   for t in self.strategy.experimental_local_results(values)])
    return values


replicas.MirroredModel._distribute = recording
"""

PREDICT = TWO_DEVICES + """
import json
from pathlib import Path

import keras
import numpy as np
from click.testing import CliRunner

from shiptoolkit.models.unet import unet
from shiptoolkit.cli import cli
from shiptoolkit.inference.gate import Gate
from shiptoolkit.inference.prediction import predict_probabilities, whole_image_model

images_dir, work = Path(sys.argv[1]), Path(sys.argv[2])
result = {"logical_devices": len(tf.config.list_logical_devices("CPU"))}
keras.utils.set_random_seed(0)
images = np.random.default_rng(0).integers(0, 256, (5, 64, 64, 3)).astype(np.uint8)


def compare(name, model, batch_size, run):
    mirrored = replicas.spread(model, "mirrored")
    SHARDS.clear()
    got = run(mirrored, batch_size)
    result[name] = {"replicas": mirrored.replicas, "shards": list(SHARDS),
                    "max_diff": float(np.abs(got - run(model, batch_size)).max())}


segmenter = unet((32, 32, 3), base_filters=4, depth=2, dropout=0.0, batch_norm=True)
# 5 images x 9 windows of 32 px, 4 windows per replica: steps of 8, 8, 8, 8, 8 and 5 (padded to 6)
compare("windows", segmenter, 4, lambda m, b: predict_probabilities(m, images, batch_size=b, tta=True))
# whole images: 16 // 8 = 2 images per replica, steps of 4 and 1 (padded to 2)
compare("whole", whole_image_model(segmenter), 16, lambda m, b: predict_probabilities(m, images, batch_size=b))
classifier = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 3, activation="relu"),
                               keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1, activation="sigmoid")])
compare("gate", classifier, 2, lambda m, b: Gate(m, 32, 0.5, batch_size=b).ship_probability(list(images)))

# End to end: a brightness model (ships are bright) finds the rectangles; both strategies' submissions.
brightness = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(1, 3, padding="same",
                                                                             activation="sigmoid")])
brightness.set_weights([np.full((3, 3, 3, 1), 1 / 216, np.float32), np.array([-128 / 8], np.float32)])
brightness.save(work / "model.keras")
common = ["predict", "--model", str(work / "model.keras"), "--images", str(images_dir), "--set", "data.image_size=64"]
for strategy in ("default", "mirrored"):
    SHARDS.clear()
    run = CliRunner().invoke(cli, [*common, "--out", str(work / f"{strategy}.csv"),
                                   "--set", f"predict.strategy={strategy}", "--set", "predict.batch_size=8"])
    assert run.exit_code == 0, run.output
    result[f"cli_{strategy}"] = {"output": run.output, "shards": list(SHARDS)}
Path(sys.argv[3]).write_text(json.dumps(result))
"""

TRAIN = TWO_DEVICES + """
import json
from pathlib import Path

from shiptoolkit.training import stage as training
from shiptoolkit.runner import prepare_config

strategies = []
_strategy = training.distribution_strategy
training.distribution_strategy = lambda name: strategies.append(_strategy(name)) or strategies[-1]
raw = json.loads(sys.argv[1])
out = training.train(prepare_config(raw), progress=False)
Path(sys.argv[2]).write_text(json.dumps({"replicas": [s.num_replicas_in_sync for s in strategies],
                                         "history": out.history, "epochs_run": out.epochs_run,
                                         "val_f2_shards": SHARDS}))
"""


def run_on_two_devices(script: str, *args, tmp_path) -> dict:
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, "-c", script, *map(str, args), str(out)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text())


def test_mirrored_prediction_on_two_logical_devices(small_ship_dataset, tmp_path):
    dataset = small_ship_dataset(6)
    result = run_on_two_devices(PREDICT, dataset / "train_v2", tmp_path, tmp_path=tmp_path)
    assert result["logical_devices"] == 2
    for name, per_replica, steps in (("windows", 4, 4 * [8, 8, 8, 8, 8, 6]), ("whole", 2, [4, 2]),
                                     ("gate", 2, [4, 2])):
        check = result[name]
        assert check["replicas"] == 2
        assert check["max_diff"] <= 1e-5, name  # the same probabilities as on one device
        # every forward is split over both devices, each given the per-replica batch (the tail padded evenly)
        assert all([device for _, device in shards] == ["CPU:0", "CPU:1"] for shards in check["shards"]), name
        assert [sum(rows for rows, _ in shards) for shards in check["shards"]] == steps, name
        assert max(rows for shards in check["shards"] for rows, _ in shards) == per_replica
    default, mirrored = result["cli_default"], result["cli_mirrored"]
    assert not default["shards"] and mirrored["shards"]
    assert "2 replicas (CPU:0, CPU:1)" in mirrored["output"] and "replica" not in default["output"]
    # whole 64 px images, predict.batch_size=8: 1 image per replica, the 6 images in 3 steps of 2
    assert [[rows for rows, _ in shards] for shards in mirrored["shards"]] == [[1, 1]] * 3
    submission = pd.read_csv(tmp_path / "mirrored.csv")
    assert submission.equals(pd.read_csv(tmp_path / "default.csv"))
    assert submission["EncodedPixels"].notna().sum() == 3  # the three ship images, found


def test_mirrored_training_on_two_logical_devices(small_ship_dataset, tmp_path):
    raw = {
        "run": {"name": "mirrored", "out_dir": str(tmp_path / "runs"), "stages": ["train"], "seed": 1},
        "data": {"path": str(small_ship_dataset(12)), "image_size": 64, "val_fraction": 0.25},
        "sampler": {"name": "mixed", "patch_size": 32, "ship_fraction": 0.6, "patches_per_epoch": 32},
        "backbone": {"name": "unet", "base_filters": 4, "depth": 2, "dropout": 0.0},
        "train": {"epochs": 1, "batch_size": 8, "strategy": "mirrored", "workers": 1, "schedule": "constant",
                  "steps_per_epoch": 2, "validation_steps": 1},
        "tune": {"enabled": False},
        # windows: val_f2 then predicts with the training model itself (a whole-image copy is made outside
        # the strategy's scope, on one device, since multi-worker training fits outside it)
        "predict": {"whole_image": False},
    }
    result = run_on_two_devices(TRAIN, json.dumps(raw), tmp_path=tmp_path)
    assert result["replicas"] == [2] and result["epochs_run"] == 1
    assert np.isfinite(result["history"]["loss"][0])
    # val_f2 predicted the validation images' windows with the training model's 2 replicas (Keras' own
    # predict_on_batch would have returned each window twice): 4 images x 9 windows, one step of 18 + 18
    assert np.isfinite(result["history"]["val_f2"][0])
    assert result["val_f2_shards"] == [[[18, "CPU:0"], [18, "CPU:1"]]]


class _Stub:
    """Anything with `predict_on_batch` (an export's runtime): runs on one device."""

    name = "stub"

    def predict_on_batch(self, x):
        return np.asarray(x)[..., :1]


def test_default_strategy_leaves_a_model_as_it_is_and_mirrored_needs_a_keras_model():
    stub = _Stub()
    assert spread(stub, "default") is stub and replica_count(stub) == 1
    assert forward(stub, np.ones((5, 2, 2, 3)), 2).shape == (5, 2, 2, 1)
    with pytest.raises(ConfigError, match="predict.strategy=default"):
        spread(stub, "mirrored")
    with pytest.raises(ConfigError, match="'mirrored'.*Received: 'several'"):
        spread(stub, "several")
    assert not isinstance(spread(stub, "default"), MirroredModel)
