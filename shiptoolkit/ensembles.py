"""Ensembles of runs: predict and evaluate with several runs at once, their probabilities averaged.

`predict_ensemble(["runs/a", "runs/b"], images="test_v2", out="submission.csv")` and
`evaluate_ensemble(["runs/cv"])` (a folder of run directories, e.g. a cross-validation's folds) are
what `shiptoolkit predict --run A --run B ...` and `shiptoolkit evaluate --run A --run B` call. The
segmenters' probabilities are averaged, and with a [classifier] so are the gates' ship
probabilities (`shiptoolkit.inference.ensemble` builds both as single Keras models).

Post-processing is tuned on out-of-fold validation predictions, never on test images: the
members' postprocess.json files are not averaged; the ensemble's threshold, min_area (split depth,
whole images or windows) and gate threshold are re-tuned in one scan (`training.tuning.tune_pooled`)
on each member's OWN validation images (which that member never trained on), each predicted by
that member alone, pooled. The images predicted may not be among those tuning images, nor the
images evaluated among any member's training or validation images: both are checked (by file).
With tune.enabled = false, or when a member has no validation images, the members' own
postprocess.json values are used instead: their common values, else the median threshold,
min_area and gate threshold (the printed line says which).

This module sits above `runner` in the layer order: it uses inference, scoring and training.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shiptoolkit.config import Config, overridden_keys, prepare_config
from shiptoolkit.data.source import DataSplits, data_splits, stratified_subset
from shiptoolkit.errors import ConfigError
from shiptoolkit.inference.ensemble import (
    SPLIT_KEYS,
    Member,
    average_models,
    check_agreement,
    ensemble_gate,
    find_members,
    median_threshold,
    member_gates,
    member_segmenter,
)
from shiptoolkit.inference.gate import Gate
from shiptoolkit.inference.prediction import TUNED_KEYS, PredictSettings, folder_items
from shiptoolkit.inference.stage import PredictResult, first_n, predict_stage, role_index
from shiptoolkit.inference.submission import SubmissionWriter
from shiptoolkit.rundir import RunDir
from shiptoolkit.scoring.evaluate import evaluate
from shiptoolkit.training.tuning import TuningPart, tune_pooled

Say = Callable[[str], Any]


def member_overrides(overrides: Iterable[str]) -> list[str]:
    """The `--set` overrides that apply to a member's own config: all but `SPLIT_KEYS` (its tuning images
    are the validation images it was trained with, whatever the predicted images' data is)."""
    return [item for item in overrides if item.partition("=")[0].strip() not in SPLIT_KEYS]


def load_members(runs: Sequence[str | Path | Member], overrides: Iterable[str] = (),
                 trust_run_plugins: bool = False) -> list[Member]:
    """The members of `runs` (run directories, or folders of them; `Member`s are kept as they are), each
    with its config.toml and `member_overrides`. Its [plugins] modules are imported only when trusted."""
    members: list[Member] = []
    for run in runs:
        members += [run] if isinstance(run, Member) else [
            Member(RunDir(p), prepare_config(RunDir(p).config, member_overrides(overrides),
                                             load_plugins=trust_run_plugins)) for p in find_members([run])]
    if not members:
        raise ConfigError("An ensemble needs at least one run directory.")
    return members


@dataclass
class Ensemble:
    """Members, the settings to predict with (`config`: CONFIG, else the first member's config.toml, with
    `--set`) and, once `prepare`d, the averaged segmenter and gate and the post-processing chosen."""

    members: list[Member]
    config: Config
    progress: bool = True
    segmenter: Any = None
    gate: Gate | None = None
    tuned: dict | None = None
    how: str = ""  # how the post-processing was chosen, in words
    _splits: dict[str, DataSplits] = field(default_factory=dict)

    def splits(self, config: Config) -> DataSplits:
        """`data_splits` of a config, opened once per distinct [data], [cv] and run.seed."""
        key = json.dumps([config.values.get("data"), config.values.get("cv"), config.settings.run.seed],
                         sort_keys=True, default=str)
        if key not in self._splits:
            self._splits[key] = data_splits(config, self.progress)
        return self._splits[key]

    def tuning_indexes(self) -> list[Any] | None:
        """Each member's own validation images (at most tune.max_images, as training tunes); None when a
        member has none (then nothing can be tuned out-of-fold)."""
        indexes = []
        for member in self.members:
            validation = self.splits(member.config).validation
            if not len(validation):
                return None
            indexes.append(stratified_subset(validation, self.config.settings.tune.max_images,
                                             member.config.settings.run.seed))
        return indexes

    def seen_images(self) -> set[Path]:
        """Every image some member trained or was validated on (resolved paths)."""
        seen: set[Path] = set()
        for member in self.members:
            splits = self.splits(member.config)
            seen |= image_paths(splits.train) | image_paths(splits.validation)
        return seen

    def describe(self) -> str:
        """One line: the members, what is averaged and the post-processing in force (and how it was chosen)."""
        s = PredictSettings.from_config(self.config, self.tuned)
        gate = f", gate threshold {self.gate.threshold:.3f}" if self.gate is not None else ""
        averaged = "segmenter and gate probabilities" if self.gate is not None else "segmenter probabilities"
        names = ", ".join(m.name for m in self.members)
        return (f"ensemble of {len(self.members)} runs ({names}): {averaged} averaged; post-processing: "
                f"threshold {s.threshold}, min_area {s.min_area}{gate}, "
                f"{'whole images' if s.whole_image else 'sliding windows'} ({self.how})")


