"""Run the stages a config names (train, predict, evaluate), in order, in one run directory."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from shiptoolkit.config import Config, load_config
from shiptoolkit.errors import ConfigError
from shiptoolkit.plugins import get_registry, load_local_plugin
from shiptoolkit.run_state import SKIPPED_FILE, RunInterrupted, mark, write_skipped
from shiptoolkit.tuning import POSTPROCESS_FILE, describe_tuned, load_tuned

STAGES = ("train", "predict", "evaluate")


def prepare_config(source: str | Path | dict | Config | None, overrides: Iterable[str] = (), *,
                   load_plugins: bool = True) -> Config:
    """Load a config after loading the local plugins it names, so their components validate.

    With `load_plugins=False` (a config from elsewhere, e.g. a received run directory) none of its
    [plugins] modules is imported, and components are not checked: those plugins' are unknown.

    Example:
        >>> cfg = prepare_config("examples/quickstart.toml", ["train.epochs=1"])  # doctest: +SKIP
    """
    overrides = list(overrides)
    if not load_plugins:
        if isinstance(source, Config):
            return load_config(source.values, overrides, base_dir=source.base_dir, check_components=False,
                               _source=source.source, _prior=source.overrides)
        return load_config(source, overrides, check_components=False)
    if isinstance(source, Config):
        load_plugins_of(source)
        return source.with_overrides(overrides) if overrides else source
    raw = load_config(source, overrides, check_components=False)  # reads [plugins] only
    load_plugins_of(raw)
    return load_config(raw.values, base_dir=raw.base_dir, _source=raw.source, _prior=raw.overrides)


def load_plugins_of(config: Config) -> list[str]:
    """Load the config's [plugins] modules (file paths relative to the config file)."""
    return [load_local_plugin(spec, base_dir=config.base_dir) for spec in config["plugins"]["modules"]]


def new_run_dir(config: Config) -> Path:
    """`<out_dir>/<name>-<timestamp>/`, created; never an existing directory."""
    root = Path(config["run"]["out_dir"]).expanduser()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = root / f"{config['run']['name']}-{stamp}"
    path, n = base, 1
    while True:
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")


def describe(config: Config) -> dict[str, Any]:
    """What a run would build: each component with its plugin and resolved parameters."""
    out: dict[str, Any] = {"stages": config["run"]["stages"]}
    for section, kind in (("sampler", "sampler"), ("backbone", "backbone"), ("loss", "loss"),
                          ("classifier", "classifier")):
        name, params = config.component(section)
        if not name:  # an optional component left off
            continue
        out[section] = {"name": name, "plugin": get_registry(kind).get(name).plugin, "params": params}
    metrics = get_registry("metric")
    out["metrics"] = {usage: [f"{m} ({metrics.get(m).plugin})" for m in config["metrics"][usage]]
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

    def summary(self) -> str:
        lines = [f"run directory: {self.run_dir}"]
        lines += [f"  {label}: {path}" for label, path in self.files.items()]
        if self.skipped:
            kinds = Counter(p.kind for p in self.skipped)
            lines.append(f"skipped {len(self.skipped)} image(s) ({', '.join(f'{n} {k}' for k, n in kinds.items())}), "
                         f"e.g. {self.skipped[0].message} All are listed in {SKIPPED_FILE}.")
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
    stages = list(stages or config["run"]["stages"])
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(f"Unknown stage(s) {unknown}. Stages: {', '.join(STAGES)}.")
    if "train" not in stages and model is None:
        raise ConfigError(f"Stages {stages} need a trained model: add 'train' or pass a model "
                          "(`shiptoolkit run CONFIG --model path/to/best.keras`).")
    ordered = [s for s in STAGES if s in stages]
    from shiptoolkit.training import TrainingFailed

    result = RunResult(run_dir=new_run_dir(config), stages=ordered)
    config.save(result.run_dir / "config.toml")
    result.files["config"] = result.run_dir / "config.toml"
    try:
        _run_stages(config, result, ordered, model, progress)
    except (RunInterrupted, TrainingFailed):
        raise  # train_state.json says so already
    except KeyboardInterrupt:
        mark(result.run_dir, "interrupted")
        raise RunInterrupted(result.run_dir) from None
    except Exception as exc:  # the run directory says why it holds only config.toml
        mark(result.run_dir, "failed", f"{type(exc).__name__}: {exc}")
        raise
    return result


def _run_stages(config: Config, result: RunResult, ordered: list[str], model, progress: bool) -> None:
    from shiptoolkit.data.airbus import Problem
    from shiptoolkit.data.source import data_splits
    from shiptoolkit.evaluation import evaluate, predict_stage
    from shiptoolkit.training import train

    model_path = Path(model) if model else None
    start = time.perf_counter()
    splits = data_splits(config, progress)  # opened and split once for every stage
    result.seconds["data"] = round(time.perf_counter() - start, 1)
    result.skipped = list(splits.problems)
    if write_skipped(result.run_dir, result.skipped):
        result.files["skipped"] = result.run_dir / SKIPPED_FILE
    if "train" in ordered:
        result.train = train(config, run_dir=result.run_dir, progress=progress, splits=splits)
        result.seconds.update(result.train.seconds)
        result.skipped += [Problem("", "unreadable_while_training", m) for m in result.train.skipped_items]
        model_path = result.train.best_model_path
        result.files.update(model=model_path, history=result.run_dir / "history.csv",
                            history_plot=result.run_dir / "history.png")
        if result.train.gate_path is not None:
            result.files.update(classifier=result.run_dir / "classifier.keras", gate=result.train.gate_path)
        if (result.run_dir / POSTPROCESS_FILE).is_file():
            result.files["postprocess"] = result.run_dir / POSTPROCESS_FILE
            result.tuned = load_tuned(result.run_dir)
    # Predicting the same images for the submission and for evaluation is one pass, not two.
    one_pass = ("predict" in ordered and "evaluate" in ordered
                and config["predict"]["images"] == config["evaluate"]["images"]
                and config["predict"]["max_images"] == config["evaluate"]["max_images"])
    start = time.perf_counter()
    if "predict" in ordered and not one_pass:
        result.predict = predict_stage(config, model_path, result.run_dir, progress=progress, splits=splits)
        result.files["submission"] = result.predict.path
    if "evaluate" in ordered:
        submission = result.run_dir / config["predict"]["out"] if one_pass else None
        result.evaluate = evaluate(config, model_path, run_dir=result.run_dir, progress=progress,
                                   submission=submission, splits=splits)
        result.files.update(metrics=result.evaluate.metrics_path, examples_plot=result.evaluate.plot_path)
        if one_pass:
            result.files["submission"] = submission
    result.seconds["predict_and_evaluate"] = round(time.perf_counter() - start, 1)
    (result.run_dir / "timings.json").write_text(json.dumps(result.seconds, indent=2))
