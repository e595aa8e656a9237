"""Reliability of training runs: each hostile or careless case gets a clear answer and loses nothing.

Each test names the case of issue 14 it reproduces. CLI tests assert the exit code, that no
traceback reaches the user, and that the message names the bad value and the fix.
"""

import json
import os
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest
from click.testing import CliRunner

import shiptoolkit
from shiptoolkit import plugins
from shiptoolkit.cli import cli
from shiptoolkit.data.check import check_dataset
from shiptoolkit.data.rle import rle_encode


@pytest.fixture(scope="module")
def dataset(small_ship_dataset):
    return small_ship_dataset(16)


SAMPLER = 'name = "mixed"\npatch_size = 32\npatches_per_epoch = 16'
BACKBONE = 'name = "unet"\nbase_filters = 4\ndepth = 2'


def write_toml(tmp_path, dataset, extra: str = "", name: str = "tiny", epochs: int = 1, sampler: str = SAMPLER,
               backbone: str = BACKBONE) -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text(f"""
[run]
name = "{name}"
out_dir = "{tmp_path / 'runs'}"
stages = ["train"]
[data]
path = "{dataset}"
image_size = 64
val_fraction = 0.25
[sampler]
{sampler}
[backbone]
{backbone}
[train]
epochs = {epochs}
batch_size = 8
val_f2_images = 4
{extra}
""")
    return str(path)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_clean_failure(result, *needles):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.output
    for needle in needles:
        assert needle in result.output, (needle, result.output)


def only_run_dir(tmp_path):
    (run_dir,) = (tmp_path / "runs").iterdir()
    return run_dir


def state_of(run_dir):
    return json.loads((run_dir / "train_state.json").read_text())


def register(plugin_cleanup, name, **hooks):
    """Register an in-process plugin with the given hook functions."""
    module = types.SimpleNamespace(**{k: shiptoolkit.hookimpl(v) for k, v in hooks.items()})
    plugins.register_plugin(module, name)
    plugin_cleanup.append(name)


# -- silent wrong results ---------------------------------------------------------------------------

def test_run_with_nan_loss_stops_and_exits_non_zero(dataset, tmp_path):
    """`shiptoolkit run tiny.toml --set train.learning_rate=1e9`: no f2 table, exit 1, run dir kept."""
    config = write_toml(tmp_path, dataset, 'optimizer = "sgd"\ncollapse_patience = 0', epochs=3)
    result = invoke("run", config, "--quiet", "--set", "train.learning_rate=1e12", "--set", "data.test_fraction=0.25",
                    "--set", 'run.stages=["train", "predict", "evaluate"]')  # (no test set: refused before training)
    assert_clean_failure(result, "NaN", "train.learning_rate=1000000000000.0")
    assert "f2:" not in result.output
    run_dir = only_run_dir(tmp_path)
    assert state_of(run_dir)["status"] == "failed_nan" and not (run_dir / "submission.csv").exists()


def test_train_with_a_plugin_loss_returning_nan_exits_non_zero(dataset, tmp_path, plugin_cleanup):
    """A plugin loss returning NaN with `train`: exit 1 naming the NaN, not exit 0."""
    import keras

    def nan_loss():
        """A loss that is always NaN."""
        return lambda y_true, y_pred: keras.ops.mean(y_pred) * float("nan")

    register(plugin_cleanup, "nan-loss", register_losses=lambda register: register("nan_loss", nan_loss))
    config = write_toml(tmp_path, dataset, "collapse_patience = 0\n[loss]\nname = \"nan_loss\"")
    assert_clean_failure(invoke("train", config, "--quiet"), "NaN")


def test_resume_refuses_an_override_that_changes_the_model(dataset, tmp_path):
    """`train --resume RUN --set backbone.base_filters=16`: refused naming the key; config.toml unchanged."""
    assert invoke("train", write_toml(tmp_path, dataset), "--quiet").exit_code == 0
    run_dir = only_run_dir(tmp_path)
    before = (run_dir / "config.toml").read_text()
    result = invoke("train", "--resume", run_dir, "--set", "backbone.base_filters=16", "--quiet")
    assert_clean_failure(result, "backbone.base_filters", "cannot change on --resume", "train.epochs")
    assert (run_dir / "config.toml").read_text() == before
    resumed = invoke("train", "--resume", run_dir, "--set", "train.epochs=2", "--quiet")  # allowed keys still work
    assert resumed.exit_code == 0, resumed.output
    assert state_of(run_dir)["epochs_completed"] == 2


