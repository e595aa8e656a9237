"""The training stage: components from the config, Keras `fit`, a run directory, resumable.

Run directory (`<run.out_dir>/<run.name>-<timestamp>/`, never reused):
    config.toml        the resolved config (every default written out)
    best.keras         the best model on train.monitor (never on pixel accuracy)
    last.keras         the model after the last finished epoch (with optimizer state, to resume)
    history.csv        loss and metrics per epoch (appended to on resume)
    history.png        the curves
    train_state.json   epochs completed and status: running / completed / interrupted
    classifier.keras, gate.json   with a [classifier]: the ship/no-ship gate (see `shiptoolkit.gate`)
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shiptoolkit.config import Config, load_config
from shiptoolkit.errors import ConfigError, ShiptoolkitError
from shiptoolkit.plugins import get_registry


@dataclass
class TrainResult:
    """What a training run produced."""

    run_dir: Path
    best_model_path: Path
    last_model_path: Path
    history: dict[str, list[float]]
    epochs_run: int
    config: Config
    skipped_items: list[str] = field(default_factory=list)
    gate_path: Path | None = None  # gate.json when the config has a [classifier]


def build_samplers(config: Config, train_index, val_index):
    """(train, validation or None) samplers from [sampler]; validation draws with another seed."""
    name, params = config.component("sampler")
    registry = get_registry("sampler")
    seed = config["run"]["seed"]
    train_sampler = registry.create(name, train_index, seed=seed, **params)
    val_sampler = registry.create(name, val_index, seed=seed + 1, **params) if len(val_index) else None
    return train_sampler, val_sampler


def build_model(config: Config, input_shape: tuple[int, int, int]):
    """Backbone from [backbone], compiled with [loss], metrics.train and the optimizer."""

    name, params = config.component("backbone")
    if config["train"]["seam_channel"]:
        if params.get("classes", 1) not in (1, 2):
            raise ConfigError(f"train.seam_channel needs a one-class backbone (it adds the seam channel). "
                              f"Received: backbone.classes={params['classes']}")
        params["classes"] = 2
    model = get_registry("backbone").create(name, input_shape=input_shape, **params)
    compile_model(model, config)
    return model


def compile_model(model, config: Config) -> None:
    import keras

    t = config["train"]
    loss_name, loss_params = config.component("loss")
    metrics = []
    for metric_name in config["metrics"]["train"]:
        component = get_registry("metric").create(metric_name)
        if "train" not in component.usage:
            raise ConfigError(f"metrics.train: {metric_name!r} is an evaluation-only metric; "
                              "put it in metrics.evaluate.")
        metrics.append(component.keras_metric())
    optimizer = keras.optimizers.get({"class_name": t["optimizer"], "config": {"learning_rate": t["learning_rate"]}})
    model.compile(optimizer=optimizer, loss=get_registry("loss").create(loss_name, **loss_params),
                  metrics=metrics, jit_compile=t["jit_compile"])


def distribution_strategy(name: str):
    """TensorFlow's own engine for several devices: 'default', 'mirrored' or 'multi_worker'."""
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG
    return tf.distribute.get_strategy()


@contextlib.contextmanager
def precision_policy(mixed: bool):
    import keras

    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else previous)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _write_state(run_dir: Path, **state: Any) -> None:
    (run_dir / "train_state.json").write_text(json.dumps(state, indent=2))


def _callbacks(config: Config, run_dir: Path, monitor: str, resume: bool, state: dict):
    import keras

    t = config["train"]
    mode = "min" if "loss" in monitor else "max"

    class State(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            state["epochs_completed"] = epoch + 1
            _write_state(run_dir, **state)

    callbacks = [
        keras.callbacks.ModelCheckpoint(run_dir / "best.keras", monitor=monitor, mode=mode, save_best_only=True),
        keras.callbacks.ModelCheckpoint(run_dir / "last.keras"),
        keras.callbacks.CSVLogger(run_dir / "history.csv", append=resume),
        keras.callbacks.TerminateOnNaN(),
        State(),
    ]
    if t["early_stopping_patience"]:
        callbacks.append(keras.callbacks.EarlyStopping(monitor, patience=t["early_stopping_patience"], mode=mode))
    if t["reduce_lr_patience"]:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor, factor=t["reduce_lr_factor"],
                                                           patience=t["reduce_lr_patience"], mode=mode))
    if t["tensorboard"]:
        callbacks.append(keras.callbacks.TensorBoard(run_dir / "tensorboard"))
    return callbacks


