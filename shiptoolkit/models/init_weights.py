"""Start a freshly built model from another model's weights: `train.init_from` and `classifier.init_from`.

Fine-tuning: a segmenter pretrained on the synthetic data (or on another crop size, another
dataset) starts a run on the real images. The weights are copied layer by layer, matched by the
layer's name and the shapes of all its weights, rather than with `model.load_weights`: that needs
the very same architecture and stops at the first difference, while a fine-tuning source often
differs a little (another number of classes, another decoder). Every difference is reported, so a
source that loads half of the model is never silently taken for a pretrained one, and a source
that fits nothing is an error (a different architecture) instead of a run from random weights.

Models nested in a model (a plugin's encoder sub-model) are walked recursively: a layer's key is
its path of names ("encoder/conv1"). A layer whose path has no twin but whose own name is unique
in both models (a sub-model auto-named differently, or nested on one side only) is matched by
that name. Only names and shapes decide, never the input size: the built-in backbones are fully
convolutional, so a model trained on 64 px patches starts one on 128 px ones with every layer.

Keras is imported only inside the functions that walk a model, so this module stays light.
"""

from __future__ import annotations

import math
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shiptoolkit.config import Config
from shiptoolkit.errors import ConfigError
from shiptoolkit.models.saving import ModelFileError, load_model
from shiptoolkit.rundir import RunDir

# {key: (the RunDir file a run directory stands for, the key that chooses the architecture)}
KEYS = {"train.init_from": ("best", "backbone.name"), "classifier.init_from": ("classifier", "classifier.name")}
_SHOWN = 8  # names listed for each kind of difference; the rest are counted


@dataclass
class InitReport:
    """What `init_model_from` copied into a model and what it left as built; `str()` is the printed line."""

    key: str  # "train.init_from" or "classifier.init_from"
    source: Path  # the .keras file the weights came from
    layers: int  # the model's layers that hold weights
    values: int  # the numbers in those weights
    loaded: list[str] = field(default_factory=list)
    loaded_values: int = 0
    not_in_source: list[str] = field(default_factory=list)  # no layer of that name there
    mismatched: list[str] = field(default_factory=list)  # "name (shape) here vs (shape) there"
    unused: list[str] = field(default_factory=list)  # the source's weighted layers nothing here took

    def __str__(self) -> str:
        text = (f"{self.key} {self.source}: loaded {len(self.loaded)} of {self.layers} layers "
                f"({self.loaded_values:,} of {self.values:,} weights)")
        for label, names in (("not in the source", self.not_in_source), ("shape mismatch", self.mismatched),
                             ("unused from the source", self.unused)):
            if names:
                more = f", ... ({len(names) - _SHOWN} more)" if len(names) > _SHOWN else ""
                text += f"; {label}: {', '.join(names[:_SHOWN])}{more}"
        return text


def resolve_init_from(value: str, key: str) -> Path | None:
    """The `.keras` file that `key = value` names, or None for "" (start from scratch).

    A run directory stands for its `best.keras` (`classifier.keras` for classifier.init_from), by
    `RunDir`'s names. A relative path is relative to the working directory, like data.path. Called
    when a run starts, so that a typo fails before the data is opened or anything is trained.

    Raises:
        ConfigError: naming the key, the path and the fix (missing, a folder that is not a
            finished run, not a .keras archive).
    """
    if not value:
        return None
    path, label = Path(value).expanduser(), KEYS[key][0]
    fix = f'point {key} at a run directory or a .keras file, or set {key} = "" to start from scratch'
    if path.is_dir():
        run = RunDir(path)
        wanted = getattr(run, label)
        if not wanted.is_file():
            why = (f"it has {run.last.name} only (an unfinished run?): point {key} at that file to start from it, "
                   f"or {fix}" if label == "best" and run.last.is_file() else
                   f"not a run directory{' with a [classifier]' if label == 'classifier' else ''}? Then {fix}")
            raise ConfigError(f"{key} = {value!r}: the folder {path.resolve()} has no {wanted.name}; {why}.")
        path = wanted
    elif not path.is_file():
        where = "" if path.is_absolute() else f" (a relative path is relative to the working directory, {Path.cwd()})"
        raise ConfigError(f"{key} = {value!r}: {path.resolve()} does not exist{where}; {fix}.")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ConfigError(f"{key} = {value!r}: {path} is not a .keras model (a zip archive written by model.save or "
                          f"a run); {fix}.")
    return path


