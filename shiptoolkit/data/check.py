"""`shiptoolkit data check`: a dataset's statistics and every problem in it, nothing dropped."""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shiptoolkit.data.airbus import CSV_NAME, IMAGES_DIR, AirbusIndex, Problem
from shiptoolkit.data.rle import parse_many, parse_rle, rles_to_mask
from shiptoolkit.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


@dataclass
class DatasetReport:
    """Statistics of a Kaggle-layout dataset and the problems found in it."""

    root: Path
    images: int = 0
    empty_images: int = 0
    ships: int = 0
    ships_per_image: dict[int, int] = field(default_factory=dict)
    ship_area: dict[str, float] = field(default_factory=dict)
    unlisted_files: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def empty_fraction(self) -> float:
        return self.empty_images / self.images if self.images else 0.0

    def problem_counts(self) -> dict[str, int]:
        counts = Counter(p.kind for p in self.problems)
        if self.unlisted_files:
            counts["unlisted_file"] = len(self.unlisted_files)
        return dict(sorted(counts.items()))

    @property
    def ok(self) -> bool:
        return not self.problem_counts()

    def to_dict(self) -> dict[str, Any]:
        examples: dict[str, list[str]] = defaultdict(list)
        for p in self.problems:
            if len(examples[p.kind]) < 5:
                examples[p.kind].append(p.message)
        if self.unlisted_files:
            examples["unlisted_file"] = [f"{f} is in the image folder but not in the CSV"
                                         for f in self.unlisted_files[:5]]
        return {"root": str(self.root), "images": self.images, "empty_images": self.empty_images,
                "empty_fraction": round(self.empty_fraction, 4), "ships": self.ships,
                "ships_per_image": {str(k): v for k, v in self.ships_per_image.items()},
                "ship_area": self.ship_area, "problems": self.problem_counts(),
                "problem_examples": dict(examples)}


def check_dataset(root: str | Path, csv: str = CSV_NAME, images: str = IMAGES_DIR, check_images: bool = True,
                  progress: bool = True, size: int = 768) -> DatasetReport:
    """Read a Kaggle-layout folder, validate every row and (optionally) every image, and summarise.

    Args:
        root: dataset folder.
        csv: segmentation CSV inside `root`.
        images: image folder inside `root`.
        check_images: open every image (slow on the full data: ~1 min per 10k images on 2 cores).
        progress: show a progress bar while checking images.
        size: expected image height and width.
    """
    root = Path(root)
    with warnings.catch_warnings():  # every problem goes into the report instead
        warnings.simplefilter("ignore")
        index = AirbusIndex.from_kaggle(root, csv, images, on_error="skip", shape=(size, size))
    report = DatasetReport(root=root, problems=list(index.problems))
    # RLEs of all ships in one vectorised pass; a bad row falls back to per-image checks.
    ships = [(r.image_id, rle) for r in index for rle in r.rles]
    bad_ids = set()
    try:
        runs = parse_many([rle for _, rle in ships], index.shape)
    except DataError:
        for image_id, problem in _bad_rle_rows(index):
            bad_ids.add(image_id)
            report.problems.append(problem)
        ships = [(i, rle) for i, rle in ships if i not in bad_ids]
        runs = parse_many([rle for _, rle in ships], index.shape)
    _, lengths, owner = runs
    areas = np.bincount(owner, weights=lengths, minlength=0) if owner.size else np.empty(0)
    report.problems.extend(_overlap_problems(index, ships, runs, root / csv))
    if check_images:
        report.problems.extend(_image_problems(index, progress))
    listed = set(index.image_ids)
    folder = root / images
    if folder.is_dir():
        report.unlisted_files = sorted(p.name for p in folder.iterdir()
                                       if p.suffix.lower() in IMAGE_SUFFIXES and p.name not in listed)
    counts = Counter(r.n_ships for r in index if r.image_id not in bad_ids)
    report.images = len(index) - len(bad_ids)
    report.empty_images = counts.get(0, 0)
    report.ships = int(areas.size)
    report.ships_per_image = dict(sorted(counts.items()))
    if areas.size:
        q = np.percentile(areas, [25, 50, 75])
        report.ship_area = {"min": float(areas.min()), "q25": float(q[0]), "median": float(q[1]),
                            "mean": round(float(areas.mean()), 1), "q75": float(q[2]), "max": float(areas.max())}
    return report


def _overlap_problems(index: AirbusIndex, ships: list[tuple[str, str]], runs, csv_path: Path) -> list[Problem]:
    """Two rows of one image covering the same pixels (the real data never has them: overlaps
    were set to background). Found in one sorted pass over all runs; pairs named per image."""
    starts, lengths, owner = runs
    if owner.size < 2:
        return []
    image_ids = [i for i, _ in ships]
    image_of_ship = np.unique(np.array(image_ids, dtype=object), return_inverse=True)[1] if ships else np.empty(0, int)
    key = image_of_ship[owner].astype(np.int64) * (index.shape[0] * index.shape[1]) + starts
    order = np.argsort(key, kind="stable")
    begin, end = key[order], key[order] + lengths[order]
    overlapping = np.flatnonzero(begin[1:] < np.maximum.accumulate(end)[:-1]) + 1
    if not overlapping.size:
        return []
    lines = _csv_lines(csv_path)
    problems = []
    for image_id in dict.fromkeys(image_ids[owner[order][k]] for k in overlapping):
        rles = index[image_id].rles
        masks = [rles_to_mask([rle], index.shape).astype(bool) for rle in rles]
        for a in range(len(rles)):
            for b in range(a + 1, len(rles)):
                shared = int(np.count_nonzero(masks[a] & masks[b]))
                if shared:
                    rows = f"CSV lines {lines.get((image_id, rles[a]), '?')} and {lines.get((image_id, rles[b]), '?')}"
                    problems.append(Problem(image_id, "overlapping_ships", (
                        f"ImageId {image_id!r}: {rows} (ships {a + 1} and {b + 1}) share {shared} pixel(s). Training "
                        "uses their union (those pixels count once, as ship); the metric sees two instances that "
                        "overlap. The real data never overlaps (shared pixels were set to background): fix the rows.")))
    return problems


def _csv_lines(csv_path: Path) -> dict[tuple[str, str], int]:
    """(ImageId, EncodedPixels) -> line number in the file (the header is line 1)."""
    import pandas as pd

    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    rows = zip(frame["ImageId"], frame["EncodedPixels"], strict=True)
    return {(i.strip(), r.strip()): n + 2 for n, (i, r) in enumerate(rows)}


def _bad_rle_rows(index: AirbusIndex):

    for record in index:
        for rle in record.rles:
            try:
                parse_rle(rle, index.shape)
            except DataError as exc:
                yield record.image_id, Problem(record.image_id, "bad_rle", f"ImageId {record.image_id!r}: {exc}")
                break


def _image_problems(index: AirbusIndex, progress: bool) -> list[Problem]:
    """Open every image in a thread pool (JPEG decoding releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    with ThreadPoolExecutor(max_workers=4) as pool:
        found = list(tqdm(pool.map(index._image_problem, index.image_ids), total=len(index),
                          desc="checking images", unit="img", disable=not progress))
    return [p for p in found if p is not None]
