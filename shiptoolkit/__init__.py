"""shiptoolkit: plugin-based ship segmentation for the Kaggle Airbus Ship Detection data.

The public API. Heavy modules (Keras, TensorFlow) are imported only when a function needs them.

Example:
    >>> import shiptoolkit
    >>> "dice" in shiptoolkit.list_components("loss") or True
    True
"""

from __future__ import annotations

from typing import Any

from shiptoolkit.config import Config, load_config
from shiptoolkit.errors import (
    ConfigError,
    DataError,
    PluginError,
    ShiptoolkitError,
    UnknownComponentError,
)
from shiptoolkit.hookspecs import hookimpl
from shiptoolkit.plugins import get_registry, load_local_plugin, register_plugin, unregister_plugin
from shiptoolkit.registry import Range, param_ranges

__version__ = "0.1.0"

__all__ = [
    "Config",
    "evaluate",
    "open_dataset",
    "predict",
    "run",
    "score_submission",
    "train",
    "load_model",
    "ConfigError",
    "DataError",
    "PluginError",
    "Range",
    "ShiptoolkitError",
    "UnknownComponentError",
    "__version__",
    "create_component",
    "get_registry",
    "hookimpl",
    "list_components",
    "load_config",
    "load_local_plugin",
    "param_ranges",
    "register_plugin",
    "unregister_plugin",
]


def list_components(kind: str, pattern: str = "*") -> list[str]:
    """Names of registered components of `kind` ('sampler', 'backbone', 'loss', 'metric', 'classifier')."""
    return [c.name for c in get_registry(kind).list(pattern)]


def create_component(kind: str, name: str, /, *args: Any, **params: Any) -> Any:
    """Build a registered component by name, e.g. `create_component("loss", "dice")`."""
    return get_registry(kind).create(name, *args, **params)


# The stages import Keras/TensorFlow: load them on first use so `import shiptoolkit` stays light.
_LAZY = {
    "train": ("shiptoolkit.training", "train"),
    "predict": ("shiptoolkit.evaluation", "predict_stage"),
    "evaluate": ("shiptoolkit.evaluation", "evaluate"),
    "run": ("shiptoolkit.runner", "run"),
    "open_dataset": ("shiptoolkit.data.source", "open_dataset"),
    "score_submission": ("shiptoolkit.scoring", "score_submission"),
    "load_model": ("shiptoolkit.model_io", "load_model"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'shiptoolkit' has no attribute {name!r}")
