"""The plugin hooks. A plugin implements any of them with `@shiptoolkit.hookimpl`.

Each hook is a "register callback": it receives a `register(name, factory, override=False)`
function and calls it once per component. Built-in components register through these same hooks.
pluggy lets an implementation accept fewer arguments than the spec, so arguments can be added
later without breaking plugins.

Example (a local plugin module `my_plugin.py`):

    import shiptoolkit

    @shiptoolkit.hookimpl
    def register_losses(register):
        register("l1", make_l1_loss)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("shiptoolkit")
hookimpl = pluggy.HookimplMarker("shiptoolkit")

Register = Callable[..., Any]


@hookspec
def register_samplers(register: Register) -> None:
    """Register samplers: classes that stream `(image, mask)` uint8 pairs.

    `register(name, cls)`: `cls(index, **params)` must follow `shiptoolkit.samplers.Sampler`.
    """


@hookspec
def register_backbones(register: Register) -> None:
    """Register segmentation models.

    `register(name, fn)`: `fn(input_shape, classes=1, **params)` returns a `keras.Model` whose
    output has the input's height and width, `classes` channels and a sigmoid activation.
    """


@hookspec
def register_losses(register: Register) -> None:
    """Register losses.

    `register(name, fn)`: `fn(**params)` returns a loss `(y_true, y_pred) -> scalar` written
    with `keras.ops`, finite on batches without any ship pixel.
    """


@hookspec
def register_metrics(register: Register) -> None:
    """Register metrics.

    `register(name, fn)`: `fn(**params)` returns a metric. Set `fn.usage` to a set of
    {"train", "evaluate"}: training metrics are Keras metrics; evaluation metrics are numpy
    functions `(true_masks, pred_masks) -> float` over full images.
    """


@hookspec
def register_classifiers(register: Register) -> None:
    """Register image-level ship/no-ship classifiers (the gate in front of the segmenter).

    `register(name, fn)`: `fn(input_shape, **params)` returns a `keras.Model` mapping a batch of
    RGB images in 0..255 to one sigmoid output per image: the probability that it holds a ship.
    """
