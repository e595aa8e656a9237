"""Scores on full images: `evaluate` predicts the test (or validation) images and scores them.

`evaluate` is the seed's "true accuracy" done right: the competition F2 on full images (always
beside the all-empty baseline), dice and IoU, image-level ship/no-ship precision, recall and
the false-positive rate on empty images, an optional threshold/min_area scan, and a PNG of
the best, worst and false-positive images. The scores accumulate image by image in an
`Evaluation` (`update` per image, `result()` at the end); `evaluate` feeds it predictions made
as `shiptoolkit.inference.stage` makes them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shiptoolkit.config import Config, as_config
from shiptoolkit.data.source import DataSplits
from shiptoolkit.errors import ConfigError, DataError
from shiptoolkit.inference.gate import Gate, gate_report
from shiptoolkit.inference.prediction import (
    TUNED_KEYS,
    PredictSettings,
    index_items,
    predict_items,
)
from shiptoolkit.inference.stage import checked_model, first_n, gate_for, model_argument, role_index, tuned_beside
from shiptoolkit.inference.submission import SubmissionWriter
from shiptoolkit.plots import plot_overlays
from shiptoolkit.plugins.contracts import build_component
from shiptoolkit.rundir import RunDir
from shiptoolkit.scoring.competition import KAGGLE_EMPTY_PRIOR, F2Accumulator, iou_matrix_from_labels


@dataclass
class EvaluateResult:
    """Scores on full validation images; `metrics` holds f2 and f2_all_empty_baseline side by side."""

    metrics: dict[str, float]
    per_image: list[dict]
    scan: list[dict] = field(default_factory=list)
    best: dict | None = None
    metrics_path: Path | None = None
    plot_path: Path | None = None
    submission: Any = None
    skipped: list = field(default_factory=list)  # `Problem`s of the unreadable images: not scored, in skipped.csv

    def table(self) -> str:
        m = self.metrics
        verdict = "beats" if m["f2"] > m["f2_all_empty_baseline"] else "does NOT beat"
        lines = [f"f2: {m['f2']:.4f}   all-empty baseline f2: {m['f2_all_empty_baseline']:.4f}   "
                 f"(the model {verdict} predicting nothing, on {m['images']} {m.get('role', '')} images)"]
        if "f2_prior_weighted" in m and not math.isnan(m["f2_prior_weighted"]):
            prior = m["empty_prior"]
            verdict = "beats" if m["f2_prior_weighted"] > prior else "does NOT beat"
            lines.append(f"f2 prior-weighted: {m['f2_prior_weighted']:.4f}   all-empty baseline: {prior:.4f}   "
                         f"(at {prior:.1%} empty images, as on Kaggle: the model {verdict} predicting nothing)")
        lines.append(f"  images: {m.get('source', '')}")
        if m.get("skipped_images"):
            lines.append(f"  not scored: {m['skipped_images']} unreadable image(s) (data.on_error = \"skip\"), e.g. "
                         f"{self.skipped[0].image_id if self.skipped else '?'}; listed in skipped.csv")
        shown = ("f2", "f2_all_empty_baseline", "role", "source", "f2_prior_weighted", "empty_prior", "skipped_images")
        for key, value in m.items():
            if key not in shown and isinstance(value, float):
                lines.append(f"  {key:<28} {'n/a' if math.isnan(value) else f'{value:.4f}'}")
            elif key not in shown:
                lines.append(f"  {key:<28} {value}")
        if self.best:
            b = self.best
            lines.append(f"  best scanned (oracle: chosen on these images, not a {m.get('role', '')} figure): "
                         f"threshold {b['threshold']}, min_area {b['min_area']}: f2 {b['f2']:.4f}")
        return "\n".join(lines)


def metric_evaluators(config: Config) -> dict[str, Any]:
    """The evaluators of metrics.evaluate, by name; a training-only metric there is refused."""
    evaluators = {}
    for name in config.settings.metrics.evaluate:
        component = build_component("metric", name)  # its result checked
        if "evaluate" not in component.usage:
            raise ConfigError(f"metrics.evaluate: {name!r} is a training-only metric.")
        evaluators[name] = component.evaluator()
    return evaluators


class Evaluation:
    """One evaluation's scores, accumulated image by image: `update` each image, then `result()`.

    It owns the metric evaluators (f2 always: the all-empty baseline is always shown), the
    per-image rows (with the gate's ship probability, given a gate), the threshold/min_area scan
    (when `grid` has more than one combination) and what each option buys, measured on the same
    images: f2 with the config's own settings (`defaults`, given tuned settings), without the
    gate (`without_gate`) and without splitting touching ships (when `settings.split` splits).

    Example:
        >>> from shiptoolkit.config import load_config
        >>> scores = Evaluation.from_config(load_config({"metrics": {"evaluate": ["f2", "dice"]}}))
        >>> truth, prob = np.zeros((8, 8), np.int32), np.zeros((8, 8), np.float32)
        >>> scores.update("empty.jpg", truth, scores.labels(truth, prob), prob)
        >>> scores.result().metrics["f2"], scores.result().metrics["f2_all_empty_baseline"]
        (1.0, 1.0)
    """

    def __init__(self, settings: PredictSettings, evaluators: dict[str, Any], *, grid: list[tuple[float, int]] = (),
                 defaults: PredictSettings | None = None, gate: Gate | None = None, default_gate: float | None = None,
                 without_gate: bool = False, role: str = "given", source: str = "", tuned: dict | None = None,
                 empty_prior: float = KAGGLE_EMPTY_PRIOR) -> None:
        self.settings, self.defaults, self.gate, self.without_gate = settings, defaults, gate, without_gate
        # The gate threshold that goes with the config's own settings (the gate's own when not said).
        self.default_gate = None if gate is None or defaults is None else \
            (default_gate if default_gate is not None else gate.threshold)
        self.role, self.source, self.tuned = role, source, tuned
        self.rows: list[dict] = []
        self._evaluators = dict(evaluators)
        self._f2 = self._evaluators.get("f2") or build_component("metric", "f2").evaluator()
        if isinstance(getattr(self._f2, "accumulator", None), F2Accumulator):
            self._f2.accumulator.empty_prior = empty_prior  # f2_prior_weighted weighs to data.empty_prior
        self._scans = {(float(t), int(a)): F2Accumulator() for t, a in grid} if len(grid) > 1 else {}
        self._ablations = {"f2_with_defaults": F2Accumulator()} if defaults is not None else {}
        if gate is not None and without_gate:
            self._ablations["f2_without_gate"] = F2Accumulator()
        if settings.split != "none":
            self._ablations["f2_without_split"] = F2Accumulator()

    @classmethod
    def from_config(cls, config: Config, gate: Gate | None = None, tuned: dict | None = None,
                    evaluators: dict[str, Any] | None = None, role: str = "given", source: str = "") -> Evaluation:
        """The evaluation the config asks for: its [predict] settings (with `tuned` post-processing
        replacing the config's, whose f2 is then reported beside), the evaluate.scan_* grid,
        evaluate.without_gate, and the evaluators of metrics.evaluate (unless given)."""
        e = config.settings.evaluate
        settings = PredictSettings.from_config(config, tuned)
        defaults = PredictSettings.from_config(config) if tuned else None
        grid = [(float(t), int(a)) for t in (e.scan_thresholds or [settings.threshold])
                for a in (e.scan_min_areas or [settings.min_area])]
        default_gate = config.settings.classifier.threshold if gate is not None and defaults is not None else None
        return cls(settings, metric_evaluators(config) if evaluators is None else evaluators, grid=grid,
                   defaults=defaults, gate=gate, default_gate=default_gate, without_gate=e.without_gate,
                   role=role, source=source, tuned=tuned, empty_prior=config.settings.data.empty_prior)

    @property
    def screening(self) -> Gate | None:
        """The gate that decides which images are segmented at all (None: every image). Images that
        no gate in play accepts (this one, nor the config's own threshold) score as predicted empty,
        unless `without_gate` asks for them to be segmented too."""
        if self.gate is None or self.without_gate:
            return None
        floor = self.default_gate if self.default_gate is not None else 1.0
        return dataclasses.replace(self.gate, threshold=min(self.gate.threshold, floor))

    def rejects(self, ship_probability: float | None) -> bool:
        return self.gate is not None and not self.gate.accepts(ship_probability)

    def labels(self, true_labels: np.ndarray, prob: np.ndarray | None, seam: np.ndarray | None = None,
               ship_probability: float | None = None) -> np.ndarray:
        """The labels an image is scored (and submitted) with: none where it was not segmented
        (`prob` None) or the gate rejects it, else its post-processed probabilities."""
        if prob is None or self.rejects(ship_probability):
            return np.zeros_like(true_labels)
        return self.settings.labels(prob, seam=seam)

    def update(self, image_id: str, true_labels: np.ndarray, pred_labels: np.ndarray, prob: np.ndarray | None,
               seam: np.ndarray | None = None, ship_probability: float | None = None) -> None:
        """Score one image: `pred_labels` as `labels` gives them; `prob` the segmenter's probabilities
        (None where the image was not segmented), `seam` its seam channel's, `ship_probability` the gate's."""
        for name, evaluator in self._evaluators.items():
            if name == "f2":
                evaluator.update(true_labels, pred_labels, image_id)
            else:
                evaluator.update(true_labels, pred_labels)
        if "f2" not in self._evaluators:
            self._f2.update(true_labels, pred_labels, image_id)
        row = dict(self._f2.rows[-1])
        if self.gate is not None:
            row["ship_probability"] = ship_probability
        self.rows.append(row)
        for accumulator, labels in self._variants(true_labels, pred_labels, prob, seam, ship_probability):
            accumulator.add(image_id, iou_matrix_from_labels(true_labels, labels))

    def _variants(self, true, pred, prob, seam, ship_probability) -> Iterator[tuple[F2Accumulator, np.ndarray]]:
        """(accumulator, labels) of one image for each scanned combination and each ablation."""
        empty = np.zeros_like(true)
        rejected = self.rejects(ship_probability)
        for (threshold, min_area), accumulator in self._scans.items():
            yield accumulator, empty if prob is None or rejected else \
                self.settings.labels(prob, threshold, min_area, seam=seam)
        ablations = self._ablations
        if "f2_with_defaults" in ablations:
            off = prob is None or (self.gate is not None and ship_probability < self.default_gate)
            yield ablations["f2_with_defaults"], empty if off else self.defaults.labels(prob, seam=seam)
        if "f2_without_gate" in ablations:
            yield ablations["f2_without_gate"], pred if not rejected else \
                empty if prob is None else self.settings.labels(prob, seam=seam)
        if "f2_without_split" in ablations:
            yield ablations["f2_without_split"], pred if prob is None or rejected else \
                self.settings.labels(prob, split="none")

    def result(self) -> EvaluateResult:
        """The metrics (f2 beside the all-empty baseline, the ablations, the gate's report, the other
        evaluators'), the per-image rows, the scan and its best combination (an oracle choice)."""
        metrics = {"role": self.role, "source": self.source, **self._f2.result()}
        metrics.update({name: accumulator.summary()["f2"] for name, accumulator in self._ablations.items()})
        if self.gate is not None:
            probabilities = np.array([r["ship_probability"] for r in self.rows])
            report = gate_report(self.rows, probabilities, self.gate.threshold)
            metrics.update({k: v for k, v in report.items() if k.startswith("gate_")})
        if self.tuned:
            metrics["postprocess"] = {k: self.tuned[k] for k in (*TUNED_KEYS, "classifier_threshold")
                                      if k in self.tuned}
        for name, evaluator in self._evaluators.items():
            if name != "f2":
                metrics.update(evaluator.result())
        scan = [{"threshold": t, "min_area": a, **acc.summary()} for (t, a), acc in self._scans.items()]
        best = max(scan, key=lambda row: row["f2"]) if scan else None
        return EvaluateResult(metrics, list(self.rows), scan, best)


def _evaluation_images(config: Config, index: Any, splits: DataSplits | None, progress: bool):
    """(index, role, source): the images given, else evaluate.images of the data; at most evaluate.max_images."""
    e = config.settings.evaluate
    role, source = ("given", "images given by the caller") if index is not None else (e.images, "")
    if index is None:
        index, source = role_index(config, role, splits, progress)
    if not len(index):
        raise ConfigError(f"No {role} images to evaluate.")
    return index.subset(first_n(index.image_ids, e.max_images)), role, source


def evaluate(config: Config, model: Any, run_dir: str | Path | None = None, index: Any = None,
             progress: bool = True, submission: str | Path | None = None, gate: Gate | None = None,
             splits: DataSplits | None = None, tuned: dict | None = None) -> EvaluateResult:
    """Predict full images (the test set by default) and score them.

    Args:
        config: the experiment ([predict] settings, metrics.evaluate, [evaluate] options).
        model: a Keras model or the path of a `.keras` file.
        run_dir: where metrics.json and examples.png go (None: nothing written).
        index: the images to score (default: evaluate.images, "test" or "validation", of the data).
        progress: show a progress bar.
        submission: also write these predictions as a submission CSV (one prediction pass).
        gate: a `shiptoolkit.inference.gate.Gate` (default: the config's [classifier], from beside the model
            file). With evaluate.without_gate, rejected images are segmented too and f2 is also
            reported without the gate.
        splits: the data's `DataSplits`, when the caller already opened it.
        tuned: post-processing chosen on validation (default: postprocess.json beside the model
            file); f2 is then also reported with the config's own settings (`f2_with_defaults`).
    """
    config = as_config(config, "evaluate")  # a path or a dict too, as run() takes it
    model_argument(model, "evaluate")
    index, role, source = _evaluation_images(config, index, splits, progress)
    tuned = tuned if tuned is not None else tuned_beside(model)
    evaluators = metric_evaluators(config)  # a training-only metric is refused before anything loads
    gate = gate_for(config, model, gate)
    scores = Evaluation.from_config(config, gate, tuned, evaluators, role, source)
    model = checked_model(model, config)
    writer = SubmissionWriter(submission) if submission else None
    with writer or contextlib.nullcontext():
        skipped = _score(scores, model, index, writer, config.settings.data.on_error, progress)
    result = scores.result()
    result.submission = writer.summary if writer is not None else None
    result.skipped = skipped
    if skipped:
        result.metrics["skipped_images"] = len(skipped)
    if run_dir is not None:
        _write(result, RunDir(run_dir), scores, model, index, config.settings.evaluate.plot_examples)
    return result


def _score(scores: Evaluation, model, index, writer: SubmissionWriter | None, on_error: str, progress: bool) -> list:
    """Predict and score every image of `index`; the `Problem`s of the unreadable ones (data.on_error = "skip").

    An unreadable image gets its empty row in the submission but no score: scoring it as predicted
    empty would count a correct answer on an image never seen (f2 1.0 on an empty one).
    """
    screening, skipped = scores.screening, []
    for p in predict_items(model, index_items(index), scores.settings, progress=progress, gate=screening or scores.gate,
                           on_error=on_error, skip_rejected=screening is not None, problems=skipped):
        if p.image is None:  # unreadable, skipped
            if writer is not None:
                writer.write(p.image_id, None)
            continue
        true = index.labels(p.image_id)
        pred = scores.labels(true, p.prob, p.seam, p.ship_probability)
        if writer is not None:
            writer.write(p.image_id, pred)
        scores.update(p.image_id, true, pred, p.prob, p.seam, p.ship_probability)
    if skipped and not scores.rows:
        raise DataError(f"None of the {len(skipped)} images to evaluate could be read, e.g. {skipped[0].message} "
                        "Nothing was scored.")
    return skipped


def _write(result: EvaluateResult, run: RunDir, scores: Evaluation, model, index, plot_examples: int) -> None:
    """metrics.json (metrics, scan, best, tuned and used settings, per-image rows) and examples.png."""
    result.metrics_path = run.metrics
    if result.skipped:
        run.write_skipped(result.skipped, append=True)  # beside the images training left out, if any
    run.metrics.write_text(json.dumps({"metrics": result.metrics, "scan": result.scan, "best": result.best,
                                       "tuned": scores.tuned, "settings": scores.settings.__dict__,
                                       "per_image": result.per_image}, indent=2, default=float))
    result.plot_path = _plot_examples(model, index, result.per_image, scores.settings, plot_examples, scores.role,
                                      run.examples, scores.gate)


def _plot_examples(model, index, rows: list[dict], settings: PredictSettings, per_row: int, role: str, out: Path,
                   gate: Gate | None = None) -> Path | None:
    """Best and worst ship images, and the empty images with false positives, re-predicted for the plot."""
    if per_row <= 0:
        return None
    ships = sorted((r for r in rows if not r["empty"]), key=lambda r: r["f2"])
    false_pos = [r for r in rows if r["empty"] and r["pred_ships"]]
    chosen = ([("best", r) for r in ships[::-1][:per_row]] + [("worst", r) for r in ships[:per_row]]
              + [("false positive", r) for r in false_pos[:per_row]])
    if not chosen:
        return None
    ids = list(dict.fromkeys(r["ImageId"] for _, r in chosen))
    predicted = {p.image_id: (p.image, p.prob, p.seam) for p in predict_items(
        model, index_items(index.subset(ids)), settings, progress=False, gate=gate, skip_rejected=True)
        if p.image is not None}
    panels = []
    for kind, row in chosen:
        if row["ImageId"] in predicted:
            image, prob, seam = predicted[row["ImageId"]]
            panels.append({"image": image, "true": index.labels(row["ImageId"]),
                           "pred": settings.labels(prob, seam=seam),
                           "label": f"{kind}: f2 {row['f2']:.2f} ({row['true_ships']} true, {row['pred_ships']} pred)"})
    return plot_overlays(panels, out, f"{role} images: best, worst, false positives")