def check_init_from(config: Config, segmenter: bool = True, classifier: bool = True) -> dict[str, Path]:
    """{key: .keras file} of the config's init_from keys that are set (classifier.init_from only with a
    [classifier]); raises the `resolve_init_from` ConfigError for a wrong one. Cheap: nothing is loaded."""
    s = config.settings
    wanted = {"train.init_from": s.train.init_from if segmenter else "",
              "classifier.init_from": s.classifier.init_from if classifier and s.classifier.name else ""}
    found = {key: resolve_init_from(value, key) for key, value in wanted.items()}
    return {key: path for key, path in found.items() if path is not None}


def init_model_from(model: Any, value: str, key: str, progress: bool = True) -> InitReport | None:
    """Copy the weights of the model `key = value` names into `model` (built, compiled or not).

    Args:
        model: the freshly built Keras model; its matching layers are overwritten in place.
        value: the config value: a run directory or a `.keras` file; "" does nothing.
        key: "train.init_from" or "classifier.init_from", for the messages.
        progress: print the report (it is returned either way).

    Returns:
        The report, or None for "".

    Raises:
        ConfigError: the source is missing or unreadable, or not one layer fits (another architecture).
    """
    path = resolve_init_from(value, key)
    if path is None:
        return None
    try:
        source = load_model(path)  # safe mode: a file from elsewhere runs no code
    except ModelFileError as exc:
        raise ConfigError(f"{key} = {value!r}: {exc}") from None
    report = copy_matching_weights(model, source, key, path)
    if not report.loaded:
        raise ConfigError(
            f"{key} = {value!r}: no layer of the source fits this model by name and weight shapes ({report}). The "
            f"source is a different architecture ({source.name!r} there, {model.name!r} here): set "
            f"{KEYS[key][1]} and its parameters to the source's, or {key} = \"\" to start from scratch.")
    if progress:
        print(report)
    return report


def copy_matching_weights(model: Any, source: Any, key: str = "init_from", path: str | Path = "the source"
                          ) -> InitReport:
    """Set every layer of `model` from the `source` layer of the same name whose weights have the same
    shapes; the others keep their weights. Returns the report (nothing raised when nothing fits)."""
    here, there = weighted_layers(model), weighted_layers(source)
    pairs = _pairs(here, there)
    report = InitReport(key, Path(path), len(here), sum(_size(layer) for layer in here.values()))
    for name, layer in here.items():
        other = pairs.get(name)
        if other is None:
            report.not_in_source.append(name)
            continue
        mine, theirs = [tuple(w.shape) for w in layer.weights], [tuple(w.shape) for w in other.weights]
        if mine != theirs:
            report.mismatched.append(f"{name} {_difference(mine, theirs)}")
            continue
        layer.set_weights(other.get_weights())
        report.loaded.append(name)
        report.loaded_values += _size(layer)
    taken = {id(layer) for layer in pairs.values()}
    report.unused = [name for name, layer in there.items() if id(layer) not in taken]
    return report


def weighted_layers(model: Any, prefix: str = "") -> dict[str, Any]:
    """{path of names: layer} of the layers holding weights, nested models walked into ("encoder/conv1")."""
    import keras

    found: dict[str, Any] = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.update(weighted_layers(layer, f"{prefix}{layer.name}/"))
        elif layer.weights:
            found[prefix + layer.name] = layer
    return found


def _pairs(here: dict[str, Any], there: dict[str, Any]) -> dict[str, Any]:
    """{path here: its source layer}: by path, else by the layer's own name where that is unique on both sides."""
    pairs = {name: there[name] for name in here if name in there}
    own_here = Counter(name.rpartition("/")[2] for name in here)
    own_there = Counter(name.rpartition("/")[2] for name in there)
    by_own = {name.rpartition("/")[2]: layer for name, layer in there.items()}
    taken = {id(layer) for layer in pairs.values()}
    for name in here:
        own = name.rpartition("/")[2]
        if name not in pairs and own_here[own] == 1 and own_there[own] == 1 and id(by_own[own]) not in taken:
            pairs[name] = by_own[own]
    return pairs


def _difference(mine: list[tuple], theirs: list[tuple]) -> str:
    """The first weight whose shape differs ("(3, 3, 8, 4) here vs (3, 3, 16, 8) there"), or both lists."""
    if len(mine) == len(theirs):
        first = next(i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b)
        return f"{mine[first]} here vs {theirs[first]} there"
    return f"{mine} here vs {theirs} there"


def _size(layer: Any) -> int:
    return sum(math.prod(w.shape) for w in layer.weights)
