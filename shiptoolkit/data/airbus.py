"""The Kaggle Airbus dataset: a lazy index of image ids -> ship RLEs, and safe image reading.

Layout (as Kaggle ships it, and as `shiptoolkit synth` writes it):

    ROOT/train_ship_segmentations_v2.csv   ImageId,EncodedPixels  (one row per ship;
                                            one row with empty EncodedPixels for an empty image)
    ROOT/train_v2/<ImageId>.jpg             768x768 RGB JPGs

Nothing is decoded up front: the index keeps each image's RLE strings and decodes on request.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from shiptoolkit.data import image_formats
from shiptoolkit.data.instances import seam_pixels
from shiptoolkit.data.rle import SHAPE, parse_many, parse_rle, rles_to_labels, rles_to_mask
from shiptoolkit.errors import DataError

CSV_NAME = "train_ship_segmentations_v2.csv"
IMAGES_DIR = "train_v2"
OnError = Literal["raise", "skip"]
PARSE_CHUNK = 8192  # RLE strings parsed in one vectorised pass by `validate`: bounds its memory (~30 MB)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the dataset, kept so nothing is dropped silently."""

    image_id: str
    kind: str  # "unsafe_id", "bad_rle", "missing_image", "corrupt_image", "duplicate_row"
    message: str


@dataclass(frozen=True)
class ImageRecord:
    """One image and its ships' RLE strings (empty tuple: no ship)."""

    image_id: str
    rles: tuple[str, ...]

    @property
    def has_ships(self) -> bool:
        return bool(self.rles)

    @property
    def n_ships(self) -> int:
        return len(self.rles)


