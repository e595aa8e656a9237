"""Training on several machines with `tf.distribute.MultiWorkerMirroredStrategy` under Keras 3.

Three things make Keras 3's `fit` work under that strategy, and keep every worker identical:

- Two Keras 3 (3.15) bugs are patched while a multi-worker strategy exists (keras-team/keras
  #20585, tensorflow/tensorflow #72388): `fit` reduces the first batch across workers with a
  call TensorFlow's collective strategy cannot take (a tuple of values), and reduces every scalar
  log (loss, metrics) "along axis 0", which a scalar has not. The patches change nothing for the
  other strategies.
- Batch-normalisation statistics are not synchronised by Keras 3 (each worker averages its own
  share of the batches): `AverageAcrossWorkers` averages them at every epoch's end, so every
  worker holds the same model before it is scored or saved.
- Validation f2 is scored by the chief alone and shared (`share_from_chief`), so every worker
  takes the same checkpoint, early-stopping and learning-rate decisions on the same number.

The strategy must exist before TensorFlow runs anything: `strategy()` creates it once per process.

TensorFlow is imported inside the functions that use it: on another Keras backend (`KERAS_BACKEND=jax`)
train.strategy = "default" trains on one device with no TensorFlow (`NoStrategy`), and "mirrored" or
"multi_worker" raise `BackendError`, which names the fix.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import tempfile
import weakref
from pathlib import Path

import keras

from shiptoolkit.errors import ShiptoolkitError, require_tensorflow_backend
from shiptoolkit.rundir import RunDir, RunFailed

_state: dict[str, object] = {}


class NoStrategy:
    """train.strategy = "default" on a backend other than TensorFlow: one device, a scope that does nothing."""

    def scope(self):
        return contextlib.nullcontext()


def strategy(name: str):
    """TensorFlow's engine for `train.strategy`: 'default', 'mirrored' or 'multi_worker' (one per
    process, created on first use: collective ops must be configured before any other TF op).
    On another Keras backend: `NoStrategy` for 'default'; the others raise `BackendError`."""
    if keras.backend.backend() != "tensorflow":
        if name == "default":
            return NoStrategy()
        require_tensorflow_backend(f'train.strategy = "{name}" (tf.distribute)',
                                   "Use train.strategy = \"default\" (one device)")
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name != "multi_worker":
        return tf.distribute.get_strategy()
    if "multi_worker" not in _state:
        try:
            _state["multi_worker"] = tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG
        except (RuntimeError, ValueError) as exc:
            raise ShiptoolkitError(
                f"train.strategy = \"multi_worker\" could not start ({type(exc).__name__}: {exc}). The strategy must "
                "be created before TensorFlow runs anything else in the process: start a new process "
                "(`shiptoolkit train CONFIG --workers ... --worker-index I`), and check TF_CONFIG.") from None
        _patch_keras()
    return _state["multi_worker"]


def is_multi_worker(distribution) -> bool:
    if distribution is None or isinstance(distribution, NoStrategy):
        return False
    import tensorflow as tf

    return isinstance(distribution, tf.distribute.MultiWorkerMirroredStrategy)


def _first_local(value, distribution):
    import tensorflow as tf

    if isinstance(value, tf.distribute.DistributedValues):
        return distribution.experimental_local_results(value)[0]
    return value


def _patch_keras() -> None:
    """Fix Keras 3's `fit` under MultiWorkerMirroredStrategy (see the module's docstring)."""
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, "_shiptoolkit_patched", False):
        return
    if not (hasattr(trainer, "reduce_per_replica") and hasattr(trainer.TensorFlowTrainer, "_maybe_symbolic_build")):
        raise ShiptoolkitError(f"train.strategy = \"multi_worker\" needs Keras 3's TensorFlow trainer as of Keras 3.15 "
                               f"(keras {keras.__version__} has changed it). Use train.strategy = \"mirrored\" or "
                               "\"default\", or install keras 3.15.")
    reduce_per_replica = trainer.reduce_per_replica
    symbolic_build = trainer.TensorFlowTrainer._maybe_symbolic_build

    @functools.wraps(reduce_per_replica)
    def reduce_scalars_too(values, distribution, reduction="auto"):
        if reduction not in ("auto", "mean") or not is_multi_worker(distribution):
            return reduce_per_replica(values, distribution, reduction)

        def reduce(value):  # a scalar log: the mean over every replica of every worker
            if _first_local(value, distribution).shape.rank == 0:
                return distribution.reduce("MEAN", value, axis=None)
            return reduce_per_replica(value, distribution, reduction)

        return tree.map_structure(reduce, values)

    @functools.wraps(symbolic_build)
    def build_from_local_batch(model, iterator=None, data_batch=None):
        distribution = model._distribute_strategy
        if iterator is not None and is_multi_worker(distribution):
            for _, _, batches in iterator:  # the shapes are all the build needs: this worker's first batch has them
                data_batch = tree.map_structure(lambda v: _first_local(v, distribution), next(batches))
                break
            iterator = None
        return symbolic_build(model, iterator=iterator, data_batch=data_batch)

    trainer.reduce_per_replica = reduce_scalars_too
    trainer.TensorFlowTrainer._maybe_symbolic_build = build_from_local_batch
    trainer._shiptoolkit_patched = True


class AverageAcrossWorkers(keras.callbacks.Callback):
    """At every epoch's end, average the model's non-trainable float weights (batch-norm moving
    statistics) over the workers, in one all-reduce: Keras 3 leaves each worker with the
    statistics of its own share of the batches. Runs before the callbacks that score or save."""

    def __init__(self, distribution) -> None:
        super().__init__()
        self.distribution = distribution

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        import tensorflow as tf

        variables = [v for v in self.model.non_trainable_variables if "float" in str(v.dtype)]
        if not variables:
            return
        flat = tf.concat([tf.reshape(tf.convert_to_tensor(v.value), [-1]) for v in variables], axis=0)
        mean = self.distribution.reduce("MEAN", flat, axis=None)
        start = 0
        for v in variables:
            size = int(tf.size(v.value))
            v.assign(tf.reshape(mean[start:start + size], v.shape))
            start += size


def share_from_chief(distribution, values: list[float], is_chief: bool) -> list[float]:
    """The chief's `values` on every worker (one all-reduce: the others contribute zeros).

    Every worker must call it at the same point (a collective operation)."""
    import tensorflow as tf

    mine = tf.constant(values if is_chief else [0.0] * len(values), tf.float64)
    return [float(v) for v in distribution.reduce("SUM", mine, axis=None).numpy()]


_LOCAL_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def local_copy(model):
    """The model's current weights in a model outside any strategy: one worker can predict with it
    alone (predicting with the distributed model is a collective step every worker must join)."""
    copy = _LOCAL_COPIES.get(model)
    if copy is None:
        copy = _LOCAL_COPIES[model] = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


@contextlib.contextmanager
def scratch_run(index: int, resume: str | Path | None = None):
    """A temporary run directory for a worker that is not the chief, deleted at the end: empty, or a
    copy of the run being resumed (so that run must be readable from every worker: a shared file
    system). TensorFlow's advice: every worker runs the same steps, saves included, and only the
    chief's files are kept."""
    scratch = Path(tempfile.mkdtemp(prefix=f"shiptoolkit-worker{index}-"))
    try:
        if resume is not None:
            run = RunDir(resume)  # the chief's lock stays the chief's
            shutil.copytree(resume, scratch / "run", ignore=shutil.ignore_patterns(run.tensorboard.name, run.lock.name))
        yield scratch / "run"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class WorkerLost(RunFailed):
    """A worker of a multi-worker run died or stopped answering; the run is marked failed, and resumable."""


@contextlib.contextmanager
def lost_worker_marks(run: RunDir):
    """Turns TensorFlow's errors for a lost worker (its heartbeat stopped, a collective timed out)
    into `WorkerLost`, with the run marked failed and the command that resumes it. (Other backends have no
    workers to lose: nothing is caught there.)"""
    lost: tuple[type[BaseException], ...] = ()
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        lost = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError)
    try:
        yield
    except lost as exc:
        lines = str(exc).strip().splitlines()
        first = (lines[0] if lines else type(exc).__name__)[:300]
        run.mark("failed", f"a worker was lost: {first}")
        raise WorkerLost(f"Training stopped: a worker of the cluster died or stopped answering ({type(exc).__name__}: "
                         f"{first}). The run is marked failed; last.keras holds the last finished epoch. Start every "
                         f"worker again with `shiptoolkit train --resume {run.path}` and the same --workers and "
                         "--worker-index (or TF_CONFIG).") from None
