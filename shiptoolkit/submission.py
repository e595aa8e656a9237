"""The Kaggle submission: `ImageId,EncodedPixels`, one row per ship, an empty row for an empty image."""

from __future__ import annotations

import csv
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shiptoolkit.errors import ShiptoolkitError
from shiptoolkit.instances import instances_to_rles


@dataclass(frozen=True)
class SubmissionSummary:
    path: Path
    images: int
    images_with_ships: int
    ships: int
    seconds: float


def write_submission(rows: Iterable[tuple[str, np.ndarray | None]], path: str | Path,
                     overwrite: bool = False) -> SubmissionSummary:
    """Stream (image id, label image or None) rows into a submission CSV.

    Every image gets at least one row; ships come from a label image, so they never overlap.
    An existing file is an error unless `overwrite=True`.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise ShiptoolkitError(f"{str(path)!r} exists; choose another --out (or pass overwrite=True).")
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    images = with_ships = ships = 0
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["ImageId", "EncodedPixels"])
        for image_id, labels in rows:
            rles = instances_to_rles(labels) if labels is not None else []
            images += 1
            with_ships += bool(rles)
            ships += len(rles)
            writer.writerows([(image_id, rle) for rle in rles] or [(image_id, "")])
    return SubmissionSummary(path, images, with_ships, ships, round(time.perf_counter() - start, 2))


def read_submission(path: str | Path) -> dict[str, list[str]]:
    """{image id: [ship RLE, ...]} from a submission CSV (empty list for an empty image)."""
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    out: dict[str, list[str]] = {}
    for image_id, rle in zip(frame["ImageId"], frame["EncodedPixels"], strict=True):
        out.setdefault(image_id, [])
        if rle.strip():
            out[image_id].append(rle.strip())
    return out
