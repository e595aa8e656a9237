"""The config's schema: every section and key with its type, default, range and meaning.

The single source for validation (`shiptoolkit.config`) and for the docs' configuration
reference (`shiptoolkit.cli.reference`). Every numeric key declares the values it accepts as a
`Range` (the type components' `@param_ranges` use), checked at load, so `--dry-run` refuses
`train.steps_per_epoch = -5` or an epoch count that overflows before anything runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shiptoolkit.plugins.registry import Range

# Sections that configure one registered component: `name = "..."` plus its parameters.
COMPONENT_SECTIONS = {"sampler": "sampler", "backbone": "backbone", "loss": "loss", "classifier": "classifier"}
# run.name becomes a folder inside run.out_dir: a path ("../x", "a/b") would put the run elsewhere.
RUN_NAME_RE = re.compile(r"[\w.-]+")

# The ranges numeric keys share. Upper bounds are far above any real use: they stop a typo (an
# extra digit, 99999999999999999999) before it overflows TensorFlow's int64 or takes all memory.
FRACTION = Range(0.0, 1.0)  # a probability or a share, both ends included
BELOW_ONE = Range(0.0, 1.0, high_open=True)
OPEN_FRACTION = Range(0.0, 1.0, low_open=True, high_open=True)
SEED = Range(0, 2**31 - 1)  # NumPy's legacy and Keras' seeds are 32-bit; offsets are added to some
IMAGES = Range(0, 10**9)  # a number of images, 0 = all (Airbus: 192,556 training images)
SIDE = Range(16, 16384)  # an image side in pixels
EPOCHS = Range(1, 100_000)
PATIENCE = Range(0, 100_000)  # epochs; 0 = off
STEPS = Range(0, 10**7)  # batches per epoch; 0 = derived from the data
BATCH = Range(1, 1024)  # pairs per batch: more does not fit in memory (100,000 was OOM-killed after 162 s)
PIXELS = Range(0, 10**9)  # an area in pixels
SHIPS = Range(0, 10**5)  # ships on one image; 0 = off
LEARNING_RATE = Range(0.0, None, low_open=True)  # no upper bound: a rate that diverges is a NaN the run reports
SPLIT_DEPTH = Range(0.0, 1000.0, low_open=True)  # pixels of a distance map


@dataclass(frozen=True)
class Key:
    """One config key: its type (a Python type, or `list[...]`), default and meaning."""

    name: str
    type: Any
    default: Any
    doc: str
    choices: tuple[Any, ...] | None = None
    range: Range | None = None  # numbers (each item of a list): the values accepted, checked at load

    @property
    def type_name(self) -> str:
        if getattr(self.type, "__origin__", None) is list:
            return f"list[{self.type.__args__[0].__name__}]"
        return self.type.__name__


@dataclass(frozen=True)
class Section:
    name: str
    doc: str
    keys: tuple[Key, ...] = ()
    component: str | None = None  # registry kind for component sections
    # For component sections: "" = off (an optional component such as the classifier gate).
    default_component: str | None = None

    def key(self, name: str) -> Key | None:
        return next((k for k in self.keys if k.name == name), None)


SCHEMA: dict[str, Section] = {s.name: s for s in [
    Section("run", "What to run and where its outputs go.", (
        Key("name", str, "experiment", "Run name; the run directory is `<out_dir>/<name>-<timestamp>/`."),
        Key("out_dir", str, "runs", "Folder that holds run directories (relative to the working directory)."),
        Key("stages", list[str], ["train", "predict", "evaluate"], "Stages `shiptoolkit run` executes, in order.",
            ("train", "predict", "evaluate")),
        Key("seed", int, 42, "Seed for sampling, splitting, augmentation and weight initialisation.", range=SEED),
    )),
    Section("data", "Where the Kaggle-layout dataset is, or which synthetic one to generate.", (
        Key("path", str, "synthetic", "A folder in the Kaggle layout, or \"synthetic\" to generate one into `cache_dir` on first use."),
        Key("csv", str, "train_ship_segmentations_v2.csv", "Segmentation CSV inside `path`."),
        Key("images", str, "train_v2", "Image folder inside `path`."),
        Key("image_size", int, 768, "Height and width of every image and mask (Kaggle: 768).", range=SIDE),
        Key("on_error", str, "raise", "On malformed RLE or missing/corrupt images: \"raise\" or \"skip\" (warn and count).",
            ("raise", "skip")),
        Key("pixel_size_m", float, 1.5, "Ground size of one pixel, in metres, of the images the model learns from "
            "(Airbus SPOT chips: 1.5). `shiptoolkit detect` checks a scene's pixel size against it: it warns, or "
            "resamples the scene to it with --resample.", range=Range(0.01, 1000.0)),
        Key("val_fraction", float, 0.05, "Fraction of the non-test images held out for validation: checkpoint choice and every tuned number.", range=BELOW_ONE),
        Key("test_fraction", float, 0.0, "Fraction of the images held out as the test set (reported, never used for a choice); "
            "group-aware with split = \"groups\". Fixed by the data alone, not by run.seed, so every run on a dataset shares it.", range=BELOW_ONE),
        Key("test_path", str, "", "A labelled folder in the Kaggle layout (same `csv` and `images` names) used as the test set."),
        Key("synthetic_test_images", int, 300, "With path = \"synthetic\": images in the independent synthetic test set "
            "(its own seed, so no scene is shared with training); 0 = none.", range=Range(0, 10**6)),
        Key("split", str, "image", "\"image\": split by image; \"groups\": whole groups of overlapping images go to "
            "one side (leak-free on the real data, whose images are overlapping crops).", ("image", "groups")),
        Key("groups_csv", str, "", "For split = \"groups\": a CSV `ImageId,group` (relative to `path`); \"\" = "
            "find the groups by hashing 256 px tiles (images sharing a tile are one group)."),
        Key("group_cache", str, "tile_hashes.sqlite", "For split = \"groups\" without `groups_csv`: a file keeping each "
            "image's tile hashes between runs (relative to `cache_dir`), so a second run reads no image again; an image "
            "whose size or mtime changed is hashed anew. Safe to delete; \"\" = no cache."),
        Key("max_images", int, 0, "Use only this many images (0 = all); handy for quick trials.", range=IMAGES),
        Key("synthetic_images", int, 400, "Images in the generated synthetic dataset.", range=Range(1, 10**6)),
        Key("synthetic_seed", int, 0, "Seed of the generated synthetic dataset.", range=SEED),
        Key("synthetic_empty_fraction", float, 0.78, "Fraction of synthetic images without ships (real data: 0.779).", range=FRACTION),
        Key("synthetic_overlap_fraction", float, 0.0, "Fraction of synthetic images cut as overlapping crops of "
            "larger scenes, like the real data (to try split = \"groups\").", range=FRACTION),
        Key("cache_dir", str, "~/.cache/shiptoolkit", "Where synthetic datasets are generated and reused."),
        Key("empty_prior", float, 0.779, "The fraction of images without ships the scores are weighed to (Kaggle: 0.779). "
            "Every evaluation also reports f2_prior_weighted = empty_prior x (1 - FP rate on empty images) + "
            "(1 - empty_prior) x (mean f2 on ship images): the f2 at that fraction, whatever the images' own "
            "(its all-empty baseline is empty_prior); tune.objective = \"f2_prior_weighted\" tunes for it.", range=OPEN_FRACTION),
    )),
    Section("sampler", "Which (image, mask) pairs training sees. `name` plus the sampler's parameters.",
            component="sampler", default_component="mixed"),
    Section("augment", "Albumentations transforms applied to training pairs (never to validation).", (
        Key("transforms", list[dict], [{"name": "HorizontalFlip", "p": 0.5}, {"name": "VerticalFlip", "p": 0.5},
                                       {"name": "RandomRotate90", "p": 0.5}],
            "List of `{name = \"AlbumentationsClass\", <its parameters>}` tables, applied in order."),
    )),
    Section("backbone", "The segmentation model. `name` plus the model's parameters.",
            component="backbone", default_component="unet"),
    Section("loss", "The training loss. `name` plus the loss's parameters.",
            component="loss", default_component="bce_dice"),
    Section("metrics", "Metric names from the metric registry.", (
        Key("train", list[str], ["dice", "iou"], "Keras metrics reported during training."),
        Key("evaluate", list[str], ["f2", "dice", "iou"], "Metrics computed on full validation images."),
    )),
    Section("train", "Optimisation, callbacks and hardware.", (
        Key("epochs", int, 15, "Maximum number of epochs.", range=EPOCHS),
        Key("batch_size", int, 16, "Pairs per batch (per replica times replicas under a strategy).", range=BATCH),
        Key("steps_per_epoch", int, 0, "Batches per epoch (0 = the sampler's length / batch_size).", range=STEPS),
        Key("validation_steps", int, 0, "Validation batches per epoch (0 = the whole validation sampler).", range=STEPS),
        Key("optimizer", str, "adam", "Keras optimizer name.", ("adam", "adamw", "sgd", "rmsprop")),
        Key("learning_rate", float, 1e-4, "Initial learning rate.", range=LEARNING_RATE),
        Key("monitor", str, "val_f2", "Quantity for checkpointing, early stopping and LR reduction (not pixel accuracy). "
            "\"val_f2\": the competition metric on whole validation images, predicted as `predict` does."),
        Key("val_f2_every", int, 1, "Compute val_f2 every N epochs (and at the last epoch).", range=Range(1, 100_000)),
        Key("val_f2_images", int, 64, "Validation images val_f2 predicts (0 = all); its cost is printed.", range=IMAGES),
        Key("schedule", str, "cosine", "Learning-rate schedule: \"cosine\" (linear warm-up, then cosine decay to 1% over all "
            "steps) or \"constant\".", ("constant", "cosine")),
        Key("warmup_fraction", float, 0.05, "With schedule = \"cosine\": fraction of all steps spent warming up from lr/10.", range=BELOW_ONE),
        Key("collapse_patience", int, 2, "Stop (and say so) when the model predicts no ship pixel on validation for this "
            "many epochs in a row; such epochs are never kept as best (0 = off).", range=PATIENCE),
        Key("early_stopping_patience", int, 5, "Epochs without improvement before stopping (0 = off).", range=PATIENCE),
        Key("reduce_lr_patience", int, 3, "Epochs without improvement before reducing the LR (0 = off).", range=PATIENCE),
        Key("reduce_lr_factor", float, 0.5, "Factor applied to the LR on a plateau.", range=OPEN_FRACTION),
        Key("mixed_precision", bool, False, "Train in mixed_float16 (GPUs)."),
        Key("jit_compile", bool, False, "Compile the train step with XLA."),
        Key("tensorboard", bool, False, "Write TensorBoard logs into the run directory."),
        Key("callbacks", list[str], [], "Keras callbacks from plugins, by name (e.g. an experiment logger; "
            "`shiptoolkit components callback` lists them), added to the segmenter's fit and the classifier's."),
        Key("strategy", str, "default", "tf.distribute strategy: \"mirrored\" (the GPUs of one machine) or "
            "\"multi_worker\" (several machines: `--workers`/`--worker-index` or TF_CONFIG; see \"Training on several "
            "machines\").", ("default", "mirrored", "multi_worker")),
        Key("workers", int, 2, "Parallel data-loading workers.", range=Range(1, 256)),
        Key("init_from", str, "", "Start the segmenter from other weights: a run directory (its best.keras) or a "
            ".keras file; layers are matched by name and shape, and what was loaded and what was not is printed "
            "(fine-tuning, e.g. from a synthetic pretraining run). \"\" = from scratch (or the encoder_weights)."),
        Key("seam_channel", bool, False, "Train a second output channel on the seams between touching ships "
            "(the backbone gets classes = 2); `predict.split = \"watershed\"` then splits along it."),
    )),
    Section("predict", "Full-image prediction and the Kaggle submission.", (
        Key("images", str, "test", "\"test\", \"validation\" or a folder of JPGs."),
        Key("out", str, "submission.csv", "Submission file name inside the run directory."),
        Key("threshold", float, 0.5, "Probability threshold for ship pixels.", range=FRACTION),
        Key("overlap", float, 0.25, "Sliding-window overlap as a fraction of the window (0 <= overlap < 1).", range=BELOW_ONE),
        Key("tta", bool, False, "Average predictions over flips (test-time augmentation)."),
        Key("whole_image", bool, True, "Predict whole images in one pass when the model is fully convolutional (its weights in "
            "a copy with a free input size); false = sliding windows of the training size, blended where they "
            "overlap: 1.75x slower, and on the quickstart (64 px patches) 0.003-0.012 higher validation f2 "
            "(benchmarks/whole_vs_windows.py). A run tries both on validation (`tune.windows`) and saves the better."),
        Key("window", int, 0, "Sliding-window side with whole_image = false (0 = the model's input size; an export, "
            "whose input size is free, records its training size here).", range=Range(16, 16384, also=(0,))),
        Key("min_area", int, 0, "Drop predicted ships smaller than this many pixels.", range=PIXELS),
        Key("gate_threshold", float, 0.0, "Skip images whose maximum probability is below this (0 = off).", range=FRACTION),
        Key("max_ships", int, 0, "Predict nothing on an image where more than this many ships are found (0 = off): "
            "textured land (fields, villages, surf) breaks into many ship-like blobs, while sea images rarely hold "
            "that many ships. Tuned with tune.max_ships.", range=SHIPS),
        Key("split", str, "none", "Split touching ships predicted as one blob: \"watershed\" (distance transform + "
            "watershed) or \"none\".", ("none", "watershed")),
        Key("split_depth", float, 1.5, "Watershed: how far (px) a ship's distance-map peak must rise above the "
            "neck joining it to another to count as its own ship (larger = fewer splits).", range=SPLIT_DEPTH),
        Key("batch_size", int, 32, "Windows per forward pass on each device (whole images: batch_size // 8 images); "
            "with strategy = \"mirrored\" a step runs batch_size x devices.", range=Range(1, 4096)),
        Key("strategy", str, "default", "\"mirrored\": spread each batch over all GPUs of the machine "
            "(`tf.distribute.MirroredStrategy`, the model copied onto each; the replica count is printed once); "
            "\"default\": one device.", ("default", "mirrored")),
        Key("resize", int, 0, "Resize images to this side before predicting and probabilities back (0 = off); match a `full_images` sampler's `size`.", range=Range(16, 16384, also=(0,))),
        Key("max_images", int, 0, "Predict only this many images (0 = all).", range=IMAGES),
    )),
    Section("evaluate", "Scoring on full images: the test set by default.", (
        Key("images", str, "test", "\"test\" (never used for a choice) or \"validation\" (tuned on: not a test figure).",
            ("test", "validation")),
        Key("max_images", int, 0, "Evaluate only this many images (0 = all).", range=IMAGES),
        Key("without_gate", bool, False, "With a [classifier]: also segment the images the gate rejects, to report f2 "
            "without the gate (slower)."),
        Key("scan_thresholds", list[float], [], "Thresholds to scan on the evaluated images (an oracle view: a choice made "
            "on these images is not a test figure; tuning happens on validation, see [tune]).", range=FRACTION),
        Key("scan_min_areas", list[int], [], "min_area values to scan with the thresholds.", range=PIXELS),
        Key("plot_examples", int, 6, "Examples per row (best, worst, false positives) in the overlay grid (0 = no grid).", range=Range(0, 100)),
    )),
    Section("classifier", "Optional ship/no-ship gate: a classifier trained on whole images (resized), "
            "in the same run; images it rejects get an empty row. `name` (\"\" = no gate) plus the "
            "classifier's parameters, and these keys.", (
        Key("image_size", int, 256, "Side the images are resized to for the classifier.", range=Range(32, 4096)),
        Key("ship_fraction", float, 0.5, "Fraction of ship images in each training epoch (balanced by default).", range=OPEN_FRACTION),
        Key("paste_ships", float, 0.0, "Fraction of the ship images of each epoch replaced by a training image without "
            "ships with 1 to 3 real training ships pasted onto it (0 = off): ships on open sea and on land, so the gate "
            "cannot learn \"land => ship\" (see the full_images sampler's paste_ships).", range=FRACTION),
        Key("epochs", int, 10, "Maximum classifier epochs (early stopping on validation loss).", range=EPOCHS),
        Key("early_stopping_patience", int, 4, "Classifier epochs without a lower validation loss before stopping "
            "(0 = off: the best epoch's classifier is kept either way).", range=PATIENCE),
        Key("steps_per_epoch", int, 0, "Batches per epoch (0 = the sampler's length / batch_size).", range=STEPS),
        Key("batch_size", int, 16, "Images per batch.", range=BATCH),
        Key("learning_rate", float, 1e-3, "Adam learning rate.", range=LEARNING_RATE),
        Key("threshold", float, 0.5, "Images with a lower ship probability are predicted empty (when not tuned).", range=FRACTION),
        Key("init_from", str, "", "Start the classifier from other weights: a run directory (its classifier.keras) "
            "or a .keras file, matched by layer name and shape like train.init_from. \"\" = from scratch."),
        Key("tune_threshold", bool, True, "Choose the threshold with the segmenter's threshold and min_area, jointly, "
            "for f2 on the validation images (see [tune])."),
    ), component="classifier", default_component=""),
    Section("tune", "Post-processing chosen on the validation images after training (one joint scan for f2), saved as "
            "postprocess.json in the run directory and used by `predict` unless `--set` names the key.", (
        Key("enabled", bool, True, "Tune after training (needs validation images)."),
        Key("thresholds", list[float], [0.3, 0.4, 0.5, 0.6, 0.7, 0.8], "Segmenter probability thresholds to try.", range=FRACTION),
        Key("min_areas", list[int], [0, 10, 20, 40, 80, 150], "min_area values to try.", range=PIXELS),
        Key("split_depths", list[float], [], "With predict.split = \"watershed\": split depths to try besides "
            "predict.split_depth, in the same scan ([] = keep predict.split_depth).", range=SPLIT_DEPTH),
        Key("windows", bool, True, "With predict.whole_image = true and a fully convolutional model: also try sliding "
            "windows in the scan and predict by windows if they score higher on validation (whole images win ties: "
            "they are ~1.75x faster). The choice is saved as postprocess.json's whole_image."),
        Key("max_ships", list[int], [], "predict.max_ships values to try in the same scan (0 = off is always "
            "tried; ties keep predict.max_ships, then off, then the largest cap). [] = keep predict.max_ships.", range=SHIPS),
        Key("max_images", int, 0, "Validation images to tune on (0 = all).", range=IMAGES),
        Key("objective", str, "f2", "What the scan maximises on the validation images: \"f2\" (their mean f2) or "
            "\"f2_prior_weighted\" (empty and ship images weighed to data.empty_prior, as on Kaggle's test set: "
            "for data whose share of ship images differs, e.g. a ship-rich sample).", ("f2", "f2_prior_weighted")),
        Key("gate_floor", float, 0.1, "Classifier thresholds below this are not tried, and images under it are not "
            "segmented while tuning (they would be rejected at any threshold tried).", range=BELOW_ONE),
    )),
    Section("cv", "k-fold cross-validation (`shiptoolkit cv`): each fold's images are its run's test set, "
            "validation is carved from the rest.", (
        Key("folds", int, 5, "Number of folds (k >= 2).", range=Range(2, 1000)),
        Key("seed", int, 0, "Seed of the fold assignment (a hash of each ImageId with it; stratified by ships, whole "
            "groups of overlapping images kept together with data.split = \"groups\"). Independent of run.seed.", range=SEED),
        Key("fold", int, -1, "The fold whose images are this run's test set (set by `shiptoolkit cv` for each fold's "
            "run); -1 = not a cross-validation run.", range=Range(0, 999, also=(-1,))),
    )),
    Section("plugins", "Local plugins to load before building components.", (
        Key("modules", list[str], [], "Each a `file.py` path (relative to the config file), `package.module` or `package.module:attr`."),
    )),
]}
