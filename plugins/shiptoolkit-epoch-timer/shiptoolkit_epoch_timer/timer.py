"""The Keras callback behind `epoch_timer`."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import keras

COLUMNS = ("stage", "epoch", "seconds", "learning_rate")


class EpochTimer(keras.callbacks.Callback):
    """Append `stage, epoch, seconds, learning_rate` to a CSV file after every epoch.

    Args:
        path: the CSV file; its header is written when the file is new, so a resumed run (or the
            classifier's fit before the segmenter's) appends to the same file.
        stage: what is being fit ("segmenter" or "classifier"), the first column.
    """

    def __init__(self, path: str | Path, stage: str = "segmenter") -> None:
        super().__init__()
        self.path, self.stage = Path(path), stage
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self.started
        new = not self.path.exists()
        with self.path.open("a", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            if new:
                writer.writerow(COLUMNS)
            writer.writerow([self.stage, epoch + 1, f"{seconds:.3f}", self._learning_rate()])

    def _learning_rate(self) -> str:
        """The optimizer's current rate (a schedule's value at this step); "" if there is none."""
        try:
            return f"{float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)):.6g}"
        except (AttributeError, TypeError, ValueError):
            return ""
