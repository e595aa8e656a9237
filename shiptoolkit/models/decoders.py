"""segmentation-models 1.0.1's decoders (Unet, FPN, Linknet, PSPNet) in Keras 3, and smp's DeepLabV3+.

Each function continues an encoder's graph (`encoders.Encoder`: `output` at stride 32, `skips`
deepest first at strides 16, 8, 4, 2) to the last convolution before the activation. Layer names,
layer kinds and their order are sm's (`segmentation_models/models/*.py` and `_common_blocks.py`), so
the parameter counts are sm's and weights saved by segmentation-models load by layer name. Where sm
leaves a layer unnamed (Linknet's head) it is named here (`final_conv`). A skip slot may be None
(an encoder without a feature at that stride): the stage then upsamples without it.

DeepLabV3+ is not in sm: it follows segmentation_models.pytorch's `DeepLabV3Plus` (ASPP with
separable atrous convolutions on the stride-16 feature, a 48-channel projection of the stride-4
skip, 256 filters, x4 upsampling) on an encoder without dilation, as keras-io's DeepLabV3+ does.
"""

from __future__ import annotations

import keras
from keras import layers

DECODER_BLOCK_TYPES = ("upsampling", "transpose")


def conv_bn(x, filters: int, kernel_size: int, use_batchnorm: bool, name: str, activation: str | None = "relu"):
    """sm's `Conv2dBn` (Conv3x3BnReLU / Conv1x1BnReLU): `{name}_conv` (bias only without BN),
    `{name}_bn`, `{name}_relu`; he_uniform kernels, 'same' padding, BN with Keras defaults."""
    x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=not use_batchnorm,
                      kernel_initializer="he_uniform", name=name + "_conv")(x)
    if use_batchnorm:
        x = layers.BatchNormalization(axis=3, name=name + "_bn")(x)
    return layers.Activation(activation, name=f"{name}_{activation}")(x) if activation else x


def transpose_bn_relu(x, filters: int, use_batchnorm: bool, name: str):
    """sm's Conv2DTranspose block (`decoder_block_type = "transpose"`): x2 transposed conv, BN, ReLU."""
    x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=not use_batchnorm,
                               name=name + "_transpose")(x)
    if use_batchnorm:
        x = layers.BatchNormalization(axis=3, name=name + "_bn")(x)
    return layers.Activation("relu", name=name + "_relu")(x)


def _channels(x) -> int:
    return int(x.shape[-1])


@keras.saving.register_keras_serializable(package="shiptoolkit")
class UpSampling(layers.UpSampling2D):
    """`UpSampling2D` whose bilinear resize also runs where the sides are unknown until the images come:
    Keras 3.15's fails on TensorFlow once `predict` retraces for a second image size (None sides)."""

    def call(self, inputs):
        if self.interpolation == "nearest" or keras.backend.backend() != "tensorflow":
            return super().call(inputs)
        import tensorflow as tf  # the TensorFlow backend only: tf.image.resize takes a dynamic size

        shape = tf.shape(inputs)
        size = (shape[1] * self.size[0], shape[2] * self.size[1])
        return tf.cast(tf.image.resize(inputs, size, method=self.interpolation), inputs.dtype)


# ---- Unet ---------------------------------------------------------------------------------------

def unet_decoder(x, skips: tuple, decoder_filters: tuple[int, ...], block_type: str, use_batchnorm: bool):
    """sm's `build_unet` decoder: one x2 block per filter count, the skips concatenated in order."""
    for stage, filters in enumerate(decoder_filters):
        skip = skips[stage] if stage < len(skips) else None
        if block_type == "upsampling":
            x = layers.UpSampling2D(2, name=f"decoder_stage{stage}_upsampling")(x)
            x = _concat(x, skip, f"decoder_stage{stage}_concat")
            x = conv_bn(x, filters, 3, use_batchnorm, f"decoder_stage{stage}a")
        else:  # "transpose"
            x = transpose_bn_relu(x, filters, use_batchnorm, f"decoder_stage{stage}a")
            x = _concat(x, skip, f"decoder_stage{stage}_concat")
        x = conv_bn(x, filters, 3, use_batchnorm, f"decoder_stage{stage}b")
    return x


