"""The competition metric on hand-computed cases."""

import numpy as np
import pytest

from shiptoolkit.data.rle import mask_to_runs
from shiptoolkit.scoring.competition import (
    THRESHOLDS,
    F2Accumulator,
    f2_from_iou,
    image_f2,
    image_f2_from_labels,
    iou_matrix_from_labels,
)


def labels(shape=(20, 20), *boxes):
    out = np.zeros(shape, np.int32)
    for i, (r0, r1, c0, c1) in enumerate(boxes, start=1):
        out[r0:r1, c0:c1] = i
    return out


def both_ways(true, pred):
    """The label-image path and the runs path must agree."""
    by_labels = image_f2_from_labels(true, pred)
    runs = lambda lab: [mask_to_runs(lab == i) for i in range(1, lab.max() + 1)]  # noqa: E731
    assert image_f2(runs(true), runs(pred)) == pytest.approx(by_labels)
    return by_labels


SHIP_A, SHIP_B = (0, 4, 0, 5), (10, 14, 10, 15)


def test_thresholds():
    assert THRESHOLDS.tolist() == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]


def test_perfect_and_empty_cases():
    two = labels((20, 20), SHIP_A, SHIP_B)
    empty = labels()
    assert both_ways(two, two) == 1.0
    assert both_ways(empty, empty) == 1.0  # no ships, nothing predicted
    assert both_ways(empty, two) == 0.0  # false positives on empty sea
    assert both_ways(two, empty) == 0.0  # predicted nothing


def test_one_of_two_ships_found():
    # TP=1, FN=1, FP=0 at every threshold: F2 = 5 / (5 + 4) = 0.5556
    assert both_ways(labels((20, 20), SHIP_A, SHIP_B), labels((20, 20), SHIP_A)) == pytest.approx(5 / 9)


def test_one_found_plus_a_false_positive():
    # TP=1, FN=0, FP=1: F2 = 5 / 6
    assert both_ways(labels((20, 20), SHIP_A), labels((20, 20), SHIP_A, SHIP_B)) == pytest.approx(5 / 6)


def test_ship_split_in_two_predictions():
    # A 4x10 ship predicted as two halves of 4x5: each half has IoU 0.5 -> never strictly above
    # 0.5: TP=0, FN=1, FP=2 at every threshold -> 0.
    true = labels((20, 20), (0, 4, 0, 10))
    assert both_ways(true, labels((20, 20), (0, 4, 0, 5), (0, 4, 5, 10))) == 0.0
    # A 4x10 ship predicted as 4x8 + 4x2: IoU 0.8 and 0.2 -> TP at t < 0.8 (6 thresholds), FP=1 there.
    score = both_ways(true, labels((20, 20), (0, 4, 0, 8), (0, 4, 8, 10)))
    assert score == pytest.approx((6 * 5 / 6 + 4 * 0.0) / 10)


def test_iou_exactly_at_a_threshold_is_not_a_match():
    # Prediction covers 15 of 20 true pixels and nothing else: IoU = 15/20 = 0.75 exactly.
    true = labels((20, 20), (0, 4, 0, 5))
    pred = labels((20, 20), (0, 3, 0, 5))
    assert iou_matrix_from_labels(true, pred)[0, 0] == 0.75
    # TP at 0.50..0.70 (5 thresholds, F2 = 1), not at 0.75..0.95 (5 thresholds, F2 = 0).
    assert both_ways(true, pred) == pytest.approx(0.5)


def test_accumulator_summary_reports_the_all_empty_baseline():
    acc = F2Accumulator()
    acc.add("a", np.zeros((0, 0)))  # empty/empty: 1
    acc.add("b", np.zeros((0, 1)))  # FP on empty: 0
    acc.add("c", np.array([[0.96]]))  # found above every threshold: 1
    acc.add("d", np.zeros((0, 0)))
    s = acc.summary()
    assert s["f2"] == pytest.approx(0.75) and s["f2_all_empty_baseline"] == pytest.approx(0.75)
    assert s["false_positive_rate_empty"] == pytest.approx(1 / 3)
    assert s["image_precision"] == pytest.approx(0.5) and s["image_recall"] == 1.0


def test_f2_from_iou_counts():
    assert f2_from_iou(np.array([[0.9, 0.0], [0.0, 0.3]]))[1] == (1, 1, 1)
