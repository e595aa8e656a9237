"""Reading an export back: its formats, their runtimes and its manifest (`load_export`).

What `shiptoolkit predict --model EXPORT` uses, and what `shiptoolkit.inference.export` checks a
new export with before it appears: a SavedModel through `tf.saved_model.load`, ONNX through
`onnxruntime`, TFLite through the LiteRT interpreter (TensorFlow's deprecated one without it).
The layout of an export folder and its `shiptoolkit_export.json` are described in `export`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shiptoolkit.config import Config, overridden_keys, prepare_config
from shiptoolkit.errors import ConfigError, ShiptoolkitError
from shiptoolkit.inference.gate import Gate
from shiptoolkit.jsonfiles import check_json, read_json
from shiptoolkit.models.saving import ModelFileError

MANIFEST = "shiptoolkit_export.json"
MANIFEST_VERSION = 1
PAD_MULTIPLE = 32  # predict pads whole images to a multiple of 32 (reflect), and so must a server
CHECK_TOLERANCE = 1e-3  # max abs difference in probability between the export and the Keras model
INPUT_NAME = "image"
# The [predict] settings a server needs to turn probabilities into ships as `predict` does.
POSTPROCESS_KEYS = ("threshold", "min_area", "split", "split_depth", "gate_threshold", "tta", "overlap",
                    "whole_image", "window", "resize", "max_ships")


@dataclass(frozen=True)
class ExportFormat:
    """One export format: Keras' name for it, its file suffix ("" = a folder), and what it needs."""

    name: str
    keras_format: str
    suffix: str
    runtime: str
    needs: tuple[str, ...] = ()  # importable modules, besides TensorFlow
    extra: str = ""  # the shiptoolkit extra that installs them

    def file(self, stem: str) -> str:
        return stem + self.suffix


FORMATS: dict[str, ExportFormat] = {
    "saved_model": ExportFormat("saved_model", "tf_saved_model", "", "tensorflow: tf.saved_model.load(path)"
                                ".signatures['serving_default']"),
    "onnx": ExportFormat("onnx", "onnx", ".onnx", "onnxruntime: onnxruntime.InferenceSession(path)",
                         ("tf2onnx", "onnxruntime"), "onnx"),
    "tflite": ExportFormat("tflite", "litert", ".tflite", "LiteRT: ai_edge_litert.interpreter.Interpreter(path) "
                           "(or tf.lite.Interpreter)"),
}


def export_format(name: str) -> ExportFormat:
    if name not in FORMATS:
        raise ConfigError(f"Unknown export format {name!r}; choose one of {', '.join(FORMATS)}.")
    return FORMATS[name]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # sys.modules[module] = None, or a finder that refuses it
        return False


def require_format(name: str) -> ExportFormat:
    """The format, once the packages it needs are known to be installed (else a message naming them)."""
    fmt = export_format(name)
    missing = [m for m in fmt.needs if not _installed(m)]
    if missing:
        raise ShiptoolkitError(
            f"--format {name} needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
            f"installed. Install the extra: pip install 'shiptoolkit[{fmt.extra}]' (or pip install "
            f"{' '.join(missing)}). The saved_model format needs nothing beyond TensorFlow.")
    return fmt


# -- running an export ------------------------------------------------------------------------------
def _saved_model_runner(path: Path) -> tuple[Callable[[np.ndarray], np.ndarray], Any]:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    if "serving_default" not in loaded.signatures:
        raise ModelFileError(f"{str(path)!r} is a SavedModel without a serving_default signature: not an export "
                             "written by `shiptoolkit export`.")
    function = loaded.signatures["serving_default"]
    (name,) = function.structured_input_signature[1]  # the keyword the signature takes

    def run(x: np.ndarray) -> np.ndarray:
        return next(iter(function(**{name: tf.constant(x)}).values())).numpy()

    return run, loaded  # the loaded object owns the variables: it must outlive `run`


def _onnx_runner(path: Path) -> tuple[Callable[[np.ndarray], np.ndarray], Any]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available] or available
    session = ort.InferenceSession(str(path), providers=providers)
    name = session.get_inputs()[0].name
    return (lambda x: session.run(None, {name: x})[0]), session