def image_paths(index: Any) -> set[Path]:
    """The resolved files of an index's images."""
    return {index.image_path(i).resolve() for i in index.image_ids}


def open_ensemble(runs: Sequence[str | Path | Member], config: Config | str | Path | None = None,
                  overrides: Iterable[str] = (), trust_run_plugins: bool = False, progress: bool = True) -> Ensemble:
    """The ensemble of `runs` (not loaded yet: see `prepare`), its members checked to agree.

    `config` gives the [predict]/[evaluate]/[tune] settings (default: the first member's config.toml);
    `overrides` apply to it, and to the members' configs except their `SPLIT_KEYS`.
    """
    overrides = list(overrides)
    members = load_members(runs, overrides, trust_run_plugins)
    check_agreement(members)
    if isinstance(config, Config):
        resolved = config.with_overrides(overrides) if overrides else config
    elif config is not None:
        resolved = prepare_config(config, overrides)
    else:
        resolved = prepare_config(members[0].run.config, overrides, load_plugins=trust_run_plugins)
    return Ensemble(members, resolved, progress)


def prepare(ensemble: Ensemble, exclude: set[Path] = frozenset(), excluded_from: str = "tuning",
            say: Say | None = print) -> Ensemble:
    """Load and average the members' models, choose the post-processing, and say what was chosen.

    `exclude`: the images to be predicted or evaluated (resolved paths); they may share no file with
    the tuning images (`excluded_from="tuning"`) or with any member's training and validation images
    (`excluded_from="seen"`, for evaluation).
    """
    tune = ensemble.config.settings.tune
    indexes = ensemble.tuning_indexes() if tune.enabled else None
    if excluded_from == "seen":
        _refuse_overlap(exclude, ensemble.seen_images(), "trained or validated on by a member")
    elif indexes is not None:
        _refuse_overlap(exclude, set().union(*map(image_paths, indexes)), "the ensemble's tuning images")
    models = [member_segmenter(m) for m in ensemble.members]
    gates = member_gates(ensemble.members)
    if indexes is not None:
        ensemble.tuned = _tune(ensemble, models, gates, indexes)
        ensemble.how = retuned_how(ensemble.tuned)
    else:
        why = "tune.enabled = false" if not tune.enabled else "a member has no validation images to re-tune on"
        ensemble.tuned, how = members_postprocess(ensemble.members)
        ensemble.how = f"{how}, not re-tuned: {why}"
    if ensemble.tuned is not None:
        ensemble.tuned["ensemble"] = {"members": [m.name for m in ensemble.members], "postprocess": ensemble.how}
    ensemble.segmenter = average_models(models, "ensemble")
    ensemble.gate = ensemble_gate(gates, _gate_threshold(ensemble.config, ensemble.tuned, gates)) if gates else None
    if say is not None:
        say(ensemble.describe())
    return ensemble


def _refuse_overlap(images: set[Path], used: set[Path], what: str) -> None:
    shared = sorted(images & used)
    if shared:
        raise ConfigError(f"{len(shared)} of the images to predict or evaluate are {what} (e.g. "
                          f"{[p.name for p in shared[:3]]}): an ensemble's figures and post-processing come "
                          "only from images none of its members saw. Use images held out from every member, e.g. "
                          "an external test set (CONFIG with data.test_path, or --images FOLDER).")


def _tune(ensemble: Ensemble, models: list[Any], gates: list[Gate] | None, indexes: list[Any]) -> dict:
    """tune_pooled over the members: member i predicts its own validation images alone."""
    s = ensemble.config.settings
    parts = [TuningPart(model, index, gates[i] if gates else None)
             for i, (model, index) in enumerate(zip(models, indexes, strict=True))]
    info = tune_pooled(parts, PredictSettings.from_config(ensemble.config), s.tune.thresholds, s.tune.min_areas,
                       s.classifier.tune_threshold, s.tune.gate_floor, ensemble.progress, s.data.on_error,
                       s.tune.split_depths, s.tune.windows,
                       s.data.empty_prior if s.tune.objective == "f2_prior_weighted" else None,
                       s.tune.max_ships)
    info["tuned_on"]["role"] = "out-of-fold validation (each member's own validation images, predicted by it alone)"
    return info


def retuned_how(info: dict) -> str:
    """How re-tuned post-processing was chosen, in words (for the one line `Ensemble.describe` prints)."""
    on = info["tuned_on"]
    return (f"re-tuned on {on['images']} out-of-fold validation images ({on['empty_images']} empty), each member's "
            f"own predicted by it alone, not the members' postprocess.json: validation {info['objective']} "
            f"{info['f2']:.4f}, with the config's settings {info['f2_with_defaults']:.4f}, all-empty baseline "
            f"{info['f2_all_empty_baseline']:.4f}")


