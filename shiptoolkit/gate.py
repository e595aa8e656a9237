"""The ship/no-ship gate: train a classifier, tune its threshold for f2, apply it before segmenting.

Files in the run directory (next to the segmentation model):
    classifier.keras            the best classifier on validation loss
    classifier_history.csv/png  its training curves
    gate.json                   the classifier and its untuned threshold (the tuned one is in postprocess.json)

The threshold is tuned for the competition metric, not for accuracy, together with the
segmenter's threshold and min_area (`shiptoolkit.tuning`): on the validation images, an image
the gate rejects scores 1 if it is empty and 0 if it holds ships, and one it lets through
scores what the segmenter earns on it. The combination with the best mean wins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shiptoolkit.config import Config
from shiptoolkit.errors import ConfigError
from shiptoolkit.prediction import overridden_keys
from shiptoolkit.tuning import load_tuned

CLASSIFIER_FILE, GATE_FILE = "classifier.keras", "gate.json"


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
        out = [np.asarray(self.model.predict_on_batch(x[k:k + self.batch_size])).reshape(-1)
               for k in range(0, len(x), self.batch_size)]
        return np.concatenate(out).astype(np.float32)

    def accepts(self, probability: float) -> bool:
        return probability >= self.threshold


def load_gate(config: Config, model_dir: str | Path) -> Gate | None:
    """The gate a config asks for, from the folder of the segmentation model (None: no [classifier])."""
    c = config["classifier"]
    if not c["name"]:
        return None
    from shiptoolkit.model_io import load_model

    model_dir = Path(model_dir)
    path = model_dir / CLASSIFIER_FILE
    if not path.is_file():
        raise ConfigError(f"The config has a [classifier] ({c['name']!r}) but {str(model_dir)!r} has no "
                          f"{CLASSIFIER_FILE}: train it (`shiptoolkit train CONFIG`), or run without the gate "
                          "(--set classifier.name='').")
    info = json.loads((model_dir / GATE_FILE).read_text()) if (model_dir / GATE_FILE).is_file() else {}
    threshold = float(info.get("threshold", c["threshold"]))
    tuned = load_tuned(model_dir)
    if tuned and tuned.get("classifier_threshold") is not None and c["tune_threshold"] \
            and "classifier.threshold" not in overridden_keys(config):
        threshold = float(tuned["classifier_threshold"])  # chosen with the segmenter's settings, on validation
    return Gate(load_model(path), c["image_size"], threshold, info=info)


def train_classifier(config: Config, run_dir: str | Path, train_index, val_index, progress: bool = True) -> Path:
    """Train [classifier] on whole images resized to classifier.image_size, balanced by ship_fraction."""
    import keras

    from shiptoolkit.augment import build_augment
    from shiptoolkit.pipeline import ShipLabelBatches
    from shiptoolkit.plots import plot_history
    from shiptoolkit.plugins import get_registry
    from shiptoolkit.samplers.full_images import FullImageSampler

    c, seed, run_dir = config["classifier"], config["run"]["seed"], Path(run_dir)
    name, params = config.component("classifier")
    empty_fraction = 1.0 - c["ship_fraction"]
    sampler = FullImageSampler(train_index, c["image_size"], empty_fraction, seed=seed + 3, cache_images=1024)
    on_error, workers = config["data"]["on_error"], config["train"]["workers"]
    train_batches = ShipLabelBatches(sampler, c["batch_size"], build_augment(config["augment"]["transforms"], seed),
                                     c["steps_per_epoch"] or None, workers, on_error)
    val_batches = None
    if len(val_index):  # the natural empty fraction: what the gate will meet
        val_sampler = FullImageSampler(val_index, c["image_size"], -1.0, seed=seed + 4, cache_images=1024)
        val_batches = ShipLabelBatches(val_sampler, c["batch_size"], None, None, workers, on_error, fixed_epoch=True)
    keras.utils.set_random_seed(seed + 3)
    model = get_registry("classifier").create(name, input_shape=(c["image_size"], c["image_size"], 3), **params)
    model.compile(optimizer=keras.optimizers.Adam(c["learning_rate"]), loss="binary_crossentropy",
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.Precision(name="precision"),
                           keras.metrics.Recall(name="recall")])
    monitor = "val_loss" if val_batches is not None else "loss"
    callbacks = [keras.callbacks.ModelCheckpoint(run_dir / CLASSIFIER_FILE, monitor=monitor, save_best_only=True),
                 keras.callbacks.CSVLogger(run_dir / "classifier_history.csv"), keras.callbacks.TerminateOnNaN(),
                 keras.callbacks.EarlyStopping(monitor, patience=4, restore_best_weights=False)]
    model.fit(train_batches, validation_data=val_batches, epochs=c["epochs"], callbacks=callbacks,
              verbose=1 if progress else 0)
    plot_history(run_dir / "classifier_history.csv", run_dir / "classifier_history.png")
    return run_dir / CLASSIFIER_FILE


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


def train_gate(config: Config, run_dir: str | Path, train_index, val_index, progress: bool = True) -> Path | None:
    """Train the classifier (before the segmenter, whose validation f2 then uses it) and write gate.json.

    Its threshold is the config's until the post-processing is tuned after the segmenter
    (`shiptoolkit.tuning`): gate, segmenter threshold and min_area are chosen together.
    """
    c, run_dir = config["classifier"], Path(run_dir)
    if not c["name"]:
        return None
    if (run_dir / GATE_FILE).is_file() and (run_dir / CLASSIFIER_FILE).is_file():
        return run_dir / GATE_FILE  # a resumed run that already finished its gate
    train_classifier(config, run_dir, train_index, val_index, progress)
    info: dict[str, Any] = {"classifier": c["name"], "threshold": c["threshold"], "image_size": c["image_size"],
                            "tuned_in": "postprocess.json" if c["tune_threshold"] else None}
    (run_dir / GATE_FILE).write_text(json.dumps(info, indent=2))
    return run_dir / GATE_FILE
