"""Typed, frozen views of a validated config: `config.settings.train.epochs`, not `config["train"]["epochs"]`.

Each section's class is derived from `shiptoolkit.config.schema.SCHEMA`, so the schema stays the one
source of keys, types and defaults (validation and the docs' reference read it too); a key added
there is an attribute here. Component sections ([sampler], [backbone], [loss], [classifier]) also
carry `name` and `params`: the component's own parameters, to pass to its factory.

Example:
    >>> from shiptoolkit.config import load_config
    >>> s = load_config({"train": {"epochs": 3}}).settings
    >>> s.train.epochs, s.backbone.name, s.predict.threshold
    (3, 'unet', 0.5)
"""

from __future__ import annotations

from dataclasses import make_dataclass
from typing import Any

from shiptoolkit.config.schema import SCHEMA, Section


def _section_class(section: Section) -> type:
    fields: list[tuple[str, Any]] = [(key.name, key.type) for key in section.keys]
    if section.component:
        fields += [("name", str), ("params", dict)]
    cls = make_dataclass(f"{section.name.title()}Settings", fields, frozen=True)
    cls.__doc__ = f"[{section.name}]: {section.doc}"
    cls.__module__ = __name__
    return cls


SECTION_CLASSES: dict[str, type] = {name: _section_class(section) for name, section in SCHEMA.items()}

Settings = make_dataclass("Settings", list(SECTION_CLASSES.items()), frozen=True)
Settings.__doc__ = "Every section of a validated config, each a frozen dataclass (see `settings_from`)."
Settings.__module__ = __name__


def section_settings(name: str, values: dict[str, Any]) -> Any:
    """One section's frozen view of validated `values` (a component section's params split off)."""
    section = SCHEMA[name]
    own = {key.name: values[key.name] for key in section.keys}
    if section.component:
        params = {k: v for k, v in values.items() if k not in own and k != "name"}
        return SECTION_CLASSES[name](**own, name=values["name"], params=params)
    return SECTION_CLASSES[name](**own)


def settings_from(values: dict[str, dict[str, Any]]) -> Any:
    """`Settings` of a validated config's values (every key present, defaults filled in)."""
    return Settings(**{name: section_settings(name, values[name]) for name in SCHEMA})
