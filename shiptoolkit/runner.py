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
from shiptoolkit.data.source import DataSplits, data_splits
from shiptoolkit.errors import ConfigError
from shiptoolkit.inference.stage import predict_stage
from shiptoolkit.models.init_weights import check_init_from
from shiptoolkit.plugins import get_registry
from shiptoolkit.rundir import RunDir
from shiptoolkit.scoring.evaluate import evaluate
from shiptoolkit.training.cluster import Worker, this_worker
from shiptoolkit.training.stage import skipped_problems, train
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

    def summary(self) -> str:
        lines = [f"run directory: {self.run_dir}"]
        lines += [f"  {label}: {path}" for label, path in self.files.items()]
        if self.train is not None:
            lines += self.train.init_from  # what train.init_from / classifier.init_from loaded
        if self.skipped:
            kinds = Counter(p.kind for p in self.skipped)
            lines.append(f"skipped {len(self.skipped)} image(s) ({', '.join(f'{n} {k}' for k, n in kinds.items())}), "
                         f"e.g. {self.skipped[0].message} All are listed in {RunDir.FILES['skipped']}.")
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
    worker = this_worker() if config.settings.train.strategy == "multi_worker" else Worker()
    if not worker.is_chief:
        return _train_beside_the_chief(config, ordered, worker, progress)
    run_dir = RunDir.create(config.settings.run.out_dir, config.settings.run.name)
    config.save(run_dir.config)
    result = RunResult(run_dir=run_dir.path, stages=ordered, files={"config": run_dir.config})
    with run_dir.guard():  # a failed or interrupted run says so in train_state.json
        start = time.perf_counter()
        splits = data_splits(config, progress)
        result.seconds["data"] = round(time.perf_counter() - start, 1)
        if "train" in ordered:
            model_path = _train_stage(config, run_dir, result, splits, progress)
        else:
            model_path = Path(model)
            result.skipped = list(splits.problems)
            if run_dir.write_skipped(result.skipped):
                result.files["skipped"] = run_dir.skipped
        start = time.perf_counter()
        _predict_and_evaluate(config, run_dir, result, ordered, model_path, splits, progress)
        result.seconds["predict_and_evaluate"] = round(time.perf_counter() - start, 1)
        run_dir.timings.write_text(json.dumps(result.seconds, indent=2))
    return result


def _train_beside_the_chief(config: Config, ordered: list[str], worker: Worker, progress: bool) -> RunResult:
    """A worker that is not the chief trains in step with it (in a temporary run directory) and stops
    there: the chief alone predicts, evaluates and writes the run directory."""
    trained = train(config, progress=progress) if "train" in ordered else None
    return RunResult(run_dir=trained.run_dir if trained else Path(), stages=["train"] if trained else [],
                     train=trained, seconds=trained.seconds if trained else {}, worker=worker)


def _train_stage(config: Config, run_dir: RunDir, result: RunResult, splits: DataSplits, progress: bool) -> Path:
    result.train = train(config, run_dir=run_dir.path, progress=progress, splits=splits)  # writes skipped.csv
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
    if "evaluate" in ordered:
        submission = run_dir.submission(p.out) if one_pass else None
        result.evaluate = evaluate(config, model_path, run_dir=run_dir.path, progress=progress,
                                   submission=submission, splits=splits)
        result.files.update(metrics=result.evaluate.metrics_path, examples_plot=result.evaluate.plot_path)
        if one_pass:
            result.files["submission"] = submission
