"""Exception types. Every error a user can cause derives from `ShiptoolkitError`.

The CLI turns these into clean messages (no traceback); library users can catch the base class.
"""

from __future__ import annotations


class ShiptoolkitError(Exception):
    """Base class for every error caused by user input (config, data, plugins, names)."""


class ConfigError(ShiptoolkitError, ValueError):
    """A TOML experiment file or an override is invalid."""


class UnknownComponentError(ShiptoolkitError, KeyError):
    """A component name is not registered. The message lists the known names."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class DuplicateComponentError(ShiptoolkitError, ValueError):
    """Two plugins registered the same name without `override=True`."""


class PluginError(ShiptoolkitError, RuntimeError):
    """A plugin failed to load or raised while registering components."""


class DataError(ShiptoolkitError, ValueError):
    """The dataset is malformed: bad RLE, unsafe image ids, missing or corrupt images."""
