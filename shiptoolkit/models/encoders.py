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

from dataclasses import dataclass

import keras
from keras import layers

from shiptoolkit.models.legacy_h5 import WeightsError, load_legacy_h5_weights
from shiptoolkit.models.pretrained import IMAGENET, imagenet_weights_path

# Basic blocks per stage; 64 filters in the first stage, doubled at every stage after it.
REPETITIONS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
# sm's skip connections (layer names), deepest first: the activations just before each downsampling.
SKIPS = {name: ("stage4_unit1_relu1", "stage3_unit1_relu1", "stage2_unit1_relu1", "relu0") for name in REPETITIONS}
# The encoder halves the input five times: sides must divide by 2**5.
DIVISOR = 32
# classification_models' settings: BN epsilon 2e-5, convs he_uniform without bias, 'valid' padding.
_BN = {"axis": 3, "momentum": 0.99, "epsilon": 2e-5}
_CONV = {"kernel_initializer": "he_uniform", "use_bias": False, "padding": "valid"}


def check_input_shape(input_shape: tuple, divisor: int, name: str) -> tuple:
    """`input_shape` as a tuple if it is (height, width, 3) with sides divisible by `divisor` (or None).

    Args:
        input_shape: the model's input shape; None sides are left to the images it is called on.
        divisor: what each side must divide by (2 to the number of halvings in the model).
        name: the model's name, for the error message.

    Raises:
        ValueError: naming the nearest valid sizes.

    Example:
        >>> check_input_shape([None, 64, 3], 32, "resnet34_unet")
        (None, 64, 3)
    """
    if len(input_shape) != 3 or input_shape[2] != 3:
        raise ValueError(f"{name} expects input_shape (height, width, 3). Received: input_shape={input_shape}")
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
    skips: tuple[keras.KerasTensor, ...]  # deepest first, as `SKIPS`
    layer_names: tuple[str, ...]  # the layers `load_and_freeze` freezes
    encoder: str  # a key of `REPETITIONS`: which ImageNet weights "imagenet" loads

    def load_and_freeze(self, model: keras.Model, weights: str | None = None, freeze: bool = False) -> keras.Model:
        """Load `weights` into `model` and freeze the encoder: the one place both happen for every model.

        Args:
            model: a model built on this encoder.
            weights: "imagenet" (classification_models' ImageNet weights without top, downloaded once
                and md5-checked, see `pretrained.py`; every encoder layer must receive its weights), or
                the path of a Keras 2 `.h5` weights or model file (classification_models' or
                segmentation-models'), loaded by layer name; None or "" loads nothing.
            freeze: stop training the encoder's layers except BatchNormalization, as sm's
                `freeze_model`: a frozen BatchNormalization runs in inference mode in Keras, and its
                ImageNet statistics would then never adapt to satellite images.
        """
        if weights == IMAGENET:
            path = imagenet_weights_path(self.encoder)
            loaded = set(load_legacy_h5_weights(model, path)["loaded"])
            missed = [n for n in self.layer_names if model.get_layer(n).weights and n not in loaded]
            if missed:
                shown = ", ".join(missed[:5]) + (", ..." if len(missed) > 5 else "")
                raise WeightsError(f"{str(path)!r} is not the {self.encoder} ImageNet encoder: it has no weights for "
                                   f"{len(missed)} of its layers ({shown}).")
        elif weights:
            load_legacy_h5_weights(model, weights)
        if freeze:
            for name in self.layer_names:
                layer = model.get_layer(name)
                if not isinstance(layer, layers.BatchNormalization):
                    layer.trainable = False
        return model


def resnet_encoder(encoder: str, input_shape: tuple, model_name: str) -> Encoder:
    """Build the encoder `encoder` ("resnet18" or "resnet34") on a new input named `data`.

    Args:
        encoder: a key of `REPETITIONS`.
        input_shape: (height, width, 3), sides divisible by 32 or None.
        model_name: the name of the model being built, for error messages.
    """
    if encoder not in REPETITIONS:
        raise ValueError(f"encoder must be one of {sorted(REPETITIONS)}. Received: encoder={encoder!r}")
    inputs = keras.Input(check_input_shape(tuple(input_shape), DIVISOR, model_name), name="data")
    output = _resnet(inputs, REPETITIONS[encoder])
    graph = keras.Model(inputs, output)  # only to find the skip tensors and the encoder's layers by name
    skips = tuple(graph.get_layer(name).output for name in SKIPS[encoder])
    return Encoder(inputs, output, skips, tuple(layer.name for layer in graph.layers), encoder)


def _resnet(inputs, repetitions: tuple[int, ...]):
    """classification_models' ResNet without its top; returns the final activation."""
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
            x = _residual_block(x, 64 * 2**stage, stage, block, strides, "post" if first else "pre")
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
