"""Run the stages a config names (train, predict, evaluate), in order, in one run directory.

The data is opened and split once (`data_splits`) and handed to every stage.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shiptoolkit.config import Config, load_plugins_of, prepare_config  # noqa: F401  (prepare_config: public here too)
from shiptoolkit.data import image_formats
from shiptoolkit.data.source import DataSplits, check_data_config, data_splits
from shiptoolkit.errors import ConfigError, ShiptoolkitError
from shiptoolkit.inference.stage import predict_stage
from shiptoolkit.models.init_weights import check_init_from
from shiptoolkit.plugins import get_registry
from shiptoolkit.rundir import RunDir
from shiptoolkit.scoring.evaluate import evaluate
from shiptoolkit.training.cluster import Worker, this_worker
from shiptoolkit.training.stage import skipped_problems, train, training_left
from shiptoolkit.training.tuning import describe_tuned

STAGES = ("train", "predict", "evaluate")


def describe(config: Config) -> dict[str, Any]:
    """What a run would build: each component with its plugin and resolved parameters."""
    out: dict[str, Any] = {"stages": config.settings.run.stages}
    for section, kind in (("sampler", "sampler"), ("backbone", "backbone"), ("loss", "loss"),
                          ("classifier", "classifier")):
        name, params = config.component(section)
        if not name:  # an optional component left off
            continue
        out[section] = {"name": name, "plugin": get_registry(kind).get(name).plugin, "params": params}
    metrics = get_registry("metric")
    out["metrics"] = {usage: [f"{m} ({metrics.get(m).plugin})" for m in getattr(config.settings.metrics, usage)]
                      for usage in ("train", "evaluate")}
    return out


@dataclass
class RunResult:
    """What `run` produced; each stage's own result object, or None if it did not run."""

    run_dir: Path
    stages: list[str]
    train: Any = None
    predict: Any = None
    evaluate: Any = None
    files: dict[str, Path] = field(default_factory=dict)
    tuned: dict | None = None  # postprocess.json: what was chosen on validation
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each step
    skipped: list = field(default_factory=list)  # images left out (data.on_error = "skip"): also skipped.csv
    worker: Worker = field(default_factory=Worker)  # with several workers: only the chief's run_dir is kept
    conversions: str | None = None  # image files that are not 8-bit colour, converted (`data.image_formats`)

    def summary(self) -> str:
        lines = [f"run directory: {self.run_dir}"]
        lines += [f"  {label}: {path}" for label, path in self.files.items()]
        if self.train is not None:
            lines += self.train.init_from  # what train.init_from / classifier.init_from loaded
        if self.skipped:
            kinds = Counter(p.kind for p in self.skipped)
            lines.append(f"skipped {len(self.skipped)} image(s) ({', '.join(f'{n} {k}' for k, n in kinds.items())}), "
                         f"e.g. {self.skipped[0].message} All are listed in {RunDir.FILES['skipped']}.")
        if self.conversions:
            lines.append(self.conversions)
        if self.tuned:
            lines.append(describe_tuned(self.tuned))
        if self.evaluate is not None:
            lines.append(self.evaluate.table())
        if self.seconds:
            lines.append("wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items())
                         + f" (total {sum(self.seconds.values()):.0f} s)")
        return "\n".join(lines)


