"""What a run directory says about itself: train_state.json, skipped.csv, and what may change on resume.

train_state.json's `status` is one of: running, completed, interrupted (Ctrl-C; `--resume`
continues), collapsed, failed_nan, failed (any other error; `reason` says which). A run
directory is never left holding only config.toml without saying why.
"""

from __future__ import annotations

import csv
import json
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shiptoolkit.errors import ConfigError, ShiptoolkitError

STATE_FILE = "train_state.json"
SKIPPED_FILE = "skipped.csv"

# Keys `--resume --set` may change: they steer how long and how fast training goes on, or what
# happens after it. Everything else (the model, its data, its loss) is what the saved weights
# were trained as; changing it on resume would make config.toml describe another model.
RESUMABLE_KEYS = {
    "train": {"epochs", "steps_per_epoch", "validation_steps", "learning_rate", "early_stopping_patience",
              "reduce_lr_patience", "reduce_lr_factor", "val_f2_every", "val_f2_images", "collapse_patience",
              "tensorboard", "workers", "batch_size", "jit_compile"},
    "predict": "*", "evaluate": "*", "tune": "*", "run": {"stages"},
}


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the run directory is marked `interrupted` and can be resumed."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(str(run_dir))
        self.run_dir = Path(run_dir)

    @property
    def hint(self) -> str:
        return (f"interrupted: the run directory is {self.run_dir}\n"
                f"continue with: shiptoolkit train --resume {self.run_dir}")


def write_state(run_dir: Path, **state: Any) -> None:
    (Path(run_dir) / STATE_FILE).write_text(json.dumps(state, indent=2))


def read_state(run_dir: Path) -> dict:
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ShiptoolkitError(f"{path} is unreadable ({exc}); it is not a state shiptoolkit wrote.") from None


def mark(run_dir: Path, status: str, reason: str = "") -> None:
    """Set the run's status (keeping what train_state.json already holds), with the reason."""
    try:
        state = read_state(run_dir)
    except ShiptoolkitError:
        state = {}
    state["status"] = status
    if reason:
        state["reason"] = reason
    state.setdefault("epochs_completed", 0)
    write_state(run_dir, **state)


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


def write_skipped(run_dir: Path, problems: Iterable[Any]) -> Path | None:
    """skipped.csv: every image left out (id, kind, message), so nothing is dropped silently."""
    rows = [(p.image_id, p.kind, p.message) for p in problems if p.kind != "duplicate_row"]
    if not rows:
        return None
    path = Path(run_dir) / SKIPPED_FILE
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ImageId", "kind", "message"])
        writer.writerows(rows)
    return path
