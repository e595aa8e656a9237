"""The experiment's configuration: the schema of every key, TOML validated into a `Config`, typed settings.

`schema` lists every section and key (type, default, range, meaning) and is the one source that
validation, the typed `settings` and the docs' configuration reference read. `loading` turns TOML
(a file, a packaged example by name from `examples_index`, or a dict) plus `--set` overrides into a
validated `Config` with every default filled in; it looks component names up in the plugins'
registries, so this layer sits on `shiptoolkit.plugins`. Nothing here imports Keras.
"""

from shiptoolkit.config.loading import (
    Config,
    apply_override,
    as_config,
    check_type,
    load_config,
    load_plugins_of,
    overridden_keys,
    prepare_config,
    validate,
)
from shiptoolkit.config.schema import COMPONENT_SECTIONS, RUN_NAME_RE, SCHEMA, Key, Section

__all__ = ["COMPONENT_SECTIONS", "RUN_NAME_RE", "SCHEMA", "Config", "Key", "Section", "apply_override", "as_config",
           "check_type", "load_config", "load_plugins_of", "overridden_keys", "prepare_config", "validate"]
