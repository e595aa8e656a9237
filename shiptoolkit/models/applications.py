"""Encoders wrapping keras.applications: EfficientNet, EfficientNetV2, MobileNetV2/V3, DenseNet, ConvNeXt.

Each is the keras.applications model without its top, built on the encoder's own input (so its
layers, with Keras's names, are layers of the model built on it), preceded by the preprocessing its
ImageNet weights expect: the encoders take raw 0..255 images, as every shiptoolkit model.

Skips (deepest first, strides 16, 8, 4, 2) are named per family in `SPECS` and checked by their
sizes in tests/test_encoders.py. "name" is that layer's output, "<name" the tensor going *into* it
(where the feature has no stable name of its own: MobileNetV3's activations and ConvNeXt's stage
outputs are unnamed). Where segmentation-models 1.0.1 has the encoder its feature layers are used:
EfficientNet's `block{6,4,3,2}a_expand_activation` (qubvel's efficientnet, same names in Keras),
MobileNetV2's `block_{13,6,3,1}_expand_relu`, DenseNet's layers 311/367/479, 139, 51, 4
(`pool4_conv`, `pool3_conv`, `pool2_conv`, `conv1_relu`). The others take the same place: the
activation before each downsampling (MobileNetV3), or the last stage output at each stride
(EfficientNetV2, whose fused blocks downsample in their expansion conv; ConvNeXt, whose stem has
stride 4: it has no stride-2 feature, None in that slot).

`encoder_weights="imagenet"` loads Keras's own file (`app_weights.py`, via `pretrained.py`) layer
by layer in Keras's order (the way `keras.applications` loads it: its names are not all stable),
each layer's shapes checked and the first convolution adapted to the input's bands (`bands.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
from keras import layers

from shiptoolkit.models.bands import repeat_channels
from shiptoolkit.models.encoders import DIVISOR, Encoder, check_input_shape, set_rgb_weights
from shiptoolkit.models.legacy_h5 import WeightsError, read_legacy_h5
from shiptoolkit.models.pretrained import imagenet_weights_path

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB in 0..1: "torch" preprocessing
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class AppSpec:
    """How one encoder is built from keras.applications."""

    constructor: str  # the keras.applications function
    preprocessing: str  # "torch": (x/255 - mean) / std; "tf": x/127.5 - 1; "v2": x/128 - 1; "keras": the model's
    skips: tuple[str | None, ...]  # deepest first: "name" a layer's output, "<name" its input, None: none
    kwargs: dict = field(default_factory=dict)


_EFFICIENTNET = ("block6a_expand_activation", "block4a_expand_activation", "block3a_expand_activation",
                 "block2a_expand_activation")
_EFFICIENTNETV2 = ("<block6a_expand_conv", "<block4a_expand_conv", "<block3a_expand_conv", "<block2a_expand_conv")
_DENSENET = ("pool4_conv", "pool3_conv", "pool2_conv", "conv1_relu")
_NO_PREPROCESSING = {"include_preprocessing": False}

SPECS: dict[str, AppSpec] = {
    **{f"efficientnetb{i}": AppSpec(f"EfficientNetB{i}", "keras", _EFFICIENTNET) for i in range(8)},
    **{f"efficientnetv2b{i}": AppSpec(f"EfficientNetV2B{i}", "torch", _EFFICIENTNETV2, _NO_PREPROCESSING)
       for i in range(4)},
    "efficientnetv2s": AppSpec("EfficientNetV2S", "v2", _EFFICIENTNETV2, _NO_PREPROCESSING),
    "mobilenetv2": AppSpec("MobileNetV2", "tf", ("block_13_expand_relu", "block_6_expand_relu",
                                                 "block_3_expand_relu", "block_1_expand_relu")),
    "mobilenetv3large": AppSpec("MobileNetV3Large", "tf", (
        "<expanded_conv_12_depthwise_pad", "<expanded_conv_6_depthwise_pad", "<expanded_conv_3_depthwise_pad",
        "<expanded_conv_1_depthwise_pad"), _NO_PREPROCESSING),
    "mobilenetv3small": AppSpec("MobileNetV3Small", "tf", (
        "<expanded_conv_8_depthwise_pad", "<expanded_conv_3_depthwise_pad", "<expanded_conv_1_depthwise_pad",
        "<expanded_conv_depthwise_pad"), _NO_PREPROCESSING),
    **{f"densenet{n}": AppSpec(f"DenseNet{n}", "torch", _DENSENET) for n in (121, 169, 201)},
    **{f"convnext_{size}": AppSpec(f"ConvNeXt{size.title()}", "torch", (
        f"<convnext_{size}_downsampling_block_2", f"<convnext_{size}_downsampling_block_1",
        f"<convnext_{size}_downsampling_block_0", None), _NO_PREPROCESSING) for size in ("tiny", "small")},
}


def app_encoder(encoder: str, input_shape: tuple, model_name: str) -> Encoder:
    """Build the keras.applications encoder `encoder` (a key of `SPECS`) on a new input named `image`.

    Args:
        encoder: e.g. "efficientnetb0".
        input_shape: (height, width, channels), any channels >= 1, sides divisible by 32 or None.
        model_name: the name of the model being built, for error messages.
    """
    if encoder not in SPECS:
        raise ValueError(f"encoder must be one of {sorted(SPECS)}. Received: encoder={encoder!r}")
    spec = SPECS[encoder]
    shape = check_input_shape(tuple(input_shape), DIVISOR, model_name, channels=None)
    inputs = keras.Input(shape, name="image")
    x = preprocess(inputs, spec.preprocessing, shape[2])
    base = getattr(keras.applications, spec.constructor)(include_top=False, weights=None, input_tensor=x,
                                                         **spec.kwargs)
    if spec.preprocessing == "keras":  # EfficientNet's own Rescaling(1/255) + Normalization: ImageNet's values
        _set_imagenet_normalization(base, shape[2])
    # Keras builds MobileNet's batch norms with momentum 0.999: trained from random weights for a few hundred
    # steps their moving statistics stay half-way to the data's, and the model then predicts nothing at inference
    # (measured: linknet on mobilenetv3small, test f2 = the all-empty baseline). 0.99, as the ResNets'.
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and layer.momentum > 0.99:
            layer.momentum = 0.99
    skips = tuple(_feature(base, name) for name in spec.skips)
    return Encoder(inputs, base.output, skips, tuple(layer.name for layer in base.layers), encoder, load_imagenet)


def preprocess(inputs, mode: str, channels: int):
    """Raw 0..255 images to what the family's ImageNet weights expect (one Rescaling layer, no weights)."""
    if mode == "keras":
        return inputs
    if mode == "torch":  # per channel (x / 255 - mean) / std, RGB's values repeated over other bands
        mean, std = repeat_channels(IMAGENET_MEAN, channels), repeat_channels(IMAGENET_STD, channels)
        scale, offset = (1.0 / (255.0 * std)).tolist(), (-mean / std).tolist()
    elif mode in ("tf", "v2"):
        scale, offset = (1.0 / 127.5, -1.0) if mode == "tf" else (1.0 / 128.0, -1.0)
    else:
        raise ValueError(f"preprocessing must be 'torch', 'tf', 'v2' or 'keras'. Received: {mode!r}")
    return layers.Rescaling(scale, offset, name="imagenet_preprocessing")(inputs)


