"""The predict stage: images in, a Kaggle submission out (`predict_stage`), with the run's gate and tuning.

The helpers that load a run's segmenter (checked to be one), its gate and its tuned post-processing
are shared with `shiptoolkit.scoring.evaluate`, which predicts the same way before it scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shiptoolkit.config import Config, as_config
from shiptoolkit.data.source import DataSplits, data_splits
from shiptoolkit.errors import ArgumentError, ConfigError
from shiptoolkit.inference.gate import Gate, load_gate
from shiptoolkit.inference.prediction import (
    PredictSettings,
    folder_items,
    index_items,
    predict_labels,
)
from shiptoolkit.inference.sharding import Shard, check_sidecar_free, parse_shard, write_sidecar
from shiptoolkit.inference.submission import SubmissionWriter, write_submission
from shiptoolkit.models.checks import check_segmentation_model
from shiptoolkit.models.saving import load_model
from shiptoolkit.rundir import RunDir


def model_argument(model: Any, function: str) -> None:
    """Refuse a `model` argument that is neither a model file's path nor a model object (None, a number)."""
    if isinstance(model, str | Path) or callable(getattr(model, "predict_on_batch", None)):
        return
    raise ArgumentError(f"{function}() got model={model!r}: model must be a trained segmenter, the path of a .keras "
                        "file (e.g. a run's best.keras), a keras.Model or an exported model (anything with "
                        "predict_on_batch).")


def checked_model(model, config: Config):
    """The model (loaded from a path), checked to be a ship segmenter before any image is predicted."""
    name = str(model) if isinstance(model, (str, Path)) else None
    if name is not None:
        model = load_model(model)
    check_segmentation_model(model, config.settings.train.seam_channel, name)
    return model


def gate_for(config: Config, model, gate):
    """The gate to use: the one given, else the config's, loaded from beside a model file."""
    if gate is not None or not config.settings.classifier.name:
        return gate
    if not isinstance(model, (str, Path)):
        raise ConfigError("The config has a [classifier] but the model was passed as an object: pass "
                          "gate=shiptoolkit.inference.gate.load_gate(config, run_dir) too, or set classifier.name=''.")
    return load_gate(config, Path(model).parent)


def first_n(items: list, n: int) -> list:
    return items[:n] if n else items


@dataclass
class PredictResult:
    path: Path
    summary: Any
    skipped: list = field(default_factory=list)  # `Problem`s of the images given an empty row (on_error="skip")
    shard: Shard | None = None  # the part predicted, of `total_images` (sharded prediction)
    total_images: int = 0


def tuned_beside(model) -> dict | None:
    """postprocess.json from beside a model file (a model object carries none)."""
    return RunDir(Path(model).parent).read_tuned() if isinstance(model, (str, Path)) else None


def role_index(config: Config, role: str, splits: DataSplits | None, progress: bool):
    """(index, description) of the "test" or "validation" images."""
    splits = splits or data_splits(config, progress)
    index = splits.role(role)
    where = splits.test_source if role == "test" else "validation split (tuned on: not a test figure)"
    return index, where


def predict_stage(config: Config, model, run_dir: str | Path, progress: bool = True,
                  images: str | None = None, out: str | Path | None = None, gate: Gate | None = None,
                  splits: DataSplits | None = None, overwrite: bool = False,
                  shard: Shard | str | None = None, tuned: dict | None = None) -> PredictResult:
    """Predict predict.images ("test", "validation" or a folder) and write the submission into the run dir.

    Uses the post-processing tuned on validation (postprocess.json beside the model) unless an
    override names the key. With a [classifier] gate, images it rejects get an empty row without
    being segmented. Folder images must be data.image_size square (their rows would not fit the
    submission otherwise); with data.on_error = "skip", such and unreadable images get an empty
    row and are listed in the result's `skipped`. The submission appears only when complete.

    With `shard` ("I/N" or a `Shard`), only the images of shard I of N are predicted (chosen by a
    hash of the ImageId among the predict.max_images first), and a shard description is written
    beside the submission for `shiptoolkit.inference.merging.merge_submissions`.

    `tuned` (postprocess.json's content) replaces the one beside the model: an ensemble's
    (`shiptoolkit.ensembles`) is re-tuned for it, since a model object carries none.
    """
    config = as_config(config, "predict")  # a path or a dict too, as run() takes it
    model_argument(model, "predict")
    shard = parse_shard(shard) if shard is not None else None
    p, data = config.settings.predict, config.settings.data
    source = images or p.images
    if source in ("test", "validation"):
        items = index_items(role_index(config, source, splits, progress)[0])
    else:
        items = folder_items(Path(source).expanduser(), data.image_size)
    items = first_n(items, p.max_images)
    all_ids = [image_id for image_id, _ in items]
    if shard is not None:
        items = shard.select(items)
    path = Path(out) if out else RunDir(run_dir).submission(p.out)
    SubmissionWriter(path, overwrite)  # refuses an existing file before the model is even loaded
    if shard is not None:
        check_sidecar_free(path)  # never write over a user's file that happens to bear the sidecar's name
    settings = PredictSettings.from_config(config, tuned if tuned is not None else tuned_beside(model))
    gate = gate_for(config, model, gate)
    skipped: list = []
    model = checked_model(model, config)
    rows = predict_labels(model, items, settings, progress, data.on_error, gate, problems=skipped)
    summary = write_submission(rows, path, overwrite)
    if shard is not None:
        write_sidecar(path, shard, [image_id for image_id, _ in items], all_ids, data.image_size, str(source))
    return PredictResult(path, summary, skipped, shard, len(all_ids))
