"""Merging the parts of a sharded prediction into one submission, refusing anything but a clean whole.

A merged submission must hold every image exactly once, with valid run-length codes and ships
that share no pixel. Each part's shard description (`shiptoolkit.inference.sharding`) proves that no
shard is missing and that all parts come from predict runs over the same images; without
descriptions, `expected` (the images of a folder) proves completeness instead.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shiptoolkit.data.rle import SHAPE, parse_many
from shiptoolkit.errors import DataError, ShiptoolkitError
from shiptoolkit.inference.sharding import file_digest, image_list_digest, read_sidecar, shard_of, sidecar_path
from shiptoolkit.inference.submission import SubmissionWriter

HEADER = ["ImageId", "EncodedPixels"]
NAMED = 5  # images named in a message about many


@dataclass
class Part:
    """One part's rows: each image's ship RLEs (empty list: no ships) and the CSV lines they came from."""

    path: Path
    ships: dict[str, list[str]] = field(default_factory=dict)
    lines: dict[str, list[int]] = field(default_factory=dict)
    sidecar: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class MergeSummary:
    path: Path
    parts: int
    images: int
    images_with_ships: int
    ships: int
    completeness: str  # what proved that no image is missing


def _some(ids: Collection[str]) -> str:
    shown = sorted(ids)[:NAMED]
    return ", ".join(shown) + (f" and {len(ids) - NAMED} more" if len(ids) > NAMED else "")


def read_part(path: str | Path) -> Part:
    """A part's rows, grouped by image, with the layout checked (RLEs are checked by `check_rles`).

    Raises:
        DataError: no ImageId,EncodedPixels header, a row without two fields or without an
            ImageId, or an image listed twice without ships (or both with and without ships).
    """
    part = Part(Path(path))
    with open(path, newline="") as file:
        rows = csv.reader(file)
        header = [cell.strip().lstrip("\ufeff") for cell in next(rows, [])]
        if header != HEADER:
            raise DataError(f"{part.name}: line 1 is {','.join(header)!r}; a submission starts with the header "
                            "ImageId,EncodedPixels.")
        for row in rows:
            if not row:
                continue  # a blank line
            line = rows.line_num
            if len(row) != 2 or not row[0].strip():
                raise DataError(f"{part.name} line {line}: {','.join(row)!r} is not 'ImageId,EncodedPixels' "
                                "(an ImageId, a comma, and the ship's RLE or nothing).")
            image_id, rle = row[0].strip(), row[1].strip()
            if image_id in part.lines and (not rle or not part.ships[image_id]):  # no ships: one row
                raise DataError(f"{part.name}: image {image_id!r} has an empty row and another row (lines "
                                f"{part.lines[image_id][0]} and {line}); an image without ships has one empty "
                                "row, an image with ships one row per ship.")
            part.ships.setdefault(image_id, []).extend([rle] if rle else [])
            part.lines.setdefault(image_id, []).append(line)
    part.sidecar = read_sidecar(path)
    return part


def check_rles(part: Part, shape: tuple[int, int]) -> None:
    """Every RLE valid for a `shape` image, and no two ships of an image sharing a pixel.

    Raises:
        DataError: naming the file, the line(s) and the image.
    """
    rows = [(image_id, rle, line) for image_id, rles in part.ships.items() if rles
            for rle, line in zip(rles, part.lines[image_id], strict=True)]
    try:
        starts, lengths, owner = parse_many([rle for _, rle, _ in rows], shape)
    except DataError as exc:
        image_id, _, line = rows[exc.row]
        raise DataError(f"{part.name} line {line} (ImageId {image_id!r}): {exc.detail}") from None
    image_of_row = np.array([k for k, rles in enumerate(part.ships.values()) for _ in rles], np.int64)
    # One axis for all images: a run of image k starts at k * pixels + start, so runs of different
    # images never meet, and sorting by start puts each image's runs side by side.
    pixels = shape[0] * shape[1]
    offset = image_of_row[owner] * pixels if owner.size else np.empty(0, np.int64)
    order = np.argsort(starts + offset, kind="stable")
    first, last = (starts + offset)[order], (starts + lengths + offset)[order]
    reach = np.maximum.accumulate(last)
    clash = np.flatnonzero(first[1:] < reach[:-1])
    if clash.size:  # runs of one row are disjoint (parse_many), so the two runs are of two ships
        k = int(clash[0]) + 1
        earlier = int(np.flatnonzero(last[:k] > first[k])[0])
        a, b = sorted((int(owner[order[earlier]]), int(owner[order[k]])))
        image_id = rows[a][0]
        raise DataError(f"{part.name}: two ships of image {image_id!r} overlap (lines {rows[a][2]} and {rows[b][2]} "
                        f"share pixel {int(first[k] % pixels) + 1}); each pixel may belong to one ship only.")


def merge_submissions(paths: Sequence[str | Path], out: str | Path, overwrite: bool = False,
                      expected: Collection[str] | None = None, expected_source: str = "",
                      size: int | None = None) -> MergeSummary:
    """Merge parts into one submission at `out` (written atomically, images sorted by ImageId).

    Args:
        paths: the parts (submission CSVs, each with its shard description when it has one).
        out: the merged submission; an existing file only with `overwrite`, never one of `paths`.
        overwrite: replace an existing `out`.
        expected: every ImageId that must be in exactly one part (e.g. a folder's images); needed
            when some part has no shard description.
        expected_source: where `expected` comes from, for messages.
        size: the images' side in pixels, for the RLE checks (default: the shard descriptions'
            image size, else 768).

    Raises:
        DataError: an image in two parts, a shard missing or given twice, parts of different
            splits or image lists, an image in the wrong shard, a part changed since it was
            predicted, malformed RLE, ships that overlap, or images missing from or foreign to
            `expected`.
        ShiptoolkitError: `out` is one of the parts, or exists without `overwrite`.
    """
    out = Path(out)
    if any(out.resolve() == Path(p).resolve() for p in paths):
        raise ShiptoolkitError(f"--out {str(out)!r} is one of the parts; choose another file name.")
    SubmissionWriter(out, overwrite)  # refuses an existing file before any part is read
    parts = [read_part(p) for p in paths]
    shape = _shape(parts, size)
    for part in parts:
        check_rles(part, shape)
        if part.sidecar is not None:
            _check_part_against_sidecar(part)
    undescribed = [p.name for p in parts if p.sidecar is None]
    if not undescribed:
        _check_one_split(parts)
    elif expected is None:
        raise DataError(f"{undescribed[0]} has no shard description {sidecar_path(undescribed[0]).name!r} (written "
                        "by `shiptoolkit predict --shard`), so nothing proves that no image is missing: pass "
                        "--images FOLDER to check that every image of the folder is in exactly one part.")
    owners = _owners(parts)
    completeness = [] if undescribed else [_check_covered(parts[0], owners)]
    if expected is not None:
        completeness.append(_check_expected(owners, set(expected), expected_source))
    with SubmissionWriter(out, overwrite) as writer:
        for image_id in sorted(owners):
            writer.write_rles(image_id, owners[image_id].ships[image_id])
    return MergeSummary(out, len(parts), writer.images, writer.with_ships, writer.ships, "; ".join(completeness))


def _shape(parts: list[Part], size: int | None) -> tuple[int, int]:
    sizes = {p.sidecar["image_size"]: p.name for p in parts if p.sidecar is not None}
    if size is None and len(sizes) > 1:
        (a, first), (b, second) = list(sizes.items())[:2]
        raise DataError(f"{first} was predicted on {a} px images but {second} on {b} px ones: merge parts "
                        "predicted with the same data.image_size.")
    side = size or next(iter(sizes), SHAPE[0])
    return int(side), int(side)


def _owners(parts: list[Part]) -> dict[str, Part]:
    """{image id: the part that holds it}; an image in two parts is refused."""
    owners: dict[str, Part] = {}
    for part in parts:
        for image_id in part.ships:
            other = owners.setdefault(image_id, part)
            if other is not part:
                raise DataError(f"image {image_id!r} is in two parts: {other.name} (line "
                                f"{other.lines[image_id][0]}) and {part.name} (line {part.lines[image_id][0]}); "
                                "each image must be in exactly one. Was a part given twice, or do two parts "
                                "come from different splits?")
    return owners


def _check_part_against_sidecar(part: Part) -> None:
    """The part holds only images of its shard and is the very file its description describes."""
    info, described = part.sidecar, sidecar_path(part.path).name
    shard = f"{info['shard']}/{info['of']}"
    stray = [i for i in part.ships if shard_of(i, int(info["of"])) != int(info["shard"])]
    if stray:
        belongs = shard_of(stray[0], int(info["of"]))
        raise DataError(f"{part.name}: image {stray[0]!r} (line {part.lines[stray[0]][0]}) belongs to shard "
                        f"{belongs}/{info['of']}, not to shard {shard} as {described!r} says ({len(stray)} such "
                        "image(s)). Is the description beside the wrong CSV? Keep each part with its own "
                        ".shard.json.")
    if file_digest(part.path) != info["submission_sha256"]:
        raise DataError(f"{part.name} was changed after `shiptoolkit predict --shard {shard}` wrote it (its "
                        f"checksum differs from the one in {described!r}). Rerun that shard's predict.")


def _check_one_split(parts: list[Part]) -> None:
    """Every shard 1..N present once, all from predict runs over the same images."""
    first = parts[0]
    for part in parts[1:]:
        a, b = first.sidecar, part.sidecar
        if a["of"] != b["of"]:
            raise DataError(f"{first.name} is shard {a['shard']}/{a['of']} but {part.name} is shard "
                            f"{b['shard']}/{b['of']}: merge the parts of one split (the same --shard I/N's N).")
        if a["image_list_sha256"] != b["image_list_sha256"]:
            raise DataError(f"{first.name} and {part.name} come from predict runs over different images "
                            f"({a['total_images']} and {b['total_images']} images, different ImageIds): predict "
                            "every shard with the same --images and predict.max_images.")
    count = int(first.sidecar["of"])
    given: dict[int, Part] = {}
    for part in parts:
        index = int(part.sidecar["shard"])
        if index in given:
            raise DataError(f"shard {index}/{count} is given twice: {given[index].name} and {part.name}.")
        given[index] = part
    missing = [i for i in range(1, count + 1) if i not in given]
    if missing:
        raise DataError(f"shard {missing[0]}/{count} is missing ({len(missing)} of {count} shards missing; given: "
                        f"{', '.join(f'{i}/{count}' for i in sorted(given))}): predict it with --shard "
                        f"{missing[0]}/{count} and pass its CSV too.")


def _check_covered(part: Part, owners: dict[str, Part]) -> str:
    """The parts together hold exactly the images their predict runs saw."""
    info = part.sidecar
    if image_list_digest(owners) != info["image_list_sha256"]:
        raise DataError(f"the parts hold {len(owners)} images, but their predict runs saw {info['total_images']} "
                        "(other ImageIds): a part lost or gained images.")
    return f"all {info['of']} shard(s) of the {len(owners)} images predicted"


def _check_expected(owners: dict[str, Part], expected: set[str], source: str) -> str:
    source = source or "the expected images"
    missing, foreign = expected - owners.keys(), owners.keys() - expected
    if missing:
        raise DataError(f"{len(missing)} image(s) of {source} are in no part: {_some(missing)}.")
    if foreign:
        image_id = sorted(foreign)[0]
        raise DataError(f"{len(foreign)} image(s) of the parts are not among {source}: {_some(foreign)} (e.g. "
                        f"{image_id!r} in {owners[image_id].name}).")
    return f"every image of {source} once"
