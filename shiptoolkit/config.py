"""Experiment configuration: TOML in, validated `Config` with every default filled in, TOML out.

Everything is checked before any work starts: unknown sections and keys (typos) name the key
and suggest the closest, wrong types name the expected type, component names are looked up in
the registries (listing the known ones) and component parameters are checked against the
component's signature. `SCHEMA` is also the source of the docs' configuration reference.
"""

from __future__ import annotations

import copy
import difflib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shiptoolkit.errors import ConfigError

# Sections that configure one registered component: `name = "..."` plus its parameters.
COMPONENT_SECTIONS = {"sampler": "sampler", "backbone": "backbone", "loss": "loss", "classifier": "classifier"}


@dataclass(frozen=True)
class Key:
    """One config key: its type (a Python type, or `list[...]`), default and meaning."""

    name: str
    type: Any
    default: Any
    doc: str
    choices: tuple[Any, ...] | None = None

    @property
    def type_name(self) -> str:
        if getattr(self.type, "__origin__", None) is list:
            return f"list[{self.type.__args__[0].__name__}]"
        return self.type.__name__


@dataclass(frozen=True)
class Section:
    name: str
    doc: str
    keys: tuple[Key, ...] = ()
    component: str | None = None  # registry kind for component sections
    # For component sections: "" = off (an optional component such as the classifier gate).
    default_component: str | None = None

    def key(self, name: str) -> Key | None:
        return next((k for k in self.keys if k.name == name), None)


