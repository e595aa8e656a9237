"""Post-processing chosen on the validation images: threshold, min_area and the gate, jointly, for f2.

After training, the validation images are predicted once (probabilities and, with a gate, each
image's ship probability). Every (threshold, min_area) pair is scored on every image from one
labelling per threshold (min_area only drops predicted ships, i.e. columns of the IoU matrix),
and every gate threshold from those per-image scores (a rejected image scores 1 if empty, 0 if
not). With `tune.windows`, the images the gate lets through are predicted a second time, by
sliding windows, and whole images vs windows becomes one more dimension of the same scan. The
best combination is saved as `postprocess.json` beside the model, with the scan, and
`predict`/`evaluate` use it unless an override names the key. Only validation images are ever
passed here: the test set is never part of a choice.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from shiptoolkit.inference.prediction import Prediction, PredictSettings, index_items, predict_items, whole_image_model
from shiptoolkit.scoring.competition import f2_from_iou, image_weights, iou_matrix_from_labels

if TYPE_CHECKING:
    from shiptoolkit.inference.gate import Gate



def f2_grid(true_labels: np.ndarray, prob: np.ndarray, settings: PredictSettings, thresholds: Sequence[float],
            min_areas: Sequence[int], seam: np.ndarray | None = None, ships: np.ndarray | None = None) -> np.ndarray:
    """Image f2 (T, A) for every threshold x min_area, with one labelling per threshold (the ship cap
    `max_ships` left off: the scan applies it from `ships`, filled with the predicted ship counts (T, A))."""
    out = np.empty((len(thresholds), len(min_areas)))
    uncapped = dataclasses.replace(settings, max_ships=0)
    for ti, threshold in enumerate(thresholds):
        pred = uncapped.labels(prob, threshold, 0, seam=seam)
        iou = iou_matrix_from_labels(true_labels, pred)
        areas = np.bincount(pred.ravel(), minlength=iou.shape[1] + 1)[1:iou.shape[1] + 1]
        for ai, min_area in enumerate(min_areas):
            out[ti, ai] = f2_from_iou(iou[:, areas >= min_area])[0]
            if ships is not None:
                ships[ti, ai] = int((areas >= min_area).sum())
    return out


def capped(f2: np.ndarray, ships: np.ndarray, empty: np.ndarray, max_ships: int) -> np.ndarray:
    """Per-image scores (N, ...) with the ship cap applied: an image with more predicted ships than
    `max_ships` is predicted empty (scores 1 if it has no ship, else 0). 0 = off."""
    if not max_ships:
        return f2
    shape = (len(empty),) + (1,) * (f2.ndim - 1)
    return np.where(ships > max_ships, empty.astype(np.float64).reshape(shape), f2)


def gate_candidates(ship_p: np.ndarray, floor: float, extra: Sequence[float] = ()) -> np.ndarray:
    """Gate thresholds worth trying: the floor, midpoints between consecutive ship probabilities
    above it (a threshold in the middle of the gap it uses), one above them all, and `extra`."""
    p = np.unique(ship_p[ship_p >= floor])
    mids = (p[:-1] + p[1:]) / 2 if len(p) > 1 else np.zeros(0)
    top = [min(1.0, p[-1] + 1e-6)] if len(p) else []
    return np.unique(np.concatenate([[floor], mids, top, [x for x in extra if x >= floor]]))


def scan_scores(f2: np.ndarray, empty: np.ndarray, ship_p: np.ndarray | None,
                gates: np.ndarray | None, weights: np.ndarray | None = None) -> np.ndarray:
    """Mean f2 (G, T, A) over images for every gate x threshold x min_area (G = 1 without a gate).

    Args:
        f2: per-image scores (N, T, A) when the image is segmented.
        empty: (N,) bool, the image has no ship (what a rejected image scores).
        ship_p: (N,) the classifier's ship probabilities, or None without a gate.
        gates: (G,) gate thresholds to try.
        weights: (N,) image weights summing to 1 (`competition.image_weights`, for the prior-weighted
            f2), or None for the plain mean.
    """
    w = np.full(len(empty), 1.0 / len(empty)) if weights is None else np.asarray(weights, dtype=np.float64)
    if ship_p is None:
        return np.tensordot(w, f2, axes=(0, 0))[None]
    passed = (ship_p[None, :] >= gates[:, None]).astype(np.float64) * w[None, :]  # (G, N), weighted
    segmented = np.tensordot(passed, f2, axes=(1, 0))  # (G, T, A)
    rejected = ((w[None, :] - passed) @ empty.astype(np.float64))[:, None, None]
    return segmented + rejected


def choose(scores: np.ndarray, thresholds: Sequence[float], min_areas: Sequence[int],
           gates: np.ndarray | None, row_rank: Sequence[int] | None = None) -> tuple[int, int, int]:
    """(g, t, a) indexes of the best mean f2; ties go to the lowest `row_rank` of the row (e.g. whole
    images before windows), then the threshold nearest 0.5, the smaller min_area and the gate nearest
    0.5 (a tie on few images says nothing: stay near the defaults)."""
    best = scores.max()
    ties = np.argwhere(scores >= best - 1e-12)
    g_values = gates if gates is not None else np.array([0.5])
    rank = row_rank if row_rank is not None else [0] * len(thresholds)
    return tuple(min(ties, key=lambda gta: (rank[gta[1]], abs(thresholds[gta[1]] - 0.5), min_areas[gta[2]],
                                            abs(g_values[gta[0]] - 0.5))))


def prediction_modes(model: Any, settings: PredictSettings, try_windows: bool) -> list[bool]:
    """The `whole_image` values to tune with: [True, False] (whole images first: they win ties, being
    faster) when windows are to be tried for a model that runs on whole images, else the setting's own."""
    if try_windows and settings.whole_image and not settings.resize and whole_image_model(model) is not model:
        return [True, False]
    return [settings.whole_image]


