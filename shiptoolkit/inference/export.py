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
`shiptoolkit.inference.exported.load_export` reads an export back (what `shiptoolkit predict --model EXPORT`
uses).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shiptoolkit.config import Config, prepare_config
from shiptoolkit.errors import ShiptoolkitError, require_tensorflow_backend
from shiptoolkit.inference.exported import (
    CHECK_TOLERANCE,
    INPUT_NAME,
    MANIFEST,
    MANIFEST_VERSION,
    PAD_MULTIPLE,
    POSTPROCESS_KEYS,
    ExportedModel,
    ExportFormat,
    load_export,
    require_format,
)
from shiptoolkit.inference.gate import Gate, load_gate
from shiptoolkit.inference.prediction import PredictSettings, whole_image_model
from shiptoolkit.models.checks import check_segmentation_model
from shiptoolkit.models.saving import load_model
from shiptoolkit.rundir import RunDir


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


def _free_batch(shape: tuple) -> tuple:
    """A model's input or output shape with a free batch size, as the export's signature takes it."""
    return (None, *tuple(shape)[1:])


def _segmenter_entry(fmt: ExportFormat, segmenter) -> dict:
    """The manifest's description of the segmenter file: its input and output, for a server to feed and read."""
    seg_shape = _free_batch(segmenter.input_shape)
    out_shape = _free_batch(segmenter.output_shape)
    return {
        "file": fmt.file("segmenter"),
        "input": {"name": INPUT_NAME, "shape": list(seg_shape), "dtype": "float32",
                  "values": "RGB 0..255, not normalised (the model rescales itself)",
                  "pad_to_multiple_of": PAD_MULTIPLE if seg_shape[1] is None else None},
        "output": {"shape": list(out_shape), "dtype": "float32",
                   "values": "ship probability per pixel" + ("; channel 1: seam probability"
                                                             if out_shape[-1] == 2 else "")},
    }


def _gate_entry(fmt: ExportFormat, gate: Gate | None, config: Config) -> dict | None:
    """The manifest's description of the gate classifier and its rule (None for a run without a gate)."""
    if gate is None:
        return None
    return {
        "file": fmt.file("classifier"), "name": config.settings.classifier.name,
        "image_size": gate.image_size, "threshold": gate.threshold,
        "resize": "each image resized to image_size x image_size (area interpolation, cv2.INTER_AREA)",
        "rule": "segment the image only if ship probability >= threshold; else it has no ships",
        "input": {"name": INPUT_NAME, "shape": list(_free_batch(gate.model.input_shape)), "dtype": "float32",
                  "values": "RGB 0..255"},
        "output": {"shape": [None, 1], "dtype": "float32", "values": "ship probability per image"},
    }


def _manifest(fmt: ExportFormat, run: RunDir, config: Config, model, segmenter, gate: Gate | None) -> dict[str, Any]:
    """shiptoolkit_export.json before the check: everything a server needs besides the graphs."""
    return {
        "shiptoolkit_export": MANIFEST_VERSION,
        "shiptoolkit_version": _version(),
        "format": fmt.name,
        "runtime": fmt.runtime,
        "source": {"run_dir": str(run.path.resolve()), "model": run.best.name},
        "image_size": config.settings.data.image_size,
        "segmenter": _segmenter_entry(fmt, segmenter),
        "postprocess": _postprocess(config, run, model),
        "gate": _gate_entry(fmt, gate, config),
    }


def _write_export(out: Path, manifest: dict[str, Any], fmt: ExportFormat, segmenter, gate: Gate | None,
                  check: bool, image_size: int) -> None:
    """Write the export into a staging folder beside `out`, and move it to `out` only once complete and
    checked: a failed or interrupted export leaves neither a partial folder nor a damaged earlier export.

    With `check`, the check's numbers are added to `manifest` (in place, as written).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    try:
        _export_keras(segmenter, staging / manifest["segmenter"]["file"], fmt, _free_batch(segmenter.input_shape))
        if gate is not None:
            _export_keras(gate.model, staging / manifest["gate"]["file"], fmt, _free_batch(gate.model.input_shape))
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if check:
            manifest["check"] = _check(staging, segmenter, gate, image_size)
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if out.exists():  # an earlier export (checked by _check_out): replaced only now, by a complete one
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


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
            or the export does not reproduce the model (then nothing is written); `BackendError` when
            Keras runs on another backend than TensorFlow (the exports are built by TensorFlow).
    """
    fmt = require_format(format)
    require_tensorflow_backend(f"shiptoolkit export --format {fmt.name}", "The run's .keras files load on any backend: "
                               "export them from a Python with TensorFlow")
    run, out = RunDir(run_dir), Path(out).expanduser()
    _check_out(out, overwrite)
    if not run.best.is_file():
        raise ShiptoolkitError(f"{str(run.path)!r} has no {run.best.name}: not a trained run directory.")
    if config is None:
        config = prepare_config(run.config, load_plugins=False)
    model = load_model(run.best)
    check_segmentation_model(model, config.settings.train.seam_channel, str(run.best))
    segmenter = whole_image_model(model)
    gate = load_gate(config, run.path)
    manifest = _manifest(fmt, run, config, model, segmenter, gate)
    _write_export(out, manifest, fmt, segmenter, gate, check, config.settings.data.image_size)
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
