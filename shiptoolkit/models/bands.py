"""Any number of bands: RGB ImageNet weights adapted to an encoder with C input channels.

An encoder built for (H, W, C) images differs from its RGB original only where the input's channels
enter: the first convolution's kernel (kh, kw, C, filters) and any per-channel input normalisation
(ResNet's `bn_data`, a Normalization layer's mean and variance). The adaptation is
segmentation_models.pytorch's `patch_first_conv`:

- C == 1: the kernel summed over its RGB inputs (a grey image gives the response of R=G=B);
- C >= 2: the RGB kernels repeated cyclically (R, G, B, R, ...) and scaled by 3 / C, so that the
  sum over the inputs, and with it the size of the first activations, stays that of RGB;
- per-channel values (mean, variance, scale): repeated cyclically.

Only names and shapes decide: an array whose shape is the model's is used as it is; one that
differs in another way than the input channels is refused. numpy only, no Keras here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shiptoolkit.models.legacy_h5 import WeightsError

RGB = 3


def adapt_kernel(kernel: np.ndarray, channels: int) -> np.ndarray:
    """A (kh, kw, 3, filters) kernel for `channels` inputs, as smp's `patch_first_conv`.

    Example:
        >>> kernel = np.ones((1, 1, 3, 2))
        >>> adapt_kernel(kernel, 1)[0, 0, :, 0], adapt_kernel(kernel, 4)[0, 0, :, 0]
        (array([3.]), array([0.75, 0.75, 0.75, 0.75]))
    """
    kernel = np.asarray(kernel)
    if channels == kernel.shape[2]:
        return kernel
    if channels == 1:
        return kernel.sum(axis=2, keepdims=True)
    return kernel[:, :, repeat_index(kernel.shape[2], channels), :] * (kernel.shape[2] / channels)


def repeat_index(have: int, channels: int) -> np.ndarray:
    """The source channel of each of `channels` channels, cycling through `have`: 0, 1, 2, 0, 1, ..."""
    return np.arange(channels) % have


def repeat_channels(values: Sequence[float] | np.ndarray, channels: int) -> np.ndarray:
    """Per-channel values (a mean, a std, BatchNormalization statistics) repeated cyclically to `channels`."""
    values = np.asarray(values)
    return values[repeat_index(len(values), channels)]


def adapt_arrays(layer: str, saved: Sequence[np.ndarray], expected: Sequence[tuple], source: str) -> list:
    """`saved` (one layer's arrays from an RGB weights file) fitted to the `expected` shapes.

    Args:
        layer: the layer's name, for the error.
        saved: the file's arrays in the layer's weight order.
        expected: the model's shapes in the same order.
        source: the file, for the error.

    Raises:
        WeightsError: a different number of arrays, or a shape that differs in more than the input channels.
    """
    if len(saved) != len(expected):
        raise WeightsError(f"Layer {layer!r}: the model has {len(expected)} weight arrays, {source} has {len(saved)}.")
    fitted = []
    for array, shape in zip(saved, expected, strict=True):
        array, shape = np.asarray(array), tuple(shape)
        if array.shape != shape and _is_rgb_version(array.shape, shape):
            array = adapt_kernel(array, shape[2]) if array.ndim == 4 else repeat_channels(array, shape[0])
        if array.shape != shape:
            raise WeightsError(f"Layer {layer!r}: the model expects weight shape {shape}, {source} has "
                               f"{array.shape}. Is it the same architecture?")
        fitted.append(array)
    return fitted


def _is_rgb_version(have: tuple, want: tuple) -> bool:
    """Whether `have` is `want` for 3 input channels: a first kernel's input axis or per-channel values."""
    if len(have) == 4 and len(want) == 4:
        return have[2] == RGB and have[:2] == want[:2] and have[3] == want[3]
    return len(have) == 1 and len(want) == 1 and have[0] == RGB
