"""k-fold cross-validation: the folds, the test-fold isolation, cv.json / oof.csv, resume, and the prior-weighted f2."""

import json
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner

import shiptoolkit.runner as runner
import shiptoolkit.training.stage as stage
from shiptoolkit.cli import cli
from shiptoolkit.config import load_config
from shiptoolkit.data.airbus import AirbusIndex
from shiptoolkit.data.folds import assign_folds, split_fold
from shiptoolkit.errors import ConfigError
from shiptoolkit.scoring.competition import F2Accumulator, image_weights, prior_weighted_f2
from shiptoolkit.training.tuning import scan_scores


def tiny_cv_config(root, out, folds=2, extra=None):
    """A 64 px Kaggle-layout dataset, a 4-filter U-Net, one short epoch, a one-point tuning scan."""
    return load_config({
        "run": {"name": "cvtest", "out_dir": str(out)},
        "data": {"path": str(root), "image_size": 64, "val_fraction": 0.25},
        "sampler": {"name": "mixed", "patch_size": 32},
        "backbone": {"name": "unet", "base_filters": 4, "depth": 2},
        "train": {"epochs": 1, "batch_size": 4, "steps_per_epoch": 2, "validation_steps": 1, "val_f2_images": 2,
                  "workers": 1},
        "tune": {"thresholds": [0.5], "min_areas": [0], "windows": False},
        "evaluate": {"plot_examples": 0},
        "cv": {"folds": folds},
        **(extra or {}),
    })


def test_folds_are_seeded_stratified_and_independent_of_the_csv_order(small_ship_dataset):
    index = AirbusIndex.from_kaggle(small_ship_dataset(30), shape=(64, 64))
    folds = assign_folds(index, 3, seed=5)
    assert sorted(folds) == sorted(index.image_ids)
    for ids in (index.ship_ids, index.empty_ids):  # each fold keeps the mix of ship and empty images
        counts = Counter(folds[i] for i in ids)
        assert max(counts.values()) - min(counts.values()) <= 1 and len(counts) == 3
    assert assign_folds(index.subset(index.image_ids[::-1]), 3, seed=5) == folds
    assert assign_folds(index, 3, seed=6) != folds
    rest, test = split_fold(index, 1, 3, seed=5)
    assert set(test.image_ids) == {i for i, f in folds.items() if f == 1}
    assert not set(rest.image_ids) & set(test.image_ids) and len(rest) + len(test) == len(index)


def test_a_group_of_overlapping_images_sits_in_one_fold(small_ship_dataset):
    index = AirbusIndex.from_kaggle(small_ship_dataset(30), shape=(64, 64))
    groups = {image_id: f"g{n // 3}" for n, image_id in enumerate(index.image_ids)}  # groups of 3 images
    folds = assign_folds(index, 4, seed=0, groups=groups)
    for group in set(groups.values()):
        assert len({folds[i] for i, g in groups.items() if g == group}) == 1


def test_a_folds_test_images_never_reach_a_choice_and_resume_runs_only_unfinished_folds(small_ship_dataset, tmp_path,
                                                                                      monkeypatch):
    """`shiptoolkit cv`: every choice (fit, val_f2 checkpointing, tuning) sees train/validation only, each fold is
    scored alone, cv.json / oof.csv / cv.png are written, and --resume reruns only a fold without its score."""
    seen_splits, tuned_on = [], []
    real_splits, real_tune = runner.data_splits, stage.tune_postprocess

    def spy_splits(config, progress=True):
        splits = real_splits(config, progress)
        seen_splits.append((config.settings.cv.fold, splits))
        return splits

    def spy_tune(model, index, *args, **kwargs):
        tuned_on.append(set(index.image_ids))
        return real_tune(model, index, *args, **kwargs)

    monkeypatch.setattr(runner, "data_splits", spy_splits)
    monkeypatch.setattr(stage, "tune_postprocess", spy_tune)
    root = small_ship_dataset(16)
    config = tmp_path / "cv.toml"
    config.write_text(tiny_cv_config(root, tmp_path / "runs").to_toml())
    first = CliRunner().invoke(cli, ["cv", str(config), "--quiet", "--seed", "3"])
    assert first.exit_code == 0, first.output
    assert "all-empty" in first.output and "prior-weighted f2" in first.output and "| mean |" in first.output
    assert [fold for fold, _ in seen_splits] == [0, 1]
    all_ids = set(AirbusIndex.from_kaggle(root, shape=(64, 64)).image_ids)
    tests = []
    for (fold, splits), tune_ids in zip(seen_splits, tuned_on, strict=True):
        test, train, val = set(splits.test.image_ids), set(splits.train.image_ids), set(splits.validation.image_ids)
        assert not test & (train | val), f"fold {fold}: test images in training or validation"
        assert tune_ids <= val and not tune_ids & test
        assert "cross-validation fold" in splits.test_source
        tests.append(test)
    assert tests[0] | tests[1] == all_ids and not tests[0] & tests[1]
    cv_dir = next((tmp_path / "runs").glob("cvtest-cv-*"))
    saved = json.loads((cv_dir / "cv.json").read_text())
    for key in ("f2", "baseline", "f2_prior_weighted", "fp_rate_empty", "f2_ship_images"):
        assert key in saved["mean"] and all(key in fold for fold in saved["folds"])
    empty = {i for i in all_ids if int(i[1:3]) % 2}  # odd images are the empty ones
    assert [f["baseline"] for f in saved["folds"]] == [len(t & empty) / len(t) for t in tests]
    oof = (cv_dir / "oof.csv").read_text().splitlines()
    assert len(oof) == 1 + len(all_ids) and oof[0].startswith("fold,ImageId")
    assert (cv_dir / "cv.png").stat().st_size > 5_000

    fold_runs = sorted(p for p in cv_dir.iterdir() if p.is_dir())
    assert [p.name.split("-")[1] for p in fold_runs] == ["fold0", "fold1"]
    (fold_runs[1] / "metrics.json").unlink()  # fold 1 "was interrupted"
    again = CliRunner().invoke(cli, ["cv", "--resume", str(cv_dir), "--quiet"])
    assert again.exit_code == 0, again.output
    assert [fold for fold, _ in seen_splits] == [0, 1, 1]
    assert len(list(cv_dir.glob("cvtest-fold0-*"))) == 1 and len(list(cv_dir.glob("cvtest-fold1-*"))) == 2
    assert load_config(cv_dir / "cv_config.toml").settings.cv.seed == 3


