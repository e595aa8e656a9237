"""The real Airbus files (a subset in `<repo root>/../shared/data/airbus-real`, see the `real_data` fixture): the
data checks clean, every mask lies on its ship in the Kaggle (column-major) convention, RLE and scoring round-trip,
and `predict` and a tiny `run` work on real 768 px JPGs. Skipped where the folder is absent, failed under CI=true."""

from __future__ import annotations

import json
import shutil

import cv2
import keras
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from shiptoolkit.cli import cli
from shiptoolkit.data.airbus import AirbusIndex, read_rgb
from shiptoolkit.data.rle import parse_rle, rle_decode, rle_encode, rles_to_mask
from shiptoolkit.scoring.submission import score_submission

CSV = "train_ship_segmentations_v2.csv"
IMAGES, WITH_SHIPS, SHIPS = 198, 125, 270  # the subset's counts (its SOURCE.md)
MOST = 0.85  # share of ships a mask criterion must hold for (measured: 92-94%; the transposed decode: 6-23%)
RING = cv2.getStructuringElement(cv2.MORPH_RECT, (9, 9))  # dilating by it adds a 4 px ring
BAND = np.ones((3, 3), np.uint8)
RED_ABOVE = 200  # the predict test's segmenter calls these pixels ship


def truth_rows(root) -> pd.DataFrame:
    return pd.read_csv(root / CSV, dtype=str, keep_default_na=False)


