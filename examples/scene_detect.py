"""Ships on a whole georeferenced scene, from start to end: synthesise a scene whose ships are known, train the
quickstart (or use a run you have), detect the ships on the whole scene, and score them against the truth.

    python examples/scene_detect.py --run runs/quickstart-20260101-120000   # a trained run: ~2 min on 2 cores
    python examples/scene_detect.py                                          # trains the quickstart first (~10 min)
    python examples/scene_detect.py --tiny                                   # a minute: what the tests run

Needs the geo extra: pip install 'shiptoolkit[geo]'. The same from the command line:

    shiptoolkit synth scene/ --scene --scene-size 3072
    shiptoolkit run quickstart
    shiptoolkit detect runs/quickstart-... scene/scene.tif --out ships.geojson

Then open OUT/scene/scene.tif, OUT/ships.geojson (what was found) and OUT/scene/scene.ships.geojson (the
truth) in QGIS.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import shiptoolkit
from shiptoolkit.scenes.against_truth import read_polygons, score_against_truth
from shiptoolkit.scenes.detect import detect_scenes
from shiptoolkit.scenes.synthetic import generate_scene

# --tiny: a 384 px scene, 128 px windows, and a 4-filter U-Net trained for a few steps on 128 px images (it
# checks that everything runs, not that ships are found).
TINY = ["data.synthetic_images=24", "data.synthetic_test_images=12", "data.image_size=128", "data.val_fraction=0.25",
        "backbone.base_filters=4", "backbone.depth=2", "train.epochs=1", "train.steps_per_epoch=3",
        "train.validation_steps=1", "train.batch_size=4", "train.val_f2_images=4", "classifier.image_size=64",
        "classifier.epochs=1", "classifier.steps_per_epoch=2", "classifier.batch_size=4", "classifier.depth=3",
        "evaluate.plot_examples=0"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a trained run directory (default: train the quickstart recipe first)")
    parser.add_argument("--out", default="scene-detect", help="folder for the scene, the run and the ships")
    parser.add_argument("--tiny", action="store_true", help="tiny scene and model (for tests)")
    args = parser.parse_args()
    out = Path(args.out)
    window = 128 if args.tiny else 768

    # 1. A synthetic scene: UTM 31N, 1.5 m pixels, a nodata collar, ships at known map coordinates, some of
    #    them across the borders of detect's windows (window px, no overlap: detect's defaults at 768).
    truth = generate_scene(out / "scene", size=384 if args.tiny else 3072, window=window, overlap=0.0, seed=7,
                           ships=12 if args.tiny else None, nodata_margin=window // 12)
    print(f"scene: {truth.path} ({truth.size} px, {len(truth.ships)} ships, {len(truth.crossing)} across window "
          f"borders)")

    # 2. A model: the quickstart recipe (gate, U-Net, tuned post-processing) on its synthetic 768 px chips.
    if args.run:
        run_dir = Path(args.run)
    else:
        overrides = [f"run.out_dir={out / 'runs'}", *(TINY + [f"data.cache_dir={out / 'cache'}"] if args.tiny else [])]
        run_dir = shiptoolkit.run("quickstart", overrides=overrides, progress=False).run_dir
    print(f"model: {run_dir}")

    # 3. Detect on the whole scene: windows streamed, stitched, the ships at their borders predicted again on
    #    windows centred on them, written as RFC 7946 GeoJSON (lon/lat).
    summary = detect_scenes(run_dir, truth.path, out / "ships.geojson", window=window)
    print(f"detect: {summary.ships} ships on {summary.km2:.2f} km² in {summary.seconds:.1f} s -> {summary.out}")

    # 4. Against the truth: found (IoU >= 0.5 with the true hull's pixels), found twice, false detections.
    score = score_against_truth(truth, read_polygons(summary.out, truth.crs))
    print("\n| ships | true | found (recall) | found twice or more |\n|---|---|---|---|")
    for name, crossing in (("inside windows", False), ("across window borders", True), ("all", None)):
        chosen = [m for m in score.matches if crossing is None or m.truth.crosses_border == crossing]
        print(f"| {name} | {len(chosen)} | {sum(m.found for m in chosen)} ({score.recall(crossing):.2f}) | "
              f"{sum(m.detections > 1 for m in chosen)} |")
    print(f"\n{score.false} of {score.detected} detections lie on no true ship (false detections).")


if __name__ == "__main__":
    main()
