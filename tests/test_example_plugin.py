"""The example plugin in plugins/ installs as a real package and is found through its entry point."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "shiptoolkit-size-balanced"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    str(PLUGIN)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), *sys.path])}
    env.pop("SHIPTOOLKIT_LOAD_PLUGINS", None)  # load every installed plugin, as a user would
    return env


def shiptoolkit(env, *args):
    return subprocess.run([sys.executable, "-m", "shiptoolkit", *args], env=env, text=True,
                          capture_output=True, timeout=300)


def test_installed_plugin_is_listed(installed):
    result = shiptoolkit(installed, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert listed["size_balanced"]["version"] == "0.1.0"
    assert listed["size_balanced"]["components"] == {"sampler": ["size_balanced"]}


def test_load_plugins_env_narrows_loading(installed):
    result = shiptoolkit({**installed, "SHIPTOOLKIT_LOAD_PLUGINS": ""}, "plugins", "--json")
    assert result.returncode == 0 and json.loads(result.stdout) == []
    only = {**installed, "SHIPTOOLKIT_LOAD_PLUGINS": "shiptoolkit-size-balanced"}
    result = shiptoolkit(only, "plugins", "--json")
    assert [p["name"] for p in json.loads(result.stdout)] == ["size_balanced"]


def test_a_run_uses_the_plugin_sampler_by_name(installed, tmp_path, tiny_run_toml):
    config = tiny_run_toml("balanced", 'name = "size_balanced"\npatch_size = 64\narea_edges = [100, 400]\n'
                           'patches_per_epoch = 16', run='stages = ["train"]', images=16)
    result = shiptoolkit(installed, "run", str(config), "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = next((tmp_path / "runs").iterdir())
    assert (run_dir / "best.keras").is_file()
    assert 'name = "size_balanced"' in (run_dir / "config.toml").read_text()
