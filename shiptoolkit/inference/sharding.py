"""Sharded prediction: the images of one predict run split into n disjoint parts, one per machine.

An image's shard follows from a SHA-256 hash of its ImageId alone (Python's `hash()` is salted
per process), so every rerun and every machine puts it in the same shard, without talking to
each other. Shards are numbered from 1: `--shard 1/3`, `2/3`, `3/3`.

Each part is a plain Kaggle submission CSV plus a small JSON beside it (`part.csv` ->
`part.shard.json`) that says which part it is and of what: the shard, the number of shards,
how many images the whole run saw and a digest of their ImageIds, the image size and a digest
of the CSV itself. `shiptoolkit submission merge` (`shiptoolkit.inference.merging`) uses it to prove that
the parts are complete and belong together.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from shiptoolkit.errors import ConfigError, DataError
from shiptoolkit.jsonfiles import read_json

FORMAT = 1  # version of the sidecar's layout
ASSIGNMENT = "sha256(ImageId) mod N"  # recorded in the sidecar: how images were assigned
SIDECAR_SUFFIX = ".shard.json"
# The sidecar's keys that merging uses, and what each holds (see `shiptoolkit.rundir.read_json`).
SIDECAR_JSON = {"shard": "size", "of": "size", "images": "count", "total_images": "count",
                "image_list_sha256": "text", "image_size": "size", "submission_sha256": "text"}

Item = TypeVar("Item")


@dataclass(frozen=True)
class Shard:
    """Part `index` (1-based) of `count` disjoint parts of a predict run's images."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ConfigError(f"shard '{self.index}/{self.count}': the number of shards N must be at least 1, "
                              "e.g. 1/3.")
        if not 1 <= self.index <= self.count:
            raise ConfigError(f"shard '{self.index}/{self.count}': I must be between 1 and {self.count} "
                              f"(shards are numbered from 1), e.g. 1/{self.count}.")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, image_id: str) -> bool:
        return shard_of(image_id, self.count) == self.index

    def select(self, items: Iterable[Item]) -> list[Item]:
        """The (image id, ...) items of this shard, in their order."""
        return [item for item in items if self.holds(item[0])]


def parse_shard(text: str | Shard) -> Shard:
    """'I/N' (shard I of N, numbered from 1) as a `Shard`.

    Raises:
        ConfigError: not of the form I/N, N below 1, or I outside 1..N; the message names the value.
    """
    if isinstance(text, Shard):
        return text
    match = re.fullmatch(r"\s*(-?[0-9]+)\s*/\s*(-?[0-9]+)\s*", str(text))
    if match is None:
        raise ConfigError(f"shard {str(text)!r} is not of the form I/N (shard I of N, numbered from 1), e.g. 1/3.")
    return Shard(int(match[1]), int(match[2]))


def shard_of(image_id: str, count: int) -> int:
    """The shard (1..count) that holds `image_id`: the same on every machine and in every run."""
    digest = hashlib.sha256(image_id.encode("utf-8")).digest()
    return 1 + int.from_bytes(digest[:8], "big") % count


def image_list_digest(image_ids: Iterable[str]) -> str:
    """SHA-256 of the sorted ImageIds, one per line: equal digests mean the same set of images."""
    return hashlib.sha256("\n".join(sorted(image_ids)).encode("utf-8")).hexdigest()


def file_digest(path: str | Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def sidecar_path(submission: str | Path) -> Path:
    """Where the shard description of a part lives: `part.csv` -> `part.shard.json`."""
    submission = Path(submission)
    return submission.with_name(submission.stem + SIDECAR_SUFFIX)


def check_sidecar_free(submission: str | Path) -> None:
    """Refuse when the sidecar's place holds a file that is not a shard description (a user's file).

    Raises:
        DataError: naming the file, before anything is predicted or written.
    """
    path = sidecar_path(submission)
    if not path.exists() and not path.is_symlink():
        return
    try:
        info = json.loads(path.read_text()) if path.is_file() and not path.is_symlink() else None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        info = None
    if not (isinstance(info, dict) and "shiptoolkit_shard" in info):
        raise DataError(f"{path} exists and is not a shard description written by `shiptoolkit predict --shard`, "
                        f"but the shard description of {Path(submission).name!r} goes there: move that file away, or "
                        "choose another --out. Nothing was written.")


def write_sidecar(submission: str | Path, shard: Shard, part_ids: Sequence[str], all_ids: Sequence[str],
                  image_size: int, source: str = "") -> Path:
    """Describe the part `submission` (already written) in its sidecar, atomically; returns its path."""
    path = sidecar_path(submission)
    info = {"shiptoolkit_shard": FORMAT, "shard": shard.index, "of": shard.count, "assignment": ASSIGNMENT,
            "images": len(part_ids), "total_images": len(all_ids), "image_list_sha256": image_list_digest(all_ids),
            "image_size": image_size, "source": source, "submission_sha256": file_digest(submission)}
    temp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        temp.write_text(json.dumps(info, indent=2) + "\n")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def read_sidecar(submission: str | Path) -> dict[str, Any] | None:
    """The shard description beside a part; None when there is none.

    Raises:
        DataError: the file is not a shard description (not JSON, or keys missing).
    """
    path = sidecar_path(submission)
    if not path.is_file():
        return None
    fix = (f"It should be the shard description that `shiptoolkit predict --shard` wrote beside "
           f"{Path(submission).name!r}: rerun that shard's predict, or delete the file and merge with --images "
           "FOLDER instead.")
    info = read_json(path, SIDECAR_JSON, fix, DataError)
    if info["shard"] > info["of"]:
        raise DataError(f"{path} is damaged: its 'shard' {info['shard']} is above its 'of' {info['of']} (shards "
                        f"are numbered 1..of). {fix}")
    return info