@pytest.mark.parametrize("override, message", [
    ("cv.fold=1", "set by `shiptoolkit cv`"),
    ('data.test_path="elsewhere"', "data.test_path"),
    ('run.stages=["train"]', "needs \"evaluate\""),
])
def test_cv_refuses_what_would_not_be_a_cross_validation(small_ship_dataset, tmp_path, override, message):
    config = tmp_path / "cv.toml"
    config.write_text(tiny_cv_config(small_ship_dataset(24), tmp_path / "runs").to_toml())
    result = CliRunner().invoke(cli, ["cv", str(config), "--set", override])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_a_cv_fold_and_a_test_fraction_are_one_test_set_too_many(small_ship_dataset):
    from shiptoolkit.data.source import data_splits

    config = tiny_cv_config(small_ship_dataset(24), "runs", extra={"cv": {"folds": 2, "fold": 0}})
    with pytest.raises(ConfigError, match="data.test_fraction = 0"):
        data_splits(config.with_overrides(["data.test_fraction=0.2"]), progress=False)


def test_prior_weighted_f2_is_computed_as_defined():
    assert prior_weighted_f2(0.1, 0.4, 0.779) == pytest.approx(0.779 * 0.9 + 0.221 * 0.4)
    acc = F2Accumulator(empty_prior=0.8)
    empty, ship = np.zeros((0, 0)), np.zeros((1, 0))  # iou matrices: (true ships, predicted ships)
    acc.add("e1", empty)
    acc.add("e2", np.zeros((0, 1)))  # a false positive on an empty image
    acc.add("s1", np.array([[1.0]]))  # a ship found exactly
    acc.add("s2", ship)  # a ship missed
    summary = acc.summary()
    assert summary["false_positive_rate_empty"] == 0.5 and summary["f2_ship_images"] == 0.5
    assert summary["f2_prior_weighted"] == pytest.approx(0.8 * 0.5 + 0.2 * 0.5)
    assert summary["f2"] == pytest.approx((1 + 0 + summary["f2_ship_images"] * 2) / 4)


def test_tuning_weighed_to_the_prior_scores_the_prior_weighted_f2():
    """Weighted scan scores equal prior_weighted_f2 of the same choice; a weight of empties changes the choice."""
    empty = np.array([True, True, False, False, False, False])
    # two candidate thresholds: 0 finds every ship but fires on one empty image; 1 misses half the ships
    f2 = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [1.0, 1.0]])[:, :, None]
    plain = scan_scores(f2, empty, None, None)[0, :, 0]
    weighted = scan_scores(f2, empty, None, None, image_weights(empty, 0.779))[0, :, 0]
    assert plain.argmax() == 0 and weighted.argmax() == 1
    assert weighted[0] == pytest.approx(prior_weighted_f2(0.5, 1.0, 0.779))
    assert weighted[1] == pytest.approx(prior_weighted_f2(0.0, 0.5, 0.779))


def test_score_prints_the_prior_weighted_f2_beside_its_baseline(tmp_path):
    truth = tmp_path / "truth.csv"
    truth.write_text("ImageId,EncodedPixels\na.jpg,1 3\nb.jpg,\n")
    result = CliRunner().invoke(cli, ["score", str(truth), str(truth), "--size", "8", "--empty-prior", "0.9"])
    assert result.exit_code == 0, result.output
    assert "f2 prior-weighted: 1.0000   all-empty baseline: 0.9000" in result.output


def test_an_interrupted_cross_validation_says_how_to_resume_it(tmp_path, capsys, monkeypatch):
    import shiptoolkit.cv as cv
    from shiptoolkit.cli import interrupts

    monkeypatch.setattr(cv, "_active", [tmp_path / "real_cpu-cv-20261206-101500"])
    monkeypatch.setattr(interrupts, "_also", [cv.resume_hint])
    interrupts._say_interrupted(tmp_path / "real_cpu-cv-20261206-101500" / "real_cpu-fold2-20261206-103000")
    err = capsys.readouterr().err
    assert "train --resume" in err  # the fold's own run ...
    assert f"shiptoolkit cv --resume {tmp_path / 'real_cpu-cv-20261206-101500'}" in err  # ... and the whole cv
