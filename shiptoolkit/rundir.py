"""The run directory: every file name of a run, creating it safely, its state, resume checks, what it holds.

    config.toml        the resolved config (every default written out)
    best.keras         the best model on train.monitor (never a model that predicts nothing)
    last.keras         the model after the last finished epoch (with optimizer state, to resume)
    history.csv/.png   loss and metrics per epoch, and their curves
    train_state.json   epochs completed, best value, status: running, completed, interrupted
                       (Ctrl-C; `--resume` continues), collapsed, failed_nan, failed (+ `reason`)
    classifier.keras, classifier_history.csv/.png, gate.json   the ship/no-ship gate, if any
    postprocess.json   threshold, min_area and gate threshold chosen on validation
    timings.json, submission.csv, metrics.json, examples.png, skipped.csv, tensorboard/

A run directory is never reused, and never left holding only config.toml without saying why.
"""

from __future__ import annotations

import contextlib
import csv
import json
import zipfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from shiptoolkit.errors import ConfigError, ShiptoolkitError

# Keys `--resume --set` may change: they steer how long and how fast training goes on, or what
# happens after it. Everything else (the model, its data, its loss) is what the saved weights
# were trained as; changing it on resume would make config.toml describe another model.
RESUMABLE_KEYS = {
    "train": {"epochs", "steps_per_epoch", "validation_steps", "learning_rate", "early_stopping_patience",
              "reduce_lr_patience", "reduce_lr_factor", "val_f2_every", "val_f2_images", "collapse_patience",
              "tensorboard", "workers", "batch_size", "jit_compile", "callbacks", "strategy"},
    "predict": "*", "evaluate": "*", "tune": "*", "run": {"stages"},
}


