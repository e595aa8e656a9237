"""k-fold cross-validation: one run per fold, each fold's images its test set, and the table of them all.

`cross_validate(CONFIG, folds=5)` writes a cv folder `<run.out_dir>/<run.name>-cv-<time>/`:

    cv_config.toml      the resolved config (cv.folds, cv.seed), shared by every fold
    <name>-fold<k>-*/   fold k's run: trained on the other folds (validation carved from them by
                        data.val_fraction), tuned on that validation, scored on fold k (cv.fold = k)
    cv.json             per fold and their mean / min: f2, baseline (all-empty), f2_prior_weighted,
                        fp_rate_empty, f2_ship_images; the same pooled over the out-of-fold images
    oof.csv             every image's out-of-fold score: the one model that never saw it, tuned without it
    cv.png              each fold's f2 and prior-weighted f2 beside their baselines

A fold's test images never reach a choice (checkpoint, threshold, gate): they are its run's test
set, which `data_splits` keeps apart from training and validation. `--resume CV_DIR` runs the
folds that have no metrics.json yet, so an interrupted cross-validation loses one fold at most.
"""

from __future__ import annotations

import csv
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shiptoolkit.config import Config, load_config, prepare_config
from shiptoolkit.errors import ConfigError, ShiptoolkitError
from shiptoolkit.jsonfiles import check_json, read_json
from shiptoolkit.plots import plot_cv_folds
from shiptoolkit.rundir import RunDir
from shiptoolkit.runner import run
from shiptoolkit.scoring.competition import F2Accumulator

# cv.json's name of each figure <- metrics.json's
_active: list[Path] = []  # the cv folder being filled (for the Ctrl-C message's resume command)

FIGURES = {"f2": "f2", "baseline": "f2_all_empty_baseline", "f2_prior_weighted": "f2_prior_weighted",
           "fp_rate_empty": "false_positive_rate_empty", "f2_ship_images": "f2_ship_images"}
COLUMNS = {"f2": "f2", "baseline": "all-empty", "f2_prior_weighted": "prior-weighted f2",
           "fp_rate_empty": "FP rate empty", "f2_ship_images": "f2 ship images"}


