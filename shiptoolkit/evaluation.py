"""Stages on full images: `predict_stage` writes the submission, `evaluate` scores validation images.

`evaluate` is the seed's "true accuracy" done right: the competition F2 on full images (always
beside the all-empty baseline), dice and IoU, image-level ship/no-ship precision, recall and
the false-positive rate on empty images, an optional threshold/min_area scan, and a PNG of
the best, worst and false-positive images.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shiptoolkit.competition import F2Accumulator, iou_matrix_from_labels
from shiptoolkit.config import Config
from shiptoolkit.errors import ConfigError
from shiptoolkit.gate import gate_report
from shiptoolkit.plugins import get_registry
from shiptoolkit.prediction import PredictSettings, folder_items, index_items, predict_items, predict_labels
from shiptoolkit.tuning import load_tuned

if TYPE_CHECKING:
    from shiptoolkit.data.source import DataSplits
    from shiptoolkit.gate import Gate


def _model(model, config: Config):
    """The model (loaded from a path), checked to be a ship segmenter before any image is predicted."""
    from shiptoolkit.model_checks import check_segmentation_model

    name = str(model) if isinstance(model, (str, Path)) else None
    if name is not None:
        from shiptoolkit.model_io import load_model

        model = load_model(model)
    check_segmentation_model(model, config["train"]["seam_channel"], name)
    return model


def _gate(config: Config, model, gate):
    """The gate to use: the one given, else the config's, loaded from beside a model file."""
    if gate is not None or not config["classifier"]["name"]:
        return gate
    if not isinstance(model, (str, Path)):
        raise ConfigError("The config has a [classifier] but the model was passed as an object: pass "
                          "gate=shiptoolkit.gate.load_gate(config, run_dir) too, or set classifier.name=''.")
    from shiptoolkit.gate import load_gate

    return load_gate(config, Path(model).parent)


def _limit(items: list, n: int) -> list:
    return items[:n] if n else items


@dataclass
class PredictResult:
    path: Path
    summary: Any
    skipped: list = field(default_factory=list)  # `Problem`s of the images given an empty row (on_error="skip")


def _tuned(model) -> dict | None:
    """postprocess.json from beside a model file (a model object carries none)."""
    return load_tuned(Path(model).parent) if isinstance(model, (str, Path)) else None


def _role_index(config: Config, role: str, splits: DataSplits | None, progress: bool):
    """(index, description) of the "test" or "validation" images."""
    from shiptoolkit.data.source import data_splits

    splits = splits or data_splits(config, progress)
    index = splits.role(role)
    where = splits.test_source if role == "test" else "validation split (tuned on: not a test figure)"
    return index, where


