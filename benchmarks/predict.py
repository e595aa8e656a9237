"""Seconds per 768x768 image: batched sliding windows vs one predict call per patch (the seed's way),
and vs the floor (the model's forward pass on the same windows in one batch, no stitching).

Model: the seed's plain U-Net at 128x128 windows, no overlap (36 windows per image).

    python benchmarks/predict.py [--quick]
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from _common import median_seconds, quick, report  # noqa: E402

from shiptoolkit.inference.prediction import predict_probabilities  # noqa: E402
from shiptoolkit.models.unet import unet  # noqa: E402


def main() -> None:
    n_images = 2 if quick() else 4
    repeats = 2 if quick() else 3
    model = unet((128, 128, 3))
    images = np.random.default_rng(0).integers(0, 256, (n_images, 768, 768, 3), dtype=np.uint8)
    windows = images.reshape(n_images, 6, 128, 6, 128, 3).transpose(0, 1, 3, 2, 4, 5).reshape(-1, 128, 128, 3)
    windows = windows.astype("float32")

    batched = median_seconds(lambda: predict_probabilities(model, images, overlap=0.0, batch_size=64), repeats)

    def per_patch():  # the seed: model.predict on each tile
        for w in windows:
            model.predict(w[None], verbose=0)

    seed_way = median_seconds(per_patch, 1 if quick() else 2)
    floor = median_seconds(lambda: model.predict_on_batch(windows), repeats)
    report("predict_batched_s_per_image", batched / n_images, "s")
    report("predict_per_patch_s_per_image", seed_way / n_images, "s")
    report("predict_forward_floor_s_per_image", floor / n_images, "s")
    report("predict_speedup_vs_per_patch", seed_way / batched, "x")
    report("predict_overhead_vs_floor", batched / floor, "x")


if __name__ == "__main__":
    main()