def _tflite_interpreter(path: Path):
    """The LiteRT interpreter (ai-edge-litert, the `tflite` extra), else TensorFlow's own (deprecated)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated": it still runs the file
            warnings.simplefilter("ignore")
            return tf.lite.Interpreter(model_path=str(path))
    return Interpreter(model_path=str(path))


def _tflite_runner(path: Path) -> tuple[Callable[[np.ndarray], np.ndarray], Any]:
    interpreter = _tflite_interpreter(path)
    source = interpreter.get_input_details()[0]["index"]
    target = interpreter.get_output_details()[0]["index"]
    allocated: list[tuple] = [()]

    def run(x: np.ndarray) -> np.ndarray:
        if allocated[0] != x.shape:  # the file holds a free batch and size: fit the tensors to this batch
            interpreter.resize_tensor_input(source, list(x.shape), strict=False)
            interpreter.allocate_tensors()
            allocated[0] = x.shape
        interpreter.set_tensor(source, x)
        interpreter.invoke()
        return interpreter.get_tensor(target).copy()

    return run, interpreter


_RUNNERS = {"saved_model": _saved_model_runner, "onnx": _onnx_runner, "tflite": _tflite_runner}


class ExportedModel:
    """An exported model run by its own runtime, behind a Keras model's `predict_on_batch`,
    `input_shape` and `output_shape`: what `predict_probabilities`, `Gate` and the model checks use."""

    def __init__(self, path: str | Path, format: str, input_shape: tuple, output_shape: tuple) -> None:
        self.path, self.format = Path(path), format
        self.name = self.path.name
        self.input_shape, self.output_shape = tuple(input_shape), tuple(output_shape)
        self._run, self._owner = _RUNNERS[format](self.path)

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._run(np.ascontiguousarray(x, dtype=np.float32)))

    def __repr__(self) -> str:
        return f"ExportedModel({str(self.path)!r}, {self.format!r})"


@dataclass
class LoadedExport:
    """An export read back: its segmenter, its gate (None without one) and its manifest."""

    path: Path
    manifest: dict
    segmenter: ExportedModel
    classifier: ExportedModel | None = None

    @property
    def format(self) -> str:
        return self.manifest["format"]

    def gate(self, threshold: float | None = None, batch_size: int = 32) -> Gate | None:
        """The gate of the export (its threshold unless `threshold` is given); None for an export without one."""
        info = self.manifest.get("gate")
        if not info or self.classifier is None:
            return None
        return Gate(self.classifier, int(info["image_size"]), float(info["threshold"] if threshold is None
                                                                     else threshold), batch_size, info=info)

    def config_overrides(self) -> list[str]:
        """`section.key=value` overrides that make a config predict as the export says (user overrides go after)."""
        post = self.manifest["postprocess"]
        out = [f"predict.{key}={json.dumps(post[key])}" for key in POSTPROCESS_KEYS if key in post]
        out += [f"data.image_size={int(self.manifest['image_size'])}",
                f"train.seam_channel={json.dumps(self.manifest['segmenter']['output']['shape'][-1] == 2)}"]
        gate = self.manifest.get("gate")
        return out + ([f"classifier.threshold={float(gate['threshold'])}"] if gate else [])

    def predict_config(self, config: str | Path | dict | Config | None = None,
                       overrides: tuple[str, ...] | list[str] = ()) -> tuple[Config, Gate | None]:
        """(config, gate) to predict with this export: `config` (default: the defaults) with the export's
        image size, post-processing and gate threshold, then `overrides` (they win, e.g. a threshold).

        The gate is the export's: a config's [classifier] does not add one (its classifier.keras is not
        part of the export), and `classifier.name=''` in `overrides` drops the export's gate.
        """
        resolved = prepare_config(config or {}, [*self.config_overrides(), *overrides])
        c = resolved.settings.classifier
        dropped = not c.name and "classifier.name" in overridden_keys(resolved)
        gate = None if dropped else self.gate(threshold=c.threshold, batch_size=resolved.settings.predict.batch_size)
        if gate is None and c.name:  # predict_stage would look for a classifier.keras beside the model
            resolved = Config({**resolved.values, "classifier": {**resolved.values["classifier"], "name": ""}},
                              resolved.source, resolved.overrides)
        return resolved, gate


def find_export(path: str | Path) -> Path | None:
    """The export folder `path` names (the folder, its JSON, or its segmenter file), or None."""
    path = Path(path)
    if path.is_dir() and (path / MANIFEST).is_file():
        return path
    if path.name == MANIFEST and path.is_file():
        return path.parent
    if (path.parent / MANIFEST).is_file():
        manifest = _read_manifest(path.parent)
        if manifest.get("segmenter", {}).get("file") == path.name:
            return path.parent
    return None


# shiptoolkit_export.json as `shiptoolkit.inference.export` writes it: the keys reading it back uses.
MANIFEST_JSON = {
    "format": "text", "image_size": "size", "segmenter": "object", "segmenter.file": "text",
    "segmenter.input.shape": "shape", "segmenter.output.shape": "shape", "postprocess": "object",
    "postprocess.threshold?": "fraction", "postprocess.min_area?": "count", "postprocess.split?": "text",
    "postprocess.split_depth?": "nonnegative", "postprocess.gate_threshold?": "fraction", "postprocess.tta?": "bool",
    "postprocess.overlap?": "fraction", "postprocess.whole_image?": "bool", "postprocess.window?": "count",
    "postprocess.resize?": "count", "postprocess.max_ships?": "count", "gate?": "object|null",
}
GATE_MANIFEST_JSON = {"gate.file": "text", "gate.image_size": "size", "gate.threshold": "fraction",
                      "gate.input.shape": "shape", "gate.output.shape": "shape"}


def _read_manifest(folder: Path) -> dict:
    fix = f"It is written by `shiptoolkit export`: export the run again (--overwrite replaces {str(folder)!r})."
    manifest = read_json(folder / MANIFEST, MANIFEST_JSON, fix, ModelFileError)
    if manifest["format"] not in FORMATS:
        raise ModelFileError(f"{folder / MANIFEST} is damaged: its 'format' is {manifest['format']!r}, not one of "
                             f"{', '.join(FORMATS)}. {fix}")
    if not manifest["segmenter"]["output"]["shape"]:
        raise ModelFileError(f"{folder / MANIFEST} is damaged: its 'segmenter.output.shape' is empty. {fix}")
    if manifest.get("gate") is not None:
        check_json(folder / MANIFEST, manifest, GATE_MANIFEST_JSON, fix, ModelFileError)
    return manifest


def load_export(path: str | Path) -> LoadedExport:
    """Read an export written by `export_run` (its folder, JSON or segmenter file), with its own runtime.

    Raises:
        ModelFileError: not an export, or a file of it is missing.
        ShiptoolkitError: the runtime of its format is not installed (names the extra).
    """
    folder = find_export(path)
    if folder is None:
        raise ModelFileError(f"{str(path)!r} is not an export written by `shiptoolkit export` (no {MANIFEST}).")
    manifest = _read_manifest(folder)
    fmt = manifest["format"]
    if fmt == "onnx" and not _installed("onnxruntime"):
        raise ShiptoolkitError(f"{str(folder)!r} is an ONNX export, which needs onnxruntime: pip install "
                               "'shiptoolkit[onnx]' (or pip install onnxruntime).")

    def model(part: dict) -> ExportedModel:
        file = folder / part["file"]
        if not file.exists():
            raise ModelFileError(f"{str(file)!r} is missing: the export {str(folder)!r} is incomplete. Export again.")
        return ExportedModel(file, fmt, _shape(part["input"]["shape"]), _shape(part["output"]["shape"]))

    gate = manifest.get("gate")
    return LoadedExport(folder, manifest, model(manifest["segmenter"]), model(gate) if gate else None)

def _shape(values: list) -> tuple:
    return tuple(None if v is None else int(v) for v in values)
