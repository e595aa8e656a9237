"""Losses in `keras.ops` (backend-agnostic), stable on batches without a single ship pixel.

Each registered factory returns a serializable `keras.losses.Loss`, so a compiled model saved
with it reloads in safe mode.
"""

from __future__ import annotations

import keras
from keras import ops

from shiptoolkit.plugins.hookspecs import hookimpl
from shiptoolkit.plugins.registry import Range, param_ranges

EPS = 1e-7
_POSITIVE = Range(0.0, None, low_open=True)  # smooth > 0 keeps the dice of an empty batch finite


def _flat(y_true, y_pred):
    y_pred = ops.cast(y_pred, "float32")
    return ops.cast(ops.reshape(y_true, (-1,)), "float32"), ops.reshape(y_pred, (-1,))


def _soft_dice_loss(y_true, y_pred, smooth: float):
    t, p = _flat(y_true, y_pred)
    return 1.0 - (2.0 * ops.sum(t * p) + smooth) / (ops.sum(t) + ops.sum(p) + smooth)


def _bce(y_true, y_pred):
    t, p = _flat(y_true, y_pred)
    p = ops.clip(p, EPS, 1.0 - EPS)
    return -ops.mean(t * ops.log(p) + (1.0 - t) * ops.log(1.0 - p))


@keras.saving.register_keras_serializable(package="shiptoolkit")
class DiceLoss(keras.losses.Loss):
    """Soft dice over the whole flattened batch: 1 - (2*sum(y*p) + s) / (sum(y) + sum(p) + s)."""

    def __init__(self, smooth: float = 1.0, name: str = "dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smooth = float(smooth)

    def call(self, y_true, y_pred):
        return _soft_dice_loss(y_true, y_pred, self.smooth)

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth}


@keras.saving.register_keras_serializable(package="shiptoolkit")
class BCEDiceLoss(keras.losses.Loss):
    """Weighted sum of binary cross-entropy (per pixel) and soft dice (per batch)."""

    def __init__(self, bce_weight: float = 1.0, dice_weight: float = 1.0, smooth: float = 1.0,
                 name: str = "bce_dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.bce_weight, self.dice_weight, self.smooth = float(bce_weight), float(dice_weight), float(smooth)

    def call(self, y_true, y_pred):
        return (self.bce_weight * _bce(y_true, y_pred)
                + self.dice_weight * _soft_dice_loss(y_true, y_pred, self.smooth))

    def get_config(self):
        return {**super().get_config(), "bce_weight": self.bce_weight, "dice_weight": self.dice_weight,
                "smooth": self.smooth}


@keras.saving.register_keras_serializable(package="shiptoolkit")
class FocalLoss(keras.losses.Loss):
    """Binary focal loss (Lin et al. 2017): cross-entropy down-weighted on easy pixels."""

    def __init__(self, gamma: float = 2.0, alpha: float = 0.25, name: str = "focal", **kwargs):
        super().__init__(name=name, **kwargs)
        self.gamma, self.alpha = float(gamma), float(alpha)

    def call(self, y_true, y_pred):
        t, p = _flat(y_true, y_pred)
        p = ops.clip(p, EPS, 1.0 - EPS)
        p_t = t * p + (1.0 - t) * (1.0 - p)
        alpha_t = t * self.alpha + (1.0 - t) * (1.0 - self.alpha)
        return ops.mean(-alpha_t * ops.power(1.0 - p_t, self.gamma) * ops.log(p_t))

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha}


def _lovasz_grad(sorted_truth):
    """Gradient of the Lovasz extension of the Jaccard loss w.r.t. sorted errors (Berman et al.)."""
    gts = ops.sum(sorted_truth)
    intersection = gts - ops.cumsum(sorted_truth)
    union = gts + ops.cumsum(1.0 - sorted_truth)
    jaccard = 1.0 - intersection / union
    return ops.concatenate([jaccard[:1], jaccard[1:] - jaccard[:-1]], axis=0)


