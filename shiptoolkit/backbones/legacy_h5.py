"""Load weights by layer name from Keras 2 `.h5` files (segmentation-models, classification_models).

Keras 3 reads only its own `.weights.h5` layout, so the two legacy layouts are read here with
h5py: a weights file (`model.save_weights('x.h5')`: one group per layer at the top, with the
`layer_names` and `weight_names` attributes) and a full-model file (`model.save('x.h5')`: the
same under `model_weights/`). No pickle, no code from the file is run: only arrays are read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shiptoolkit.errors import ShiptoolkitError


class WeightsError(ShiptoolkitError, ValueError):
    """A weights file is missing, unreadable or does not fit the model."""


def _names(attr) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in attr]


def read_legacy_h5(path: str | Path) -> dict[str, list[np.ndarray]]:
    """{layer name: its weight arrays in saved order} from a Keras 2 weights or model `.h5` file."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Weights file {str(path)!r} not found (nothing is downloaded for a path: give a local "
                           '.h5 file, or encoder_weights = "imagenet" for the ImageNet encoder weights).')
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in root.attrs:
                raise WeightsError(f"{str(path)!r} is not a Keras 2 .h5 weights/model file (no 'layer_names'). "
                                   "Keras 3 files load with model.load_weights().")
            out = {}
            for layer in _names(root.attrs["layer_names"]):
                group = root[layer]
                out[layer] = [np.asarray(group[w]) for w in _names(group.attrs.get("weight_names", []))]
            return out
    except OSError as exc:
        raise WeightsError(f"Could not read {str(path)!r} as HDF5: {exc}") from None


def load_legacy_h5_weights(model, path: str | Path, skip_mismatch: bool = False) -> dict[str, list[str]]:
    """Set `model`'s weights from a legacy `.h5` file, matching layers by name.

    Args:
        model: a built Keras model.
        path: the `.h5` file.
        skip_mismatch: skip layers whose weight shapes differ instead of raising.

    Returns:
        {"loaded": [...], "missing": [model layers with weights not in the file],
         "unused": [file layers not in the model], "skipped": [shape mismatches]}
    """
    saved = read_legacy_h5(path)
    report: dict[str, list[str]] = {"loaded": [], "missing": [], "unused": [], "skipped": []}
    model_layers = {layer.name: layer for layer in model.layers if layer.weights}
    for name, layer in model_layers.items():
        arrays = saved.get(name)
        if not arrays:
            report["missing"].append(name)
            continue
        expected = [tuple(w.shape) for w in layer.weights]
        got = [a.shape for a in arrays]
        if expected != got:
            if skip_mismatch:
                report["skipped"].append(name)
                continue
            raise WeightsError(f"Layer {name!r}: the model expects weight shapes {expected}, {str(path)!r} has "
                               f"{got}. Is it the same architecture and number of classes? "
                               "(skip_mismatch=True loads the rest.)")
        layer.set_weights(arrays)
        report["loaded"].append(name)
    report["unused"] = [n for n, arrays in saved.items() if arrays and n not in model_layers]
    if not report["loaded"] and not report["skipped"]:
        raise WeightsError(f"No layer of {str(path)!r} matches a layer of the model by name.")
    return report
