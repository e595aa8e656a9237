"""Compare, on the same held-out synthetic test images: the seed's setup, resnet34_mixed, and
resnet34_mixed + the ship/no-ship gate + splitting of touching ships (by shape, and along a
learned seam channel). Prints a Markdown table (f2 beside the all-empty baseline, false-positive
rate on empty images) and writes it to OUT/comparison.md.

    python examples/compare_gate.py                  # CPU preset: shortened training (~20 min on 2 cores)
    python examples/compare_gate.py --preset full    # the example configs as they are (a GPU)
    python examples/compare_gate.py --tiny           # seconds: what the tests run

The gate and shape-splitting rows reuse one resnet34_mixed segmenter, so those rows differ only
by the option named; the seam row trains its own segmenter (with a second output channel) and
gate. Every threshold (segmenter, min_area, gate) is chosen on the validation images and every
f2 is measured on the independent test set, beside its all-empty baseline.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import shiptoolkit

HERE = Path(__file__).parent
# Shortened training for a 2-core CPU: same components, fewer and smaller steps.
CPU = {
    "common": ["data.synthetic_images=600", "data.val_fraction=0.1", "predict.tta=false", "evaluate.without_gate=true",
               "train.validation_steps=10", "evaluate.plot_examples=3"],
    "seed": ["train.epochs=4", "train.steps_per_epoch=40", "train.batch_size=8"],
    "gated": ["sampler.patch_size=128", "train.epochs=4", "train.steps_per_epoch=40", "train.batch_size=8",
              "train.learning_rate=0.001", "classifier.name=cnn_classifier", "classifier.epochs=6",
              "classifier.steps_per_epoch=25", "classifier.learning_rate=0.001"],
}
TINY = {
    "common": ["data.synthetic_images=24", "data.image_size=128", "data.val_fraction=0.25", "predict.tta=false",
               "data.synthetic_test_images=12", "evaluate.without_gate=true",
               "evaluate.plot_examples=0", "train.validation_steps=1", "evaluate.scan_thresholds=[]"],
    "seed": ["train.epochs=1", "train.steps_per_epoch=2", "train.batch_size=4", "sampler.patch_size=64",
             "backbone.base_filters=4", "backbone.depth=2"],
    "gated": ["sampler.patch_size=64", "backbone.name=unet", "backbone.base_filters=4", "backbone.depth=2",
              "train.epochs=1", "train.steps_per_epoch=2", "train.batch_size=4", "classifier.name=cnn_classifier",
              "classifier.image_size=64", "classifier.epochs=1", "classifier.steps_per_epoch=2",
              "classifier.batch_size=4", "classifier.base_filters=4", "classifier.depth=3"],
}
PRESETS = {"cpu": CPU, "tiny": TINY, "full": {"common": [], "seed": [], "gated": []}}


def row(setup: str, m: dict, f2_key: str = "f2") -> dict:
    return {"setup": setup, "f2": m[f2_key], "all-empty baseline": m["f2_all_empty_baseline"],
            "FP rate on empty images": m["false_positive_rate_empty"], "image recall": m["image_recall"],
            "predicted ships": m["pred_ships"], "true ships": m["true_ships"]}


def markdown(rows: list[dict]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        lines.append("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    return "\n".join(lines)


def compare(out: Path, preset: str = "cpu", progress: bool = True) -> list[dict]:
    p = PRESETS[preset]
    common = [*p["common"], f"run.out_dir={json.dumps(str(out))}"]
    if preset == "tiny":  # keep the tiny dataset out of the user's cache
        common.append(f"data.cache_dir={json.dumps(str(out / 'cache'))}")
    seed = shiptoolkit.run(HERE / "unet_ship_patches.toml", overrides=[*common, *p["seed"]], progress=progress)
    gated = shiptoolkit.run(HERE / "resnet34_gated.toml", overrides=[*common, *p["gated"], "train.seam_channel=false"],
                            progress=progress)
    # The same segmenter without gate and splitting: resnet34_mixed's setup, scored on the same images.
    seam = shiptoolkit.run(HERE / "resnet34_gated.toml", overrides=[*common, *p["gated"], "train.seam_channel=true"],
                           progress=progress)
    plain = shiptoolkit.run(HERE / "resnet34_gated.toml", stages=["evaluate"], model=gated.train.best_model_path,
                            overrides=[*common, *(o for o in p["gated"] if not o.startswith("classifier.")),
                                       'classifier.name=""', "predict.split=none", "train.seam_channel=false"],
                            progress=progress)
    g, s = gated.evaluate.metrics, seed.evaluate.metrics
    gate_only = {**g, "f2": g["f2_without_split"]}
    rows = [row("seed: unet, ship_patches, dice", s), row("resnet34_mixed", plain.evaluate.metrics),
            row("resnet34_mixed + gate", gate_only), row("resnet34_mixed + gate + watershed split", g),
            row("resnet34_mixed + seam channel + gate + seam-guided split", seam.evaluate.metrics)]
    sm = seam.evaluate.metrics
    text = markdown(rows)
    extra = (f"\n\nGate ({gated.train.config['classifier']['name']}): threshold {g['gate_threshold']:.3f}, "
             f"precision {g['gate_precision']:.3f}, recall {g['gate_recall']:.3f}, "
             f"{g['gate_rejected_images']} of {g['images']} images rejected. "
             f"Split alone (no gate): f2 {g['f2_without_gate']:.4f}. Seam run without its split: "
             f"f2 {sm['f2_without_split']:.4f}; its gate threshold {sm['gate_threshold']:.3f}. "
             f"All-empty baseline on these images: f2 {g['f2_all_empty_baseline']:.4f}.\n"
             f"Runs: {seed.run_dir}, {gated.run_dir}, {plain.run_dir}, {seam.run_dir}\n")
    (out / "comparison.md").write_text(text + extra)
    (out / "comparison.json").write_text(json.dumps(rows, indent=2))
    print(text + extra)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/compare_gate"), help="where the runs go")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--tiny", action="store_true", help="same as --preset tiny")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    compare(args.out, "tiny" if args.tiny else args.preset, progress=not args.tiny)


if __name__ == "__main__":
    main()
