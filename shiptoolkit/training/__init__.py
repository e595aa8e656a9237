"""Training: the gate's classifier, the segmenter, and the post-processing chosen on validation.

`stage` is the training stage (open or resume the run, train the gate, fit the segmenter, tune),
`model_setup` what the segmenter trains with (samplers, compiled model, learning rate, precision);
`gate` trains the ship/no-ship classifier; `pipeline` feeds `model.fit` from a sampler with
`augment`'s transforms; `callbacks` choose the checkpoint on validation f2 and stop collapsed
runs; `tuning` picks threshold, min_area, split depth and gate threshold on validation;
`multi_worker` and `cluster` train on several machines.

`from shiptoolkit.training import train` (and the stage's other names) still works: they are
looked up in `stage` on first use, so importing this package does not import Keras.
"""

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    stage = importlib.import_module("shiptoolkit.training.stage")
    try:
        return getattr(stage, name)
    except AttributeError:
        raise AttributeError(f"module 'shiptoolkit.training' has no attribute {name!r}") from None
