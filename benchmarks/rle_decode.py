"""RLE decoding of a whole Kaggle-size CSV index: vectorised numpy vs the seed's per-pixel loop.

The seed decoded ships with a Python loop over every run and pixel (`get_points`). Here all
RLE strings of a 200,000-row index are parsed in one numpy pass (`parse_many`) and each ship's
pixels come from `runs_to_pixels`. The loop is timed on a subset and reported per ship.

    python benchmarks/rle_decode.py [--quick]
"""

from __future__ import annotations

import numpy as np
from _common import median_seconds, quick, report

from shiptoolkit.data.rle import mask_to_runs, parse_many, runs_to_pixels, runs_to_rle

SHAPE = (768, 768)


def make_rows(n_rows: int, seed: int = 0) -> list[str]:
    """Rows like the real CSV: ~65% empty-image rows, the rest ships with log-normal areas."""
    import cv2

    rng = np.random.default_rng(seed)
    templates = []
    for _ in range(300):  # distinct rotated ships of realistic sizes, reused across rows
        area = float(np.clip(rng.lognormal(np.log(408), 1.95), 20, 10_000))
        w = max(2.0, np.sqrt(area / 5))
        box = ((float(rng.uniform(100, 668)), float(rng.uniform(100, 668))), (area / w, w), float(rng.uniform(0, 180)))
        mask = np.zeros(SHAPE, np.uint8)
        cv2.fillPoly(mask, [np.intp(cv2.boxPoints(box))], 1)
        templates.append(runs_to_rle(*mask_to_runs(mask)))
    ship_rows = rng.random(n_rows) < 0.353  # 81,723 ships among 231,723 rows
    return [templates[rng.integers(len(templates))] if s else "" for s in ship_rows]


def seed_style_decode(rle: str) -> list[tuple[int, int]]:
    """Per-pixel Python loop, as the seed's get_points (but with its edge-pixel bug fixed)."""
    values = [int(v) for v in rle.split()]
    points = []
    for start, length in zip(values[0::2], values[1::2], strict=True):
        for pixel in range(start - 1, start - 1 + length):
            points.append((pixel % SHAPE[0], pixel // SHAPE[0]))
    return points


def vectorised_decode_all(rows: list[str]) -> int:
    starts, lengths, owner = parse_many(rows, SHAPE)
    pixels = runs_to_pixels(starts, lengths)  # every ship pixel of the whole index
    return int(pixels.size)


def main() -> None:
    n_rows = 20_000 if quick() else 200_000
    rows = make_rows(n_rows)
    ships = [r for r in rows if r]
    repeats = 3 if quick() else 5
    t_parse = median_seconds(lambda: parse_many(rows, SHAPE), repeats)
    t_all = median_seconds(lambda: vectorised_decode_all(rows), repeats)
    subset = ships[:200 if quick() else 1000]
    t_loop = median_seconds(lambda: [seed_style_decode(r) for r in subset], 3)
    per_ship_vec = t_all / len(ships)
    per_ship_loop = t_loop / len(subset)
    report(f"rle_parse_all_{n_rows // 1000}k_rows", t_parse, "s")
    report(f"rle_decode_all_{n_rows // 1000}k_rows_vectorised", t_all, "s")
    report("rle_decode_per_ship_vectorised", per_ship_vec * 1e6, "us")
    report("rle_decode_per_ship_python_loop", per_ship_loop * 1e6, "us")
    report(f"rle_decode_all_{n_rows // 1000}k_rows_python_loop_extrapolated", per_ship_loop * len(ships), "s")
    report("rle_decode_speedup_vs_loop", per_ship_loop / per_ship_vec, "x")


if __name__ == "__main__":
    main()
