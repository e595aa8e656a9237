"""The competition metric: F2 averaged over IoU thresholds 0.50..0.95, per image, then over images.

The one implementation in shiptoolkit: `evaluate`, `score` and the `f2` metric all call it.
Ships are compared as sets of pixel indices (from RLE runs or label images), never as a
768x768 array per ship pair. Numpy only: `shiptoolkit score` never imports Keras.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shiptoolkit.data.rle import runs_to_pixels

# 0.50, 0.55, ..., 0.95, rounded so 0.75 is exactly 0.75 (IoU must be strictly above it).
THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)


def iou_matrix(true_pixels: list[np.ndarray], pred_pixels: list[np.ndarray]) -> np.ndarray:
    """IoU of every (true, predicted) ship pair from sorted, unique flat pixel indices per ship."""
    n_true, n_pred = len(true_pixels), len(pred_pixels)
    if not n_true or not n_pred:
        return np.zeros((n_true, n_pred))
    # Predicted ships never overlap (scoring rejects overlaps), so their pixels are unique.
    pred_all = np.concatenate(pred_pixels)
    pred_owner = np.repeat(np.arange(n_pred), [p.size for p in pred_pixels])
    inter = np.zeros((n_true, n_pred))
    for i, pixels in enumerate(true_pixels):  # a few ships per image: this loop is not the cost
        _, _, hit = np.intersect1d(pixels, pred_all, assume_unique=True, return_indices=True)
        inter[i] = np.bincount(pred_owner[hit], minlength=n_pred)
    true_area = np.array([p.size for p in true_pixels], float)[:, None]
    pred_area = np.array([p.size for p in pred_pixels], float)[None, :]
    return inter / (true_area + pred_area - inter)


def iou_matrix_from_labels(true_labels: np.ndarray, pred_labels: np.ndarray) -> np.ndarray:
    """IoU of every (true, predicted) pair of two label images (0 = sea), in one bincount."""
    t = np.asarray(true_labels).ravel().astype(np.int64)
    p = np.asarray(pred_labels).ravel().astype(np.int64)
    n_true, n_pred = int(t.max(initial=0)), int(p.max(initial=0))
    if not n_true or not n_pred:
        return np.zeros((n_true, n_pred))
    joint = np.bincount(t * (n_pred + 1) + p, minlength=(n_true + 1) * (n_pred + 1)).reshape(n_true + 1, n_pred + 1)
    inter = joint[1:, 1:].astype(float)
    true_area = joint[1:, :].sum(axis=1)[:, None]
    pred_area = joint[:, 1:].sum(axis=0)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):  # labels absent from an image have area 0
        iou = inter / (true_area + pred_area - inter)
    return np.nan_to_num(iou)


def f2_from_iou(iou: np.ndarray) -> tuple[float, tuple[int, int, int]]:
    """(image F2 averaged over THRESHOLDS, (tp, fp, fn) at 0.5) from a true x predicted IoU matrix.

    A true positive at t is a predicted ship with IoU strictly above t. Since t >= 0.5 and ships
    of one side never overlap, a ship can have IoU > 0.5 with at most one ship of the other
    side: matching is one-to-one without an assignment step.
    """
    n_true, n_pred = iou.shape
    if n_true == 0 and n_pred == 0:
        return 1.0, (0, 0, 0)
    if n_true == 0 or n_pred == 0:
        return 0.0, (0, n_pred, n_true)
    tp = (iou[None, :, :] > THRESHOLDS[:, None, None]).any(axis=2).sum(axis=1)
    fp, fn = n_pred - tp, n_true - tp
    f2 = 5 * tp / (5 * tp + 4 * fn + fp)
    return float(f2.mean()), (int(tp[0]), int(fp[0]), int(fn[0]))


def image_f2(true_runs: list[tuple[np.ndarray, np.ndarray]], pred_runs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Competition F2 of one image from its ships as (starts, lengths) runs."""
    return f2_from_iou(iou_matrix([runs_to_pixels(*r) for r in true_runs], [runs_to_pixels(*r) for r in pred_runs]))[0]