def run(config: Config | str | Path, stages: Sequence[str] | None = None, model: str | Path | None = None,
        overrides: Iterable[str] = (), progress: bool = True) -> RunResult:
    """Run `stages` (default: the config's run.stages) in one new run directory.

    Args:
        config: a `Config`, or a TOML path / dict to load.
        stages: subset of ("train", "predict", "evaluate"), run in that order.
        model: a `.keras` model to predict/evaluate with when "train" is not among the stages.
        overrides: `section.key=value` strings applied to the config.
        progress: show progress bars.
    """
    config = prepare_config(config, overrides)
    stages = list(stages or config.settings.run.stages)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(f"Unknown stage(s) {unknown}. Stages: {', '.join(STAGES)}.")
    if "train" not in stages and model is None:
        raise ConfigError(f"Stages {stages} need a trained model: add 'train' or pass a model "
                          "(`shiptoolkit run CONFIG --model path/to/best.keras`).")
    ordered = [s for s in STAGES if s in stages]
    if "train" in ordered:
        check_init_from(config)  # a wrong init_from path fails before the run directory and the data
    check_data_config(config, ordered)  # a missing data folder or test set too: no run directory for a config error
    worker = this_worker() if config.settings.train.strategy == "multi_worker" else Worker()
    if not worker.is_chief:
        return _train_beside_the_chief(config, ordered, worker, progress)
    run_dir = RunDir.create(config.settings.run.out_dir, config.settings.run.name)
    image_formats.conversions(reset=True)  # count this run's grey / alpha / 16-bit image files
    config.save(run_dir.config)
    result = RunResult(run_dir=run_dir.path, stages=ordered, files={"config": run_dir.config})
    with run_dir.guard():  # a failed or interrupted run says so in train_state.json
        run_dir.record_config()
        run_dir.update_state(stages=ordered, stages_done=[], model=str(Path(model).resolve()) if model else None)
        _run_stages(config, run_dir, result, ordered, model, progress)
    result.conversions = image_formats.conversions()
    return result


def resume_run(run_dir: str | Path, overrides: Iterable[str] = (), progress: bool = True,
               accept_config_changes: bool = False) -> RunResult:
    """Finish a `run` that was interrupted (Ctrl-C, SIGTERM) or died: the stages it was asked for and
    did not finish, in its own run directory; its training goes on from last.keras (as with
    `train --resume`), a finished training is not repeated.

    Args:
        run_dir: the run directory.
        overrides: `section.key=value` changes; only those a resume allows (`rundir.RESUMABLE_KEYS`).
        progress: show progress bars.
        accept_config_changes: resume even though config.toml was edited in keys that describe the model.
    """
    run_dir = RunDir(run_dir)
    if not run_dir.config.is_file():
        raise ShiptoolkitError(f"{run_dir.path} has no {run_dir.config.name}: not a run directory to resume.")
    overrides = list(overrides)
    saved = run_dir.check_resumable(overrides, accept_config_changes)  # reads only; refuses edited model keys
    config = prepare_config(run_dir.config, overrides)
    asked = saved.get("stages") or config.settings.run.stages
    todo = run_dir.stages_left(asked)
    trained_before = "train" in todo and not training_left(config, run_dir, saved)
    if trained_before:
        todo.remove("train")  # trained (and tuned) before the interrupt, which came before that was noted
    if not todo:
        raise ShiptoolkitError(f"{run_dir.path} finished every stage it was asked for ({', '.join(asked)}): "
                               "nothing to resume. Start a new run for more.")
    model = run_dir.best if "train" in asked else saved.get("model")
    result = RunResult(run_dir=run_dir.path, stages=todo, files={"config": run_dir.config})
    with run_dir.guard():
        config.save(run_dir.config)
        run_dir.record_config()
        if trained_before:
            _done(run_dir, "train")
        if "predict" in todo:  # a submission of the interrupted attempt is not this run's result
            run_dir.submission(config.settings.predict.out).unlink(missing_ok=True)
        _run_stages(config, run_dir, result, todo, model, progress, resume=overrides)
    return result


