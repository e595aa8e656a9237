"""Whole scenes (`shiptoolkit detect`) against issue 28's targets: memory, throughput, stitching.

    python benchmarks/scenes.py                           # trains the quickstart here (~4 min on 2 cores),
                                                          # then 3,072 and 12,288 px scenes (~20 min in all)
    python benchmarks/scenes.py --run runs/quickstart-... # an existing run instead (its data.image_size: 768)
    python benchmarks/scenes.py --quick                   # CI-sized: a brightness "model", 256 and 512 px scenes
    python benchmarks/scenes.py --run ... --set predict.whole_image=true   # settings for detect and predict alike
    python benchmarks/scenes.py --run ... --speed-only    # (b) alone: the small scenes' throughput (~3 min)

The model is a trained run (by default the quickstart recipe, trained here on its synthetic data; with
--quick an untrained brightness model that checks the machinery, not the quality). The scenes come from
`shiptoolkit.scenes.synthetic.make_scene` (their ships and which cross window borders are known);
windows are data.image_size px (768: the chips the model was trained on).

(a) Peak memory: each `detect` runs in a fresh subprocess that reports its own peak RSS
    (resource.getrusage(RUSAGE_SELF).ru_maxrss at its end: what the parent's RUSAGE_CHILDREN reads
    for that child alone; TensorFlow and the model included): the small scene, then the large one,
    same model and window settings -> ratio (target <= 1.2).
(b) Throughput: km²/s of `detect` on the small scene (its defaults: windows that do not overlap, and
    centred windows for the ships at their borders; and without centred windows) against `predict`
    (`predict_stage`, as the CLI runs it) on the same pixels cut into window-sized JPGs, each in a
    fresh subprocess, timed around the one call: model loading and decoding included both ways;
    km² = the scene's whole area both ways; medians of 3 interleaved rounds -> ratios (target >= 0.9). The same
    on a "sparse" scene of the small one's size at the real data's density (0.42 ships per 768 px chip, a tenth of
    them across window borders: what a ~40 px ship's chance of meeting a border gives) where the stress scenes
    place 2 ships per chip, 40% of them across borders.
(c) Stitching, on both scenes' truth (their crossing ships are placed on detect's default grid): extra
    detections of one ship on different sides of a window core border, and of those, the ones
    stitching caused (target 0): more detections on the ship than instances `predict` leaves on the
    chip centred on it (a hull the model itself breaks up on a chip is the model's); recall of ships
    inside windows - recall of ships across borders (IoU >= 0.5; target <= 0.02; plain, and within
    size quintiles since the ships clear of every border are smaller on average; each with its
    binomial SE); the paired figure: every ship across borders, found by detect vs found by
    `predict_images` (what `predict` runs on a decoded image: same model, settings, gate and
    post-processing) on a window-sized chip centred on it, read as detect reads the scene (with a
    model that predicts by sliding patches, the chip's origin on the scene's patch lattice, so that
    predict lays its patches where detect laid them: `shiptoolkit.scenes.lattice`); for up to
    CONTROL_CHIPS ships inside windows, the same on the window of detect's grid that holds it and on a
    chip centred on it (the control: the difference of the two groups' detect - centred chip is the
    stitching's cost in recall, paired, the ships' sizes and looks cancelling out); and the distance
    (px) between the centroids both give a ship they found, per group (target <= 1 px).

--set KEY=VALUE (repeatable) goes to detect and predict alike, e.g. predict.whole_image=true: the
quickstart's model on whole windows (no patch lattice: centred windows at the borders).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _common import report  # noqa: E402

HERE = Path(__file__).resolve().parent
QUICKSTART = HERE.parent / "examples" / "quickstart.toml"
FULL = {"small": 3072, "large": 12288, "window": 768, "ships": {}}  # make_scene's 2 ships per 768 px of area
QUICK = {"small": 256, "large": 384, "window": 128, "ships": {"small": 8, "large": 12}}
REAL_SHIPS_PER_CHIP, REAL_CROSSING = 0.42, 0.1  # the sparse scene: Airbus' 81,723 ships on 192,556 chips
CONTROL_CHIPS = 400  # ships inside windows that predict also sees on their chips (the control): all on the scenes here


def train_run(base: Path) -> Path:
    """The quickstart recipe trained here on its synthetic data."""
    cmd = [sys.executable, "-m", "shiptoolkit", "run", str(QUICKSTART), "--quiet", "--set", f"run.out_dir={base}"]
    subprocess.run(cmd, check=True, capture_output=True)
    return next(p for p in base.iterdir() if (p / "config.toml").is_file())


def brightness_run(base: Path, window: int) -> Path:
    """--quick: a run directory whose model is untrained arithmetic, no training: ship probability = mean
    brightness / 255 (the bright hulls are found, and bright clouds; dark hulls are not). It checks the
    machinery (the figures' plumbing), not the quality."""
    import keras
    import numpy as np

    from shiptoolkit.models.saving import save_model
    from shiptoolkit.rundir import RunDir

    run = RunDir(base / "brightness")
    shutil.rmtree(run.path, ignore_errors=True)  # an earlier --keep run's
    run.path.mkdir(parents=True)
    run.config.write_text(f'[run]\nname = "brightness"\n[data]\nimage_size = {window}\n')
    inputs = keras.Input((window, window, 3))
    conv = keras.layers.Conv2D(1, 1, use_bias=False)
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.full((1, 1, 3, 1), 1 / 765, "float32")])
    save_model(model, run.best)
    run.postprocess.write_text(json.dumps({"threshold": 0.5, "min_area": 20}))  # no specks of grey hulls
    return run.path


