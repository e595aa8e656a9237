"""Shared fixtures: tiny datasets and in-process test plugins (unregistered afterwards)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Tests see only built-ins and what they register themselves, never the user's installed plugins.
os.environ.setdefault("SHIPTOOLKIT_LOAD_PLUGINS", "")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from shiptoolkit import plugins  # noqa: E402
from shiptoolkit.data.rle import rle_encode  # noqa: E402


@pytest.fixture
def plugin_cleanup():
    """Yields a list; plugin names appended to it are unregistered after the test."""
    names: list[str] = []
    yield names
    for name in names:
        if plugins.pm.get_plugin(name) is not None:
            plugins.unregister_plugin(name)
    plugins.invalidate()


def write_rect_dataset(root, specs, size=96):
    """Write a tiny Kaggle-layout dataset: `specs` maps image id -> list of (r0, r1, c0, c1) ships.

    Ships are bright rectangles on dark noise, so masks and images agree by construction.
    """
    images = root / "train_v2"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = ["ImageId,EncodedPixels"]
    for image_id, rects in specs.items():
        image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        if not rects:
            rows.append(f"{image_id},")
        for r0, r1, c0, c1 in rects:
            mask = np.zeros((size, size), np.uint8)
            mask[r0:r1, c0:c1] = 1
            image[mask.astype(bool)] = 230
            rows.append(f"{image_id},{rle_encode(mask)}")
        cv2.imwrite(str(images / image_id), image)
    (root / "train_ship_segmentations_v2.csv").write_text("\n".join(rows) + "\n")
    return root


def every_other_ship(n: int) -> dict:
    """Specs of `n` 64 px images: even ones hold one 8x20 ship at a seeded place, odd ones none."""
    rng = np.random.default_rng(0)
    specs = {}
    for i in range(n):
        r, c = rng.integers(4, 40, 2)
        specs[f"i{i:02d}.jpg"] = [(int(r), int(r) + 8, int(c), int(c) + 20)] if i % 2 == 0 else []
    return specs


@pytest.fixture(scope="session")
def small_ship_dataset(tmp_path_factory):
    """`small_ship_dataset(n)`: a 64 px Kaggle-layout dataset of `n` images, every other one with a ship."""
    def make(n: int):
        return write_rect_dataset(tmp_path_factory.mktemp(f"ships{n}"), every_other_ship(n), size=64)

    return make


@pytest.fixture
def rect_dataset(tmp_path):
    specs = {f"img{i:02d}.jpg": ([(10 + i, 30 + i, 20, 60)] if i % 3 == 0 else []) for i in range(12)}
    return write_rect_dataset(tmp_path / "rects", specs)


@pytest.fixture(scope="session")
def rect_writer():
    """`write_rect_dataset` as a fixture (test modules cannot import conftest reliably)."""
    return write_rect_dataset


@pytest.fixture
def tiny_run_toml(tmp_path):
    """Writes a tiny experiment on generated synthetic data (128 px, a 4-filter U-Net, one epoch).

    Call it with the run's name, the [sampler] table's lines, and optionally more [run] lines,
    the number of synthetic images and further sections (TOML text); returns the file's path.
    """

    def write(name: str, sampler: str, run: str = "", images: int = 24, extra: str = ""):
        path = tmp_path / f"{name}.toml"
        path.write_text(f"""
[run]
name = "{name}"
out_dir = "{tmp_path / 'runs'}"
{run}
[data]
synthetic_images = {images}
synthetic_empty_fraction = 0.5
synthetic_test_images = 12
image_size = 128
val_fraction = 0.25
cache_dir = "{tmp_path / 'cache'}"
[sampler]
{sampler}
[backbone]
name = "unet"
base_filters = 4
depth = 2
[train]
epochs = 1
batch_size = 8
{extra}
""")
        return path

    return write


def write_tiny_folder_toml(folder, data, train: str = "", extra: str = ""):
    """The hostile probe's tiny.toml (issue 26) on a Kaggle-layout folder `data`: 64 px, a 4-filter U-Net,
    one epoch of 2 steps, one tuning threshold; `train` adds [train] lines, `extra` more sections."""
    path = folder / "tiny.toml"
    path.write_text(f"""
[run]
name = "tiny"
out_dir = "{(folder / 'runs').as_posix()}"
[data]
path = "{Path(data).as_posix()}"
image_size = 64
val_fraction = 0.25
test_fraction = 0.2
[sampler]
name = "mixed"
patch_size = 32
[backbone]
name = "unet"
base_filters = 4
depth = 2
[train]
epochs = 1
batch_size = 4
steps_per_epoch = 2
validation_steps = 1
val_f2_images = 4
workers = 1
{train}
[tune]
thresholds = [0.5]
min_areas = [0]
windows = false
{extra}
""", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_folder_toml():
    """`write_tiny_folder_toml` as a fixture (test modules cannot import conftest reliably)."""
    return write_tiny_folder_toml


@pytest.fixture(scope="session")
def red_channel_model():
    """A factory of a 1x1-conv Keras model on `window` px inputs whose ship probability is red / 255: the bright
    rectangles (230) of `rect_writer`'s datasets are ships, their dark noise is not."""

    def make(window: int = 32):
        import keras

        inputs = keras.Input((window, window, 3))
        conv = keras.layers.Conv2D(1, 1, use_bias=False)
        outputs = conv(inputs)
        conv.set_weights([np.array([1 / 255, 0, 0], "float32").reshape(1, 1, 3, 1)])
        return keras.Model(inputs, outputs)

    return make


@pytest.fixture(scope="session")
def red_blur_model():
    """A factory of a Keras model whose ship probability is the mean red / 255 over `kernel` x `kernel` pixels with
    zero padding (an edge pixel sees only part of a ship, as a U-Net sees no context past its input's edge), on
    inputs of `side` px (None: any size)."""

    def make(kernel: int, side: int | None = None):
        import keras

        inputs = keras.Input((side, side, 3))
        conv = keras.layers.Conv2D(1, kernel, padding="same", use_bias=False)
        model = keras.Model(inputs, conv(inputs))
        weights = np.zeros((kernel, kernel, 3, 1), "float32")
        weights[:, :, 0, 0] = 1 / (kernel * kernel * 255)
        conv.set_weights([weights])
        return model

    return make


REAL_DATA_ENV = "SHIPTOOLKIT_REAL_DATA"


@pytest.fixture(scope="session")
def real_data():
    """The real Airbus subset (`train_v2/`, `train_ship_segmentations_v2.csv`, `test_v2/`) as a Path; never copied.

    Expected at `<repo root>/../shared/data/airbus-real` (its SOURCE.md tells where the files come from); the
    environment variable SHIPTOOLKIT_REAL_DATA names another folder. Where the folder or one of its parts is
    missing (a user's clone), the tests that use it skip, naming the place looked at; with CI=true (or CI=1)
    they fail instead: CI always has the folder, so its absence there is a broken set-up, not a reason to skip.
    """
    from pathlib import Path

    default = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "airbus-real"
    root = Path(os.environ.get(REAL_DATA_ENV) or default)
    parts = ("train_ship_segmentations_v2.csv", "train_v2", "test_v2")
    missing = [part for part in parts if not (root / part).exists()]
    if missing:
        reason = (f"real Airbus data not found: {root} lacks {', '.join(missing)} (expected at <repo root>/../shared/"
                  f"data/airbus-real, or in the folder {REAL_DATA_ENV} names)")
        if os.environ.get("CI", "").strip().lower() in ("true", "1"):
            pytest.fail(f"{reason}; CI=true and CI always has this folder", pytrace=False)
        pytest.skip(reason)
    return root