SCHEMA: dict[str, Section] = {s.name: s for s in [
    Section("run", "What to run and where its outputs go.", (
        Key("name", str, "experiment", "Run name; the run directory is `<out_dir>/<name>-<timestamp>/`."),
        Key("out_dir", str, "runs", "Folder that holds run directories (relative to the working directory)."),
        Key("stages", list[str], ["train", "predict", "evaluate"], "Stages `shiptoolkit run` executes, in order.",
            ("train", "predict", "evaluate")),
        Key("seed", int, 42, "Seed for sampling, splitting, augmentation and weight initialisation."),
    )),
    Section("data", "Where the Kaggle-layout dataset is, or which synthetic one to generate.", (
        Key("path", str, "synthetic", "A folder in the Kaggle layout, or \"synthetic\" to generate one into `cache_dir` on first use."),
        Key("csv", str, "train_ship_segmentations_v2.csv", "Segmentation CSV inside `path`."),
        Key("images", str, "train_v2", "Image folder inside `path`."),
        Key("image_size", int, 768, "Height and width of every image and mask (Kaggle: 768)."),
        Key("on_error", str, "raise", "On malformed RLE or missing/corrupt images: \"raise\" or \"skip\" (warn and count).",
            ("raise", "skip")),
        Key("val_fraction", float, 0.05, "Fraction of the non-test images held out for validation: checkpoint choice and every tuned number."),
        Key("test_fraction", float, 0.0, "Fraction of the images held out as the test set (reported, never used for a choice); "
            "group-aware with split = \"groups\". Fixed by the data alone, not by run.seed, so every run on a dataset shares it."),
        Key("test_path", str, "", "A labelled folder in the Kaggle layout (same `csv` and `images` names) used as the test set."),
        Key("synthetic_test_images", int, 300, "With path = \"synthetic\": images in the independent synthetic test set "
            "(its own seed, so no scene is shared with training); 0 = none."),
        Key("split", str, "image", "\"image\": split by image; \"groups\": whole groups of overlapping images go to "
            "one side (leak-free on the real data, whose images are overlapping crops).", ("image", "groups")),
        Key("groups_csv", str, "", "For split = \"groups\": a CSV `ImageId,group` (relative to `path`); \"\" = "
            "find the groups by hashing 256 px tiles (images sharing a tile are one group)."),
        Key("max_images", int, 0, "Use only this many images (0 = all); handy for quick trials."),
        Key("synthetic_images", int, 400, "Images in the generated synthetic dataset."),
        Key("synthetic_seed", int, 0, "Seed of the generated synthetic dataset."),
        Key("synthetic_empty_fraction", float, 0.78, "Fraction of synthetic images without ships (real data: 0.779)."),
        Key("synthetic_overlap_fraction", float, 0.0, "Fraction of synthetic images cut as overlapping crops of "
            "larger scenes, like the real data (to try split = \"groups\")."),
        Key("cache_dir", str, "~/.cache/shiptoolkit", "Where synthetic datasets are generated and reused."),
    )),
    Section("sampler", "Which (image, mask) pairs training sees. `name` plus the sampler's parameters.",
            component="sampler", default_component="mixed"),
    Section("augment", "Albumentations transforms applied to training pairs (never to validation).", (
        Key("transforms", list[dict], [{"name": "HorizontalFlip", "p": 0.5}, {"name": "VerticalFlip", "p": 0.5},
                                       {"name": "RandomRotate90", "p": 0.5}],
            "List of `{name = \"AlbumentationsClass\", <its parameters>}` tables, applied in order."),
    )),
    Section("backbone", "The segmentation model. `name` plus the model's parameters.",
            component="backbone", default_component="unet"),
    Section("loss", "The training loss. `name` plus the loss's parameters.",
            component="loss", default_component="bce_dice"),
    Section("metrics", "Metric names from the metric registry.", (
        Key("train", list[str], ["dice", "iou"], "Keras metrics reported during training."),
        Key("evaluate", list[str], ["f2", "dice", "iou"], "Metrics computed on full validation images."),
    )),
    Section("train", "Optimisation, callbacks and hardware.", (
        Key("epochs", int, 15, "Maximum number of epochs."),
        Key("batch_size", int, 16, "Pairs per batch (per replica times replicas under a strategy)."),
        Key("steps_per_epoch", int, 0, "Batches per epoch (0 = the sampler's length / batch_size)."),
        Key("validation_steps", int, 0, "Validation batches per epoch (0 = the whole validation sampler)."),
        Key("optimizer", str, "adam", "Keras optimizer name.", ("adam", "adamw", "sgd", "rmsprop")),
        Key("learning_rate", float, 1e-4, "Initial learning rate."),
        Key("monitor", str, "val_f2", "Quantity for checkpointing, early stopping and LR reduction (not pixel accuracy). "
            "\"val_f2\": the competition metric on whole validation images, predicted as `predict` does."),
        Key("val_f2_every", int, 1, "Compute val_f2 every N epochs (and at the last epoch)."),
        Key("val_f2_images", int, 64, "Validation images val_f2 predicts (0 = all); its cost is printed."),
        Key("schedule", str, "cosine", "Learning-rate schedule: \"cosine\" (linear warm-up, then cosine decay to 1% over all "
            "steps) or \"constant\".", ("constant", "cosine")),
        Key("warmup_fraction", float, 0.05, "With schedule = \"cosine\": fraction of all steps spent warming up from lr/10."),
        Key("collapse_patience", int, 2, "Stop (and say so) when the model predicts no ship pixel on validation for this "
            "many epochs in a row; such epochs are never kept as best (0 = off)."),
        Key("early_stopping_patience", int, 5, "Epochs without improvement before stopping (0 = off)."),
        Key("reduce_lr_patience", int, 3, "Epochs without improvement before reducing the LR (0 = off)."),
        Key("reduce_lr_factor", float, 0.5, "Factor applied to the LR on a plateau."),
        Key("mixed_precision", bool, False, "Train in mixed_float16 (GPUs)."),
        Key("jit_compile", bool, False, "Compile the train step with XLA."),
        Key("tensorboard", bool, False, "Write TensorBoard logs into the run directory."),
        Key("strategy", str, "default", "tf.distribute strategy.", ("default", "mirrored", "multi_worker")),
        Key("workers", int, 2, "Parallel data-loading workers."),
        Key("seam_channel", bool, False, "Train a second output channel on the seams between touching ships "
            "(the backbone gets classes = 2); `predict.split = \"watershed\"` then splits along it."),
    )),
    Section("predict", "Full-image prediction and the Kaggle submission.", (
        Key("images", str, "test", "\"test\", \"validation\" or a folder of JPGs."),
        Key("out", str, "submission.csv", "Submission file name inside the run directory."),
        Key("threshold", float, 0.5, "Probability threshold for ship pixels."),
        Key("overlap", float, 0.25, "Sliding-window overlap as a fraction of the window (0 <= overlap < 1)."),
        Key("tta", bool, False, "Average predictions over flips (test-time augmentation)."),
        Key("whole_image", bool, True, "Predict whole images in one pass when the model is fully convolutional (its weights in "
            "a copy with a free input size); false = sliding windows of the training size."),
        Key("min_area", int, 0, "Drop predicted ships smaller than this many pixels."),
        Key("gate_threshold", float, 0.0, "Skip images whose maximum probability is below this (0 = off)."),
        Key("split", str, "none", "Split touching ships predicted as one blob: \"watershed\" (distance transform + "
            "watershed) or \"none\".", ("none", "watershed")),
        Key("split_depth", float, 1.5, "Watershed: how far (px) a ship's distance-map peak must rise above the "
            "neck joining it to another to count as its own ship (larger = fewer splits)."),
        Key("batch_size", int, 32, "Windows per forward pass."),
        Key("resize", int, 0, "Resize images to this side before predicting and probabilities back (0 = off); match a `full_images` sampler's `size`."),
        Key("max_images", int, 0, "Predict only this many images (0 = all)."),
    )),
    Section("evaluate", "Scoring on full images: the test set by default.", (
        Key("images", str, "test", "\"test\" (never used for a choice) or \"validation\" (tuned on: not a test figure).",
            ("test", "validation")),
        Key("max_images", int, 0, "Evaluate only this many images (0 = all)."),
        Key("without_gate", bool, False, "With a [classifier]: also segment the images the gate rejects, to report f2 "
            "without the gate (slower)."),
        Key("scan_thresholds", list[float], [], "Thresholds to scan on the evaluated images (an oracle view: a choice made "
            "on these images is not a test figure; tuning happens on validation, see [tune])."),
        Key("scan_min_areas", list[int], [], "min_area values to scan with the thresholds."),
        Key("plot_examples", int, 6, "Examples per row (best, worst, false positives) in the overlay grid."),
    )),
    Section("classifier", "Optional ship/no-ship gate: a classifier trained on whole images (resized), "
            "in the same run; images it rejects get an empty row. `name` (\"\" = no gate) plus the "
            "classifier's parameters, and these keys.", (
        Key("image_size", int, 256, "Side the images are resized to for the classifier."),
        Key("ship_fraction", float, 0.5, "Fraction of ship images in each training epoch (balanced by default)."),
        Key("epochs", int, 10, "Maximum classifier epochs (early stopping on validation loss)."),
        Key("steps_per_epoch", int, 0, "Batches per epoch (0 = the sampler's length / batch_size)."),
        Key("batch_size", int, 16, "Images per batch."),
        Key("learning_rate", float, 1e-3, "Adam learning rate."),
        Key("threshold", float, 0.5, "Images with a lower ship probability are predicted empty (when not tuned)."),
        Key("tune_threshold", bool, True, "Choose the threshold with the segmenter's threshold and min_area, jointly, "
            "for f2 on the validation images (see [tune])."),
    ), component="classifier", default_component=""),
    Section("tune", "Post-processing chosen on the validation images after training (one joint scan for f2), saved as "
            "postprocess.json in the run directory and used by `predict` unless `--set` names the key.", (
        Key("enabled", bool, True, "Tune after training (needs validation images)."),
        Key("thresholds", list[float], [0.3, 0.4, 0.5, 0.6, 0.7, 0.8], "Segmenter probability thresholds to try."),
        Key("min_areas", list[int], [0, 10, 20, 40, 80, 150], "min_area values to try."),
        Key("max_images", int, 0, "Validation images to tune on (0 = all)."),
        Key("gate_floor", float, 0.1, "Classifier thresholds below this are not tried, and images under it are not "
            "segmented while tuning (they would be rejected at any threshold tried)."),
    )),
    Section("plugins", "Local plugins to load before building components.", (
        Key("modules", list[str], [], "Each a `file.py` path (relative to the config file), `package.module` or `package.module:attr`."),
    )),
]}


