"""One training step and one forward pass of resnet34_unet on this machine, with and without XLA.

Shapes: 128x128 patches in batches of 16 (training on patches) and one 768x768 image (full
images). Medians over several steps after warm-up (the first calls compile).

    python benchmarks/model_step.py [--quick]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _common import median_seconds, quick, report  # noqa: E402

from shiptoolkit.models.losses import bce_dice  # noqa: E402
from shiptoolkit.models.resnet_unet import resnet34_unet  # noqa: E402


def measure(size: int, batch: int, jit: bool, repeats: int) -> tuple[float, float]:
    keras.utils.set_random_seed(0)
    model = resnet34_unet((size, size, 3))
    model.compile(keras.optimizers.Adam(1e-4), loss=bce_dice(), jit_compile=jit)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    y = (rng.random((batch, size, size, 1)) < 0.01).astype("float32")
    train = median_seconds(lambda: model.train_on_batch(x, y), repeats, warmup=2)
    forward = median_seconds(lambda: model.predict_on_batch(x), repeats, warmup=2)
    return train, forward


def main() -> None:
    repeats = 2 if quick() else 5
    shapes = [(128, 16)] if quick() else [(128, 16), (768, 1)]
    for size, batch in shapes:
        plain = measure(size, batch, False, repeats)
        xla = measure(size, batch, True, repeats)
        tag = f"{size}_b{batch}"
        report(f"resnet34_unet_train_step_{tag}", plain[0], "s")
        report(f"resnet34_unet_train_step_{tag}_xla", xla[0], "s")
        report(f"resnet34_unet_forward_{tag}", plain[1], "s")
        report(f"resnet34_unet_forward_{tag}_xla", xla[1], "s")
        report(f"xla_speedup_train_{tag}", plain[0] / xla[0], "x")
        report(f"xla_speedup_forward_{tag}", plain[1] / xla[1], "x")


if __name__ == "__main__":
    main()
