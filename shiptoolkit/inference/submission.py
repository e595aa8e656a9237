"""The Kaggle submission: `ImageId,EncodedPixels`, one row per ship, an empty row for an empty image."""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shiptoolkit.data.instances import instances_to_rles
from shiptoolkit.errors import ShiptoolkitError


@dataclass(frozen=True)
class SubmissionSummary:
    path: Path
    images: int
    images_with_ships: int
    ships: int
    seconds: float


class SubmissionWriter:
    """Writes rows as predictions arrive: `with SubmissionWriter(path) as w: w.write(image_id, labels)`.

    Every image gets at least one row; ships come from a label image, so they never overlap.
    An existing file is an error unless `overwrite=True` (the CLI's `--overwrite`). Rows stream
    into a temporary file beside `path`, renamed to `path` only when the block ends without an
    error: a failed prediction leaves no half-written submission behind (nor blocks the rerun).
    """

    def __init__(self, path: str | Path, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self._refuse_existing()
        self.images = self.with_ships = self.ships = 0

    def _refuse_existing(self) -> None:
        if self.path.exists() and not self.overwrite:
            raise ShiptoolkitError(f"{str(self.path)!r} exists; choose another --out, or pass --overwrite to "
                                   "replace it (Python: overwrite=True).")

    def __enter__(self) -> SubmissionWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._start = time.perf_counter()
        # Beside the target, so the final rename stays on one file system (atomic); a plain open()
        # (not mkstemp, which makes 0600 files) gives the submission the usual permissions.
        self._temp = self.path.with_name(f".{self.path.name}.{os.getpid()}-{id(self):x}.part")
        self._file = self._temp.open("w", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(["ImageId", "EncodedPixels"])
        return self

    def write(self, image_id: str, labels: np.ndarray | None) -> None:
        self.write_rles(image_id, instances_to_rles(labels) if labels is not None else [])

    def write_rles(self, image_id: str, rles: list[str]) -> None:
        """One image's rows from its ships' RLE strings (checked by the caller: they must not overlap)."""
        self.images += 1
        self.with_ships += bool(rles)
        self.ships += len(rles)
        self._csv.writerows([(image_id, rle) for rle in rles] or [(image_id, "")])

    def __exit__(self, exc_type, *exc) -> None:
        self._file.close()
        try:
            if exc_type is None:
                self._refuse_existing()  # written meanwhile by someone else: keep theirs
                os.replace(self._temp, self.path)
        finally:
            self._temp.unlink(missing_ok=True)
        if exc_type is None:
            self.summary = SubmissionSummary(self.path, self.images, self.with_ships, self.ships,
                                             round(time.perf_counter() - self._start, 2))


def write_submission(rows: Iterable[tuple[str, np.ndarray | None]], path: str | Path,
                     overwrite: bool = False) -> SubmissionSummary:
    """Stream (image id, label image or None) rows into a submission CSV (see `SubmissionWriter`)."""
    with SubmissionWriter(path, overwrite) as writer:
        for image_id, labels in rows:
            writer.write(image_id, labels)
    return writer.summary


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