def test_data_check_of_the_real_data_finds_no_problem_and_the_known_counts(real_data):
    """`shiptoolkit data check` (every row, every image opened) on the real files: a failure means the checker
    flags real Kaggle data (a false alarm users would meet on their first run) or miscounts images or ships."""
    result = CliRunner().invoke(cli, ["data", "check", str(real_data), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["problems"] == {} and info["problem_examples"] == {}
    assert (info["images"], info["images"] - info["empty_images"], info["ships"]) == (IMAGES, WITH_SHIPS, SHIPS)
    per_image = {int(k): v for k, v in info["ships_per_image"].items()}
    assert sum(per_image.values()) == IMAGES and sum(k * v for k, v in per_image.items()) == SHIPS
    assert per_image[0] == IMAGES - WITH_SHIPS
    assert 0 < info["ship_area"]["min"] <= info["ship_area"]["median"] <= info["ship_area"]["max"] <= 768 * 768


def _contrast_and_edge(gray: np.ndarray, gradient: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """|mean grey inside the mask - mean grey of a 4 px ring around it|, and the mean gradient magnitude on a
    band along the mask's outline; computed in a crop around the mask (fast)."""
    rows, cols = np.nonzero(mask)
    r0, c0 = max(rows.min() - 8, 0), max(cols.min() - 8, 0)
    crop = (slice(r0, rows.max() + 9), slice(c0, cols.max() + 9))
    mask, gray, gradient = mask[crop], gray[crop], gradient[crop]
    inside = mask > 0
    ring = (cv2.dilate(mask, RING) > 0) & ~inside
    band = cv2.dilate(mask, BAND) != cv2.erode(mask, BAND)
    return abs(float(gray[inside].mean()) - float(gray[ring].mean())), float(gradient[band].mean())


def test_every_real_mask_lies_on_its_ship_and_beats_the_transposed_decode(real_data):
    """Each real ship's decoded mask is non-empty, inside the image, as large as its runs, and sits on the ship: its
    brightness differs from a 4 px ring around it and its outline follows image edges, better than the same RLE
    decoded transposed (row-major). A failure means `rle_decode` paints pixels in the wrong place (e.g. row-major,
    off by one) or images are read wrongly (a mask that no longer matches its image)."""
    index = AirbusIndex.from_kaggle(real_data)
    found = []  # per ship: (contrast, edge) of the decode, then of the transposed decode
    for record in index:
        if not record.rles:
            continue
        gray = cv2.cvtColor(index.read_image(record.image_id), cv2.COLOR_RGB2GRAY).astype(np.float32)
        gradient = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
        for rle in record.rles:
            mask = rle_decode(rle)
            _, lengths = parse_rle(rle)
            assert mask.shape == (768, 768) and 0 < int(mask.sum()) == int(lengths.sum()), record.image_id
            transposed = np.ascontiguousarray(mask.T)
            found.append(_contrast_and_edge(gray, gradient, mask) + _contrast_and_edge(gray, gradient, transposed))
    contrast, edge, contrast_t, edge_t = np.array(found).T
    assert contrast.size == SHIPS

    def share(held: np.ndarray) -> str:
        return f"{int(held.sum())}/{held.size} ships"

    differs, differs_t = contrast > 3, contrast_t > 3  # grey levels (0-255)
    assert differs.mean() >= MOST, f"mask brighter or darker than its ring for only {share(differs)}"
    assert differs_t.mean() < 0.5, f"the check cannot tell: the transposed decode passes it for {share(differs_t)}"
    brighter, sharper = contrast > contrast_t, edge > edge_t
    assert brighter.mean() >= MOST, f"contrast beats the transposed decode's for only {share(brighter)}"
    assert sharper.mean() >= MOST, f"outline sharper than the transposed decode's for only {share(sharper)}"


def test_every_real_rle_row_round_trips_through_decode_and_encode(real_data):
    """decode -> encode returns every real row's string exactly (and ship-free images have their empty row): a
    failure means the encoder and decoder disagree with each other or with Kaggle's format on real masks."""
    rows = truth_rows(real_data)
    ships = rows[rows["EncodedPixels"] != ""]
    assert len(ships) == SHIPS and rows["ImageId"].nunique() == IMAGES
    assert rows.loc[rows["EncodedPixels"] == "", "ImageId"].nunique() == IMAGES - WITH_SHIPS
    changed = [(i, r) for i, r in zip(ships["ImageId"], ships["EncodedPixels"], strict=True)
               if rle_encode(rle_decode(r)) != r]
    assert changed == [], f"{len(changed)} row(s) change, e.g. {changed[0][0]}"
    per_image = ships.groupby("ImageId")["EncodedPixels"].apply(list)
    for image_id, rles in per_image.items():  # one image's ships are disjoint: their union keeps every pixel
        assert int(rles_to_mask(rles).sum()) == sum(int(parse_rle(r)[1].sum()) for r in rles), image_id


def test_the_real_truth_scored_against_itself_is_perfect_and_all_empty_scores_the_baseline(real_data):
    """The competition metric on the real truth: the truth as a submission scores 1 (f2 and prior-weighted f2),
    and predicting no ship anywhere scores exactly the share of ship-free images (73/198). A failure means the
    metric misreads real RLE or miscounts empty images: every reported f2 and baseline would be wrong."""
    truth = real_data / CSV
    perfect = score_submission(truth, truth).summary
    assert perfect["f2"] == 1.0 and perfect["f2_prior_weighted"] == 1.0 and perfect["f2_ship_images"] == 1.0
    assert perfect["f2_all_empty_baseline"] == (IMAGES - WITH_SHIPS) / IMAGES
    assert (perfect["images"], perfect["true_ships"], perfect["pred_ships"]) == (IMAGES, SHIPS, SHIPS)
    empty = pd.DataFrame({"ImageId": truth_rows(real_data)["ImageId"].unique(), "EncodedPixels": ""})
    nothing = score_submission(empty, truth).summary
    assert nothing["f2"] == pytest.approx((IMAGES - WITH_SHIPS) / IMAGES, abs=1e-12)
    assert nothing["f2"] == pytest.approx(nothing["f2_all_empty_baseline"], abs=1e-12)
    assert nothing["f2_prior_weighted"] == pytest.approx(nothing["empty_prior"], abs=1e-12)


def bright_red_run(root, red_above: int = RED_ABOVE):
    """A run directory (config.toml + best.keras) whose segmenter's ship probability is
    sigmoid(40 (red - red_above - 0.5) / 255): exactly the pixels with red > red_above are ships, with no pixel
    near the 0.5 threshold, so the expected submission can be computed from the image."""
    from shiptoolkit.models.saving import save_model
    from shiptoolkit.rundir import RunDir

    inputs = keras.Input((32, 32, 3))
    conv = keras.layers.Conv2D(1, 1, activation="sigmoid")
    model = keras.Model(inputs, conv(keras.layers.Rescaling(1 / 255)(inputs)))
    conv.set_weights([np.array([40.0, 0, 0], "float32").reshape(1, 1, 3, 1),
                      np.array([-40.0 * (red_above + 0.5) / 255], "float32")])
    run = RunDir(root)
    run.path.mkdir(parents=True)
    save_model(model, run.best)
    run.config.write_text('[data]\nimage_size = 768\n[predict]\nthreshold = 0.5\nmin_area = 0\nsplit = "none"\n')
    return run.path


def test_predict_on_real_test_jpgs_writes_one_valid_row_set_per_image(real_data, tmp_path):
    """`shiptoolkit predict --run RUN --images DIR` on 4 real 768 px test_v2 JPGs, with a segmenter that calls ship
    every bright-red pixel: every image gets its rows (one empty row, or one per ship), the RLEs are valid and
    disjoint, and their union is exactly the image's bright-red pixels. A failure means real JPGs are read or
    predicted wrongly (size, colour order) or the submission's RLE is transposed or drops images."""
    folder = tmp_path / "test_v2"
    folder.mkdir()
    names = sorted(p.name for p in (real_data / "test_v2").glob("*.jpg"))[:4]
    for name in names:
        shutil.copy(real_data / "test_v2" / name, folder / name)
    out = tmp_path / "submission.csv"
    result = CliRunner().invoke(cli, ["predict", "--run", str(bright_red_run(tmp_path / "run")), "--images",
                                      str(folder), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "4 images" in result.output
    rows = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert sorted(rows["ImageId"].unique()) == names
    ships = 0
    for name in names:
        rles = [r for r in rows.loc[rows["ImageId"] == name, "EncodedPixels"] if r]
        assert int((rows["ImageId"] == name).sum()) == max(1, len(rles)), name  # an empty image: one empty row
        areas = [int(parse_rle(r, (768, 768))[1].sum()) for r in rles]  # raises on malformed RLE
        union = rles_to_mask(rles)
        assert int(union.sum()) == sum(areas), f"{name}: ships overlap"
        expected = read_rgb(folder / name)[..., 0] > RED_ABOVE
        assert np.array_equal(union.astype(bool), expected), f"{name}: the rows are not the image's bright pixels"
        ships += len(rles)
    assert ships > 0  # ships found: the comparison is not of empty masks only


def test_a_tiny_training_run_on_real_images_reports_f2_beside_the_baseline_of_its_test_images(real_data, tmp_path):
    """`shiptoolkit run` trains a 4-filter U-Net for a few steps on 24 real images (a quarter held out as the test
    set) and writes metrics.json with f2, its all-empty baseline, the prior-weighted f2, the false-positive rate on
    empty images and f2 on ship images; the baseline is the share of ship-free test images in the real CSV. A
    failure means a real-data run breaks (reading, splitting, 768 px evaluation) or reports a wrong baseline."""
    config = tmp_path / "real.toml"
    config.write_text(f"""
[run]
name = "real"
out_dir = "{(tmp_path / 'runs').as_posix()}"
[data]
path = "{real_data.as_posix()}"
image_size = 768
max_images = 24
test_fraction = 0.25
val_fraction = 0.25
cache_dir = "{(tmp_path / 'cache').as_posix()}"
[sampler]
name = "mixed"
patch_size = 64
patches_per_epoch = 32
[backbone]
name = "unet"
base_filters = 4
depth = 2
[train]
epochs = 1
batch_size = 8
val_f2_images = 2
[tune]
thresholds = [0.5]
min_areas = [0]
windows = false
[evaluate]
plot_examples = 1
""")
    result = CliRunner().invoke(cli, ["run", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "all-empty baseline f2" in result.output
    run_dir = next((tmp_path / "runs").iterdir())
    report = json.loads((run_dir / "metrics.json").read_text())
    metrics = report["metrics"]
    keys = ("f2", "f2_all_empty_baseline", "f2_prior_weighted", "false_positive_rate_empty", "f2_ship_images")
    assert set(keys) <= set(metrics), sorted(metrics)
    assert all(0.0 <= metrics[k] <= 1.0 for k in keys), {k: metrics[k] for k in keys}
    assert metrics["role"] == "test"
    tested = [row["ImageId"] for row in report["per_image"]]
    rows = truth_rows(real_data)
    ship_ids = set(rows.loc[rows["EncodedPixels"] != "", "ImageId"])
    assert len(tested) == metrics["images"] == len(set(tested)) and set(tested) <= set(rows["ImageId"])
    assert 0 < len(tested) < 24
    empty = sum(i not in ship_ids for i in tested)
    assert 0 < empty < len(tested)  # both kinds among the test images: the baseline check below can fail
    assert metrics["f2_all_empty_baseline"] == pytest.approx(empty / len(tested), abs=1e-12)
    assert metrics["empty_images"] == empty
    submitted = pd.read_csv(run_dir / "submission.csv", dtype=str, keep_default_na=False)
    assert set(submitted["ImageId"]) == set(tested)
