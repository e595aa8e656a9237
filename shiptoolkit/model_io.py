"""Save and load `.keras` models; loading is always in Keras' safe mode (no arbitrary code)."""

from __future__ import annotations

from pathlib import Path

from shiptoolkit.errors import ShiptoolkitError


class ModelFileError(ShiptoolkitError, ValueError):
    """A model file is missing, of the wrong kind, or unsafe to load."""


def _register_custom_objects() -> None:
    # Importing these modules registers shiptoolkit's losses and metrics as Keras serializables,
    # so a compiled model reloads without user code.
    import shiptoolkit.keras_metrics  # noqa: F401
    import shiptoolkit.losses  # noqa: F401


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
    """
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"Model file {str(path)!r} not found.")
    if path.suffix == ".h5":
        raise ModelFileError(f"{str(path)!r} is a Keras 2 .h5 file: build the architecture and load its weights "
                             "with shiptoolkit.backbones.legacy_h5.load_legacy_h5_weights(model, path).")
    if path.suffix != ".keras":
        raise ModelFileError(f"Expected a .keras model file. Received: {str(path)!r}")
    _register_custom_objects()
    try:
        return keras.models.load_model(path, safe_mode=True, compile=compile)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "unsafe" in str(exc).lower():
            raise ModelFileError(f"{str(path)!r} contains code (e.g. a Lambda layer) that only loads with "
                                 "safe_mode=False; shiptoolkit never does that for files from elsewhere. "
                                 f"{exc}") from None
        raise
