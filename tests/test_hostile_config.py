"""Config and components (issue 26, "Reliability, round 2"): each test names the hostile repro it guards.

Root causes: numeric keys without a range checked at load (a dry run passed `train.steps_per_epoch=-5`),
a dry run that checked less than the run (augment transforms, metrics), factory results and plugin
hooks taken on trust, and API functions or messages that answered a wrong argument with an
AttributeError. The issue's set-up is a 64 px Kaggle-layout folder and a tiny experiment on it.
"""

import math
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

import shiptoolkit
from shiptoolkit import plugins
from shiptoolkit.cli import cli
from shiptoolkit.config import SCHEMA, load_config, prepare_config
from shiptoolkit.errors import ConfigError, PluginError, ShiptoolkitError
from shiptoolkit.plugins.contracts import build_component

NUMERIC = ("int", "float", "list[int]", "list[float]")
NUMERIC_KEYS = [(s.name, k) for s in SCHEMA.values() for k in s.keys if k.type_name in NUMERIC]


def clean_failure(result, *expected: str) -> str:
    """Exit 1 with one message and no traceback, naming every `expected` text; returns the output."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), repr(result.exception)
    for text in expected:
        assert text in result.output, f"{text!r} not in {result.output!r}"
    return result.output


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, small_ship_dataset, tiny_folder_toml):
    """The issue's tiny.toml (a sub-folder of tmp: its data.path is absolute) on a 64 px ship folder."""
    return tiny_folder_toml(tmp_path_factory.mktemp("hostile_config"), small_ship_dataset(16))


def dry_run(config, *overrides: str):
    args = ["run", str(config), "--dry-run"]
    for item in overrides:
        args += ["--set", item]
    return CliRunner().invoke(cli, args)


# --- 1. every numeric key has a range in SCHEMA, checked at load --------------------------------

def _outside(key) -> object:
    """A value of the key's type outside its declared range."""
    r, whole = key.range, key.type_name in ("int", "list[int]")
    step = 1 if whole else 0.5
    candidates = [r.low if r.low_open else r.low - step, 10**20, -10**20]
    if r.high is not None:
        candidates.insert(1, r.high if r.high_open else r.high + step)
    bad = next(v for v in candidates if v not in r)
    bad = int(bad) if whole else float(bad)
    return [bad] if key.type_name.startswith("list") else bad


@pytest.mark.parametrize("section, key", NUMERIC_KEYS, ids=[f"{s}.{k.name}" for s, k in NUMERIC_KEYS])
def test_every_numeric_key_declares_a_range_and_refuses_a_value_outside(section, key):
    """`--set train.steps_per_epoch=-5` (and 13 more) passed `--dry-run`: every numeric SCHEMA key must
    declare a range holding its default (bounded on both sides for integers: 99999999999999999999 overflowed),
    and a value outside it is refused at load, naming key, value and range."""
    assert key.range is not None, f"{section}.{key.name} declares no range"
    assert key.range.low is not None, f"{section}.{key.name}: {key.range} has no lower bound"
    if "int" in key.type_name:
        assert key.range.high is not None, f"{section}.{key.name}: an integer key needs an upper bound"
    with pytest.raises(ConfigError, match="must be"):  # TOML's nan is in no range
        load_config({section: {key.name: [math.nan] if "list" in key.type_name else math.nan}}, check_components=False)
    defaults = key.default if isinstance(key.default, list) else [key.default]
    assert all(v in key.range for v in defaults), f"{section}.{key.name}: default {key.default} outside {key.range}"
    bad = _outside(key)
    with pytest.raises(ConfigError) as err:
        load_config({section: {key.name: bad}}, check_components=False)
    message = str(err.value)
    assert f"{section}.{key.name}" in message and str(key.range) in message and repr(bad) in message, message


ISSUE_VALUES = ["train.steps_per_epoch=-5", "train.validation_steps=-1", "train.epochs=99999999999999999999",
                "train.steps_per_epoch=99999999999999999999", "predict.resize=-1", "predict.gate_threshold=5",
                "tune.thresholds=[2.0,-1.0]", "evaluate.max_images=-1", "predict.max_images=-1",
                "evaluate.plot_examples=-1", "data.image_size=0", "data.image_size=-1", "data.max_images=-1",
                "train.batch_size=100000"]


@pytest.mark.parametrize("override", ISSUE_VALUES)
def test_dry_run_refuses_the_issues_out_of_range_values(tiny, override):
    """The issue's list: each passed `run tiny.toml --dry-run`, then failed late, overflowed or trained silently wrong
    (`tune.thresholds=[2.0,-1.0]` saved 2.0 as "tuned"; `train.batch_size=100000` was OOM-killed after 162 s)."""
    key, _, value = override.partition("=")
    shown = value.split(",")[0].lstrip("[") if value.startswith("[") else value
    output = clean_failure(dry_run(tiny, override), key, "must be", shown)
    assert "dry run: config is valid" not in output


