"""The package's structure holds to its map (`shiptoolkit.layers`): no import circles, nothing imports
upward, package modules are imported at module top (only Keras-heavy ones lazily), every run-dir file
name comes from `RunDir`, and one run opens its dataset once."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import shiptoolkit
from shiptoolkit.layers import LAYER_OF, LAZY, import_cycles, import_graph, layer_violations
from shiptoolkit.rundir import RunDir

PACKAGE = Path(shiptoolkit.__file__).parent
GRAPH = import_graph(PACKAGE)


def test_there_are_no_import_circles():
    assert import_cycles(GRAPH) == []


def test_no_module_imports_upward_past_its_layer():
    assert layer_violations(GRAPH) == []


def test_the_cycle_check_finds_a_circle():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_violations({"shiptoolkit.errors": {"shiptoolkit.runner"}}) == [
        "shiptoolkit.errors -> shiptoolkit.runner"]


def _top_level_imports(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_package_imports_sit_at_module_top(path):
    """Inside functions only modules that import Keras/TensorFlow at their top (`LAZY`), so that the
    package, the CLI and the config stay fast to import; everything else at the top, where it is seen."""
    tree = ast.parse(path.read_text())
    inside = []
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("shiptoolkit"):
                targets = {f"{node.module}.{a.name}" if node.module == "shiptoolkit" else node.module
                           for a in node.names}
                inside += sorted(targets - LAZY)
    assert inside == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_lazy_modules_import_keras_at_their_top(path):
    name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
    heavy = _top_level_imports(ast.parse(path.read_text())) & {"keras", "tensorflow"}
    heavy_deps = {t for t in GRAPH.get(name, ()) if t in LAZY} if name not in LAZY else set()
    assert not heavy or name in LAZY
    top = {n for n in _module_top_imports(path)}
    assert not (heavy_deps & top), f"{name} imports Keras-heavy {heavy_deps & top} at its top: add it to LAZY"
    assert name in LAYER_OF or name == "shiptoolkit"


def _module_top_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("shiptoolkit"):
            out.update(f"{node.module}.{a.name}" if node.module == "shiptoolkit" else node.module for a in node.names)
    return out


def test_the_cli_and_the_config_do_not_import_keras():
    code = ("import sys, shiptoolkit.cli, shiptoolkit.config, shiptoolkit.rundir; "
            "print('keras' in sys.modules or 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_run_directory_file_names_are_spelled_only_by_rundir():
    names = set(RunDir.FILES.values())
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in ("rundir.py", "schema.py"):  # schema.py: `tensorboard` is also a config key
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef) and n.body
                      and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        found += [f"{path.name}:{n.lineno} {n.value}" for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and n.value in names and id(n) not in docstrings]
    assert found == []


def test_a_run_opens_its_dataset_once(tiny_run_toml, monkeypatch):
    import shiptoolkit.data.source as source
    from shiptoolkit.runner import run

    calls = []
    real = source.open_dataset

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(source, "open_dataset", counting)
    config = tiny_run_toml("once", 'name = "mixed"\npatch_size = 64\npatches_per_epoch = 16', images=16,
                           extra="val_f2_images = 2\n[classifier]\nname = \"cnn_classifier\"\nbase_filters = 4\n"
                                 "image_size = 64\nepochs = 1\nsteps_per_epoch = 2\n[predict]\nmax_images = 4\n"
                                 "[evaluate]\nmax_images = 4\nplot_examples = 1")
    run(config, progress=False)
    assert len(calls) == 1
