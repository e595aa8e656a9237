"""Synthetic Airbus-like data: the embedded default, since the real data needs a Kaggle login.

A fair stand-in: ~78% of images without ships, ships as rotated pointed hulls whose areas
follow the real distribution (log-normal, median ~400 px, 20 to 10,000 px), several per image
and sometimes moored side by side (touching, never overlapping in the masks, like the real
data), on textured sea, with distractors a model must learn to reject: whitecaps, clouds,
coastline with piers. Written in exactly the Kaggle layout.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from shiptoolkit.data.airbus import CSV_NAME, IMAGES_DIR
from shiptoolkit.data.rle import rle_encode
from shiptoolkit.errors import DataError

MARKER = ".shiptoolkit-synth.json"
# Real ship areas: median 408 px, quartiles 111 and 1,550 -> log-normal with sigma ~1.95.
AREA_MEDIAN, AREA_SIGMA, AREA_MIN, AREA_MAX = 408.0, 1.95, 20.0, 10_000.0


@dataclass(frozen=True)
class SynthSummary:
    """What `generate_dataset` wrote."""

    path: Path
    images: int
    empty_images: int
    ships: int
    seconds: float


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: random values on a coarse grid, upscaled smoothly."""
    import cv2

    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC) / 1.5


def _sea(rng: np.random.Generator, size: int) -> np.ndarray:
    base = np.array([rng.uniform(10, 40), rng.uniform(35, 75), rng.uniform(45, 90)], np.float32)
    swell = _smooth_noise(rng, size, 6)[..., None] * rng.uniform(4, 12)
    ripple = _smooth_noise(rng, size, 48)[..., None] * rng.uniform(2, 6)
    grain = rng.normal(0, 2.5, (size, size, 1)).astype(np.float32)
    return base + swell + ripple + grain