@dataclass
class AirbusIndex:
    """Image ids -> ship instances, plus where to read the images.

    Args:
        records: one `ImageRecord` per image, in CSV order.
        image_dir: folder holding `<ImageId>` files.
        shape: (height, width) of every image and mask.
        on_error: "raise" (default) stops at the first problem with a clear error; "skip"
            leaves out what is broken, warns, and records it in `problems`.
        seams: `mask()` marks ship pixels on a seam between touching ships with 2 (training a
            model's boundary channel, `train.seam_channel`); otherwise masks are 0/1.
    """

    records: list[ImageRecord]
    image_dir: Path
    shape: tuple[int, int] = SHAPE
    on_error: OnError = "raise"
    problems: list[Problem] = field(default_factory=list)
    seams: bool = False

    def __post_init__(self) -> None:
        if self.on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip'. Received: on_error={self.on_error!r}")
        self.image_dir = Path(self.image_dir)
        self._by_id = {r.image_id: r for r in self.records}

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_kaggle(cls, root: str | Path, csv: str = CSV_NAME, images: str = IMAGES_DIR,
                    on_error: OnError = "raise", shape: tuple[int, int] = SHAPE) -> AirbusIndex:
        """Index a folder in the Kaggle layout (CSV + image folder)."""
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"Dataset folder {str(root)!r} does not exist. Create a synthetic one "
                            f"with `shiptoolkit synth {root}` or point data.path at the Kaggle data.")
        return cls.from_csv(root / csv, root / images, on_error=on_error, shape=shape)

    @classmethod
    def from_csv(cls, csv_path: str | Path, image_dir: str | Path,
                 on_error: OnError = "raise", shape: tuple[int, int] = SHAPE) -> AirbusIndex:
        """Read `ImageId,EncodedPixels` rows; one image may have many rows (one per ship)."""
        import pandas as pd

        csv_path = Path(csv_path)
        if not csv_path.is_file():
            raise DataError(f"Segmentation CSV {str(csv_path)!r} not found.")
        try:
            frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
        except Exception as exc:
            raise DataError(f"Could not read {str(csv_path)!r} as CSV: {exc}") from exc
        missing = {"ImageId", "EncodedPixels"} - set(frame.columns)
        if missing:
            raise DataError(f"{str(csv_path)!r} lacks column(s) {sorted(missing)}; expected "
                            f"ImageId,EncodedPixels. Found: {list(frame.columns)}")
        index = cls.from_rows(zip(frame["ImageId"].tolist(), frame["EncodedPixels"].tolist(),
                                  strict=True), image_dir, on_error=on_error, shape=shape)
        return index

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str]], image_dir: str | Path,
                  on_error: OnError = "raise", shape: tuple[int, int] = SHAPE) -> AirbusIndex:
        """Build from `(image_id, rle)` pairs; validates ids, not yet the RLEs (see `validate`)."""
        grouped: dict[str, list[str]] = {}
        problems: list[Problem] = []
        for image_id, rle in rows:
            image_id = str(image_id).strip()
            reason = unsafe_id_reason(image_id)
            if reason:
                problem = Problem(image_id, "unsafe_id", f"ImageId {image_id!r} {reason}.")
                _handle(problem, on_error, problems)
                continue
            ships = grouped.setdefault(image_id, [])
            rle = str(rle).strip()
            if not rle:
                continue
            if rle in ships:
                problems.append(Problem(image_id, "duplicate_row",
                                        f"ImageId {image_id!r} lists the same ship twice; kept once."))
                continue
            ships.append(rle)
        records = [ImageRecord(i, tuple(r)) for i, r in grouped.items()]
        index = cls(records, Path(image_dir), shape, on_error)
        index.problems.extend(problems)
        _warn_skipped(problems)
        return index

    # -- access -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[ImageRecord]:
        return iter(self.records)

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._by_id

    def __getitem__(self, image_id: str) -> ImageRecord:
        try:
            return self._by_id[image_id]
        except KeyError:
            raise DataError(f"ImageId {image_id!r} is not in this dataset.") from None

    @property
    def image_ids(self) -> list[str]:
        return [r.image_id for r in self.records]

    @property
    def ship_ids(self) -> list[str]:
        return [r.image_id for r in self.records if r.has_ships]

    @property
    def empty_ids(self) -> list[str]:
        return [r.image_id for r in self.records if not r.has_ships]

    def subset(self, image_ids: Iterable[str]) -> AirbusIndex:
        """A new index with only `image_ids` (same image folder, shape and error policy)."""
        return AirbusIndex([self[i] for i in image_ids], self.image_dir, self.shape, self.on_error, seams=self.seams)

    def image_path(self, image_id: str) -> Path:
        return self.image_dir / image_id

    # -- decoding -----------------------------------------------------------------------
    def mask(self, image_id: str) -> np.ndarray:
        """Union of the image's ships as a (H, W) uint8 0/1 mask (2 on seams when `seams` is on)."""
        if self.seams and len(self[image_id].rles) > 1:

            labels = self.labels(image_id)
            return (labels > 0).astype(np.uint8) + seam_pixels(labels).astype(np.uint8)
        return self._decode(image_id, rles_to_mask)

    def labels(self, image_id: str) -> np.ndarray:
        """Instance labels (H, W) int32: ship i of the CSV is label i (1-based)."""
        return self._decode(image_id, rles_to_labels)

    def _decode(self, image_id: str, decode):
        try:
            return decode(self[image_id].rles, self.shape)
        except DataError as exc:
            raise DataError(f"ImageId {image_id!r}: {exc}") from None

    def read_image(self, image_id: str) -> np.ndarray:
        """The image as (H, W, 3) uint8 RGB; missing or corrupt files raise `DataError`."""
        return read_rgb(self.image_path(image_id), self.shape)

    def validate(self, check_images: bool = True, check_files: bool = True) -> list[Problem]:
        """Parse every RLE (and optionally open every image); return the problems found.

        With on_error="raise" the first problem raises; with "skip" the broken images are
        dropped from the index and every problem is recorded in `problems`. `check_files` only
        looks the files up in one listing of the folder (cheap): a missing image is found now,
        not when (or whether) a sampler happens to draw it.
        """
        found: list[Problem] = []
        keep: list[ImageRecord] = []
        present = self._listed_files() if check_files and not check_images else None
        bad_rles = self._rle_problems()
        for record in self.records:
            problem = bad_rles.get(record.image_id)
            if problem is None and present is not None and record.image_id not in present:
                path = self.image_path(record.image_id)
                problem = Problem(record.image_id, "missing_image", f"Image file {str(path)!r} not found.")
            if problem is None and check_images:
                problem = self._image_problem(record.image_id)
            if problem is None:
                keep.append(record)
            else:
                _handle(problem, self.on_error, found)
        self.records = keep
        self._by_id = {r.image_id: r for r in keep}
        self.problems.extend(found)
        _warn_skipped(found)
        return found

    def _rle_problems(self) -> dict[str, Problem]:
        """image id -> its "bad_rle" problem, for the images whose RLEs do not parse.

        Every RLE of the index is parsed in one vectorised pass (Kaggle's 81,723 ships: under a
        second, where one `parse_rle` call per ship took ~2 s); only when that pass finds
        something wrong are the images parsed one by one, to name every broken one.
        """
        rles = [rle for record in self.records for rle in record.rles]
        try:
            for a in range(0, len(rles), PARSE_CHUNK):
                parse_many(rles[a:a + PARSE_CHUNK], self.shape)
            return {}
        except DataError:
            pass
        problems = {}
        for record in self.records:
            try:
                for rle in record.rles:
                    parse_rle(rle, self.shape)
            except DataError as exc:
                problems[record.image_id] = Problem(record.image_id, "bad_rle", f"ImageId {record.image_id!r}: {exc}")
        return problems

    def _listed_files(self) -> set[str]:
        try:
            return {entry.name for entry in os.scandir(self.image_dir)}
        except FileNotFoundError:
            raise DataError(f"Image folder {str(self.image_dir)!r} does not exist (data.images names it inside "
                            "data.path).") from None

    def _image_problem(self, image_id: str) -> Problem | None:
        path = self.image_path(image_id)
        if not path.is_file():
            return Problem(image_id, "missing_image", f"Image file {str(path)!r} not found.")
        try:
            read_rgb(path, self.shape)
        except DataError as exc:
            return Problem(image_id, "corrupt_image", str(exc))
        return None


