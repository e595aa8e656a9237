"""Merging a Kaggle-size sharded submission (15,606 images, ~4,000 ships, 3 parts) with every check.

Baselines, measured in the same run: a plain concatenation (pandas, no check at all), and the
overlap check done the naive way, a dense 768x768 mask per ship image (on a subset, extrapolated).

    python benchmarks/merge.py [--quick]
"""

from __future__ import annotations

import csv
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import median_seconds, quick, report
from score import make_csvs

from shiptoolkit.data.rle import rle_decode
from shiptoolkit.inference.merging import merge_submissions
from shiptoolkit.inference.sharding import Shard, write_sidecar

SHARDS = 3


def split_into_parts(submission: Path, folder: Path) -> list[Path]:
    """The submission's rows as the parts `predict --shard i/3` would write, each with its description."""
    frame = pd.read_csv(submission, dtype=str, keep_default_na=False)
    all_ids = list(dict.fromkeys(frame["ImageId"]))
    paths = []
    for i in range(1, SHARDS + 1):
        shard = Shard(i, SHARDS)
        rows = shard.select(list(frame.itertuples(index=False, name=None)))
        path = folder / f"part-{i}.csv"
        with path.open("w", newline="") as file:
            csv.writer(file).writerows([("ImageId", "EncodedPixels"), *rows])
        write_sidecar(path, shard, list(dict.fromkeys(r[0] for r in rows)), all_ids, 768)
        paths.append(path)
    return paths


def concatenate(parts: list[Path], out: Path) -> None:
    frames = [pd.read_csv(p, dtype=str, keep_default_na=False) for p in parts]
    pd.concat(frames).sort_values("ImageId", kind="stable").to_csv(out, index=False)


def dense_overlap_check(parts: list[Path], limit: int) -> tuple[float, int]:
    """Seconds for `limit` ship images' dense-mask overlap check, and the number of ship images in all."""
    frame = pd.concat([pd.read_csv(p, dtype=str, keep_default_na=False) for p in parts])
    ships = frame[frame["EncodedPixels"] != ""].groupby("ImageId")["EncodedPixels"].apply(list)
    start = time.perf_counter()
    for rles in ships.iloc[:limit]:
        total = np.zeros((768, 768), np.uint8)
        for rle in rles:
            total += rle_decode(rle)
        assert total.max() <= 1
    return time.perf_counter() - start, len(ships)


def main() -> None:
    n_images, n_ships = (3000, 1000) if quick() else (15_606, 5000)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        submission, _ = make_csvs(n_images, n_ships, folder)
        parts = split_into_parts(submission, folder)
        repeats = 1 if quick() else 3
        merged = median_seconds(lambda: merge_submissions(parts, folder / "merged.csv", overwrite=True),
                                repeats=repeats)
        plain = median_seconds(lambda: concatenate(parts, folder / "concat.csv"), repeats=repeats)
        limit = 200 if quick() else 500
        subset, ship_images = dense_overlap_check(parts, limit)
        dense = subset / min(limit, ship_images) * ship_images
        same = (pd.read_csv(folder / "merged.csv", dtype=str, keep_default_na=False).sort_values(
            ["ImageId", "EncodedPixels"]).values == pd.read_csv(submission, dtype=str, keep_default_na=False)
            .sort_values(["ImageId", "EncodedPixels"]).values).all()
        assert same, "the merged submission differs from the unsharded one"
    report("merge_images", n_images, "images")
    report("merge_checked_seconds", merged, "s")
    report("concat_unchecked_seconds", plain, "s")
    report("merge_vs_concat_ratio", merged / plain, "x")
    report("dense_overlap_check_seconds_extrapolated", dense, "s")
    report("dense_check_vs_merge_ratio", dense / merged, "x")


if __name__ == "__main__":
    main()