def _concat(x, skip, name: str):
    return x if skip is None else layers.Concatenate(axis=3, name=name)([x, skip])


# ---- FPN ----------------------------------------------------------------------------------------

def _fpn_block(x, skip, pyramid_filters: int, stage: int):
    """sm's `FPNBlock`: 1x1 convs to the pyramid's width, x2 upsampling, sum with the skip."""
    if _channels(x) != pyramid_filters:
        x = layers.Conv2D(pyramid_filters, 1, kernel_initializer="he_uniform", name=f"fpn_stage_p{stage}_pre_conv")(x)
    x = layers.UpSampling2D(2, name=f"fpn_stage_p{stage}_upsampling")(x)
    if skip is None:
        return x
    skip = layers.Conv2D(pyramid_filters, 1, kernel_initializer="he_uniform", name=f"fpn_stage_p{stage}_conv")(skip)
    return layers.Add(name=f"fpn_stage_p{stage}_add")([x, skip])


def fpn_decoder(x, skips: tuple, pyramid_filters: int, segmentation_filters: int, use_batchnorm: bool,
                aggregation: str, dropout: float | None):
    """sm's `build_fpn` up to its head: pyramid P5..P2, two 3x3 convs on each, aggregated at stride 2."""
    pyramid = []
    for stage, skip in zip((5, 4, 3, 2), skips[:4], strict=True):
        x = _fpn_block(x, skip, pyramid_filters, stage)
        pyramid.append(x)
    heads = []
    for stage, p in zip((5, 4, 3, 2), pyramid, strict=True):
        s = conv_bn(p, segmentation_filters, 3, use_batchnorm, f"segm_stage{stage}a")
        s = conv_bn(s, segmentation_filters, 3, use_batchnorm, f"segm_stage{stage}b")
        if stage > 2:
            s = layers.UpSampling2D(2 ** (stage - 2), interpolation="nearest", name=f"upsampling_stage{stage}")(s)
        heads.append(s)
    heads.reverse()  # sm aggregates [s2, s3, s4, s5]
    if aggregation == "sum":
        x = layers.Add(name="aggregation_sum")(heads)
    else:
        x = layers.Concatenate(axis=3, name="aggregation_concat")(heads)
    if dropout:
        x = layers.SpatialDropout2D(dropout, name="pyramid_dropout")(x)
    x = conv_bn(x, segmentation_filters, 3, use_batchnorm, "final_stage")
    return UpSampling(2, interpolation="bilinear", name="final_upsampling")(x)


# ---- Linknet ------------------------------------------------------------------------------------