def test_data_check_reports_two_rows_covering_the_same_pixels(tmp_path, rect_writer):
    """Two rows of one image sharing pixels: `data check` names the CSV lines and the pixel count."""
    root = rect_writer(tmp_path / "overlap", {"a.jpg": [(10, 20, 10, 30)], "b.jpg": []}, size=64)
    mask = np.zeros((64, 64), np.uint8)
    mask[15:25, 20:40] = 1  # shares rows 15..19, columns 20..29 with the first ship: 50 pixels
    csv = root / "train_ship_segmentations_v2.csv"
    csv.write_text(csv.read_text() + f"a.jpg,{rle_encode(mask)}\n")
    report = check_dataset(root, size=64, progress=False)
    (problem,) = [p for p in report.problems if p.kind == "overlapping_ships"]
    assert "CSV lines 2 and 4" in problem.message and "share 50 pixel(s)" in problem.message
    assert "union" in problem.message
    result = invoke("data", "check", root, "--size", 64)
    assert result.exit_code == 1 and "overlapping_ships: 1" in result.output


def test_a_sampler_plugin_returning_float_images_is_named(dataset, tmp_path, plugin_cleanup):
    """A sampler plugin yielding float images in 0..1 would train on near-black input: refused, naming it."""
    from shiptoolkit.samplers.full_images import FullImageSampler

    class FloatSampler(FullImageSampler):
        """Whole images, wrongly scaled to 0..1 floats."""

        def pair(self, i, epoch=0):
            image, mask = super().pair(i, epoch)
            return image.astype("float32") / 255, mask

    register(plugin_cleanup, "floaty-plugin", register_samplers=lambda register: register("floaty", FloatSampler))
    result = invoke("train", write_toml(tmp_path, dataset, sampler='name = "floaty"\nsize = 64'), "--quiet")
    assert_clean_failure(result, "sampler 'floaty'", "floaty-plugin", "float32", "uint8")


def test_a_sampler_yielding_pairs_of_the_wrong_size_is_named(dataset, tmp_path, plugin_cleanup):
    """A sampler whose masks do not match its images: the error names plugin and component, not numpy."""
    from shiptoolkit.samplers.full_images import FullImageSampler

    class Misfit(FullImageSampler):
        """Masks of the wrong size."""

        def pair(self, i, epoch=0):
            image, mask = super().pair(i, epoch)
            return image, mask[:32]

    register(plugin_cleanup, "misfit-plugin", register_samplers=lambda register: register("misfit", Misfit))
    config = write_toml(tmp_path, dataset, sampler='name = "misfit"\nsize = 64')
    assert_clean_failure(invoke("train", config, "--quiet"), "misfit-plugin", "mask has shape")


def test_a_backbone_plugin_factory_that_raises_is_named(dataset, tmp_path, plugin_cleanup):
    """A backbone factory raising: the message names the component and its plugin."""
    def broken(input_shape=(32, 32, 3)):
        """Always fails."""
        raise RuntimeError("weights server unreachable")

    register(plugin_cleanup, "broken-plugin", register_backbones=lambda register: register("broken", broken))
    result = invoke("train", write_toml(tmp_path, dataset, backbone='name = "broken"'), "--quiet")
    assert_clean_failure(result, "backbone 'broken'", "broken-plugin", "weights server unreachable")
    run_dir = only_run_dir(tmp_path)
    state = state_of(run_dir)  # failed runs say so in the run directory
    assert state["status"] == "failed" and "weights server unreachable" in state["reason"]


# -- tracebacks for user mistakes --------------------------------------------------------------------

def test_a_csv_with_only_a_header_is_a_clear_error(tmp_path, rect_writer):
    """A CSV with only a header given to `train`: no `ValueError: MixedSampler needs at least one image`."""
    root = rect_writer(tmp_path / "empty", {"a.jpg": []}, size=64)
    (root / "train_ship_segmentations_v2.csv").write_text("ImageId,EncodedPixels\n")
    result = invoke("train", write_toml(tmp_path, root), "--quiet")
    assert_clean_failure(result, "no usable image", "a header only?", "data.path")
    assert state_of(only_run_dir(tmp_path))["status"] == "failed"


