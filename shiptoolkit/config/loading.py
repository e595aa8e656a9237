"""Experiment configuration: TOML in, validated `Config` with every default filled in, TOML out.

Everything is checked before any work starts: unknown sections and keys (typos) name the key
and suggest the closest, wrong types name the expected type, numbers outside their key's range
name the range, component names are looked up in the registries (listing the known ones),
component parameters are checked against the component's signature, and the metrics and
augmentation transforms are built once, as the run builds them. The keys themselves live in
`shiptoolkit.config.schema`. [plugins] file paths are stored resolved (absolute).
"""

from __future__ import annotations

import copy
import difflib
import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shiptoolkit.config.examples_index import resolve_config_path
from shiptoolkit.config.schema import COMPONENT_SECTIONS, RUN_NAME_RE, SCHEMA, Key, Section  # noqa: F401  (re-exported)
from shiptoolkit.config.settings import Settings, settings_from
from shiptoolkit.config.transforms import check_transforms
from shiptoolkit.errors import ArgumentError, ConfigError, UnknownComponentError
from shiptoolkit.plugins import get_registry, load_local_plugin
from shiptoolkit.plugins.contracts import build_component
from shiptoolkit.rundir import RunDir


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
    def settings(self) -> Settings:
        """The typed, frozen view: `config.settings.train.epochs` (see `shiptoolkit.config.settings`).

        Built from the values at first use; a Config is not changed in place (overrides make a new one)."""
        cached = self.__dict__.get("_settings")
        if cached is None:
            cached = self.__dict__["_settings"] = settings_from(self.values)
        return cached

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
        path.write_text(self.to_toml(), encoding="utf-8")  # what load_config reads, whatever the locale
        return path


def prepare_config(source: str | Path | dict | Config | None, overrides: Iterable[str] = (), *,
                   load_plugins: bool = True) -> Config:
    """Load a config after loading the local plugins it names, so their components validate.

    With `load_plugins=False` (a config from elsewhere, e.g. a received run directory) none of its
    [plugins] modules is imported, and components are not checked: those plugins' are unknown.

    Example:
        >>> cfg = prepare_config("examples/quickstart.toml", ["train.epochs=1"])  # doctest: +SKIP
    """
    overrides = override_list(overrides)
    if not load_plugins:
        if isinstance(source, Config):
            return load_config(source.values, overrides, base_dir=source.base_dir, check_components=False,
                               _source=source.source, _prior=source.overrides)
        return load_config(source, overrides, check_components=False)
    if isinstance(source, Config):
        load_plugins_of(source)
        return source.with_overrides(overrides) if overrides else source
    raw = load_config(source, overrides, check_components=False)  # reads [plugins] only
    load_plugins_of(raw)
    return load_config(raw.values, base_dir=raw.base_dir, _source=raw.source, _prior=raw.overrides)


def as_config(config: Any, function: str, argument: str = "config") -> Config:
    """The `Config` an API function was given as a `Config`, a TOML path (or a packaged example's name)
    or a dict of sections (plugins it names loaded), as `run()` takes it.

    Raises:
        ArgumentError: anything else (None, a number), naming the function and the argument.
    """
    if isinstance(config, Config):
        return config
    if isinstance(config, str | Path | Mapping):
        return prepare_config(config)
    raise ArgumentError(f"{function}() got {argument}={config!r}: {argument} must be a Config "
                        "(shiptoolkit.load_config(...)), the path of a TOML file, a packaged example's name "
                        "(e.g. \"quickstart\") or a dict of sections.")


def load_plugins_of(config: Config) -> list[str]:
    """Load the config's [plugins] modules (file paths relative to the config file)."""
    return [load_local_plugin(spec, base_dir=config.base_dir) for spec in config["plugins"]["modules"]]


def overridden_keys(config: Config) -> set[str]:
    """`section.key` names the config's `--set` overrides set (they win over tuned values)."""
    return {item.partition("=")[0].strip() for item in getattr(config, "overrides", [])}


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
        path = resolve_config_path(source)  # a file, or a packaged example by name ("quickstart")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # TOML is UTF-8; -sig: a BOM is fine
        except UnicodeDecodeError as exc:
            raise ConfigError(f"Config file {str(path)!r} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
                              f"offset {exc.start}). Save it as UTF-8 (TOML files must be) and try again.") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    overrides = override_list(overrides)
    for item in overrides:
        apply_override(raw, item)
    values = validate(raw, where=str(path) if path else "config", check_components=check_components)
    if base_dir is not None and path is None:
        path = RunDir(base_dir).config  # a dict's relative paths resolve against base_dir
    values["plugins"]["modules"] = [_resolved(spec, path) for spec in values["plugins"]["modules"]]
    return Config(values, path, [*_prior, *overrides])


def _resolved(spec: str, config_path: Path | None) -> str:
    """A [plugins] file path made absolute against the config's folder (the working directory for a
    dict), so that a copy elsewhere (a run's config.toml, read by `train --resume`) names the same
    file; module names stay as they are, and so does a path to no file (its error says what it is relative to)."""
    if not spec.endswith(".py") or Path(spec).is_absolute():
        return spec
    path = (config_path.parent if config_path else Path.cwd()) / spec
    return str(path.resolve()) if path.is_file() else spec


