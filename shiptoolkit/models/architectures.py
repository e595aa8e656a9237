"""segmentation-models' architectures on any registered encoder: `unet`, `fpn`, `linknet`, `pspnet`, and
smp's `deeplabv3plus`.

Spellings, parameters and defaults are segmentation-models 1.0.1's (`sm.Unet`, `sm.FPN`, `sm.Linknet`,
`sm.PSPNet`), with `encoder` for sm's `backbone_name`: a name of the `encoder` registry kind (the
`register_encoders` hook), so a plugin's encoder serves every architecture. With the ResNet encoders the
models are sm's layer for layer (`fpn` on resnet34 = `sm.FPN('resnet34')`, 23,930,954 parameters, 1
class); the decoders are in `decoders.py`. Every model ends in a float32 sigmoid (shiptoolkit's masks).
`unet` without an encoder is the seed's plain U-Net (`unet.py`), unchanged.
"""

from __future__ import annotations

import dataclasses
import math

import keras
from keras import layers

from shiptoolkit.errors import ConfigError
from shiptoolkit.models import decoders
from shiptoolkit.models.encoders import create_encoder
from shiptoolkit.models.unet import unet as plain_unet
from shiptoolkit.plugins.registry import Range, param_ranges

# The encoders halve the input five times.
DIVISOR = 32
# The plain U-Net's parameters and their defaults: with an encoder they must stay at these.
PLAIN_DEFAULTS = {"base_filters": 32, "depth": 4, "dropout": 0.3, "batch_norm": False}
UNET_DEFAULTS = {"encoder_weights": None, "encoder_freeze": False, "in_channels": 3,
                 "decoder_block_type": "upsampling", "decoder_filters": (256, 128, 64, 32, 16),
                 "decoder_use_batchnorm": True}
_PSP_FEATURE = {16: 0, 8: 1, 4: 2}  # downsample_factor -> the skip the pyramid pools (sm's feature_layers)
_dropout = Range(0.0, 1.0, high_open=True)


def _choice(value, allowed: tuple, key: str, name: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}: {key} must be one of {', '.join(map(repr, allowed))}. Received: {key}={value!r}")


