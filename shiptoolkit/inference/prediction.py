"""Full-image prediction: sliding windows, batched forward passes, blending, TTA, post-processing.

A model trained on 128x128 patches predicts a 768x768 image through windows of its input size.
All windows of a chunk of images go through the model in large batches (the seed called the
model once per patch), and overlapping windows are blended with weights that favour window
centres. A model without a fixed input size predicts whole images directly. With
predict.strategy = "mirrored", each batch is split over the devices of the machine
(`shiptoolkit.inference.replicas`): predict.batch_size then counts per device.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from shiptoolkit.config import overridden_keys
from shiptoolkit.data.airbus import Problem, read_rgb
from shiptoolkit.data.instances import label_instances, split_by_seams, split_touching
from shiptoolkit.errors import DataError
from shiptoolkit.inference.gate import Gate
from shiptoolkit.inference.replicas import forward, replica_count, spread

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
Loader = Callable[[], np.ndarray]


@dataclass(frozen=True)
class PredictSettings:
    """The [predict] options that shape predictions (see the configuration reference)."""

    threshold: float = 0.5
    overlap: float = 0.25
    tta: bool = False
    whole_image: bool = True
    window: int = 0
    min_area: int = 0
    gate_threshold: float = 0.0
    batch_size: int = 32
    resize: int = 0
    split: str = "none"
    split_depth: float = 1.5
    strategy: str = "default"
    max_ships: int = 0

    @classmethod
    def from_config(cls, config, tuned: dict | None = None) -> PredictSettings:
        """The config's [predict] values; with `tuned` (postprocess.json), its threshold, min_area (and
        split_depth and whole_image, when tuned) replace the config's unless an override
        (`--set predict.threshold=...`) names the key."""
        values = {f.name: getattr(config.settings.predict, f.name) for f in fields(cls)}
        if tuned:
            named = overridden_keys(config)
            values.update({k: tuned[k] for k in TUNED_KEYS if k in tuned and f"predict.{k}" not in named})
        return cls(**values)

    def labels(self, prob: np.ndarray, threshold: float | None = None, min_area: int | None = None,
               split: str | None = None, seam: np.ndarray | None = None) -> np.ndarray:
        """`postprocess` with these settings (each may be overridden, e.g. by a threshold scan)."""
        return postprocess(prob, self.threshold if threshold is None else threshold,
                           self.min_area if min_area is None else min_area, self.gate_threshold,
                           self.split if split is None else split, self.split_depth, seam, self.max_ships)


# [predict] keys that postprocess.json may set (see `shiptoolkit.training.tuning`).
TUNED_KEYS = ("threshold", "min_area", "split_depth", "whole_image", "max_ships")

_WHOLE_IMAGE_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def whole_image_model(model: Any) -> Any:
    """The model with a free input size (same weights, synced now), to predict whole images in one pass.

    A model trained on fixed-size patches is usually fully convolutional: the same layers run on
    a 768x768 image, with the whole image as context and no window seams. A model that cannot be
    rebuilt so (custom or dense layers) is returned as it is: it is then predicted by windows.
    """
    shape = getattr(model, "input_shape", None)
    if not isinstance(shape, tuple) or len(shape) != 4 or (shape[1] is None and shape[2] is None):
        return model
    clone = _WHOLE_IMAGE_MODELS.get(model)
    if clone is None:
        import keras

        try:
            clone = keras.models.clone_model(model, input_tensors=keras.Input((None, None, shape[3])))
            clone.set_weights(model.get_weights())
            # Layers that need a fixed size (Flatten + Dense, say) fail here.
            clone.predict_on_batch(np.zeros((1, 64, 64, shape[3]), np.float32))
        except Exception as exc:  # noqa: BLE001 - any failure means: keep sliding windows
            warnings.warn(f"{getattr(model, 'name', 'the model')} cannot run on whole images ({type(exc).__name__}: "
                          f"{exc}); predicting by sliding windows.", stacklevel=2)
            clone = model
        _WHOLE_IMAGE_MODELS[model] = clone
    elif clone is not model:
        clone.set_weights(model.get_weights())  # the model may have trained since (validation f2 each epoch)
    return clone


def window_stride(window: int, overlap: float) -> int:
    """How far apart sliding windows of this side lie at this overlap (`shiptoolkit detect`'s patch lattice too)."""
    return max(1, int(round(window * (1 - overlap))))


def window_positions(size: int, window: int, overlap: float) -> list[int]:
    """Window starts covering [0, size) with the given overlap; the last window is flush with the edge."""
    if window > size:
        raise ValueError(f"The model's window ({window} px) is larger than the image ({size} px).")
    stride = window_stride(window, overlap)
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def blend_weights(height: int, width: int, blend: str) -> np.ndarray:
    """Per-pixel window weights: "gaussian" favours window centres (edges see less context)."""
    if blend == "mean":
        return np.ones((height, width), np.float32)
    if blend != "gaussian":
        raise ValueError(f"blend must be 'gaussian' or 'mean'. Received: blend={blend!r}")

    def axis(n: int) -> np.ndarray:
        x = np.arange(n) - (n - 1) / 2
        return np.exp(-0.5 * (x / (n / 4)) ** 2)

    return (np.outer(axis(height), axis(width)) + 1e-3).astype(np.float32)  # floor: corners still count


def _flips(tta: bool) -> list[tuple[int, ...]]:
    return [(), (2,), (1,), (1, 2)] if tta else [()]  # axes of (N, H, W, C) arrays: none, horizontal, vertical


def window_predictions(model: Any, windows: np.ndarray, batch_size: int = 32, tta: bool = False) -> np.ndarray:
    """The model's outputs (N, h, w, C) float32 on same-size windows (N, h, w, 3), averaged over flips with `tta`;
    short batches padded to few shapes (`forward(few_shapes=True)`)."""
    preds = 0.0
    for axes in _flips(tta):
        flipped = np.ascontiguousarray(np.flip(windows, axes)) if axes else windows
        out = forward(model, flipped, batch_size, few_shapes=True)
        preds = preds + (np.flip(out, axes) if axes else out)
    return preds / len(_flips(tta))


def predict_probabilities(model: Any, images: np.ndarray, window: int | None = None, overlap: float = 0.25,
                          batch_size: int = 32, tta: bool = False, blend: str = "gaussian") -> np.ndarray:
    """Ship probabilities (N, H, W) float32 for images (N, H, W, 3) uint8, by sliding windows.

    A model with several output channels (e.g. ship and seam) gives (N, H, W, C), each blended.

    Args:
        model: a Keras model (or anything with `predict_on_batch`) with sigmoid outputs; a
            `shiptoolkit.inference.replicas.MirroredModel` splits each batch over its devices.
        images: a batch of same-size images.
        window: window side (default: the model's input size; whole images if it has none).
        overlap: fraction of a window shared with its neighbour, in [0, 1).
        batch_size: windows per forward pass on each replica (whole images: batch_size // 8 images).
        tta: average over horizontal and vertical flips.
        blend: "gaussian" (centre-weighted) or "mean".
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (N, H, W, 3). Received shape {images.shape}")
    n, height, width, _ = images.shape
    if window is None:
        shape = getattr(model, "input_shape", (None, None, None, 3))
        win_h, win_w = shape[1], shape[2]
    else:
        win_h = win_w = window
    if win_h is None or win_w is None:  # fully convolutional: whole images, padded to a multiple of 32
        pad_h, pad_w = (-height) % 32, (-width) % 32
        padded = np.pad(images, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
        prob = 0.0
        for axes in _flips(tta):
            flipped = np.flip(padded, axes) if axes else padded
            out = forward(model, np.ascontiguousarray(flipped), max(1, batch_size // 8))
            prob = prob + (np.flip(out, axes) if axes else out)
        return _squeeze(prob[:, :height, :width] / len(_flips(tta)))
    rows, cols = window_positions(height, win_h, overlap), window_positions(width, win_w, overlap)
    boxes = [(i, r, c) for i in range(n) for r in rows for c in cols]
    windows = np.stack([images[i, r:r + win_h, c:c + win_w] for i, r, c in boxes]).astype(np.float32)
    preds = window_predictions(model, windows, batch_size, tta)
    weights = blend_weights(win_h, win_w, blend)[..., None]
    total = np.zeros((n, height, width, preds.shape[-1]), np.float32)
    weight_sum = np.zeros((n, height, width, 1), np.float32)
    for (i, r, c), pred in zip(boxes, preds, strict=True):
        total[i, r:r + win_h, c:c + win_w] += pred * weights
        weight_sum[i, r:r + win_h, c:c + win_w] += weights
    return _squeeze(total / weight_sum)


def sliding_window(model, settings: PredictSettings) -> int | None:
    """predict.window for a model with a free input size (an export) when whole_image is off; else None:
    the model's own input size (windows), or whole images for a free-size model."""
    shape = getattr(model, "input_shape", None)
    free = isinstance(shape, tuple) and len(shape) == 4 and shape[1] is None
    return settings.window if free and settings.window and not settings.whole_image else None


def _squeeze(prob: np.ndarray) -> np.ndarray:
    """(N, H, W) for one-channel models (the common case), (N, H, W, C) otherwise."""
    return prob[..., 0] if prob.shape[-1] == 1 else prob


def postprocess(prob: np.ndarray, threshold: float = 0.5, min_area: int = 0, gate_threshold: float = 0.0,
                split: str = "none", split_depth: float = 1.5, seam: np.ndarray | None = None,
                max_ships: int = 0) -> np.ndarray:
    """Probabilities (H, W) -> instance labels (H, W) int32, non-overlapping by construction.

    Args:
        prob: ship probabilities of one image.
        threshold: pixels above it are ship.
        min_area: drop ships smaller than this many pixels.
        gate_threshold: an image whose highest probability is below it gets no ships at all.
        split: "watershed" splits touching ships, "none" keeps blobs whole.
        split_depth: the watershed's minimum peak prominence in pixels (`split_touching`).
        seam: the seam probabilities of a model with a seam channel: the watershed then splits
            along the predicted seams (`split_by_seams`) instead of at narrow necks.
        max_ships: an image with more ships than this gets none (0 = off): many ship-like blobs
            at once are textured land far more often than a harbour.
    """
    if gate_threshold and float(prob.max()) < gate_threshold:
        return np.zeros(prob.shape, np.int32)
    if split == "watershed" and seam is not None:
        labels = split_by_seams(prob, seam, threshold, min_area)
    elif split == "watershed":
        labels = split_touching(prob > threshold, split_depth, min_area)
    elif split != "none":
        raise ValueError(f"split must be 'none' or 'watershed'. Received: split={split!r}")
    else:
        labels = label_instances(prob > threshold, min_area)
    if max_ships and ship_count(labels) > max_ships:
        return np.zeros(prob.shape, np.int32)
    return labels


def ship_count(labels: np.ndarray) -> int:
    """The number of ships in a label image (labels need not be consecutive)."""
    return int(np.count_nonzero(np.bincount(labels.ravel())[1:]))


class ImageSizeError(DataError):
    """A folder image is not data.image_size square: its run-length codes would not fit the submission."""


def folder_items(folder: str | Path, size: int | None = None) -> list[tuple[str, Loader]]:
    """(image id, loader) for every image file of a folder, sorted by name.

    With `size` (data.image_size), loading an image of another size raises `ImageSizeError`: a
    submission's run-length codes number the pixels of a size x size image, so a 1024 px image's
    codes would run past the end and a 500x600 one's would land on the wrong pixels.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"Image folder {str(folder)!r} not found.")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"No .jpg/.jpeg/.png images in {str(folder)!r}.")
    return [(p.name, lambda p=p: read_folder_image(p, size)) for p in paths]


def read_folder_image(path: Path, size: int | None = None) -> np.ndarray:
    """An image of a predict folder as (H, W, 3) uint8 RGB; with `size`, it must be size x size."""

    image = read_rgb(path, None)
    if size and image.shape[:2] != (size, size):
        raise ImageSizeError(f"Image {str(path)!r} is {image.shape[1]}x{image.shape[0]} px; expected {size}x{size} "
                             f"(data.image_size = {size}): its rows would not fit a {size}x{size} submission. "
                             f"Resize it to {size}x{size}, or if all images have another side N, pass "
                             "--set data.image_size=N.")
    return image


def index_items(index) -> list[tuple[str, Loader]]:
    """(image id, loader) for every image of an `AirbusIndex`."""
    return [(image_id, lambda i=image_id: index.read_image(i)) for image_id in index.image_ids]


class Prediction(NamedTuple):
    """One image's prediction: probabilities None for an unreadable image (image None too)."""

    image_id: str
    image: np.ndarray | None
    prob: np.ndarray | None
    ship_probability: float = float("nan")  # the gate's verdict (nan without a gate)
    seam: np.ndarray | None = None  # seam probabilities, for a model with a seam channel


def predict_items(model, items: Sequence[tuple[str, Loader]], settings: PredictSettings, chunk: int = 8,
                  progress: bool = True, on_error: str = "raise", gate: Gate | None = None,
                  skip_rejected: bool = False, problems: list | None = None) -> Iterator[Prediction]:
    """Stream `Prediction`s over images, decoding the next chunk while the model runs.

    An unreadable (or wrong-size, see `folder_items`) image raises `DataError`, or with
    on_error="skip" yields (id, None, None) and is counted in a warning at the end: it still gets
    its (empty) row in a submission, and a `Problem` in `problems` (when given) says why.
    With a `gate` (see `shiptoolkit.inference.gate`), each image gets its ship probability; with
    `skip_rejected` the images the gate rejects are not segmented (all-zero probabilities).
    With settings.strategy = "mirrored", the model and the gate's classifier run on every device
    (`shiptoolkit.inference.replicas.spread`), and chunks hold `chunk` images per device.
    """
    from tqdm import tqdm

    reasons: list = []

    def load(batch):
        out = []
        for image_id, loader in batch:
            try:
                out.append((image_id, loader()))
            except DataError as exc:
                if on_error != "skip":
                    raise DataError(f"{exc} To give such images an empty row and go on, set data.on_error = "
                                    "\"skip\" (--set data.on_error=skip).") from None
                kind = "wrong_size" if isinstance(exc, ImageSizeError) else "corrupt_image"
                reasons.append(Problem(image_id, kind, str(exc)))
                out.append((image_id, None))
        return out

    if settings.whole_image and not settings.resize:
        model = whole_image_model(model)
    model = spread(model, settings.strategy, print if progress else None)
    gate = gate.spread(settings.strategy) if gate is not None else None
    chunk *= replica_count(model)  # enough images to give every device a full batch
    chunks = [items[k:k + chunk] for k in range(0, len(items), chunk)]
    skipped = []
    bar = tqdm(total=len(items), desc="predict", unit="img", disable=not progress)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load, chunks[0]) if chunks else None
        for k in range(len(chunks)):
            loaded = pending.result()
            pending = pool.submit(load, chunks[k + 1]) if k + 1 < len(chunks) else None
            yield from _predict_loaded(model, loaded, settings, skipped, gate, skip_rejected)
            bar.update(len(loaded))
    bar.close()
    if problems is not None:
        problems.extend(reasons)
    if skipped:
        wrong_size = sum(p.kind == "wrong_size" for p in reasons)
        counts = [f"{n} {what}" for n, what in ((len(skipped) - wrong_size, "unreadable image(s)"),
                                                (wrong_size, "image(s) of the wrong size")) if n]
        warnings.warn(f"{' and '.join(counts)} predicted as empty (data.on_error = \"skip\"), e.g. "
                      f"{[p.message for p in reasons[:3]]}", stacklevel=2)


