import numpy as np
import pytest

from shiptoolkit.plugins import get_registry


def test_keras_dice_iou_match_numpy():
    rng = np.random.default_rng(0)
    y_true = (rng.random((2, 8, 8, 1)) < 0.3).astype("float32")
    y_pred = rng.random((2, 8, 8, 1)).astype("float32")
    hard = y_pred > 0.5
    inter, total = (y_true * hard).sum(), y_true.sum() + hard.sum()
    dice = get_registry("metric").create("dice").keras_metric()
    iou = get_registry("metric").create("iou").keras_metric()
    for metric in (dice, iou):
        metric.update_state(y_true[:1], y_pred[:1])  # streamed over two batches
        metric.update_state(y_true[1:], y_pred[1:])
    assert float(dice.result()) == pytest.approx(2 * inter / total, rel=1e-5)
    assert float(iou.result()) == pytest.approx(inter / (total - inter), rel=1e-5)


def test_evaluators_global_and_per_image():
    true = np.zeros((2, 10, 10), np.int32)
    true[0, :2, :5] = 1
    pred = np.zeros_like(true)
    pred[0, :2, :4] = 1
    dice = get_registry("metric").create("dice").evaluator()
    f2 = get_registry("metric").create("f2").evaluator()
    for t, p in zip(true, pred, strict=True):
        dice.update(t, p)
        f2.update(t, p)
    expected = {"dice_global": pytest.approx(16 / 18), "dice_mean_per_image": pytest.approx((16 / 18 + 1) / 2)}
    assert dice.result() == expected
    result = f2.result()
    assert result["f2"] == pytest.approx((0.6 + 1) / 2)  # IoU 0.8: a hit at 0.50..0.75, 6 of 10 thresholds
    assert result["f2_all_empty_baseline"] == 0.5


@pytest.mark.parametrize("name", get_registry("metric").names())
def test_every_metric_declares_usage(name):
    component = get_registry("metric").get(name).factory
    assert component.usage and component.usage <= {"train", "evaluate"}
    metric = component()
    if "train" in component.usage:
        assert hasattr(metric.keras_metric(), "update_state")
    if "evaluate" in component.usage:
        assert isinstance(metric.evaluator().result(), dict)
