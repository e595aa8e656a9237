"""Load weights by layer name from Keras 2 `.h5` files (segmentation-models, classification_models).

The values are set by Keras's own reader of the Keras 2 layouts, `model.load_weights(path, by_name=True)`:
a weights file (`model.save_weights('x.h5')`: one group per layer at the top, with the `layer_names`
and `weight_names` attributes) or a full-model file (`model.save('x.h5')`: the same under
`model_weights/`). benchmarks/legacy_h5_compare.py measured it against the h5py reader this module
had before (Keras 3.15.1; the file written by segmentation-models 1.0.1's `Unet('resnet34')` on tf-keras
2.21 with random weights and BatchNormalization statistics): both load all 93 weighted layers of
`resnet34_unet` bit for bit, from either layout, and the U-Net then gives sm's output to within
1.4e-5 (its logits to within 6.8e-5) on 256x256 and 768x768 images, the same figures for both readers.

Kept here, around Keras's reader, is what it does not do (measured there too):
- a report of the loaded / missing / unused / skipped layers: Keras returns None, and the ImageNet
  check in `encoders.py` needs "loaded";
- errors before anything is loaded, naming the file and what to do: Keras raises FileNotFoundError for
  a missing file, a ValueError after it has loaded the layers before a mismatch, and returns silently
  when no layer name matches;
- skip_mismatch skips whole layers: Keras skips only the arrays of a layer whose shapes differ;
- Keras chooses its reader by file name and reads Keras 2 files only from names ending in `.h5` or
  `.hdf5` (not `.weights.h5`): another name is refused here with a WeightsError saying so.
Only names and shapes are read here, with h5py; no pickle, no code from the file is run.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from shiptoolkit.errors import ShiptoolkitError


class WeightsError(ShiptoolkitError, ValueError):
    """A weights file is missing, unreadable or does not fit the model."""


def _names(attr) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in attr]


@contextmanager
def _keras2_root(path: Path) -> Iterator:
    """The group of a Keras 2 `.h5` file that holds `layer_names`, or a WeightsError."""
    import h5py

    if not path.is_file():
        raise WeightsError(f"Weights file {str(path)!r} not found (nothing is downloaded for a path: give a local "
                           '.h5 file, or encoder_weights = "imagenet" for the ImageNet encoder weights).')
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in root.attrs:
                raise WeightsError(f"{str(path)!r} is not a Keras 2 .h5 weights/model file (no 'layer_names'). "
                                   "Keras 3 files load with model.load_weights().")
            yield root
    except OSError as exc:
        raise WeightsError(f"Could not read {str(path)!r} as HDF5: {exc}") from None


def _read(path: Path, get: Callable) -> dict[str, list]:
    with _keras2_root(path) as root:
        return {layer: [get(root[layer][w]) for w in _names(root[layer].attrs.get("weight_names", []))]
                for layer in _names(root.attrs["layer_names"])}


def read_legacy_h5(path: str | Path) -> dict[str, list[np.ndarray]]:
    """{layer name: its weight arrays in saved order} from a Keras 2 weights or model `.h5` file."""
    return _read(Path(path), np.asarray)


def load_legacy_h5_weights(model, path: str | Path, skip_mismatch: bool = False) -> dict[str, list[str]]:
    """Set `model`'s weights from a legacy `.h5` file, matching layers by name.

    Args:
        model: a built Keras model.
        path: the `.h5` (or `.hdf5`) file.
        skip_mismatch: skip layers whose weight shapes differ instead of raising.

    Returns:
        {"loaded": [...], "missing": [model layers with weights not in the file],
         "unused": [file layers not in the model], "skipped": [shape mismatches]}
    """
    path = Path(path)
    saved = _read(path, lambda data: tuple(data.shape))  # names and shapes: Keras reads the values
    report: dict[str, list[str]] = {"loaded": [], "missing": [], "unused": [], "skipped": []}
    model_layers = {layer.name: layer for layer in model.layers if layer.weights}
    for name, layer in model_layers.items():
        got = saved.get(name)
        if not got:
            report["missing"].append(name)
            continue
        # Keras 2's order, the one Keras reads the file in: trainable weights first
        expected = [tuple(w.shape) for w in layer.trainable_weights + layer.non_trainable_weights]
        if expected != got:
            if skip_mismatch:
                report["skipped"].append(name)
                continue
            raise WeightsError(f"Layer {name!r}: the model expects weight shapes {expected}, {str(path)!r} has "
                               f"{got}. Is it the same architecture and number of classes? "
                               "(skip_mismatch=True loads the rest.)")
        report["loaded"].append(name)
    report["unused"] = [n for n, shapes in saved.items() if shapes and n not in model_layers]
    if not report["loaded"] and not report["skipped"]:
        raise WeightsError(f"No layer of {str(path)!r} matches a layer of the model by name.")
    if not path.name.endswith((".h5", ".hdf5")) or path.name.endswith(".weights.h5"):
        raise WeightsError(f"{str(path)!r} is a Keras 2 weights file, but Keras reads those by layer name only "
                           "from files named *.h5 or *.hdf5 (not *.weights.h5): rename or link it so.")
    kept = {name: model_layers[name].get_weights() for name in report["skipped"]}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping loading")  # report["skipped"] and ["missing"] say it
        # skip_mismatch: everything that fits was checked above; Keras then skips the "skipped" layers'
        # arrays that do not fit, and a "missing" layer the file lists without weights
        model.load_weights(str(path), by_name=True, skip_mismatch=True)
    for name, values in kept.items():  # and loads those that fit: a skipped layer is left as it was
        model_layers[name].set_weights(values)
    return report