def _run_stages(config: Config, run_dir: RunDir, result: RunResult, todo: list[str], model, progress: bool,
                resume: list[str] | None = None) -> None:
    """The stages `todo` in order, in a run directory the caller guards; each one finished is noted in
    train_state.json (`stages_done`). `resume`: the overrides of a resumed run (None for a new one)."""
    start = time.perf_counter()
    splits = data_splits(config, progress)
    result.seconds["data"] = round(time.perf_counter() - start, 1)
    if "train" in todo:
        model = _train_stage(config, run_dir, result, splits, progress, resume)
        _done(run_dir, "train")
    elif resume is None:  # a new run with a given model: the images left out when the data was opened
        result.skipped = list(splits.problems)
        if run_dir.write_skipped(result.skipped):
            result.files["skipped"] = run_dir.skipped
    if model is None:
        raise ShiptoolkitError(f"{run_dir.path} records no model to predict with: start a new run.")
    start = time.perf_counter()
    _predict_and_evaluate(config, run_dir, result, todo, Path(model), splits, progress)
    result.seconds["predict_and_evaluate"] = round(time.perf_counter() - start, 1)
    run_dir.timings.write_text(json.dumps(result.seconds, indent=2))


def _done(run_dir: RunDir, stage: str) -> None:
    """Note in train_state.json that `stage` finished: `resume_run` does not repeat it."""
    done = run_dir.read_state().get("stages_done") or []
    run_dir.update_state(stages_done=[*done, stage])


def _add_skipped(run_dir: RunDir, result: RunResult, problems: list) -> None:
    """Images a predict or evaluate stage could not read: in skipped.csv and the run's summary too."""
    new = [p for p in problems if p not in result.skipped]
    if new:
        result.skipped = [*result.skipped, *new]
        result.files["skipped"] = run_dir.write_skipped(new, append=True)


def _train_beside_the_chief(config: Config, ordered: list[str], worker: Worker, progress: bool) -> RunResult:
    """A worker that is not the chief trains in step with it (in a temporary run directory) and stops
    there: the chief alone predicts, evaluates and writes the run directory."""
    trained = train(config, progress=progress) if "train" in ordered else None
    return RunResult(run_dir=trained.run_dir if trained else Path(), stages=["train"] if trained else [],
                     train=trained, seconds=trained.seconds if trained else {}, worker=worker)


def _train_stage(config: Config, run_dir: RunDir, result: RunResult, splits: DataSplits, progress: bool,
                 resume: list[str] | None = None) -> Path:
    if resume is None:
        result.train = train(config, run_dir=run_dir.path, progress=progress, splits=splits)  # writes skipped.csv
    else:  # from last.keras; config.toml was checked, and saved with the overrides, by `resume_run`
        result.train = train(None, resume=run_dir.path, overrides=resume, progress=progress, splits=splits)
    result.seconds.update(result.train.seconds)
    result.skipped = skipped_problems(splits, result.train.skipped_items)
    result.tuned = run_dir.read_tuned()
    labels = ("best", "history", "history_plot", "classifier", "gate", "postprocess", "skipped")
    result.files.update({("model" if k == "best" else k): p for k, p in run_dir.files().items() if k in labels})
    return result.train.best_model_path


def _predict_and_evaluate(config: Config, run_dir: RunDir, result: RunResult, ordered: list[str], model_path: Path,
                          splits: DataSplits, progress: bool) -> None:
    p, e = config.settings.predict, config.settings.evaluate
    # Predicting the same images for the submission and for evaluation is one pass, not two.
    one_pass = "predict" in ordered and "evaluate" in ordered and (p.images, p.max_images) == (e.images, e.max_images)
    if "predict" in ordered and not one_pass:
        result.predict = predict_stage(config, model_path, run_dir.path, progress=progress, splits=splits)
        result.files["submission"] = result.predict.path
        _add_skipped(run_dir, result, result.predict.skipped)
        _done(run_dir, "predict")
    if "evaluate" in ordered:
        submission = run_dir.submission(p.out) if one_pass else None
        result.evaluate = evaluate(config, model_path, run_dir=run_dir.path, progress=progress,
                                   submission=submission, splits=splits)
        result.files.update(metrics=result.evaluate.metrics_path, examples_plot=result.evaluate.plot_path)
        _add_skipped(run_dir, result, result.evaluate.skipped)
        if one_pass:
            result.files["submission"] = submission
            _done(run_dir, "predict")
        _done(run_dir, "evaluate")
