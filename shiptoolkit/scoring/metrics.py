"""Metric components: training metrics (Keras) and evaluation metrics (numpy, on full images).

A metric component is a class with `usage`, a subset of {"train", "evaluate"}:

- `keras_metric()` (usage "train") returns a streaming Keras metric;
- `evaluator()` (usage "evaluate") returns an object with `update(true_labels, pred_labels)`,
  called once per full image with int32 label images (0 = sea, i = ship i), and
  `result() -> dict[str, float]`.

Keras is imported only by `keras_metric()`, so scoring never loads it.
"""

from __future__ import annotations

import numpy as np

from shiptoolkit.plugins.hookspecs import hookimpl
from shiptoolkit.scoring.competition import F2Accumulator, iou_matrix_from_labels


class _OverlapEvaluator:
    """Dice or IoU on full images: global (all pixels) and mean per image (empty/empty = 1)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.intersection = self.total = 0
        self.per_image: list[float] = []

    def _score(self, inter: float, total: float) -> float:
        if total == 0:
            return 1.0
        return 2 * inter / total if self.name == "dice" else inter / (total - inter)

    def update(self, true_labels: np.ndarray, pred_labels: np.ndarray) -> None:
        t, p = np.asarray(true_labels) > 0, np.asarray(pred_labels) > 0
        inter, total = int((t & p).sum()), int(t.sum() + p.sum())
        self.intersection += inter
        self.total += total
        self.per_image.append(self._score(inter, total))

    def result(self) -> dict[str, float]:
        return {f"{self.name}_global": self._score(self.intersection, self.total),
                f"{self.name}_mean_per_image": float(np.mean(self.per_image)) if self.per_image else float("nan")}


class _Overlap:
    """Shared by `Dice` and `IoU`: a Keras training metric and a full-image evaluator."""

    usage = frozenset({"train", "evaluate"})
    name = ""

    def __init__(self, threshold: float | None = 0.5) -> None:
        self.threshold = threshold

    def keras_metric(self):
        from shiptoolkit.models.keras_metrics import DiceMetric, IoUMetric  # Keras: only when one is built

        cls = DiceMetric if self.name == "dice" else IoUMetric
        return cls(self.threshold)

    def evaluator(self) -> _OverlapEvaluator:
        return _OverlapEvaluator(self.name)


class Dice(_Overlap):
    """Dice coefficient: a Keras training metric, and global/per-image dice on full images.

    Args:
        threshold: probability threshold for the training metric (None = soft dice).
    """

    name = "dice"


class IoU(_Overlap):
    """Intersection over union: a Keras training metric, and global/per-image IoU on full images.

    Args:
        threshold: probability threshold for the training metric (None = soft IoU).
    """

    name = "iou"


class F2Evaluator:
    """Streams images into an `F2Accumulator`; `rows` keeps each image's score for plots."""

    def __init__(self) -> None:
        self.accumulator = F2Accumulator()
        self._count = 0

    def update(self, true_labels: np.ndarray, pred_labels: np.ndarray, image_id: str | None = None) -> float:
        self._count += 1
        return self.accumulator.add(image_id or f"image{self._count}", iou_matrix_from_labels(true_labels, pred_labels))

    @property
    def rows(self) -> list[dict]:
        return self.accumulator.rows

    def result(self) -> dict[str, float]:
        return self.accumulator.summary()


class F2:
    """The competition metric: F2 over IoU thresholds 0.50..0.95 per image, mean over images.

    Reported with the all-empty baseline on the same images, and the image-level ship/no-ship
    precision, recall and false-positive rate on empty images.
    """

    usage = frozenset({"evaluate"})

    def evaluator(self) -> F2Evaluator:
        return F2Evaluator()


@hookimpl
def register_metrics(register):
    register("dice", Dice)
    register("iou", IoU)
    register("f2", F2)
