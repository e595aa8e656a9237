"""Keras callbacks for model selection on what is scored: validation f2, the best model, collapse.

Order matters: `ValidationF2` and `CollapseGuard` write into the epoch's logs, which the
callbacks after them (`BestCheckpoint`, CSV logging, early stopping) read.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from shiptoolkit.inference.gate import Gate
from shiptoolkit.inference.prediction import PredictSettings, index_items, predict_items
from shiptoolkit.scoring.competition import F2Accumulator, iou_matrix_from_labels
from shiptoolkit.training.multi_worker import local_copy


def score_images(model, index, settings: PredictSettings, gate: Gate | None = None, progress: bool = False,
                 on_error: str = "raise") -> dict[str, float]:
    """f2 (beside its all-empty baseline), false-positive rate on empty images and predicted ship
    pixels of a model on whole images, predicted as `predict` does (gate included)."""
    acc, pixels, segmented = F2Accumulator(), 0, 0
    for p in predict_items(model, index_items(index), settings, progress=progress, on_error=on_error, gate=gate,
                           skip_rejected=True):
        true = index.labels(p.image_id)
        pred = np.zeros_like(true) if p.prob is None else settings.labels(p.prob, seam=p.seam)
        if p.prob is not None and (gate is None or gate.accepts(p.ship_probability)):
            segmented += 1
            pixels += int(np.count_nonzero(pred))
        acc.add(p.image_id, iou_matrix_from_labels(true, pred))
    summary = acc.summary()
    # Pixels the segmenter predicted on the images it saw: NaN when the gate let none through, which
    # says nothing about the segmenter.
    return {"f2": summary["f2"], "f2_all_empty_baseline": summary["f2_all_empty_baseline"],
            "fp_rate_empty": summary["false_positive_rate_empty"],
            "predicted_pixels": float(pixels) if segmented else float("nan"), "images": summary["images"]}


class ValidationF2(keras.callbacks.Callback):
    """Every `every` epochs (and at the last), predict whole validation images with the real
    prediction path and log `val_f2`, `val_f2_baseline`, `val_fp_rate_empty` and
    `val_predicted_pixels`; other epochs log NaN (never chosen as best).

    Several workers (`share`, `scores`): only the worker with `scores` (the chief) predicts, on a
    copy of the model outside the strategy, and `share` hands its numbers to every worker, so that
    all take the same decisions (see `shiptoolkit.training.multi_worker.share_from_chief`)."""

    def __init__(self, index, settings: PredictSettings, gate: Gate | None = None, every: int = 1,
                 on_error: str = "raise", echo: Callable[[str], Any] | None = print,
                 share: Callable[[list[float]], list[float]] | None = None, scores: bool = True) -> None:
        super().__init__()
        self.index, self.settings, self.gate, self.every, self.on_error = index, settings, gate, every, on_error
        self.echo, self.share, self.scores = echo, share, scores
        self.seconds: list[float] = []
        self.last: dict[str, float] = {}  # the last scores this worker computed

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        last = epoch + 1 >= self.params.get("epochs", epoch + 1)
        keys = ("val_f2", "val_f2_baseline", "val_fp_rate_empty", "val_predicted_pixels")
        if (epoch + 1) % self.every and not last:
            logs.update(dict.fromkeys(keys, float("nan")))
            return
        values = self._score() if self.scores else [0.0] * len(keys)
        if self.share is not None:
            values = self.share(values)
        logs.update(zip(keys, values, strict=True))
        if self.echo and self.scores:
            s = self.last
            self.echo(f"epoch {epoch + 1}: val_f2 {s['f2']:.4f} (all-empty baseline {s['f2_all_empty_baseline']:.4f}, "
                      f"FP rate on empty {s['fp_rate_empty']:.3f}) on {s['images']} whole validation images in "
                      f"{self.seconds[-1]:.1f} s")

    def _score(self) -> list[float]:
        start = time.perf_counter()
        model = local_copy(self.model) if self.share is not None else self.model
        self.last = s = score_images(model, self.index, self.settings, self.gate, on_error=self.on_error)
        self.seconds.append(time.perf_counter() - start)
        return [s["f2"], s["f2_all_empty_baseline"], s["fp_rate_empty"], s["predicted_pixels"]]


def predicts_nothing(logs: dict) -> bool:
    """The epoch's model predicted no ship: no pixel on the validation images when val_f2 ran,
    else a training (or, without one, validation) dice of ~0.

    The training dice comes first: its batches hold ship patches, while a few validation patches
    may hold none, and then any false positive pixel gives a validation dice of 0 (a learning
    model was once stopped as "collapsed" that way, between two val_f2 epochs of 0.89).
    """
    pixels = logs.get("val_predicted_pixels")
    if pixels is not None and not math.isnan(pixels):
        return pixels == 0
    dice = logs.get("dice", logs.get("val_dice"))
    return dice is not None and not math.isnan(dice) and dice < 1e-3


class CollapseGuard(keras.callbacks.Callback):
    """Stop training when a model that predicted ships stops predicting any for `patience` epochs
    in a row, and say so (`collapsed` tells the trainer to report it).

    A model that predicts nothing scores the all-empty baseline on f2 and a low, flat loss: without
    this check it can be kept as "best". A model that has not predicted a ship yet is still
    learning (a short or tiny run): it is not stopped, and `BestCheckpoint` never keeps it.
    """

    def __init__(self, patience: int = 2) -> None:
        super().__init__()
        self.patience, self.streak, self.collapsed, self.predicted_ships = patience, 0, False, False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        if not predicts_nothing(logs):
            self.predicted_ships, self.streak = True, 0
            return
        self.streak += 1
        if self.patience and self.predicted_ships and self.streak >= self.patience:
            self.collapsed = True
            self.model.stop_training = True


class BestCheckpoint(keras.callbacks.Callback):
    """Save the model when `monitor` improves; never an epoch whose model predicts nothing, never
    on a NaN (an epoch val_f2 skipped). The best value survives a resume (`best` is restored)."""

    def __init__(self, path: str | Path, monitor: str, best: float | None = None) -> None:
        super().__init__()
        self.path, self.monitor = Path(path), monitor
        self.mode = "min" if "loss" in monitor else "max"
        self.best = best
        self.best_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None or math.isnan(float(value)) or predicts_nothing(logs):
            return
        value = float(value)
        if self.best is None or (value < self.best if self.mode == "min" else value > self.best):
            self.best, self.best_epoch = value, epoch + 1
            self.model.save(self.path)


class EpochState(keras.callbacks.Callback):
    """Calls `write(epochs_completed, best, best_epoch)` after every epoch (the run's resume state)."""

    def __init__(self, write: Callable[..., None], best: BestCheckpoint) -> None:
        super().__init__()
        self.write, self.best = write, best

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.write(epochs_completed=epoch + 1, best=self.best.best, best_epoch=self.best.best_epoch)


class StepTimer(keras.callbacks.Callback):
    """Prints the expected training time once three steps are measured (steps x the step time), so a
    run that would take hours on this machine says so in its first seconds."""

    def __init__(self, epochs: int, steps: int, echo: Callable[[str], Any] = print) -> None:
        super().__init__()
        self.epochs, self.steps, self.echo = epochs, steps, echo
        self.start = 0.0
        self.step_seconds: float | None = None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.step_seconds is not None:
            return
        if batch == 1:  # the first step includes tracing and compiling
            self.start = time.perf_counter()
        elif batch == 4:
            self.step_seconds = (time.perf_counter() - self.start) / 3
            total = self.step_seconds * self.steps * self.epochs
            self.echo(f"expected training time: {self.epochs} epochs x {self.steps} steps x {self.step_seconds:.3f} s "
                      f"= {format_duration(total)} on this machine (validation adds its own cost per epoch)")


def format_duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.1f} min"