def train(config: Config, run_dir: str | Path | None = None, resume: str | Path | None = None,
          progress: bool = True, overrides: list[str] | None = None) -> TrainResult:
    """Train the model a config describes; or continue an interrupted run with `resume=RUN_DIR`.

    Args:
        config: the experiment (ignored when resuming: the run's saved config is used).
        run_dir: an existing empty run directory (default: a new one under run.out_dir).
        resume: a run directory to continue from its `last.keras`.
        progress: Keras progress bars.
        overrides: `section.key=value` changes applied to the resumed run's config
            (e.g. "train.epochs=20" to train longer).

    Example:
        >>> result = train(load_config("examples/quickstart.toml"))  # doctest: +SKIP
        >>> result.best_model_path  # doctest: +SKIP
    """
    import keras

    from shiptoolkit.data.source import train_val_indexes
    from shiptoolkit.model_io import load_model
    from shiptoolkit.pipeline import SamplerBatches
    from shiptoolkit.plots import plot_history
    from shiptoolkit.runner import load_plugins_of, new_run_dir

    initial_epoch = 0
    if resume is not None:
        run_dir = Path(resume)
        saved = json.loads((run_dir / "train_state.json").read_text()) if (run_dir / "train_state.json").is_file() \
            else None
        if saved is None or not (run_dir / "last.keras").is_file():
            raise ShiptoolkitError(f"{run_dir} has no train_state.json and last.keras: nothing to resume.")
        config = load_config(run_dir / "config.toml", overrides or [], check_components=False)
        load_plugins_of(config)
        config = load_config(config.values, _source=config.source, _prior=config.overrides)
        initial_epoch = saved["epochs_completed"]
        gate_pending = bool(config["classifier"]["name"]) and not (run_dir / "gate.json").is_file()
        if saved.get("status") == "completed" and gate_pending:  # the segmenter is done; the gate is not
            return _train_gate_only(config, run_dir, progress)
        if initial_epoch >= config["train"]["epochs"]:
            raise ShiptoolkitError(f"{run_dir} already trained {initial_epoch} of train.epochs="
                                   f"{config['train']['epochs']}; resume with --set train.epochs=N (N > "
                                   f"{initial_epoch}) to train longer.")
    else:
        run_dir = Path(run_dir) if run_dir is not None else new_run_dir(config)
        run_dir.mkdir(parents=True, exist_ok=True)
    config.save(run_dir / "config.toml")
    t = config["train"]
    keras.utils.set_random_seed(config["run"]["seed"] + initial_epoch)
    train_index, val_index = train_val_indexes(config, progress)
    seams = t["seam_channel"]
    train_index.seams = val_index.seams = seams  # masks mark seams with 2 for the second channel
    train_sampler, val_sampler = build_samplers(config, train_index, val_index)
    monitor = t["monitor"]
    if val_sampler is None and monitor.startswith("val_"):
        warnings.warn(f"No validation images (data.val_fraction=0): monitoring {monitor[4:]!r} instead of {monitor!r}.",
                      stacklevel=2)
        monitor = monitor[4:]
    from shiptoolkit.augment import build_augment

    on_error = config["data"]["on_error"]
    train_batches = SamplerBatches(train_sampler, t["batch_size"], build_augment(config["augment"]["transforms"],
                                   config["run"]["seed"]), t["steps_per_epoch"] or None, t["workers"], on_error,
                                   epoch=initial_epoch, seam_channel=seams)
    val_batches = None
    if val_sampler is not None:
        steps = t["validation_steps"] or math.ceil(len(val_sampler) / t["batch_size"])
        val_batches = SamplerBatches(val_sampler, t["batch_size"], None, steps, t["workers"], on_error,
                                     fixed_epoch=True, seam_channel=seams)
    state = {"status": "running", "epochs_completed": initial_epoch, "epochs": t["epochs"]}
    _write_state(run_dir, **state)
    strategy = distribution_strategy(t["strategy"])
    height, width = train_sampler.output_shape
    with precision_policy(t["mixed_precision"]), strategy.scope():
        if resume is not None:
            model = load_model(run_dir / "last.keras", compile=True)
        else:
            model = build_model(config, (height, width, 3))
        try:
            fit = model.fit(train_batches, validation_data=val_batches, epochs=t["epochs"], initial_epoch=initial_epoch,
                            callbacks=_callbacks(config, run_dir, monitor, resume is not None, state),
                            verbose=1 if progress else 0)
        except KeyboardInterrupt:
            _write_state(run_dir, **{**state, "status": "interrupted"})
            raise
    stopped_nan = any(not math.isfinite(v) for v in fit.history.get("loss", [0.0]))
    state["status"] = "failed_nan" if stopped_nan else "completed"
    _write_state(run_dir, **state)
    if (run_dir / "history.csv").is_file():
        plot_history(run_dir / "history.csv", run_dir / "history.png")
    best = run_dir / "best.keras"
    best = best if best.is_file() else run_dir / "last.keras"
    gate_path = None
    if config["classifier"]["name"] and not stopped_nan:
        from shiptoolkit.gate import train_gate

        gate_path = train_gate(config, run_dir, best, train_index, val_index, progress)
    return TrainResult(run_dir, best, run_dir / "last.keras", fit.history, state["epochs_completed"] - initial_epoch,
                       config, train_batches.skipped + (val_batches.skipped if val_batches else []), gate_path)


def _train_gate_only(config: Config, run_dir: Path, progress: bool) -> TrainResult:
    """Resume a run whose segmenter finished but whose gate did not."""
    from shiptoolkit.data.source import train_val_indexes
    from shiptoolkit.gate import train_gate

    best = run_dir / "best.keras" if (run_dir / "best.keras").is_file() else run_dir / "last.keras"
    train_index, val_index = train_val_indexes(config, progress)
    gate_path = train_gate(config, run_dir, best, train_index, val_index, progress)
    return TrainResult(run_dir, best, run_dir / "last.keras", {}, 0, config, gate_path=gate_path)