@dataclass
class CVResult:
    """What `cross_validate` produced: the cv folder, each fold's figures and their summary."""

    cv_dir: Path
    folds: list[dict[str, Any]]
    mean: dict[str, float]
    min: dict[str, float]
    oof: dict[str, float]
    empty_prior: float
    seconds: float = 0.0
    fold_dirs: list[Path] = field(default_factory=list)

    def table(self) -> str:
        """Markdown: one row per fold, then mean and min; each f2 beside its baseline."""
        head = ["fold", "test images", *COLUMNS.values(), "prior-weighted baseline", "wall s"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

        def row(label: str, figures: dict, images: Any = "", wall: Any = "") -> str:
            cells = [_fmt(figures.get(key)) for key in COLUMNS]
            return f"| {label} | {images} | " + " | ".join(cells) + f" | {self.empty_prior:.3f} | {wall} |"

        for f in self.folds:
            lines.append(row(str(f["fold"]), f, f["images"], f"{f.get('seconds', 0):.0f}"))
        lines.append(row("mean", self.mean))
        lines.append(row("min", self.min))
        lines.append(row("out-of-fold (pooled)", self.oof, int(self.oof.get("images", 0))))
        verdict = "beats" if self.mean["f2_prior_weighted"] > self.empty_prior else "does NOT beat"
        lines.append(f"\nmean prior-weighted f2 {self.mean['f2_prior_weighted']:.4f} "
                     f"vs all-empty {self.empty_prior:.3f} "
                     f"(at {self.empty_prior:.1%} empty images): the model {verdict} predicting nothing. "
                     f"{len(self.folds)} folds in {self.seconds:.0f} s; {self.cv_dir}")
        return "\n".join(lines)


def _fmt(value: Any) -> str:
    return "" if value is None else "n/a" if isinstance(value, float) and math.isnan(value) else f"{value:.4f}"


def _cv_config(source: Config | str | Path, folds: int | None, seed: int | None, overrides: list[str]) -> Config:
    extra = [*overrides, *([f"cv.folds={folds}"] if folds is not None else []),
             *([f"cv.seed={seed}"] if seed is not None else [])]
    config = prepare_config(source, extra)
    s = config.settings
    if s.cv.fold >= 0:
        raise ConfigError(f"cv.fold={s.cv.fold} is set by `shiptoolkit cv` for each fold's run; leave it at -1.")
    if s.data.test_path:
        raise ConfigError("Cross-validation makes each fold its run's test set: set data.test_path = \"\".")
    if "evaluate" not in s.run.stages:
        raise ConfigError(f"run.stages = {s.run.stages}: cross-validation scores each fold, so it needs \"evaluate\".")
    return config.with_overrides(["data.test_fraction=0"]) if s.data.test_fraction else config


def _fold_runs(cv_dir: Path, name: str, fold: int) -> list[RunDir]:
    return [RunDir(p) for p in sorted(cv_dir.glob(f"{name}-fold{fold}-*")) if p.is_dir()]


def _finished(cv_dir: Path, name: str, fold: int) -> RunDir | None:
    return next((r for r in _fold_runs(cv_dir, name, fold) if r.metrics.is_file()), None)


def cross_validate(config: Config | str | Path | None = None, folds: int | None = None, seed: int | None = None,
                   overrides: list[str] | tuple[str, ...] = (), progress: bool = True,
                   resume: str | Path | None = None) -> CVResult:
    """Cross-validate the config: one full run per fold (train, tune on validation, score the fold).

    Args:
        config: a `Config` or a TOML path (ignored with `resume`: the cv folder's own config is used).
        folds: cv.folds (default: the config's, 5).
        seed: cv.seed, the fold assignment (default: the config's).
        overrides: `section.key=value` strings applied to the config.
        progress: progress bars and each fold's summary.
        resume: a cv folder to finish: folds without metrics.json are run (again).
    """
    start = time.perf_counter()
    if resume is not None:
        cv = RunDir(resume)
        if not cv.cv_config.is_file():
            raise ShiptoolkitError(f"{str(resume)!r} is not a cross-validation folder (no {cv.cv_config.name}).")
        config = prepare_config(load_config(cv.cv_config), list(overrides))
    else:
        config = _cv_config(config, folds, seed, list(overrides))
        cv = RunDir.create(config.settings.run.out_dir, f"{config.settings.run.name}-cv")
        config.save(cv.cv_config)
    name, k = config.settings.run.name, config.settings.cv.folds
    fold_dirs = []
    _active[:] = [cv.path]
    for fold in range(k):
        done = _finished(cv.path, name, fold)
        if done is None:
            if progress:
                print(f"cross-validation: fold {fold + 1} of {k} (cv.seed={config.settings.cv.seed})", flush=True)
            fold_config = config.with_overrides([f"cv.fold={fold}", f"run.out_dir={json.dumps(str(cv.path))}",
                                                 f"run.name={name}-fold{fold}"])
            done = RunDir(run(fold_config, progress=progress).run_dir)
        fold_dirs.append(done.path)
    return summarize(cv.path, fold_dirs, config.settings.data.empty_prior, time.perf_counter() - start)


def resume_hint() -> str | None:
    """How to finish the cross-validation in progress, for an interrupt's message."""
    return f"the cross-validation goes on with: shiptoolkit cv --resume {_active[0]}" if _active else None


# A fold's metrics.json (`shiptoolkit.scoring.evaluate`): what the summary uses.
FOLD_JSON = {"metrics": "object", "metrics.images": "count", **{f"metrics.{k}": "number" for k in FIGURES.values()},
             "per_image": "objects"}
ROW_JSON = {"ImageId": "text", "f2": "number", "true_ships": "count", "pred_ships": "count"}


def _read_fold(run: RunDir, cv_dir: Path) -> tuple[dict, float]:
    """A fold run's metrics.json and wall time (timings.json), checked."""
    fix = (f"Delete it and resume the cross-validation (`shiptoolkit cv --resume {cv_dir}`): a fold without "
           "metrics.json is run again.")
    saved = read_json(run.metrics, FOLD_JSON, fix)
    for k, row in enumerate(saved["per_image"]):
        check_json(f"{run.metrics} (per_image row {k})", row, ROW_JSON, fix)
    if not run.timings.is_file():
        return saved, float("nan")
    try:
        timings = read_json(run.timings, {}, "The fold's wall time is shown as nan.")
        wall = [v for v in timings.values() if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(wall) != len(timings):
            raise ShiptoolkitError(f"{run.timings} is damaged: its values are not all numbers of seconds. The "
                                   "fold's wall time is shown as nan.")
    except ShiptoolkitError as exc:  # only a figure of the summary: said, not fatal
        warnings.warn(str(exc), stacklevel=3)
        return saved, float("nan")
    return saved, float(sum(wall))


def summarize(cv_dir: str | Path, fold_dirs: list[Path], empty_prior: float, seconds: float = 0.0) -> CVResult:
    """cv.json, oof.csv and cv.png of a cv folder from its fold runs' metrics.json."""
    cv = RunDir(cv_dir)
    folds, pooled, rows = [], F2Accumulator(empty_prior=empty_prior), []
    for fold, fold_dir in enumerate(fold_dirs):
        saved, wall = _read_fold(RunDir(fold_dir), cv.path)
        metrics = saved["metrics"]
        folds.append({"fold": fold, "run_dir": str(fold_dir), "images": metrics["images"], "seconds": wall,
                      **{key: metrics[source] for key, source in FIGURES.items()}})
        for image in saved["per_image"]:
            rows.append({"fold": fold, **image})
            pooled.rows.append(image)
    mean = {key: float(np.mean([f[key] for f in folds])) for key in FIGURES}
    least = {key: float(np.min([f[key] for f in folds])) for key in FIGURES}
    pooled_summary = pooled.summary()  # one pass over the out-of-fold rows
    oof = {key: pooled_summary[source] for key, source in FIGURES.items()} | {"images": len(pooled.rows)}
    result = CVResult(Path(cv_dir), folds, mean, least, oof, empty_prior, seconds, list(fold_dirs))
    cv.cv.write_text(json.dumps({"folds": folds, "mean": mean, "min": least, "oof": result.oof,
                                 "empty_prior": empty_prior, "seconds": seconds}, indent=2, default=float))
    _write_oof(cv.oof, rows)
    plot_cv_folds(folds, empty_prior, cv.cv_plot)
    return result


def _write_oof(path: Path, rows: list[dict]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
