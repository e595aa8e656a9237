"""What a user's `pip install` gets: one TensorFlow build per install (the `cpu` or the `gpu` extra),
a clear message without one, a wheel that carries the example configs and the LICENSE, runnable by
name (`shiptoolkit run quickstart`), and one version number.

The wheel is built (and the extras resolved with `pip install --dry-run`) from a copy of the project,
so nothing is written into the source tree; both need the package index (setuptools for the build,
package metadata for the resolution).
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

import shiptoolkit
from shiptoolkit.cli import cli
from shiptoolkit.config.examples_index import example_names, examples_dir, resolve_config_path
from shiptoolkit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXAMPLE_TOMLS = sorted((ROOT / "examples").glob("*.toml"))
# The distributions that install the `tensorflow/` package. (On Windows `tensorflow` itself pulls in
# `tensorflow-intel` for some versions; these checks run on Linux.)
TENSORFLOW_DISTS = {"tensorflow", "tensorflow-cpu", "tensorflow-intel"}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _normalized(re.match(r"[A-Za-z0-9._-]+", requirement).group(0))


# --- packaged examples by name -------------------------------------------------------------------------


def test_every_example_toml_is_a_packaged_name():
    assert example_names() == [p.stem for p in EXAMPLE_TOMLS]
    assert examples_dir() == ROOT / "examples"  # a source checkout: the one copy in examples/


def test_a_name_resolves_to_the_packaged_example_and_a_file_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_config_path("quickstart") == ROOT / "examples" / "quickstart.toml"
    assert resolve_config_path("quickstart.toml") == ROOT / "examples" / "quickstart.toml"
    (tmp_path / "quickstart.toml").write_text("[train]\nepochs = 1\n")
    assert resolve_config_path("quickstart.toml") == Path("quickstart.toml")  # an existing file comes first
    assert resolve_config_path(str(EXAMPLE_TOMLS[0])) == EXAMPLE_TOMLS[0]


@pytest.mark.parametrize("given", ["nope", "sub/quickstart", "examples/nope.toml"])
def test_an_unknown_config_lists_the_packaged_names(given, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=f"Config file '{given}' not found. Packaged examples") as info:
        resolve_config_path(given)
    assert all(p.stem in str(info.value) for p in EXAMPLE_TOMLS)


def test_a_folder_is_not_a_config(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        resolve_config_path(tmp_path)


def test_the_cli_runs_a_packaged_example_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["run", "quickstart", "--dry-run", "--set", "train.epochs=1"])
    assert result.exit_code == 0, result.output
    assert f"source: {ROOT / 'examples' / 'quickstart.toml'}" in result.output and "epochs = 1" in result.output
    result = CliRunner().invoke(cli, ["run", "quickstrat", "--dry-run"])
    assert result.exit_code == 1 and "Packaged examples (run them by name):" in result.output
    assert "quickstart" in result.output and "Traceback" not in result.output


# --- one TensorFlow per install -----------------------------------------------------------------------


def test_the_base_dependencies_bring_no_tensorflow_and_each_extra_one():
    project = PYPROJECT["project"]
    assert not {_requirement_name(r) for r in project["dependencies"]} & TENSORFLOW_DISTS
    extras = project["optional-dependencies"]
    for extra in ("cpu", "gpu"):
        assert {_requirement_name(r) for r in extras[extra]} & TENSORFLOW_DISTS, extra
    for extra in set(extras) - {"cpu", "gpu"}:  # dev and docs must not add a second build to `.[dev,cpu]`
        assert not {_requirement_name(r) for r in extras[extra]} & TENSORFLOW_DISTS, extra


_WITHOUT_TENSORFLOW = """
import sys

class HideTensorFlow:  # as if TensorFlow were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, HideTensorFlow())
from click.testing import CliRunner
import shiptoolkit
from shiptoolkit.cli import cli

print("installed:", shiptoolkit.tensorflow_installed())
try:
    shiptoolkit.train
except shiptoolkit.TensorFlowMissingError as exc:
    print("api:", exc)