def test_the_config_reference_shows_every_range():
    """The generated config reference (docs) listed no range: a reader could not know `0 = off` or the limits."""
    from shiptoolkit.cli.reference import config_markdown

    text = config_markdown()
    assert "| key | type | default | range | meaning |" in text
    for _, key in NUMERIC_KEYS:
        assert f"| `{key.name}` | `{key.type_name}` | `{key.default!r}` | {key.range} |" in text, key.name


# --- 2. a dry run checks what the run checks ------------------------------------------------------

@pytest.mark.parametrize("override, expected", [
    ('augment.transforms=[{name="HorizontalFlipp"}]', ["'HorizontalFlipp'", "Did you mean 'HorizontalFlip'"]),
    ('augment.transforms=[{name="HorizontalFlip",p="often"}]', ["augment.transforms[0]", "HorizontalFlip", "often"]),
    ('augment.transforms=[{name="Rotate",limt=10}]', ["augment.transforms[0]", "'limt'", "Did you mean 'limit'"]),
    ('metrics.train=["dicee"]', ["metrics.train", "'dicee'", "Did you mean 'dice'"]),
    ('metrics.train=["f2"]', ["metrics.train", "'f2'", "evaluation-only", "metrics.evaluate"]),
])
def test_dry_run_refuses_augment_and_metric_names_the_run_refuses(tiny, override, expected):
    """Unknown `augment.transforms` names, their parameters (`p="often"`, a misspelled one that albumentations only
    warned about) and `metrics.train` names passed `--dry-run`, then the run failed (or ignored the parameter)."""
    output = clean_failure(dry_run(tiny, override), *expected)
    assert "dry run: config is valid" not in output and "[run]" not in output  # refused before printing the config


def test_load_config_itself_checks_transforms_and_metrics():
    """`load_config` (the API) took the same values; the default transforms still load."""
    with pytest.raises(ConfigError, match=r"augment.transforms\[1\].*unknown albumentations transform 'Flipp'"):
        load_config({"augment": {"transforms": [{"name": "HorizontalFlip"}, {"name": "Flipp"}]}})
    with pytest.raises(ConfigError, match="metrics.evaluate.*'nope'"):
        load_config({"metrics": {"evaluate": ["nope"]}})
    assert load_config({})["augment"]["transforms"][0]["name"] == "HorizontalFlip"


# --- 3. every component's factory result, and plugin hooks, are checked ---------------------------

class WrongResults:
    """A plugin whose factories return the wrong things (the issue's probe)."""

    @shiptoolkit.hookimpl
    def register_losses(self, register):
        register("forty_two", lambda: 42)

    @shiptoolkit.hookimpl
    def register_backbones(self, register):
        register("text_net", lambda input_shape=(64, 64, 3): "a model")

    @shiptoolkit.hookimpl
    def register_metrics(self, register):
        register("bare_object", lambda: object())

    @shiptoolkit.hookimpl
    def register_classifiers(self, register):
        def segmenter(input_shape=(64, 64, 3)):
            import keras

            return keras.Sequential([keras.Input(input_shape), keras.layers.Conv2D(1, 1, activation="sigmoid")])

        register("mask_not_probability", segmenter)


@pytest.fixture
def wrong_results(plugin_cleanup):
    plugin_cleanup.append(shiptoolkit.register_plugin(WrongResults(), name="wrong_results"))


@pytest.mark.parametrize("kind, name, args, expected", [
    ("loss", "forty_two", {}, ["int 42", "callable"]),
    ("backbone", "text_net", {"input_shape": (64, 64, 3)}, ["str 'a model'", "keras.Model"]),
    ("metric", "bare_object", {}, ["object", "usage"]),
    ("classifier", "mask_not_probability", {"input_shape": (64, 64, 3)}, ["(None, 64, 64, 1)", "(None, 1)"]),
])
def test_a_factory_returning_the_wrong_thing_is_named(wrong_results, kind, name, args, expected):
    """A loss factory returning 42, a backbone returning a str, a metric returning `object()`, a classifier returning
    a mask model: Keras tracebacks far from the cause. Now a PluginError names the component, plugin and contract."""
    with pytest.raises(PluginError) as err:
        build_component(kind, name, **args)
    message = str(err.value)
    for text in [f"{kind} {name!r}", "plugin 'wrong_results'", *expected]:
        assert text in message, f"{text!r} not in {message!r}"