def model_input_shape(input_shape: tuple, in_channels: int, divisor: int, name: str, why: str = "",
                      none_ok: bool = True) -> tuple:
    """(height, width, in_channels): the framework passes (H, W, 3), `in_channels` sets the channels.

    Raises:
        ConfigError: a side not divisible by `divisor` (naming the nearest valid sizes), a None side
            where `none_ok` is false, or channels that are neither 3 nor `in_channels`.
    """
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[2] not in (3, in_channels) or in_channels < 1:
        raise ConfigError(f"{name} expects input_shape (height, width, {in_channels}) (in_channels={in_channels}). "
                          f"Received: input_shape={shape}")
    for side in shape[:2]:
        if side is None and not none_ok:
            raise ConfigError(f"{name} needs a fixed input size (height and width divisible by {divisor}{why}), "
                              f"not None. Received: input_shape={shape}")
        if side is not None and (side < divisor or side % divisor):
            lower = max(divisor, side // divisor * divisor)
            raise ConfigError(f"{name} needs height and width divisible by {divisor}{why}. Received: "
                              f"input_shape={shape}; nearest valid sizes: {lower}, {lower + divisor}.")
    return (*shape[:2], in_channels)


def _encode(arch: str, encoder: str, input_shape: tuple, in_channels: int, divisor: int = DIVISOR, why: str = "",
            none_ok: bool = True):
    """Check the input size for `arch`, then build the registered `encoder` on it."""
    shape = model_input_shape(input_shape, in_channels, divisor, f"{arch} (encoder {encoder!r})", why, none_ok)
    return create_encoder(encoder, shape, f"{encoder}_{arch}")


def _finish(enc, x, classes: int, arch: str, encoder: str, weights, freeze: bool, kernel: int = 3,
            head: str = "final_conv", upsample: int = 1, interpolation: str = "bilinear") -> keras.Model:
    """sm's head (conv to `classes`, optional upsampling) and a float32 sigmoid; then weights and freezing."""
    if classes < 1:
        raise ConfigError(f"{arch}: classes must be >= 1. Received: classes={classes}")
    x = layers.Conv2D(classes, kernel, padding="same", kernel_initializer="glorot_uniform", name=head)(x)
    if upsample > 1:
        x = decoders.UpSampling(upsample, interpolation=interpolation, name="final_upsampling")(x)
    # float32 even under mixed precision: the losses' logs and divisions need its range
    outputs = layers.Activation("sigmoid", name="sigmoid", dtype="float32")(x)
    model = keras.Model(enc.inputs, outputs, name=f"{encoder}_{arch}")
    present = {layer.name for layer in model.layers}
    if any(name not in present for name in enc.layer_names):  # PSPNet stops inside the encoder
        enc = dataclasses.replace(enc, layer_names=tuple(n for n in enc.layer_names if n in present))
    return enc.load_and_freeze(model, weights or None, freeze)


def _check_unet_params(encoder, plain: dict, sm: dict) -> None:
    """The plain U-Net's parameters apply without an encoder only, sm's with one only."""
    unused, defaults = (plain, PLAIN_DEFAULTS) if encoder else (sm, UNET_DEFAULTS)
    changed = [k for k, v in unused.items() if v != defaults[k] and not (k == "decoder_filters" and
                                                                           tuple(v) == defaults[k])]
    if changed:
        which = ("the plain U-Net's (encoder unset)" if encoder else
                 "those of a U-Net on an encoder (set encoder, e.g. encoder = \"resnet34\")")
        raise ConfigError(f"unet: {', '.join(f'{k}={unused[k]!r}' for k in changed)} "
                          f"{'is' if len(changed) == 1 else 'are'} {which} parameter(s) only. "
                          f"Received: encoder={encoder!r}; remove {', '.join(changed)} or "
                          f"{'unset encoder' if encoder else 'set encoder'}.")


@param_ranges(classes=(1, None), base_filters=(1, None), depth=(1, 8), dropout=_dropout, in_channels=(1, None),
              decoder_filters=(1, None))
def unet(input_shape: tuple = (128, 128, 3), classes: int = 1, encoder: str | None = None,
         base_filters: int = 32, depth: int = 4, dropout: float = 0.3, batch_norm: bool = False,
         encoder_weights: str | None = None, encoder_freeze: bool = False, in_channels: int = 3,
         decoder_block_type: str = "upsampling", decoder_filters: tuple[int, ...] = (256, 128, 64, 32, 16),
         decoder_use_batchnorm: bool = True) -> keras.Model:
    """U-Net: without `encoder` the seed's plain U-Net; with one, segmentation-models' `Unet(encoder)`.

    Input is raw RGB in 0..255 (the plain U-Net divides by 255; each encoder normalises itself).

    Args:
        input_shape: (height, width, 3); sides divisible by 2**depth (plain) or 32 (encoder), or None.
        classes: output channels, each with its own sigmoid.
        encoder: a registered encoder (e.g. "resnet34", as sm's backbone_name), or None for the plain U-Net.
        base_filters: plain U-Net only: filters of the first level; each level down doubles them.
        depth: plain U-Net only: number of down-sampling levels (4: 32, 64, 128, 256, bottleneck 512).
        dropout: plain U-Net only: dropout rate at the deepest level and the bottleneck (0 = none).
        batch_norm: plain U-Net only: batch normalisation after every convolution.
        encoder_weights: "imagenet", the path of an `.h5` file loaded by layer name, or None / "" for
            random weights (encoder only).
        encoder_freeze: freeze the encoder, BatchNormalization layers excepted (as sm).
        in_channels: input channels (bands); the model's input is (height, width, in_channels).
        decoder_block_type: "upsampling" (UpSampling2D, two 3x3 convs) or "transpose" (Conv2DTranspose, one).
        decoder_filters: filters of the five decoder stages (each x2, back to the input's size).
        decoder_use_batchnorm: batch normalisation between the decoder's convolutions and activations.

    Example:
        >>> unet((64, 64, 3), encoder="resnet34").count_params()
        24456154
    """
    sm = {"encoder_weights": encoder_weights, "encoder_freeze": encoder_freeze, "in_channels": 3,
          "decoder_block_type": decoder_block_type, "decoder_filters": decoder_filters,
          "decoder_use_batchnorm": decoder_use_batchnorm}
    _check_unet_params(encoder, {"base_filters": base_filters, "depth": depth, "dropout": dropout,
                                 "batch_norm": batch_norm}, sm)
    if not encoder:
        shape = model_input_shape(input_shape, in_channels, 1, "unet")
        return plain_unet(shape, classes, base_filters, depth, dropout, batch_norm)
    _choice(decoder_block_type, decoders.DECODER_BLOCK_TYPES, "decoder_block_type", "unet")
    if len(decoder_filters) != 5 or any(f < 1 for f in decoder_filters):
        raise ConfigError(f"unet: decoder_filters must be 5 positive numbers (one per x2 stage back to the input "
                          f"size). Received: decoder_filters={decoder_filters}")
    enc = _encode("unet", encoder, input_shape, in_channels)
    x = decoders.unet_decoder(enc.output, enc.skips, tuple(decoder_filters), decoder_block_type,
                              decoder_use_batchnorm)
    return _finish(enc, x, classes, "unet", encoder, encoder_weights, encoder_freeze)


@param_ranges(classes=(1, None), in_channels=(1, None), pyramid_block_filters=(1, None),
              segmentation_filters=(1, None), pyramid_dropout=_dropout)
def fpn(input_shape: tuple = (None, None, 3), classes: int = 1, encoder: str = "resnet34",
        encoder_weights: str | None = None, encoder_freeze: bool = False, in_channels: int = 3,
        pyramid_block_filters: int = 256, segmentation_filters: int | None = None,
        pyramid_use_batchnorm: bool = True, pyramid_aggregation: str = "concat",
        pyramid_dropout: float | None = None) -> keras.Model:
    """FPN: segmentation-models' `FPN(encoder)` (feature pyramid P5..P2, merged at stride 2, x2 upsampling).

    Args:
        input_shape: (height, width, 3), sides divisible by 32 or None.
        classes: output channels, each with its own sigmoid.
        encoder: a registered encoder, e.g. "resnet34" (sm's backbone_name).
        encoder_weights: "imagenet", the path of an `.h5` file loaded by layer name, or None / "".
        encoder_freeze: freeze the encoder, BatchNormalization layers excepted (as sm).
        in_channels: input channels (bands); the model's input is (height, width, in_channels).
        pyramid_block_filters: filters of the pyramid's 1x1 convolutions.
        segmentation_filters: filters of the 3x3 convolutions on each pyramid level; None: half of
            pyramid_block_filters (sm's rule).
        pyramid_use_batchnorm: batch normalisation between convolutions and activations.
        pyramid_aggregation: "concat" or "sum": how the four levels are merged.
        pyramid_dropout: spatial dropout rate after the merge (None or 0: none).

    Example:
        >>> fpn((64, 64, 3)).count_params()
        23930954
    """
    _choice(pyramid_aggregation, ("concat", "sum"), "pyramid_aggregation", "fpn")
    enc = _encode("fpn", encoder, input_shape, in_channels)
    x = decoders.fpn_decoder(enc.output, enc.skips, pyramid_block_filters,
                             segmentation_filters or pyramid_block_filters // 2, pyramid_use_batchnorm,
                             pyramid_aggregation, pyramid_dropout)
    return _finish(enc, x, classes, "fpn", encoder, encoder_weights, encoder_freeze, head="head_conv")


@param_ranges(classes=(1, None), in_channels=(1, None), decoder_filters=(0, None))
def linknet(input_shape: tuple = (None, None, 3), classes: int = 1, encoder: str = "resnet34",
            encoder_weights: str | None = None, encoder_freeze: bool = False, in_channels: int = 3,
            decoder_block_type: str = "upsampling",
            decoder_filters: tuple[int | None, ...] = (0, 0, 0, 0, 16),
            decoder_use_batchnorm: bool = True) -> keras.Model:
    """Linknet: segmentation-models' `Linknet(encoder)` (decoder blocks added to the skips, not concatenated).

    Args:
        input_shape: (height, width, 3), sides divisible by 32 or None.
        classes: output channels, each with its own sigmoid.
        encoder: a registered encoder, e.g. "resnet34" (sm's backbone_name).
        encoder_weights: "imagenet", the path of an `.h5` file loaded by layer name, or None / "".
        encoder_freeze: freeze the encoder, BatchNormalization layers excepted (as sm).
        in_channels: input channels (bands); the model's input is (height, width, in_channels).
        decoder_block_type: "upsampling" (UpSampling2D + 3x3 conv) or "transpose" (Conv2DTranspose).
        decoder_filters: output filters of the five decoder stages; a stage with a skip takes the skip's
            channels whatever is given there (None in sm; 0 by default here, as TOML has no None), so only
            the last counts (None or 0 there: half its input's channels).
        decoder_use_batchnorm: batch normalisation between convolutions and activations.

    Example:
        >>> linknet((64, 64, 3)).count_params()
        21637274
    """
    _choice(decoder_block_type, decoders.DECODER_BLOCK_TYPES, "decoder_block_type", "linknet")
    filters = tuple(decoder_filters)
    if len(filters) != 5:
        raise ConfigError(f"linknet: decoder_filters must be 5 items (one per x2 stage back to the input size). "
                          f"Received: decoder_filters={decoder_filters}")
    enc = _encode("linknet", encoder, input_shape, in_channels)
    x = decoders.linknet_decoder(enc.output, enc.skips, filters, decoder_block_type, decoder_use_batchnorm)
    return _finish(enc, x, classes, "linknet", encoder, encoder_weights, encoder_freeze)


@param_ranges(classes=(1, None), in_channels=(1, None), psp_conv_filters=(1, None), psp_dropout=_dropout)
def pspnet(input_shape: tuple = (384, 384, 3), classes: int = 1, encoder: str = "resnet34",
           encoder_weights: str | None = None, encoder_freeze: bool = False, in_channels: int = 3,
           downsample_factor: int = 8, psp_conv_filters: int = 512, psp_pooling_type: str = "avg",
           psp_use_batchnorm: bool = True, psp_dropout: float | None = None,
           final_upsampling: str = "bilinear") -> keras.Model:
    """PSPNet: segmentation-models' `PSPNet(encoder)`: pyramid pooling on the encoder's stride-8 feature.

    Only the encoder's layers up to that feature are in the model (as in sm). The input size is fixed:
    sides divisible by 6 * downsample_factor (sm's rule, the 1, 2, 3, 6 pooling grid) and by 32 (the
    encoder's), i.e. by 96 (sm takes 336 for factor 8; here 288 or 384).

    Args:
        input_shape: (height, width, 3), sides divisible by 96, not None.
        classes: output channels, each with its own sigmoid.
        encoder: a registered encoder, e.g. "resnet34" (sm's backbone_name).
        encoder_weights: "imagenet", the path of an `.h5` file loaded by layer name, or None / "".
        encoder_freeze: freeze the encoder's layers in the model, BatchNormalization excepted (as sm).
        in_channels: input channels (bands); the model's input is (height, width, in_channels).
        downsample_factor: 4, 8 or 16: the stride of the encoder feature the pyramid pools.
        psp_conv_filters: filters of the pyramid's 1x1 convolutions.
        psp_pooling_type: "avg" or "max".
        psp_use_batchnorm: batch normalisation between convolutions and activations.
        psp_dropout: spatial dropout rate before the head (None: none).
        final_upsampling: "bilinear" (sm) or "nearest": the interpolation back to the input size.

    Example:
        >>> pspnet((384, 384, 3)).count_params()
        2746058
    """
    _choice(downsample_factor, tuple(_PSP_FEATURE), "downsample_factor", "pspnet")
    _choice(psp_pooling_type, ("avg", "max"), "psp_pooling_type", "pspnet")
    _choice(final_upsampling, ("bilinear", "nearest"), "final_upsampling", "pspnet")
    why = f": 6 * downsample_factor = {6 * downsample_factor} for the pyramid and 32 for the encoder"
    divisor = math.lcm(6 * downsample_factor, DIVISOR)
    enc = _encode("pspnet", encoder, input_shape, in_channels, divisor, why, none_ok=False)
    feature = enc.skips[_PSP_FEATURE[downsample_factor]]
    if feature is None:
        raise ConfigError(f"pspnet: encoder {encoder!r} has no feature at stride {downsample_factor}: choose "
                          f"another downsample_factor ({', '.join(map(str, _PSP_FEATURE))}).")
    x = decoders.psp_decoder(feature, psp_conv_filters, psp_pooling_type, psp_use_batchnorm, psp_dropout)
    return _finish(enc, x, classes, "pspnet", encoder, encoder_weights, encoder_freeze,
                   upsample=downsample_factor, interpolation=final_upsampling)


@param_ranges(classes=(1, None), in_channels=(1, None), decoder_filters=(1, None), aspp_dropout=_dropout)
def deeplabv3plus(input_shape: tuple = (None, None, 3), classes: int = 1, encoder: str = "resnet34",
                  encoder_weights: str | None = None, encoder_freeze: bool = False, in_channels: int = 3,
                  decoder_filters: int = 256, atrous_rates: tuple[int, ...] = (12, 24, 36),
                  aspp_dropout: float = 0.5) -> keras.Model:
    """DeepLabV3+ as segmentation_models.pytorch's `DeepLabV3Plus` (not in sm) on an undilated encoder.

    ASPP (1x1, three separable atrous 3x3 at `atrous_rates`, image pooling) on the stride-16 feature,
    x4 bilinear upsampling, concatenated with the stride-4 skip projected to 48 channels, a separable
    3x3, a 1x1 head and x4 bilinear upsampling to the input size. As in keras-io's DeepLabV3+, the
    encoder's last stage (stride 32) is not in the model: on resnet34 9,005,370 parameters (smp dilates
    that stage instead and keeps it).

    Args:
        input_shape: (height, width, 3), sides divisible by 32 or None.
        classes: output channels, each with its own sigmoid.
        encoder: a registered encoder with features at strides 16 and 4, e.g. "resnet34".
        encoder_weights: "imagenet", the path of an `.h5` file loaded by layer name, or None / "".
        encoder_freeze: freeze the encoder, BatchNormalization layers excepted.
        in_channels: input channels (bands); the model's input is (height, width, in_channels).
        decoder_filters: filters of the ASPP and decoder convolutions (smp's decoder_channels).
        atrous_rates: the dilation rates of the three atrous branches.
        aspp_dropout: dropout after the ASPP projection (smp: 0.5).
    """
    if len(atrous_rates) != 3 or any(r < 1 for r in atrous_rates):
        raise ConfigError(f"deeplabv3plus: atrous_rates must be 3 positive numbers. Received: {atrous_rates}")
    enc = _encode("deeplabv3plus", encoder, input_shape, in_channels)
    if enc.skips[0] is None or enc.skips[2] is None:
        raise ConfigError(f"deeplabv3plus needs encoder features at strides 16 and 4; {encoder!r} lacks one.")
    x = decoders.deeplabv3plus_decoder(enc.skips[0], enc.skips[2], decoder_filters, tuple(atrous_rates),
                                       aspp_dropout)
    return _finish(enc, x, classes, "deeplabv3plus", encoder, encoder_weights, encoder_freeze, kernel=1,
                   upsample=4)


# What `register_backbones` registers, each under its function's name (`unet` replaces the plain one,
# whose defaults it keeps).
ARCHITECTURES = (unet, fpn, linknet, pspnet, deeplabv3plus)