for args in (["--version"], ["run", "quickstart", "--dry-run"], ["train", "quickstart"]):
    result = CliRunner().invoke(cli, args)
    print("cli", args[0], result.exit_code, result.output.strip().replace("\\n", " "))
"""


def test_without_tensorflow_the_package_imports_and_names_the_extra():
    out = subprocess.run([sys.executable, "-c", _WITHOUT_TENSORFLOW], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert "installed: False" in out
    assert "api: TensorFlow is not installed" in out and "shiptoolkit[cpu]" in out
    assert f"cli --version 0 shiptoolkit, version {shiptoolkit.__version__}" in out
    for command in ("run", "train"):
        line = next(x for x in out.splitlines() if x.startswith(f"cli {command} "))
        assert line.startswith(f"cli {command} 1 Error: TensorFlow is not installed"), line
        assert "pip install 'shiptoolkit[cpu]'" in line and "shiptoolkit[gpu]" in line


# --- one version, a light package -----------------------------------------------------------------------


def test_the_version_is_written_once_and_reading_it_imports_no_tensorflow():
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "shiptoolkit.__version__"}
    code = ("import sys, shiptoolkit; print(shiptoolkit.__version__, "
            "'tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [shiptoolkit.__version__, "False", "False"]


def test_every_subpackage_is_listed_for_the_wheel():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "shiptoolkit").rglob("__init__.py")}
    assert listed == found | {"shiptoolkit.examples"}
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"shiptoolkit.examples": "examples"}


# --- the wheel, and what pip resolves ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory) -> Path:
    """The files a build reads, copied (setuptools writes build/ and *.egg-info next to them)."""
    copy = tmp_path_factory.mktemp("project")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, copy / name)
    for folder in ("shiptoolkit", "examples"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return copy


@pytest.fixture(scope="module")
def wheel(project_copy, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(project_copy)],
                   check=True, capture_output=True, text=True)
    (built,) = out.glob("shiptoolkit-*.whl")
    return built


def test_the_wheel_carries_the_examples_the_license_and_every_module(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    dist_info = f"shiptoolkit-{shiptoolkit.__version__}.dist-info"
    assert {f"shiptoolkit/examples/{p.name}" for p in EXAMPLE_TOMLS} <= names
    assert f"{dist_info}/licenses/LICENSE" in names
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "shiptoolkit").rglob("*.py")}
    assert modules <= names, modules - names


def test_the_wheel_metadata_names_version_license_and_extras(wheel):
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(f"shiptoolkit-{shiptoolkit.__version__}.dist-info/METADATA").decode()
    assert f"\nVersion: {shiptoolkit.__version__}\n" in metadata
    assert "\nLicense-Expression: MIT\n" in metadata and "\nLicense-File: LICENSE\n" in metadata
    assert "Provides-Extra: cpu" in metadata and "Provides-Extra: gpu" in metadata
    for line in metadata.splitlines():
        if line.startswith("Requires-Dist:") and _requirement_name(line.split(":", 1)[1].strip()) in TENSORFLOW_DISTS:
            assert "extra ==" in line, f"a TensorFlow outside the extras: {line}"


@pytest.mark.parametrize("extra", ["cpu", "gpu"])
def test_each_extra_resolves_to_exactly_one_tensorflow(extra, project_copy):
    """What `pip install ".[cpu]"` / `".[gpu]"` would install into an empty environment."""
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                             "--report", "-", f"{project_copy}[{extra}]"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    install = {_normalized(item["metadata"]["name"]) for item in json.loads(result.stdout)["install"]}
    assert len(install & TENSORFLOW_DISTS) == 1, sorted(install & TENSORFLOW_DISTS)
    if sys.platform == "linux" and platform.machine() == "x86_64":
        assert (install & TENSORFLOW_DISTS) == {"tensorflow-cpu" if extra == "cpu" else "tensorflow"}
        assert any(name.startswith("nvidia-cudnn") for name in install) == (extra == "gpu")