@dataclass
class Config:
    """A validated experiment configuration: plain nested dicts with every default filled in.

    Examples:
        >>> cfg = load_config({"train": {"epochs": 1}})
        >>> cfg.get("train.epochs"), cfg.get("sampler.name")
        (1, 'mixed')
    """

    values: dict[str, dict[str, Any]]
    source: Path | None = None
    overrides: list[str] = field(default_factory=list)

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.values[section]

    def get(self, dotted: str) -> Any:
        section, _, key = dotted.partition(".")
        return self.values[section][key] if key else self.values[section]

    def component(self, section: str) -> tuple[str, dict[str, Any]]:
        """`(name, params)` of a component section such as "backbone" (the section's own keys left out)."""
        own = {key.name for key in SCHEMA[section].keys}
        params = {k: v for k, v in self.values[section].items() if k not in own}
        return params.pop("name"), params

    def with_overrides(self, overrides: Iterable[str]) -> Config:
        """A new validated config with `section.key=value` overrides applied."""
        return load_config(self.values, overrides, base_dir=self.base_dir, _source=self.source,
                           _prior=self.overrides)

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    def to_toml(self) -> str:
        import tomli_w

        header = f"# Resolved shiptoolkit config (source: {self.source or 'API'})\n"
        if self.overrides:
            header += f"# overrides: {' '.join(self.overrides)}\n"
        return header + tomli_w.dumps(_toml_safe(self.values))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_toml())
        return path