def _lovasz_hinge_flat(logits, truth):
    signs = 2.0 * truth - 1.0
    errors = 1.0 - logits * signs
    order = ops.flip(ops.argsort(errors), axis=0)  # descending errors
    errors_sorted = ops.take(errors, order)
    grad = ops.stop_gradient(_lovasz_grad(ops.take(truth, order)))
    return ops.sum(ops.relu(errors_sorted) * grad)


@keras.saving.register_keras_serializable(package="shiptoolkit")
class LovaszHingeLoss(keras.losses.Loss):
    """Lovasz hinge (Berman et al. 2018): a convex surrogate that optimises IoU directly."""

    def __init__(self, per_image: bool = True, name: str = "lovasz_hinge", **kwargs):
        super().__init__(name=name, **kwargs)
        self.per_image = bool(per_image)

    def call(self, y_true, y_pred):
        p = ops.clip(ops.cast(y_pred, "float32"), EPS, 1.0 - EPS)
        logits = ops.log(p) - ops.log(1.0 - p)  # the models output sigmoids: recover the logits
        truth = ops.cast(y_true, "float32")
        if not self.per_image:
            return _lovasz_hinge_flat(ops.reshape(logits, (-1,)), ops.reshape(truth, (-1,)))
        batch = ops.shape(logits)[0]
        logits = ops.reshape(logits, (batch, -1))
        truth = ops.reshape(truth, (batch, -1))
        # An all-empty image gives a zero-union Jaccard; its grad is still finite (union >= 1 pixel).
        return ops.mean(ops.vectorized_map(lambda lt: _lovasz_hinge_flat(lt[0], lt[1]), (logits, truth)))

    def get_config(self):
        return {**super().get_config(), "per_image": self.per_image}


@param_ranges(smooth=_POSITIVE)
def dice(smooth: float = 1.0) -> keras.losses.Loss:
    """Soft dice loss over the whole batch, as the seed used.

    Args:
        smooth: added to numerator and denominator; keeps the loss finite on empty masks.
    """
    if smooth <= 0:
        raise ValueError(f"smooth must be > 0 (it keeps empty masks finite). Received: smooth={smooth}")
    return DiceLoss(smooth)


@param_ranges(bce_weight=(0.0, None), dice_weight=(0.0, None), smooth=_POSITIVE)
def bce_dice(bce_weight: float = 1.0, dice_weight: float = 1.0, smooth: float = 1.0) -> keras.losses.Loss:
    """Binary cross-entropy plus soft dice: per-pixel and per-region signals together.

    Args:
        bce_weight: weight of the binary cross-entropy term.
        dice_weight: weight of the soft dice term.
        smooth: dice smoothing; keeps the loss finite on empty masks.
    """
    if bce_weight < 0 or dice_weight < 0 or bce_weight + dice_weight == 0:
        raise ValueError("bce_weight and dice_weight must be >= 0 and not both 0. "
                         f"Received: bce_weight={bce_weight}, dice_weight={dice_weight}")
    if smooth <= 0:
        raise ValueError(f"smooth must be > 0. Received: smooth={smooth}")
    return BCEDiceLoss(bce_weight, dice_weight, smooth)


@param_ranges(gamma=(0.0, None), alpha=(0.0, 1.0))
def focal(gamma: float = 2.0, alpha: float = 0.25) -> keras.losses.Loss:
    """Binary focal loss, for the extreme imbalance of ship pixels (~0.1% of all pixels).

    Args:
        gamma: focusing parameter; 0 gives (alpha-weighted) cross-entropy.
        alpha: weight of the ship class, in [0, 1].
    """
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0. Received: gamma={gamma}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1]. Received: alpha={alpha}")
    return FocalLoss(gamma, alpha)


def lovasz_hinge(per_image: bool = True) -> keras.losses.Loss:
    """Lovasz hinge loss, popular in this competition for optimising IoU.

    Args:
        per_image: average the loss over images (True) or compute it over the whole batch.
    """
    return LovaszHingeLoss(per_image)


@hookimpl
def register_losses(register):
    register("dice", dice)
    register("bce_dice", bce_dice)
    register("focal", focal)
    register("lovasz_hinge", lovasz_hinge)
