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


class ArgumentError(ShiptoolkitError, TypeError):
    """A function of the Python API got an argument it does not take (None, a number for a config, ...).
    The message names the argument, what was given and what it accepts."""


class DataError(ShiptoolkitError, ValueError):
    """The dataset is malformed: bad RLE, unsafe image ids, missing or corrupt images."""


class BackendError(ShiptoolkitError, RuntimeError):
    """A feature built on TensorFlow alone (`tf.distribute` strategies, the exports) was asked for while
    Keras runs on another backend (`KERAS_BACKEND=jax`, ...). The message names the feature, the backend
    and the fix."""


def require_tensorflow_backend(feature: str, fix: str) -> None:
    """Raise `BackendError` unless Keras runs on TensorFlow: `feature` (e.g. 'train.strategy = "mirrored"')
    is built on TensorFlow alone; `fix` is what to do instead on the backend in use."""
    import keras  # inside: every module imports errors, few need Keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise BackendError(f"{feature} is built on TensorFlow, but Keras runs on the {backend!r} backend "
                           f"(KERAS_BACKEND={backend}). {fix}, or run with KERAS_BACKEND=tensorflow (TensorFlow "
                           "installed: pip install 'shiptoolkit[cpu]' or 'shiptoolkit[gpu]').")
