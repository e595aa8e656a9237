"""What the segmenter trains with: its samplers, its compiled model (backbone, loss, metrics,
optimizer and learning-rate schedule) and the precision policy. The training stage (`stage`) calls
these; `benchmarks/` and tests build models through them too.
"""

from __future__ import annotations

import contextlib

import keras

from shiptoolkit.config import Config
from shiptoolkit.errors import ConfigError
from shiptoolkit.plugins.contracts import build_component, check_sampler


def build_samplers(config: Config, train_index, val_index):
    """(train, validation or None) samplers from [sampler]; validation draws with another seed.

    The first pairs are checked against the sampler contract (`shiptoolkit.plugins.contracts`)."""
    sampler, seed = config.settings.sampler, config.settings.run.seed
    train_sampler = build_component("sampler", sampler.name, train_index, seed=seed, **sampler.params)
    check_sampler(train_sampler, sampler.name, seams=train_index.seams)
    val_sampler = (build_component("sampler", sampler.name, val_index, seed=seed + 1, **sampler.params)
                   if len(val_index) else None)
    return train_sampler, val_sampler


def build_model(config: Config, input_shape: tuple[int, int, int], total_steps: int = 0):
    """Backbone from [backbone], compiled with [loss], metrics.train and the optimizer."""
    backbone = config.settings.backbone
    params = dict(backbone.params)
    if config.settings.train.seam_channel:
        if params.get("classes", 1) not in (1, 2):
            raise ConfigError(f"train.seam_channel needs a one-class backbone (it adds the seam channel). "
                              f"Received: backbone.classes={params['classes']}")
        params["classes"] = 2
    model = build_component("backbone", backbone.name, input_shape=input_shape, **params)
    compile_model(model, config, total_steps)
    return model


def learning_rate(config: Config, total_steps: int):
    """train.learning_rate, or with train.schedule = "cosine" a warm-up from lr/10 then a cosine decay to lr/100.

    Why: a high constant rate from the first step is what made small U-Nets collapse to "no ship
    anywhere" (the bias of the output layer runs to the empty side before the features form).
    """
    t = config.settings.train
    if t.schedule != "cosine" or total_steps < 2:
        return t.learning_rate
    warmup = int(total_steps * t.warmup_fraction)
    return keras.optimizers.schedules.CosineDecay(t.learning_rate / 10, max(1, total_steps - warmup), alpha=0.01,
                                                  warmup_target=t.learning_rate, warmup_steps=warmup)


def compile_model(model, config: Config, total_steps: int = 0) -> None:
    s = config.settings
    metrics = []
    for metric_name in s.metrics.train:
        component = build_component("metric", metric_name)  # its result checked
        if "train" not in component.usage:
            raise ConfigError(f"metrics.train: {metric_name!r} is an evaluation-only metric; "
                              "put it in metrics.evaluate.")
        metrics.append(component.keras_metric())
    optimizer = type(keras.optimizers.get(s.train.optimizer))(learning_rate=learning_rate(config, total_steps))
    # On JAX every step is XLA-compiled (jax.jit) whatever train.jit_compile says: without it JAX runs op by op.
    jit = s.train.jit_compile or keras.backend.backend() == "jax"
    model.compile(optimizer=optimizer, loss=build_component("loss", s.loss.name, **s.loss.params),
                  metrics=metrics, jit_compile=jit)


@contextlib.contextmanager
def precision_policy(mixed: bool):
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else previous)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
