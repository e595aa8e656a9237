"""The run directory: every file name of a run, creating it safely, its state, resume checks, what it holds.

    config.toml        the resolved config (every default written out)
    best.keras         the best model on train.monitor (never a model that predicts nothing)
    last.keras         the model after the last finished epoch (with optimizer state, to resume)
    history.csv/.png   loss and metrics per epoch, and their curves
    train_state.json   epochs completed, best value, status: running, completed, interrupted
                       (Ctrl-C, SIGTERM; `--resume` continues), collapsed, failed_nan, failed (+ `reason`);
                       the process working on it (pid, host, heartbeat: `shiptoolkit.runstate`), the
                       stages a `run` was asked for and has done, a hash per key of config.toml
    run.lock           held by the process working on the run (two would mix its epochs)
    classifier.keras, classifier_history.csv/.png, gate.json   the ship/no-ship gate, if any
    postprocess.json   threshold, min_area and gate threshold chosen on validation
    timings.json, submission.csv, metrics.json, examples.png, skipped.csv, tensorboard/

A run directory is never reused, and never left holding only config.toml without saying why.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
import threading
import zipfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from shiptoolkit.errors import ConfigError, ShiptoolkitError
from shiptoolkit.jsonfiles import read_json
from shiptoolkit.runstate import (
    HOST,
    Heartbeat,
    RunLock,
    config_changes,
    config_fingerprint,
    now,
    status_line,
    stop_signal,
    why_dead,
)

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


def resumable(key: str) -> bool:
    """Whether a resume may change `section.key` (see `RESUMABLE_KEYS`)."""
    section, _, name = key.partition(".")
    allowed = RESUMABLE_KEYS.get(section, set())
    return allowed == "*" or name in allowed


def check_resume_overrides(overrides: Iterable[str]) -> None:
    """Refuse `--set` keys that would change the resumed model, its data or its loss."""
    for item in overrides:
        key = item.partition("=")[0].strip()
        if not resumable(key):
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


# postprocess.json as tuning writes it (`shiptoolkit.training.tuning`): the keys predict, evaluate and export use.
TUNED_JSON = {"threshold": "fraction", "min_area": "count", "classifier_threshold?": "fraction|null",
              "split_depth?": "nonnegative", "whole_image?": "bool", "max_ships?": "count", "f2?": "number",
              "f2_with_defaults?": "number", "f2_all_empty_baseline?": "number", "tuned_on?": "object",
              "tuned_on.images?": "count", "tuned_on.empty_images?": "count"}


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
             "tensorboard": "tensorboard", "lock": "run.lock",
             # a cross-validation folder (`shiptoolkit cv`): its fold runs are subfolders
             "cv_config": "cv_config.toml", "cv": "cv.json", "oof": "oof.csv", "cv_plot": "cv.png"}

    active: RunDir | None = None  # the run a `guard()` block is working on in this process
    # Keys of the run as a whole (who works on it, what it runs): `update_state` sets them, `write_state` keeps them.
    RUN_KEYS = ("pid", "host", "heartbeat", "stages", "stages_done", "model", "config_keys")
    _state_lock = threading.RLock()  # the heartbeat thread writes train_state.json too

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
        """Replace train_state.json (atomically: a reader never sees half of it), keeping `RUN_KEYS`."""
        with RunDir._state_lock:
            kept = {k: v for k, v in self._state_or_empty().items() if k in RunDir.RUN_KEYS}
            self._write_json({**{k: v for k, v in state.items() if k not in RunDir.RUN_KEYS}, **kept})

    def update_state(self, **changes: Any) -> dict:
        """Change some keys of train_state.json, keeping the others."""
        with RunDir._state_lock:
            state = {**self._state_or_empty(), **changes}
            self._write_json(state)
            return state

    def _state_or_empty(self) -> dict:
        try:
            state = self.read_state()
        except (ShiptoolkitError, OSError):
            return {}
        return state if isinstance(state, dict) else {}

    def _write_json(self, state: dict) -> None:
        temp = self.state.with_name(f".{self.state.name}.{os.getpid()}.tmp")
        temp.write_text(json.dumps(state, indent=2))
        os.replace(temp, self.state)

    def mark(self, status: str, reason: str = "") -> None:
        """Set the run's status (keeping what train_state.json already holds), with the reason (an
        older reason goes: it told how the run ended before)."""
        with RunDir._state_lock:
            state = self._state_or_empty()
            state.pop("reason", None)
            state.update({"status": status, **({"reason": reason} if reason else {})})
            state.setdefault("epochs_completed", 0)
            self._write_json(state)

    def status_line(self) -> str:
        """The run's status as readers say it: "died (pid N on HOST no longer running)" for a run whose
        process was killed, "running (pid N on HOST, heartbeat T)", "completed"... (`runstate.status_line`)."""
        return status_line(self._state_or_empty())

    def stages_left(self, default: Iterable[str] = ()) -> list[str]:
        """The stages a `run` was asked for (else `default`) that it has not finished yet."""
        state = self._state_or_empty()
        done = state.get("stages_done") or []
        return [stage for stage in (state.get("stages") or list(default)) if stage not in done]

    def record_config(self) -> None:
        """Note a hash of each key of config.toml as just written, so that a resume sees later hand edits."""
        self.update_state(config_keys=config_fingerprint(self.config))

    def check_config_unchanged(self, saved: dict, accept: bool = False) -> None:
        """Refuse a config.toml edited since the run wrote it in keys a resume may not change: the saved
        model was trained as the old values say (`accept`: the user's `--accept-config-changes`)."""
        noted = saved.get("config_keys")
        if accept or not isinstance(noted, str):
            return
        changed = [key for key in config_changes(noted, self.config) if not resumable(key)]
        if changed:
            raise ConfigError(
                f"{self.config} was edited since the run wrote it: {', '.join(changed)} changed, but the saved model "
                f"was trained with the old values, so config.toml would no longer describe it. Undo the edit, start a "
                f"new run from the edited file (`shiptoolkit train {self.config}`), or pass --accept-config-changes "
                "to resume anyway (Python: accept_config_changes=True).")

    @contextlib.contextmanager
    def guard(self):
        """Whatever ends the block early is written down: Ctrl-C or SIGTERM marks the run `interrupted`
        (and becomes `RunInterrupted`, which names the run), any other error `failed` with its reason,
        unless it came after a stop signal (`runstate.note_stop_signal`). The block holds the run (`claim`)."""
        RunDir.active = self  # what an interrupt handler names if cleanup hangs (see cli.interrupts)
        with self.claim():
            try:
                yield self
            except (RunFailed, RunInterrupted):
                raise  # the state says so already
            except KeyboardInterrupt:
                self.mark("interrupted")
                raise RunInterrupted(self.path) from None
            except Exception as exc:
                if stop_signal() is not None:  # the interrupt landed where its cleanup raised something else
                    self.mark("interrupted")
                    raise RunInterrupted(self.path) from exc
                self.mark("failed", f"{type(exc).__name__}: {exc}")
                raise

    @contextlib.contextmanager
    def claim(self):
        """This process works on the run: it holds run.lock (`runstate.RunLock`: refused, naming the
        holder, while a live process holds it) and writes its pid, host and a heartbeat into
        train_state.json. A run left "running" by a process that died is taken over with a note; a
        block that ends cleanly with the run still "running" marks it completed. Reentrant."""
        lock = RunLock(self.lock, self.path)
        first, note = lock.acquire()
        beat = None
        try:
            if first:
                self._take_over(note)
                beat = Heartbeat(lambda: self.update_state(heartbeat=now())).start()
            yield self
            if first and self._state_or_empty().get("status") == "running":
                self.mark("completed")
        finally:
            if beat is not None:
                beat.stop()
            lock.release()

    def _take_over(self, lock_note: str | None) -> None:
        state = self._state_or_empty()
        dead = why_dead(state) if state.get("status") == "running" else None
        if dead:
            print(f"note: {self.path}: its last process died ({dead}); its lock was taken over and the run "
                  "goes on.", file=sys.stderr)
        elif lock_note:
            print(f"note: {self.path}: {lock_note}.", file=sys.stderr)
        with RunDir._state_lock:
            state = {"epochs_completed": 0, **self._state_or_empty(), "status": "running", "pid": os.getpid(),
                     "host": HOST, "heartbeat": now()}
            state.pop("reason", None)
            self._write_json(state)

    def check_resumable(self, overrides: Iterable[str], accept_config_changes: bool = False) -> dict:
        """The saved state of a run that `--resume` may continue with `overrides`; refuses before
        anything in the directory changes (no state, model-changing overrides, a config.toml edited
        in keys that describe the model, a damaged last.keras). Without the last end's `reason`."""
        saved = self.read_state()
        if not saved or not (self.last.exists() or saved.get("epochs_completed") == 0):
            raise ShiptoolkitError(f"{self.path} has no train_state.json and last.keras: nothing to resume.")
        check_resume_overrides(overrides)
        self.check_config_unchanged(saved, accept_config_changes)
        if saved.get("epochs_completed"):
            check_model_file(self.last)
        saved.pop("reason", None)
        return saved

    # -- postprocess.json ------------------------------------------------------------------------
    def read_tuned(self) -> dict | None:
        """postprocess.json (None when the run was not tuned), its keys checked (see `TUNED_JSON`)."""
        if not self.postprocess.is_file():
            return None
        return read_json(self.postprocess, TUNED_JSON, "Tuning writes it: delete it to predict with the config's "
                         f"[predict] settings, or delete it and re-tune with `shiptoolkit train --resume {self.path}`.")

    def save_tuned(self, info: dict) -> Path:
        self.postprocess.write_text(json.dumps(info, indent=2))
        return self.postprocess

    # -- skipped.csv -----------------------------------------------------------------------------
    def write_skipped(self, problems: Iterable[Any], append: bool = False) -> Path | None:
        """skipped.csv: every image left out (id, kind, message), so nothing is dropped silently.

        With `append`, the rows go after those already there (a later stage's), each row once."""
        rows = [(p.image_id, p.kind, p.message) for p in problems if p.kind != "duplicate_row"]
        old = []
        if append and self.skipped.is_file():
            with self.skipped.open(newline="") as handle:
                old = [tuple(row) for row in csv.reader(handle)][1:]
        if append:
            known = set(old)
            rows = [row for row in dict.fromkeys(rows) if row not in known]
        if not rows:
            return self.skipped if old else None
        with self.skipped.open("a" if old else "w", newline="") as handle:
            writer = csv.writer(handle)
            if not old:
                writer.writerow(["ImageId", "kind", "message"])
            writer.writerows(rows)
        return self.skipped
