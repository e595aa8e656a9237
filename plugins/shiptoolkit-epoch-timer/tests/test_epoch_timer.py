import csv

import numpy as np

import shiptoolkit
import shiptoolkit_epoch_timer
from shiptoolkit import plugins
from shiptoolkit.plugins.contracts import build_callbacks
from shiptoolkit_epoch_timer import FILE_NAME, epoch_timer


def test_one_line_per_epoch_with_the_learning_rate(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    callback = epoch_timer(None, tmp_path, stage="classifier")
    model.fit(np.zeros((8, 3)), np.zeros((8, 1)), epochs=2, verbose=0, callbacks=[callback])
    model.fit(np.zeros((8, 3)), np.zeros((8, 1)), epochs=3, initial_epoch=2, verbose=0,
              callbacks=[epoch_timer(None, tmp_path)])  # a resumed fit appends
    rows = list(csv.DictReader((tmp_path / FILE_NAME).open()))
    assert [(r["stage"], r["epoch"]) for r in rows] == [("classifier", "1"), ("classifier", "2"), ("segmenter", "3")]
    assert all(float(r["seconds"]) >= 0 and float(r["learning_rate"]) == 0.05 for r in rows)


def test_registered_and_selected_by_name(tmp_path):
    name = plugins.register_plugin(shiptoolkit_epoch_timer, name="epoch_timer_test")
    try:
        assert plugins.get_registry("callback").get("epoch_timer").plugin == "epoch_timer_test"
        config = shiptoolkit.load_config({"train": {"callbacks": ["epoch_timer"]}})
        (callback,) = build_callbacks(config, tmp_path, "segmenter")
        assert callback.path == tmp_path / FILE_NAME and callback.stage == "segmenter"
    finally:
        plugins.unregister_plugin(name)