def load_config(source: str | Path | Mapping[str, Any] | None = None, overrides: Iterable[str] = (),
                base_dir: Path | None = None, check_components: bool = True,
                _source: Path | None = None, _prior: Iterable[str] = ()) -> Config:
    """Load a TOML file (or a dict), apply `section.key=value` overrides, validate, fill defaults.

    Raises:
        ConfigError: naming the bad section/key/value and what was expected.
    """
    path: Path | None = _source
    if source is None:
        raw: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        raw = copy.deepcopy(dict(source))
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"Config file {str(path)!r} not found.")
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    overrides = list(overrides)
    for item in overrides:
        apply_override(raw, item)
    values = validate(raw, where=str(path) if path else "config", check_components=check_components)
    if base_dir is not None and path is None:
        path = base_dir / "config.toml"
    return Config(values, path, [*_prior, *overrides])


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one `section.key=value` override in place; the value is parsed as TOML if it can be."""
    target, sep, text = item.partition("=")
    section, dot, key = target.strip().partition(".")
    if not sep or not dot or not key:
        raise ConfigError(f"Override {item!r} must look like section.key=value, e.g. train.epochs=1.")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()  # a bare word: treat as a string (e.g. sampler.name=mixed)
    if section not in SCHEMA:
        _unknown(section, list(SCHEMA), "section", "the config")
    raw.setdefault(section, {})[key] = value


def validate(raw: Mapping[str, Any], where: str = "config", check_components: bool = True) -> dict[str, dict[str, Any]]:
    """Validate raw TOML data against `SCHEMA` and return it with every default filled in."""
    for section in raw:
        if section not in SCHEMA:
            _unknown(section, list(SCHEMA), "section", where)
        if not isinstance(raw[section], Mapping):
            raise ConfigError(f"{where}: [{section}] must be a table, got {type(raw[section]).__name__}.")
    out: dict[str, dict[str, Any]] = {}
    for name, section in SCHEMA.items():
        given = dict(raw.get(name, {}))
        if section.component:
            out[name] = _validate_component(section, given, where, check_components)
            continue
        for key in given:
            if section.key(key) is None:
                _unknown(key, [k.name for k in section.keys], "key", f"{where} [{name}]")
        out[name] = _take_keys(section, given, where)
    _check_cross_fields(out, where)
    return out


def _take_keys(section: Section, given: dict[str, Any], where: str) -> dict[str, Any]:
    """The section's keys popped from `given`, type-checked, defaults filled in."""
    return {key.name: check_type(given.pop(key.name, copy.deepcopy(key.default)), key,
                                 f"{where}: {section.name}.{key.name}") for key in section.keys}


def _validate_component(section: Section, given: dict[str, Any], where: str, check: bool) -> dict[str, Any]:
    name = given.pop("name", section.default_component)
    if not isinstance(name, str):
        raise ConfigError(f"{where}: {section.name}.name must be a string, got {name!r}.")
    own = _take_keys(section, given, where)  # the section's own keys (e.g. classifier.epochs); the rest are params
    if not check:
        return {"name": name, **own, **given}
    if name == "" and section.default_component == "":  # an optional component, switched off
        if given:
            raise ConfigError(f"{where}: [{section.name}] has parameters {sorted(given)} but no name; set "
                              f"{section.name}.name (see `shiptoolkit components {section.component}`).")
        return {"name": "", **own}
    from shiptoolkit.plugins import get_registry

    registry = get_registry(section.component or section.name)
    component = registry.get(name)  # UnknownComponentError lists known names
    if section.keys and not component.accepts_any_keyword():  # a typo may aim at a section key or a parameter
        known = [p.name for p in component.params] + [k.name for k in section.keys]
        for key in given:
            if key not in known:
                _unknown(key, known, "key", f"{where} [{section.name}] (name = {name!r})")
    try:
        registry.check_params(name, given)
    except ConfigError as exc:
        raise ConfigError(f"{where}: [{section.name}] {exc}") from None
    resolved = {"name": name}
    for param in component.params:
        if param.name in given:
            resolved[param.name] = given[param.name]
        elif not param.required and param.default is not None:
            resolved[param.name] = param.default
    resolved.update({k: v for k, v in given.items() if k not in resolved})
    return {**resolved, **own}