def override_list(overrides: Iterable[str] | None) -> list[str]:
    """`overrides` as a list, refusing one string (its characters would be read as overrides, one by one)."""
    if isinstance(overrides, str) or not isinstance(overrides, Iterable | None):
        example = json.dumps([overrides] if isinstance(overrides, str) else ["train.epochs=2"])
        raise ConfigError(f"overrides must be a list of \"section.key=value\" strings, not the "
                          f"{type(overrides).__name__} {overrides!r}: pass e.g. {example}.")
    items = list(overrides or [])
    wrong = [item for item in items if not isinstance(item, str)]
    if wrong:
        raise ConfigError(f"overrides must be \"section.key=value\" strings; got {wrong[0]!r} "
                          f"({type(wrong[0]).__name__}) in {items!r}.")
    return items


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
    if check_components:
        _check_sampler_size(out, where)
        callbacks = get_registry("callback")
        for name in out["train"]["callbacks"]:
            if name not in callbacks:  # named now, in --dry-run, not when a fit starts
                raise ConfigError(f"{where}: train.callbacks: {callbacks._unknown_message(name)}")
        _check_metrics(out["metrics"], where)
        try:  # built once now, as training builds them: --dry-run refuses what the run would
            check_transforms(out["augment"]["transforms"], SCHEMA["augment"].key("transforms").default)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return out


def _check_metrics(metrics: dict[str, list[str]], where: str) -> None:
    """Every name of metrics.train / metrics.evaluate is registered, builds (`build_component` checks
    what its factory returns) and serves that use."""
    registry, other = get_registry("metric"), {"train": "evaluate", "evaluate": "train"}
    for usage in ("train", "evaluate"):
        for name in metrics[usage]:
            if name not in registry:
                raise ConfigError(f"{where}: metrics.{usage}: {registry._unknown_message(name)}")
            if usage not in build_component("metric", name).usage:
                only = "an evaluation" if usage == "train" else "a training"
                raise ConfigError(f"{where}: metrics.{usage}: {name!r} is {only}-only metric; put it in "
                                  f"metrics.{other[usage]}. Received: metrics.{usage}={metrics[usage]!r}")


def _take_keys(section: Section, given: dict[str, Any], where: str) -> dict[str, Any]:
    """The section's keys popped from `given`, type- and range-checked, defaults filled in."""
    out = {}
    for key in section.keys:
        dotted = f"{section.name}.{key.name}"
        out[key.name] = check_range(check_type(given.pop(key.name, copy.deepcopy(key.default)), key,
                                               f"{where}: {dotted}"), key, dotted, where)
    return out


def check_range(value: Any, key: Key, dotted: str, where: str = "config") -> Any:
    """`value` if it (each item of a list) is in the key's declared range; else a `ConfigError` naming
    the key, the value and the range (with what 0 means, when the key's doc says)."""
    if key.range is None:
        return value
    if all(item in key.range for item in (value if isinstance(value, list) else [value])):
        return value
    meaning = re.search(r"\((0 = [^)]*)\)", key.doc) if 0 in key.range else None
    note = f" ({meaning.group(1)})" if meaning else ""
    each = "each item of " if isinstance(value, list) else ""
    raise ConfigError(f"{where}: {each}{dotted} must be {key.range}{note}. Received: {dotted}={value!r}")


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
    encoder = given.get("encoder")
    if isinstance(encoder, str) and encoder and "encoder" in {p.name for p in component.params}:
        try:  # an architecture's encoder is a component too: a typo is refused at load, not at build
            get_registry("encoder").get(encoder)
        except UnknownComponentError as exc:
            raise ConfigError(f"{where}: [{section.name}] encoder = {encoder!r}: {exc}") from None
    resolved = {"name": name}
    for param in component.params:
        if param.name in given:
            resolved[param.name] = given[param.name]
        elif not param.required and param.default is not None:
            resolved[param.name] = param.default
    resolved.update({k: v for k, v in given.items() if k not in resolved})
    return {**resolved, **own}


def _check_cross_fields(values: dict[str, dict[str, Any]], where: str) -> None:
    """Rules no single key's range can say (each key's own range is in SCHEMA, checked by `_take_keys`)."""
    name = values["run"]["name"]
    checks = [
        (bool(RUN_NAME_RE.fullmatch(name)) and name not in (".", ".."),
         "run.name must be a plain folder name (letters, digits, '-', '_', '.'; no path separators, not '.' or "
         "'..'): the run directory is <out_dir>/<name>-<time>"),
        (-1 <= values["cv"]["fold"] < values["cv"]["folds"], "cv.fold must be -1 (not a fold) or in [0, cv.folds)"),
    ]
    for ok, message in checks:
        if not ok:
            section, key = message.split()[0].split(".")
            raise ConfigError(f"{where}: {message}. Received: {section}.{key}={values[section][key]!r}")


def _check_sampler_size(values: dict[str, dict[str, Any]], where: str) -> None:
    """The sampler's side (`patch_size`, or `size` of full_images) must fit in data.image_size.

    A default the config does not change is left to the sampler: a config that only checks data
    or predicts on small images keeps the default sampler, and training still stops on it.
    """
    sampler, side = values["sampler"], values["data"]["image_size"]
    defaults = {p.name: p.default for p in get_registry("sampler").get(sampler["name"]).params}
    for key in ("patch_size", "size"):
        value = sampler.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > side and value != defaults.get(key):
            raise ConfigError(f"{where}: sampler.{key} = {value} is larger than data.image_size = {side}. Set "
                              f"sampler.{key} to at most {side} (or data.image_size to the images' real size).")


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
