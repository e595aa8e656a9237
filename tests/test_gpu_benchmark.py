"""benchmarks/gpu.py, the prepared GPU check, CI-sized: its --quick run takes the same code paths on CPU (the
mirrored prediction on the CPU split into 2 logical devices) and prints every figure with a number, so the
check a GPU task runs in one call has not rotted; and the benchmark runner skips its full run without a GPU."""

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout: benchmarks/ is not installed
from benchmarks import run  # noqa: E402

FIGURE = re.compile(r"^([a-z0-9_]+): (\S+) (\S+)$", re.MULTILINE)

EXPECTED = [f"train_{tag}_{what}" for tag in ("float32", "mixed_float16", "mixed_float16_xla")
            for what in ("toolkit_images_per_s", "bare_fit_images_per_s", "overhead")]
EXPECTED += ["train_mixed_float16_bare_speedup_over_float32", "train_mixed_float16_xla_bare_speedup_over_float32",
             "loader_scaling_2_over_1_threads", "loader_2_threads_16_patches_per_image_pairs_per_s",
             "loader_2_threads_16_patches_per_image_over_4"]
EXPECTED += [f"loader_{t}_threads_{what}" for t in (1, 2)
             for what in ("pairs_per_s", "cores_busy", "cpu_per_pair", "over_step_consumption")]
EXPECTED += [f"{prefix}_{what}" for prefix in ("predict", "predict_mirrored")
             for what in ("end_to_end_images_per_s", "bare_forward_images_per_s", "end_to_end_over_forward",
                          "kaggle_test_projected_s", "kaggle_test_forward_only_s")]
EXPECTED += ["predict_mirrored_replicas", "predict_mirrored_speedup_over_default"]

# On JAX (what the lent GPU machine runs: no TensorFlow there): every step is XLA-compiled, so three train
# settings; no "mirrored" prediction (tf.distribute).
JAX_EXPECTED = [f"train_{tag}_{what}" for tag in ("float32", "mixed_float16", "mixed_bfloat16")
                for what in ("toolkit_images_per_s", "bare_fit_images_per_s", "overhead")]
JAX_EXPECTED += ["train_mixed_float16_bare_speedup_over_float32", "train_mixed_bfloat16_bare_speedup_over_float32"]
JAX_EXPECTED += [name for name in EXPECTED if name.startswith(("loader_", "predict_")) and "mirrored" not in name]

# gpu.py run as the GPU machine runs it: TensorFlow cannot be imported (installed here, hidden).
WITHOUT_TENSORFLOW = """
import runpy, sys

class HideTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ModuleNotFoundError(f"No module named {name!r} (hidden: the GPU machine has none)", name=name)

sys.meta_path.insert(0, HideTensorFlow())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def checked_figures(result, expected) -> dict:
    """The run's `name: value unit` figures, after asserting it succeeded and printed each of `expected`
    with a finite positive number."""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = {name: (value, unit) for name, value, unit in FIGURE.findall(result.stdout)}
    for name in expected:
        assert name in figures, f"{name} missing from:\n{result.stdout}"
        value = float(figures[name][0])
        assert math.isfinite(value) and value > 0, (name, figures[name])
    return figures


def test_quick_run_prints_every_figure_with_a_number_and_writes_them_to_out(tmp_path):
    out = tmp_path / "gpu.txt"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--quick", "--out", str(out)],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    figures = checked_figures(result, EXPECTED)
    assert figures["predict_mirrored_replicas"] == ("2", "replicas")
    assert figures["train_float32_toolkit_images_per_s"][1] == "images/s"
    # The optional settings are skipped past the budget (0 with --quick), each saying so.
    assert "# train_mixed_bfloat16_xla: skipped:" in result.stdout
    saved = out.read_text()
    assert saved.startswith("# device: CPU only: ")  # the file names the machine first
    assert saved.splitlines()[1].startswith("# backend: tensorflow ")  # then the backend and its devices
    assert FIGURE.findall(saved) == FIGURE.findall(result.stdout)


def test_quick_run_on_jax_needs_no_tensorflow_and_says_what_it_ran_on(tmp_path):
    if importlib.util.find_spec("jax") is None:
        if os.environ.get("SHIPTOOLKIT_REQUIRE_JAX"):
            pytest.fail("JAX is required here (SHIPTOOLKIT_REQUIRE_JAX is set) but is not installed.")
        pytest.skip("JAX is not installed (pip install -e '.[jax]'); CI installs it and runs this test.")
    out = tmp_path / "gpu.txt"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", WITHOUT_TENSORFLOW, str(ROOT / "benchmarks" / "gpu.py"), "--quick",
                             "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    figures = checked_figures(result, JAX_EXPECTED)
    assert not any(name.startswith("train_float32_xla") or "mirrored" in name for name in figures), figures
    lines = out.read_text().splitlines()
    assert lines[0].startswith("# device: CPU only: ") and "JAX " in lines[0]
    assert lines[1].startswith("# backend: jax ") and "jax.devices(): [CpuDevice(id=0)]" in lines[1]
    assert '# predict_mirrored: skipped: predict.strategy = "mirrored" is tf.distribute' in result.stdout


def test_the_runner_skips_the_full_gpu_run_without_a_gpu(monkeypatch, capsys):
    monkeypatch.setattr(run, "gpu_visible", lambda: False)
    assert run.main(["gpu"]) == 0
    shown = capsys.readouterr().out
    assert "# gpu.py: skipped: no GPU visible to TensorFlow" in shown
    assert "s wall, exit" not in shown  # the script was not started


def test_the_runner_asks_tensorflow_whether_it_sees_a_gpu():
    import tensorflow as tf

    assert run.gpu_visible() is bool(tf.config.list_physical_devices("GPU"))
