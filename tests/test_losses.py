"""Every registered loss: finite values and gradients on empty masks, and it trains."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from shiptoolkit.plugins import get_registry

LOSSES = get_registry("loss").names()


def batch(empty: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    y_true = np.zeros((2, 16, 16, 1), "float32")
    if not empty:
        y_true[:, 4:8, 3:12] = 1
    y_pred = rng.uniform(0.01, 0.99, (2, 16, 16, 1)).astype("float32")
    return y_true, y_pred


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("empty", [True, False])
@pytest.mark.parametrize("extreme", [None, 0.0, 1.0])
def test_finite_value_and_gradient(name, empty, extreme):
    loss = get_registry("loss").create(name)
    y_true, y_pred = batch(empty)
    if extreme is not None:
        y_pred[:] = extreme  # saturated sigmoid outputs
    pred = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        value = loss(y_true, pred)
    grad = tape.gradient(value, pred)
    assert np.isfinite(float(value))
    assert grad is not None and np.isfinite(grad.numpy()).all()


@pytest.mark.parametrize("name", LOSSES)
def test_loss_decreases_when_fitting_one_batch(name):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
                              keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")])
    y, _ = batch(empty=False)
    x = np.where(y > 0, 220.0, 30.0).repeat(3, axis=3).astype("float32")
    model.compile(keras.optimizers.Adam(0.02), loss=get_registry("loss").create(name))
    history = model.fit(x, y, epochs=25, verbose=0).history["loss"]
    assert history[-1] < history[0] * 0.8


def test_dice_matches_the_seed_formula():
    y_true, y_pred = batch(empty=False)
    expected = 1 - (2 * (y_true * y_pred).sum() + 1) / (y_true.sum() + y_pred.sum() + 1)
    assert float(get_registry("loss").create("dice")(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name, params, match", [
    ("dice", {"smooth": 0}, "smooth must be > 0"),
    ("bce_dice", {"bce_weight": 0, "dice_weight": 0}, "not both 0"),
    ("focal", {"gamma": -1}, "gamma must be >= 0"),
    ("focal", {"alpha": 2}, "alpha must be in"),
])
def test_bad_parameters(name, params, match):
    with pytest.raises(ValueError, match=match):
        get_registry("loss").create(name, **params)
