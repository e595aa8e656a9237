"""Export a run's models for serving without shiptoolkit: a TensorFlow SavedModel, ONNX or TFLite.

`export_run(RUN_DIR, "onnx", OUT)` writes into the folder OUT:

    segmenter (a SavedModel folder), segmenter.onnx or segmenter.tflite
        best.keras as a whole-image model (`prediction.whole_image_model`): input (N, H, W, 3)
        float32 RGB in 0..255 (not normalised: the model rescales itself), any H and W that are
        multiples of 32; output (N, H, W, 1) ship probabilities (a second channel: seams).
    classifier (same format), only for a run with a gate ([classifier] in its config)
        input (N, S, S, 3) float32 RGB 0..255, the image resized to S = classifier.image_size;
        output (N, 1) ship probability.
    shiptoolkit_export.json
        what a serving program needs besides the graphs: the format, the image size, the
        post-processing in force (postprocess.json of the run, else the config's [predict]) and
        the gate (file, image size, threshold); and the check below.

Before OUT appears, the export is reloaded with its own runtime (`tf.saved_model.load`,
`onnxruntime`, the LiteRT interpreter) and must reproduce the Keras probabilities on a seeded
random image (max abs diff within `CHECK_TOLERANCE`); the numbers are in the JSON.
`load_export` reads an export back (what `shiptoolkit predict --model EXPORT` uses).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shiptoolkit.config import Config, overridden_keys, prepare_config
from shiptoolkit.errors import ConfigError, ShiptoolkitError
from shiptoolkit.gate import Gate, load_gate
from shiptoolkit.model_checks import check_segmentation_model
from shiptoolkit.model_io import ModelFileError, load_model
from shiptoolkit.prediction import PredictSettings, whole_image_model
from shiptoolkit.rundir import RunDir

MANIFEST = "shiptoolkit_export.json"
MANIFEST_VERSION = 1
PAD_MULTIPLE = 32  # predict pads whole images to a multiple of 32 (reflect), and so must a server
CHECK_TOLERANCE = 1e-3  # max abs difference in probability between the export and the Keras model
INPUT_NAME = "image"
# The [predict] settings a server needs to turn probabilities into ships as `predict` does.
POSTPROCESS_KEYS = ("threshold", "min_area", "split", "split_depth", "gate_threshold", "tta", "overlap",
                    "whole_image", "window", "resize")


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


def _read_manifest(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{str(folder / MANIFEST)!r} is unreadable ({exc}): not written by "
                             "`shiptoolkit export`.") from None
    if not isinstance(manifest, dict) or manifest.get("format") not in FORMATS or "segmenter" not in manifest:
        raise ModelFileError(f"{str(folder / MANIFEST)!r} is not a shiptoolkit export manifest "
                             f"(format one of {', '.join(FORMATS)}, a segmenter).")
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


# -- writing an export ------------------------------------------------------------------------------
@dataclass
class ExportResult:
    """What `export_run` wrote: the folder, its manifest (as written) and the files in it."""

    path: Path
    manifest: dict
    files: list[Path] = field(default_factory=list)


def _export_keras(model, path: Path, fmt: ExportFormat, shape: tuple) -> None:
    import tensorflow as tf

    signature = [tf.TensorSpec(shape, tf.float32, name=INPUT_NAME)]
    with warnings.catch_warnings():  # converter chatter (tf2onnx's numpy FutureWarnings, deprecations)
        warnings.simplefilter("ignore")
        model.export(str(path), format=fmt.keras_format, input_signature=signature, verbose=False)


def _check_image(shape: tuple, image_size: int) -> np.ndarray:
    """A seeded random RGB image, float32 0..255, of the model's input size (free sides: the image size,
    padded to a multiple of 32 as predict pads)."""
    side = -(-image_size // PAD_MULTIPLE) * PAD_MULTIPLE
    height, width = (d if d is not None else side for d in shape[1:3])
    return np.random.default_rng(0).integers(0, 256, (1, height, width, shape[3])).astype(np.float32)


def _max_abs_diff(keras_model, exported: ExportedModel, image: np.ndarray) -> float:
    expected = np.asarray(keras_model.predict_on_batch(image), np.float32)
    got = exported.predict_on_batch(image)
    if got.shape != expected.shape:
        raise ShiptoolkitError(f"The exported {exported.name} outputs shape {got.shape}, the Keras model "
                               f"{expected.shape}: the export is wrong. Nothing was written.")
    return float(np.abs(got - expected).max())


def _postprocess(config: Config, run: RunDir, model) -> dict:
    tuned = run.read_tuned()
    settings = asdict(PredictSettings.from_config(config, tuned))  # as `predict` uses them
    out: dict[str, Any] = {key: settings[key] for key in POSTPROCESS_KEYS}
    if not out["window"]:  # the export's input size is free: windows (whole_image false) need their side
        out["window"] = tuple(model.input_shape)[1] or 0
    out["source"] = (f"threshold, min_area and whole images vs windows tuned on validation ({run.postprocess.name}) "
                     "unless --set named them; the rest from the config's [predict]") if tuned \
        else "the config's [predict]"
    return out


def _check_out(out: Path, overwrite: bool) -> None:
    if not out.exists():
        return
    if not overwrite:
        raise ShiptoolkitError(f"{str(out)!r} exists already: choose another --out, or pass --overwrite to replace "
                               "an earlier export.")
    if not (out.is_dir() and (out / MANIFEST).is_file()):
        raise ShiptoolkitError(f"{str(out)!r} exists and is not an export by `shiptoolkit export` (no {MANIFEST} "
                               "in it): --overwrite replaces only an earlier export. Choose another --out.")


def export_run(run_dir: str | Path, format: str, out: str | Path, config: Config | None = None,
               overwrite: bool = False, check: bool = True) -> ExportResult:
    """Export a run's segmenter (whole-image input) and gate classifier, with `shiptoolkit_export.json`.

    Args:
        run_dir: a run directory (its best.keras, config.toml, postprocess.json, classifier.keras).
        format: "saved_model", "onnx" or "tflite".
        out: the folder to write; it must not exist, unless `overwrite` and it is an earlier export
            (replaced only once the new export is complete and checked).
        config: the run's resolved config (default: its config.toml, without importing its [plugins]).
        check: reload the export with its runtime and compare it with the Keras model (a random image
            of data.image_size for the segmenter, classifier.image_size for the classifier).

    Raises:
        ShiptoolkitError: --out exists, the format's packages are missing, the run has no best.keras,
            or the export does not reproduce the model (then nothing is written).
    """
    fmt = require_format(format)
    run, out = RunDir(run_dir), Path(out).expanduser()
    _check_out(out, overwrite)
    if not run.best.is_file():
        raise ShiptoolkitError(f"{str(run.path)!r} has no {run.best.name}: not a trained run directory.")
    if config is None:
        config = prepare_config(run.config, load_plugins=False)
    model = load_model(run.best)
    check_segmentation_model(model, config.settings.train.seam_channel, str(run.best))
    segmenter = whole_image_model(model)
    seg_shape = (None, *tuple(segmenter.input_shape)[1:])
    out_shape = (None, *tuple(segmenter.output_shape)[1:])
    gate = load_gate(config, run.path)
    image_size = config.settings.data.image_size
    manifest: dict[str, Any] = {
        "shiptoolkit_export": MANIFEST_VERSION,
        "shiptoolkit_version": _version(),
        "format": fmt.name,
        "runtime": fmt.runtime,
        "source": {"run_dir": str(run.path.resolve()), "model": run.best.name},
        "image_size": image_size,
        "segmenter": {
            "file": fmt.file("segmenter"),
            "input": {"name": INPUT_NAME, "shape": list(seg_shape), "dtype": "float32",
                      "values": "RGB 0..255, not normalised (the model rescales itself)",
                      "pad_to_multiple_of": PAD_MULTIPLE if seg_shape[1] is None else None},
            "output": {"shape": list(out_shape), "dtype": "float32",
                       "values": "ship probability per pixel" + ("; channel 1: seam probability"
                                                                 if out_shape[-1] == 2 else "")},
        },
        "postprocess": _postprocess(config, run, model),
        "gate": None,
    }
    if gate is not None:
        cls_shape = (None, *tuple(gate.model.input_shape)[1:])
        manifest["gate"] = {
            "file": fmt.file("classifier"), "name": config.settings.classifier.name,
            "image_size": gate.image_size, "threshold": gate.threshold,
            "resize": "each image resized to image_size x image_size (area interpolation, cv2.INTER_AREA)",
            "rule": "segment the image only if ship probability >= threshold; else it has no ships",
            "input": {"name": INPUT_NAME, "shape": list(cls_shape), "dtype": "float32", "values": "RGB 0..255"},
            "output": {"shape": [None, 1], "dtype": "float32", "values": "ship probability per image"},
        }
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    try:
        _export_keras(segmenter, staging / manifest["segmenter"]["file"], fmt, seg_shape)
        if gate is not None:
            _export_keras(gate.model, staging / manifest["gate"]["file"], fmt, cls_shape)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if check:
            manifest["check"] = _check(staging, segmenter, gate, image_size)
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if out.exists():  # an earlier export (checked above): replaced only now, by a complete one
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(out, manifest, sorted(out.iterdir()))


def _check(folder: Path, segmenter, gate: Gate | None, image_size: int) -> dict:
    loaded = load_export(folder)
    image = _check_image(loaded.segmenter.input_shape, image_size)
    result = {"image": f"seeded random {image.shape[2]}x{image.shape[1]}", "tolerance": CHECK_TOLERANCE,
              "segmenter_max_abs_diff": _max_abs_diff(segmenter, loaded.segmenter, image)}
    if gate is not None:
        small = _check_image(loaded.classifier.input_shape, gate.image_size)
        result["classifier_max_abs_diff"] = _max_abs_diff(gate.model, loaded.classifier, small)
    worst = max(v for k, v in result.items() if k.endswith("_max_abs_diff"))
    if not worst <= CHECK_TOLERANCE:  # also catches nan
        raise ShiptoolkitError(f"The {loaded.format} export does not reproduce the Keras model: max abs difference "
                               f"{worst:.3g} in probability (tolerance {CHECK_TOLERANCE}; {result}). Nothing was "
                               "written. Try another --format.")
    return result


def _version() -> str | None:
    try:
        return importlib.metadata.version("shiptoolkit")
    except importlib.metadata.PackageNotFoundError:
        return None
