"""Whole-image prediction against sliding windows, in f2: does the default lose anything?

For each trained run (folders kept by `benchmarks/quality.py --keep DIR`, e.g. the quickstart's
three seeds), the validation images are predicted both ways and the post-processing (threshold,
min_area, the gate's threshold) is tuned for each way on them, as training does; each way's
tuned settings are then scored on the run's independent test set. Same weights, same process.
A third column is what a run does by default (`tune.windows`): both ways in one scan on
validation, whole images kept unless windows score higher there.

    python benchmarks/quality.py --keep runs-quality            # train the quickstart for 3 seeds
    python benchmarks/whole_vs_windows.py runs-quality/recipe-*  # then compare on their data
    python benchmarks/whole_vs_windows.py --quick                # CI-sized: one tiny run trained here

Prints a table (validation f2 tuned, test f2, each way, with the all-empty baselines) and
`name: value unit` lines: the mean differences whole - windows (>= 0: whole is not lower).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _common import report  # noqa: E402

HERE = Path(__file__).resolve().parent
QUICKSTART = HERE.parent / "examples" / "quickstart.toml"


def compare_run(run_path: Path) -> dict:
    """Validation f2 (each way tuned on validation) and test f2 (with that tuning) of one run."""
    from shiptoolkit.config import prepare_config
    from shiptoolkit.data.source import data_splits, stratified_subset
    from shiptoolkit.inference.gate import load_gate
    from shiptoolkit.inference.prediction import PredictSettings
    from shiptoolkit.models.saving import load_model
    from shiptoolkit.rundir import RunDir
    from shiptoolkit.scoring.evaluate import evaluate
    from shiptoolkit.training.tuning import tune_postprocess

    run = RunDir(run_path)
    out = {}
    as_run = prepare_config(run.config, load_plugins=False)  # the run's own config: no override
    splits = data_splits(as_run, progress=False)
    for name, whole, try_windows in (("whole", True, False), ("windows", False, False), ("tuned", True, True)):
        config = prepare_config(run.config, [f"predict.whole_image={str(whole).lower()}"], load_plugins=False)
        s = config.settings
        model, gate = load_model(run.best), load_gate(config, run.path)
        validation = stratified_subset(splits.role("validation"), s.tune.max_images, s.run.seed)
        tuned = tune_postprocess(model, validation, PredictSettings.from_config(config), s.tune.thresholds,
                                 s.tune.min_areas, gate, s.classifier.tune_threshold, s.tune.gate_floor,
                                 progress=False, split_depths=s.tune.split_depths, try_windows=try_windows)
        if try_windows:  # what the scan chose is used below (an override would otherwise keep whole images)
            config = as_run
            out["tuned choice"] = "whole" if tuned.get("whole_image", True) else "windows"
        if gate is not None:
            gate = dataclasses.replace(gate, threshold=tuned["classifier_threshold"])
        result = evaluate(config, model, index=splits.role("test"), progress=False, gate=gate, tuned=tuned)
        out.update({f"validation f2, {name}": tuned["f2"], f"test f2, {name}": result.metrics["f2"],
                    "validation baseline": tuned["f2_all_empty_baseline"],
                    "test baseline": result.metrics["f2_all_empty_baseline"],
                    "validation images": tuned["tuned_on"]["images"], "test images": result.metrics["images"]})
    return out


def quick_run(base: Path) -> Path:
    """A tiny quickstart run trained here (CI-sized: it checks the machinery, not the quality)."""
    sys.path.insert(0, str(HERE))
    from quality import QUICK

    overrides = [*QUICK, f"run.out_dir={base}", f"data.cache_dir={base / 'cache'}"]
    cmd = [sys.executable, "-m", "shiptoolkit", "run", str(QUICKSTART), "--quiet",
           *[a for o in overrides for a in ("--set", o)]]
    subprocess.run(cmd, check=True, capture_output=True)
    return next(p for p in base.iterdir() if p.is_dir() and p.name != "cache")


def compare(run: Path) -> dict:
    row = compare_run(run)
    print(f"{run}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
          flush=True)
    return row


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*",
                        help="run directories (from benchmarks/quality.py --keep DIR: DIR/recipe-*)")
    parser.add_argument("--quick", action="store_true", help="train one tiny run here and compare on it")
    args = parser.parse_args(argv)
    runs = [Path(r) for r in args.runs]
    # quality.py --keep gives DIR/recipe-N/<run name>: accept either level
    runs = [next((p for p in r.iterdir() if (p / "config.toml").is_file()), r) if not (r / "config.toml").is_file()
            else r for r in runs]
    with tempfile.TemporaryDirectory(prefix="shiptoolkit-whole-vs-windows-") as tmp:
        if args.quick or not runs:
            runs = [quick_run(Path(tmp))]
        rows = [compare(r) for r in runs]
    print("\n| run | validation f2 whole | windows | tuned (choice) | baseline | test f2 whole | windows | tuned | "
          "baseline |\n|---|---|---|---|---|---|---|---|---|")
    for r, row in zip(runs, rows, strict=True):
        print(f"| {r.parent.name}/{r.name} | {row['validation f2, whole']:.4f} | {row['validation f2, windows']:.4f} | "
              f"{row['validation f2, tuned']:.4f} ({row['tuned choice']}) | {row['validation baseline']:.4f} | "
              f"{row['test f2, whole']:.4f} | {row['test f2, windows']:.4f} | {row['test f2, tuned']:.4f} | "
              f"{row['test baseline']:.4f} |")
    for split in ("validation", "test"):
        for way, other in (("whole", "windows"), ("tuned", "windows"), ("tuned", "whole")):
            diffs = [row[f"{split} f2, {way}"] - row[f"{split} f2, {other}"] for row in rows]
            report(f"{split}_f2_{way}_minus_{other}_mean", statistics.fmean(diffs), "f2")
            report(f"{split}_f2_{way}_minus_{other}_min", min(diffs), "f2")
    for way in ("whole", "windows", "tuned"):
        report(f"validation_f2_{way}_mean", statistics.fmean(r[f"validation f2, {way}"] for r in rows), "f2")
        report(f"test_f2_{way}_mean", statistics.fmean(r[f"test f2, {way}"] for r in rows), "f2")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