def child(task: dict) -> dict:
    """Run one measured task in this (fresh) process; returns its figures and this process's peak RSS."""
    start = time.perf_counter()
    if task["kind"] == "detect":
        from shiptoolkit.scenes.detect import detect_scenes
        from shiptoolkit.scenes.recentre import DEFAULT_CONTEXT

        summary = detect_scenes(task["run"], task["scene"], task["out"], window=task["window"],
                                overlap=task["overlap"], border_context=task.get("border_context", DEFAULT_CONTEXT),
                                progress=False, force=True, overrides=task.get("overrides", ()))
        out = {"ships": summary.ships, "windows": summary.windows, "valid_km2": summary.km2,
               "centred_windows": sum(s.centred_windows for s in summary.scenes)}
    else:
        from shiptoolkit.cli.predict import _model_config_and_gate
        from shiptoolkit.inference.stage import predict_stage

        model, config, gate = _model_config_and_gate(None, None, task["run"], tuple(task.get("overrides", ())), False)
        Path(task["out"]).unlink(missing_ok=True)  # an earlier --keep run's
        result = predict_stage(config, model, task["run"], progress=False, images=task["images"], out=task["out"],
                               gate=gate)
        out = {"images": result.total_images, "submission": str(result.path)}
    out["seconds"] = time.perf_counter() - start
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return out


def in_subprocess(task: dict) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", json.dumps(task)], capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{task['kind']} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def make_scenes(base: Path, sizes: dict, names=("small", "large", "sparse")) -> dict:
    """The small and large scenes, their crossing ships placed on the borders of detect's default grid, and the
    sparse one (kept ones in `base`, from an earlier --keep run with the same sizes, are used again)."""
    from shiptoolkit.scenes.detect import DEFAULT_OVERLAP
    from shiptoolkit.scenes.synthetic import load_truth, make_scene

    scenes = {}
    for name in names:
        start = time.perf_counter()
        kept = base / f"{name}.truth.json"
        truth = load_truth(kept) if kept.is_file() else None
        how = f"kept from an earlier run ({kept})"
        size = sizes["large" if name == "large" else "small"]
        if truth is None or (truth.size, truth.window, truth.overlap) != (size, sizes["window"], DEFAULT_OVERLAP):
            if truth is not None:
                raise SystemExit(f"{kept} is a scene of other settings: give another --keep folder.")
            sparse = name == "sparse"
            ships = max(1, round(REAL_SHIPS_PER_CHIP * (size / sizes["window"]) ** 2)) if sparse \
                else sizes["ships"].get(name)
            truth = make_scene(base / f"{name}.tif", size=size, window=sizes["window"], overlap=DEFAULT_OVERLAP,
                               seed=29 if sparse else 28, nodata_margin=sizes["window"] // 12, ships=ships,
                               crossing_fraction=REAL_CROSSING if sparse else 0.4)
            how = "written"
        scenes[name] = truth
        print(f"# scene {name}: {truth.size} px, {len(truth.ships)} ships ({len(truth.crossing)} across window "
              f"borders), {how} in {time.perf_counter() - start:.0f} s", flush=True)
    return scenes


