"""The plain U-Net of the seed project, with its defaults (32..256 filters, bottleneck 512)."""

from __future__ import annotations

import keras
from keras import layers

from shiptoolkit.models.encoders import check_input_shape
from shiptoolkit.plugins.registry import Range, param_ranges


def _conv_block(x, filters: int, batch_norm: bool, name: str):
    for k in ("a", "b"):
        x = layers.Conv2D(filters, 3, padding="same", kernel_initializer="he_normal", use_bias=not batch_norm,
                          name=f"{name}{k}_conv")(x)
        if batch_norm:
            # momentum 0.9 (PyTorch's default): moving statistics settle within short CPU runs
            x = layers.BatchNormalization(momentum=0.9, name=f"{name}{k}_bn")(x)
        x = layers.Activation("relu", name=f"{name}{k}_relu")(x)
    return x


# Checked at config load (`run --dry-run`), not only when the model is built. depth <= 8: deeper
# needs sides divisible by 512, which no crop of a 768 px image is.
@param_ranges(classes=(1, None), base_filters=(1, None), depth=(1, 8), dropout=Range(0.0, 1.0, high_open=True))
def unet(input_shape: tuple = (128, 128, 3), classes: int = 1, base_filters: int = 32, depth: int = 4,
         dropout: float = 0.3, batch_norm: bool = False) -> keras.Model:
    """Plain U-Net (the seed's): conv blocks down and up with skip connections, sigmoid output.

    Input is raw RGB in 0..255; the model divides by 255 itself.

    Args:
        input_shape: (height, width, 3); height and width divisible by 2**depth, or None for any
            such size (a patch-trained model can then predict whole images).
        classes: output channels, each with its own sigmoid.
        base_filters: filters of the first level; each level down doubles them.
        depth: number of down-sampling levels (the seed: 4, so 32, 64, 128, 256, bottleneck 512).
        dropout: dropout rate at the deepest encoder level and the bottleneck (0 = none).
        batch_norm: add batch normalisation after every convolution.

    Example:
        >>> model = unet((128, 128, 3))
        >>> model.output_shape
        (None, 128, 128, 1)
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1. Received: depth={depth}")
    if classes < 1:
        raise ValueError(f"classes must be >= 1. Received: classes={classes}")
    if base_filters < 1:
        raise ValueError(f"base_filters must be >= 1. Received: base_filters={base_filters}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout}")
    input_shape = check_input_shape(input_shape, 2**depth, "unet")
    inputs = keras.Input(input_shape, name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    skips = []
    for level in range(depth):
        x = _conv_block(x, base_filters * 2**level, batch_norm, f"down{level}")
        if level == depth - 1 and dropout:
            x = layers.Dropout(dropout, name=f"down{level}_dropout")(x)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
    x = _conv_block(x, base_filters * 2**depth, batch_norm, "bottleneck")
    if dropout:
        x = layers.Dropout(dropout, name="bottleneck_dropout")(x)
    for level in reversed(range(depth)):
        x = layers.Conv2DTranspose(base_filters * 2**level, 3, strides=2, padding="same",
                                   name=f"up{level}_transpose")(x)
        x = layers.Concatenate(name=f"up{level}_concat")([x, skips[level]])
        x = _conv_block(x, base_filters * 2**level, batch_norm, f"up{level}")
    x = layers.Conv2D(base_filters, 3, padding="same", activation="relu", kernel_initializer="he_normal",
                      name="head_conv")(x)
    outputs = layers.Conv2D(classes, 1, activation="sigmoid", name="mask", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="unet")