class RunFailed(ShiptoolkitError):
    """A run ended without a usable result, and its train_state.json already says why."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the run directory is marked `interrupted` and can be resumed."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(str(run_dir))
        self.run_dir = Path(run_dir)

    @property
    def hint(self) -> str:
        return (f"interrupted: the run directory is {self.run_dir}\n"
                f"continue with: shiptoolkit train --resume {self.run_dir}")


def check_resume_overrides(overrides: Iterable[str]) -> None:
    """Refuse `--set` keys that would change the resumed model, its data or its loss."""
    for item in overrides:
        key = item.partition("=")[0].strip()
        section, _, name = key.partition(".")
        allowed = RESUMABLE_KEYS.get(section, set())
        if allowed != "*" and name not in allowed:
            keys = sorted(f"{s}.{k}" for s, ks in RESUMABLE_KEYS.items() if ks != "*" for k in ks)
            raise ConfigError(
                f"--set {key} cannot change on --resume: the saved model was trained with the run's value, and "
                f"config.toml must keep describing it. Start a new run for that (`shiptoolkit train CONFIG --set "
                f"{item}`). On resume you may change {', '.join(keys)} and any predict.*, evaluate.* or tune.* key.")


def check_model_file(path: Path) -> None:
    """Refuse a checkpoint that is not a readable .keras archive, before anything in the run changes."""
    problem = None
    if not path.is_file():
        problem = "is missing"
    elif not zipfile.is_zipfile(path):
        problem = "is not a .keras archive (truncated or overwritten?)"
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
                bad = archive.testzip()  # reads every member: catches a damaged archive now, not mid-resume
            if bad is not None or not {"config.json", "model.weights.h5"} <= names:
                problem = f"is damaged ({bad or 'config.json or model.weights.h5 missing'})"
        except (zipfile.BadZipFile, OSError) as exc:
            problem = f"is unreadable ({exc})"
    if problem:
        raise ShiptoolkitError(f"{path} {problem}: this run cannot be resumed from it. Nothing in the run directory "
                               "was changed. Start a new run, or resume from a copy of the run with a good last.keras.")


class RunDir:
    """One run's folder. Every module asks it for a run's paths; nothing else spells a file name.

    Example:
        >>> run = RunDir("runs/quickstart-20260101-120000")
        >>> run.best.name, run.postprocess.name
        ('best.keras', 'postprocess.json')
    """

    FILES = {"config": "config.toml", "best": "best.keras", "last": "last.keras", "history": "history.csv",
             "history_plot": "history.png", "state": "train_state.json", "classifier": "classifier.keras",
             "classifier_history": "classifier_history.csv", "classifier_history_plot": "classifier_history.png",
             "gate": "gate.json", "postprocess": "postprocess.json", "timings": "timings.json",
             "metrics": "metrics.json", "examples": "examples.png", "skipped": "skipped.csv",
             "tensorboard": "tensorboard",
             # a cross-validation folder (`shiptoolkit cv`): its fold runs are subfolders
             "cv_config": "cv_config.toml", "cv": "cv.json", "oof": "oof.csv", "cv_plot": "cv.png"}

    active: RunDir | None = None  # the run a `guard()` block is working on in this process

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, out_dir: str | Path, name: str) -> RunDir:
        """`<out_dir>/<name>-<timestamp>/`, created; never an existing directory (a twin gets `-2`, `-3`...)."""
        root = Path(out_dir).expanduser()
        base = root / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        path, n = base, 1
        while True:
            try:
                path.mkdir(parents=True, exist_ok=False)
                return cls(path)
            except FileExistsError:
                n += 1
                path = base.with_name(f"{base.name}-{n}")

    def __getattr__(self, label: str) -> Path:
        if label in RunDir.FILES:
            return self.path / RunDir.FILES[label]
        raise AttributeError(f"RunDir has no file {label!r}; its files: {', '.join(RunDir.FILES)}")

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def submission(self, name: str = "submission.csv") -> Path:
        return self.path / name

    def files(self) -> dict[str, Path]:
        """What the run holds now: {label: path} of the files that exist."""
        return {label: self.path / name for label, name in RunDir.FILES.items() if (self.path / name).exists()}

    # -- train_state.json -----------------------------------------------------------------------
    def read_state(self) -> dict:
        if not self.state.is_file():
            return {}
        try:
            return json.loads(self.state.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ShiptoolkitError(f"{self.state} is unreadable ({exc}): not a state shiptoolkit wrote.") from None

    def write_state(self, **state: Any) -> None:
        self.state.write_text(json.dumps(state, indent=2))

    def mark(self, status: str, reason: str = "") -> None:
        """Set the run's status (keeping what train_state.json already holds), with the reason."""
        try:
            state = self.read_state()
        except ShiptoolkitError:
            state = {}
        state["status"] = status
        if reason:
            state["reason"] = reason
        state.setdefault("epochs_completed", 0)
        self.write_state(**state)

    @contextlib.contextmanager
    def guard(self):
        """Whatever ends the block early is written down: Ctrl-C marks the run `interrupted` (and
        becomes `RunInterrupted`, which names the run), any other error `failed` with its reason."""
        RunDir.active = self  # what an interrupt handler names if cleanup hangs (see cli.interrupts)
        try:
            yield self
        except (RunFailed, RunInterrupted):
            raise  # the state says so already
        except KeyboardInterrupt:
            self.mark("interrupted")
            raise RunInterrupted(self.path) from None
        except Exception as exc:
            self.mark("failed", f"{type(exc).__name__}: {exc}")
            raise

    def check_resumable(self, overrides: Iterable[str]) -> dict:
        """The saved state of a run that `--resume` may continue with `overrides`; refuses before
        anything in the directory changes (no state, model-changing overrides, a damaged last.keras)."""
        saved = self.read_state()
        if not saved or not (self.last.exists() or saved.get("epochs_completed") == 0):
            raise ShiptoolkitError(f"{self.path} has no train_state.json and last.keras: nothing to resume.")
        check_resume_overrides(overrides)
        if saved.get("epochs_completed"):
            check_model_file(self.last)
        return saved

    # -- postprocess.json ------------------------------------------------------------------------
    def read_tuned(self) -> dict | None:
        """postprocess.json (None when the run was not tuned)."""
        return json.loads(self.postprocess.read_text()) if self.postprocess.is_file() else None

    def save_tuned(self, info: dict) -> Path:
        self.postprocess.write_text(json.dumps(info, indent=2))
        return self.postprocess

    # -- skipped.csv -----------------------------------------------------------------------------
    def write_skipped(self, problems: Iterable[Any]) -> Path | None:
        """skipped.csv: every image left out (id, kind, message), so nothing is dropped silently."""
        rows = [(p.image_id, p.kind, p.message) for p in problems if p.kind != "duplicate_row"]
        if not rows:
            return None
        with self.skipped.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["ImageId", "kind", "message"])
            writer.writerows(rows)
        return self.skipped