def test_a_metric_returning_the_wrong_thing_fails_the_dry_run(tiny, wrong_results):
    """`metrics.evaluate=["bare_object"]` passed `--dry-run`; its object() broke evaluate after training."""
    clean_failure(dry_run(tiny, 'metrics.evaluate=["bare_object"]'), "metric 'bare_object'", "wrong_results", "usage")


@pytest.mark.parametrize("source, expected", [
    ("@shiptoolkit.hookimpl\ndef register_losses(register, extra):\n    pass\n",
     ["register_losses", "'extra'", "register_losses(register)"]),
    ("@shiptoolkit.hookimpl\ndef register_lossez(register):\n    pass\n",
     ["unknown hook 'register_lossez'", "Did you mean 'register_losses'"]),
    ("def register_losses(register):\n    pass\n",
     ["register_losses", "@shiptoolkit.hookimpl"]),
], ids=["wrong_signature", "misspelled", "undecorated"])
def test_a_broken_hook_is_a_clear_error_naming_plugin_hook_and_known_hooks(tmp_path, source, expected, plugin_cleanup):
    """`register_losses(register, extra)` gave pluggy's traceback; `register_lossez` (and a hook without
    @hookimpl) loaded silently and registered nothing. Both through `--plugin` and the API."""
    path = tmp_path / "hooks_plugin.py"
    path.write_text("import shiptoolkit\n\n" + source, encoding="utf-8")
    plugin_cleanup.append(plugins.local_plugin_name(str(path)))
    result = CliRunner().invoke(cli, ["--plugin", str(path), "components", "loss"])
    clean_failure(result, "hooks_plugin.py", "Known hooks:", "register_samplers", *expected)
    with pytest.raises(PluginError, match="Known hooks"):
        plugins.load_local_plugin(str(path))
    assert not plugins.is_loaded(str(path))  # refused: not half-registered


def test_register_plugin_refuses_none():
    """`shiptoolkit.register_plugin(None)` returned the name "None" and registered nothing."""
    with pytest.raises(PluginError, match=r"register_plugin\(\).*None.*@shiptoolkit.hookimpl"):
        shiptoolkit.register_plugin(None)


# --- 4. messages, API arguments, paths, TensorFlow's chatter -------------------------------------

def test_unknown_component_messages_pluralise_the_kind():
    """`Unknown loss 'nope'. ... Known losss: ...`."""
    with pytest.raises(ShiptoolkitError) as err:
        shiptoolkit.create_component("loss", "nope")
    assert "Known losses:" in str(err.value) and "losss" not in str(err.value)
    result = CliRunner().invoke(cli, ["plugins", "--all"])
    assert result.exit_code == 0 and "losss" not in result.output and "losses:" in result.output


def test_load_config_refuses_overrides_given_as_one_string():
    """`load_config({}, "train.epochs=2")` said "Override 't' must look like section.key=value"."""
    with pytest.raises(ConfigError) as err:
        load_config({}, "train.epochs=2")
    message = str(err.value)
    assert "overrides" in message and "'train.epochs=2'" in message and "[\"train.epochs=2\"]" in message