def predict_images(model, images: list[tuple[str, np.ndarray]], settings: PredictSettings, gate: Gate | None = None,
                   skip_rejected: bool = True) -> list[Prediction]:
    """`Prediction`s of decoded images (id, (H, W, 3) uint8), as `predict_items` makes them for one chunk: the
    gate (its rejects all-zero with `skip_rejected`), predict.resize, windows or whole images, TTA. `model` is
    used as it is: `whole_image_model` and `spread` it first, as `predict_items` does."""
    return list(_predict_loaded(model, images, settings, [], gate, skip_rejected))


def _predict_loaded(model, loaded, settings: PredictSettings, skipped: list[str], gate: Gate | None = None,
                    skip_rejected: bool = False):
    good = [(i, im) for i, im in loaded if im is not None]
    ship_p = dict(zip([i for i, _ in good], gate.ship_probability([im for _, im in good]), strict=True)) \
        if gate is not None else {}
    probs: dict[str, np.ndarray] = {}
    if skip_rejected and gate is not None:  # rejected images cost one classifier pass, no segmentation
        probs.update({i: np.zeros(im.shape[:2], np.float32) for i, im in good if not gate.accepts(ship_p[i])})
        good = [(i, im) for i, im in good if i not in probs]
    by_shape: dict[tuple, list[int]] = {}
    for k, (_, image) in enumerate(good):
        by_shape.setdefault(image.shape, []).append(k)
    for members in by_shape.values():  # one batched call per image size in the chunk
        stack = np.stack([good[k][1] for k in members])
        height, width = stack.shape[1:3]
        if settings.resize:  # the scale the model was trained at (e.g. a full_images sampler's size)
            import cv2

            stack = np.stack([cv2.resize(im, (settings.resize, settings.resize), interpolation=cv2.INTER_AREA)
                              for im in stack])
        out = predict_probabilities(model, stack, window=sliding_window(model, settings), overlap=settings.overlap,
                                    batch_size=settings.batch_size, tta=settings.tta)
        if settings.resize:
            out = np.stack([cv2.resize(p, (width, height), interpolation=cv2.INTER_LINEAR) for p in out])
        probs.update({good[k][0]: p for k, p in zip(members, out, strict=True)})
    for image_id, image in loaded:
        if image is None:
            skipped.append(image_id)
            yield Prediction(image_id, None, None)
        else:
            p = probs[image_id]
            prob, seam = (p[..., 0], p[..., 1]) if p.ndim == 3 else (p, None)
            yield Prediction(image_id, image, prob, float(ship_p.get(image_id, float("nan"))), seam)


def predict_labels(model, items: Sequence[tuple[str, Loader]], settings: PredictSettings, progress: bool = True,
                   on_error: str = "raise", gate: Gate | None = None,
                   problems: list | None = None) -> Iterable[tuple[str, np.ndarray | None]]:
    """(image id, instance labels or None for an unreadable image) for every item; a gate's rejects are empty.

    Skipped images (on_error="skip") are appended to `problems` as `Problem`s, when given.
    """
    for p in predict_items(model, items, settings, progress=progress, on_error=on_error, gate=gate,
                           skip_rejected=True, problems=problems):
        yield p.image_id, None if p.prob is None else settings.labels(p.prob, seam=p.seam)
