"""The ResNet encoder that the ResNet U-Nets and the ResNet classifiers share: its graph, its skip
connections, and the one place its weights are loaded and it is frozen. Also the input-shape check
that every built-in model runs (the plain `unet` and `cnn_classifier` too).

The encoder is classification_models' ResNet without its top: pre-activation basic blocks and an
input batch norm `bn_data` instead of preprocessing, so it takes raw RGB in 0..255. Its layer
names are those of classification_models and segmentation-models 1.0.1, so both libraries' `.h5`
weights load into any model built on it by layer name (see `legacy_h5.py`), and
`encoder_weights="imagenet"` downloads classification_models' ImageNet weights (`pretrained.py`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass

import keras
from keras import layers

from shiptoolkit.models.bands import adapt_arrays
from shiptoolkit.models.legacy_h5 import WeightsError, load_legacy_h5_weights, read_legacy_h5
from shiptoolkit.models.pretrained import IMAGENET, imagenet_weights_path
from shiptoolkit.plugins.contracts import build_component

# Basic blocks per stage; 64 filters in the first stage, doubled at every stage after it.
REPETITIONS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3),
               "resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3), "resnet152": (3, 8, 36, 3)}
# Those built of bottleneck blocks (1x1-3x3-1x1, 4x the stage's filters out) instead of basic blocks.
BOTTLENECK = ("resnet50", "resnet101", "resnet152")
# sm's skip connections (layer names), deepest first: the activations just before each downsampling.
SKIPS = {name: ("stage4_unit1_relu1", "stage3_unit1_relu1", "stage2_unit1_relu1", "relu0") for name in REPETITIONS}
# The encoder halves the input five times: sides must divide by 2**5.
DIVISOR = 32
# classification_models' settings: BN epsilon 2e-5, convs he_uniform without bias, 'valid' padding.
_BN = {"axis": 3, "momentum": 0.99, "epsilon": 2e-5}
_CONV = {"kernel_initializer": "he_uniform", "use_bias": False, "padding": "valid"}


def check_input_shape(input_shape: tuple, divisor: int, name: str, channels: int | None = 3) -> tuple:
    """`input_shape` as a tuple if it is (height, width, channels) with sides divisible by `divisor` (or None).

    Args:
        input_shape: the model's input shape; None sides are left to the images it is called on.
        divisor: what each side must divide by (2 to the number of halvings in the model).
        name: the model's name, for the error message.
        channels: the channels the model demands (3: RGB); None accepts any number >= 1 (the encoders).

    Raises:
        ValueError: naming the nearest valid sizes.

    Example:
        >>> check_input_shape([None, 64, 3], 32, "resnet34_unet")
        (None, 64, 3)
    """
    bands = input_shape[2] if len(input_shape) == 3 else None
    if channels is None and not (isinstance(bands, int) and not isinstance(bands, bool) and bands >= 1):
        raise ValueError(f"{name} expects input_shape (height, width, channels) with channels >= 1 (3 for RGB). "
                         f"Received: input_shape={input_shape}")
    if channels is not None and bands != channels:
        raise ValueError(f"{name} expects input_shape (height, width, {channels}). Received: input_shape={input_shape}")
    for side in input_shape[:2]:
        if side is not None and (side < divisor or side % divisor):
            lower = max(divisor, side // divisor * divisor)
            raise ValueError(f"{name} needs height and width divisible by {divisor} (2**depth). Received: "
                             f"input_shape={input_shape}; nearest valid sizes: {lower}, {lower + divisor}.")
    return tuple(input_shape)


@dataclass(frozen=True)
class Encoder:
    """A built encoder graph: models continue from `output` and `skips`, then `load_and_freeze`."""

    inputs: keras.KerasTensor
    output: keras.KerasTensor
    skips: tuple[keras.KerasTensor | None, ...]  # deepest first, strides 16, 8, 4, 2 (None: no such feature)
    layer_names: tuple[str, ...]  # the layers `load_and_freeze` freezes
    encoder: str  # a key of `REPETITIONS`: which ImageNet weights "imagenet" loads
    # how "imagenet" loads for this family: loader(model, encoder); None: classification_models' file by name
    loader: Callable[[keras.Model, Encoder], None] | None = None

    def load_and_freeze(self, model: keras.Model, weights: str | None = None, freeze: bool = False) -> keras.Model:
        """Load `weights` into `model` and freeze the encoder: the one place both happen for every model.

        Args:
            model: a model built on this encoder.
            weights: "imagenet" (classification_models' ImageNet weights without top, or for the
                keras.applications families Keras's own files (`self.loader`), downloaded once and
                hash-checked, see `pretrained.py`; every encoder layer must receive its weights, the first
                convolution adapted to the input's bands, see `bands.py`), or
                the path of a Keras 2 `.h5` weights or model file (classification_models' or
                segmentation-models'), loaded by layer name; None or "" loads nothing.
            freeze: stop training the encoder's layers except BatchNormalization, as sm's
                `freeze_model`: a frozen BatchNormalization runs in inference mode in Keras, and its
                ImageNet statistics would then never adapt to satellite images.
        """
        check_encoder_weights(weights)
        if weights == IMAGENET:
            (self.loader or _load_classification_models)(model, self)
        elif weights:
            load_legacy_h5_weights(model, weights)
        if freeze:
            for name in self.layer_names:
                layer = model.get_layer(name)
                if not isinstance(layer, layers.BatchNormalization):
                    layer.trainable = False
        return model


def check_encoder_weights(weights: object) -> None:
    """Refuse an `encoder_weights` that is neither "imagenet", a weights file's path, None nor "".

    A word that is no path (no folder, no .h5 / .hdf5 ending, no such file) is a typo: "imagenett"
    would otherwise be reported as a missing file.
    """
    if weights is None or weights == "" or weights == IMAGENET:
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise WeightsError(f'encoder_weights must be "{IMAGENET}", the path of a .h5 weights file, or None / "". '
                           f"Received: encoder_weights={weights!r}")
    text = os.fspath(weights)
    if os.sep in text or "/" in text or text.endswith((".h5", ".hdf5")) or os.path.exists(text):
        return
    close = difflib.get_close_matches(text.lower(), [IMAGENET], n=1, cutoff=0.6)
    hint = f' Did you mean "{close[0]}"?' if close else ""
    raise WeightsError(f'encoder_weights must be "{IMAGENET}", the path of a .h5 weights file, or None / "".{hint} '
                       f"Received: encoder_weights={text!r}")


def set_rgb_weights(layer, saved: list, source: str) -> None:
    """Set `layer`'s weights from an RGB file's `saved` arrays (Keras 2 order: trainable first), adapting the
    input channels' ones (`bands.adapt_arrays`) where the model has another number of bands."""
    variables = layer.trainable_weights + layer.non_trainable_weights
    fitted = adapt_arrays(layer.name, saved, [tuple(v.shape) for v in variables], source)
    for variable, value in zip(variables, fitted, strict=True):
        variable.assign(value)


def _load_classification_models(model: keras.Model, enc: Encoder) -> None:
    """classification_models' ImageNet file into `model` by layer name; every encoder layer must get its weights.
    The layers the input's bands enter (`conv0`, `bn_data`) are adapted where there are not 3."""
    path = imagenet_weights_path(enc.encoder)
    report = load_legacy_h5_weights(model, path, skip_mismatch=True)
    if report["skipped"]:
        saved = read_legacy_h5(path)
        for name in report["skipped"]:
            set_rgb_weights(model.get_layer(name), saved[name], repr(str(path)))
    loaded = set(report["loaded"]) | set(report["skipped"])
    missed = [n for n in enc.layer_names if model.get_layer(n).weights and n not in loaded]
    if missed:
        shown = ", ".join(missed[:5]) + (", ..." if len(missed) > 5 else "")
        raise WeightsError(f"{str(path)!r} is not the {enc.encoder} ImageNet encoder: it has no weights for "
                           f"{len(missed)} of its layers ({shown}).")


def resnet_encoder(encoder: str, input_shape: tuple, model_name: str, channels: int | None = 3) -> Encoder:
    """Build the encoder `encoder` (a key of `REPETITIONS`: "resnet18" ... "resnet152") on a new input named `data`.

    Args:
        encoder: a key of `REPETITIONS`.
        input_shape: (height, width, 3), sides divisible by 32 or None.
        model_name: the name of the model being built, for error messages.
        channels: the input channels demanded (the classifiers' 3); None: any (the registered encoders).
    """
    if encoder not in REPETITIONS:
        raise ValueError(f"encoder must be one of {sorted(REPETITIONS)}. Received: encoder={encoder!r}")
    inputs = keras.Input(check_input_shape(tuple(input_shape), DIVISOR, model_name, channels), name="data")
    output = _resnet(inputs, REPETITIONS[encoder], encoder in BOTTLENECK)
    graph = keras.Model(inputs, output)  # only to find the skip tensors and the encoder's layers by name
    skips = tuple(graph.get_layer(name).output for name in SKIPS[encoder])
    return Encoder(inputs, output, skips, tuple(layer.name for layer in graph.layers), encoder)


def _resnet(inputs, repetitions: tuple[int, ...], bottleneck: bool = False):
    """classification_models' ResNet without its top; returns the final activation."""
    block_fn = _bottleneck_block if bottleneck else _residual_block
    x = layers.BatchNormalization(name="bn_data", scale=False, **_BN)(inputs)
    x = layers.ZeroPadding2D(3)(x)
    x = layers.Conv2D(64, 7, strides=2, name="conv0", **_CONV)(x)
    x = layers.BatchNormalization(name="bn0", **_BN)(x)
    x = layers.Activation("relu", name="relu0")(x)
    x = layers.ZeroPadding2D(1)(x)
    x = layers.MaxPooling2D(3, strides=2, padding="valid", name="pooling0")(x)
    for stage, reps in enumerate(repetitions):
        for block in range(reps):
            first = block == 0
            strides = 2 if first and stage > 0 else 1
            x = block_fn(x, 64 * 2**stage, stage, block, strides, "post" if first else "pre")
    x = layers.BatchNormalization(name="bn1", **_BN)(x)
    return layers.Activation("relu", name="relu1")(x)


def _residual_block(x, filters: int, stage: int, block: int, strides: int, cut: str):
    """Pre-activation basic block (BN-ReLU-conv twice); 'post' cut = 1x1 conv shortcut after BN-ReLU."""
    name = f"stage{stage + 1}_unit{block + 1}_"
    y = layers.BatchNormalization(name=name + "bn1", **_BN)(x)
    y = layers.Activation("relu", name=name + "relu1")(y)
    shortcut = x if cut == "pre" else layers.Conv2D(filters, 1, strides=strides, name=name + "sc", **_CONV)(y)
    y = layers.ZeroPadding2D(1)(y)
    y = layers.Conv2D(filters, 3, strides=strides, name=name + "conv1", **_CONV)(y)
    y = layers.BatchNormalization(name=name + "bn2", **_BN)(y)
    y = layers.Activation("relu", name=name + "relu2")(y)
    y = layers.ZeroPadding2D(1)(y)
    y = layers.Conv2D(filters, 3, name=name + "conv2", **_CONV)(y)
    return layers.Add()([y, shortcut])


def _bottleneck_block(x, filters: int, stage: int, block: int, strides: int, cut: str):
    """Pre-activation bottleneck block (ResNet50/101/152): BN-ReLU, then 1x1, 3x3 (strided), 1x1 x4 convs."""
    name = f"stage{stage + 1}_unit{block + 1}_"
    y = layers.BatchNormalization(name=name + "bn1", **_BN)(x)
    y = layers.Activation("relu", name=name + "relu1")(y)
    shortcut = x if cut == "pre" else layers.Conv2D(filters * 4, 1, strides=strides, name=name + "sc", **_CONV)(y)
    y = layers.Conv2D(filters, 1, name=name + "conv1", **_CONV)(y)
    y = layers.BatchNormalization(name=name + "bn2", **_BN)(y)
    y = layers.Activation("relu", name=name + "relu2")(y)
    y = layers.ZeroPadding2D(1)(y)
    y = layers.Conv2D(filters, 3, strides=strides, name=name + "conv2", **_CONV)(y)
    y = layers.BatchNormalization(name=name + "bn3", **_BN)(y)
    y = layers.Activation("relu", name=name + "relu3")(y)
    y = layers.Conv2D(filters * 4, 1, name=name + "conv3", **_CONV)(y)
    return layers.Add()([y, shortcut])


def create_encoder(name: str, input_shape: tuple, model_name: str) -> Encoder:
    """The registered encoder `name` (the `encoder` kind, `register_encoders` hook) built on a new input.

    Args:
        name: a registered encoder, e.g. "resnet34"; an unknown name lists the known ones.
        input_shape: (height, width, channels) of the model being built.
        model_name: the name of the model being built, for error messages.
    """
    return build_component("encoder", name, input_shape=tuple(input_shape), model_name=model_name)


def resnet18(input_shape: tuple = (None, None, 3), model_name: str = "resnet18") -> Encoder:
    """ResNet18 (classification_models', segmentation-models' `resnet18`): 11.2M parameters, raw RGB in 0..255.

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return resnet_encoder("resnet18", input_shape, model_name, channels=None)


def resnet34(input_shape: tuple = (None, None, 3), model_name: str = "resnet34") -> Encoder:
    """ResNet34 (classification_models', segmentation-models' `resnet34`): 21.3M parameters, raw RGB in 0..255.

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return resnet_encoder("resnet34", input_shape, model_name, channels=None)


def resnet50(input_shape: tuple = (None, None, 3), model_name: str = "resnet50") -> Encoder:
    """ResNet50 (classification_models', segmentation-models' `resnet50`, bottleneck blocks): 23.6M parameters,
    raw RGB in 0..255.

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return resnet_encoder("resnet50", input_shape, model_name, channels=None)


def resnet101(input_shape: tuple = (None, None, 3), model_name: str = "resnet101") -> Encoder:
    """ResNet101 (classification_models', segmentation-models' `resnet101`, bottleneck blocks): 42.6M parameters,
    raw RGB in 0..255.

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return resnet_encoder("resnet101", input_shape, model_name, channels=None)


def resnet152(input_shape: tuple = (None, None, 3), model_name: str = "resnet152") -> Encoder:
    """ResNet152 (classification_models', segmentation-models' `resnet152`, bottleneck blocks): 58.2M parameters,
    raw RGB in 0..255.

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return resnet_encoder("resnet152", input_shape, model_name, channels=None)


# What `register_encoders` registers, each under its function's name.
RESNET_ENCODERS = (resnet18, resnet34, resnet50, resnet101, resnet152)

