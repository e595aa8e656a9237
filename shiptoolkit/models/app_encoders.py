"""The registered keras.applications encoders: one small documented factory each (`applications.py` builds them).

One factory per encoder rather than ones generated in a loop: the registry, the CLI's `components`
and the docs' references read each factory's own signature and docstring. Every one takes raw
0..255 images with any number of bands (`input_shape` (H, W, C)); `encoder_weights = "imagenet"` of
the architecture built on it loads Keras's ImageNet file, its first convolution adapted to C bands.
"""

from __future__ import annotations

from shiptoolkit.models.applications import app_encoder
from shiptoolkit.models.encoders import Encoder


def efficientnetb0(input_shape: tuple = (None, None, 3), model_name: str = "efficientnetb0") -> Encoder:
    """EfficientNetB0 (keras.applications): 4.0M parameters, raw 0..255 input.

    segmentation-models' `efficientnetb0` (its skip layers); (x/255 - mean) / std inside (Keras's Normalization).

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("efficientnetb0", input_shape, model_name)


def efficientnetb1(input_shape: tuple = (None, None, 3), model_name: str = "efficientnetb1") -> Encoder:
    """EfficientNetB1 (keras.applications): 6.6M parameters, raw 0..255 input.

    segmentation-models' `efficientnetb1` (its skip layers); (x/255 - mean) / std inside (Keras's Normalization).

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("efficientnetb1", input_shape, model_name)


def efficientnetb2(input_shape: tuple = (None, None, 3), model_name: str = "efficientnetb2") -> Encoder:
    """EfficientNetB2 (keras.applications): 7.8M parameters, raw 0..255 input.

    segmentation-models' `efficientnetb2` (its skip layers); (x/255 - mean) / std inside (Keras's Normalization).

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("efficientnetb2", input_shape, model_name)


def efficientnetb3(input_shape: tuple = (None, None, 3), model_name: str = "efficientnetb3") -> Encoder:
    """EfficientNetB3 (keras.applications): 10.8M parameters, raw 0..255 input.

    segmentation-models' `efficientnetb3` (its skip layers); (x/255 - mean) / std inside (Keras's Normalization).

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("efficientnetb3", input_shape, model_name)


def efficientnetb4(input_shape: tuple = (None, None, 3), model_name: str = "efficientnetb4") -> Encoder:
    """EfficientNetB4 (keras.applications): 17.7M parameters, raw 0..255 input.

    segmentation-models' `efficientnetb4` (its skip layers); (x/255 - mean) / std inside (Keras's Normalization).

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("efficientnetb4", input_shape, model_name)


def efficientnetb5(input_shape: tuple = (None, None, 3), model_name: str = "efficientnetb5") -> Encoder:
    """EfficientNetB5 (keras.applications): 28.5M parameters, raw 0..255 input.

    segmentation-models' `efficientnetb5` (its skip layers); (x/255 - mean) / std inside (Keras's Normalization).

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("efficientnetb5", input_shape, model_name)


def efficientnetb6(input_shape: tuple = (None, None, 3), model_name: str = "efficientnetb6") -> Encoder:
    """EfficientNetB6 (keras.applications): 41.0M parameters, raw 0..255 input.

    segmentation-models' `efficientnetb6` (its skip layers); (x/255 - mean) / std inside (Keras's Normalization).

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("efficientnetb6", input_shape, model_name)


def efficientnetb7(input_shape: tuple = (None, None, 3), model_name: str = "efficientnetb7") -> Encoder:
    """EfficientNetB7 (keras.applications): 64.1M parameters, raw 0..255 input.

    segmentation-models' `efficientnetb7` (its skip layers); (x/255 - mean) / std inside (Keras's Normalization).

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("efficientnetb7", input_shape, model_name)


def efficientnetv2b0(input_shape: tuple = (None, None, 3), model_name: str = "efficientnetv2b0") -> Encoder:
    """EfficientNetV2B0 (keras.applications): 5.9M parameters, raw 0..255 input.

    (x/255 - mean) / std inside.

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("efficientnetv2b0", input_shape, model_name)


def efficientnetv2b1(input_shape: tuple = (None, None, 3), model_name: str = "efficientnetv2b1") -> Encoder:
    """EfficientNetV2B1 (keras.applications): 6.9M parameters, raw 0..255 input.

    (x/255 - mean) / std inside.

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("efficientnetv2b1", input_shape, model_name)


