"""Load segmentation-models' Keras 2 `.h5` weights into `resnet34_unet`: our reader against Keras 3's own.

Measures, against the outputs of the real `sm.Unet('resnet34', classes=1)` that wrote the file:

    {loader}_max_abs_diff_{size}          max |sigmoid output - sm's| on a random 0..255 image, size x size
    {loader}_max_abs_diff_logits_{size}   the same before the sigmoid (final_conv), where nothing saturates
    {loader}_layers_matched               weighted layers whose every array equals the file's afterwards (of 93)
    {loader}_layers_mismatched            weighted layers left with other values than the file's
    {loader}_load_seconds                 median time to load the file
    {loader}_model_file_layers_matched    the same from a full-model file (`model.save('x.h5')`)

for loader = keras (`model.load_weights(path, by_name=True, skip_mismatch=False)`, Keras 3's reader of
Keras 2 `.h5` files by layer name), h5py (the reader shiptoolkit had before it used Keras's: the arrays read
with h5py by `read_legacy_h5`, set layer by layer with `set_weights`) and shiptoolkit (what
`shiptoolkit.models.legacy_h5.load_legacy_h5_weights` does now). `unloaded_max_abs_diff_logits_256`,
a model left at its initial weights, shows the scale of a wrong load. Lines starting with `#` show how
keras and shiptoolkit answer a missing file, a shape mismatch, a file whose layer names match nothing
and a Keras 2 file named `*.weights.h5`.

The reference runs in a second venv with segmentation-models 1.0.1 on tf.keras (Keras 2), made once:

    python3.11 -m venv /tmp/smvenv
    /tmp/smvenv/bin/pip install "tensorflow-cpu==2.21.*" "tf-keras==2.21.*" segmentation-models==1.0.1

This script runs it as `SM_FRAMEWORK=tf.keras TF_USE_LEGACY_KERAS=1 $SM_PYTHON <this file> --reference DIR`
(SM_PYTHON defaults to /tmp/smvenv/bin/python; without it the script says so and exits 0). Both models
take raw RGB in 0..255: sm's `get_preprocessing('resnet34')` is the identity and its first layer `bn_data`
normalises, as ours. Every weight is set to seeded random values, BatchNormalization moving statistics
included, so that a weight loaded into the wrong place or order changes the output.

Usage (in the shiptoolkit venv):
    python benchmarks/legacy_h5_compare.py            # 256x256 and 768x768
    python benchmarks/legacy_h5_compare.py --quick    # 256x256 only
    python benchmarks/legacy_h5_compare.py --keep DIR # keep the .h5 files and arrays in DIR
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SM_PYTHON = os.environ.get("SM_PYTHON", "/tmp/smvenv/bin/python")
SEED = 1234


def report(name: str, value: float, unit: str) -> None:
    """One `name: value unit` line (benchmarks/_common.py's format; not imported: the sm venv runs this too)."""
    print(f"{name}: {value:.4g} {unit}", flush=True)


# ---- the reference, run in the segmentation-models venv -------------------------------------------------


def random_value(weight_name: str, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """Seeded random values of the kind a trained model has, by the Keras 2 weight's name."""
    kind = weight_name.split("/")[-1].split(":")[0]
    if kind == "gamma":
        value = rng.uniform(0.5, 1.5, shape)
    elif kind == "beta":
        value = rng.normal(0.0, 0.1, shape)
    elif kind == "moving_mean":
        value = rng.normal(0.0, 0.5, shape)
    elif kind == "moving_variance":
        value = rng.uniform(0.5, 2.0, shape)
    elif kind == "kernel":
        fan_in = int(np.prod(shape[:-1]))
        value = rng.normal(0.0, np.sqrt(1.0 / fan_in), shape)
    elif kind == "bias":
        value = rng.normal(0.0, 0.1, shape)
    else:
        raise ValueError(f"unexpected weight {weight_name!r}")
    return value.astype("float32")


def make_reference(out: Path, sizes: list[int]) -> None:
    """sm.Unet('resnet34') with random weights: its weights and model `.h5` files, inputs and outputs."""
    import segmentation_models as sm
    import tensorflow as tf

    rng = np.random.default_rng(SEED)
    model = sm.Unet("resnet34", classes=1, encoder_weights=None, input_shape=(None, None, 3))
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([random_value(w.name, tuple(w.shape), rng) for w in layer.weights])
    model.save_weights(str(out / "sm_resnet34.h5"))  # the legacy weights layout (layer_names at the root)
    model.save(str(out / "sm_resnet34_model.h5"), include_optimizer=False)  # the full-model layout
    with_logits = tf.keras.Model(model.input, [model.output, model.get_layer("final_conv").output])
    for size in sizes:
        x = rng.integers(0, 256, (1, size, size, 3)).astype("float32")  # raw RGB: preprocess is the identity
        assert np.array_equal(sm.get_preprocessing("resnet34")(x), x)
        y, logits = (np.asarray(a) for a in with_logits(x, training=False))
        np.save(out / f"x{size}.npy", x)
        np.save(out / f"y{size}.npy", y)
        np.save(out / f"logits{size}.npy", logits)
    print(f"sm {sm.__version__}, tf {tf.__version__}, params {model.count_params()}", flush=True)


# ---- the comparison, run in the shiptoolkit venv --------------------------------------------------------


def file_arrays(path: Path) -> dict[str, list[np.ndarray]]:
    import h5py

    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        out = {}
        for layer in root.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            names = [n.decode() if isinstance(n, bytes) else n for n in root[layer].attrs["weight_names"]]
            out[layer] = [np.asarray(root[layer][n]) for n in names]
        return out


def layers_matched(model, saved: dict[str, list[np.ndarray]]) -> tuple[int, int]:
    """(weighted layers equal to the file's arrays, weighted layers that differ or are not in the file)."""
    matched = mismatched = 0
    for layer in model.layers:
        if not layer.weights:
            continue
        arrays = saved.get(layer.name, [])
        now = [np.asarray(w) for w in layer.weights]
        same = len(now) == len(arrays) and all(a.shape == b.shape and np.array_equal(a, b)
                                               for a, b in zip(now, arrays, strict=True))
        matched += same
        mismatched += not same
    return matched, mismatched


def keras_loader(model, path) -> None:
    model.load_weights(str(path), by_name=True, skip_mismatch=False)


def h5py_loader(model, path) -> None:
    from shiptoolkit.models.legacy_h5 import read_legacy_h5

    saved = read_legacy_h5(path)
    for layer in model.layers:
        if layer.weights and saved.get(layer.name):
            layer.set_weights(saved[layer.name])


def ours_loader(model, path) -> None:
    from shiptoolkit.models.legacy_h5 import load_legacy_h5_weights

    load_legacy_h5_weights(model, path)


def answer(fn) -> str:
    """What `fn()` raises or warns, in one line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fn()
        except Exception as exc:  # recorded, not handled
            return f"raises {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    if not caught:
        return "returns silently"
    return f"returns ({len(caught)} warnings, the first: {str(caught[0].message).splitlines()[0][:160]})"


def compare(ref: Path, sizes: list[int]) -> None:
    import keras

    from shiptoolkit.models.resnet_unet import resnet34_unet

    print(f"# keras {keras.__version__}", flush=True)
    weights, model_file = ref / "sm_resnet34.h5", ref / "sm_resnet34_model.h5"
    saved = file_arrays(weights)
    x = np.load(ref / "x256.npy")
    fresh = resnet34_unet((None, None, 3))
    logits = np.asarray(keras.Model(fresh.input, fresh.get_layer("final_conv").output)(x, training=False))
    report("unloaded_max_abs_diff_logits_256", float(np.abs(logits - np.load(ref / "logits256.npy")).max()), "logit")
    for name, load in (("keras", keras_loader), ("h5py", h5py_loader), ("shiptoolkit", ours_loader)):
        model = resnet34_unet((None, None, 3))
        times = []
        for _ in range(3):
            start = time.perf_counter()
            load(model, weights)
            times.append(time.perf_counter() - start)
        matched, mismatched = layers_matched(model, saved)
        report(f"{name}_layers_matched", matched, "layers")
        report(f"{name}_layers_mismatched", mismatched, "layers")
        report(f"{name}_load_seconds", statistics.median(times), "s")
        with_logits = keras.Model(model.input, [model.output, model.get_layer("final_conv").output])
        for size in sizes:
            y, logits = (np.asarray(a) for a in with_logits(np.load(ref / f"x{size}.npy"), training=False))
            sm_y, sm_logits = np.load(ref / f"y{size}.npy"), np.load(ref / f"logits{size}.npy")
            report(f"{name}_max_abs_diff_{size}", float(np.abs(y - sm_y).max()), "prob")
            report(f"{name}_max_abs_diff_logits_{size}", float(np.abs(logits - sm_logits).max()),
                   f"logit (sm's logits span {sm_logits.min():.3g}..{sm_logits.max():.3g})")
        fresh = resnet34_unet((None, None, 3))
        load(fresh, model_file)
        report(f"{name}_model_file_layers_matched", layers_matched(fresh, saved)[0], "layers")
    edge_cases(ref)


def edge_cases(ref: Path) -> None:
    """How keras and shiptoolkit answer files that do not fit, and how many layers each changed: `#` lines."""
    import h5py

    from shiptoolkit.models.resnet_unet import resnet34_unet

    other_names = ref / "other_names.h5"
    with h5py.File(other_names, "w") as f:
        f.attrs["layer_names"] = np.array(["not_a_layer"], dtype=h5py.string_dtype())
        group = f.create_group("not_a_layer")
        group.attrs["weight_names"] = np.array(["not_a_layer/kernel:0"], dtype=h5py.string_dtype())
        group.create_dataset("not_a_layer/kernel:0", data=np.zeros((3, 3), "float32"))
    renamed = ref / "sm_resnet34.weights.h5"
    shutil.copyfile(ref / "sm_resnet34.h5", renamed)
    weights = ref / "sm_resnet34.h5"
    narrow = {"decoder_filters": (256, 128, 64, 32, 8)}  # final_conv: the kernel differs, the bias fits
    cases = {"missing file": ({}, ref / "missing.h5", False),
             "2-class model, 1-class file": ({"classes": 2}, weights, False),
             "no layer name matches": ({}, other_names, False),
             "Keras 2 file named *.weights.h5": ({}, renamed, False),
             "last decoder stage 8 filters, skip_mismatch=True": (narrow, weights, True)}
    for name in ("keras", "shiptoolkit"):
        for case, (kwargs, path, skip) in cases.items():
            model = resnet34_unet((None, None, 3), **kwargs)
            before = {layer.name: layer.get_weights() for layer in model.layers if layer.weights}

            def load(m=model, p=path, s=skip, n=name):
                if n == "keras":
                    m.load_weights(str(p), by_name=True, skip_mismatch=s)
                else:
                    from shiptoolkit.models.legacy_h5 import load_legacy_h5_weights

                    return load_legacy_h5_weights(m, p, skip_mismatch=s)

            said = answer(load)
            changed = [n for n, old in before.items()
                       if any(not np.array_equal(a, b) for a, b in zip(old, model.get_layer(n).get_weights(),
                                                                       strict=True))]
            partly = [n for n in changed
                      if any(np.array_equal(a, b) for a, b in zip(before[n], model.get_layer(n).get_weights(),
                                                                  strict=True))]
            print(f"# {name}, {case}: {said}; {len(changed)} layers changed, {len(partly)} of them only in part"
                  + (f" ({', '.join(partly)})" if partly else ""), flush=True)


def main(argv: list[str]) -> int:
    sizes = [256] if "--quick" in argv else [256, 768]
    if "--reference" in argv:
        make_reference(Path(argv[argv.index("--reference") + 1]), sizes)
        return 0
    if not Path(SM_PYTHON).exists():
        print(f"# skipped: no segmentation-models venv at {SM_PYTHON} (set SM_PYTHON; see this file's docstring)")
        return 0
    sys.path.insert(0, str(ROOT))
    keep = Path(argv[argv.index("--keep") + 1]) if "--keep" in argv else None
    with tempfile.TemporaryDirectory() as tmp:
        ref = keep or Path(tmp)
        ref.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SM_FRAMEWORK": "tf.keras", "TF_USE_LEGACY_KERAS": "1", "CUDA_VISIBLE_DEVICES": ""}
        cmd = [SM_PYTHON, str(Path(__file__).resolve()), "--reference", str(ref), *argv]
        done = subprocess.run(cmd, env=env, text=True, capture_output=True)
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            return done.returncode
        print(f"# {done.stdout.strip()}", flush=True)
        compare(ref, sizes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
