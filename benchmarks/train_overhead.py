"""Seconds per training step of resnet34_unet on 128 px patches, batch 16: shiptoolkit's training input
(mixed sampler over JPGs, augmentation, worker threads, the training metrics) against a bare Keras
`fit` of the same model on tensors already in memory. Same process, same run; the ratio is the
toolkit's overhead per step.

Then one whole epoch each way, validation included: the toolkit's with its epoch-end work (validation
batches from the sampler, best/last checkpoints, history CSV and plot, the resume state, the step
timer; not val_f2, whose cost training prints) against a bare `fit` with in-memory validation
tensors and no callbacks. From the two, each way's fixed cost per epoch (epoch minus its steps),
and the overhead of a whole epoch at EPOCH_STEPS steps (cpu_long's; real-data runs have more).

    python benchmarks/train_overhead.py [--quick]
"""

from __future__ import annotations

import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _common import quick, report  # noqa: E402

from shiptoolkit.config import load_config  # noqa: E402
from shiptoolkit.data.airbus import AirbusIndex  # noqa: E402
from shiptoolkit.data.split import split_by_image  # noqa: E402
from shiptoolkit.data.synth import generate_dataset  # noqa: E402
from shiptoolkit.rundir import RunDir  # noqa: E402
from shiptoolkit.training.stage import _segmenter_batches, _segmenter_callbacks, build_model  # noqa: E402

BATCH, SIZE = 16, 128
EPOCH_STEPS = 200


def seconds_per_step(fit, steps: int) -> float:
    """Median step time of one `fit(steps)` call after a warm-up call (tracing, first batches)."""
    fit(3)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        fit(steps)
        times.append((time.perf_counter() - start) / steps)
    return float(np.median(times))


def seconds_per_epoch(fit) -> float:
    """Median of 3 one-epoch fits after a warm-up one."""
    fit()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        fit()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    steps = 4 if quick() else 12
    with tempfile.TemporaryDirectory() as tmp:
        generate_dataset(f"{tmp}/data", images=40, seed=0, size=768, progress=False)
        config = load_config({"data": {"path": f"{tmp}/data"}, "backbone": {"name": "resnet34_unet"},
                              "sampler": {"name": "mixed", "patch_size": SIZE, "ship_fraction": 0.3},
                              "train": {"batch_size": BATCH, "steps_per_epoch": steps, "workers": 2,
                                        "validation_steps": 2, "val_f2_images": 0}})
        index = AirbusIndex.from_kaggle(f"{tmp}/data", shape=(768, 768))
        train_index, val_index = split_by_image(index, 0.25, 0)

        class Splits:  # what _segmenter_batches reads
            train, validation = train_index, val_index

        batches, val_batches = _segmenter_batches(config, Splits, 0)
        model = build_model(config, (SIZE, SIZE, 3), total_steps=1000)
        toolkit = seconds_per_step(lambda n: model.fit(batches, epochs=1, steps_per_epoch=n, verbose=0), steps)
        run = RunDir.create(tmp, "overhead")
        callbacks = _segmenter_callbacks(config, run, "val_loss", False, {"epochs_completed": 0}, [], steps, False)
        toolkit_epoch = seconds_per_epoch(lambda: model.fit(batches, validation_data=val_batches, epochs=1,
                                                            callbacks=callbacks, verbose=0))

        keras.utils.set_random_seed(0)
        bare_model = build_model(load_config({"backbone": {"name": "resnet34_unet"}, "metrics": {"train": []},
                                              "train": {"batch_size": BATCH}}), (SIZE, SIZE, 3), 1000)
        x, y = batches[0]
        x, y = np.repeat(x, steps, axis=0), np.repeat(y, steps, axis=0)
        bare = seconds_per_step(lambda n: bare_model.fit(x[:n * BATCH], y[:n * BATCH], batch_size=BATCH, epochs=1,
                                                         verbose=0, shuffle=False), steps)
        val_x, val_y = x[:2 * BATCH], y[:2 * BATCH]
        bare_epoch = seconds_per_epoch(lambda: bare_model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0,
                                                              shuffle=False, validation_data=(val_x, val_y)))
    toolkit_fixed, bare_fixed = toolkit_epoch - steps * toolkit, bare_epoch - steps * bare
    report("train_step_toolkit_s", toolkit, "s")
    report("train_step_bare_fit_s", bare, "s")
    report("train_step_overhead", toolkit / bare, "x")
    report("train_epoch_toolkit_s", toolkit_epoch, "s")
    report("train_epoch_bare_fit_s", bare_epoch, "s")
    report("train_epoch_fixed_toolkit_s", toolkit_fixed, "s")
    report("train_epoch_fixed_bare_fit_s", bare_fixed, "s")
    report(f"train_epoch_overhead_at_{EPOCH_STEPS}_steps",
           (EPOCH_STEPS * toolkit + toolkit_fixed) / (EPOCH_STEPS * bare + bare_fixed), "x")


if __name__ == "__main__":
    main()