def efficientnetv2b2(input_shape: tuple = (None, None, 3), model_name: str = "efficientnetv2b2") -> Encoder:
    """EfficientNetV2B2 (keras.applications): 8.8M parameters, raw 0..255 input.

    (x/255 - mean) / std inside.

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("efficientnetv2b2", input_shape, model_name)


def efficientnetv2b3(input_shape: tuple = (None, None, 3), model_name: str = "efficientnetv2b3") -> Encoder:
    """EfficientNetV2B3 (keras.applications): 12.9M parameters, raw 0..255 input.

    (x/255 - mean) / std inside.

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("efficientnetv2b3", input_shape, model_name)


def efficientnetv2s(input_shape: tuple = (None, None, 3), model_name: str = "efficientnetv2s") -> Encoder:
    """EfficientNetV2S (keras.applications): 20.3M parameters, raw 0..255 input.

    X/128 - 1 inside.

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("efficientnetv2s", input_shape, model_name)


def mobilenetv2(input_shape: tuple = (None, None, 3), model_name: str = "mobilenetv2") -> Encoder:
    """MobileNetV2 (keras.applications): 2.3M parameters, raw 0..255 input.

    segmentation-models' `mobilenetv2` (its skip layers); x/127.5 - 1 inside.

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("mobilenetv2", input_shape, model_name)


def mobilenetv3large(input_shape: tuple = (None, None, 3), model_name: str = "mobilenetv3large") -> Encoder:
    """MobileNetV3Large (keras.applications): 3.0M parameters, raw 0..255 input.

    X/127.5 - 1 inside.

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("mobilenetv3large", input_shape, model_name)


def mobilenetv3small(input_shape: tuple = (None, None, 3), model_name: str = "mobilenetv3small") -> Encoder:
    """MobileNetV3Small (keras.applications): 0.9M parameters, raw 0..255 input.

    X/127.5 - 1 inside.

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("mobilenetv3small", input_shape, model_name)


def densenet121(input_shape: tuple = (None, None, 3), model_name: str = "densenet121") -> Encoder:
    """DenseNet121 (keras.applications): 7.0M parameters, raw 0..255 input.

    segmentation-models' `densenet121` (its skip layers); (x/255 - mean) / std inside.

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("densenet121", input_shape, model_name)


def densenet169(input_shape: tuple = (None, None, 3), model_name: str = "densenet169") -> Encoder:
    """DenseNet169 (keras.applications): 12.6M parameters, raw 0..255 input.

    segmentation-models' `densenet169` (its skip layers); (x/255 - mean) / std inside.

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("densenet169", input_shape, model_name)


def densenet201(input_shape: tuple = (None, None, 3), model_name: str = "densenet201") -> Encoder:
    """DenseNet201 (keras.applications): 18.3M parameters, raw 0..255 input.

    segmentation-models' `densenet201` (its skip layers); (x/255 - mean) / std inside.

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("densenet201", input_shape, model_name)


def convnext_tiny(input_shape: tuple = (None, None, 3), model_name: str = "convnext_tiny") -> Encoder:
    """ConvNeXtTiny (keras.applications): 27.8M parameters, raw 0..255 input.

    (x/255 - mean) / std inside; stem stride 4: no stride-2 skip.

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("convnext_tiny", input_shape, model_name)


def convnext_small(input_shape: tuple = (None, None, 3), model_name: str = "convnext_small") -> Encoder:
    """ConvNeXtSmall (keras.applications): 49.5M parameters, raw 0..255 input.

    (x/255 - mean) / std inside; stem stride 4: no stride-2 skip.

    Args:
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the model being built, for error messages (passed by the architecture).
    """
    return app_encoder("convnext_small", input_shape, model_name)


# What `register_encoders` registers, each under its function's name.
APPLICATION_ENCODERS = (efficientnetb0, efficientnetb1, efficientnetb2, efficientnetb3, efficientnetb4,
                        efficientnetb5, efficientnetb6, efficientnetb7, efficientnetv2b0, efficientnetv2b1,
                        efficientnetv2b2, efficientnetv2b3, efficientnetv2s, mobilenetv2, mobilenetv3large,
                        mobilenetv3small, densenet121, densenet169, densenet201, convnext_tiny, convnext_small)
