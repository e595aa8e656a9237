"""What the false-positive tools cost per 768x768 image, against the step they extend.

- instance splitting: `split_touching` (distance watershed) and `split_by_seams` vs plain
  connected components (`label_instances`), on synthetic ship masks;
- grouping overlapping images: tile hashing per (decoded) image vs decoding the JPEG, which
  grouping must do anyway.

    python benchmarks/false_positives.py [--quick]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from _common import median_seconds, quick, report

from shiptoolkit.data.airbus import AirbusIndex
from shiptoolkit.data.groups import tile_hashes
from shiptoolkit.data.instances import label_instances, seam_pixels, split_by_seams, split_touching
from shiptoolkit.data.synth import generate_dataset


def main() -> None:
    n = 20 if quick() else 60
    repeats = 2 if quick() else 5
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "d"
        generate_dataset(root, images=n, empty_fraction=0.0, overlap_fraction=0.5, seed=5, progress=False)
        index = AirbusIndex.from_kaggle(root)
        labels = [index.labels(i) for i in index.image_ids]
        masks = [lab > 0 for lab in labels]
        seams = [seam_pixels(lab).astype(np.float32) for lab in labels]
        probs = [m.astype(np.float32) for m in masks]

        plain = median_seconds(lambda: [label_instances(m) for m in masks], repeats) / n
        shape = median_seconds(lambda: [split_touching(m) for m in masks], repeats) / n
        seam = median_seconds(lambda: [split_by_seams(p, s) for p, s in zip(probs, seams, strict=True)], repeats) / n
        report("connected_components_ms_per_image", plain * 1e3, "ms")
        report("split_touching_ms_per_image", shape * 1e3, "ms")
        report("split_touching_vs_components", shape / plain, "x")
        report("split_by_seams_ms_per_image", seam * 1e3, "ms")
        report("split_by_seams_vs_components", seam / plain, "x")

        ids = index.image_ids
        decode = median_seconds(lambda: [index.read_image(i) for i in ids], repeats) / n
        images = [index.read_image(i) for i in ids]
        hashed = median_seconds(lambda: [tile_hashes(im) for im in images], repeats) / n  # decoded already
        report("decode_jpeg_ms_per_image", decode * 1e3, "ms")
        report("tile_hash_ms_per_image", hashed * 1e3, "ms")
        report("tile_hash_cost_vs_decode", hashed / decode, "x")  # what grouping adds to reading the image


if __name__ == "__main__":
    main()
