"""Several runs as one model: an ensemble averages its members' segmenter (and gate) probabilities.

An ensemble is built as ONE Keras model whose output is the mean of its members' outputs, so that
everything downstream (whole images or sliding windows, TTA, `replicas`, the gate, `evaluate`)
works on it unchanged. Its input keeps the members' training size (sliding windows still use it),
while each member inside is its whole-image copy (`prediction.whole_image_model`): the ensemble's
own whole-image copy then runs on any image size too.

The members are run directories (config.toml + best.keras), given one by one or as a folder
holding several, e.g. the fold runs of a cross-validation (`<cv folder>/<name>-fold0-<time>/`).
They must agree on what shapes their inputs and outputs (`AGREED_KEYS`); the post-processing of
an ensemble is re-tuned on its members' own validation images (`shiptoolkit.ensembles`), never
averaged from their postprocess.json files.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shiptoolkit.config import Config
from shiptoolkit.errors import ConfigError
from shiptoolkit.inference.gate import Gate, load_gate, read_gate_json
from shiptoolkit.inference.prediction import whole_image_model
from shiptoolkit.models.checks import check_segmentation_model
from shiptoolkit.models.saving import load_model
from shiptoolkit.rundir import RunDir

# Config keys every member must share: the images and shapes its models were trained on. A member
# with another image size, resize or classifier size would read the same images differently.
AGREED_KEYS = ("data.image_size", "predict.resize", "train.seam_channel", "classifier.image_size")

# Keys that decide which images a member trained and was validated on: a member's tuning images
# come from its own config.toml, whatever `--set` says (those overrides apply to the predicted images).
SPLIT_KEYS = ("data.path", "data.val_fraction", "data.test_fraction", "data.test_path", "data.split",
              "data.groups_csv", "data.max_images", "run.seed", "cv.folds", "cv.seed", "cv.fold")


@dataclass(frozen=True)
class Member:
    """One run of an ensemble: its directory and its resolved config."""

    run: RunDir
    config: Config

    @property
    def name(self) -> str:
        return str(self.run.path)


def is_run(path: str | Path) -> bool:
    """A run directory a member can come from: it holds config.toml and best.keras."""
    run = RunDir(path)
    return run.config.is_file() and run.best.is_file()


def runs_in(folder: str | Path) -> list[Path]:
    """The run directories directly inside `folder`, sorted by name (a cross-validation folder's folds)."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_dir() and is_run(p)) if folder.is_dir() else []


def is_folder_of_runs(path: str | Path) -> bool:
    """A folder that is no run itself (no config.toml, no best.keras) but holds run directories."""
    run = RunDir(path)
    return not run.config.exists() and not run.best.exists() and bool(runs_in(path))


def find_members(paths: Sequence[str | Path]) -> list[Path]:
    """The member runs of `--run` arguments: each a run directory, or a folder of run directories.

    Raises:
        ConfigError: a path that is neither (naming what a member needs).
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if is_run(path):
            found.append(path)
        elif runs_in(path):
            found.extend(runs_in(path))
        else:
            run = RunDir(path)
            raise ConfigError(f"--run {str(path)!r} is neither a run directory ({run.config.name} and "
                              f"{run.best.name}) nor a folder of run directories (e.g. a cross-validation folder).")
    return found


def _setting(config: Config, key: str) -> Any:
    section, _, name = key.partition(".")
    return getattr(getattr(config.settings, section), name)


def check_agreement(members: Sequence[Member]) -> None:
    """Refuse members that would read the images differently, naming the key and each run's value.

    Besides `AGREED_KEYS`, all members have a gate ([classifier]) or none does.
    """
    gate = [(m.name, "a [classifier] gate" if m.config.settings.classifier.name else "no gate") for m in members]
    checks = [("classifier.name", gate)] + [(key, [(m.name, _setting(m.config, key)) for m in members])
                                            for key in AGREED_KEYS]
    for key, values in checks:
        if key == "classifier.image_size" and gate[0][1] == "no gate":
            continue
        if len({v for _, v in values}) > 1:
            listed = "; ".join(f"{name}: {value}" for name, value in values)
            raise ConfigError(f"The ensemble's members disagree on {key} ({listed}). Its members must read the "
                              "images alike: ensemble runs trained with the same data.image_size, predict.resize, "
                              "train.seam_channel and gate (classifier.image_size).")


def average_models(models: Sequence[Any], name: str = "ensemble", whole_images: bool = True) -> Any:
    """One Keras model whose output is the mean of `models`' outputs (one model: itself).

    Each member is wrapped as `<name>_member_<i>` (nested layer names stay unique even for two
    copies of one file). With `whole_images` (segmenters) each is used in its whole-image copy
    where it has one, so that the ensemble keeps the members' fixed input size for windows yet
    `whole_image_model` can free it for whole images; classifiers (fixed size) are used as they are.
    """
    if len(models) == 1:
        return models[0]
    import keras

    shapes = {tuple(m.input_shape) for m in models}
    if len(shapes) > 1:
        raise ConfigError(f"The ensemble's models take inputs of different sizes {sorted(map(str, shapes))}: "
                          "their sliding windows would differ. Ensemble runs trained on the same patch size.")
    free = [whole_image_model(m) for m in models] if whole_images else list(models)
    wrapped = [keras.Model(f.input, f.output, name=f"{name}_member_{i}") for i, f in enumerate(free)]
    image = keras.Input(models[0].input_shape[1:], name="image")
    return keras.Model(image, keras.layers.Average()([m(image) for m in wrapped]), name=name)


def member_segmenter(member: Member) -> Any:
    """A member's best.keras, checked to be a ship segmenter before any image is predicted."""
    model = load_model(member.run.best)
    check_segmentation_model(model, member.config.settings.train.seam_channel, str(member.run.best))
    return model


def ensemble_segmenter(members: Sequence[Member]) -> Any:
    """The members' best.keras averaged into one model."""
    return average_models([member_segmenter(m) for m in members], "ensemble")


def untuned_gate_threshold(member: Member) -> float:
    """A member's gate threshold before any tuning: its gate.json's, else its classifier.threshold."""
    info = read_gate_json(member.run)
    return float(info.get("threshold", member.config.settings.classifier.threshold))


def member_gates(members: Sequence[Member]) -> list[Gate] | None:
    """Each member's own gate, at its untuned threshold (None without [classifier])."""
    if not members[0].config.settings.classifier.name:
        return None
    gates = []
    for member in members:
        gate = load_gate(member.config, member.run.path)
        gates.append(Gate(gate.model, gate.image_size, untuned_gate_threshold(member), gate.batch_size, gate.info))
    return gates


def ensemble_gate(gates: Sequence[Gate] | None, threshold: float) -> Gate | None:
    """One gate whose ship probability is the mean of the members' classifiers', at `threshold`."""
    if not gates:
        return None
    model = average_models([g.model for g in gates], "ensemble_gate", whole_images=False)
    return Gate(model, gates[0].image_size, threshold, gates[0].batch_size,
                {"members": [g.info for g in gates], "threshold": threshold})


def median_threshold(gates: Sequence[Gate]) -> float:
    """The members' untuned gate thresholds: their common value, else their median."""
    return float(statistics.median(g.threshold for g in gates))