def test_train_takes_a_config_path_like_run_and_names_a_wrong_argument(tmp_path, monkeypatch):
    """`train(None)` and `train("tiny.toml")` gave AttributeError ('str' object has no attribute 'settings')."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.toml").write_text('[run]\nout_dir = "runs"\n[data]\npath = "no_such_folder"\n', encoding="utf-8")
    with pytest.raises(ShiptoolkitError, match="data.path = 'no_such_folder'"):  # the path was loaded as a config
        shiptoolkit.train("t.toml", progress=False)
    for bad in (None, 3):
        with pytest.raises(TypeError) as err:
            shiptoolkit.train(bad)
        assert isinstance(err.value, ShiptoolkitError) and "config" in str(err.value) and repr(bad) in str(err.value)
    assert not (tmp_path / "runs").exists()


def test_predict_open_dataset_and_create_component_name_a_wrong_argument(tmp_path):
    """`predict(cfg, None, ".")`, `open_dataset(None)`, `create_component("backbone", "unet", input_shape=None)`:
    AttributeError / TypeError from deep inside."""
    config = load_config({"data": {"path": str(tmp_path)}})
    cases = [(lambda: shiptoolkit.predict(config, None, str(tmp_path)), ["model", "None", ".keras"]),
             (lambda: shiptoolkit.open_dataset(None), ["config", "None"]),
             (lambda: shiptoolkit.create_component("backbone", "unet", input_shape=None),
              ["input_shape", "None", "(height, width, 3)"])]
    for call, expected in cases:
        with pytest.raises(ShiptoolkitError) as err:
            call()
        assert isinstance(err.value, TypeError)
        for text in expected:
            assert text in str(err.value), (text, str(err.value))


def test_evaluate_help_says_it_scores_the_test_set():
    """`evaluate --help` said "the full validation images" while it scores the test set (evaluate.images)."""
    result = CliRunner().invoke(cli, ["evaluate", "--help"])
    assert result.exit_code == 0 and "validation images:" not in result.output
    assert "test set" in result.output and "evaluate.images" in result.output


def test_a_missing_test_set_is_refused_before_training(tiny, tmp_path):
    """`data.test_fraction=0` on a real folder: "No test set" came only after training."""
    out = tmp_path / "runs"
    result = CliRunner().invoke(cli, ["run", str(tiny), "--quiet", "--set", "data.test_fraction=0",
                                      "--set", f"run.out_dir='{out.as_posix()}'"])
    clean_failure(result, "No test set", "data.test_fraction", "evaluate.images=validation")
    assert not out.exists()  # no run folder left behind for a config error


def test_relative_paths_name_their_base_and_leave_no_run_folder(tmp_path, monkeypatch):
    """data.path is relative to the working directory, [plugins] files to the config file: the messages did not say
    which, and the failed run left a run folder behind."""
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "sub" / "exp.toml"
    config.write_text('[run]\nout_dir = "runs"\n[data]\npath = "ds"\nimage_size = 64\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(config), "--quiet"])
    clean_failure(result, "data.path = 'ds'", "relative to the working directory", str(tmp_path / "ds"))
    assert not (tmp_path / "runs").exists()
    config.write_text(config.read_text() + '[plugins]\nmodules = ["mine.py"]\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(config), "--dry-run"])
    clean_failure(result, "'mine.py'", "relative to the config file", str(tmp_path / "sub" / "mine.py"))


def test_a_saved_config_keeps_its_plugin_files_resolved(tmp_path, monkeypatch, plugin_cleanup):
    """config.toml in a run kept `modules = ["p.py"]`, which then resolved against the run folder: `train --resume
    RUN` and re-running `RUN/config.toml` failed with "Plugin file not found"."""
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "p.py").write_text("import shiptoolkit\n\n@shiptoolkit.hookimpl\ndef register_losses(register):"
                                           "\n    pass\n", encoding="utf-8")
    source = tmp_path / "exp" / "exp.toml"
    source.write_text('[plugins]\nmodules = ["p.py"]\n', encoding="utf-8")
    plugin_cleanup.append(plugins.local_plugin_name(str(tmp_path / "exp" / "p.py")))
    config = prepare_config(str(source))
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    config.save(run / "config.toml")
    monkeypatch.chdir(run)
    again = prepare_config(str(run / "config.toml"))  # resolves nothing against runs/r
    assert again["plugins"]["modules"] == [str((tmp_path / "exp" / "p.py").resolve())]


def test_the_cli_hides_tensorflows_start_up_lines(tmp_path):
    """oneDNN and absl start-up lines were printed on every command despite TF_CPP_MIN_LOG_LEVEL."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "SHIPTOOLKIT_VERBOSE")}
    done = subprocess.run([sys.executable, "-m", "shiptoolkit", "components", "backbone", "--json"], env=env,
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "unet" in done.stdout
    for noise in ("oneDNN", "absl::InitializeLog", "port.cc", "cpu_feature_guard"):
        assert noise not in done.stderr, done.stderr


def test_verbose_keeps_tensorflows_lines_on_request(monkeypatch):
    """The way back to TensorFlow's own logging: `SHIPTOOLKIT_VERBOSE=1` or `--verbose`."""
    from shiptoolkit.cli import quiet

    monkeypatch.setattr(quiet, "_user_log_level", None)  # as if the user had not set TF_CPP_MIN_LOG_LEVEL
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))  # restored afterwards
    monkeypatch.setenv("SHIPTOOLKIT_VERBOSE", "1")
    assert quiet.verbose_requested()
    monkeypatch.delenv("SHIPTOOLKIT_VERBOSE")
    assert not quiet.verbose_requested()
    monkeypatch.setattr(sys, "meta_path", [quiet._QuietImport(), *sys.meta_path])  # as `install()` leaves it
    result = CliRunner().invoke(cli, ["--verbose", "components", "loss"])
    assert result.exit_code == 0 and quiet.verbose_requested()
    assert not any(isinstance(finder, quiet._QuietImport) for finder in sys.meta_path)  # TensorFlow imports as ever
