"""Image-level ship/no-ship classifiers: the gate that keeps the segmenter off empty sea.

78% of the images hold no ship, and an empty image scores 1 only if nothing at all is
predicted on it. The competition's top solutions therefore first asked *whether* an image has
a ship, and segmented only those. These models answer that question: raw RGB in 0..255 in,
one sigmoid probability per image out. Built-ins register through the same plugin hook as
third-party classifiers (`register_classifiers`).

Both heads pool the last feature map by average *and* by maximum: one small ship lights up a
few cells that an average alone would wash out.
"""

from __future__ import annotations

import keras
from keras import layers

from shiptoolkit.models.encoders import check_input_shape, resnet_encoder
from shiptoolkit.plugins.hookspecs import hookimpl
from shiptoolkit.plugins.registry import Range, param_ranges

_DROPOUT = Range(0.0, 1.0, high_open=True)  # a rate of 1 would drop every feature


def _head(features, dropout: float):
    pooled = layers.Concatenate(name="pool")([layers.GlobalAveragePooling2D(name="avg_pool")(features),
                                              layers.GlobalMaxPooling2D(name="max_pool")(features)])
    if dropout:
        pooled = layers.Dropout(dropout, name="head_dropout")(pooled)
    return layers.Dense(1, activation="sigmoid", name="ship_probability", dtype="float32")(pooled)


def resnet_classifier(encoder: str, input_shape: tuple, encoder_weights: str | None, encoder_freeze: bool,
                      dropout: float) -> keras.Model:
    """The ResNet U-Nets' encoder (`backbones.encoders`, same layer names) with the pooled sigmoid head."""
    enc = resnet_encoder(encoder, input_shape, f"{encoder}_classifier")
    model = keras.Model(enc.inputs, _head(enc.output, dropout), name=f"{encoder}_classifier")
    return enc.load_and_freeze(model, encoder_weights, encoder_freeze)


# One small factory per variant rather than ones generated in a loop: the registry, the CLI's
# `components` and the docs' references read each factory's own signature and docstring.
@param_ranges(dropout=_DROPOUT)
def resnet34_classifier(input_shape: tuple = (256, 256, 3), encoder_weights: str | None = None,
                        encoder_freeze: bool = False, dropout: float = 0.2) -> keras.Model:
    """ResNet34 encoder + average/max pooling + sigmoid: does this image hold a ship?

    The encoder is the one of `resnet34_unet` (`backbones.encoders`, same layer names), so
    classification_models' `resnet34_imagenet_1000_no_top.h5` loads into it by name.

    Args:
        input_shape: (height, width, 3), sides divisible by 32 (set from classifier.image_size).
        encoder_weights: "imagenet" for classification_models' ImageNet encoder weights
            (`resnet34_imagenet_1000_no_top.h5`, downloaded once into ~/.keras/shiptoolkit and
            md5-checked; SHIPTOOLKIT_WEIGHTS_URL sets a mirror), or the path of an `.h5` file to
            load by layer name (a path is never downloaded), or None / "" for random weights.
        encoder_freeze: freeze the encoder (BatchNormalization layers stay trainable).
        dropout: dropout rate before the output layer.
    """
    return resnet_classifier("resnet34", input_shape, encoder_weights, encoder_freeze, dropout)


@param_ranges(dropout=_DROPOUT)
def resnet18_classifier(input_shape: tuple = (256, 256, 3), encoder_weights: str | None = None,
                        encoder_freeze: bool = False, dropout: float = 0.2) -> keras.Model:
    """ResNet18 encoder + average/max pooling + sigmoid: a lighter `resnet34_classifier`.

    Args:
        input_shape: (height, width, 3), sides divisible by 32 (set from classifier.image_size).
        encoder_weights: "imagenet" for classification_models' ImageNet encoder weights
            (`resnet18_imagenet_1000_no_top.h5`, downloaded once into ~/.keras/shiptoolkit and
            md5-checked), or the path of an `.h5` file to load by layer name, or None / "" (see
            `resnet34_classifier`).
        encoder_freeze: freeze the encoder (BatchNormalization layers stay trainable).
        dropout: dropout rate before the output layer.
    """
    return resnet_classifier("resnet18", input_shape, encoder_weights, encoder_freeze, dropout)


@param_ranges(base_filters=(1, None), depth=(1, None), stem_stride=(1, None), dropout=_DROPOUT)
def cnn_classifier(input_shape: tuple = (256, 256, 3), base_filters: int = 16, depth: int = 5,
                   dropout: float = 0.2, stem_stride: int = 1) -> keras.Model:
    """Small plain CNN (conv-BN-ReLU blocks, max pooling) + average/max pooling + sigmoid.

    Trains in minutes on a CPU: the gate for quick experiments and the synthetic data.

    Args:
        input_shape: (height, width, 3), sides divisible by 2**depth (set from classifier.image_size).
        base_filters: filters of the first block, doubled at every level.
        depth: number of conv blocks, each followed by 2x2 max pooling.
        dropout: dropout rate before the output layer.
        stem_stride: stride of the first convolution (2: a larger image for the cost of one half
            its side, e.g. image_size 384 at about the cost of 192 with a learned downsampling).
    """
    if base_filters < 1 or depth < 1 or stem_stride < 1:
        raise ValueError(f"base_filters, depth and stem_stride must be >= 1. Received: {base_filters=}, {depth=}, "
                         f"{stem_stride=}")
    input_shape = check_input_shape(tuple(input_shape), 2**depth * stem_stride, "cnn_classifier")
    inputs = keras.Input(input_shape, name="image")
    x = layers.Rescaling(1 / 255, name="scale")(inputs)
    for level in range(depth):
        filters = base_filters * 2**level
        x = layers.Conv2D(filters, 3, strides=stem_stride if level == 0 else 1, padding="same", use_bias=False,
                          name=f"block{level}_conv")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"block{level}_bn")(x)
        x = layers.Activation("relu", name=f"block{level}_relu")(x)
        x = layers.MaxPooling2D(2, name=f"block{level}_pool")(x)
    return keras.Model(inputs, _head(x, dropout), name="cnn_classifier")


@hookimpl
def register_classifiers(register):
    for factory in (cnn_classifier, resnet34_classifier, resnet18_classifier):
        register(factory.__name__, factory)
