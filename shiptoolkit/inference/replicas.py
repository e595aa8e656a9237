"""Forward passes spread over the devices of one machine: `predict.strategy = "mirrored"`.

Keras' `predict_on_batch` does not split a batch over the replicas of a
`tf.distribute.MirroredStrategy`: every replica runs the whole batch and the outputs come back
once per replica (N images in, N x replicas rows out). A `MirroredModel` splits each batch
itself: one equal shard per device (the tail padded), run with `strategy.run`, and the shards'
outputs put back together in order.

`predict.batch_size` (and a gate's batch) counts per replica: one step of a `MirroredModel` runs
batch_size x replicas windows or images (`forward`).
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from shiptoolkit.errors import ConfigError, require_tensorflow_backend

STRATEGIES = ("default", "mirrored")

_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its MirroredModel copy
_NEW_STRATEGY: list = []  # the one MirroredStrategy this process made for prediction
_ANNOUNCED: set[int] = set()  # strategies whose replica count was printed


def replica_count(model: Any) -> int:
    """How many devices one `predict_on_batch` of `model` runs on (1 for anything but a `MirroredModel`)."""
    return getattr(model, "replicas", 1) if isinstance(model, MirroredModel) else 1


def trace_any_batch(model: Any) -> None:
    """Trace the model's prediction once for batches of any size (TensorFlow: a Keras model's predict function
    is traced per input shape, and the first batch of a new size, e.g. a short last batch, costs a second trace of
    a few tenths of a second); other backends and objects: nothing to do."""
    import keras

    shape = getattr(model, "input_shape", None)
    if keras.backend.backend() != "tensorflow" or not isinstance(model, keras.Model) or not isinstance(shape, tuple):
        return
    import tensorflow as tf

    if model.predict_function is None:
        model.make_predict_function()
    # the structure predict_on_batch passes: [(x,)]
    model.predict_function.get_concrete_function([(tf.TensorSpec((None, *shape[1:]), tf.float32),)])


def forward(model: Any, x: np.ndarray, batch_size: int, few_shapes: bool = False) -> np.ndarray:
    """The model's outputs (float32) on x, in steps of `batch_size` per replica.

    A step gives the model batch_size x `replica_count(model)` items: each replica gets batch_size. With
    `few_shapes`, a short last batch is padded (its last item repeated, its outputs dropped) to a multiple of a
    quarter step: a backend keeps buffers for every batch shape it has run (oneDNN: ~80 MiB for all 31 short
    batches of 64 px patches after one of 32), so a long run of sliding patches (`shiptoolkit detect`) that meets
    every size of short batch keeps its memory flat. (A MirroredModel pads its shards itself.)
    """
    step = max(1, batch_size) * replica_count(model)
    quantum = step // 4 if few_shapes and step >= 8 and replica_count(model) == 1 else 1
    out = []
    for k in range(0, len(x), step):
        batch = x[k:k + step]
        pad = -len(batch) % quantum
        if pad:
            batch = np.concatenate([batch, np.repeat(batch[-1:], pad, axis=0)])
        out.append(np.asarray(model.predict_on_batch(batch))[:len(batch) - pad])
    return np.concatenate(out).astype(np.float32)


class MirroredModel:
    """A Keras model whose variables are on every device of a MirroredStrategy; batches are split over them.

    Behaves as the model does for prediction (`predict_on_batch`, `input_shape`, `output_shape`,
    `name`): a batch of N gives N outputs, in order, whatever the number of replicas.
    """

    def __init__(self, model: Any, strategy: Any) -> None:
        self.model, self.strategy = model, strategy
        self.devices = tuple(strategy.extended.worker_devices)
        self.replicas = len(self.devices)
        self.name, self.input_shape, self.output_shape = model.name, model.input_shape, model.output_shape
        self._step: Callable | None = None

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        n = len(x)
        per_replica = -(-n // self.replicas)
        if per_replica * self.replicas > n:  # equal shards: repeat the last item, drop its outputs below
            x = np.concatenate([x, np.repeat(x[-1:], per_replica * self.replicas - n, axis=0)])
        outputs = self._run(self._distribute(x, per_replica))
        return np.concatenate([np.asarray(o) for o in self.strategy.experimental_local_results(outputs)])[:n]

    def _distribute(self, x: np.ndarray, per_replica: int):
        """Shard r of x placed on device r (numpy left to the strategy would all land on the first device)."""
        import tensorflow as tf

        def shard(context):
            r = context.replica_id_in_sync_group
            with tf.device(self.devices[r]):
                return tf.identity(x[r * per_replica:(r + 1) * per_replica])

        return self.strategy.experimental_distribute_values_from_function(shard)

    def _run(self, values):
        if self._step is None:
            import tensorflow as tf

            model, strategy = self.model, self.strategy
            # One graph for all replicas; image sizes and tail batches retrace it (rarely: sizes repeat).
            self._step = tf.function(lambda v: strategy.run(lambda t: model(t, training=False), args=(v,)),
                                     reduce_retracing=True)
        return self._step(values)

    def __repr__(self) -> str:
        return f"MirroredModel({self.name!r}, replicas={self.replicas})"


def spread(model: Any, strategy: str, say: Callable[[str], Any] | None = None) -> Any:
    """`model` ready to predict under `predict.strategy`.

    "default": the model as it is, unless it runs under a MirroredStrategy of several replicas
    already (the model of mirrored training, predicting val_f2): then its batches are split over
    them, since Keras' own `predict_on_batch` would return every row once per replica.
    "mirrored": a `MirroredModel` copy made in a `tf.distribute.MirroredStrategy` over all GPUs
    (or the CPU), its weights synced from `model` on every call. `say` gets the replica count once.

    Raises:
        ConfigError: an unknown strategy, or "mirrored" for a model that is not a Keras model
            (an export runs with its own runtime, on one device).
        BackendError: "mirrored" while Keras runs on another backend than TensorFlow.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"predict.strategy must be one of {list(STRATEGIES)}. Received: {strategy!r}")
    if isinstance(model, MirroredModel):
        return model
    own = _mirrored_strategy_of(model)
    if own is not None:
        return MirroredModel(model, own)  # its variables are on the replicas already
    if strategy == "default":
        return model
    require_tensorflow_backend('predict.strategy = "mirrored" (tf.distribute)',
                               "Use --set predict.strategy=default (one device)")
    if not hasattr(model, "get_weights") or not hasattr(model, "distribute_strategy"):
        raise ConfigError(f"predict.strategy = \"mirrored\" spreads a Keras model over devices, but "
                          f"{getattr(model, 'name', type(model).__name__)!r} is not one (an export runs with its "
                          "own runtime on one device). Use --set predict.strategy=default.")
    mirrored = _mirrored_strategy()
    if mirrored is None:
        return model
    copy = _COPIES.get(model)
    if copy is None or copy.strategy is not mirrored:
        copy = _COPIES[model] = _copy_into(model, mirrored)
    else:
        copy.model.set_weights(model.get_weights())  # the model may have trained since
    if say is not None and id(mirrored) not in _ANNOUNCED:
        _ANNOUNCED.add(id(mirrored))
        say(describe(copy))
    return copy