def predict_stage(config: Config, model, run_dir: str | Path, progress: bool = True,
                  images: str | None = None, out: str | Path | None = None, gate: Gate | None = None,
                  splits: DataSplits | None = None, overwrite: bool = False) -> PredictResult:
    """Predict predict.images ("test", "validation" or a folder) and write the submission into the run dir.

    Uses the post-processing tuned on validation (postprocess.json beside the model) unless an
    override names the key. With a [classifier] gate, images it rejects get an empty row without
    being segmented. Folder images must be data.image_size square (their rows would not fit the
    submission otherwise); with data.on_error = "skip", such and unreadable images get an empty
    row and are listed in the result's `skipped`. The submission appears only when complete.
    """
    from shiptoolkit.submission import SubmissionWriter, write_submission

    source = images or config["predict"]["images"]
    if source in ("test", "validation"):
        items = index_items(_role_index(config, source, splits, progress)[0])
    else:
        items = folder_items(Path(source).expanduser(), config["data"]["image_size"])
    items = _limit(items, config["predict"]["max_images"])
    path = Path(out) if out else Path(run_dir) / config["predict"]["out"]
    SubmissionWriter(path, overwrite)  # refuses an existing file before the model is even loaded
    settings = PredictSettings.from_config(config, _tuned(model))
    gate = _gate(config, model, gate)
    skipped: list = []
    rows = predict_labels(_model(model, config), items, settings, progress, config["data"]["on_error"], gate,
                          problems=skipped)
    return PredictResult(path, write_submission(rows, path, overwrite), skipped)


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

    def table(self) -> str:
        m = self.metrics
        verdict = "beats" if m["f2"] > m["f2_all_empty_baseline"] else "does NOT beat"
        lines = [f"f2: {m['f2']:.4f}   all-empty baseline f2: {m['f2_all_empty_baseline']:.4f}   "
                 f"(the model {verdict} predicting nothing, on {m['images']} {m.get('role', '')} images)",
                 f"  images: {m.get('source', '')}"]
        shown = ("f2", "f2_all_empty_baseline", "role", "source")
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
        gate: a `shiptoolkit.gate.Gate` (default: the config's [classifier], from beside the model
            file). With evaluate.without_gate, rejected images are segmented too and f2 is also
            reported without the gate.
        splits: the data's `DataSplits`, when the caller already opened it.
        tuned: post-processing chosen on validation (default: postprocess.json beside the model
            file); f2 is then also reported with the config's own settings (`f2_with_defaults`).
    """
    from shiptoolkit.submission import SubmissionWriter

    e = config["evaluate"]
    role, source = ("given", "images given by the caller") if index is not None else (e["images"], "")
    if index is None:
        index, source = _role_index(config, role, splits, progress)
    if not len(index):
        raise ConfigError(f"No {role} images to evaluate.")
    ids = _limit(index.image_ids, e["max_images"])
    index = index.subset(ids)
    tuned = tuned if tuned is not None else _tuned(model)
    settings = PredictSettings.from_config(config, tuned)
    defaults = PredictSettings.from_config(config) if tuned else None
    evaluators = {}
    for name in config["metrics"]["evaluate"]:
        component = get_registry("metric").create(name)
        if "evaluate" not in component.usage:
            raise ConfigError(f"metrics.evaluate: {name!r} is a training-only metric.")
        evaluators[name] = component.evaluator()
    f2_main = evaluators.get("f2") or get_registry("metric").create("f2").evaluator()  # the baseline is always shown
    grid = [(float(t), int(a)) for t in (e["scan_thresholds"] or [settings.threshold])
            for a in (e["scan_min_areas"] or [settings.min_area])]
    scans = {combo: F2Accumulator() for combo in grid} if len(grid) > 1 else {}
    gate = _gate(config, model, gate)
    default_gate = config["classifier"]["threshold"] if gate is not None and defaults is not None else None
    # What each option buys, measured on the same images: the config's own settings, no gate, no splitting.
    ablations = {"f2_with_defaults": F2Accumulator()} if defaults is not None else {}
    if gate is not None and e["without_gate"]:
        ablations["f2_without_gate"] = F2Accumulator()
    if settings.split != "none":
        ablations["f2_without_split"] = F2Accumulator()
    # Images no gate in play accepts are not segmented (scored as predicted empty), unless asked.
    screening = None if gate is None or e["without_gate"] else \
        dataclasses.replace(gate, threshold=min(gate.threshold, default_gate if default_gate is not None else 1.0))
    model = _model(model, config)
    writer = SubmissionWriter(submission) if submission else contextlib.nullcontext()
    with writer:
        for p in predict_items(model, index_items(index), settings, progress=progress,
                               on_error=config["data"]["on_error"], gate=screening or gate,
                               skip_rejected=screening is not None):
            true = index.labels(p.image_id)
            raw = np.zeros_like(true) if p.prob is None else settings.labels(p.prob, seam=p.seam)
            rejected = gate is not None and not gate.accepts(p.ship_probability)
            pred = np.zeros_like(true) if rejected else raw
            if submission:
                writer.write(p.image_id, None if p.prob is None else pred)
            _update(evaluators, f2_main, scans, p.image_id, true, pred, None if rejected else p.prob, settings, p.seam)
            if gate is not None:
                f2_main.rows[-1]["ship_probability"] = p.ship_probability
            if "f2_without_gate" in ablations:
                ablations["f2_without_gate"].add(p.image_id, iou_matrix_from_labels(true, raw))
            if "f2_with_defaults" in ablations:
                off = p.prob is None or (gate is not None and p.ship_probability < default_gate)
                plain = np.zeros_like(true) if off else defaults.labels(p.prob, seam=p.seam)
                ablations["f2_with_defaults"].add(p.image_id, iou_matrix_from_labels(true, plain))
            if "f2_without_split" in ablations:
                plain = pred if p.prob is None or rejected else settings.labels(p.prob, split="none")
                ablations["f2_without_split"].add(p.image_id, iou_matrix_from_labels(true, plain))
    submission_summary = writer.summary if submission else None
    metrics = {"role": role, "source": source, **f2_main.result()}
    ship_rows = [r["f2"] for r in f2_main.rows if not r["empty"]]
    metrics["f2_ship_images"] = float(np.mean(ship_rows)) if ship_rows else float("nan")
    for name, acc in ablations.items():
        metrics[name] = acc.summary()["f2"]
    if gate is not None:
        probs = np.array([r["ship_probability"] for r in f2_main.rows])
        report = gate_report(f2_main.rows, probs, gate.threshold)
        metrics.update({k: v for k, v in report.items() if k.startswith("gate_")})
    if tuned:
        metrics["postprocess"] = {k: tuned[k] for k in ("threshold", "min_area", "classifier_threshold")}
    for name, evaluator in evaluators.items():
        if name != "f2":
            metrics.update(evaluator.result())
    scan = [{"threshold": t, "min_area": a, **acc.summary()} for (t, a), acc in scans.items()]
    best = max(scan, key=lambda row: row["f2"]) if scan else None
    result = EvaluateResult(metrics, f2_main.rows, scan, best, submission=submission_summary)
    if run_dir is not None:
        run_dir = Path(run_dir)
        result.metrics_path = run_dir / "metrics.json"
        result.metrics_path.write_text(json.dumps({"metrics": metrics, "scan": scan, "best": best, "tuned": tuned,
                                                   "settings": settings.__dict__, "per_image": f2_main.rows},
                                                  indent=2, default=float))
        result.plot_path = _plot_examples(model, index, f2_main.rows, settings, e["plot_examples"], role,
                                          run_dir / "examples.png", gate)
    return result


def _update(evaluators: dict, f2_main, scans: dict, image_id: str, true, pred, prob, settings: PredictSettings,
            seam=None) -> None:
    for name, evaluator in evaluators.items():
        if name == "f2":
            evaluator.update(true, pred, image_id)
        else:
            evaluator.update(true, pred)
    if "f2" not in evaluators:
        f2_main.update(true, pred, image_id)
    for (threshold, min_area), acc in scans.items():
        scanned = np.zeros_like(true) if prob is None else settings.labels(prob, threshold, min_area, seam=seam)
        acc.add(image_id, iou_matrix_from_labels(true, scanned))


def _plot_examples(model, index, rows: list[dict], settings: PredictSettings, per_row: int, role: str, out: Path,
                   gate: Gate | None = None) -> Path | None:
    """Best and worst ship images, and the empty images with false positives, re-predicted for the plot."""
    from shiptoolkit.plots import plot_overlays

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
