"""The ship cap (predict.max_ships): an image with more predicted ships than the cap gets none; tuned on validation."""

import numpy as np
import pytest

from shiptoolkit.config import load_config
from shiptoolkit.inference.prediction import PredictSettings, postprocess, ship_count
from shiptoolkit.scoring.competition import image_weights
from shiptoolkit.training.tuning import _scan_caps, capped, describe_tuned


def blobs(n: int, size: int = 64) -> np.ndarray:
    """Probabilities with `n` separate 3x3 blobs of 0.9 on a zero background."""
    prob = np.zeros((size, size), np.float32)
    for k in range(n):
        r, c = 4 + 8 * (k // 7), 4 + 8 * (k % 7)
        prob[r:r + 3, c:c + 3] = 0.9
    return prob


@pytest.mark.parametrize("cap, expected", [(0, 5), (5, 5), (6, 5), (4, 0), (1, 0)])
def test_an_image_with_more_ships_than_the_cap_gets_none(cap, expected):
    labels = postprocess(blobs(5), threshold=0.5, max_ships=cap)
    assert ship_count(labels) == expected


def test_the_cap_counts_ships_left_after_min_area():
    prob = blobs(3)
    prob[40:50, 40:50] = 0.9  # one big ship among three specks
    assert ship_count(postprocess(prob, 0.5, min_area=20, max_ships=1)) == 1
    assert ship_count(postprocess(prob, 0.5, min_area=0, max_ships=1)) == 0


def test_a_tuned_cap_reaches_predict_and_a_named_override_wins():
    config = load_config({})
    assert PredictSettings.from_config(config).max_ships == 0
    assert PredictSettings.from_config(config, {"threshold": 0.5, "max_ships": 8}).max_ships == 8
    named = config.with_overrides(["predict.max_ships=3"])
    assert PredictSettings.from_config(named, {"threshold": 0.5, "max_ships": 8}).max_ships == 3


def test_tuning_chooses_a_cap_that_empties_textured_land_and_keeps_off_on_a_tie():
    """Two empty images with false positives (many blobs on land, one speck at sea), two ship images."""
    empty = np.array([True, True, False, False])
    f2 = np.array([0.0, 0.0, 0.8, 0.6])[:, None, None]  # one candidate (threshold, min_area)
    ships = np.array([12, 1, 2, 3])[:, None, None]
    assert capped(f2, ships, empty, 5)[:, 0, 0].tolist() == [1.0, 0.0, 0.8, 0.6]
    cap, scores, scan = _scan_caps(f2, ships, empty, None, None, image_weights(empty, 0.779), 0, [3, 5, 10])
    assert cap == 10  # every cap from 3 to 10 empties the land image; the largest of them changes the fewest images
    assert scan[0] == {"max_ships": 0, "f2": pytest.approx(0.221 * 0.7)}
    assert scores.max() == pytest.approx(0.779 * 0.5 + 0.221 * 0.7)
    harmless = np.array([1, 1, 2, 3])[:, None, None]  # no image over any cap: off is kept ...
    assert _scan_caps(f2, harmless, empty, None, None, None, 0, [3, 5])[0] == 0
    assert _scan_caps(f2, harmless, empty, None, None, None, 8, [3, 5])[0] == 8  # ... or the config's own cap


def test_the_tuned_line_names_the_cap():
    info = {"threshold": 0.5, "min_area": 10, "classifier_threshold": None, "f2": 0.8, "f2_with_defaults": 0.7,
            "f2_all_empty_baseline": 0.779, "tuned_on": {"images": 10, "empty_images": 4}, "max_ships": 8}
    assert "max ships 8" in describe_tuned(info)
    assert "max ships off" in describe_tuned({**info, "max_ships": 0})
