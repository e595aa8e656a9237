"""Training on several machines: two real worker processes on 127.0.0.1 (CPU, tiny model and data),
and the --workers / --worker-index options of the command line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from shiptoolkit.cli import cli
from shiptoolkit.errors import ConfigError
from shiptoolkit.training.cluster import Worker, parse_workers, tf_config, this_worker

# Seconds one phase (start to finish, start to first checkpoint) may take before the test fails
# instead of hanging. Generous: on a loaded 2-core machine two TensorFlow processes start slowly.
TIMEOUT = 240

# A test-only plugin callback: each worker saves its final weights (to compare them), and can be
# slowed down at every epoch's end (to kill a worker between two epochs).
PROBE = '''
import json
import os
import time
from pathlib import Path

import shiptoolkit


@shiptoolkit.hookimpl
def register_callbacks(register):
    def probe(config, run_dir, stage="segmenter"):
        import keras
        import numpy as np

        index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
        out = Path(os.environ["PROBE_DIR"])

        class Probe(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                time.sleep(float(os.environ.get("PROBE_EPOCH_SECONDS", "0")))

            def on_train_end(self, logs=None):
                np.savez(out / f"{stage}-worker{index}.npz", *self.model.get_weights())
                (out / f"{stage}-worker{index}.run_dir").write_text(str(run_dir))

        return Probe()

    register("probe", probe)
'''


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture
def cluster(small_ship_dataset, tmp_path):
    """`cluster(*args, env=...)` starts `shiptoolkit train ARGS` as worker 0 and worker 1 of a new
    two-worker cluster and returns both processes; each has its own TMPDIR (tmp_path/tmp<i>)."""
    dataset = small_ship_dataset(24)
    (tmp_path / "probe.py").write_text(PROBE)
    (tmp_path / "probe").mkdir()
    (tmp_path / "tiny.toml").write_text(f"""