def measured_only(callback: keras.callbacks.Callback, monitor: str) -> keras.callbacks.Callback:
    """`callback` (EarlyStopping, ReduceLROnPlateau) with the epochs where `monitor` was not measured
    (NaN: val_f2 runs every N epochs) left out, so they do not count as epochs without improvement."""
    on_epoch_end = callback.on_epoch_end

    def measured(epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(monitor)
        if value is not None and math.isnan(float(value)):
            return
        on_epoch_end(epoch, logs)

    callback.on_epoch_end = measured
    return callback


def fit_callbacks(checkpoint: keras.callbacks.Callback, history: Path, monitor: str, mode: str = "auto",
                  early_stopping_patience: int = 0, append: bool = False) -> list[keras.callbacks.Callback]:
    """What every model shiptoolkit trains gets (the segmenter and the gate's classifier): its
    checkpoint, the history CSV, a stop on NaN, and early stopping on `monitor` (epochs where it
    was not measured do not count)."""
    callbacks = [checkpoint, keras.callbacks.CSVLogger(history, append=append), keras.callbacks.TerminateOnNaN()]
    if early_stopping_patience:
        callbacks.append(measured_only(keras.callbacks.EarlyStopping(monitor, patience=early_stopping_patience,
                                                                     mode=mode), monitor))
    return callbacks
