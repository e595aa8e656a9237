"""Model quality on held-out test sets, over several seeds, with the all-empty baseline beside every f2.

For each seed, a recipe runs end to end in its own process (`shiptoolkit run`, as a user runs it):
a fresh synthetic dataset (data.synthetic_seed changed; generated into an empty cache, so the wall
time includes it), training with another run.seed, tuning on validation, and the score on the
recipe's independent synthetic test set (its own seed: no scene shared with training, never used
for a choice). Then the seed project's setup (examples/unet_ship_patches.toml: ship-only 128 px
patches, dice, no gate, no tuning) gets the same training budget in seconds, on the same data and
the same test set, to show the lesson. The seed's U-Net (32 to 512 filters at full resolution)
predicts a 768 px image in about 2 s on a CPU, so by default it runs for the first seed only and
is scored on the first 60 images of that seed's test set, with the baseline of those images.

    python benchmarks/quality.py                                  # the quickstart, 3 seeds
    python benchmarks/quality.py --recipe examples/cpu_long.toml  # another recipe
    python benchmarks/quality.py --set train.epochs=8             # overrides for the recipe
    python benchmarks/quality.py --seeds 5 --no-seed-setup --keep runs-quality
    python benchmarks/quality.py --quick                          # CI-sized smoke run (tiny data, 1 seed)

Prints a Markdown table per seed and overall (mean, min), then `name: value unit` lines.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import report

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SEED_SETUP = ROOT / "examples" / "unet_ship_patches.toml"
# CI-sized: small images, a 4-filter U-Net, a few steps; it checks the machinery, not the quality.
QUICK = ["data.synthetic_images=40", "data.synthetic_test_images=30", "data.image_size=128", "data.val_fraction=0.25",
         "sampler.patch_size=64", "backbone.base_filters=4", "backbone.depth=2", "train.epochs=2",
         "train.steps_per_epoch=3", "train.validation_steps=1", "train.batch_size=4", "classifier.image_size=64",
         "classifier.epochs=1", "classifier.steps_per_epoch=3", "classifier.batch_size=4", "classifier.depth=3",
         "evaluate.plot_examples=0"]
QUICK_SEED = [o for o in QUICK if not o.startswith(("classifier.", "sampler.patch_size"))]
COLUMNS = ("test f2", "all-empty baseline", "FP rate on empty", "f2 on ship images", "image recall", "wall s")


def run_recipe(config: Path, overrides: list[str], out: Path) -> tuple[dict, dict, float]:
    """(test metrics, step timings, wall seconds) of one `shiptoolkit run` in a fresh process."""
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "shiptoolkit", "run", str(config), "--quiet",
           "--set", f"run.out_dir={json.dumps(str(out))}", *[a for o in overrides for a in ("--set", o)]]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    done = subprocess.run(cmd, text=True, capture_output=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    run_dir = next(p for p in out.iterdir() if p.is_dir())
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    timings = json.loads((run_dir / "timings.json").read_text())
    return metrics, timings, wall


def row(metrics: dict, wall: float) -> dict:
    return {"test f2": metrics["f2"], "all-empty baseline": metrics["f2_all_empty_baseline"],
            "FP rate on empty": metrics["false_positive_rate_empty"], "f2 on ship images": metrics["f2_ship_images"],
            "image recall": metrics["image_recall"], "wall s": wall, "test images": metrics["images"]}


def seed_step_seconds(patch: int, batch: int, quick: bool) -> float:
    """Seconds per training step of the seed's U-Net on this machine (to give it the recipe's budget)."""
    import numpy as np

    from shiptoolkit.models.unet import unet

    model = unet((patch, patch, 3), base_filters=4 if quick else 32, depth=2 if quick else 4)
    model.compile("adam", "binary_crossentropy")
    x = np.zeros((batch, patch, patch, 3), np.float32)
    y = np.zeros((batch, patch, patch, 1), np.float32)
    model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(3):
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / 3


def same_data(recipe: str, overrides: list[str]) -> list[str]:
    """Overrides that give another config the recipe's data: the same images and the same test set."""
    from shiptoolkit.runner import prepare_config

    d = prepare_config(recipe, overrides)["data"]
    keys = ("path", "synthetic_images", "synthetic_seed", "synthetic_test_images", "synthetic_empty_fraction",
            "image_size", "cache_dir", "test_fraction", "test_path")
    return [f"data.{k}={json.dumps(d[k])}" for k in keys] + [o for o in overrides if o.startswith("run.seed")]