@dataclasses.dataclass(frozen=True)
class _ScanGrid:
    """The candidates of the joint scan. A score array's rows run mode-major, then split depth, then threshold
    (so a row index names all three); min_area is the last axis."""

    thresholds: list[float]
    min_areas: list[int]
    depths: list[float]
    modes: list[bool]  # `whole_image` values, in the order `prediction_modes` gives them
    variants: list[PredictSettings]  # the settings at each split depth

    @property
    def rows_per_mode(self) -> int:
        return len(self.depths) * len(self.thresholds)

    @property
    def rows(self) -> int:
        return len(self.modes) * self.rows_per_mode

    def image_rows(self, true_labels: np.ndarray, prediction: Prediction) -> tuple[np.ndarray, np.ndarray]:
        """(f2, predicted ship counts), each (D x T, A), of one segmented image in one mode, at every split depth."""
        f2, ships = [], []
        for v in self.variants:
            counts = np.zeros((len(self.thresholds), len(self.min_areas)), np.int64)
            f2.append(f2_grid(true_labels, prediction.prob, v, self.thresholds, self.min_areas, prediction.seam,
                              counts))
            ships.append(counts)
        return np.concatenate(f2), np.concatenate(ships)

    def describe(self, row: int, a: int) -> dict:
        """The settings of `row` and min_area index `a`, keyed as postprocess.json keys them (split depth and
        mode only when they were scanned)."""
        n_t = len(self.thresholds)
        return {"threshold": self.thresholds[row % n_t], "min_area": self.min_areas[a],
                **({"split_depth": self.depths[row % self.rows_per_mode // n_t]} if len(self.depths) > 1 else {}),
                **({"whole_image": self.modes[row // self.rows_per_mode]} if len(self.modes) > 1 else {})}


def _scan_grid(model: Any, settings: PredictSettings, thresholds: Sequence[float], min_areas: Sequence[int],
               split_depths: Sequence[float], try_windows: bool) -> _ScanGrid:
    """The candidates to scan; the settings' own threshold and min_area are always among them (the
    defaults are scored too)."""
    thresholds = sorted({float(t) for t in [*thresholds, settings.threshold]})
    min_areas = sorted({int(a) for a in [*min_areas, settings.min_area]})
    # the config's own depth first: a tie keeps it (choose() takes the first of equal candidates)
    depths = [settings.split_depth] + sorted({float(d) for d in split_depths} - {settings.split_depth}) \
        if settings.split == "watershed" else [settings.split_depth]
    variants = [dataclasses.replace(settings, split_depth=d) for d in depths]
    return _ScanGrid(thresholds, min_areas, depths, prediction_modes(model, settings, try_windows), variants)


@dataclasses.dataclass
class _ImageScores:
    """What the scan keeps of each validation image, in the order they were predicted."""

    f2: list[np.ndarray] = dataclasses.field(default_factory=list)  # (M x D x T, A) per image
    ships: list[np.ndarray] = dataclasses.field(default_factory=list)  # predicted ship counts, same shape
    empty: list[bool] = dataclasses.field(default_factory=list)
    ship_p: list[float] = dataclasses.field(default_factory=list)
    ids: list[str] = dataclasses.field(default_factory=list)
    segmented: list[int] = dataclasses.field(default_factory=list)  # images the screening gate let through

    def extend(self, other: _ImageScores) -> None:
        """Append another part's images (its `segmented` positions shifted past ours)."""
        self.segmented += [len(self.ids) + k for k in other.segmented]
        self.f2 += other.f2
        self.ships += other.ships
        self.empty += other.empty
        self.ship_p += other.ship_p
        self.ids += other.ids


@dataclasses.dataclass(frozen=True)
class TuningPart:
    """Validation images and the model (and gate) that predicts them; an ensemble pools one part per member."""

    model: Any
    index: Any
    gate: Gate | None = None


def _score_first_mode(model: Any, index, items: list, settings: PredictSettings, grid: _ScanGrid,
                      screening: Gate | None, progress: bool, on_error: str) -> _ImageScores:
    """Predict every image in the first mode, through the gate at its lowest candidate threshold.

    A rejected or unreadable image scores what an empty prediction scores (1 if it has no ship, else
    0) in every row of every mode, so only the images let through need predicting in the other modes.
    """
    scores = _ImageScores()
    for p in predict_items(model, items, dataclasses.replace(settings, whole_image=grid.modes[0]),
                           progress=progress, on_error=on_error, gate=screening, skip_rejected=True):
        true = index.labels(p.image_id)
        is_empty = not true.any()
        rejected = p.prob is None or (screening is not None and not screening.accepts(p.ship_probability))
        rows = np.full((grid.rows, len(grid.min_areas)), float(is_empty))
        ships = np.zeros((grid.rows, len(grid.min_areas)), np.int64)
        if not rejected:
            rows[:grid.rows_per_mode], ships[:grid.rows_per_mode] = grid.image_rows(true, p)
            scores.segmented.append(len(scores.ids))
        scores.f2.append(rows)
        scores.ships.append(ships)
        scores.empty.append(is_empty)
        scores.ship_p.append(p.ship_probability)
        scores.ids.append(p.image_id)
    return scores


def _score_other_modes(model: Any, index, items: list, settings: PredictSettings, grid: _ScanGrid,
                       scores: _ImageScores, progress: bool, on_error: str) -> None:
    """Fill the rows of the other modes in `scores`, predicting again only the segmented images (without
    the gate: its verdict is already known)."""
    per_mode = grid.rows_per_mode
    for m, whole in enumerate(grid.modes[1:], start=1):
        segmented_items = [items[k] for k in scores.segmented]
        predictions = predict_items(model, segmented_items, dataclasses.replace(settings, whole_image=whole),
                                    progress=progress, on_error=on_error)
        for k, p in zip(scores.segmented, predictions, strict=True):
            rows = slice(m * per_mode, (m + 1) * per_mode)
            scores.f2[k][rows], scores.ships[k][rows] = grid.image_rows(index.labels(p.image_id), p)


def _postprocess_info(grid: _ScanGrid, scores: np.ndarray, gates: np.ndarray | None, empty: np.ndarray,
                      ids: list[str], settings: PredictSettings, default_gate: float | None,
                      default_scores: np.ndarray | None = None) -> dict:
    """The content of postprocess.json for mean f2 `scores` (G, M x D x T, A): the best combination (whole
    images win ties over windows), the defaults' f2, the baseline, the images and the whole scan."""
    g, row, a = choose(scores, grid.thresholds * len(grid.depths) * len(grid.modes), grid.min_areas, gates,
                       row_rank=[i // grid.rows_per_mode for i in range(grid.rows)])
    t0, a0 = grid.thresholds.index(settings.threshold), grid.min_areas.index(settings.min_area)
    g0 = int(np.argmin(np.abs(gates - default_gate))) if gates is not None else 0
    per_pair = scores.max(axis=0)
    best_gate = scores.argmax(axis=0)
    return {
        **grid.describe(row, a),
        "classifier_threshold": float(gates[g]) if gates is not None else None,
        "f2": float(scores[g, row, a]),
        "f2_with_defaults": float((scores if default_scores is None else default_scores)[g0, t0, a0]),
        "f2_all_empty_baseline": float(empty.mean()),
        "defaults": {"threshold": settings.threshold, "min_area": settings.min_area,
                     "classifier_threshold": default_gate},
        "tuned_on": {"role": "validation", "images": len(ids), "empty_images": int(empty.sum()),
                     "image_ids_sha1": hashlib.sha1("\n".join(sorted(ids)).encode()).hexdigest()},
        "scan": [{**grid.describe(i, j),
                  "classifier_threshold": float(gates[best_gate[i, j]]) if gates is not None else None,
                  "f2": float(per_pair[i, j])} for i in range(grid.rows) for j in range(len(grid.min_areas))],
    }


def tune_postprocess(model: Any, index, settings: PredictSettings, thresholds: Sequence[float],
                     min_areas: Sequence[int], gate: Gate | None = None, tune_gate: bool = True,
                     gate_floor: float = 0.02, progress: bool = True, on_error: str = "raise",
                     split_depths: Sequence[float] = (), try_windows: bool = False,
                     empty_prior: float | None = None, max_ships: Sequence[int] = ()) -> dict:
    """Choose threshold, min_area, (with `predict.split = "watershed"`) the split depth, (with
    `try_windows`) whole images or sliding windows, and (with a gate) its threshold for f2 on
    `index` (validation only), in one joint scan. With `empty_prior`, the scan maximises the
    prior-weighted f2 instead (empty and ship images weighed to that fraction of empty images).
    With `max_ships` candidates, the ship cap (`predict.max_ships`) is chosen in the same scan.

    Returns the content of postprocess.json: the choice, f2 with it and with the defaults
    (`settings` and the gate's own threshold), the all-empty baseline, what it was tuned on, and
    the scan (for each mode x split depth x threshold x min_area, its best gate threshold and f2).
    """
    return tune_pooled([TuningPart(model, index, gate)], settings, thresholds, min_areas, tune_gate, gate_floor,
                       progress, on_error, split_depths, try_windows, empty_prior, max_ships)


def tune_pooled(parts: Sequence[TuningPart], settings: PredictSettings, thresholds: Sequence[float],
                min_areas: Sequence[int], tune_gate: bool = True, gate_floor: float = 0.02, progress: bool = True,
                on_error: str = "raise", split_depths: Sequence[float] = (), try_windows: bool = False,
                empty_prior: float | None = None, max_ships: Sequence[int] = ()) -> dict:
    """`tune_postprocess` over several parts: each part's images predicted by its own model (screened by its
    own gate), their per-image scores pooled into one scan. An ensemble is tuned so, on each member's own
    validation images (which that member never trained on): out-of-fold predictions, never test images.
    Parts have a gate each or none; the default gate threshold is the median of theirs.
    """
    gated = [part.gate for part in parts if part.gate is not None]
    if gated and len(gated) != len(parts):
        raise ValueError("Either every tuning part has a gate or none has.")
    grid = _scan_grid(parts[0].model, settings, thresholds, min_areas, split_depths, try_windows)
    default_gate = float(np.median([g.threshold for g in gated])) if gated else None
    floor = min(gate_floor, default_gate) if gated and tune_gate else default_gate
    image_scores = _ImageScores()
    for part in parts:
        screening = dataclasses.replace(part.gate, threshold=floor) if part.gate is not None else None
        items = index_items(part.index)
        scores = _score_first_mode(part.model, part.index, items, settings, grid, screening, progress, on_error)
        _score_other_modes(part.model, part.index, items, settings, grid, scores, progress, on_error)
        image_scores.extend(scores)
    probs = np.array(image_scores.ship_p) if gated else None
    gates = (gate_candidates(probs, floor, [default_gate]) if tune_gate else np.array([default_gate])) \
        if gated else None
    empty = np.array(image_scores.empty)
    weights = image_weights(empty, empty_prior) if empty_prior is not None else None
    f2, ships = np.stack(image_scores.f2), np.stack(image_scores.ships)
    cap, scores, cap_scan = _scan_caps(f2, ships, empty, probs, gates, weights, settings.max_ships, max_ships)
    defaults = scores if cap == settings.max_ships else \
        scan_scores(capped(f2, ships, empty, settings.max_ships), empty, probs, gates, weights)
    info = _postprocess_info(grid, scores, gates, empty, image_scores.ids, settings, default_gate, defaults)
    if max_ships or settings.max_ships:
        info.update(max_ships=cap, max_ships_scan=cap_scan)
    info["objective"] = "f2" if empty_prior is None else "f2_prior_weighted"
    if empty_prior is not None:  # the f2 figures above are weighed to the prior: so is their baseline
        info.update(empty_prior=empty_prior, f2_all_empty_baseline=empty_prior if 0 < empty.sum() < len(empty)
                    else float(empty.mean()))
    return info


def _scan_caps(f2: np.ndarray, ships: np.ndarray, empty: np.ndarray, probs: np.ndarray | None,
               gates: np.ndarray | None, weights: np.ndarray | None, own: int, candidates: Sequence[int]):
    """(the ship cap, its scores (G, rows, A), [{max_ships, best f2}]) over the caps tried: the config's own
    first, then off, then from the largest down, so that a tie keeps the config's cap (as ties keep the
    defaults elsewhere), else the cap that changes the fewest images."""
    rest = sorted({int(c) for c in candidates} - {own, 0}, reverse=True)
    caps = [own] if not candidates else [own, *([0] if own else []), *rest]
    best = None
    scan = []
    for cap in caps:
        scores = scan_scores(capped(f2, ships, empty, cap), empty, probs, gates, weights)
        scan.append({"max_ships": cap, "f2": float(scores.max())})
        if best is None or scores.max() > best[1].max() + 1e-12:
            best = (cap, scores)
    return best[0], best[1], scan


def describe_tuned(info: dict) -> str:
    """One line: what was chosen, on which images, and what it gained over the defaults there."""
    gate = f", classifier threshold {info['classifier_threshold']:.3f}" \
        if info.get("classifier_threshold") is not None else ""
    on = info.get("tuned_on", {})
    depth = f", split depth {info['split_depth']}" if "split_depth" in info else ""
    depth += f", max ships {info['max_ships'] or 'off'}" if "max_ships" in info else ""
    mode = "" if "whole_image" not in info else ", whole images" if info["whole_image"] \
        else ", sliding windows (higher than whole images there)"
    chosen = f"threshold {info['threshold']}, min_area {info['min_area']}{depth}{mode}{gate}"
    figures = ("f2", "f2_with_defaults", "f2_all_empty_baseline")
    if not {"images", "empty_images"} <= on.keys() or not all(k in info for k in figures):
        return f"tuned: {chosen} (postprocess.json does not say on which images, nor with what f2)"  # hand-made
    return (f"tuned on {on['images']} validation images ({on['empty_images']} empty): {chosen}: "
            f"validation {info.get('objective', 'f2')} {info['f2']:.4f} "
            f"(defaults {info['f2_with_defaults']:.4f}, all-empty baseline {info['f2_all_empty_baseline']:.4f})")
