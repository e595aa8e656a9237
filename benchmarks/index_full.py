"""Opening the dataset at full size: an `AirbusIndex` from a 231,723-row CSV, against 5 s and 1 GB.

The CSV has the real data's proportions: 192,556 image ids, 150,000 empty images (77.9%, one row
with empty EncodedPixels each), 81,723 ship rows on the other 42,556 images (at most 15 ships per
image), ship areas log-normal like the real ones (median 408 px, a quarter under 111, 2 to
~26,000 px), each ship a rotated rectangle encoded as the Kaggle RLE. The image folder holds
192,556 empty files, because a real run lists it (`validate` looks every image up in one listing).

Two figures, each in a fresh Python process (so its peak memory is honest: the child's
ru_maxrss minus that of a child that only imports the same modules), median of the repeats:

- `from_csv`: `AirbusIndex.from_csv(csv, folder)` alone;
- `open`: what a run on real data does (`shiptoolkit.data.source.open_dataset`): `from_csv`,
  then `validate(check_images=False)` (every RLE parsed, the folder listed once).

    python benchmarks/index_full.py [--quick]     # --quick: a tenth of the size
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import quick, report

IMAGES, EMPTY_IMAGES, SHIP_ROWS, MOST_SHIPS = 192_556, 150_000, 81_723, 15
SIDE = 768
TARGET_SECONDS, TARGET_MB = 5.0, 1024.0


def ship_counts(rng: np.random.Generator, images: int, ships: int) -> np.ndarray:
    """Ships per image (1..MOST_SHIPS) summing to `ships`: mostly 1 or 2, a long tail, like the real data."""
    counts = np.minimum(rng.geometric(images / ships, images), MOST_SHIPS)
    while (diff := ships - int(counts.sum())) != 0:  # nudge random images until the total is exact
        pick = rng.integers(images, size=abs(diff))
        step = np.sign(diff)
        ok = (counts[pick] + step >= 1) & (counts[pick] + step <= MOST_SHIPS)
        np.add.at(counts, pick[ok], step)
        counts = np.clip(counts, 1, MOST_SHIPS)
    return counts


def ship_template(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int, int]:
    """A rotated-rectangle ship at the top-left corner: (starts, lengths) 0-indexed, its height and width."""
    import cv2

    from shiptoolkit.data.rle import mask_to_runs

    area = float(np.clip(rng.lognormal(np.log(408), 1.93), 2, 26_000))
    width = max(1.0, np.sqrt(area / rng.uniform(3, 6)))  # ships are 3 to 6 times longer than wide
    box = ((SIDE / 2, SIDE / 2), (area / width, width), float(rng.uniform(0, 180)))
    mask = np.zeros((SIDE, SIDE), np.uint8)
    cv2.fillPoly(mask, [np.intp(np.round(cv2.boxPoints(box)))], 1)
    if not mask.any():
        mask[SIDE // 2, SIDE // 2] = 1
    rows, cols = np.nonzero(mask)
    mask = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    starts, lengths = mask_to_runs(mask)  # column-major within the crop: convert to the full image below
    col, row = np.divmod(starts, mask.shape[0])
    return col * SIDE + row, lengths, mask.shape[0], mask.shape[1]


def write_csv(path: Path, scale: float, seed: int = 0) -> tuple[int, list[str]]:
    """Write the full-size CSV (or `scale` of it); returns its row count and image ids."""
    rng = np.random.default_rng(seed)
    images, empty, ship_rows = (round(n * scale) for n in (IMAGES, EMPTY_IMAGES, SHIP_ROWS))
    ids = [f"{v:09x}.jpg" for v in rng.choice(16 ** 9, images, replace=False)]
    counts = ship_counts(rng, images - empty, ship_rows)
    templates = [ship_template(rng) for _ in range(2000)]  # shapes reused, placed anew for each ship
    lines = ["ImageId,EncodedPixels"]
    for image_id, n in zip(ids[empty:], counts, strict=True):
        for _ in range(n):
            starts, lengths, h, w = templates[rng.integers(len(templates))]
            offset = int(rng.integers(SIDE - h + 1)) + int(rng.integers(SIDE - w + 1)) * SIDE
            pairs = np.empty(starts.size * 2, np.int64)
            pairs[0::2], pairs[1::2] = starts + offset + 1, lengths
            lines.append(f"{image_id},{' '.join(map(str, pairs.tolist()))}")
    lines += [f"{image_id}," for image_id in ids[:empty]]
    path.write_text("\n".join([lines[0], *sorted(lines[1:])]) + "\n")  # sorted by ImageId, as Kaggle's file
    return len(lines) - 1, ids


def child(mode: str, csv: str, folder: str) -> None:
    """Run in a fresh process: build the index (`mode`) and print seconds and peak memory as JSON."""
    import pandas  # noqa: F401  (the baseline imports the same modules)

    from shiptoolkit.data.airbus import AirbusIndex

    start, cpu = time.perf_counter(), time.process_time()
    n = 0
    if mode != "baseline":
        index = AirbusIndex.from_csv(csv, folder)
        if mode == "open":
            index.validate(check_images=False)
        n = len(index)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_mb": peak_rss_mb(), "images": n}))


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from
    the parent across fork and exec, so a child would report the (large) benchmark parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / (1024 if sys.platform == "darwin" else 1)


def measure(mode: str, csv: Path, folder: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(csv), str(folder)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    scale = 0.1 if quick() else 1.0
    repeats = 2 if quick() else 3
    with tempfile.TemporaryDirectory(prefix="index_full-") as tmp:
        csv, folder = Path(tmp) / "train_ship_segmentations_v2.csv", Path(tmp) / "train_v2"
        rows, ids = write_csv(csv, scale)
        folder.mkdir()
        for image_id in ids:
            (folder / image_id).touch()
        baseline = statistics.median(measure("baseline", csv, folder)["peak_mb"] for _ in range(repeats))
        size = f"{rows // 1000}k_rows"
        print(f"# {csv.name}: {rows:,} rows, {len(ids):,} images, {rows - round(EMPTY_IMAGES * scale):,} ships; "
              f"{len(ids):,} files in {folder.name}/", flush=True)
        for mode in ("from_csv", "open"):
            runs = [measure(mode, csv, folder) for _ in range(repeats)]
            assert all(r["images"] == len(ids) for r in runs), runs
            seconds = statistics.median(r["seconds"] for r in runs)
            extra_mb = max(r["peak_mb"] for r in runs) - baseline
            report(f"index_{mode}_{size}_time", seconds, "s")
            report(f"index_{mode}_{size}_cpu_time", statistics.median(r["cpu_seconds"] for r in runs), "s")
            report(f"index_{mode}_{size}_peak_memory_above_imports", extra_mb, "MB")
            report(f"index_{mode}_{size}_time_vs_target_5s", seconds / TARGET_SECONDS, "x")
            report(f"index_{mode}_{size}_memory_vs_target_1GB", extra_mb / TARGET_MB, "x")
        report("index_python_and_imports_peak_memory", baseline, "MB")


if __name__ == "__main__":
    if "--child" in sys.argv:
        child(*sys.argv[sys.argv.index("--child") + 1:][:3])
    else:
        main()
