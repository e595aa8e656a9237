"""Tile-hash groups with the on-disk cache: a second `find_groups` on the same files against the first.

`split = "groups"` hashes every image's 256 px tiles (~20 min for the 192,556 Airbus images).
With `data.group_cache` the hashes are kept per file (path, size, mtime), so a second run reads
no image. On N synthetic 768 px JPGs cut from larger scenes like the real data (60% overlapping
crops: `shiptoolkit synth --overlap-fraction`), median of the repeats:

- cold: `find_groups` without a cache (reads and hashes every image);
- first: with an empty cache (reads, hashes and stores every image);
- warm: with the cache filled (stats every file, reads none).

Then at full size: 192,556 (empty) files whose hashes are already cached, the warm run timed
against the cold run extrapolated from the per-image cold time above (the warm run never opens
an image: an empty file would fail loudly if it were read).

The images are read from the page cache in these runs; a real first run also waits for the disk,
so its warm/cold ratio is lower still.

    python benchmarks/group_cache.py [--quick] [--images N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import quick, report

from shiptoolkit.data.airbus import AirbusIndex
from shiptoolkit.data.groups import find_groups, hash_params
from shiptoolkit.data.hash_cache import TileHashCache, file_key
from shiptoolkit.data.synth import generate_dataset

FULL_IMAGES = 192_556
TARGET_RATIO = 0.05
WORKERS = 2


def timed(fn) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of all threads, result) of `fn()`."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - start, time.process_time() - cpu, out


def synthetic_runs(tmp: Path, images: int, repeats: int) -> float:
    """Cold, first and warm runs on real JPGs; returns the median cold seconds per image."""
    generate_dataset(tmp / "data", images=images, seed=0, size=768, overlap_fraction=0.6, workers=WORKERS,
                     progress=False)
    index = AirbusIndex.from_kaggle(tmp / "data")
    run = lambda cache: find_groups(index, progress=False, workers=WORKERS, cache=cache)  # noqa: E731
    cold, first, warm = [], [], []
    for k in range(repeats):  # interleaved, so that the box's load drifting over time biases no kind
        cold.append(timed(lambda: run(None)))
        first.append(timed(lambda k=k: run(tmp / f"cache-{k}.sqlite")))
        warm.append(timed(lambda k=k: run(tmp / f"cache-{k}.sqlite")))
    groups = {str(out) for *_, out in cold + first + warm}
    assert len(groups) == 1, "the cache changed the groups"
    t_cold, t_first, t_warm = (statistics.median(t for t, _, _ in runs) for runs in (cold, first, warm))
    cpu_cold, cpu_warm = (statistics.median(c for _, c, _ in runs) for runs in (cold, warm))
    n_groups = len(set(cold[0][2].values()))
    print(f"# {images} synthetic 768 px images in {n_groups} groups; {repeats} runs each, {WORKERS} workers",
          flush=True)
    report(f"group_cache_{images}_images_cold_no_cache", t_cold, "s")
    report(f"group_cache_{images}_images_first_filling_cache", t_first, "s")
    report(f"group_cache_{images}_images_warm", t_warm, "s")
    report(f"group_cache_{images}_images_first_vs_cold", t_first / t_cold, "x")
    report(f"group_cache_{images}_images_warm_vs_cold", t_warm / t_cold, "x")
    report(f"group_cache_{images}_images_warm_vs_first", t_warm / t_first, "x")
    report(f"group_cache_{images}_images_warm_vs_cold_cpu_time", cpu_warm / cpu_cold, "x")
    return t_cold / images


def full_size_warm(tmp: Path, images: int, cold_per_image: float, repeats: int) -> None:
    """The warm run over `images` files whose hashes are cached (random ones: the cost does not depend on them)."""
    folder = tmp / "full" / "train_v2"
    folder.mkdir(parents=True)
    ids = [f"{i:09x}.jpg" for i in range(images)]
    for image_id in ids:
        (folder / image_id).touch()
    index = AirbusIndex.from_rows([(i, "") for i in ids], folder)
    rng = np.random.default_rng(0)
    cache = tmp / "full.sqlite"
    start = time.perf_counter()
    with TileHashCache(cache, hash_params(3, index.shape), 9) as store:
        for a in range(0, images, 4096):
            chunk = ids[a:a + 4096]
            tiles = rng.integers(0, 256, (len(chunk), 9, 32), dtype=np.uint8)
            store.store([(file_key(folder.resolve() / i), [t.tobytes() if t[0] > 60 else None for t in image])
                         for i, image in zip(chunk, tiles, strict=True)])
    print(f"# {images} cached entries written in {time.perf_counter() - start:.1f} s, "
          f"cache {cache.stat().st_size / 2**20:.0f} MB", flush=True)
    t_warm = statistics.median(timed(lambda: find_groups(index, progress=False, workers=WORKERS, cache=cache))[0]
                               for _ in range(repeats))
    t_cold = cold_per_image * images
    report(f"group_cache_{images}_files_warm", t_warm, "s")
    report(f"group_cache_{images}_files_cold_extrapolated", t_cold, "s")
    report(f"group_cache_{images}_files_warm_vs_cold", t_warm / t_cold, "x")
    report(f"group_cache_{images}_files_warm_vs_target", t_warm / t_cold / TARGET_RATIO, "x")


def main() -> None:
    images = int(sys.argv[sys.argv.index("--images") + 1]) if "--images" in sys.argv else (60 if quick() else 300)
    repeats = 2 if quick() else 3
    with tempfile.TemporaryDirectory(prefix="group_cache-") as tmp:
        cold_per_image = synthetic_runs(Path(tmp), images, repeats)
        report("group_cache_cold_per_image", cold_per_image * 1e3, "ms")
        full_size_warm(Path(tmp), FULL_IMAGES // 10 if quick() else FULL_IMAGES, cold_per_image, repeats)


if __name__ == "__main__":
    main()
