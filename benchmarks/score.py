"""Scoring a Kaggle-size submission (15,606 images, ~5,000 ships) end to end from CSV files.

Baseline, measured in the same run on a subset and extrapolated: IoUs from dense 768x768
masks per ship pair, the naive way.

    python benchmarks/score.py [--quick]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import median_seconds, quick, report

from shiptoolkit.data.rle import mask_to_runs, rle_decode, runs_to_rle
from shiptoolkit.scoring.competition import F2Accumulator
from shiptoolkit.scoring.submission import score_submission

SHAPE = (768, 768)


def make_csvs(n_images: int, n_ships: int, folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """Truth with realistic ship sizes; a submission that finds most ships (shifted), misses some, adds FPs."""
    rng = np.random.default_rng(seed)
    ids = [f"{i:09x}.jpg" for i in range(n_images)]
    ship_images = rng.choice(n_images, size=n_ships // 2, replace=False)
    truth, sub = [], []
    for i in ship_images:
        for k in range(2):  # two ships per ship image, side by side, never overlapping
            area = float(np.clip(rng.lognormal(np.log(408), 1.95), 20, 10_000))
            h = max(2, int(np.sqrt(area / 4)))
            w = max(2, int(area / h))
            w = min(w, 383)  # ship k lives in its own half of the image: the two never overlap
            r0 = int(rng.integers(0, 768 - h))
            c0 = int(rng.integers(0, 384 - w)) + 384 * k
            mask = np.zeros(SHAPE, np.uint8)
            mask[r0:r0 + h, c0:c0 + w] = 1
            truth.append((ids[i], runs_to_rle(*mask_to_runs(mask))))
            if rng.random() < 0.8:  # found, slightly shifted
                shifted = np.roll(mask, int(rng.integers(0, 3)), axis=0)
                sub.append((ids[i], runs_to_rle(*mask_to_runs(shifted))))
    empty = sorted(set(range(n_images)) - set(ship_images.tolist()))
    for i in empty:
        truth.append((ids[i], ""))
        if rng.random() < 0.03:  # false positives on empty sea
            mask = np.zeros(SHAPE, np.uint8)
            r, c = rng.integers(0, 700, 2)
            mask[r:r + 10, c:c + 30] = 1
            sub.append((ids[i], runs_to_rle(*mask_to_runs(mask))))
    have = {i for i, _ in sub}
    sub += [(ids[i], "") for i in range(n_images) if ids[i] not in have]
    truth_path, sub_path = folder / "truth.csv", folder / "submission.csv"
    pd.DataFrame(truth, columns=["ImageId", "EncodedPixels"]).to_csv(truth_path, index=False)
    pd.DataFrame(sub, columns=["ImageId", "EncodedPixels"]).to_csv(sub_path, index=False)
    return sub_path, truth_path


def dense_score(sub_path: Path, truth_path: Path, image_ids: list[str]) -> float:
    """Naive: decode every ship to a full mask, IoU per pair with full-array operations."""
    sub = pd.read_csv(sub_path, dtype=str, keep_default_na=False).groupby("ImageId")["EncodedPixels"].apply(list)
    truth = pd.read_csv(truth_path, dtype=str, keep_default_na=False).groupby("ImageId")["EncodedPixels"].apply(list)
    acc = F2Accumulator()
    for image_id in image_ids:
        t = [rle_decode(r).astype(bool) for r in truth[image_id] if r]
        p = [rle_decode(r).astype(bool) for r in sub.get(image_id, []) if r]
        iou = np.array([[(a & b).sum() / (a | b).sum() for b in p] for a in t]).reshape(len(t), len(p))
        acc.add(image_id, iou)
    return acc.summary()["f2"]


def main() -> None:
    n_images, n_ships = (1_600, 500) if quick() else (15_606, 5_000)
    with tempfile.TemporaryDirectory() as tmp:
        sub_path, truth_path = make_csvs(n_images, n_ships, Path(tmp))
        result = {}
        seconds = median_seconds(lambda: result.setdefault("r", score_submission(sub_path, truth_path)),
                                 repeats=3 if quick() else 5)
        f2 = result["r"].f2
        # The dense baseline on the images with ships or predictions (where the work is), extrapolated.
        per = result["r"].per_image
        busy = per[(per.true_ships > 0) | (per.pred_ships > 0)]["ImageId"].tolist()
        sample = busy[: 40 if quick() else 150]
        start = time.perf_counter()
        dense_score(sub_path, truth_path, sample)
        dense_per_busy_image = (time.perf_counter() - start) / len(sample)
        dense_total = dense_per_busy_image * len(busy)
    report(f"score_{n_images}_images_{n_ships}_ships", seconds, "s")
    report("score_f2_of_benchmark_submission", f2, "f2")
    report("score_dense_masks_extrapolated", dense_total, "s")
    report("score_speedup_vs_dense_masks", dense_total / seconds, "x")


if __name__ == "__main__":
    main()
