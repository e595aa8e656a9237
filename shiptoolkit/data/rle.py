"""Run-length encoding in the Kaggle Airbus convention, vectorised with numpy.

The competition's RLE lists `start length` pairs where `start` is 1-indexed into the mask
flattened **column-major** (top to bottom, then left to right). The seed project got this
wrong twice: it decoded runs as polygon corners (losing edge pixels) and encoded row-major.

Ships as run intervals (`starts`, `lengths`, 0-indexed into the column-major flat mask) are
the cheap representation used by the metric: IoUs come from intervals, never full masks.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence

import numpy as np

from shiptoolkit.errors import DataError

SHAPE = (768, 768)
_NOT_A_DIGIT = re.compile(r"[^0-9\s]")  # an RLE holds ASCII digits and whitespace only


def parse_rle(rle: str | float | None, shape: tuple[int, int] = SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """Parse one RLE string into validated 0-indexed `(starts, lengths)` int64 arrays.

    An empty string, None or NaN (pandas' empty cell) is an empty mask.

    Raises:
        DataError: non-numeric values, an odd count, non-positive starts or lengths, runs past
            the end of the image, or runs that overlap or are out of order.
    """
    if rle is None or (isinstance(rle, float) and np.isnan(rle)):
        return np.empty(0, np.int64), np.empty(0, np.int64)
    text = str(rle).strip()
    if not text:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    parts = text.split()
    if _NOT_A_DIGIT.search(text):  # int() would also read '１００', '1_00', '+5', '٣'
        bad = next(p for p in parts if not (p.isascii() and p.isdigit()))
        raise DataError(f"RLE has a non-integer value {bad!r}; only the ASCII digits 0-9 make a number: "
                        f"expected 'start length' pairs of positive integers. RLE starts: {text[:60]!r}")
    values = _to_int64(parts, shape, text)
    if values.size % 2:
        raise DataError(f"RLE has an odd number of values ({values.size}); expected 'start "
                        f"length' pairs. RLE starts: {text[:60]!r}")
    starts, lengths = values[0::2] - 1, values[1::2]
    _validate_runs(starts, lengths, shape, text)
    return starts, lengths


def _to_int64(parts: list[str], shape: tuple[int, int], text: str) -> np.ndarray:
    """ASCII-digit tokens as int64, refusing any beyond the image's pixel count (no int64 wrap later)."""
    total = _pixels(shape)
    try:
        values = np.array(parts, dtype=np.int64)
        big = values > total
    except OverflowError:  # more than int64 holds: Python's int() compares it exactly
        big = np.array([int(p) > total for p in parts], bool)
    if big.any():
        i = int(np.argmax(big))
        raise DataError(f"RLE value {parts[i]} ({'start' if i % 2 == 0 else 'length'} of run {i // 2 + 1}) is "
                        f"larger than the {shape[0]}x{shape[1]} image's {total} pixels, the limit of any start "
                        f"or length; fix or drop this row. RLE starts: {text[:60]!r}")
    return values


def _pixels(shape: tuple[int, int]) -> int:
    """The pixel count of a (height, width) image, refusing a side below 1 (a -5 x -5 image has no 25 pixels)."""
    if len(shape) != 2 or min(shape) < 1:
        raise DataError(f"The image size for RLEs must be two sides of at least 1 pixel; got {tuple(shape)}.")
    return int(shape[0]) * int(shape[1])


def _validate_runs(starts: np.ndarray, lengths: np.ndarray, shape: tuple[int, int], text: str) -> None:
    total = shape[0] * shape[1]
    if (starts < 0).any():
        raise DataError(f"RLE start {int(starts[starts < 0][0]) + 1} is not positive (starts are "
                        f"1-indexed). RLE starts: {text[:60]!r}")
    if (lengths <= 0).any():
        raise DataError(f"RLE run length {int(lengths[lengths <= 0][0])} is not positive. "
                        f"RLE starts: {text[:60]!r}")
    ends = starts + lengths
    if (ends > total).any():
        i = int(np.argmax(ends > total))
        raise DataError(f"RLE run '{starts[i] + 1} {lengths[i]}' ends at pixel {ends[i]}, past "
                        f"the {shape[0]}x{shape[1]} image ({total} pixels).")
    if starts.size > 1 and (starts[1:] < ends[:-1]).any():
        i = int(np.argmax(starts[1:] < ends[:-1]))
        raise DataError(f"RLE runs overlap or are out of order: run '{starts[i] + 1} {lengths[i]}' "
                        f"is followed by '{starts[i + 1] + 1} {lengths[i + 1]}'. Runs must be "
                        "sorted and disjoint.")


def runs_to_mask(starts: np.ndarray, lengths: np.ndarray, shape: tuple[int, int] = SHAPE,
                 out: np.ndarray | None = None, value: int = 1) -> np.ndarray:
    """Paint runs into a (H, W) mask (uint8 unless `out` is given), vectorised.

    Work is proportional to the ship pixels, not to the image size.
    """
    if out is None:
        out = np.zeros(shape, np.uint8)
    pixels = runs_to_pixels(starts, lengths)
    out[pixels % shape[0], pixels // shape[0]] = value  # column-major flat index -> (row, col)
    return out


def rle_decode(rle: str | float | None, shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """Decode one Kaggle RLE string into a (H, W) uint8 mask of 0/1."""
    return runs_to_mask(*parse_rle(rle, shape), shape)


def rles_to_mask(rles: Iterable[str], shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """Union of several ships' RLEs as one (H, W) uint8 mask."""
    parsed = [parse_rle(r, shape) for r in rles]
    if not parsed:
        return np.zeros(shape, np.uint8)
    starts = np.concatenate([p[0] for p in parsed])
    lengths = np.concatenate([p[1] for p in parsed])
    return runs_to_mask(starts, lengths, shape)


def rles_to_labels(rles: Sequence[str], shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """Instance label image (H, W) int32: 0 background, ship i (1-based) in the order given."""
    labels = np.zeros(shape, np.int32)
    for i, rle in enumerate(rles, start=1):
        runs_to_mask(*parse_rle(rle, shape), shape, out=labels, value=i)
    return labels


def mask_to_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """0-indexed column-major `(starts, lengths)` of the nonzero pixels of a 2-D mask.

    Raises:
        DataError: the mask is not 2-D (a (H, W, 1) or (H, W, 3) array would be flattened into runs
            that are no pixels of the image).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise DataError(f"An RLE encodes a 2-D (height, width) mask; got an array of shape {mask.shape}. Pass one "
                        "channel (mask[..., 0]) or their union (mask.any(axis=-1)) of an (H, W, C) mask.")
    flat = mask.T.reshape(-1) != 0
    padded = np.concatenate([[False], flat, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = edges[0::2], edges[1::2]
    return starts.astype(np.int64), (ends - starts).astype(np.int64)


def runs_to_rle(starts: np.ndarray, lengths: np.ndarray) -> str:
    """Format 0-indexed runs as a Kaggle RLE string (1-indexed starts)."""
    pairs = np.empty(starts.size * 2, np.int64)
    pairs[0::2] = starts + 1
    pairs[1::2] = lengths
    return " ".join(map(str, pairs.tolist()))


def rle_encode(mask: np.ndarray) -> str:
    """Encode the nonzero pixels of a (H, W) mask as a Kaggle RLE string ('' if empty)."""
    return runs_to_rle(*mask_to_runs(mask))


def runs_to_pixels(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """All 0-indexed flat (column-major) pixel indices covered by the runs, sorted, vectorised."""
    if starts.size == 0:
        return np.empty(0, np.int64)
    total = int(lengths.sum())
    # Each run contributes start, start+1, ...: repeat the run's (start - offset) and add arange.
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return offsets + np.arange(total, dtype=np.int64)


def parse_many(rles: Sequence[str], shape: tuple[int, int] = SHAPE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse many RLE strings in one vectorised pass: `(starts, lengths, owner)`.

    `owner[k]` is the position in `rles` of run k. Empty strings own no runs. The checks of
    `parse_rle` apply; an error names the offending row (its position in `rles`).
    """
    _pixels(shape)
    texts = ["" if r is None or (isinstance(r, float) and np.isnan(r)) else str(r) for r in rles]
    counts = np.fromiter((len(t.split()) for t in texts), np.int64, len(texts))
    values = _fast_values(texts, counts)
    if values is None:  # a token the fast parser cannot vouch for: parse_rle decides, row by row
        return _parse_rows(texts, shape)
    odd = np.flatnonzero(counts % 2)
    if odd.size:
        _parse_row(texts[odd[0]], shape, int(odd[0]))
        return _parse_rows(texts, shape)  # parse_rle found no fault: its reading is the one that counts
    owner = np.repeat(np.arange(len(texts)), counts // 2)
    starts, lengths = values[0::2] - 1, values[1::2]
    total = shape[0] * shape[1]
    ends = starts + lengths  # may wrap past int64 only where a value is > total, itself a fault below
    same_owner = owner[1:] == owner[:-1]
    bad = (values[0::2] > total) | (lengths > total)  # '99999999999999999999' reads as the int64 maximum
    bad |= (starts < 0) | (lengths <= 0) | (ends > total)
    bad[1:] |= same_owner & (starts[1:] < ends[:-1])
    if bad.any():
        row = int(owner[np.argmax(bad)])
        _parse_row(texts[row], shape, row)
        return _parse_rows(texts, shape)
    return starts, lengths, owner


def _fast_values(texts: list[str], counts: np.ndarray) -> np.ndarray | None:
    """All tokens as int64 in one C-speed pass, or None where that pass could misread a token.

    np.fromstring reads '+5' and '- 5' as numbers and saturates '99999999999999999999' at the int64
    maximum (the caller refuses values above the pixel count); it cannot read '１００' or '1_00'. So
    it only runs on ASCII text without signs, and its token count must match `str.split`'s.
    """
    if not counts.any():
        return np.empty(0, np.int64)
    joined = " ".join(texts)
    if not joined.isascii() or "+" in joined or "-" in joined:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            values = np.fromstring(joined, dtype=np.int64, sep=" ")
    except ValueError:
        return None
    return values if values.size == counts.sum() else None


def _parse_rows(texts: list[str], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """parse_many's slow path: parse_rle on each row, so that an error names its row."""
    parsed = [_parse_row(text, shape, row) for row, text in enumerate(texts)]
    owner = np.repeat(np.arange(len(texts)), [p[0].size for p in parsed]).astype(np.int64)
    starts = np.concatenate([p[0] for p in parsed]) if parsed else np.empty(0, np.int64)
    lengths = np.concatenate([p[1] for p in parsed]) if parsed else np.empty(0, np.int64)
    return starts, lengths, owner


def _parse_row(text: str, shape: tuple[int, int], row: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        return parse_rle(text, shape)
    except DataError as exc:
        error = DataError(f"row {row}: {exc}")
        error.row, error.detail = row, str(exc)  # callers name the row in their own terms
        raise error from None
