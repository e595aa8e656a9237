"""U-Net with a ResNet encoder, layer for layer segmentation-models 1.0.1's `sm.Unet('resnet34')`.

The encoder is classification_models' ResNet (pre-activation basic blocks, an input batch
norm `bn_data` instead of preprocessing), the decoder sm's "upsampling" blocks. Layer names
match both libraries, so weights saved by segmentation-models or classification_models load by
name from their `.h5` files (see `legacy_h5.py`). 24,456,154 parameters for resnet34, 1 class.
"""

from __future__ import annotations

import keras
from keras import layers

from shiptoolkit.backbones.unet import _check_input_shape
from shiptoolkit.registry import param_ranges

REPETITIONS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
# sm's skip connections for ResNets, deepest first.
SKIPS = ("stage4_unit1_relu1", "stage3_unit1_relu1", "stage2_unit1_relu1", "relu0")
# classification_models' settings: BN epsilon 2e-5, convs he_uniform without bias, 'valid' padding.
_BN = {"axis": 3, "momentum": 0.99, "epsilon": 2e-5}
_CONV = {"kernel_initializer": "he_uniform", "use_bias": False, "padding": "valid"}
# The registered factories' ranges, checked at config load; decoder_filters: every item.
_ranges = param_ranges(classes=(1, None), decoder_filters=(1, None))


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


def resnet_encoder(inputs, repetitions: tuple[int, ...]):
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


def _conv_bn_relu(x, filters: int, name: str):
    """sm's Conv3x3BnReLU: conv without bias, BN with Keras defaults, ReLU."""
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_uniform",
                      name=name + "_conv")(x)
    x = layers.BatchNormalization(axis=3, name=name + "_bn")(x)
    return layers.Activation("relu", name=name + "_relu")(x)


def resnet_unet(encoder: str = "resnet34", input_shape: tuple = (None, None, 3), classes: int = 1,
                encoder_weights: str | None = None, encoder_freeze: bool = False,
                decoder_filters: tuple[int, ...] = (256, 128, 64, 32, 16)) -> keras.Model:
    """Build a ResNet U-Net; see `resnet34_unet` for the arguments."""
    if encoder not in REPETITIONS:
        raise ValueError(f"encoder must be one of {sorted(REPETITIONS)}. Received: encoder={encoder!r}")
    if classes < 1:
        raise ValueError(f"classes must be >= 1. Received: classes={classes}")
    if len(decoder_filters) != 5 or any(f < 1 for f in decoder_filters):
        raise ValueError(f"decoder_filters must be 5 positive numbers. Received: decoder_filters={decoder_filters}")
    input_shape = _check_input_shape(tuple(input_shape), 32, f"{encoder}_unet")
    inputs = keras.Input(input_shape, name="data")
    encoder_output = resnet_encoder(inputs, REPETITIONS[encoder])
    encoder_model = keras.Model(inputs, encoder_output)  # to find the skip tensors and freeze by layer
    skips = [encoder_model.get_layer(name).output for name in SKIPS]
    x = encoder_output
    for stage, filters in enumerate(decoder_filters):
        x = layers.UpSampling2D(2, name=f"decoder_stage{stage}_upsampling")(x)
        if stage < len(skips):
            x = layers.Concatenate(axis=3, name=f"decoder_stage{stage}_concat")([x, skips[stage]])
        x = _conv_bn_relu(x, filters, f"decoder_stage{stage}a")
        x = _conv_bn_relu(x, filters, f"decoder_stage{stage}b")
    x = layers.Conv2D(classes, 3, padding="same", use_bias=True, kernel_initializer="glorot_uniform",
                      name="final_conv")(x)
    outputs = layers.Activation("sigmoid", name="sigmoid", dtype="float32")(x)
    model = keras.Model(inputs, outputs, name=f"{encoder}_unet")
    if encoder_weights:
        from shiptoolkit.backbones.legacy_h5 import load_legacy_h5_weights

        load_legacy_h5_weights(model, encoder_weights)
    if encoder_freeze:
        # As sm's freeze_model: encoder layers stop training, except BatchNormalization.
        for layer in encoder_model.layers:
            if not isinstance(layer, layers.BatchNormalization):
                model.get_layer(layer.name).trainable = False
    return model


@_ranges
def resnet34_unet(input_shape: tuple = (None, None, 3), classes: int = 1, encoder_weights: str | None = None,
                  encoder_freeze: bool = False, decoder_filters: tuple[int, ...] = (256, 128, 64, 32, 16)
                  ) -> keras.Model:
    """U-Net with a ResNet34 encoder, identical to segmentation-models' `Unet('resnet34')`.

    Input is raw RGB in 0..255 (the encoder's first layer, `bn_data`, normalises).

    Args:
        input_shape: (height, width, 3), sides divisible by 32 or None.
        classes: output channels, each with its own sigmoid.
        encoder_weights: path of an `.h5` file to load by layer name: classification_models'
            `resnet34_imagenet_1000_no_top.h5`, or a segmentation-models model or weights file.
            Nothing is downloaded.
        encoder_freeze: freeze the encoder (BatchNormalization layers stay trainable, as in sm).
        decoder_filters: filters of the five decoder stages.

    Example:
        >>> model = resnet34_unet((128, 128, 3))
        >>> model.count_params()
        24456154
    """
    return resnet_unet("resnet34", input_shape, classes, encoder_weights, encoder_freeze, decoder_filters)


@_ranges
def resnet18_unet(input_shape: tuple = (None, None, 3), classes: int = 1, encoder_weights: str | None = None,
                  encoder_freeze: bool = False, decoder_filters: tuple[int, ...] = (256, 128, 64, 32, 16)
                  ) -> keras.Model:
    """U-Net with a ResNet18 encoder, identical to segmentation-models' `Unet('resnet18')`.

    Args:
        input_shape: (height, width, 3), sides divisible by 32 or None.
        classes: output channels, each with its own sigmoid.
        encoder_weights: path of an `.h5` file to load by layer name (see `resnet34_unet`).
        encoder_freeze: freeze the encoder (BatchNormalization layers stay trainable, as in sm).
        decoder_filters: filters of the five decoder stages.
    """
    return resnet_unet("resnet18", input_shape, classes, encoder_weights, encoder_freeze, decoder_filters)
