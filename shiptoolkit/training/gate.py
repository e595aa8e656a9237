"""Training the ship/no-ship gate: a classifier on whole images (resized), before the segmenter.

Its threshold is the config's until the post-processing is tuned after the segmenter
(`shiptoolkit.training.tuning`): gate, segmenter threshold and min_area are chosen together, on validation.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import keras

from shiptoolkit.config import Config
from shiptoolkit.models.init_weights import InitReport, init_model_from
from shiptoolkit.plots import plot_history
from shiptoolkit.plugins.contracts import build_callbacks, build_component
from shiptoolkit.rundir import RunDir
from shiptoolkit.samplers.full_images import FullImageSampler
from shiptoolkit.training.augment import build_augment
from shiptoolkit.training.callbacks import fit_callbacks
from shiptoolkit.training.multi_worker import AverageAcrossWorkers, is_multi_worker
from shiptoolkit.training.pipeline import ShipLabelBatches


def train_classifier(config: Config, run_dir: str | Path, train_index, val_index, progress: bool = True,
                     distribution=None) -> tuple[Path, InitReport | None]:
    """Train [classifier] on whole images resized to classifier.image_size, balanced by ship_fraction;
    under `distribution` (a `tf.distribute` strategy, e.g. several workers) when given.

    Returns classifier.keras and the report of classifier.init_from (None when it is ""): the
    weights it names are copied in after the model is built (outside the strategy's scope, so the
    source model's variables are plain ones), matched by layer name and shape."""
    s = config.settings
    c, seed, run = s.classifier, s.run.seed, RunDir(run_dir)
    sampler = FullImageSampler(train_index, c.image_size, 1.0 - c.ship_fraction, seed=seed + 3, cache_images=1024,
                               paste_ships=c.paste_ships)
    on_error, workers = s.data.on_error, s.train.workers
    train_batches = ShipLabelBatches(sampler, c.batch_size, build_augment(s.augment.transforms, seed),
                                     c.steps_per_epoch or None, workers, on_error)
    val_batches = None
    if len(val_index):  # the natural empty fraction: what the gate will meet
        val_sampler = FullImageSampler(val_index, c.image_size, -1.0, seed=seed + 4, cache_images=1024)
        val_batches = ShipLabelBatches(val_sampler, c.batch_size, None, None, workers, on_error, fixed_epoch=True)
    keras.utils.set_random_seed(seed + 3)
    with distribution.scope() if distribution is not None else contextlib.nullcontext():
        model = build_component("classifier", c.name, input_shape=(c.image_size, c.image_size, 3), **c.params)
        model.compile(optimizer=keras.optimizers.Adam(c.learning_rate), loss="binary_crossentropy",
                      metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.Precision(name="precision"),
                               keras.metrics.Recall(name="recall")])
    report = init_model_from(model, c.init_from, "classifier.init_from", progress)
    monitor = "val_loss" if val_batches is not None else "loss"
    best = keras.callbacks.ModelCheckpoint(run.classifier, monitor=monitor, save_best_only=True)
    callbacks = [AverageAcrossWorkers(distribution)] if is_multi_worker(distribution) else []
    callbacks += fit_callbacks(best, run.classifier_history, monitor, early_stopping_patience=c.early_stopping_patience)
    callbacks += build_callbacks(config, run.path, "classifier")  # the plugins' ones train.callbacks names
    model.fit(train_batches, validation_data=val_batches, epochs=c.epochs, callbacks=callbacks,
              verbose=1 if progress else 0)
    plot_history(run.classifier_history, run.classifier_history_plot)
    return run.classifier, report


def train_gate(config: Config, run_dir: str | Path, train_index, val_index, progress: bool = True,
               distribution=None) -> Path | None:
    """Train the classifier (before the segmenter, whose validation f2 then uses it) and write gate.json.

    Its threshold is the config's until the post-processing is tuned after the segmenter
    (`shiptoolkit.training.tuning`): gate, segmenter threshold and min_area are chosen together.
    """
    c, run = config.settings.classifier, RunDir(run_dir)
    if not c.name:
        return None
    if run.gate.is_file() and run.classifier.is_file():
        return run.gate  # a resumed run that already finished its gate
    _, report = train_classifier(config, run.path, train_index, val_index, progress, distribution)
    info: dict[str, Any] = {"classifier": c.name, "threshold": c.threshold, "image_size": c.image_size,
                            "tuned_in": run.postprocess.name if c.tune_threshold else None}
    if report is not None:  # what classifier.init_from loaded, for the run's summary
        info["init_from"] = str(report)
    run.gate.write_text(json.dumps(info, indent=2))
    return run.gate
