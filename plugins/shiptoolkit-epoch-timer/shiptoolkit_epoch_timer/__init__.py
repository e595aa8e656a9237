"""shiptoolkit plugin adding the `epoch_timer` callback (select it with `train.callbacks = ["epoch_timer"]`).

The hook module stays light: Keras is imported by the factory, when a training run builds the
callback, so loading the plugin (e.g. for `shiptoolkit --help`) costs nothing.
"""

from pathlib import Path

import shiptoolkit

FILE_NAME = "epoch_times.csv"

__all__ = ["FILE_NAME", "epoch_timer", "register_callbacks"]


def epoch_timer(config, run_dir: Path, stage: str = "segmenter"):
    """One line per epoch in the run directory's epoch_times.csv: stage, epoch, wall seconds, learning rate."""
    from shiptoolkit_epoch_timer.timer import EpochTimer  # imports Keras

    return EpochTimer(Path(run_dir) / FILE_NAME, stage)


@shiptoolkit.hookimpl
def register_callbacks(register):
    register("epoch_timer", epoch_timer)