def _check_cross_fields(values: dict[str, dict[str, Any]], where: str) -> None:
    checks = [
        (0.0 <= values["data"]["val_fraction"] < 1.0, "data.val_fraction must be in [0, 1)"),
        (0.0 <= values["data"]["test_fraction"] < 1.0, "data.test_fraction must be in [0, 1)"),
        (values["data"]["synthetic_test_images"] >= 0, "data.synthetic_test_images must be >= 0"),
        (values["train"]["val_f2_every"] >= 1, "train.val_f2_every must be >= 1"),
        (values["train"]["val_f2_images"] >= 0, "train.val_f2_images must be >= 0"),
        (0.0 <= values["train"]["warmup_fraction"] < 1.0, "train.warmup_fraction must be in [0, 1)"),
        (values["train"]["collapse_patience"] >= 0, "train.collapse_patience must be >= 0"),
        (0.0 <= values["tune"]["gate_floor"] < 1.0, "tune.gate_floor must be in [0, 1)"),
        (values["train"]["epochs"] >= 1, "train.epochs must be >= 1"),
        (values["train"]["batch_size"] >= 1, "train.batch_size must be >= 1"),
        (values["train"]["learning_rate"] > 0, "train.learning_rate must be > 0"),
        (0.0 <= values["predict"]["overlap"] < 1.0, "predict.overlap must be in [0, 1)"),
        (0.0 <= values["predict"]["threshold"] <= 1.0, "predict.threshold must be in [0, 1]"),
        (values["data"]["synthetic_images"] >= 1, "data.synthetic_images must be >= 1"),
        (values["predict"]["split_depth"] > 0, "predict.split_depth must be > 0"),
        (values["classifier"]["image_size"] >= 32, "classifier.image_size must be >= 32"),
        (0.0 < values["classifier"]["ship_fraction"] < 1.0, "classifier.ship_fraction must be in (0, 1)"),
        (0.0 <= values["classifier"]["threshold"] <= 1.0, "classifier.threshold must be in [0, 1]"),
    ]
    for ok, message in checks:
        if not ok:
            section, key = message.split()[0].split(".")
            raise ConfigError(f"{where}: {message}. Received: {section}.{key}={values[section][key]!r}")


def check_type(value: Any, key: Key, where: str) -> Any:
    """Check (and lightly coerce: int -> float) one value against its key's type."""
    expected = key.type
    origin = getattr(expected, "__origin__", None)
    if origin is list:
        (item_type,) = expected.__args__
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list of {item_type.__name__}, got {value!r}.")
        value = [_check_scalar(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
        if key.choices:
            for v in value:
                if v not in key.choices:
                    raise ConfigError(f"{where}: {v!r} is not one of {list(key.choices)}.")
        return value
    value = _check_scalar(value, expected, where)
    if key.choices and value not in key.choices:
        raise ConfigError(f"{where} must be one of {list(key.choices)}. Received: {value!r}")
    return value


def _check_scalar(value: Any, expected: type, where: str) -> Any:
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is dict and isinstance(value, Mapping):
        return dict(value)
    if (expected is int and isinstance(value, bool)) or not isinstance(value, expected):
        raise ConfigError(f"{where} must be of type {expected.__name__}, got "
                          f"{type(value).__name__} {value!r}.")
    return value


def _unknown(name: str, known: list[str], what: str, where: str) -> None:
    hint = difflib.get_close_matches(name, known, n=1)
    tip = f" Did you mean {hint[0]!r}?" if hint else ""
    raise ConfigError(f"{where}: unknown {what} {name!r}.{tip} Known {what}s: {', '.join(known)}.")


def _toml_safe(value: Any) -> Any:
    """TOML has no null: drop None values (they mean 'use the default')."""
    if isinstance(value, Mapping):
        return {k: _toml_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_toml_safe(v) for v in value]
    return value
