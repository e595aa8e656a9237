"""Score a submission CSV against a truth CSV with the competition metric (numpy only, fast).

Both CSVs are `ImageId,EncodedPixels`, one row per ship, one empty row for an image without
ships. All RLEs are parsed in one vectorised pass and each ship becomes a slice of one array of
pixel indices, so IoUs never need a 768x768 array.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shiptoolkit.data.rle import SHAPE, parse_many, runs_to_pixels
from shiptoolkit.data.tables import read_csv_columns
from shiptoolkit.errors import DataError
from shiptoolkit.scoring.competition import KAGGLE_EMPTY_PRIOR, F2Accumulator, iou_matrix


@dataclass
class ScoreResult:
    """The competition score, its all-empty baseline, a per-image table and what was wrong."""

    summary: dict[str, float]
    per_image: object  # pandas DataFrame: ImageId, f2, true_ships, pred_ships, tp/fp/fn at 0.5, empty
    problems: list[str] = field(default_factory=list)

    @property
    def f2(self) -> float:
        return self.summary["f2"]

    @property
    def f2_all_empty_baseline(self) -> float:
        return self.summary["f2_all_empty_baseline"]


class _Ships:
    """All ships of one CSV: image -> list of sorted pixel-index arrays (one per ship)."""

    def __init__(self, frame, which: str, shape: tuple[int, int]) -> None:
        ids = frame["ImageId"].tolist()
        rles = frame["EncodedPixels"].tolist()
        try:
            starts, lengths, owner = parse_many(rles, shape)
        except DataError as exc:
            row = exc.row  # set by parse_many
            raise DataError(f"{which} CSV line {row + 2} (ImageId {ids[row]!r}): {exc.detail}") from None
        pixels = runs_to_pixels(starts, lengths)
        pixel_owner = np.repeat(owner, lengths)
        # Ship (row) k's pixels are one contiguous slice of `pixels`, in row order.
        bounds = np.searchsorted(pixel_owner, np.arange(len(rles) + 1))
        self.by_image: dict[str, list[np.ndarray]] = {}
        for row, image_id in enumerate(ids):
            ships = self.by_image.setdefault(image_id, [])
            if bounds[row + 1] > bounds[row]:
                ships.append(pixels[bounds[row]:bounds[row + 1]])


def _read(source, which: str):

    frame = read_csv_columns(source, ("ImageId", "EncodedPixels"), which)
    frame["EncodedPixels"] = frame["EncodedPixels"].fillna("").astype(str).str.strip()
    frame["ImageId"] = frame["ImageId"].astype(str).str.strip()
    return frame


def score_submission(submission: str | Path | Any, truth: str | Path | Any, lenient: bool = False,
                     shape: tuple[int, int] = SHAPE, empty_prior: float = KAGGLE_EMPTY_PRIOR) -> ScoreResult:
    """Score `submission` against `truth` (paths or DataFrames); the mean over TRUTH's images.

    Args:
        submission: the predictions, in the competition format.
        truth: the ground truth, in the same format.
        lenient: report problems as warnings instead of errors: images missing from the
            submission score as empty predictions, extra images are ignored, overlapping pixels
            stay with the first ship that claims them, duplicate rows count once.
        shape: image (height, width).
        empty_prior: the fraction of empty images `f2_prior_weighted` is weighed to (Kaggle's by default).

    Raises:
        DataError: (unless lenient) missing or extra images, malformed RLE, overlapping ships
            within one image, duplicate rows. Malformed RLE is always an error.
    """
    sub, true = _read(submission, "submission"), _read(truth, "truth")
    problems: list[str] = []
    duplicated = sub.duplicated(["ImageId", "EncodedPixels"]) & (sub["EncodedPixels"] != "")
    if duplicated.any():
        first = sub[duplicated].iloc[0]
        problems.append(f"{int(duplicated.sum())} duplicate row(s) in the submission, e.g. ImageId {first.ImageId!r}.")
        sub = sub[~duplicated]
    true_ids, sub_ids = set(true["ImageId"]), set(sub["ImageId"])
    missing, extra = sorted(true_ids - sub_ids), sorted(sub_ids - true_ids)
    if missing:
        problems.append(f"{len(missing)} image(s) of the truth are missing from the submission, e.g. {missing[:3]}"
                        + (" (scored as empty predictions)." if lenient else "."))
    if extra:
        problems.append(f"{len(extra)} image(s) in the submission are not in the truth, e.g. {extra[:3]}"
                        + (" (ignored)." if lenient else "."))
    truth_ships = _Ships(true, "truth", shape)
    sub_ships = _Ships(sub, "submission", shape)
    accumulator = F2Accumulator(empty_prior=empty_prior)
    overlapping = []
    for image_id in truth_ships.by_image:
        pred = sub_ships.by_image.get(image_id, [])
        if len(pred) > 1:
            everything = np.concatenate(pred)
            if np.unique(everything).size < everything.size:
                overlapping.append(image_id)
                pred = _first_claim_wins(pred)
        accumulator.add(image_id, iou_matrix(truth_ships.by_image[image_id], pred))
    if overlapping:
        problems.append(f"{len(overlapping)} image(s) have overlapping predicted ships (the competition rejects "
                        f"them), e.g. {overlapping[:3]}" + (" (pixels kept by the first ship)." if lenient else "."))
    if problems and not lenient:
        raise DataError("Invalid submission:\n- " + "\n- ".join(problems) + "\n(--lenient scores it anyway.)")
    for problem in problems:
        warnings.warn(problem, stacklevel=2)
    import pandas as pd

    return ScoreResult(accumulator.summary(), pd.DataFrame(accumulator.rows), problems)


def _first_claim_wins(ships: list[np.ndarray]) -> list[np.ndarray]:
    claimed = np.empty(0, np.int64)
    out = []
    for pixels in ships:
        keep = pixels[~np.isin(pixels, claimed)]
        claimed = np.union1d(claimed, keep)
        if keep.size:
            out.append(keep)
    return out
