"""PNG plots: training curves and overlay grids of images with true and predicted masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(history_csv: str | Path, out_png: str | Path) -> Path:
    """Loss and each metric per epoch, training vs validation, one panel each."""
    import pandas as pd

    plt = _pyplot()
    frame = pd.read_csv(history_csv)
    names = [c for c in frame.columns if c not in ("epoch", "learning_rate") and not c.startswith("val_")]
    scored = "val_f2" in frame and frame["val_f2"].notna().any()
    panels = len(names) + scored
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.4), squeeze=False)
    epochs = frame["epoch"] + 1 if "epoch" in frame else np.arange(1, len(frame) + 1)
    if scored:  # the competition metric on whole validation images, with what predicting nothing scores
        ax, rows = axes[0][-1], frame["val_f2"].notna()
        ax.plot(epochs[rows], frame["val_f2"][rows], marker="o", label="val_f2 (whole images)")
        if "val_f2_baseline" in frame:
            ax.plot(epochs[rows], frame["val_f2_baseline"][rows], ls="--", color="grey", label="all-empty baseline")
        if "val_fp_rate_empty" in frame:
            ax.plot(epochs[rows], frame["val_fp_rate_empty"][rows], marker="x", label="FP rate on empty images")
        ax.set_title("validation f2")
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax, name in zip(axes[0], names, strict=False):
        ax.plot(epochs, frame[name], marker="o", label="train")
        if f"val_{name}" in frame:
            ax.plot(epochs, frame[f"val_{name}"], marker="o", label="validation")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return Path(out_png)


def plot_overlays(rows: list[dict], out_png: str | Path, title: str = "") -> Path:
    """A grid of images with true (green) and predicted (red) ship outlines.

    Args:
        rows: dicts with "image" (HxWx3 uint8), "true" and "pred" (label images), "label" (caption).
        out_png: where to write the PNG.
        title: figure title.
    """
    import cv2

    plt = _pyplot()
    cols = min(6, max(1, len(rows)))
    lines = max(1, -(-len(rows) // cols))
    fig, axes = plt.subplots(lines, cols, figsize=(3.2 * cols, 3.4 * lines), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, row in zip(axes.ravel(), rows, strict=False):
        image = row["image"].copy()
        for labels, colour in ((row["true"], (0, 255, 0)), (row["pred"], (255, 40, 40))):
            contours, _ = cv2.findContours((np.asarray(labels) > 0).astype(np.uint8), cv2.RETR_LIST,
                                           cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(image, contours, -1, colour, max(1, image.shape[0] // 256))
        ax.imshow(image)
        ax.set_title(row.get("label", ""), fontsize=8)
    if title:
        fig.suptitle(title + "   (green: truth, red: prediction)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return Path(out_png)


def plot_cv_folds(folds: list[dict], empty_prior: float, out_png: str | Path) -> Path:
    """Each cross-validation fold's f2 beside its all-empty baseline, and its prior-weighted f2 beside the prior."""
    plt = _pyplot()
    x = np.arange(len(folds))
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(folds) + 2) + 2.6, 3.4))
    ax.bar(x - 0.3, [f["f2"] for f in folds], 0.2, label="f2 (the fold's images)")
    ax.bar(x - 0.1, [f["baseline"] for f in folds], 0.2, color="lightgrey", label="its all-empty baseline")
    ax.bar(x + 0.1, [f["f2_prior_weighted"] for f in folds], 0.2, label=f"prior-weighted f2 ({empty_prior:.1%} empty)")
    ax.axhline(empty_prior, ls="--", color="grey", label="prior-weighted baseline")
    ax.bar(x + 0.3, [f["fp_rate_empty"] for f in folds], 0.2, color="tab:red", label="FP rate, empty")
    ax.set_xticks(x, [f"fold {f['fold']}" for f in folds])
    ax.set_ylim(0, 1)
    ax.set_title("cross-validation: each fold's test images")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return Path(out_png)