def linknet_decoder(x, skips: tuple, decoder_filters: tuple, block_type: str, use_batchnorm: bool):
    """sm's `build_linknet` decoder: per stage 1x1 (in/4), x2 up, 3x3 (in/4), 1x1 to the skip's width, add.

    A stage's filters are used only where it has no skip (sm: the last stage; here also a None
    slot, where None filters mean half the stage's input channels)."""
    for stage, filters in enumerate(decoder_filters):
        skip = skips[stage] if stage < len(skips) else None
        quarter = _channels(x) // 4
        out = _channels(skip) if skip is not None else (filters or max(1, _channels(x) // 2))
        x = conv_bn(x, quarter, 1, use_batchnorm, f"decoder_stage{stage}a")
        if block_type == "upsampling":
            x = layers.UpSampling2D(2, name=f"decoder_stage{stage}_upsampling")(x)
            x = conv_bn(x, quarter, 3, use_batchnorm, f"decoder_stage{stage}b")
        else:  # "transpose"
            x = transpose_bn_relu(x, quarter, use_batchnorm, f"decoder_stage{stage}b")
        x = conv_bn(x, out, 1, use_batchnorm, f"decoder_stage{stage}c")
        if skip is not None:
            x = layers.Add(name=f"decoder_stage{stage}_add")([x, skip])
    return x


# ---- PSPNet -------------------------------------------------------------------------------------

def psp_decoder(x, conv_filters: int, pooling_type: str, use_batchnorm: bool, dropout: float | None):
    """sm's `build_psp` up to its head: pyramid pooling to 1x1, 2x2, 3x3 and 6x6 (static sizes), concat,
    1x1 aggregation."""
    height, width = int(x.shape[1]), int(x.shape[2])
    pooling = layers.MaxPooling2D if pooling_type == "max" else layers.AveragePooling2D
    levels = [x]
    for level in (1, 2, 3, 6):
        size = (height // level, width // level)
        y = pooling(size, strides=size, padding="same", name=f"psp_level{level}_pooling")(x)
        y = conv_bn(y, conv_filters, 1, use_batchnorm, f"psp_level{level}")
        levels.append(layers.UpSampling2D(size, interpolation="bilinear", name=f"psp_level{level}_upsampling")(y))
    x = layers.Concatenate(axis=3, name="psp_concat")(levels)
    x = conv_bn(x, conv_filters, 1, use_batchnorm, "aggregation")
    if dropout is not None:
        x = layers.SpatialDropout2D(dropout, name="spatial_dropout")(x)
    return x


# ---- DeepLabV3+ ---------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="shiptoolkit")
class BroadcastLike(layers.Layer):
    """Broadcast a (N, 1, 1, C) tensor to the height and width of a second input: the bilinear
    upsampling of ASPP's image-pooling branch (from 1x1 it is a copy), for any input size."""

    def call(self, inputs):
        pooled, like = inputs
        shape = keras.ops.shape(like)
        return keras.ops.broadcast_to(pooled, (shape[0], shape[1], shape[2], pooled.shape[-1]))

    def compute_output_shape(self, input_shapes):
        pooled, like = input_shapes
        return (like[0], like[1], like[2], pooled[-1])


def _sep_bn_relu(x, filters: int, name: str, dilation: int = 1):
    """smp's SeparableConv2d (depthwise 3x3 + pointwise, no bias) + BN + ReLU."""
    x = layers.SeparableConv2D(filters, 3, padding="same", dilation_rate=dilation, use_bias=False,
                               name=name + "_conv")(x)
    x = layers.BatchNormalization(axis=3, name=name + "_bn")(x)
    return layers.Activation("relu", name=name + "_relu")(x)


def aspp(x, filters: int, rates: tuple[int, ...], dropout: float):
    """smp's ASPP (separable=True): 1x1, three atrous separable 3x3, image pooling; concat, 1x1, dropout."""
    branches = [conv_bn(x, filters, 1, True, "aspp_b0")]
    branches += [_sep_bn_relu(x, filters, f"aspp_b{i + 1}", rate) for i, rate in enumerate(rates)]
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="aspp_pooling")(x)
    pooled = conv_bn(pooled, filters, 1, True, "aspp_pool")
    branches.append(BroadcastLike(name="aspp_pool_upsampling")([pooled, x]))
    x = layers.Concatenate(axis=3, name="aspp_concat")(branches)
    x = conv_bn(x, filters, 1, True, "aspp_project")
    return layers.Dropout(dropout, name="aspp_dropout")(x) if dropout else x


def deeplabv3plus_decoder(deep, highres, filters: int, rates: tuple[int, ...], dropout: float):
    """smp's DeepLabV3PlusDecoder: ASPP + separable conv on the stride-16 feature, x4 bilinear to the
    stride-4 skip (projected to 48 channels), concat, separable conv; returns stride-4 features."""
    x = aspp(deep, filters, rates, dropout)
    x = _sep_bn_relu(x, filters, "decoder_aspp_sep")
    x = UpSampling(4, interpolation="bilinear", name="decoder_upsampling")(x)
    y = conv_bn(highres, 48, 1, True, "decoder_highres")
    x = layers.Concatenate(axis=3, name="decoder_concat")([x, y])
    return _sep_bn_relu(x, filters, "decoder_block2")