def read_rgb(path: Path, shape: tuple[int, int] | None = SHAPE) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB, checking it exists, decodes and fits `shape`.

    A grey, alpha or 16-bit file is converted (see `shiptoolkit.data.image_formats`), with a warning."""
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"Image file {str(path)!r} not found.") from None
    except OSError as exc:
        raise DataError(f"Image file {str(path)!r} could not be read: {exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DataError(f"Image file {str(path)!r} is not a readable image (corrupt or empty).")
    image_formats.note(path, data)  # grey, alpha, 16-bit: converted above by IMREAD_COLOR, but said
    if shape is not None and image.shape[:2] != tuple(shape):
        raise DataError(f"Image file {str(path)!r} is {image.shape[1]}x{image.shape[0]}; "
                        f"expected {shape[1]}x{shape[0]} like its masks.")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def unsafe_id_reason(image_id: str) -> str | None:
    """Why an ImageId is unsafe to join to a folder (None if it is fine)."""
    if not image_id:
        return "is empty"
    if ".." in image_id:
        return "contains '..'"
    if "/" in image_id or "\\" in image_id:
        return "contains a path separator"
    if image_id.startswith("."):
        return "starts with '.'"
    return None


def _handle(problem: Problem, on_error: OnError, found: list[Problem]) -> None:
    if on_error == "raise":
        raise DataError(f"{problem.message} (Set data.on_error = \"skip\" to skip such images; they are "
                        "listed in the run directory's skipped.csv.)")
    found.append(problem)


def _warn_skipped(problems: list[Problem]) -> None:
    skipped = Counter(p.kind for p in problems if p.kind != "duplicate_row")
    if skipped:
        detail = ", ".join(f"{n} {kind}" for kind, n in sorted(skipped.items()))
        warnings.warn(f"Skipped {sum(skipped.values())} image(s): {detail}.", stacklevel=3)
