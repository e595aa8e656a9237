"""Keras on another backend than TensorFlow (KERAS_BACKEND=jax, what the lent GPU machine runs): the training
and prediction path imports no TensorFlow, and each TensorFlow-only feature (train.strategy "mirrored" and
"multi_worker", predict.strategy "mirrored", the exports) raises `BackendError` naming the feature, the backend
and the fix. A subprocess each: a process's Keras backend is chosen once, at import."""

import importlib.util
import os
import subprocess
import sys

import pytest

from shiptoolkit.errors import BackendError, require_tensorflow_backend

ON_JAX = """
import sys

class HideTensorFlow:  # as on the GPU machine: no TensorFlow
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, HideTensorFlow())
import keras
from shiptoolkit.errors import BackendError
from shiptoolkit.inference.export import export_run
from shiptoolkit.inference.replicas import spread
from shiptoolkit.training import multi_worker
from shiptoolkit.training.stage import train  # the training path imports on JAX

assert keras.backend.backend() == "jax"
default = multi_worker.strategy("default")
with default.scope():
    pass
assert not multi_worker.is_multi_worker(default)
with multi_worker.lost_worker_marks(None):  # nothing to catch on JAX
    pass
model = object()
assert spread(model, "default") is model
for name, call in [("train_mirrored", lambda: multi_worker.strategy("mirrored")),
                   ("train_multi_worker", lambda: multi_worker.strategy("multi_worker")),
                   ("predict_mirrored", lambda: spread(model, "mirrored")),
                   ("export", lambda: export_run("no-such-run", "onnx", "out"))]:
    try:
        call()
    except BackendError as exc:
        print(f"{name}: {exc}")
    else:
        raise AssertionError(f"{name}: no BackendError")
"""


def test_tensorflow_only_features_say_so_on_jax_and_the_rest_needs_no_tensorflow():
    if importlib.util.find_spec("jax") is None:
        if os.environ.get("SHIPTOOLKIT_REQUIRE_JAX"):
            pytest.fail("JAX is required here (SHIPTOOLKIT_REQUIRE_JAX is set) but is not installed.")
        pytest.skip("JAX is not installed (pip install -e '.[jax]'); CI installs it and runs this test.")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", ON_JAX], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    said = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert said["train_mirrored"].startswith('train.strategy = "mirrored" (tf.distribute) is built on TensorFlow, '
                                             "but Keras runs on the 'jax' backend")
    assert 'Use train.strategy = "default" (one device)' in said["train_multi_worker"]
    assert "--set predict.strategy=default" in said["predict_mirrored"]
    assert said["export"].startswith("shiptoolkit export --format onnx is built on TensorFlow")
    assert all("KERAS_BACKEND=tensorflow" in message for message in said.values())


def test_on_tensorflow_the_check_passes():
    import keras

    assert keras.backend.backend() == "tensorflow"
    assert require_tensorflow_backend("anything", "nothing") is None
    assert issubclass(BackendError, RuntimeError)