def _set_imagenet_normalization(base: keras.Model, channels: int) -> None:
    """EfficientNet's Normalization (after x/255) set to ImageNet's mean and variance, repeated over the bands.

    Keras's own ImageNet file holds the std as the variance and Keras adds a second Rescaling to make up
    for it (tensorflow#49930); the values set here give the same (x/255 - mean) / std, with or without
    weights, and `load_imagenet` leaves them."""
    norm = next(layer for layer in base.layers if isinstance(layer, layers.Normalization))
    mean, std = repeat_channels(IMAGENET_MEAN, channels), repeat_channels(IMAGENET_STD, channels)
    norm.adapt_mean.assign(mean.reshape(norm.adapt_mean.shape))
    norm.adapt_variance.assign((std**2).reshape(norm.adapt_variance.shape))
    norm.finalize_state()  # the call reads the tensors made here from the variables


def _feature(base: keras.Model, name: str | None):
    if name is None:
        return None
    if name.startswith("<"):
        return base.get_layer(name[1:]).input
    return base.get_layer(name).output


def load_imagenet(model: keras.Model, enc: Encoder) -> None:
    """Keras's ImageNet file for `enc.encoder` into `model`'s encoder layers, layer by layer in Keras's order.

    The weighted layers of the file and of the encoder are paired in order (Keras's own
    `load_weights` for these files does so; some of their names are Keras's counters), each pair's
    shapes checked, the first convolution adapted to the input's bands. Normalization layers keep
    the ImageNet values set when the encoder was built.

    Raises:
        WeightsError: the file has another number of weighted layers, or a layer's shapes differ.
    """
    path = imagenet_weights_path(enc.encoder)
    source = repr(str(path))
    saved = [(name, arrays) for name, arrays in read_legacy_h5(path).items() if arrays]
    encoder_layers = [model.get_layer(name) for name in enc.layer_names]
    weighted = [layer for layer in encoder_layers if layer.weights]
    if len(saved) != len(weighted):
        raise WeightsError(f"{source} is not the {enc.encoder} ImageNet encoder without top: it has "
                           f"{len(saved)} layers with weights, the encoder {len(weighted)}.")
    for layer, (name, arrays) in zip(weighted, saved, strict=True):
        if isinstance(layer, layers.Normalization):
            continue
        try:
            set_rgb_weights(layer, [np.asarray(a) for a in arrays], source)
        except WeightsError as exc:
            raise WeightsError(f"{source} is not the {enc.encoder} ImageNet encoder without top: its layer "
                               f"{name!r} does not fit. {exc}") from None
