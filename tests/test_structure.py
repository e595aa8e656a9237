"""The package's structure holds to its floor plan (`benchmarks/package_map.py`): the folders are the layers,
no import circles, nothing imports from a folder above its own, few modules at the top, no function over
60 lines, package modules are imported at module top (only Keras-heavy ones lazily), every run-dir file
name comes from `RunDir`, one run opens its dataset once, and old import paths still work, with a warning."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import shiptoolkit
from shiptoolkit.moved import MOVED
from shiptoolkit.rundir import RunDir

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: benchmarks/ holds the tooling
from benchmarks.package_map import (  # noqa: E402
    LAYER_ORDER,
    LAZY,
    RANK,
    import_cycles,
    import_graph,
    layer_violations,
    unit_of,
)

PACKAGE = Path(shiptoolkit.__file__).parent
GRAPH = import_graph(PACKAGE)
MAX_FUNCTION_LINES = 60
MAX_TOP_LEVEL_MODULES = 10


def test_there_are_no_import_circles():
    assert import_cycles(GRAPH) == []


def test_no_module_imports_upward_past_its_layer():
    assert layer_violations(GRAPH) == []


def test_the_cycle_check_finds_a_circle():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_violations({"shiptoolkit.errors": {"shiptoolkit.runner"}}) == [
        "shiptoolkit.errors -> shiptoolkit.runner"]
    # a folder's modules may import each other; a lower folder may not import a higher one's
    assert layer_violations({"shiptoolkit.models.unet": {"shiptoolkit.models.encoders"}}) == []
    assert layer_violations({"shiptoolkit.models.unet": {"shiptoolkit.training.stage"}}) == [
        "shiptoolkit.models.unet -> shiptoolkit.training.stage"]
    assert layer_violations({"shiptoolkit.attic.old": set()}) == [
        "shiptoolkit.attic.old: its folder 'attic' is not in LAYER_ORDER"]


def test_every_folder_and_top_level_module_has_its_place_in_the_layer_order():
    units = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    units |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert units == set(LAYER_ORDER)


def test_few_modules_stand_at_the_top_level():
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


@pytest.mark.parametrize("folder", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_every_folder_says_its_job(folder):
    """Its `__init__` docstring's first paragraph is the folder's row in the design page's module map."""
    doc = ast.get_docstring(ast.parse((PACKAGE / folder / "__init__.py").read_text())) or ""
    assert len(doc.split("\n\n")[0].split()) >= 8, f"shiptoolkit/{folder}/__init__.py: say the folder's job"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_function_is_longer_than_60_lines(path):
    tree = ast.parse(path.read_text())
    functions = [fn for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)]
    long = [f"{fn.name}: {fn.end_lineno - fn.lineno + 1} lines" for fn in functions
            if fn.end_lineno - fn.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


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
    assert unit_of(name) in RANK or name == "shiptoolkit"


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


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_import_path_still_works_and_names_the_new_one(old, monkeypatch):
    """Plugin authors' imports of the flat layout keep working for one release, with a DeprecationWarning."""
    monkeypatch.delitem(sys.modules, f"shiptoolkit.{old}", raising=False)
    with pytest.warns(DeprecationWarning, match=rf"shiptoolkit\.{old} moved to shiptoolkit\.{MOVED[old][0]}") as seen:
        module = importlib.import_module(f"shiptoolkit.{old}")
    assert seen[0].filename == importlib.__file__ or seen[0].filename == __file__ or "importlib" in seen[0].filename
    homes = [importlib.import_module(f"shiptoolkit.{new}") for new in MOVED[old]]
    if len(homes) == 1:
        assert module is homes[0]  # the module itself: monkeypatching the old path patches the new one
        assert module.__spec__.name == f"shiptoolkit.{MOVED[old][0]}"


def test_old_paths_in_user_code_warn_at_the_users_line(tmp_path):
    script = tmp_path / "old_plugin.py"
    script.write_text("from shiptoolkit.hookspecs import hookimpl\nfrom shiptoolkit.evaluation import evaluate, "
                      "predict_stage\nimport shiptoolkit\nprint(hookimpl is shiptoolkit.hookimpl, "
                      "predict_stage.__module__, evaluate.__module__, shiptoolkit.gate.Gate.__module__)\n")
    done = subprocess.run([sys.executable, "-W", "always::DeprecationWarning", str(script)], capture_output=True,
                          text=True, check=True)
    assert done.stdout.split() == ["True", "shiptoolkit.inference.stage", "shiptoolkit.scoring.evaluate",
                                   "shiptoolkit.inference.gate"]
    assert f"{script}:1: DeprecationWarning: shiptoolkit.hookspecs moved to shiptoolkit.plugins.hookspecs" \
        in done.stderr
    assert f"{script}:2: DeprecationWarning: shiptoolkit.evaluation moved to" in done.stderr
    assert f"{script}:4: DeprecationWarning: shiptoolkit.gate moved to shiptoolkit.inference.gate" in done.stderr


def test_the_new_paths_raise_no_deprecation_warning():
    code = ("import warnings; warnings.simplefilter('error', DeprecationWarning); import shiptoolkit, shiptoolkit.cli; "
            "from shiptoolkit.plugins import load_plugins; load_plugins(); "
            "from shiptoolkit.training import train; from shiptoolkit.runner import run")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