def test_resume_with_a_corrupt_last_keras_changes_nothing(dataset, tmp_path):
    """Resume with a corrupt last.keras: a clear message; train_state.json and config.toml untouched."""
    assert invoke("train", write_toml(tmp_path, dataset), "--quiet").exit_code == 0
    run_dir = only_run_dir(tmp_path)
    (run_dir / "last.keras").write_bytes((run_dir / "last.keras").read_bytes()[:500])
    before = {name: (run_dir / name).read_text() for name in ("train_state.json", "config.toml")}
    result = invoke("train", "--resume", run_dir, "--set", "train.epochs=3", "--quiet")
    assert_clean_failure(result, "last.keras", "cannot be resumed", "Nothing in the run directory was changed")
    assert {name: (run_dir / name).read_text() for name in before} == before


# -- unclear -----------------------------------------------------------------------------------------

def test_a_missing_jpg_is_named_or_skipped_and_listed(tmp_path, rect_writer):
    """A missing JPG: `train` no longer exits 0 without a word; with on_error=skip it is listed in skipped.csv."""
    specs = {f"m{i:02d}.jpg": ([(10, 18, 10, 30)] if i % 2 == 0 else []) for i in range(12)}
    root = rect_writer(tmp_path / "missing", specs, size=64)
    (root / "train_v2" / "m05.jpg").unlink()
    config = write_toml(tmp_path, root)
    assert_clean_failure(invoke("train", config, "--quiet"), "m05.jpg", "not found", 'data.on_error = "skip"')
    result = invoke("run", config, "--quiet", "--set", "data.on_error=skip")
    assert result.exit_code == 0, result.output
    assert "skipped 1 image(s) (1 missing_image)" in result.output and "m05.jpg" in result.output
    run_dir = sorted((tmp_path / "runs").iterdir())[-1]
    assert "m05.jpg,missing_image" in (run_dir / "skipped.csv").read_text()


def _interrupt(args, tmp_path, wait_for: str = "expected training time"):
    """Start `shiptoolkit ARGS`, send SIGINT once training steps run, return (code, output, seconds).

    The marker is printed after five training steps, so the train step is traced by then: the signal
    lands in the steady part of training every time (one landing while Keras traces is
    tests/test_hostile_runs.py's own, deterministic case)."""
    env = {**os.environ, "SHIPTOOLKIT_LOAD_PLUGINS": "", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "shiptoolkit", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    seen = ""
    deadline = time.monotonic() + 120
    while wait_for not in seen and time.monotonic() < deadline and proc.poll() is None:
        seen += proc.stdout.readline()
    assert wait_for in seen, seen
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out + err, time.monotonic() - sent


@pytest.mark.parametrize("command", ["train", "run"])
def test_ctrl_c_ends_promptly_with_the_run_dir_and_the_resume_command(dataset, tmp_path, command):
    """SIGINT during `train` / `run`: exit 130 within seconds, printing the run dir and `train --resume`."""
    config = write_toml(tmp_path, dataset, "steps_per_epoch = 400", epochs=50)
    code, output, seconds = _interrupt([command, config], tmp_path)
    run_dir = only_run_dir(tmp_path)
    assert code == 130, output[-2000:]
    assert seconds < 30 and "Aborted!" not in output
    assert f"shiptoolkit train --resume {run_dir}" in output
    assert state_of(run_dir)["status"] == "interrupted"


def test_a_synthetic_cache_that_lost_images_is_named_not_used(tmp_path):
    """A finished synthetic cache whose images were partly deleted (a cleaned /tmp) was reused as if whole."""
    from shiptoolkit.config import load_config
    from shiptoolkit.data.source import ensure_synthetic
    from shiptoolkit.errors import DataError

    config = load_config({"data": {"synthetic_images": 6, "image_size": 64, "cache_dir": str(tmp_path / "cache")}})
    path = ensure_synthetic(config, progress=False)
    assert ensure_synthetic(config, progress=False) == path  # a whole cache is reused
    next((path / "train_v2").iterdir()).unlink()
    with pytest.raises(DataError, match=r"holds 5 of its 6 images.*Delete that folder"):
        ensure_synthetic(config, progress=False)