def describe(model: MirroredModel) -> str:
    """One line: the replicas a mirrored prediction runs on, and what predict.batch_size means there."""
    devices = ", ".join(d.rpartition("/device:")[2] for d in model.devices)
    if model.replicas == 1:
        return (f"predict.strategy = \"mirrored\": 1 replica ({devices}), nothing to spread over: the same as "
                "\"default\" (a machine with several GPUs gets one replica per GPU).")
    return (f"predict.strategy = \"mirrored\": {model.replicas} replicas ({devices}); predict.batch_size counts per "
            f"replica, so each step predicts {model.replicas} x batch_size windows (whole images: "
            f"{model.replicas} x batch_size // 8).")


def _mirrored_strategy_of(model: Any):
    """The MirroredStrategy of several replicas a Keras model runs under (built, or called, in its scope), or None."""
    strategy = getattr(model, "distribute_strategy", None)
    if strategy is None or strategy.num_replicas_in_sync < 2:
        return None
    import tensorflow as tf

    return strategy if isinstance(strategy, tf.distribute.MirroredStrategy) else None


def _mirrored_strategy():
    """The MirroredStrategy to predict with: the one in scope (a strategy's scope cannot hold another),
    else one over all of this machine's GPUs (or its CPU), made once per process. None inside the scope
    of another kind of strategy (multi-worker training): the model then predicts as it is, with a warning."""
    import tensorflow as tf

    if tf.distribute.has_strategy():
        current = tf.distribute.get_strategy()
        if isinstance(current, tf.distribute.MirroredStrategy):
            return current
        warnings.warn(f"predict.strategy = \"mirrored\" is not applied inside a {type(current).__name__} scope "
                      "(train.strategy): predicting with that strategy's model as it is.", stacklevel=3)
        return None
    if not _NEW_STRATEGY:
        _NEW_STRATEGY.append(tf.distribute.MirroredStrategy())
    return _NEW_STRATEGY[0]


def _copy_into(model: Any, strategy: Any) -> MirroredModel:
    """A copy of the model (same architecture and weights) with its variables made in the strategy's scope."""
    import keras

    with strategy.scope():
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
    return MirroredModel(copy, strategy)
