"""Is this model a ship segmenter? Checked before any image is predicted.

A wrong `.keras` file (a classifier, a multi-class model, a model for 4-band images) otherwise
either fails deep inside Keras with a traceback, or - worse - writes a plausible submission of
garbage: every pixel of a 3-channel output is read as ship probabilities, one number per image
is broadcast into a mask. Both cost a Kaggle submission; a shape check costs nothing.
"""

from __future__ import annotations

from typing import Any

from shiptoolkit.models.saving import ModelFileError

EXPECTED = "a segmentation model: input (None, H, W, 3) RGB images, output (None, H, W, 1) sigmoid ship mask"
FIX = ("Pass a segmentation model trained by shiptoolkit (a run's best.keras, e.g. --run RUN_DIR); "
       "a run's classifier.keras is its gate, which predict finds beside best.keras itself.")


def _shape(model: Any, attribute: str) -> Any:
    """The model's input_shape / output_shape, or None where it has none (a stand-in object, an unbuilt model)."""
    try:
        shape = getattr(model, attribute, None)
    except (AttributeError, ValueError, RuntimeError):  # Keras raises these for unbuilt or odd models
        return None
    if isinstance(shape, list) and len(shape) == 1:
        shape = shape[0]
    return shape if isinstance(shape, (tuple, list)) else None


def check_segmentation_model(model: Any, seam_channel: bool = False, name: str | None = None) -> None:
    """Raise `ModelFileError` unless `model` maps (N, H, W, 3) images to (N, H, W, 1) ship probabilities.

    Args:
        model: a Keras model (objects without `input_shape` / `output_shape` are not checked).
        seam_channel: the config's train.seam_channel: a second output channel (seams) is allowed.
        name: the model file, for the message.
    """
    what = f"Model {name!r}" if name else "The model"
    inputs, outputs = _shape(model, "input_shape"), _shape(model, "output_shape")
    if inputs is not None and (not inputs or isinstance(inputs[0], (tuple, list))):
        raise ModelFileError(f"{what} has {len(inputs)} inputs {list(inputs)}; expected {EXPECTED}. {FIX}")
    if inputs is not None and (len(inputs) != 4 or inputs[-1] != 3):
        channels = f" with {inputs[-1]} channels" if len(inputs) == 4 else ""
        raise ModelFileError(f"{what} takes input of shape {tuple(inputs)}{channels}, but predict feeds RGB images "
                             f"(None, H, W, 3); expected {EXPECTED}. {FIX}")
    if outputs is None:
        return
    if outputs and isinstance(outputs[0], (tuple, list)):
        raise ModelFileError(f"{what} has {len(outputs)} outputs {list(outputs)}; expected {EXPECTED}. {FIX}")
    outputs = tuple(outputs)
    if len(outputs) != 4:
        kind = " (one number per image: an image classifier?)" if len(outputs) == 2 else ""
        raise ModelFileError(f"{what} outputs shape {outputs}{kind}, not a mask; expected {EXPECTED}. {FIX}")
    if inputs is not None and any(i is not None and o is not None and i != o
                                  for i, o in zip(inputs[1:3], outputs[1:3], strict=True)):
        raise ModelFileError(f"{what} maps {tuple(inputs)} inputs to {outputs} outputs: the mask must have the "
                             f"image's height and width; expected {EXPECTED}. {FIX}")
    channels = outputs[-1]
    if channels == 1 or (channels == 2 and seam_channel):
        return
    if channels == 2:
        raise ModelFileError(f"{what} outputs 2 channels {outputs} (ship and seam?) but train.seam_channel is false. "
                             "If it was trained with the seam channel, use its run's config (--run RUN_DIR) or "
                             "--set train.seam_channel=true; otherwise expected " + EXPECTED + ".")
    extra = " (ship and seam, with train.seam_channel = true)" if seam_channel else ""
    raise ModelFileError(f"{what} outputs {channels} channels {outputs}; expected 1{extra}: {EXPECTED}. "
                         f"A multi-class model cannot be read as ship probabilities. {FIX}")
