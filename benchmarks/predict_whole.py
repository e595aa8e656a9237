"""Seconds per 768x768 image for a patch-trained resnet34_unet: end-to-end prediction (JPEG decode,
forward, threshold, instances, RLE into a submission) on whole images, against the bare forward
pass of the same weights on the whole image (the floor), and against sliding windows.

The model is built for 256 px patches, as training builds it; prediction runs it on whole
images through a free-input copy (`predict.whole_image`, the default). Same process, same run.

    python benchmarks/predict_whole.py [--quick]
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from _common import median_seconds, quick, report  # noqa: E402

from shiptoolkit.inference.prediction import PredictSettings, folder_items, predict_items, whole_image_model  # noqa: E402
from shiptoolkit.inference.submission import SubmissionWriter  # noqa: E402
from shiptoolkit.models.resnet_unet import resnet34_unet  # noqa: E402


def end_to_end(model, folder: Path, settings: PredictSettings, out: Path) -> None:
    with SubmissionWriter(out, overwrite=True) as writer:
        for p in predict_items(model, folder_items(folder, 768), settings, progress=False):
            writer.write(p.image_id, settings.labels(p.prob))


def main() -> None:
    n_images = 2 if quick() else 6
    repeats = 2 if quick() else 5
    model = resnet34_unet((256, 256, 3))
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        images = []
        for i in range(n_images):  # sea-like texture with a few bright hulls: realistic JPEG sizes
            image = cv2.GaussianBlur(rng.integers(20, 90, (768, 768, 3), dtype=np.uint8), (5, 5), 0)
            image[300 + 10 * i:320 + 10 * i, 200:260] = 230
            cv2.imwrite(str(folder / f"img{i}.jpg"), image)
            images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        whole = whole_image_model(model)
        x = np.stack(images).astype("float32")

        def bare():
            for k in range(n_images):
                whole.predict_on_batch(x[k:k + 1])

        out = Path(tmp) / "submission.csv"
        floor = median_seconds(bare, repeats)
        e2e = median_seconds(lambda: end_to_end(model, folder, PredictSettings(), out), repeats)
        windows = median_seconds(lambda: end_to_end(model, folder, PredictSettings(whole_image=False), out),
                                 max(1, repeats - 2))
    report("predict_whole_forward_floor_s_per_image", floor / n_images, "s")
    report("predict_whole_end_to_end_s_per_image", e2e / n_images, "s")
    report("predict_windows_end_to_end_s_per_image", windows / n_images, "s")
    report("predict_whole_end_to_end_over_floor", e2e / floor, "x")
    report("predict_windows_over_whole", windows / e2e, "x")


if __name__ == "__main__":
    main()