def _coast(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Land along one edge, with piers into the sea: (land-and-piers mask, colour layer)."""
    import cv2

    depth = rng.uniform(0.1, 0.35) * size
    edge = np.clip(depth + _smooth_noise(rng, size, 4)[0] * depth * 0.6, 5, size * 0.5)
    land = (np.arange(size)[:, None] < edge[None, :]).astype(np.uint8)
    colour = np.array([rng.uniform(70, 120), rng.uniform(70, 110), rng.uniform(50, 90)], np.float32)
    layer = colour + _smooth_noise(rng, size, 64)[..., None] * 18 + rng.normal(0, 6, (size, size, 1))
    for _ in range(int(rng.integers(1, 5))):  # piers: bright straight structures, ship-like edges
        col = int(rng.integers(20, size - 20))
        top, length, width = int(edge[col]), int(rng.uniform(20, 90)), int(rng.integers(3, 8))
        cv2.rectangle(layer, (col, top - 2), (col + width, top + length), (190, 185, 175), -1)
        cv2.rectangle(land, (col, top - 2), (col + width, top + length), 1, -1)
    k = int(rng.integers(0, 4))  # the coast may face any direction
    return np.rot90(land, k).astype(bool), np.ascontiguousarray(np.rot90(layer, k))


def _hull(length: float, width: float, angle: float, cx: float, cy: float) -> np.ndarray:
    """Pointed hull polygon: a box with a tapered bow, rotated by `angle` around its centre."""
    half_l, half_w, bow = length / 2, width / 2, min(length * 0.3, width * 1.2)
    points = np.array([[-half_l, -half_w], [half_l - bow, -half_w], [half_l, 0],
                       [half_l - bow, half_w], [-half_l, half_w]], np.float32)
    c, s = np.cos(angle), np.sin(angle)
    rotated = points @ np.array([[c, s], [-s, c]], np.float32)
    return np.round(rotated + [cx, cy]).astype(np.int32)


def _ship_masks(rng: np.random.Generator, size: int, n_ships: int, land: np.ndarray) -> list[np.ndarray]:
    import cv2

    masks: list[np.ndarray] = []
    while len(masks) < n_ships:
        area = float(np.clip(rng.lognormal(np.log(AREA_MEDIAN), AREA_SIGMA), AREA_MIN, AREA_MAX))
        ratio = rng.uniform(3, 8)
        width = max(2.0, np.sqrt(area / (ratio * 0.9)))
        length = min(area / (width * 0.9), size * 0.6)  # big ships still fit small test images
        angle = rng.uniform(0, np.pi)
        margin = length / 2 + 2
        for _ in range(20):  # a centre at sea
            cx, cy = rng.uniform(margin, size - margin, 2)
            if not land[int(cy), int(cx)]:
                break
        else:
            continue
        group = 2 if rng.random() < 0.25 and len(masks) + 2 <= n_ships else 1
        for k in range(group):  # moored side by side: parallel, offset by one beam, touching
            ox, oy = -np.sin(angle) * width * k, np.cos(angle) * width * k
            mask = np.zeros((size, size), np.uint8)
            cv2.fillPoly(mask, [_hull(length, width, angle, cx + ox, cy + oy)], 1)
            if mask.any():
                masks.append(mask)
    if len(masks) > 1:  # as in the real data: pixels claimed by two ships become background
        overlap = np.sum(masks, axis=0) > 1
        for mask in masks:
            mask[overlap] = 0
    return [m for m in masks if m.any()]


def render_scene(rng: np.random.Generator, size: int = 768, n_ships: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """Draw one scene: (image uint8 HxWx3 RGB, one uint8 mask per ship, never overlapping).

    Args:
        rng: the only source of randomness.
        size: height and width in pixels.
        n_ships: ships to place (0 = an empty scene; distractors appear either way).
    """
    import cv2

    image = _sea(rng, size)
    land = np.zeros((size, size), bool)
    if rng.random() < 0.15:
        land, layer = _coast(rng, size)
        image[land] = layer[land]
    masks = _ship_masks(rng, size, n_ships, land)
    for mask in masks:
        hull = mask.astype(bool)
        tone = rng.choice([rng.uniform(170, 245), rng.uniform(90, 140), rng.uniform(15, 40)])
        colour = np.array([tone, tone * rng.uniform(0.9, 1.05), tone * rng.uniform(0.85, 1.05)], np.float32)
        image[hull] = colour + rng.normal(0, 8, (int(hull.sum()), 3))
        if hull.sum() > 300 and rng.random() < 0.5:  # a darker deck line along the hull
            image[cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=2).astype(bool)] *= 0.8
    if rng.random() < 0.45:  # whitecaps: short bright streaks, ship-like at small scale
        caps = np.zeros((size, size), np.float32)
        for _ in range(int(rng.integers(10, 120))):
            x, y = rng.integers(0, size, 2)
            dx, dy = rng.integers(-8, 9, 2)
            cv2.line(caps, (int(x), int(y)), (int(x + dx), int(y + dy)), float(rng.uniform(0.4, 1)), 1)
        image += cv2.GaussianBlur(caps, (3, 3), 0)[..., None] * 150
    if rng.random() < 0.25:  # clouds: large soft bright blobs, sometimes over ships
        cover = np.clip(_smooth_noise(rng, size, 5) * 1.5 - rng.uniform(0.2, 1.0), 0, 1)
        cover = cv2.GaussianBlur(cover, (0, 0), 12)[..., None] * rng.uniform(0.5, 0.95)
        image = image * (1 - cover) + 235 * cover
    return np.clip(image, 0, 255).astype(np.uint8), masks


def _ship_count(rng: np.random.Generator) -> int:
    """1 + Poisson: the real data averages ~1.9 ships per ship image, with busy harbours."""
    return int(min(1 + rng.poisson(0.9) + (rng.random() < 0.05) * rng.integers(3, 8), 15))


def image_id(seed: int, i: int) -> str:
    """Kaggle-like 9-hex-digit id, stable for (seed, i)."""
    return hashlib.sha1(f"{seed}-{i}".encode()).hexdigest()[:9] + ".jpg"


def _write(image: np.ndarray, masks: list[np.ndarray], name: str, image_dir: str) -> tuple[str, list[str]]:
    import cv2

    cv2.imwrite(str(Path(image_dir) / name), image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    return name, [rle_encode(m) for m in masks]


def _render_chunk(args: tuple[int, list[int], list[bool], int, str]) -> list[tuple[str, list[str]]]:
    seed, numbers, has_ships, size, image_dir = args
    rows = []
    for i, ships in zip(numbers, has_ships, strict=True):
        rng = np.random.default_rng([seed, i])
        n_ships = _ship_count(rng) if ships else 0
        image, masks = render_scene(rng, size, n_ships)
        rows.append(_write(image, masks, image_id(seed, i), image_dir))
    return rows


def _render_crops(args: tuple[int, list[int], bool, int, str]) -> list[tuple[str, list[str]]]:
    """Several images cut from one larger scene at offsets that are multiples of a third of their
    side, so they share whole tiles, as the real training images do."""
    seed, numbers, ships, size, image_dir = args
    rng = np.random.default_rng([seed, 2**32 + numbers[0]])
    step = size // 3
    big = size + 2 * step
    scene, masks = render_scene(rng, big, 2 * _ship_count(rng) if ships else 0)
    offsets = [(int(k) // 3 * step, int(k) % 3 * step) for k in rng.permutation(9)[:len(numbers)]]
    rows = []
    for i, (top, left) in zip(numbers, offsets, strict=True):
        crop = np.ascontiguousarray(scene[top:top + size, left:left + size])
        cut = [m[top:top + size, left:left + size] for m in masks]
        rows.append(_write(crop, [m for m in cut if m.any()], image_id(seed, i), image_dir))
    return rows


def _scenes(images: int, seed: int, overlap_fraction: float) -> list[list[int]]:
    """Which image numbers are crops of one scene: groups of 2 to 4, `overlap_fraction` of all images."""
    rng = np.random.default_rng([seed, 2**31 + 1])
    pool = [int(i) for i in rng.permutation(images)[:round(images * overlap_fraction)]]
    scenes = []
    while len(pool) >= 2:
        n = min(len(pool), int(rng.integers(2, 5)))
        scenes.append(sorted(pool[:n]))
        pool = pool[n:]
    return scenes


def _call(job):
    function, args = job
    return function(args)


def generate_dataset(out: str | Path, images: int = 1000, seed: int = 0, empty_fraction: float = 0.78,
                     size: int = 768, workers: int | None = None, progress: bool = True,
                     overlap_fraction: float = 0.0) -> SynthSummary:
    """Write a synthetic dataset in the Kaggle layout (`train_v2/*.jpg` + the segmentation CSV).

    Args:
        out: folder to create (must be absent or empty).
        images: number of images.
        seed: the dataset is a pure function of (images, seed, empty_fraction, size, overlap_fraction).
        empty_fraction: fraction of images without ships (real data: 0.779), exact up to rounding
            when overlap_fraction is 0.
        size: image height and width.
        workers: processes (default: all cores); the output does not depend on it.
        progress: show a progress bar.
        overlap_fraction: fraction of the images cut, 2 to 4 at a time, from larger scenes so that
            they overlap like the real data (for testing leak-free splits); `scenes.csv` records
            which. A scene's crops follow its first image's ship/no-ship draw, and a crop of a ship
            scene may miss its ships, so the empty fraction is then only approximate. Crops are cut at
            multiples of size // 3; when that is a multiple of 16 (96, 192, 384, 768) the shared tiles
            stay aligned to JPEG blocks, decode identically, and `data.groups` finds them.

    The dataset is written into a temporary folder beside `out`, renamed to `out` when complete: an
    interrupted synth (Ctrl-C, SIGTERM, an error) leaves nothing behind, and the same command redoes it.
    """
    _check_arguments(images, empty_fraction, size, overlap_fraction)
    out = Path(out).expanduser()
    if out.exists() and any(out.iterdir()):
        raise DataError(_not_empty(out))
    work = out.parent / f".{out.name}.synth-{os.getpid()}.partial"
    shutil.rmtree(work, ignore_errors=True)  # a leftover of a killed process that had this pid
    work.mkdir(parents=True)
    try:
        summary = _write_dataset(work, out, images, seed, empty_fraction, size, workers, progress, overlap_fraction)
        if out.exists():
            out.rmdir()  # empty (checked above)
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return summary


def _not_empty(out: Path) -> str:
    images = out / IMAGES_DIR
    if images.is_dir() and not (out / CSV_NAME).exists():
        count = sum(1 for _ in images.glob("*.jpg"))
        return (f"{str(out)!r} holds {count} images and no {CSV_NAME}: it is what an interrupted synth of an older "
                f"shiptoolkit left. Delete it (rm -r {out}) and run the same command again.")
    return f"{str(out)!r} is not empty; synth never overwrites. Choose a new folder."


def _write_dataset(work: Path, out: Path, images: int, seed: int, empty_fraction: float, size: int,
                   workers: int | None, progress: bool, overlap_fraction: float) -> SynthSummary:
    """The dataset written into `work`, described as the folder `out` it becomes."""
    image_dir = work / IMAGES_DIR
    image_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    scenes = _scenes(images, seed, overlap_fraction)
    jobs = _jobs(images, seed, empty_fraction, size, image_dir, scenes, workers)
    rows = _render(jobs, images, workers, progress)
    order = {image_id(seed, i): i for i in range(images)}
    rows.sort(key=lambda row: order[row[0]])  # CSV in image order, however the work was cut
    _write_tables(work, rows, scenes, seed)
    summary = SynthSummary(out, images, sum(1 for _, r in rows if not r), sum(len(r) for _, r in rows),
                           round(time.perf_counter() - start, 2))
    params = {"images": images, "seed": seed, "empty_fraction": empty_fraction, "size": size}
    if overlap_fraction:
        params["overlap_fraction"] = overlap_fraction
    (work / MARKER).write_text(json.dumps({**params, **asdict(summary), "path": str(out)}, indent=2))
    return summary


def _check_arguments(images: int, empty_fraction: float, size: int, overlap_fraction: float) -> None:
    if images < 1:
        raise ValueError(f"images must be >= 1. Received: images={images}")
    if not 0.0 <= empty_fraction <= 1.0:
        raise ValueError(f"empty_fraction must be in [0, 1]. Received: empty_fraction={empty_fraction}")
    if size < 32:
        raise ValueError(f"size must be >= 32. Received: size={size}")
    if not 0.0 <= overlap_fraction <= 1.0:
        raise ValueError(f"overlap_fraction must be in [0, 1]. Received: overlap_fraction={overlap_fraction}")


def _jobs(images: int, seed: int, empty_fraction: float, size: int, image_dir: Path, scenes: list,
          workers: int | None) -> list:
    """The rendering work in chunks: single images, then the crops of each shared scene."""
    # Exactly round(images * empty_fraction) empty images, at positions fixed by the seed.
    empty = np.zeros(images, bool)
    empty[np.random.default_rng([seed, 2**31]).permutation(images)[:round(images * empty_fraction)]] = True
    workers = max(1, min(workers or os.cpu_count() or 1, images))
    chunk = max(1, min(32, images // (workers * 4) or 1))
    in_scene = {i for scene in scenes for i in scene}
    singles = [i for i in range(images) if i not in in_scene]
    jobs = [(_render_chunk, (seed, singles[a:a + chunk], [not empty[i] for i in singles[a:a + chunk]], size,
                             str(image_dir))) for a in range(0, len(singles), chunk)]
    return jobs + [(_render_crops, (seed, scene, not empty[scene[0]], size, str(image_dir))) for scene in scenes]


def _render(jobs: list, images: int, workers: int | None, progress: bool) -> list[tuple[str, list[str]]]:
    """Run the jobs in worker processes (the output does not depend on how many); (image id, RLEs) rows."""
    workers = max(1, min(workers or os.cpu_count() or 1, images))
    rows: list[tuple[str, list[str]]] = []
    bar = tqdm(total=images, desc="synth", unit="img", disable=not progress)
    pool = ProcessPoolExecutor(workers, initializer=_ignore_ctrl_c) if workers > 1 else None
    try:
        for part in pool.map(_call, jobs) if pool else map(_call, jobs):
            rows.extend(part)
            bar.update(len(part))
    finally:  # on Ctrl-C too: no worker goes on writing into a folder about to be deleted
        if pool:
            pool.shutdown(cancel_futures=True)
        bar.close()
    return rows


def _ignore_ctrl_c() -> None:
    """Worker processes leave Ctrl-C (sent to the whole terminal's process group) to the main one."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _write_tables(out: Path, rows: list[tuple[str, list[str]]], scenes: list, seed: int) -> None:
    """The segmentation CSV (one row per ship, an empty row per empty image) and, with scenes, scenes.csv."""
    lines = ["ImageId,EncodedPixels"]
    for name, rles in rows:
        lines.extend(f"{name},{rle}" for rle in rles) if rles else lines.append(f"{name},")
    (out / CSV_NAME).write_text("\n".join(lines) + "\n")
    if scenes:
        scene_of = {image_id(seed, i): f"scene{k}" for k, scene in enumerate(scenes) for i in scene}
        (out / "scenes.csv").write_text("ImageId,scene\n" + "".join(f"{name},{scene_of.get(name, name)}\n"
                                                                   for name, _ in rows))
