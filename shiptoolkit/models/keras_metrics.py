"""Training metrics as streaming Keras metrics (serializable, so saved models reload in safe mode)."""

from __future__ import annotations

import keras
from keras import ops


class _OverlapMetric(keras.metrics.Metric):
    """Accumulates intersection and sums over an epoch: a global score, not a mean of batch scores."""

    def __init__(self, threshold: float | None = 0.5, name: str = "overlap", **kwargs):
        super().__init__(name=name, **kwargs)
        self.threshold = threshold
        self.intersection = self.add_variable((), initializer="zeros", name="intersection")
        self.total = self.add_variable((), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        # Channel 0 is the ship mask; a second channel (seams, `train.seam_channel`) is not scored.
        y_true = ops.cast(y_true[..., :1], "float32")
        y_pred = ops.cast(y_pred[..., :1], "float32")
        if self.threshold is not None:
            y_pred = ops.cast(y_pred > self.threshold, "float32")
        self.intersection.assign_add(ops.sum(y_true * y_pred))
        self.total.assign_add(ops.sum(y_true) + ops.sum(y_pred))

    def reset_state(self):
        self.intersection.assign(0.0)
        self.total.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


@keras.saving.register_keras_serializable(package="shiptoolkit")
class DiceMetric(_OverlapMetric):
    """Dice 2|A∩B| / (|A|+|B|) over all pixels seen this epoch; 1 when both are empty."""

    def __init__(self, threshold: float | None = 0.5, name: str = "dice", **kwargs):
        super().__init__(threshold, name=name, **kwargs)

    def result(self):
        return ops.where(self.total > 0, 2.0 * self.intersection / ops.maximum(self.total, 1e-7), 1.0)


@keras.saving.register_keras_serializable(package="shiptoolkit")
class IoUMetric(_OverlapMetric):
    """IoU |A∩B| / |A∪B| over all pixels seen this epoch; 1 when both are empty."""

    def __init__(self, threshold: float | None = 0.5, name: str = "iou", **kwargs):
        super().__init__(threshold, name=name, **kwargs)

    def result(self):
        union = self.total - self.intersection
        return ops.where(union > 0, self.intersection / ops.maximum(union, 1e-7), 1.0)
