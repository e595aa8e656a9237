"""shiptoolkit: plugin-based ship segmentation for the Kaggle Airbus Ship Detection data.

The public API. Heavy modules (Keras, TensorFlow) are imported only when a function needs them.
TensorFlow comes from one extra, `shiptoolkit[cpu]` or `shiptoolkit[gpu]`: without it the package
still imports, and the first stage that needs TensorFlow says which extra to install.

The folders are the layers, lowest first; a module imports only from its own folder or from
folders below it (`tests/test_structure.py` holds the code to this):
`errors`, `rundir`, `plots` (base modules) < `plugins` < `config` < `data` < `samplers` <
`models` < `inference` < `scoring` < `training` < `runner` < `ensembles` < `cv` < `cli`.

Example:
    >>> import shiptoolkit
    >>> "dice" in shiptoolkit.list_components("loss") or True
    True
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from shiptoolkit import moved
from shiptoolkit.config import Config, load_config
from shiptoolkit.errors import (
    ArgumentError,
    ConfigError,
    DataError,
    PluginError,
    ShiptoolkitError,
    UnknownComponentError,
)
from shiptoolkit.plugins import get_registry, load_local_plugin, register_plugin, unregister_plugin
from shiptoolkit.plugins.contracts import build_component
from shiptoolkit.plugins.hookspecs import hookimpl
from shiptoolkit.plugins.registry import Range, param_ranges

# The one place the version is written: pyproject.toml reads it from here (statically, importing nothing).
__version__ = "0.2.0"

moved.install()  # old flat import paths (`shiptoolkit.gate`, ...) keep working for one release, with a warning

TENSORFLOW_MISSING = (
    "TensorFlow is not installed, and shiptoolkit needs it to train, predict and evaluate. Install one build "
    "(not both): pip install 'shiptoolkit[cpu]' (CPU), or pip install 'shiptoolkit[gpu]' (NVIDIA GPU, CUDA from "
    "pip); from a source checkout: pip install -e '.[cpu]'. A TensorFlow you installed yourself works too.")


class TensorFlowMissingError(ShiptoolkitError, ModuleNotFoundError):
    """TensorFlow cannot be imported (e.g. `pip install shiptoolkit` without the `cpu` or `gpu` extra)."""


def tensorflow_installed() -> bool:
    """Whether `import tensorflow` can find a TensorFlow. Looks it up without importing it (fast)."""
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):  # a finder that refuses it, or sys.modules["tensorflow"] = None
        return False


def require_tensorflow() -> None:
    """Raise `TensorFlowMissingError`, which names the extra to install, when TensorFlow is missing."""
    if not tensorflow_installed():
        raise TensorFlowMissingError(TENSORFLOW_MISSING, name="tensorflow")

__all__ = [
    "Config",
    "evaluate",
    "evaluate_ensemble",
    "open_dataset",
    "predict",
    "predict_ensemble",
    "run",
    "resume_run",
    "cross_validate",
    "detect_scenes",
    "score_submission",
    "train",
    "load_model",
    "ArgumentError",
    "ConfigError",
    "DataError",
    "PluginError",
    "Range",
    "ShiptoolkitError",
    "TensorFlowMissingError",
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
    "require_tensorflow",
    "tensorflow_installed",
    "unregister_plugin",
]


def list_components(kind: str, pattern: str = "*") -> list[str]:
    """Names of registered components of `kind` ('sampler', 'backbone', 'loss', 'metric', 'classifier')."""
    return [c.name for c in get_registry(kind).list(pattern)]


def create_component(kind: str, name: str, /, *args: Any, **params: Any) -> Any:
    """Build a registered component by name, e.g. `create_component("loss", "dice")`.

    Its parameters are checked first (names, types, ranges; `input_shape` of a backbone or classifier),
    and what the factory returns is checked against its kind's contract: a mistake is a
    `ShiptoolkitError` naming the component and its plugin."""
    return build_component(kind, name, *args, **params)


# The stages import Keras/TensorFlow: load them on first use so `import shiptoolkit` stays light.
_LAZY = {
    "train": ("shiptoolkit.training.stage", "train"),
    "predict": ("shiptoolkit.inference.stage", "predict_stage"),
    "evaluate": ("shiptoolkit.scoring.evaluate", "evaluate"),
    "run": ("shiptoolkit.runner", "run"),
    "resume_run": ("shiptoolkit.runner", "resume_run"),
    "predict_ensemble": ("shiptoolkit.ensembles", "predict_ensemble"),
    "evaluate_ensemble": ("shiptoolkit.ensembles", "evaluate_ensemble"),
    "cross_validate": ("shiptoolkit.cv", "cross_validate"),
    "open_dataset": ("shiptoolkit.data.source", "open_dataset"),
    "score_submission": ("shiptoolkit.scoring.submission", "score_submission"),
    "load_model": ("shiptoolkit.models.saving", "load_model"),
    "detect_scenes": ("shiptoolkit.scenes.detect", "detect_scenes"),  # the `geo` extra: rasterio, shapely, pyogrio
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        try:
            loaded = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != "tensorflow":
                raise
            raise TensorFlowMissingError(TENSORFLOW_MISSING, name="tensorflow") from exc
        return getattr(loaded, attr)
    module = moved.moved_attribute(name)
    if module is not None:
        return module
    raise AttributeError(f"module 'shiptoolkit' has no attribute {name!r}")
