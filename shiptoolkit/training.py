"""The training stage: components from the config, Keras `fit`, a run directory, resumable.

Run directory (`<run.out_dir>/<run.name>-<timestamp>/`, never reused):
    config.toml        the resolved config (every default written out)
    best.keras         the best model on train.monitor (val_f2 by default; never a model that predicts nothing)
    last.keras         the model after the last finished epoch (with optimizer state, to resume)
    history.csv        loss and metrics per epoch (appended to on resume)
    history.png        the curves
    train_state.json   epochs completed, best value and status: running / completed / interrupted /
                       collapsed / failed_nan
    classifier.keras, gate.json   with a [classifier]: the ship/no-ship gate (see `shiptoolkit.gate`),
                       trained first so that the segmenter's validation f2 is the gated one
    postprocess.json   threshold, min_area and gate threshold chosen on validation (`shiptoolkit.tuning`)
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from shiptoolkit.config import Config, load_config
from shiptoolkit.contracts import build_component, check_sampler
from shiptoolkit.data.source import DataSplits, stratified_subset
from shiptoolkit.errors import ConfigError, ShiptoolkitError
from shiptoolkit.plugins import get_registry
from shiptoolkit.run_state import (
    RunInterrupted,
    check_model_file,
    check_resume_overrides,
    mark,
    read_state,
    write_skipped,
    write_state,
)
from shiptoolkit.tuning import POSTPROCESS_FILE


class TrainingFailed(ShiptoolkitError):
    """Training ended without a usable model (a NaN loss); the run directory says so."""


class TrainingCollapsed(TrainingFailed):
    """The model stopped predicting any ship (see `shiptoolkit.callbacks.CollapseGuard`)."""


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
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each step: classifier, segmenter, tuning


def build_samplers(config: Config, train_index, val_index):
    """(train, validation or None) samplers from [sampler]; validation draws with another seed.

    The first pairs are checked against the sampler contract (`shiptoolkit.contracts`)."""
    name, params = config.component("sampler")
    seed = config["run"]["seed"]
    train_sampler = build_component("sampler", name, train_index, seed=seed, **params)
    check_sampler(train_sampler, name, seams=train_index.seams)
    val_sampler = build_component("sampler", name, val_index, seed=seed + 1, **params) if len(val_index) else None
    return train_sampler, val_sampler


def build_model(config: Config, input_shape: tuple[int, int, int], total_steps: int = 0):
    """Backbone from [backbone], compiled with [loss], metrics.train and the optimizer."""

    name, params = config.component("backbone")
    if config["train"]["seam_channel"]:
        if params.get("classes", 1) not in (1, 2):
            raise ConfigError(f"train.seam_channel needs a one-class backbone (it adds the seam channel). "
                              f"Received: backbone.classes={params['classes']}")
        params["classes"] = 2
    model = build_component("backbone", name, input_shape=input_shape, **params)
    compile_model(model, config, total_steps)
    return model


def learning_rate(config: Config, total_steps: int):
    """train.learning_rate, or with train.schedule = "cosine" a warm-up from lr/10 then a cosine decay to lr/100.

    Why: a high constant rate from the first step is what made small U-Nets collapse to "no ship
    anywhere" (the bias of the output layer runs to the empty side before the features form).
    """
    import keras

    t = config["train"]
    if t["schedule"] != "cosine" or total_steps < 2:
        return t["learning_rate"]
    warmup = int(total_steps * t["warmup_fraction"])
    return keras.optimizers.schedules.CosineDecay(t["learning_rate"] / 10, max(1, total_steps - warmup), alpha=0.01,
                                                  warmup_target=t["learning_rate"], warmup_steps=warmup)


def compile_model(model, config: Config, total_steps: int = 0) -> None:
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
    optimizer = type(keras.optimizers.get(t["optimizer"]))(learning_rate=learning_rate(config, total_steps))
    model.compile(optimizer=optimizer, loss=build_component("loss", loss_name, **loss_params),
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


def _callbacks(config: Config, run_dir: Path, monitor: str, resume: bool, state: dict, validation_f2, guard,
               steps: int, progress: bool):
    import keras

    from shiptoolkit.callbacks import BestCheckpoint, EpochState, StepTimer, measured_only

    t = config["train"]
    mode = "min" if "loss" in monitor else "max"
    best = BestCheckpoint(run_dir / "best.keras", monitor, best=state.get("best"))
    best.best_epoch = state.get("best_epoch")

    def write(**progress):
        state.update(progress)
        write_state(run_dir, **state)

    callbacks = [c for c in (validation_f2, guard) if c is not None] + [  # they fill the logs the others read
        best,
        keras.callbacks.ModelCheckpoint(run_dir / "last.keras"),
        keras.callbacks.CSVLogger(run_dir / "history.csv", append=resume),
        keras.callbacks.TerminateOnNaN(),
        EpochState(write, best),
        StepTimer(t["epochs"] - state["epochs_completed"], steps, print if progress else lambda _: None),
    ]
    if t["early_stopping_patience"]:
        callbacks.append(measured_only(keras.callbacks.EarlyStopping(monitor, patience=t["early_stopping_patience"],
                                                                     mode=mode), monitor))
    if t["reduce_lr_patience"] and t["schedule"] == "constant":  # a schedule owns the rate
        callbacks.append(measured_only(keras.callbacks.ReduceLROnPlateau(monitor, factor=t["reduce_lr_factor"],
                                                                         patience=t["reduce_lr_patience"], mode=mode),
                                       monitor))
    if t["tensorboard"]:
        callbacks.append(keras.callbacks.TensorBoard(run_dir / "tensorboard"))
    return callbacks


def _open_run(config: Config, run_dir, resume, overrides) -> tuple[Config, Path, dict]:
    """(config, run dir, saved state) for a new run or a resumed one."""
    from shiptoolkit.runner import load_plugins_of, new_run_dir

    if resume is None:
        run_dir = Path(run_dir) if run_dir is not None else new_run_dir(config)
        run_dir.mkdir(parents=True, exist_ok=True)
        return config, run_dir, {}
    run_dir = Path(resume)
    saved = read_state(run_dir)
    if not saved or not ((run_dir / "last.keras").exists() or saved.get("epochs_completed") == 0):
        raise ShiptoolkitError(f"{run_dir} has no train_state.json and last.keras: nothing to resume.")
    check_resume_overrides(overrides or [])  # before anything in the run directory changes
    if saved.get("epochs_completed"):
        check_model_file(run_dir / "last.keras")
    config = load_config(run_dir / "config.toml", overrides or [], check_components=False)
    load_plugins_of(config)
    config = load_config(config.values, _source=config.source, _prior=config.overrides)
    tune_pending = config["tune"]["enabled"] and not (run_dir / POSTPROCESS_FILE).is_file()
    gate_pending = bool(config["classifier"]["name"]) and not (run_dir / "gate.json").is_file()
    if saved["epochs_completed"] >= config["train"]["epochs"] and not (tune_pending or gate_pending):
        raise ShiptoolkitError(f"{run_dir} already trained {saved['epochs_completed']} of train.epochs="
                               f"{config['train']['epochs']}; resume with --set train.epochs=N (N > "
                               f"{saved['epochs_completed']}) to train longer.")
    return config, run_dir, saved


def train(config: Config, run_dir: str | Path | None = None, resume: str | Path | None = None,
          progress: bool = True, overrides: list[str] | None = None, splits: DataSplits | None = None) -> TrainResult:
    """Train the model a config describes; or continue an interrupted run with `resume=RUN_DIR`.

    Steps: the [classifier] gate first (if any), then the segmenter (checkpointed on validation
    f2 of whole images, gate included), then the post-processing tuned on validation
    (`shiptoolkit.tuning`). Each finished step is skipped on resume.

    Args:
        config: the experiment (ignored when resuming: the run's saved config is used).
        run_dir: an existing empty run directory (default: a new one under run.out_dir).
        resume: a run directory to continue from its `last.keras`.
        progress: Keras progress bars.
        overrides: `section.key=value` changes applied to the resumed run's config
            (e.g. "train.epochs=20" to train longer).
        splits: the data's `DataSplits`, when the caller already opened it.

    Example:
        >>> result = train(load_config("examples/quickstart.toml"))  # doctest: +SKIP
        >>> result.best_model_path  # doctest: +SKIP
    """
    config, run_dir, saved = _open_run(config, run_dir, resume, overrides)
    config.save(run_dir / "config.toml")
    try:
        return _train(config, run_dir, saved, resume is not None, progress, splits)
    except (RunInterrupted, TrainingFailed):
        raise  # the state says so already
    except KeyboardInterrupt:
        mark(run_dir, "interrupted")
        raise RunInterrupted(run_dir) from None
    except Exception as exc:
        mark(run_dir, "failed", f"{type(exc).__name__}: {exc}")
        raise


def _train(config: Config, run_dir: Path, saved: dict, resume: bool, progress: bool,
           splits: DataSplits | None) -> TrainResult:
    from shiptoolkit.data.airbus import Problem
    from shiptoolkit.data.source import data_splits
    from shiptoolkit.gate import load_gate, train_gate

    if splits is None:
        splits = data_splits(config, progress)
    train_index, val_index = splits.train, splits.validation
    clock = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        seconds[name] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()

    gate_path = train_gate(config, run_dir, train_index, val_index, progress)
    gate = load_gate(config, run_dir) if gate_path else None
    lap("classifier")
    history: dict[str, list[float]] = {}
    skipped: list[str] = []
    state = {"status": "running", "epochs_completed": 0, **saved, "epochs": config["train"]["epochs"]}
    if state["epochs_completed"] < state["epochs"]:  # a new run, or a resumed one with epochs to go
        (run_dir / POSTPROCESS_FILE).unlink(missing_ok=True)  # tuned for a model that is about to change
        history, skipped = _fit_segmenter(config, run_dir, train_index, val_index, gate, state, resume, progress)
    lap("segmenter")
    best = run_dir / "best.keras"
    best = best if best.is_file() else run_dir / "last.keras"
    if config["tune"]["enabled"] and len(val_index) and not (run_dir / POSTPROCESS_FILE).is_file():
        _tune(config, run_dir, best, val_index, gate, progress)
    lap("tuning")
    write_skipped(run_dir, splits.problems + [Problem("", "unreadable_while_training", m) for m in skipped])
    return TrainResult(run_dir, best, run_dir / "last.keras", history,
                       state["epochs_completed"] - saved.get("epochs_completed", 0), config, skipped, gate_path,
                       seconds)


def _fit_segmenter(config: Config, run_dir: Path, train_index, val_index, gate, state: dict, resume: bool,
                   progress: bool) -> tuple[dict, list[str]]:
    import keras

    from shiptoolkit.augment import build_augment
    from shiptoolkit.callbacks import CollapseGuard, ValidationF2
    from shiptoolkit.model_io import load_model
    from shiptoolkit.pipeline import SamplerBatches
    from shiptoolkit.plots import plot_history
    from shiptoolkit.prediction import PredictSettings

    t, initial_epoch = config["train"], state["epochs_completed"]
    keras.utils.set_random_seed(config["run"]["seed"] + initial_epoch)
    seams = t["seam_channel"]
    train_index.seams = val_index.seams = seams  # masks mark seams with 2 for the second channel
    train_sampler, val_sampler = build_samplers(config, train_index, val_index)
    monitor = t["monitor"]
    if val_sampler is None and monitor.startswith("val_"):
        warnings.warn(f"No validation images (data.val_fraction=0): monitoring {monitor[4:]!r} instead of {monitor!r}.",
                      stacklevel=2)
        monitor = "loss" if monitor == "val_f2" else monitor[4:]
    on_error = config["data"]["on_error"]
    train_batches = SamplerBatches(train_sampler, t["batch_size"], build_augment(config["augment"]["transforms"],
                                   config["run"]["seed"]), t["steps_per_epoch"] or None, t["workers"], on_error,
                                   epoch=initial_epoch, seam_channel=seams)
    val_batches = validation_f2 = None
    if val_sampler is not None:
        steps = t["validation_steps"] or math.ceil(len(val_sampler) / t["batch_size"])
        val_batches = SamplerBatches(val_sampler, t["batch_size"], None, steps, t["workers"], on_error,
                                     fixed_epoch=True, seam_channel=seams)
        if monitor == "val_f2" or t["val_f2_images"]:
            scored = stratified_subset(val_index, t["val_f2_images"], config["run"]["seed"])
            validation_f2 = ValidationF2(scored, PredictSettings.from_config(config), gate,
                                         t["val_f2_every"], on_error, print if progress else None)
    guard = CollapseGuard(t["collapse_patience"]) if t["collapse_patience"] else None
    state["status"] = "running"
    write_state(run_dir, **state)
    height, width = train_sampler.output_shape
    with precision_policy(t["mixed_precision"]), distribution_strategy(t["strategy"]).scope():
        if resume and (run_dir / "last.keras").is_file():
            model = load_model(run_dir / "last.keras", compile=True)
        else:
            model = build_model(config, (height, width, 3), total_steps=len(train_batches) * t["epochs"])
        try:
            fit = model.fit(train_batches, validation_data=val_batches, epochs=t["epochs"], initial_epoch=initial_epoch,
                            callbacks=_callbacks(config, run_dir, monitor, resume, state, validation_f2, guard,
                                                 len(train_batches), progress),
                            verbose=1 if progress else 0)
        except KeyboardInterrupt:
            write_state(run_dir, **{**state, "status": "interrupted"})
            raise RunInterrupted(run_dir) from None
    if (run_dir / "history.csv").is_file():
        plot_history(run_dir / "history.csv", run_dir / "history.png")
    if not (run_dir / "best.keras").is_file() and (run_dir / "last.keras").is_file():
        warnings.warn(f"No epoch's model predicted a ship on the validation images ({monitor} never counted): "
                      "best.keras is the last epoch's model. Train longer, or check the data.", stacklevel=2)
        shutil.copyfile(run_dir / "last.keras", run_dir / "best.keras")
    if any(not math.isfinite(v) for v in fit.history.get("loss", [0.0])):
        state["status"] = "failed_nan"
    elif guard is not None and guard.collapsed:
        state["status"] = "collapsed"
    else:
        state["status"] = "completed"
    write_state(run_dir, **state)
    if state["status"] == "failed_nan":
        raise TrainingFailed(f"Training stopped at epoch {state['epochs_completed']}: the loss became NaN (a learning "
                             f"rate too high for this model? train.learning_rate={t['learning_rate']}). Nothing was "
                             f"tuned or predicted. Run: {run_dir}")
    if state["status"] == "collapsed":
        raise TrainingCollapsed(
            f"Training stopped at epoch {state['epochs_completed']}: the model predicted no ship pixel on the "
            f"validation images for {t['collapse_patience']} epochs in a row (it had collapsed to 'no ship anywhere'; "
            f"such epochs are never saved as best.keras). Try a lower train.learning_rate (now {t['learning_rate']}), "
            f"backbone.batch_norm=true, train.schedule=\"cosine\" or a higher sampler.ship_fraction. Run: {run_dir}")
    return fit.history, train_batches.skipped + (val_batches.skipped if val_batches else [])


def _tune(config: Config, run_dir: Path, model_path: Path, val_index, gate, progress: bool) -> Path:
    """Choose threshold, min_area and the gate's threshold on validation; save postprocess.json."""
    from shiptoolkit.model_io import load_model
    from shiptoolkit.prediction import PredictSettings
    from shiptoolkit.tuning import describe_tuned, save_tuned, tune_postprocess

    u = config["tune"]
    images = stratified_subset(val_index, u["max_images"], config["run"]["seed"])
    info = tune_postprocess(load_model(model_path), images, PredictSettings.from_config(config),
                            u["thresholds"], u["min_areas"], gate, config["classifier"]["tune_threshold"],
                            u["gate_floor"], progress, config["data"]["on_error"])
    if progress:
        print(describe_tuned(info))
    return save_tuned(info, run_dir)