def markdown(rows: list[tuple[str, dict]]) -> str:
    lines = ["| run | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, r in rows:
        cells = [f"{r[c]:.0f}" if c == "wall s" else f"{r[c]:.3f}" for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summarise(rows: list[dict]) -> tuple[dict, dict]:
    mean = {c: statistics.fmean(r[c] for r in rows) for c in COLUMNS}
    low = {c: min(r[c] for r in rows) for c in COLUMNS}
    return mean, low


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(ROOT / "examples" / "quickstart.toml"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1, help="seeds are first-seed, first-seed + 1, ...")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--no-seed-setup", action="store_true", help="skip the seed project's setup")
    parser.add_argument("--seed-setup-seeds", type=int, default=1, help="seeds the seed's setup runs for")
    parser.add_argument("--seed-setup-images", type=int, default=60,
                        help="test images the seed's setup is scored on (0 = all)")
    parser.add_argument("--keep", help="keep run directories and datasets in this folder (default: a temp folder)")
    parser.add_argument("--quick", action="store_true", help="CI-sized smoke run: tiny data, 1 seed")
    args = parser.parse_args(argv)
    seeds = range(args.first_seed, args.first_seed + (1 if args.quick else args.seeds))
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="shiptoolkit-quality-"))
    recipe_rows, seed_rows = [], []
    for seed in seeds:
        data = [f"run.seed={seed}", f"data.synthetic_seed={seed * 101}",
                f"data.cache_dir={json.dumps(str(base / f'cache-{seed}'))}"]  # an empty cache: generation counted
        metrics, timings, wall = run_recipe(Path(args.recipe), [*(QUICK if args.quick else []), *args.overrides,
                                                                *data], base / f"recipe-{seed}")
        recipe_rows.append(row(metrics, wall))
        print(f"seed {seed}: recipe test f2 {metrics['f2']:.4f} (all-empty baseline "
              f"{metrics['f2_all_empty_baseline']:.4f}) on {metrics['images']} test images, {wall:.0f} s; {timings}",
              flush=True)
        if args.no_seed_setup or seed >= args.first_seed + args.seed_setup_seeds:
            continue
        budget = timings.get("classifier", 0.0) + timings.get("segmenter", 0.0)
        patch, batch = (64, 4) if args.quick else (128, 16)
        steps = max(4, round(budget / seed_step_seconds(patch, batch, args.quick)))
        recipe_overrides = [*(QUICK if args.quick else []), *args.overrides, *data]
        tiny = ["sampler.patch_size=64", "backbone.base_filters=4", "backbone.depth=2"] if args.quick else []
        scored = 0 if args.quick else args.seed_setup_images
        seed_overrides = [*same_data(args.recipe, recipe_overrides), *(QUICK_SEED if args.quick else []),
                          "train.epochs=4", f"train.steps_per_epoch={max(1, steps // 4)}", f"train.batch_size={batch}",
                          "train.schedule=constant", "train.val_f2_images=0", "train.collapse_patience=0",
                          "train.validation_steps=4", "tune.enabled=false", "predict.whole_image=false",
                          "evaluate.plot_examples=0", f"evaluate.max_images={scored}", f"predict.max_images={scored}",
                          *tiny]
        metrics, _, wall = run_recipe(SEED_SETUP, seed_overrides, base / f"seed-setup-{seed}")
        seed_rows.append(row(metrics, wall))
        print(f"seed {seed}: seed project's setup ({steps} steps, the recipe's {budget:.0f} s of training) test f2 "
              f"{metrics['f2']:.4f} (all-empty baseline {metrics['f2_all_empty_baseline']:.4f}) on {metrics['images']} "
              "test images", flush=True)
    table = [(f"recipe, seed {s}", r) for s, r in zip(seeds, recipe_rows, strict=True)]
    seed_setup_seeds = list(seeds)[:len(seed_rows)]
    mean, low = summarise(recipe_rows)
    table += [("recipe, mean", mean), ("recipe, min", low)]
    if seed_rows:
        table += [(f"seed setup, seed {s} ({r['test images']} test images)", r)
                  for s, r in zip(seed_setup_seeds, seed_rows, strict=True)]
        seed_mean, _ = summarise(seed_rows)
        table.append(("seed setup, mean", seed_mean))
    print(f"\nrecipe: {args.recipe} {' '.join(args.overrides)}; test sets: "
          f"{', '.join(str(r['test images']) for r in recipe_rows)} images\n")
    print(markdown(table) + "\n")
    report("quality_test_f2_mean", mean["test f2"], "f2")
    report("quality_test_f2_min", low["test f2"], "f2")
    report("quality_all_empty_baseline_mean", mean["all-empty baseline"], "f2")
    report("quality_test_f2_over_baseline", mean["test f2"] / mean["all-empty baseline"], "x")
    report("quality_fp_rate_empty_mean", mean["FP rate on empty"], "fraction")
    report("quality_f2_ship_images_mean", mean["f2 on ship images"], "f2")
    report("quality_image_recall_mean", mean["image recall"], "fraction")
    report("quality_wall_mean", mean["wall s"], "s")
    report("quality_wall_max", max(r["wall s"] for r in recipe_rows), "s")
    if seed_rows:
        report("quality_seed_setup_test_f2_mean", seed_mean["test f2"], "f2")
        report("quality_seed_setup_over_baseline", seed_mean["test f2"] / seed_mean["all-empty baseline"], "x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
