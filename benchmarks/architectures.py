"""Seconds per training step of each segmentation-models architecture (unet, fpn, linknet, pspnet,
deeplabv3plus) on resnet34 and on efficientnetb0: shiptoolkit's path (`training.model_setup.build_model`:
the [backbone], [loss], training metrics and the optimizer's schedule; fed by the toolkit's training
input: mixed sampler over JPGs, augmentation, worker threads) against a bare Keras `fit` of the same
graph (same loss and optimizer, no training metrics) on the same batches already in memory. Same
process, same run; the ratio is the toolkit's overhead per step.

128 px patches in batches of 16; PSPNet at 96 px (its sides must divide by 96: 96 or 192), so its
times are not comparable with the others' (its ratio is). Medians of 3 timed `fit` calls of a few
steps each after a warm-up call (tracing, first batches), the two ways taking turns (a shared machine's
load changes during a run).

    python benchmarks/architectures.py [--quick]        # --quick: linknet on resnet18, 64 px, batch 2
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
from shiptoolkit.training.model_setup import build_model  # noqa: E402
from shiptoolkit.training.stage import _segmenter_batches  # noqa: E402

ARCHITECTURES = ("unet", "fpn", "linknet", "pspnet", "deeplabv3plus")
ENCODERS = ("resnet34", "efficientnetb0")
PSPNET_SIZE = 96  # PSPNet's sides divide by 96 (6 x downsample_factor 8, and 32)


def seconds_per_step(fits: tuple, steps: int) -> tuple[float, ...]:
    """Median step time of each of `fits` over 3 timed `fit(steps)` calls, after a warm-up call of 2 steps
    each; the ways take turns within each round, so a machine's load changing mid-run hits them alike."""
    for fit in fits:
        fit(2)
    times: list[list[float]] = [[] for _ in fits]
    for _ in range(3):
        for fit, timed in zip(fits, times, strict=True):
            start = time.perf_counter()
            fit(steps)
            timed.append((time.perf_counter() - start) / steps)
    return tuple(float(np.median(t)) for t in times)


def measure(data: str, image: int, arch: str, encoder: str, size: int, batch: int, steps: int) -> tuple[float, float]:
    """(toolkit, bare fit) seconds per step of `arch` on `encoder` at `size` px, batch `batch`."""
    backbone = {"name": arch, "encoder": encoder}
    config = load_config({"data": {"path": data}, "backbone": backbone,
                          "sampler": {"name": "mixed", "patch_size": size, "ship_fraction": 0.3},
                          "train": {"batch_size": batch, "steps_per_epoch": max(steps, 2), "workers": 2,
                                    "validation_steps": 1, "val_f2_images": 0}})
    index = AirbusIndex.from_kaggle(data, shape=(image, image))
    train_index, val_index = split_by_image(index, 0.25, 0)

    class Splits:  # what _segmenter_batches reads
        train, validation = train_index, val_index

    batches, _ = _segmenter_batches(config, Splits, 0)
    keras.utils.set_random_seed(0)
    model = build_model(config, (size, size, 3), total_steps=1000)
    keras.utils.set_random_seed(0)
    bare_model = build_model(load_config({"backbone": backbone, "metrics": {"train": []},
                                          "train": {"batch_size": batch}}), (size, size, 3), 1000)
    x, y = batches[0]
    x, y = np.repeat(x, max(steps, 2), axis=0), np.repeat(y, max(steps, 2), axis=0)
    toolkit, bare = seconds_per_step((
        lambda n: model.fit(batches, epochs=1, steps_per_epoch=n, verbose=0),
        lambda n: bare_model.fit(x[:n * batch], y[:n * batch], batch_size=batch, epochs=1, verbose=0, shuffle=False),
    ), steps)
    keras.backend.clear_session()
    return toolkit, bare


def main() -> None:
    archs, encoders = (("linknet",), ("resnet18",)) if quick() else (ARCHITECTURES, ENCODERS)
    size, batch, steps = (64, 2, 1) if quick() else (128, 16, 3)
    rows, image = [], 256 if quick() else 768
    with tempfile.TemporaryDirectory() as tmp:
        generate_dataset(f"{tmp}/data", images=12 if quick() else 40, seed=0, size=image, progress=False)
        for encoder in encoders:
            for arch in archs:
                side = PSPNET_SIZE if arch == "pspnet" else size
                toolkit, bare = measure(f"{tmp}/data", image, arch, encoder, side, batch, steps)
                tag = f"{arch}_{encoder}_{side}px_b{batch}"
                report(f"{tag}_train_step_toolkit_s", toolkit, "s")
                report(f"{tag}_train_step_bare_fit_s", bare, "s")
                report(f"{tag}_train_step_overhead", toolkit / bare, "x")
                rows.append(f"| {arch} | {encoder} | {side} | {toolkit:.3f} | {bare:.3f} | {toolkit / bare:.2f}x |")
    header = "| architecture | encoder | px | toolkit s/step | bare fit s/step | ratio |\n|---|---|---:|---:|---:|---:|"
    print("\n" + header + "\n" + "\n".join(rows), flush=True)


if __name__ == "__main__":
    main()
