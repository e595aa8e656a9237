"""The GPU path, measured in one run: training step, input pipeline, prediction; each figure beside its baseline.

1. Train step images/s of resnet34_unet on 256 px patches, batch 32, in float32, mixed_float16, mixed_float16
   with jit_compile (XLA), then, as the time budget allows, mixed_bfloat16 with XLA and float32 with XLA:
   shiptoolkit's training input (mixed sampler over 768 px JPGs, augmentation, LOADER_THREADS loading
   threads, the training metrics) against a bare Keras `fit` of the same graph on one in-memory batch.
2. The input pipeline alone (the threaded `PyDataset` path `fit` reads, `SamplerBatches`) in pairs/s with
   4, 8 and 16 loading threads, each against the fastest bare step's consumption: a ratio under 1 starves
   the accelerator.
3. `predict` end to end (`predict_stage`: JPEG decode, a resnet34 gate on every image, whole-image forward,
   post-processing, RLE, the submission file) on 768 px images, against the bare batched forward of the same
   whole-image model on decoded images; the 15,606 Kaggle test images projected from both.
4. The same predict with predict.strategy = "mirrored" when more than one device is visible (else a line
   saying why it was skipped).

Models have random weights (speed does not depend on them); the gate's threshold is 0, so every image is
also segmented (the slowest case: on the real test set the gate rejects most images). Data: a synthetic
dataset generated into a temporary folder. Lines go to stdout and, with --out, to a file that starts with
the device's name (written as they come, so a run stopped at a time limit keeps what it measured).

It measures whichever Keras backend runs it (KERAS_BACKEND: "tensorflow", the default, or "jax"), and says
which, with its devices, in its first lines. On a GPU machine of your own, from the repository root (one
command: the install, then the run, under 8 minutes on one H100 by design; the optional settings are skipped
past --budget seconds, default 330):

    python3 -m pip install -q -e ".[gpu]" && python3 benchmarks/gpu.py --out "$OUT/gpu.txt"

On a machine with CUDA JAX but no TensorFlow and no package index (this workplace's lent GPU machine), on
JAX, with the missing pure-Python packages carried as wheels (`bash benchmarks/gpu_wheels.sh` downloads them
into .whl/ and prints the command). There, on JAX: every step is XLA-compiled (jax.jit), so the train
settings are float32, mixed_float16 and mixed_bfloat16; "mirrored" prediction (tf.distribute) is skipped.
The script checks its imports and the GPU first and says in one line what is missing. Other uses:

    python benchmarks/gpu.py --quick         # the same code paths on CPU, tiny sizes (CI: tests/test_gpu_benchmark.py)
    python benchmarks/gpu.py --loader 1,2    # only the input pipeline at full size, these thread counts (any machine)
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common and the sibling benchmarks, from anywhere

KAGGLE_TEST_IMAGES = 15_606
LOADER_THREADS = 8  # what the toolkit's training step loads with (train.workers)
INSTALL = {"tensorflow": "pip install -e '.[gpu]'",
           "jax": "bash benchmarks/gpu_wheels.sh (wheels for a machine with JAX and no index) or pip install -e ."}


@dataclass(frozen=True)
class Sizes:
    backbone: dict  # [backbone] table
    classifier: str  # the gate's classifier
    patch: int  # training patch side
    batch: int
    steps: int  # timed steps per fit call
    images: int  # synthetic images generated
    side: int  # their side (predict runs on whole images of this side)
    predict_images: int
    predict_batch: int  # predict.batch_size (whole images: // 8 per forward)
    threads: tuple[int, ...]  # loader thread counts measured
    loader_batches: int  # batches per loader measurement
    repeats: int


FULL = Sizes({"name": "resnet34_unet"}, "resnet34_classifier", 256, 32, 20, 200, 768, 64, 32, (4, 8, 16), 24, 3)
QUICK = Sizes({"name": "unet", "base_filters": 4, "depth": 2, "dropout": 0.0}, "cnn_classifier", 64, 4, 2, 16, 128,
              2, 16, (1, 2), 2, 1)
# (tag, Keras dtype policy, jit_compile, always run: else only while within --budget)
TRAIN_SETTINGS = {"tensorflow": (("float32", "float32", False, True), ("mixed_float16", "mixed_float16", False, True),
                                  ("mixed_float16_xla", "mixed_float16", True, True),
                                  ("mixed_bfloat16_xla", "mixed_bfloat16", True, False),
                                  ("float32_xla", "float32", True, False)),
                  # JAX compiles every step with XLA (jax.jit): no separate "_xla" settings
                  "jax": (("float32", "float32", True, True), ("mixed_float16", "mixed_float16", True, True),
                          ("mixed_bfloat16", "mixed_bfloat16", True, True))}


class Tee:
    """stdout that also appends each write to a file (flushed: a run stopped midway keeps its lines)."""

    def __init__(self, stream, path: Path | None) -> None:
        self.stream, self.file = stream, (open(path, "w") if path else None)  # noqa: SIM115 - closed at exit

    def write(self, text: str) -> int:
        if self.file:
            self.file.write(text)
            self.file.flush()
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes on CPU (CI)")
    parser.add_argument("--out", type=Path, help="also write the lines to this file")
    parser.add_argument("--budget", type=float, help="seconds after which optional items are skipped (default: 330; "
                        "with --quick 0: the optional items are the required ones' code paths again)")
    parser.add_argument("--loader", help="only the input pipeline, at full size, with these thread counts (e.g. 1,2)")
    parser.add_argument("--patches-per-image", default="16",
                        help="patches cut per decoded image to try besides 4 with the most threads (e.g. 1,16)")
    return parser.parse_args(argv)


def preflight(quick: bool) -> str | None:
    """Keras' backend ("tensorflow" or "jax"), its framework imported (TensorFlow with --quick: the CPU split
    into 2 logical devices first, so that the mirrored path runs in CI); or None, having said in one line what
    cannot be imported."""
    wanted = os.environ.get("KERAS_BACKEND", "tensorflow")  # keras.json may say otherwise: Keras is asked below
    missing = []
    for module in (wanted if wanted in INSTALL else "tensorflow", "keras", "albumentations", "cv2", "shiptoolkit"):
        try:
            __import__(module)
        except ImportError as exc:
            missing.append(f"{module} ({exc})")
    if missing:
        print(f"gpu.py: cannot import {', '.join(missing)}: install with {INSTALL.get(wanted, INSTALL['tensorflow'])} "
              "(from the repository root).")
        return None
    import keras

    backend = keras.backend.backend()
    if backend not in INSTALL:
        print(f"gpu.py: Keras runs on {backend!r}: measure with KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax.")
        return None
    if backend == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")  # whole images of new sizes retrace the forward pass: expected, not news
        if quick:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    return backend


def gpu_names(backend: str) -> list[str]:
    """The GPUs the backend sees, by name."""
    if backend == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    import tensorflow as tf

    return [tf.config.experimental.get_device_details(g).get("device_name", g.name)
            for g in tf.config.list_physical_devices("GPU")]


def backend_description(backend: str) -> str:
    """The backend, its version and the devices it computes on (`jax.devices()`, TensorFlow's logical devices)."""
    import keras

    if backend == "jax":
        import jax

        return f"jax {jax.__version__} (Keras {keras.__version__}); jax.devices(): {jax.devices()}"
    import tensorflow as tf

    devices = [d.name for d in tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")]
    return f"tensorflow {tf.__version__} (Keras {keras.__version__}); devices: {devices}"


def _software(backend: str) -> str:
    if backend == "jax":
        import importlib.metadata

        import jax
        import jaxlib

        plugins = sorted(f"{d.metadata['Name']} {d.version}" for d in importlib.metadata.distributions()
                         if (d.metadata["Name"] or "").startswith("jax-cuda") and "plugin" in d.metadata["Name"])
        return f"JAX {jax.__version__}, jaxlib {jaxlib.__version__}" + (f", {plugins[0]}" if plugins else " (CPU)")
    import tensorflow as tf

    build = tf.sysconfig.get_build_info()
    cuda = f", CUDA {build.get('cuda_version')}, cuDNN {build.get('cudnn_version')}"
    return f"TensorFlow {tf.__version__}" + (cuda if build.get("is_cuda_build") else " (CPU build)")


def device_description(backend: str) -> str:
    """The accelerator (or CPU) by name, with the framework that drives it."""
    gpus, software = gpu_names(backend), _software(backend)
    if gpus:
        smi = shutil.which("nvidia-smi")
        driver = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                                text=True).stdout.split() if smi else []
        software += f", driver {driver[0]}" if driver else ""
        return f"{len(gpus)} x {gpus[0]}; {os.cpu_count()} CPU cores; {software}"
    model = next((ln.split(":", 1)[1].strip() for ln in _cpuinfo() if ln.startswith("model name")),
                 platform.processor())
    return f"CPU only: {model or 'unknown'}, {os.cpu_count()} cores; {software}"


def _cpuinfo() -> list[str]:
    with contextlib.suppress(OSError):
        return Path("/proc/cpuinfo").read_text().splitlines()
    return []


def make_data(root: Path, sizes: Sizes):
    """(index of the synthetic dataset, a folder of its first predict_images JPGs)."""
    from shiptoolkit.data.airbus import AirbusIndex
    from shiptoolkit.data.synth import generate_dataset

    start = time.perf_counter()
    generate_dataset(root / "data", images=sizes.images, seed=0, size=sizes.side, progress=False)
    index = AirbusIndex.from_kaggle(root / "data", shape=(sizes.side, sizes.side))
    folder = root / "predict"
    folder.mkdir()
    for path in sorted((root / "data" / "train_v2").glob("*.jpg"))[:sizes.predict_images]:
        shutil.copy(path, folder / path.name)
    print(f"# {sizes.images} synthetic {sizes.side} px images generated in {time.perf_counter() - start:.1f} s",
          flush=True)
    return index, folder


@contextlib.contextmanager
def dtype_policy(name: str):
    """Keras' global dtype policy for the models built inside (what train.mixed_precision sets for float16)."""
    import keras

    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def base_config(sizes: Sizes, **sections):
    from shiptoolkit.config import load_config

    pairs = 2 * sizes.batch * sizes.steps  # the longest timed fit's
    tables = {"data": {"image_size": sizes.side}, "backbone": dict(sizes.backbone),
              "sampler": {"name": "mixed", "patch_size": sizes.patch, "patches_per_epoch": pairs},
              "train": {"batch_size": sizes.batch, "steps_per_epoch": 2 * sizes.steps, "workers": LOADER_THREADS,
                        "validation_steps": 1, "val_f2_images": 0}}
    for name, table in sections.items():
        tables[name] = {**tables.get(name, {}), **table}
    return load_config(tables)


def seconds_per_step(run, steps: int, repeats: int) -> float:
    """Seconds per step in the steady state: (median time of `run(2 * steps)` - median time of `run(steps)`) /
    steps, after a warm-up `run(steps)` (tracing, compiling). What each call pays once (`fit`'s set-up, filling
    the loader's queue, joining its threads at the end: ~0.1 s) cancels out; a real epoch has thousands of steps.
    Should noise make the longer run no slower, the longer run's plain time per step is taken instead."""
    from _common import median_seconds

    short = median_seconds(lambda: run(steps), repeats)
    long = median_seconds(lambda: run(2 * steps), repeats, warmup=0)
    return (long - short) / steps if long > short else long / (2 * steps)


def in_memory(batch, size: int):
    """A function that gives `fit` one batch in memory again and again: on TensorFlow sliced and batched by
    tf.data (as `fit` does with arrays), on JAX a generator of the same NumPy arrays (as `fit` gets them)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        def forever():
            while True:
                yield batch

        return forever
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices(batch).repeat().batch(size).prefetch(2)
    return lambda: data


def train_rates(index, sizes: Sizes, policy: str, jit: bool) -> tuple[float, float]:
    """(toolkit, bare fit) images/s of one training setting. The same compiled model (its training metrics
    included) runs both: fed by the toolkit's input, then by one batch in memory (`in_memory`); so the graph
    is traced and compiled once, and the ratio is the input's cost."""
    from shiptoolkit.training.stage import _segmenter_batches, build_model

    class Splits:  # what _segmenter_batches reads (its validation batches go unused)
        train = validation = index

    with dtype_policy(policy):
        config = base_config(sizes, train={"jit_compile": jit})
        batches, _ = _segmenter_batches(config, Splits, 0)
        model = build_model(config, (sizes.patch, sizes.patch, 3), total_steps=1000)
        bare_data = in_memory(batches[0], sizes.batch)

        def fit(data):
            return lambda n: model.fit(data(), epochs=1, steps_per_epoch=n, shuffle=False, verbose=0)

        toolkit = seconds_per_step(fit(lambda: batches), sizes.steps, sizes.repeats)
        bare = seconds_per_step(fit(bare_data), sizes.steps, sizes.repeats)
    return sizes.batch / toolkit, sizes.batch / bare


def loader_rate(index, sizes: Sizes, threads: int, patches_per_image: int = 4) -> tuple[float, float, float]:
    """(pairs/s, cores busy, CPU ms per pair) of the training input alone, read through the path `fit` takes
    (Keras' PyDataset adapter: with threads > 1 its OrderedEnqueuer, each thread making whole batches). Cores
    busy: the process's CPU seconds per wall second while loading; threads held back by the GIL leave it well
    under `threads`. CPU per pair holds on a busy machine too; threads that contend for the GIL raise it."""
    import itertools

    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter
    from pipeline import AUGMENT

    from shiptoolkit.plugins import get_registry
    from shiptoolkit.training.augment import build_augment
    from shiptoolkit.training.pipeline import SamplerBatches

    sampler = get_registry("sampler").create("mixed", index, seed=0, patch_size=sizes.patch,
                                             patches_per_image=patches_per_image,
                                             patches_per_epoch=2 * sizes.batch * sizes.loader_batches)
    augment, epochs, clocks = build_augment(AUGMENT), itertools.count(), [0.0, 0.0, 0]

    def run(n: int) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        data = SamplerBatches(sampler, sizes.batch, augment, steps=n, workers=threads, epoch=next(epochs))
        for _ in PyDatasetAdapter(data).get_numpy_iterator():
            pass
        clocks[0] += time.process_time() - cpu
        clocks[1] += time.perf_counter() - wall
        clocks[2] += n * sizes.batch

    rate = sizes.batch / seconds_per_step(run, sizes.loader_batches, sizes.repeats)
    return rate, clocks[0] / clocks[1], 1000 * clocks[0] / clocks[2]


def predict_rates(tmp: Path, folder: Path, sizes: Sizes, strategy: str, policy: str = "float32"
                  ) -> tuple[float, float, int]:
    """(end-to-end images/s, bare batched forward images/s, replicas) of `predict` on the folder's images."""
    import cv2
    import numpy as np
    from _common import median_seconds

    from shiptoolkit.inference.gate import Gate
    from shiptoolkit.inference.prediction import whole_image_model
    from shiptoolkit.inference.replicas import forward, replica_count, spread
    from shiptoolkit.inference.stage import predict_stage
    from shiptoolkit.plugins.contracts import build_component

    gate_side = 256 if sizes.side >= 256 else sizes.patch
    backbone = {k: v for k, v in sizes.backbone.items() if k != "name"}
    with dtype_policy(policy):  # a model trained in mixed precision predicts in it too
        model = build_component("backbone", sizes.backbone["name"], input_shape=(sizes.patch, sizes.patch, 3),
                                **backbone)
        classifier = build_component("classifier", sizes.classifier, input_shape=(gate_side, gate_side, 3))
    gate = Gate(classifier, gate_side, threshold=0.0)  # every image segmented too
    config = base_config(sizes, predict={"batch_size": sizes.predict_batch, "strategy": strategy})

    def end_to_end():
        predict_stage(config, model, tmp, progress=False, images=str(folder), out=tmp / "submission.csv", gate=gate,
                      overwrite=True, tuned={})

    images = np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(folder.glob("*.jpg"))])
    x = images.astype("float32")
    whole = spread(whole_image_model(model), strategy)
    e2e = median_seconds(end_to_end, sizes.repeats)
    floor = median_seconds(lambda: forward(whole, x, max(1, sizes.predict_batch // 8)), sizes.repeats)
    return len(images) / e2e, len(images) / floor, replica_count(whole)


class Items:
    """Runs the measured items: an optional one only while within the time budget, and one that fails is
    reported (`# item: failed: ...`, its traceback on stderr) while the others still run, so that one call on
    a GPU machine brings back all it can. `failed` lists them (the exit status is 1 then)."""

    def __init__(self, seconds: float) -> None:
        self.start, self.seconds, self.failed = time.perf_counter(), seconds, []

    def run(self, item: str, measure, optional: bool = False):
        spent = time.perf_counter() - self.start
        if optional and spent > self.seconds:
            print(f"# {item}: skipped: {spent:.0f} s spent, past --budget {self.seconds:.0f} s", flush=True)
            return None
        try:
            return measure()
        except Exception as exc:  # noqa: BLE001 - reported, and the run goes on
            import traceback

            traceback.print_exc()
            print(f"# {item}: failed: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
            self.failed.append(item)
            return None


def train_section(index, sizes: Sizes, items: Items, optional: bool, bare_rates: dict[str, float]) -> None:
    """Section 1: the required settings (optional = False) or the optional ones; each setting's bare fit rate is
    added to `bare_rates`, and the speedups over float32 are reported. The settings are the backend's."""
    import keras
    from _common import report

    for tag, policy, jit, always in TRAIN_SETTINGS[keras.backend.backend()]:
        if always == optional:
            continue
        start = time.perf_counter()
        rates = items.run(f"train_{tag}", lambda p=policy, j=jit: train_rates(index, sizes, p, j), optional)
        if rates is None:
            continue
        toolkit, bare_rates[tag] = rates
        report(f"train_{tag}_toolkit_images_per_s", toolkit, "images/s")
        report(f"train_{tag}_bare_fit_images_per_s", bare_rates[tag], "images/s")
        report(f"train_{tag}_overhead", bare_rates[tag] / toolkit, "x")
        print(f"# train_{tag}: {time.perf_counter() - start:.0f} s with compiling", flush=True)
        if tag != "float32" and "float32" in bare_rates:
            report(f"train_{tag}_bare_speedup_over_float32", bare_rates[tag] / bare_rates["float32"], "x")


def loader_section(index, sizes: Sizes, threads: tuple[int, ...], consumption: float | None,
                   patches: tuple[int, ...] = (16,)) -> None:
    """Section 2: pairs/s per thread count (4 patches cut per decoded image, the samplers' default), against the
    step's consumption when there is one; then with the most threads, `patches` patches per decoded image."""
    from _common import report

    rates = {}
    for t in threads:
        rates[t], busy, cpu = loader_rate(index, sizes, t)
        report(f"loader_{t}_threads_pairs_per_s", rates[t], "pairs/s")
        report(f"loader_{t}_threads_cores_busy", busy, "cores")
        report(f"loader_{t}_threads_cpu_per_pair", cpu, "ms")
        if consumption:
            report(f"loader_{t}_threads_over_step_consumption", rates[t] / consumption, "x")
    first, last = threads[0], threads[-1]
    if last != first:
        report(f"loader_scaling_{last}_over_{first}_threads", rates[last] / rates[first], "x")
    for k in patches:
        rate, busy, cpu = loader_rate(index, sizes, last, k)
        report(f"loader_{last}_threads_{k}_patches_per_image_pairs_per_s", rate, "pairs/s")
        report(f"loader_{last}_threads_{k}_patches_per_image_cores_busy", busy, "cores")
        report(f"loader_{last}_threads_{k}_patches_per_image_cpu_per_pair", cpu, "ms")
        report(f"loader_{last}_threads_{k}_patches_per_image_over_4", rate / rates[last], "x")
        if consumption:
            report(f"loader_{last}_threads_{k}_patches_per_image_over_step_consumption", rate / consumption, "x")


def predict_figures(prefix: str, tmp: Path, folder: Path, sizes: Sizes, strategy: str, policy: str = "float32"
                    ) -> tuple[float, int]:
    """Sections 3 and 4's lines for one predict setting; returns (end-to-end images/s, replicas)."""
    from _common import report

    e2e, floor, replicas = predict_rates(tmp, folder, sizes, strategy, policy)
    report(f"{prefix}_end_to_end_images_per_s", e2e, "images/s")
    report(f"{prefix}_bare_forward_images_per_s", floor, "images/s")
    report(f"{prefix}_end_to_end_over_forward", floor / e2e, "x")
    report(f"{prefix}_kaggle_test_projected_s", KAGGLE_TEST_IMAGES / e2e, "s")
    report(f"{prefix}_kaggle_test_forward_only_s", KAGGLE_TEST_IMAGES / floor, "s")
    return e2e, replicas


def predict_section(tmp: Path, folder: Path, sizes: Sizes, items: Items) -> None:
    """Sections 3 and 4: predict on one device, then "mirrored" over all when there are several (TensorFlow)."""
    import keras
    from _common import report

    default = items.run("predict", lambda: predict_figures("predict", tmp, folder, sizes, "default"))
    backend = keras.backend.backend()
    if backend != "tensorflow":
        print(f"# predict_mirrored: skipped: predict.strategy = \"mirrored\" is tf.distribute (TensorFlow only); "
              f"Keras runs on {backend}", flush=True)
        return
    import tensorflow as tf

    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    if len(devices) < 2:
        print(f"# predict_mirrored: skipped: 1 device visible ({devices[0].name}); \"mirrored\" needs 2 or more",
              flush=True)
        return
    mirrored = items.run("predict_mirrored", lambda: predict_figures("predict_mirrored", tmp, folder, sizes,
                                                                     "mirrored"))
    if mirrored is not None:
        report("predict_mirrored_replicas", mirrored[1], "replicas")
        if default is not None:
            report("predict_mirrored_speedup_over_default", mirrored[0] / default[0], "x")


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in text.split(",") if t)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    sys.stdout = Tee(sys.stdout, args.out)
    # The synthetic data's worker processes are started afresh, not forked from this process once TensorFlow's
    # or JAX's threads run (CUDA initialised): such a fork can deadlock.
    multiprocessing.set_start_method("spawn", force=True)
    backend = preflight(args.quick)
    if backend is None:
        return 2
    print(f"# device: {device_description(backend)}", flush=True)
    print(f"# backend: {backend_description(backend)}", flush=True)
    print(f"# command: python benchmarks/gpu.py {' '.join(argv)}", flush=True)
    if not (args.quick or args.loader or gpu_names(backend)):
        asked = "jax.devices()" if backend == "jax" else "tf.config.list_physical_devices('GPU')"
        cuda = "pip install 'jax[cuda13]'" if backend == "jax" else INSTALL[backend]
        print(f"gpu.py: no GPU visible to {backend} ({asked} lists none): on a GPU machine install the CUDA build "
              f"({cuda}); here, run --quick (CPU, tiny) or --loader 1,2.")
        return 2
    sizes = QUICK if args.quick else FULL
    items = Items(args.budget if args.budget is not None else 0.0 if args.quick else 330.0)
    threads = _ints(args.loader) if args.loader else sizes.threads
    bare_rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:  # the required items first, then the optional ones (--budget)
        index, folder = make_data(Path(tmp), sizes)
        if not args.loader:
            train_section(index, sizes, items, False, bare_rates)
        consumption = max(bare_rates.values(), default=None)  # the fastest bare step's images/s
        items.run("loader", lambda: loader_section(index, sizes, threads, consumption, _ints(args.patches_per_image)))
        if not args.loader:
            predict_section(Path(tmp), folder, sizes, items)
            train_section(index, sizes, items, True, bare_rates)
            items.run("predict_mixed_float16", lambda: predict_figures("predict_mixed_float16", Path(tmp), folder,
                                                                       sizes, "default", "mixed_float16"), True)
    print(f"# total: {time.perf_counter() - items.start:.0f} s" + (f"; failed: {', '.join(items.failed)}"
                                                                    if items.failed else ""), flush=True)
    return 1 if items.failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
