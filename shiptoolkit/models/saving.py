"""Save and load `.keras` models; loading is always in Keras' safe mode (no arbitrary code)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from shiptoolkit.errors import ShiptoolkitError


class ModelFileError(ShiptoolkitError, ValueError):
    """A model file is missing, of the wrong kind, or unsafe to load."""


def _register_custom_objects() -> None:
    # Importing these modules registers shiptoolkit's losses and metrics as Keras serializables,
    # so a compiled model reloads without user code.
    import shiptoolkit.models.decoders  # noqa: F401 - the architectures' layers
    import shiptoolkit.models.keras_metrics  # noqa: F401
    import shiptoolkit.models.losses  # noqa: F401


def save_model(model, path: str | Path) -> Path:
    """Save `model` as a `.keras` file (architecture, weights, optimizer state)."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelFileError(f"Model files are saved as .keras. Received: {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def load_model(path: str | Path, compile: bool = False):
    """Load a `.keras` model in safe mode (Lambda layers and other pickled code are refused).

    Args:
        path: a `.keras` file written by `save_model` or `model.save`.
        compile: restore the loss, metrics and optimizer state too (to continue training).

    Raises:
        ModelFileError: for anything wrong with the file (missing, not a zip, unsafe, not loadable),
            naming the file: a model from elsewhere must never fail with a Keras traceback.
    """
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"Model file {str(path)!r} not found.")
    if path.suffix == ".h5":
        raise ModelFileError(f"{str(path)!r} is a Keras 2 .h5 file: build the architecture and load its weights "
                             "with shiptoolkit.models.legacy_h5.load_legacy_h5_weights(model, path).")
    if path.suffix != ".keras":
        raise ModelFileError(f"Expected a .keras model file. Received: {str(path)!r}")
    if not zipfile.is_zipfile(path):  # Keras would say "File not found", which sends the user the wrong way
        raise ModelFileError(f"{str(path)!r} is not a .keras model: a .keras file is a zip archive (config.json "
                             "and weights), this one is not. Was it saved with model.save('model.keras') or "
                             "shiptoolkit.models.saving.save_model? Point --model at such a file.")
    _register_custom_objects()
    try:
        return keras.models.load_model(path, safe_mode=True, compile=compile)
    except Exception as exc:  # noqa: BLE001 - whatever a file from elsewhere makes Keras raise is about the file
        if "safe_mode" in str(exc) or "unsafe" in str(exc).lower():
            raise ModelFileError(f"{str(path)!r} contains code (e.g. a Lambda layer) that only loads with "
                                 "safe_mode=False; shiptoolkit never does that for files from elsewhere. "
                                 f"({_reason(exc)})") from None
        raise ModelFileError(
            f"{str(path)!r} could not be loaded safely as a Keras model ({type(exc).__name__}: "
            f"{_reason(exc)}). It is damaged, was saved by an incompatible Keras version, needs layers from "
            "a plugin that is not loaded (--plugin), or names Python functions that safe mode refuses. Use a "
            ".keras file written by shiptoolkit (best.keras of a run) or re-save the model with model.save()."
        ) from None


def _reason(exc: BaseException) -> str:
    """The innermost cause in a Keras load error: nested deserialization errors repeat whole configs
    and end with the real reason (e.g. "Could not locate function 'system'")."""
    text = str(exc).rpartition("Exception encountered:")[2].strip()
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:300] + "..."