def cut_chips(scene: Path, folder: Path, window: int) -> int:
    """The scene cut into window x window JPGs (its 8-bit RGB, as predict reads images); how many."""
    import cv2
    import rasterio
    from rasterio.windows import Window

    shutil.rmtree(folder, ignore_errors=True)  # an earlier --keep run's
    folder.mkdir()
    count = 0
    with rasterio.open(scene) as src:
        for row in range(0, src.height - window + 1, window):
            for col in range(0, src.width - window + 1, window):
                rgb = src.read((1, 2, 3), window=Window(col, row, window, window)).transpose(1, 2, 0)
                cv2.imwrite(str(folder / f"r{row}_c{col}.jpg"), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
                count += 1
    return count


def memory_and_speed(run: Path, scenes: dict, base: Path, window: int, repeats: int, overrides: list) -> dict:
    """(a) and (b): the detect and predict subprocesses; their outputs are kept for (c)."""
    small, large = scenes["small"], scenes["large"]
    task = {"kind": "detect", "run": str(run), "window": window, "overlap": small.overlap, "overrides": overrides}
    det_large = in_subprocess({**task, "scene": str(large.path), "out": str(base / "large.gpkg")})
    det_small = speed(run, scenes, base, window, repeats, overrides)
    report(f"detect_peak_rss_{small.size}px", det_small["peak_rss_mb"], "MiB")
    report(f"detect_peak_rss_{large.size}px", det_large["peak_rss_mb"], "MiB")
    report("detect_peak_rss_large_over_small", det_large["peak_rss_mb"] / det_small["peak_rss_mb"], "x")
    report("detect_peak_rss_large_minus_small", det_large["peak_rss_mb"] - det_small["peak_rss_mb"], "MiB")
    report(f"detect_centred_windows_{large.size}px", det_large["centred_windows"], "windows")
    print(f"# large scene: {det_large['windows']} windows, {det_large['seconds']:.0f} s", flush=True)
    return {"small": base / "small-0.gpkg", "large": base / "large.gpkg"}


def speed(run: Path, scenes: dict, base: Path, window: int, repeats: int, overrides: list) -> dict:
    """(b): medians of `repeats` rounds, each running detect (its defaults), detect without centred windows and
    predict on the small scene, then detect and predict on the sparse one, one after the other (the machines are
    shared: a round sees about the same load throughout); returns the first round's small detect."""
    import statistics

    small, sparse = scenes["small"], scenes["sparse"]
    task = {"kind": "detect", "run": str(run), "window": window, "overlap": small.overlap, "overrides": overrides}
    alt = "detect_no_centred_windows"
    chips = {name: cut_chips(truth.path, base / f"{name}-chips", window)
             for name, truth in (("small", small), ("sparse", sparse))}

    def predict(name: str, r: int) -> dict:
        return in_subprocess({"kind": "predict", "run": str(run), "images": str(base / f"{name}-chips"),
                              "out": str(base / f"{name}-chips-{r}.csv"), "overrides": overrides})

    rounds = []
    for r in range(repeats):
        rounds.append({
            "detect": in_subprocess({**task, "scene": str(small.path), "out": str(base / f"small-{r}.gpkg")}),
            alt: in_subprocess({**task, "border_context": 0, "scene": str(small.path),
                                "out": str(base / f"other-{r}.gpkg")}),
            "predict_jpg_chips": predict("small", r),
            "sparse_detect": in_subprocess({**task, "scene": str(sparse.path), "out": str(base / f"sparse-{r}.gpkg")}),
            "sparse_predict_jpg_chips": predict("sparse", r)})
    km2 = (small.size * small.pixel_size_m / 1000) ** 2
    seconds = {name: statistics.median(r[name]["seconds"] for r in rounds) for name in rounds[0]}
    for name, value in seconds.items():
        report(f"{name}_km2_per_s", km2 / value, "km2/s")
    report("detect_over_predict_throughput", seconds["predict_jpg_chips"] / seconds["detect"], "x")
    report(f"{alt}_over_predict_throughput", seconds["predict_jpg_chips"] / seconds[alt], "x")
    report("sparse_detect_over_predict_throughput", seconds["sparse_predict_jpg_chips"] / seconds["sparse_detect"],
           "x")
    first = rounds[0]
    report(f"detect_centred_windows_{small.size}px", first["detect"]["centred_windows"], "windows")
    report("sparse_detect_centred_windows", first["sparse_detect"]["centred_windows"], "windows")
    print(f"# {chips['small']} JPG chips of {window} px for predict on each of the small and sparse scenes "
          f"({len(sparse.ships)} ships, {len(sparse.crossing)} across borders); detect windows: "
          f"{first['detect']['windows']} (overlap {small.overlap:g}) + {first['detect']['centred_windows']} centred "
          f"windows (sparse: + {first['sparse_detect']['centred_windows']}); medians of {repeats} round(s): "
          + ", ".join(f"{name} {value:.1f} s" for name, value in seconds.items()), flush=True)
    return first["detect"]


def stitching(run: Path, scenes: dict, outputs: dict, window: int, overrides: list) -> None:
    """(c): duplicates across core borders (stitching's) apart from hulls the model split; recall across borders
    against inside windows (size-matched) and against predict on a chip centred on each ship (paired)."""
    from shiptoolkit.scenes.against_truth import read_polygons, score_against_truth

    matches, detected, false = [], 0, 0
    for name, truth in scenes.items():
        score = score_against_truth(truth, read_polygons(outputs[name], truth.crs))
        matches += [(truth, m) for m in score.matches]
        detected, false = detected + score.detected, false + score.false
    crossing = [m for _, m in matches if m.truth.crosses_border]
    inside = [m for _, m in matches if not m.truth.crosses_border]
    report("scene_ships_across_borders", len(crossing), "ships")
    report("scene_ships_inside_windows", len(inside), "ships")
    duplicates(matches)
    report("scene_false_detections", false, "ships")
    print(f"# {detected} detections in all; found = IoU >= 0.5 with the truth's pixels", flush=True)
    recalls(crossing, inside)
    against_chips(run, matches, window, overrides)


def duplicates(matches: list) -> None:
    """Extra detections of one true ship: on different sides of a window core border (what stitching could cause:
    target 0), or in one core (the model left the hull in pieces, sea between them, as `predict` would)."""
    from bisect import bisect

    from shiptoolkit.scenes.stitch import WindowGrid

    across = split = touching = 0
    for truth, m in matches:
        if m.detections < 2:
            continue
        grid = WindowGrid(truth.size, truth.size, truth.window, truth.overlap)
        cells = {(bisect(grid.row_bounds, row), bisect(grid.col_bounds, col)) for col, row in m.centroids}
        across += len(cells) - 1
        split += m.detections - len(cells)
        touching += m.touching
    report("scene_duplicates_across_core_borders", across, "ships")
    report("scene_hulls_split_by_model", split, "ships")
    report("scene_duplicates_touching", touching, "pairs")


def recalls(crossing: list, inside: list) -> None:
    """Recall across borders and inside windows; their difference, plain and size-matched, each with its
    binomial standard error (the noise: ships are found or not)."""
    import math

    across, within = (sum(m.found for m in ms) / max(1, len(ms)) for ms in (crossing, inside))
    report("scene_recall_across_borders", across, "recall")
    report("scene_recall_inside_windows", within, "recall")
    report("scene_recall_inside_minus_across", within - across, "recall")
    report("scene_recall_inside_minus_across_se", math.sqrt(across * (1 - across) / max(1, len(crossing))
                                                            + within * (1 - within) / max(1, len(inside))), "recall")
    diff, se = size_matched_difference(crossing, inside)
    report("scene_recall_inside_minus_across_size_matched", diff, "recall")
    report("scene_recall_inside_minus_across_size_matched_se", se, "recall")


def size_matched_difference(crossing: list, inside: list, bins: int = 5) -> tuple[float, float]:
    """Recall inside - recall across borders within quintiles of true area, averaged with the across ships'
    weights, and its standard error: ships placed clear of every border are smaller on average (a big one rarely
    fits between borders), and small ships are harder to find, so the plain difference mixes size with stitching."""
    import numpy as np

    area = np.array([m.truth.area_m2 for m in crossing + inside])
    edges = np.quantile(area, np.linspace(0, 1, bins + 1))[1:-1]
    diffs, variances, weights = [], [], []
    for b in range(bins):
        across = [m.found for m in crossing if np.searchsorted(edges, m.truth.area_m2, "right") == b]
        within = [m.found for m in inside if np.searchsorted(edges, m.truth.area_m2, "right") == b]
        if across and within:
            pa, pw = np.mean(across), np.mean(within)
            diffs.append(pw - pa)
            variances.append(pa * (1 - pa) / len(across) + pw * (1 - pw) / len(within))
            weights.append(len(across))
    if not weights:
        return float("nan"), float("nan")
    w = np.array(weights, float) / sum(weights)
    return float(np.dot(w, diffs)), float(np.sqrt(np.dot(w ** 2, variances)))


def against_chips(run: Path, matches: list, window: int, overrides: list) -> None:
    """`predict` on the chip of every ship across borders (centred on it) and of up to CONTROL_CHIPS ships inside
    windows (the window holding it): found by detect vs by predict on its chip, ship by ship (paired, with its
    SE); the detections of a ship across borders beyond the instances predict leaves on its chip (stitching's
    duplicates: target 0); and the distance between the centroids both give a ship they both found (target
    <= 1 px)."""
    import numpy as np

    from shiptoolkit.scenes.against_chips import paired_difference, predict_on_centred_chips
    from shiptoolkit.scenes.detect import load_detector

    detector = load_detector(run, overrides=overrides)
    inside = [(t, m) for t, m in matches if not m.truth.crosses_border][:CONTROL_CHIPS]
    groups = {"across_borders": ([(t, m) for t, m in matches if m.truth.crosses_border], True),
              "inside_windows": (inside, False), "inside_windows_centred": (inside, True)}
    differences = {}
    for name, (chosen, centred) in groups.items():
        pairs = []
        for truth in {id(t): t for t, _ in chosen}.values():
            mine = [m for t, m in chosen if t is truth]
            pairs += zip(mine, predict_on_centred_chips(detector, truth, [m.truth for m in mine], window,
                                                        centred=centred), strict=True)
        by_detect, by_chip = [m.found for m, _ in pairs], [c.found for _, c in pairs]
        diff, se = paired_difference(by_detect, by_chip)
        differences[name] = (diff, se)
        chip = "centred_chip" if centred else "window_chip"
        report(f"scene_chips_{name}", len(pairs), "ships")
        report(f"scene_recall_{name}_detect", float(np.mean(by_detect)) if pairs else float("nan"), "recall")
        report(f"scene_recall_{name}_predict_on_{chip}", float(np.mean(by_chip)) if pairs else float("nan"),
               "recall")
        report(f"scene_recall_{name}_detect_minus_chip", diff, "recall")
        report(f"scene_recall_{name}_detect_minus_chip_se", se, "recall")
        report(f"scene_duplicates_{name}_beyond_chip", sum(max(0, m.detections - max(1, c.instances))
                                                           for m, c in pairs), "ships")
        distances = [float(np.hypot(m.centroid[0] - c.centroid[0], m.centroid[1] - c.centroid[1]))
                     for m, c in pairs if m.found and c.found]
        if distances:
            report(f"scene_centroid_{name}_vs_{chip}_median", float(np.median(distances)), "px")
            report(f"scene_centroid_{name}_vs_{chip}_p95", float(np.percentile(distances, 95)), "px")
            report(f"scene_centroid_{name}_vs_{chip}_max", float(np.max(distances)), "px")
            report(f"scene_centroid_{name}_within_1px_share", float(np.mean(np.array(distances) <= 1.0)), "share")
        print(f"# {name}: centroids compared on {len(distances)} ships found by both", flush=True)
    (across, se_a), (control, se_c) = differences["across_borders"], differences["inside_windows_centred"]
    report("scene_recall_across_minus_inside_vs_centred_chips", across - control, "recall")
    report("scene_recall_across_minus_inside_vs_centred_chips_se", float(np.hypot(se_a, se_c)), "recall")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a trained run directory (default: train the quickstart here)")
    parser.add_argument("--quick", action="store_true", help="CI-sized: a brightness model, small scenes")
    parser.add_argument("--keep", help="keep the scenes, run and outputs in this folder")
    parser.add_argument("--repeats", type=int, help="rounds of the throughput measurement (default 3; --quick 1)")
    parser.add_argument("--speed-only", action="store_true",
                        help="(b) alone: throughput on the small and sparse scenes (no large scene, no (c))")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting for detect and predict alike, as their --set (e.g. predict.whole_image=true)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return 0
    sizes = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="shiptoolkit-scenes-") as tmp:
        base = Path(args.keep or tmp)
        base.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        if args.run:
            run, what = Path(args.run), "given"
        elif args.quick:
            run, what = brightness_run(base, sizes["window"]), "--quick: untrained brightness model"
        else:
            run = train_run(base / "runs")
            what = f"the quickstart recipe, trained here in {time.perf_counter() - start:.0f} s"
        print(f"# model: {run} ({what})" + (f"; settings: {', '.join(args.set)}" if args.set else ""), flush=True)
        repeats = args.repeats or (1 if args.quick else 3)
        if args.speed_only:
            speed(run, make_scenes(base, sizes, ("small", "sparse")), base, sizes["window"], repeats, args.set)
            return 0
        scenes = make_scenes(base, sizes)
        outputs = memory_and_speed(run, scenes, base, sizes["window"], repeats, args.set)
        stitching(run, {name: scenes[name] for name in ("small", "large")}, outputs, sizes["window"], args.set)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
