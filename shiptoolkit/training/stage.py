"""The training stage, in small steps: open (or resume) the run, train the gate's classifier, fit the
segmenter, tune the post-processing. The run directory's files are `shiptoolkit.rundir`'s.

The classifier gate trains first so that the segmenter's validation f2 (which picks best.keras)
is the gated one; the post-processing is then tuned on the same validation images.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import keras

from shiptoolkit.config import Config, as_config, load_config, load_plugins_of
from shiptoolkit.data.airbus import Problem
from shiptoolkit.data.source import DataSplits, check_data_config, data_splits, stratified_subset
from shiptoolkit.errors import ShiptoolkitError
from shiptoolkit.inference.gate import Gate, load_gate
from shiptoolkit.inference.prediction import PredictSettings
from shiptoolkit.models.init_weights import check_init_from, init_model_from
from shiptoolkit.models.saving import load_model
from shiptoolkit.plots import plot_history
from shiptoolkit.plugins.contracts import build_callbacks
from shiptoolkit.rundir import RunDir, RunFailed
from shiptoolkit.training import multi_worker
from shiptoolkit.training.augment import build_augment
from shiptoolkit.training.callbacks import (
    BestCheckpoint,
    CollapseGuard,
    EpochState,
    StepTimer,
    ValidationF2,
    fit_callbacks,
    measured_only,
)
from shiptoolkit.training.cluster import Worker, this_worker
from shiptoolkit.training.gate import train_gate
from shiptoolkit.training.model_setup import build_model, build_samplers, precision_policy
from shiptoolkit.training.pipeline import SamplerBatches
from shiptoolkit.training.tuning import describe_tuned, tune_postprocess


class TrainingFailed(RunFailed):
    """Training ended without a usable model (a NaN loss); the run directory says so."""


class TrainingCollapsed(TrainingFailed):
    """The model stopped predicting any ship (see `shiptoolkit.training.callbacks.CollapseGuard`)."""


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
    worker: Worker = field(default_factory=Worker)  # with several workers, only the chief's run_dir is kept
    init_from: list[str] = field(default_factory=list)  # what classifier.init_from / train.init_from loaded


def distribution_strategy(name: str):
    """TensorFlow's own engine for several devices: 'default', 'mirrored' or 'multi_worker'
    (`shiptoolkit.training.multi_worker`: reads TF_CONFIG, one per process)."""
    return multi_worker.strategy(name)


def open_run(config: Config | None, run_dir: str | Path | None = None, resume: str | Path | None = None,
             overrides: list[str] | None = None, accept_config_changes: bool = False) -> tuple[Config, RunDir, dict]:
    """(config, run directory, saved state) for a new run or a resumed one.

    A resume is checked before anything in its directory changes: the overrides may only steer
    how training goes on, last.keras must be readable, and there must be something left to do."""
    if resume is None:
        run = RunDir(run_dir) if run_dir is not None else RunDir.create(config.settings.run.out_dir,
                                                                         config.settings.run.name)
        run.path.mkdir(parents=True, exist_ok=True)
        return config, run, {}
    run = RunDir(resume)
    saved = run.check_resumable(overrides or [], accept_config_changes)  # reads only: every worker calls it
    if saved.get("stages") and "train" not in saved["stages"]:
        raise ShiptoolkitError(f"{run.path} ran {', '.join(saved['stages'])} with a given model: it has nothing to "
                               f"train. Finish its stages with `shiptoolkit run --resume {run.path}`.")
    config = load_config(run.config, overrides or [], check_components=False)
    load_plugins_of(config)
    config = load_config(config.values, _source=config.source, _prior=config.overrides)
    epochs = config.settings.train.epochs
    if not training_left(config, run, saved):
        left = [stage for stage in run.stages_left() if stage != "train"]
        then = f" Its stages left ({', '.join(left)}) go on with `shiptoolkit run --resume {run.path}`." if left else ""
        raise ShiptoolkitError(f"{run.path} already trained {saved['epochs_completed']} of train.epochs={epochs}; "
                               f"resume with --set train.epochs=N (N > {saved['epochs_completed']}) to train longer."
                               + then)
    return config, run, saved


def training_left(config: Config, run: RunDir, saved: dict) -> bool:
    """Whether a run has training left: epochs, its classifier gate, or the tuning."""
    tune_pending = config.settings.tune.enabled and not run.postprocess.is_file()
    gate_pending = bool(config.settings.classifier.name) and not run.gate.is_file()
    return saved.get("epochs_completed", 0) < config.settings.train.epochs or tune_pending or gate_pending


def train(config: Config | str | Path | dict | None,
          run_dir: str | Path | None = None, resume: str | Path | None = None,
          progress: bool = True, overrides: list[str] | None = None, splits: DataSplits | None = None,
          accept_config_changes: bool = False) -> TrainResult:
    """Train the model a config describes; or continue an interrupted run with `resume=RUN_DIR`.

    Steps: the [classifier] gate first (if any), then the segmenter (checkpointed on validation
    f2 of whole images, gate included), then the post-processing tuned on validation
    (`shiptoolkit.training.tuning`). Each finished step is skipped on resume.

    Args:
        config: the experiment: a `Config`, a TOML path or a dict, as `run` takes it (ignored when
            resuming: the run's saved config is used).
        run_dir: an existing empty run directory (default: a new one under run.out_dir).
        resume: a run directory to continue from its `last.keras`.
        progress: Keras progress bars.
        overrides: `section.key=value` changes applied to the resumed run's config
            (e.g. "train.epochs=20" to train longer).
        splits: the data's `DataSplits`, when the caller already opened it.
        accept_config_changes: resume even though the run's config.toml was edited in keys that
            describe the model (refused otherwise, naming them).

    Example:
        >>> result = train(load_config("examples/quickstart.toml"))  # doctest: +SKIP
        >>> result.best_model_path  # doctest: +SKIP
    """
    if resume is None:  # a path or a dict, as run() takes it; None or a number is named
        config = as_config(config, "train")
    # First: a multi-worker strategy must be created before any other TensorFlow operation.
    distribution = distribution_strategy(_strategy_name(config, resume, overrides, accept_config_changes))
    worker = this_worker() if multi_worker.is_multi_worker(distribution) else Worker()
    if resume is None:  # a wrong init_from fails now: before a run directory, the data or the gate
        check_init_from(config)
        if splits is None:  # a data.path that is no folder too (splits given: the data is open already)
            check_data_config(config)
    with _worker_run(config, run_dir, resume, overrides, worker, accept_config_changes) as (config, run, saved):
        with run.guard(), multi_worker.lost_worker_marks(run):  # train_state.json says how a run ended early
            config.save(run.config)  # inside: a resume refused (the run in use) changes nothing
            run.record_config()
            return _train_steps(config, run, saved, splits, distribution, worker, resume is not None, progress)


def _train_steps(config: Config, run: RunDir, saved: dict, splits: DataSplits | None, distribution, worker: Worker,
                 resume: bool, progress: bool) -> TrainResult:
    splits = splits or data_splits(config, progress)
    clock = _Clock()
    gate_path = train_gate(config, run.path, splits.train, splits.validation, progress, distribution)
    gate = load_gate(config, run.path) if gate_path else None
    clock.lap("classifier")
    state = {"status": "running", "epochs_completed": 0, **saved, "epochs": config.settings.train.epochs}
    history: dict[str, list[float]] = {}
    skipped: list[str] = []
    if state["epochs_completed"] < state["epochs"]:  # a new run, or a resumed one with epochs to go
        run.postprocess.unlink(missing_ok=True)  # tuned for a model that is about to change
        history, skipped = _fit_segmenter(config, run, splits, gate, state, resume, progress, distribution, worker)
    clock.lap("segmenter")
    best = run.best if run.best.is_file() else run.last
    if worker.is_chief:  # tuning and the lists of skipped images: the chief's run directory only
        if config.settings.tune.enabled and len(splits.validation) and not run.postprocess.is_file():
            _tune(config, run, best, splits.validation, gate, progress)
        run.write_skipped(skipped_problems(splits, skipped))
    if run.history.is_file() and not run.history_plot.is_file():  # a resume after the fit (killed while tuning)
        plot_history(run.history, run.history_plot)
    clock.lap("tuning")
    loaded = [r for r in (gate.info.get("init_from") if gate else None, state.get("init_from")) if r]
    return TrainResult(run.path, best, run.last, history, state["epochs_completed"] - saved.get("epochs_completed", 0),
                       config, skipped, gate_path, clock.seconds, worker, loaded)


@contextlib.contextmanager
def _worker_run(config: Config | None, run_dir, resume, overrides, worker: Worker, accept: bool = False):
    """(config, run directory, saved state) for this worker: the chief opens the real run, any other
    worker a temporary copy deleted at the end (`shiptoolkit.training.multi_worker.scratch_run`)."""
    if worker.is_chief:
        yield open_run(config, run_dir, resume, overrides, accept)
        return
    with multi_worker.scratch_run(worker.index, resume) as scratch:
        config, _, saved = open_run(config, scratch if resume is None else None, resume, overrides, accept)
        yield config, RunDir(scratch), saved


def _strategy_name(config: Config | None, resume, overrides: list[str] | None, accept: bool = False) -> str:
    if resume is None:
        return config.settings.train.strategy
    run = RunDir(resume)
    run.check_resumable(overrides or [], accept)  # before its config is read: a clear message for a wrong folder
    return load_config(run.config, overrides or [], check_components=False).settings.train.strategy


def skipped_problems(splits: DataSplits, unreadable: list[str]) -> list[Problem]:
    """Every image a training run left out: those skipped when the data was opened, then those
    found unreadable while training (skipped.csv and the run's summary)."""
    return list(splits.problems) + [Problem("", "unreadable_while_training", m) for m in unreadable]


class _Clock:
    """Wall time of each step, for timings.json."""

    def __init__(self) -> None:
        self.start, self.seconds = time.perf_counter(), {}

    def lap(self, name: str) -> None:
        self.seconds[name] = round(time.perf_counter() - self.start, 1)
        self.start = time.perf_counter()


def _segmenter_batches(config: Config, splits: DataSplits, initial_epoch: int):
    """(train batches, validation batches or None) of the [sampler]'s pairs; training ones augmented."""
    s = config.settings
    t = s.train
    splits.train.seams = splits.validation.seams = t.seam_channel  # masks mark seams with 2 for the second channel
    train_sampler, val_sampler = build_samplers(config, splits.train, splits.validation)
    train_batches = SamplerBatches(train_sampler, t.batch_size, build_augment(s.augment.transforms, s.run.seed),
                                   steps=t.steps_per_epoch or None, workers=t.workers, on_error=s.data.on_error,
                                   epoch=initial_epoch, seam_channel=t.seam_channel)
    if val_sampler is None:
        return train_batches, None
    val_batches = SamplerBatches(val_sampler, t.batch_size, None,
                                 steps=t.validation_steps or math.ceil(len(val_sampler) / t.batch_size),
                                 workers=t.workers, on_error=s.data.on_error, fixed_epoch=True,
                                 seam_channel=t.seam_channel)
    return train_batches, val_batches


def _monitor(config: Config, has_validation: bool) -> str:
    monitor = config.settings.train.monitor
    if not has_validation and monitor.startswith("val_"):
        warnings.warn(f"No validation images (data.val_fraction=0): monitoring {monitor[4:]!r} instead of {monitor!r}.",
                      stacklevel=3)
        return "loss" if monitor == "val_f2" else monitor[4:]
    return monitor


def _segmenter_callbacks(config: Config, run: RunDir, monitor: str, resume: bool, state: dict, extras: list,
                         steps: int, progress: bool) -> list:
    """The shared `fit_callbacks` plus the segmenter's own: val_f2 and the collapse guard first (they
    fill the logs the others read), last.keras, the resume state, the step timer, LR reduction; then
    the plugins' callbacks that train.callbacks names (`build_callbacks`)."""
    t = config.settings.train
    mode = "min" if "loss" in monitor else "max"
    best = BestCheckpoint(run.best, monitor, best=state.get("best"))
    best.best_epoch = state.get("best_epoch")

    def write(**progress_made):
        state.update(progress_made)
        run.write_state(**state)

    callbacks = extras + fit_callbacks(best, run.history, monitor, mode, t.early_stopping_patience, append=resume)
    callbacks += [keras.callbacks.ModelCheckpoint(run.last), EpochState(write, best),
                  StepTimer(t.epochs - state["epochs_completed"], steps, print if progress else lambda _: None)]
    if t.reduce_lr_patience and t.schedule == "constant":  # a schedule owns the rate
        callbacks.append(measured_only(keras.callbacks.ReduceLROnPlateau(
            monitor, factor=t.reduce_lr_factor, patience=t.reduce_lr_patience, mode=mode), monitor))
    if t.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(run.tensorboard))
    return callbacks + build_callbacks(config, run.path, "segmenter")


def _worker_extras(config: Config, splits: DataSplits, gate: Gate | None, monitor: str, has_validation: bool,
                   progress: bool, distribution, worker: Worker) -> tuple[list, CollapseGuard | None]:
    """The callbacks that fill the epoch's logs, in order: with several workers first the averaging
    of batch-norm statistics, then val_f2 (scored by the chief, shared), then the collapse guard."""
    s = config.settings
    t = s.train
    several = multi_worker.is_multi_worker(distribution)
    extras: list = [multi_worker.AverageAcrossWorkers(distribution)] if several else []
    if has_validation and (monitor == "val_f2" or t.val_f2_images):
        scored = stratified_subset(splits.validation, t.val_f2_images, s.run.seed)
        share = None
        if several:
            def share(values):
                return multi_worker.share_from_chief(distribution, values, worker.is_chief)
        extras.append(ValidationF2(scored, PredictSettings.from_config(config), gate, t.val_f2_every,
                                   s.data.on_error, print if progress else None, share, worker.is_chief))
    guard = CollapseGuard(t.collapse_patience) if t.collapse_patience else None
    return extras + ([guard] if guard else []), guard


def _fit_segmenter(config: Config, run: RunDir, splits: DataSplits, gate: Gate | None, state: dict, resume: bool,
                   progress: bool, distribution, worker: Worker) -> tuple[dict, list[str]]:
    s = config.settings
    t, initial_epoch = s.train, state["epochs_completed"]
    keras.utils.set_random_seed(s.run.seed + initial_epoch)
    train_batches, val_batches = _segmenter_batches(config, splits, initial_epoch)
    monitor = _monitor(config, val_batches is not None)
    extras, guard = _worker_extras(config, splits, gate, monitor, val_batches is not None, progress, distribution,
                                   worker)
    state["status"] = "running"
    run.write_state(**state)
    height, width = train_batches.sampler.output_shape
    with precision_policy(t.mixed_precision):
        with distribution.scope():  # the model's variables; fit runs on the model's strategy outside it, so that
            # the callbacks' own models (val_f2's whole-image copy) are plain ones
            fresh = not (resume and run.last.is_file())  # on resume, last.keras: init_from never overrides it
            model = (build_model(config, (height, width, 3), total_steps=len(train_batches) * t.epochs) if fresh
                     else load_model(run.last, compile=True))
        if fresh and t.init_from:  # outside the scope: the source's variables are plain ones
            state["init_from"] = str(init_model_from(model, t.init_from, "train.init_from", progress))
        try:
            fit = model.fit(train_batches, validation_data=val_batches, epochs=t.epochs, initial_epoch=initial_epoch,
                            callbacks=_segmenter_callbacks(config, run, monitor, resume, state, extras,
                                                           len(train_batches), progress),
                            verbose=1 if progress else 0)
        except KeyboardInterrupt:
            run.write_state(**{**state, "status": "interrupted"})
            raise
    _finish(config, run, state, fit.history, guard, monitor)
    return fit.history, train_batches.skipped + (val_batches.skipped if val_batches else [])


def _finish(config: Config, run: RunDir, state: dict, history: dict, guard: CollapseGuard | None,
            monitor: str) -> None:
    """Plot the history, make sure best.keras exists, and record (and raise) how training ended."""
    t = config.settings.train
    if run.history.is_file():
        plot_history(run.history, run.history_plot)
    if not run.best.is_file() and run.last.is_file():
        warnings.warn(f"No epoch's model predicted a ship on the validation images ({monitor} never counted): "
                      "best.keras is the last epoch's model. Train longer, or check the data.", stacklevel=3)
        shutil.copyfile(run.last, run.best)
    if any(not math.isfinite(v) for v in history.get("loss", [0.0])):
        state["status"] = "failed_nan"
    elif guard is not None and guard.collapsed:
        state["status"] = "collapsed"
    else:
        state["status"] = "completed"
    run.write_state(**state)
    if state["status"] == "failed_nan":
        raise TrainingFailed(f"Training stopped at epoch {state['epochs_completed']}: the loss became NaN (a learning "
                             f"rate too high for this model? train.learning_rate={t.learning_rate}). Nothing was "
                             f"tuned or predicted. Run: {run.path}")
    if state["status"] == "collapsed":
        raise TrainingCollapsed(
            f"Training stopped at epoch {state['epochs_completed']}: the model predicted no ship pixel on the "
            f"validation images for {t.collapse_patience} epochs in a row (it had collapsed to 'no ship anywhere'; "
            f"such epochs are never saved as best.keras). Try a lower train.learning_rate (now {t.learning_rate}), "
            f"backbone.batch_norm=true, train.schedule=\"cosine\" or a higher sampler.ship_fraction. Run: {run.path}")


def _tune(config: Config, run: RunDir, model_path: Path, val_index, gate: Gate | None, progress: bool) -> Path:
    """Choose threshold, min_area and the gate's threshold on validation; save postprocess.json."""
    s = config.settings
    images = stratified_subset(val_index, s.tune.max_images, s.run.seed)
    info = tune_postprocess(load_model(model_path), images, PredictSettings.from_config(config),
                            s.tune.thresholds, s.tune.min_areas, gate, s.classifier.tune_threshold,
                            s.tune.gate_floor, progress, s.data.on_error, s.tune.split_depths, s.tune.windows,
                            s.data.empty_prior if s.tune.objective == "f2_prior_weighted" else None,
                            s.tune.max_ships)
    if progress:
        print(describe_tuned(info))
    return run.save_tuned(info)
