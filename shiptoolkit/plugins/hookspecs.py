"""The plugin hooks. A plugin implements any of them with `@shiptoolkit.hookimpl`.

Each component hook is a "register callback": it receives a `register(name, factory,
override=False)` function and calls it once per component. Built-in components register through
these same hooks. `register_commands(cli)` instead receives the click group of the `shiptoolkit`
command, as simonw/llm's hook of that name does. pluggy lets an implementation accept fewer
arguments than the spec, so arguments can be added later without breaking plugins.

Example (a local plugin module `my_plugin.py`):

    import shiptoolkit

    @shiptoolkit.hookimpl
    def register_losses(register):
        register("l1", make_l1_loss)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # click is a dependency of the CLI, not of the hooks
    import click

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
def register_encoders(register: Register) -> None:
    """Register encoders: the feature extractors every encoder-taking architecture is built on.

    `register(name, fn)`: `fn(input_shape, **params)` returns a `shiptoolkit.models.encoders.Encoder`
    (its input, its deepest feature map at stride 32, its skip features at strides 16, 8, 4 and 2,
    deepest first, and how its ImageNet weights load). A plugin's encoder then serves every
    architecture: `[backbone] name = "fpn"`, `encoder = "my_encoder"`.
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


@hookspec
def register_callbacks(register: Register) -> None:
    """Register Keras callbacks, e.g. experiment loggers (MLflow, Weights & Biases), selected by name
    with `train.callbacks = ["name", ...]`.

    `register(name, factory)`: `factory(config, run_dir)` returns a `keras.callbacks.Callback`, or
    None to opt out. It is called once per fit: for the segmenter, and for the classifier when the
    config has a [classifier]; a factory that also accepts `stage` gets "segmenter" or
    "classifier". `run_dir` is the run directory (a `Path`) to write into. Its callbacks come after
    shiptoolkit's own, so their logs hold `val_f2`. Import Keras inside the factory, not at module
    top, so that `shiptoolkit --help` stays fast.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the `shiptoolkit` command line.

    `cli` is its click group: decorate functions with `@cli.command()` (or `@cli.group()` for
    several). A plugin's commands are looked up when a name is not a built-in command, and listed
    by `shiptoolkit --help`; a name that is already taken is an error naming the plugin. Import
    heavy modules (Keras) inside the command, not in the hook.
    """
