"""U-Nets on the shared ResNet encoder, layer for layer segmentation-models 1.0.1's `sm.Unet('resnet34')`.

The encoder (`encoders.py`) is classification_models' ResNet; the decoder here is sm's
"upsampling" blocks. Layer names match both libraries, so weights saved by segmentation-models or
classification_models load by name from their `.h5` files, and `encoder_weights="imagenet"` downloads
the latter's ImageNet encoder weights, as sm's `encoder_weights='imagenet'`. 24,456,154 parameters for
resnet34, 1 class.
"""

from __future__ import annotations

import keras
from keras import layers

from shiptoolkit.models.encoders import resnet_encoder
from shiptoolkit.plugins.registry import param_ranges

# The registered factories' ranges, checked at config load; decoder_filters: every item.
_ranges = param_ranges(classes=(1, None), decoder_filters=(1, None))


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
    if classes < 1:
        raise ValueError(f"classes must be >= 1. Received: classes={classes}")
    if len(decoder_filters) != 5 or any(f < 1 for f in decoder_filters):
        raise ValueError(f"decoder_filters must be 5 positive numbers. Received: decoder_filters={decoder_filters}")
    enc = resnet_encoder(encoder, input_shape, f"{encoder}_unet")
    x = enc.output
    for stage, filters in enumerate(decoder_filters):
        x = layers.UpSampling2D(2, name=f"decoder_stage{stage}_upsampling")(x)
        if stage < len(enc.skips):  # the last stage has no skip: it upsamples to the input size
            x = layers.Concatenate(axis=3, name=f"decoder_stage{stage}_concat")([x, enc.skips[stage]])
        x = _conv_bn_relu(x, filters, f"decoder_stage{stage}a")
        x = _conv_bn_relu(x, filters, f"decoder_stage{stage}b")
    x = layers.Conv2D(classes, 3, padding="same", use_bias=True, kernel_initializer="glorot_uniform",
                      name="final_conv")(x)
    # float32 even under mixed precision: the losses' logs and divisions need its range
    outputs = layers.Activation("sigmoid", name="sigmoid", dtype="float32")(x)
    model = keras.Model(enc.inputs, outputs, name=f"{encoder}_unet")
    return enc.load_and_freeze(model, encoder_weights, encoder_freeze)


# One small factory per variant rather than ones generated in a loop: the registry, the CLI's
# `components` and the docs' references read each factory's own signature and docstring.
@_ranges
def resnet34_unet(input_shape: tuple = (None, None, 3), classes: int = 1, encoder_weights: str | None = None,
                  encoder_freeze: bool = False, decoder_filters: tuple[int, ...] = (256, 128, 64, 32, 16)
                  ) -> keras.Model:
    """U-Net with a ResNet34 encoder, identical to segmentation-models' `Unet('resnet34')`.

    Input is raw RGB in 0..255 (the encoder's first layer, `bn_data`, normalises).

    Args:
        input_shape: (height, width, 3), sides divisible by 32 or None.
        classes: output channels, each with its own sigmoid.
        encoder_weights: "imagenet" for classification_models' ImageNet encoder weights, the
            ones segmentation-models uses (`resnet34_imagenet_1000_no_top.h5`, downloaded once into
            ~/.keras/shiptoolkit and md5-checked; SHIPTOOLKIT_WEIGHTS_URL sets a mirror), or the
            path of an `.h5` file to load by layer name (that file or a segmentation-models model or
            weights file; a path is never downloaded), or None / "" for random weights.
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
        encoder_weights: "imagenet" for classification_models' ImageNet encoder weights
            (`resnet18_imagenet_1000_no_top.h5`, downloaded once into ~/.keras/shiptoolkit and
            md5-checked), or the path of an `.h5` file to load by layer name, or None / "" (see
            `resnet34_unet`).
        encoder_freeze: freeze the encoder (BatchNormalization layers stay trainable, as in sm).
        decoder_filters: filters of the five decoder stages.
    """
    return resnet_unet("resnet18", input_shape, classes, encoder_weights, encoder_freeze, decoder_filters)


# What `register_backbones` registers, each under its function's name.
RESNET_UNETS = (resnet34_unet, resnet18_unet)
