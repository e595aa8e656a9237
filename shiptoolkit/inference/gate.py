"""The ship/no-ship gate: a classifier and its threshold, applied before segmenting (training it: `training.gate`).

Files in the run directory (next to the segmentation model, see `shiptoolkit.rundir`):
    classifier.keras            the best classifier on validation loss
    classifier_history.csv/png  its training curves
    gate.json                   the classifier and its untuned threshold (the tuned one is in postprocess.json)

The threshold is tuned for the competition metric, not for accuracy, together with the
segmenter's threshold and min_area (`shiptoolkit.training.tuning`): on the validation images, an image
the gate rejects scores 1 if it is empty and 0 if it holds ships, and one it lets through
scores what the segmenter earns on it. The combination with the best mean wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from shiptoolkit.config import Config, overridden_keys
from shiptoolkit.errors import ConfigError
from shiptoolkit.inference.replicas import forward, spread
from shiptoolkit.jsonfiles import read_json
from shiptoolkit.models.saving import load_model
from shiptoolkit.rundir import RunDir


@dataclass
class Gate:
    """A classifier and its threshold: `ship_probability(images)` for a batch, `accepts(p)`."""

    model: Any
    image_size: int
    threshold: float
    batch_size: int = 32
    info: dict = field(default_factory=dict)

    def ship_probability(self, images: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """Ship probability (N,) float32 of uint8 RGB images (any sizes: each is resized)."""
        import cv2

        if not len(images):
            return np.zeros(0, np.float32)
        side = self.image_size
        x = np.stack([im if im.shape[:2] == (side, side) else cv2.resize(im, (side, side), interpolation=cv2.INTER_AREA)
                      for im in images]).astype(np.float32)
        return forward(self.model, x, self.batch_size).reshape(-1)

    def accepts(self, probability: float) -> bool:
        return probability >= self.threshold

    def spread(self, strategy: str) -> Gate:
        """This gate with its classifier on every device under predict.strategy
        (`shiptoolkit.inference.replicas.spread`); `batch_size` then counts per device."""
        model = spread(self.model, strategy)
        return self if model is self.model else replace(self, model=model)


def load_gate(config: Config, model_dir: str | Path) -> Gate | None:
    """The gate a config asks for, from the folder of the segmentation model (None: no [classifier])."""
    c = config.settings.classifier
    if not c.name:
        return None
    run = RunDir(model_dir)
    if not run.classifier.is_file():
        raise ConfigError(f"The config has a [classifier] ({c.name!r}) but {str(run.path)!r} has no "
                          f"{run.classifier.name}: train it (`shiptoolkit train CONFIG`), or run without the gate "
                          "(--set classifier.name='').")
    info = read_gate_json(run)
    threshold = float(info.get("threshold", c.threshold))
    tuned = run.read_tuned()
    if tuned and tuned.get("classifier_threshold") is not None and c.tune_threshold \
            and "classifier.threshold" not in overridden_keys(config):
        threshold = float(tuned["classifier_threshold"])  # chosen with the segmenter's settings, on validation
    return Gate(load_model(run.classifier), c.image_size, threshold, info=info)


# gate.json as classifier training writes it (`shiptoolkit.training.gate`).
GATE_JSON = {"threshold": "fraction", "image_size?": "size", "classifier?": "text", "tuned_in?": "text|null",
             "init_from?": "text"}


def read_gate_json(run: RunDir) -> dict:
    """A run's gate.json, its keys checked ({} when there is none)."""
    if not run.gate.is_file():
        return {}
    return read_json(run.gate, GATE_JSON, "Classifier training writes it with the config's classifier.threshold: "
                     "delete it to use that threshold.")


def gated_scores(rows: list[dict], probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """Per-image f2 once the gate has spoken: rejected images score 1 if empty, else 0."""
    f2 = np.array([r["f2"] for r in rows], np.float64)
    empty = np.array([r["empty"] for r in rows])
    return np.where(np.asarray(probabilities) >= threshold, f2, empty.astype(np.float64))


def gate_report(rows: list[dict], probabilities: np.ndarray, threshold: float) -> dict[str, float]:
    """The gate's own image-level precision, recall and rejections, and f2 with and without it."""
    p = np.asarray(probabilities)
    has_ship = ~np.array([r["empty"] for r in rows])
    passed = p >= threshold
    tp, fp, fn = int((passed & has_ship).sum()), int((passed & ~has_ship).sum()), int((~passed & has_ship).sum())
    return {
        "f2_with_gate": float(gated_scores(rows, p, threshold).mean()) if rows else float("nan"),
        "f2_without_gate": float(np.mean([r["f2"] for r in rows])) if rows else float("nan"),
        "gate_threshold": float(threshold),
        "gate_precision": tp / (tp + fp) if tp + fp else float("nan"),
        "gate_recall": tp / (tp + fn) if tp + fn else float("nan"),
        "gate_rejected_images": int((~passed).sum()),
    }