def image_f2_from_labels(true_labels: np.ndarray, pred_labels: np.ndarray) -> float:
    """Competition F2 of one image from two label images (0 = sea, i = ship i)."""
    return f2_from_iou(iou_matrix_from_labels(true_labels, pred_labels))[0]


KAGGLE_EMPTY_PRIOR = 0.779  # the fraction of Kaggle's images without a ship (train_v2; the test set is alike)


def prior_weighted_f2(fp_rate_empty: float, f2_ship_images: float, empty_prior: float = KAGGLE_EMPTY_PRIOR) -> float:
    """The f2 of images with `empty_prior` of them empty: an empty image scores 1 exactly when nothing is
    predicted on it, so its mean is 1 - the FP rate on empty images; ship images keep their mean f2.

    Why: a sample whose share of ship images differs from Kaggle's (e.g. a ship-rich one) has a plain
    f2 and an all-empty baseline that say little about the competition; weighed to the prior, the
    all-empty baseline is `empty_prior` whatever the sample.
    """
    if np.isnan(fp_rate_empty) or np.isnan(f2_ship_images):
        return float("nan")
    return float(empty_prior * (1.0 - fp_rate_empty) + (1.0 - empty_prior) * f2_ship_images)


def image_weights(empty: np.ndarray, empty_prior: float) -> np.ndarray:
    """Per-image weights (summing to 1) that weigh empty and ship images to `empty_prior`; a weighted mean
    of image f2s with them is `prior_weighted_f2`. Uniform when the images are all empty or all ships."""
    empty = np.asarray(empty, dtype=bool)
    n_empty, n_ship = int(empty.sum()), int((~empty).sum())
    if not n_empty or not n_ship:
        return np.full(len(empty), 1.0 / max(1, len(empty)))
    return np.where(empty, empty_prior / n_empty, (1.0 - empty_prior) / n_ship)


@dataclass
class F2Accumulator:
    """Per-image F2 scores and image-level ship/no-ship counts, summarised over images.

    Every summary carries `f2_all_empty_baseline`: the score of predicting nothing on the same
    images (the fraction without ships). A model that does not beat it is useless.
    """

    rows: list[dict] = field(default_factory=list)
    empty_prior: float = KAGGLE_EMPTY_PRIOR

    def add(self, image_id: str, iou: np.ndarray) -> float:
        score, (tp, fp, fn) = f2_from_iou(iou)
        n_true, n_pred = iou.shape
        self.rows.append({"ImageId": image_id, "f2": score, "true_ships": n_true, "pred_ships": n_pred,
                          "tp_at_0.5": tp, "fp_at_0.5": fp, "fn_at_0.5": fn, "empty": n_true == 0})
        return score

    def summary(self) -> dict[str, float]:
        if not self.rows:
            return {"f2": float("nan"), "f2_all_empty_baseline": float("nan"), "images": 0}
        f2 = np.array([r["f2"] for r in self.rows])
        has_true = np.array([r["true_ships"] > 0 for r in self.rows])
        has_pred = np.array([r["pred_ships"] > 0 for r in self.rows])
        tp_img = int((has_true & has_pred).sum())
        fp_img = int((~has_true & has_pred).sum())
        fn_img = int((has_true & ~has_pred).sum())
        empty = int((~has_true).sum())
        fp_rate = fp_img / empty if empty else float("nan")
        f2_ship = float(f2[has_true].mean()) if has_true.any() else float("nan")
        return {
            "f2": float(f2.mean()),
            "f2_all_empty_baseline": float(empty / len(f2)),
            "images": len(f2),
            "empty_images": empty,
            "true_ships": int(sum(r["true_ships"] for r in self.rows)),
            "pred_ships": int(sum(r["pred_ships"] for r in self.rows)),
            "image_precision": tp_img / (tp_img + fp_img) if tp_img + fp_img else float("nan"),
            "image_recall": tp_img / (tp_img + fn_img) if tp_img + fn_img else float("nan"),
            "false_positive_rate_empty": fp_rate,
            "f2_ship_images": f2_ship,
            # what the f2 would be with empty_prior of the images empty (its all-empty baseline: empty_prior)
            "f2_prior_weighted": prior_weighted_f2(fp_rate, f2_ship, self.empty_prior),
            "empty_prior": self.empty_prior,
        }