def members_postprocess(members: Sequence[Member]) -> tuple[dict | None, str]:
    """The members' postprocess.json values: their common values, else the median threshold, min_area and
    gate threshold (whole_image and split_depth only where they agree); with how they were combined."""
    infos = [m.run.read_tuned() for m in members]
    infos = [i for i in infos if i]
    if not infos:
        return None, "the config's [predict] settings (no member has a postprocess.json)"
    keys = (*TUNED_KEYS, "classifier_threshold")
    values = {k: [i[k] for i in infos if i.get(k) is not None] for k in keys}
    agreed = {k: v[0] for k, v in values.items() if v and len(v) == len(infos) and len(set(v)) == 1}
    if len(agreed) == sum(1 for v in values.values() if v):
        return agreed, f"the members' common postprocess.json values ({len(infos)} of {len(members)} members tuned)"
    combined = {**agreed, **{k: statistics.median(values[k]) for k in ("threshold", "min_area", "classifier_threshold")
                             if values[k]}}
    if "min_area" in combined:
        combined["min_area"] = int(round(combined["min_area"]))
    return combined, f"the median of the members' postprocess.json values (they differ; {len(infos)} tuned)"


def _gate_threshold(config: Config, tuned: dict | None, gates: list[Gate]) -> float:
    """classifier.threshold when `--set` names it, else the ensemble's tuned one, else the members' median."""
    c = config.settings.classifier
    if "classifier.threshold" in overridden_keys(config):
        return float(c.threshold)
    if tuned and tuned.get("classifier_threshold") is not None and c.tune_threshold:
        return float(tuned["classifier_threshold"])
    return median_threshold(gates)


def predict_ensemble(runs: Sequence[str | Path | Member], images: str | None = None, out: str | Path | None = None,
                     config: Config | str | Path | None = None, overrides: Iterable[str] = (), progress: bool = True,
                     overwrite: bool = False, shard: Any = None, trust_run_plugins: bool = False,
                     say: Say | None = print) -> PredictResult:
    """Predict images ("test", "validation" or a folder; default predict.images) with the ensemble of `runs`
    and write a submission (`out`, default predict.out in the working directory), as `predict_stage` does.
    """
    ensemble = open_ensemble(runs, config, overrides, trust_run_plugins, progress)
    settings = ensemble.config.settings
    source = images or settings.predict.images
    path = Path(out) if out else Path(settings.predict.out)
    SubmissionWriter(path, overwrite)  # refuses an existing file before anything is loaded
    splits = ensemble.splits(ensemble.config) if source in ("test", "validation") else None
    if splits is not None:
        targets = image_paths(role_index(ensemble.config, source, splits, progress)[0])
    else:
        folder = Path(source).expanduser()
        targets = {(folder / image_id).resolve() for image_id, _ in folder_items(folder)}
    prepare(ensemble, targets, "tuning", say)
    return predict_stage(ensemble.config, ensemble.segmenter, ".", progress, images=source, out=path,
                         gate=ensemble.gate, splits=splits, overwrite=overwrite, shard=shard, tuned=ensemble.tuned)


def evaluate_ensemble(runs: Sequence[str | Path | Member], config: Config | str | Path | None = None,
                      overrides: Iterable[str] = (), progress: bool = True, trust_run_plugins: bool = False,
                      say: Say | None = print) -> Any:
    """Score the ensemble of `runs` on evaluate.images (the test set by default) in a new run directory
    (`<out_dir>/<name>-ensemble-<time>/`: config.toml, metrics.json, examples.png and the ensemble's
    postprocess.json). Returns a `shiptoolkit.runner.RunResult`; its evaluation reports f2 beside the
    all-empty baseline. The images may not be any member's training or validation images.
    """
    from shiptoolkit.runner import RunResult

    ensemble = open_ensemble(runs, config, overrides, trust_run_plugins, progress)
    s = ensemble.config.settings
    splits = ensemble.splits(ensemble.config)
    index = role_index(ensemble.config, s.evaluate.images, splits, progress)[0]
    prepare(ensemble, image_paths(index.subset(first_n(index.image_ids, s.evaluate.max_images))), "seen", say)
    run_dir = RunDir.create(s.run.out_dir, f"{s.run.name}-ensemble")
    ensemble.config.save(run_dir.config)
    result = RunResult(run_dir.path, ["evaluate"], files={"config": run_dir.config})
    with run_dir.guard():
        run_dir.update_state(stages=["evaluate"])  # of given models: `train --resume` has nothing to train here
        if ensemble.tuned is not None:
            result.files["postprocess"] = run_dir.save_tuned(ensemble.tuned)
        result.evaluate = evaluate(ensemble.config, ensemble.segmenter, run_dir.path, progress=progress,
                                   gate=ensemble.gate, splits=splits, tuned=ensemble.tuned)
        result.files.update(metrics=result.evaluate.metrics_path, examples_plot=result.evaluate.plot_path)
    return result


__all__ = ["Ensemble", "evaluate_ensemble", "load_members", "members_postprocess", "open_ensemble",
           "predict_ensemble", "prepare"]