[run]
name = "mw"
out_dir = "{tmp_path / 'runs'}"
seed = 1
[data]
path = "{dataset}"
image_size = 64
val_fraction = 0.25
[sampler]
name = "mixed"
patch_size = 32
ship_fraction = 0.6
patches_per_epoch = 48
[backbone]
name = "unet"
base_filters = 4
depth = 2
[train]
epochs = 2
batch_size = 8
learning_rate = 0.01
workers = 1
schedule = "constant"
early_stopping_patience = 0
collapse_patience = 0
val_f2_images = 4
callbacks = ["probe"]
[tune]
thresholds = [0.5]
min_areas = [0]
""")
    started: list[subprocess.Popen] = []

    def start(*args: str, env: dict | None = None) -> list[subprocess.Popen]:
        workers = ",".join(f"127.0.0.1:{port}" for port in free_ports(2))
        procs = []
        for index in range(2):
            (tmp_path / f"tmp{index}").mkdir(exist_ok=True)
            environ = {**os.environ, "PROBE_DIR": str(tmp_path / "probe"), "TMPDIR": str(tmp_path / f"tmp{index}"),
                       "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
            environ.pop("TF_CONFIG", None)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "shiptoolkit", "--plugin", str(tmp_path / "probe.py"), "train", *args,
                 "--workers", workers, "--worker-index", str(index), "--quiet"],
                cwd=tmp_path, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        started.extend(procs)
        return procs

    yield start
    for proc in started:  # a failed test leaves no worker behind
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def finish(proc: subprocess.Popen, deadline: float) -> tuple[int, str]:
    try:
        output, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        pytest.fail(f"a worker hung past {TIMEOUT} s:\n{output[-3000:]}")
    return proc.returncode, output


def finish_all(procs: list[subprocess.Popen]) -> list[str]:
    deadline = time.monotonic() + TIMEOUT
    results = [finish(proc, deadline) for proc in procs]
    for index, (code, output) in enumerate(results):
        assert code == 0, f"worker {index} failed:\n{output[-3000:]}"
    return [output for _, output in results]


def probe_weights(tmp_path: Path, index: int) -> list[np.ndarray]:
    with np.load(tmp_path / "probe" / f"segmenter-worker{index}.npz") as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def the_run(tmp_path: Path) -> Path:
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1, f"one run directory expected (the chief's), found {runs}"
    return runs[0]


def test_two_workers_train_identical_weights_and_only_the_chief_writes(cluster, tmp_path):
    outputs = finish_all(cluster(str(tmp_path / "tiny.toml")))
    run = the_run(tmp_path)
    assert {"config.toml", "best.keras", "last.keras", "history.csv", "history.png", "train_state.json",
            "postprocess.json"} <= {p.name for p in run.iterdir()}
    state = json.loads((run / "train_state.json").read_text())
    assert state["status"] == "completed" and state["epochs_completed"] == 2
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == [0, 1]

    chief, other = probe_weights(tmp_path, 0), probe_weights(tmp_path, 1)
    assert len(chief) == len(other) > 0
    assert all(np.array_equal(a, b) for a, b in zip(chief, other, strict=True))  # batch-norm statistics included
    import keras

    saved = keras.models.load_model(run / "last.keras", compile=False).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(saved, chief, strict=True))

    # Worker 1 trained in a temporary run directory under its TMPDIR, deleted when it finished.
    assert (tmp_path / "probe" / "segmenter-worker0.run_dir").read_text() == str(run)
    assert (tmp_path / "probe" / "segmenter-worker1.run_dir").read_text().startswith(str(tmp_path / "tmp1"))
    assert list((tmp_path / "tmp1").iterdir()) == []
    assert "worker 1 of 2 (not the chief" in outputs[1] and f"run directory: {run}" in outputs[0]


def test_a_killed_worker_fails_the_run_clearly_and_both_resume_it(cluster, tmp_path):
    quick = ["--set", "tune.enabled=false", "--set", "train.val_f2_images=0", "--set", "train.monitor=val_loss"]
    chief, other = cluster(str(tmp_path / "tiny.toml"), *quick, env={"PROBE_EPOCH_SECONDS": "2"})
    deadline = time.monotonic() + TIMEOUT
    while not list((tmp_path / "runs").glob("*/last.keras")):  # the first epoch's checkpoint
        assert time.monotonic() < deadline and chief.poll() is None, "the first epoch never finished"
        time.sleep(0.2)
    other.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    code, output = finish(chief, killed + TIMEOUT)
    assert code == 1 and "a worker of the cluster died or stopped answering" in output, output[-3000:]
    assert time.monotonic() - killed < 60  # TensorFlow's heartbeat notices a dead worker in about ten seconds
    run = the_run(tmp_path)
    state = json.loads((run / "train_state.json").read_text())
    assert state["status"] == "failed" and "worker was lost" in state["reason"]
    assert state["epochs_completed"] == 1

    finish_all(cluster("--resume", str(run)))
    state = json.loads((run / "train_state.json").read_text())
    assert state["status"] == "completed" and state["epochs_completed"] == 2
    assert pd.read_csv(run / "history.csv")["epoch"].tolist() == [0, 1]  # the history goes on
    assert all(np.array_equal(a, b) for a, b in zip(probe_weights(tmp_path, 0), probe_weights(tmp_path, 1),
                                                     strict=True))
    assert the_run(tmp_path) == run


# -- the options, without a cluster -----------------------------------------------------------------

def test_workers_become_tf_config_and_this_worker_reads_it():
    workers = parse_workers("node1:12345, 10.0.0.2:2222")
    spec = tf_config(workers, 1)
    assert json.loads(spec) == {"cluster": {"worker": ["node1:12345", "10.0.0.2:2222"]},
                                "task": {"type": "worker", "index": 1}}
    assert this_worker({"TF_CONFIG": spec}) == Worker(1, 2, False)
    assert this_worker({"TF_CONFIG": tf_config(workers, 0)}) == Worker(0, 2, True)
    assert this_worker({}) == Worker(0, 1, True)
    with_chief = {"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]}, "task": {"type": "worker", "index": 0}}
    assert this_worker({"TF_CONFIG": json.dumps(with_chief)}) == Worker(1, 3, False)  # the chief job is the chief
    with pytest.raises(ConfigError, match="TF_CONFIG is not a TensorFlow cluster spec"):
        this_worker({"TF_CONFIG": "{not json"})


@pytest.mark.parametrize("text", ["node1", "node1:", "node1:0", "node1:99999", "node1:1,,node2:1", "a b:1"])
def test_malformed_workers_are_refused(text):
    with pytest.raises(ConfigError, match="is not host:port"):
        parse_workers(text)


def test_cli_checks_the_worker_options(monkeypatch, tmp_path):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    config = tmp_path / "x.toml"
    config.write_text("")
    runner = CliRunner()
    for args, message in [
        (["--worker-index", "0"], "--worker-index needs --workers"),
        (["--workers", "a:1,b:2"], "--workers needs --worker-index"),
        (["--workers", "a:1,b:2", "--worker-index", "2"], "--worker-index 2 is out of range"),
        (["--workers", "a:1,b", "--worker-index", "0"], "'b' is not host:port"),
        (["--workers", "a:1,a:1", "--worker-index", "0"], "names a:1 more than once"),
    ]:
        for command in ("train", "run"):
            result = runner.invoke(cli, [command, str(config), *args])
            assert result.exit_code == 2 and message in result.output, (command, args, result.output)
    assert "TF_CONFIG" not in os.environ  # nothing exported for a refused command


def test_cli_workers_set_tf_config_and_the_strategy(monkeypatch, tmp_path):
    import shiptoolkit.training.stage

    seen = {}

    def fake_train(config, resume=None, overrides=(), progress=True, **_):
        seen.update(tf_config=os.environ["TF_CONFIG"], overrides=list(overrides),
                    strategy=config.settings.train.strategy if config else None)
        raise click.ClickException("stopped before training")

    monkeypatch.setattr(shiptoolkit.training.stage, "train", fake_train)
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["old:1"]}, "task": {"type": "worker", "index": 0}}')
    config = tmp_path / "x.toml"
    config.write_text("")
    result = CliRunner().invoke(cli, ["train", str(config), "--workers", "a:1,b:2", "--worker-index", "1"])
    assert "stopped before training" in result.output
    assert "--workers replaces the TF_CONFIG set in the environment" in result.output
    assert json.loads(seen["tf_config"])["task"] == {"type": "worker", "index": 1}
    assert seen["strategy"] == "multi_worker" and "train.strategy=multi_worker" in seen["overrides"]

    # Without --workers, a TF_CONFIG from the launcher is left as it is.
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["old:1"]}, "task": {"type": "worker", "index": 0}}')
    CliRunner().invoke(cli, ["train", str(config), "--set", "train.strategy=multi_worker"])
    assert json.loads(seen["tf_config"])["cluster"] == {"worker": ["old:1"]}
