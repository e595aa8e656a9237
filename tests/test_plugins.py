import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import shiptoolkit
from shiptoolkit import plugins
from shiptoolkit.cli import cli
from shiptoolkit.errors import DuplicateComponentError, PluginError

PLUGIN_SOURCE = textwrap.dedent('''
    import shiptoolkit

    class EveryOther:
        """Every other image of the index, whole."""

        def __init__(self, index, step: int = 2):
            self.index, self.step = index, step

    @shiptoolkit.hookimpl
    def register_samplers(register):
        register("every_other", EveryOther)
''')


@pytest.fixture
def plugin_file(tmp_path):
    path = tmp_path / "my_plugin.py"
    path.write_text(PLUGIN_SOURCE)
    return path


def test_local_plugin_is_listed_and_usable(plugin_file, plugin_cleanup):
    result = CliRunner().invoke(cli, ["--plugin", str(plugin_file), "plugins", "--json"])
    assert result.exit_code == 0, result.output
    plugin_cleanup.append(f"local:{plugin_file.resolve()}")
    listed = json.loads(result.output)
    assert listed[0]["components"] == {"sampler": ["every_other"]}
    assert listed[0]["hooks"] == ["register_samplers"]
    sampler = shiptoolkit.create_component("sampler", "every_other", ["a", "b"], step=3)
    assert sampler.step == 3
    assert plugins.get_registry("sampler").get("every_other").plugin.startswith("local:")


def test_plugin_in_config_is_validated(plugin_file, plugin_cleanup):
    name = plugins.load_local_plugin(str(plugin_file))
    plugin_cleanup.append(name)
    config = shiptoolkit.load_config({"sampler": {"name": "every_other", "step": 4}})
    assert config.component("sampler") == ("every_other", {"step": 4})
    with pytest.raises(shiptoolkit.ConfigError, match="no parameter 'stp'"):
        shiptoolkit.load_config({"sampler": {"name": "every_other", "stp": 4}})
    with pytest.raises(shiptoolkit.UnknownComponentError, match="every_other"):
        shiptoolkit.load_config({"sampler": {"name": "every_othr"}})


def test_plugin_that_raises_is_named(tmp_path, plugin_cleanup):
    bad = tmp_path / "broken.py"
    bad.write_text("import shiptoolkit\n@shiptoolkit.hookimpl\ndef register_losses(register):\n"
                   "    raise RuntimeError('boom')\n")
    name = plugins.load_local_plugin(str(bad))
    plugin_cleanup.append(name)
    with pytest.raises(PluginError, match=r"broken.py.*register_losses.*boom"):
        plugins.get_registry("loss")


def test_plugin_that_fails_to_import_is_named(tmp_path):
    bad = tmp_path / "syntax.py"
    bad.write_text("def oops(:\n")
    result = CliRunner().invoke(cli, ["--plugin", str(bad), "plugins"])
    assert result.exit_code == 1 and "syntax.py" in result.output and "Traceback" not in result.output


def test_duplicate_name_across_plugins_needs_override(plugin_file, tmp_path, plugin_cleanup):
    plugin_cleanup.append(plugins.load_local_plugin(str(plugin_file)))
    twin = tmp_path / "twin.py"
    twin.write_text(PLUGIN_SOURCE)
    plugin_cleanup.append(plugins.load_local_plugin(str(twin)))
    with pytest.raises(DuplicateComponentError, match="already registered by plugin 'local:"):
        plugins.get_registry("sampler")
    twin.with_name("twin2.py").write_text(PLUGIN_SOURCE.replace('EveryOther)', 'EveryOther, override=True)'))
    plugins.unregister_plugin(plugin_cleanup.pop())
    plugin_cleanup.append(plugins.load_local_plugin(str(twin.with_name("twin2.py"))))
    assert plugins.get_registry("sampler").get("every_other").plugin.endswith("twin2.py")


def test_missing_plugin_file_is_clear():
    result = CliRunner().invoke(cli, ["--plugin", "nope.py", "components"])
    assert result.exit_code == 1 and "Plugin file 'nope.py' not found" in result.output


def test_builtins_register_through_the_same_hooks():
    info = {p["name"]: p for p in plugins.plugin_info()}
    for name in plugins.DEFAULT_PLUGINS:
        assert info[name]["builtin"] and info[name]["hooks"]


def test_every_hook_is_documented():
    from shiptoolkit.plugins import hookspecs

    for name in plugins.KINDS.values():
        assert getattr(hookspecs, name[0]).__doc__


# -- register_commands: plugins add commands to the CLI ---------------------------------------------

COMMAND_PLUGIN = textwrap.dedent('''
    import click
    import shiptoolkit

    @shiptoolkit.hookimpl
    def register_commands(cli):
        @cli.command()
        @click.argument("name")
        def hello(name):
            """Greet NAME."""
            click.echo(f"hello {name}")
''')


class HelloCommands:
    @shiptoolkit.hookimpl
    def register_commands(self, cli):
        @cli.group()
        def greet():
            """Greetings."""

        @greet.command()
        def world():
            click.echo("hello world")


def test_a_plugin_command_runs_is_listed_and_leaves_with_its_plugin(plugin_cleanup):
    plugin_cleanup.append(shiptoolkit.register_plugin(HelloCommands(), name="hello_commands"))
    result = CliRunner().invoke(cli, ["greet", "world"])
    assert result.exit_code == 0 and result.output == "hello world\n", result.output
    assert "Greetings." in CliRunner().invoke(cli, ["--help"]).output
    assert cli.command_plugin("greet") == "hello_commands"
    plugins.unregister_plugin(plugin_cleanup.pop())
    result = CliRunner().invoke(cli, ["greet", "world"])
    assert result.exit_code == 2 and "No such command 'greet'" in result.output


def test_a_command_from_a_plugin_option_file(tmp_path, plugin_cleanup):
    path = tmp_path / "hello_plugin.py"
    path.write_text(COMMAND_PLUGIN)
    plugin_cleanup.append(plugins.local_plugin_name(str(path)))
    result = CliRunner().invoke(cli, ["--plugin", str(path), "hello", "ships"])
    assert result.exit_code == 0 and result.output == "hello ships\n", result.output
    assert "Greet NAME." in CliRunner().invoke(cli, ["--plugin", str(path), "--help"]).output


def test_a_plugin_raising_in_register_commands_is_named(tmp_path, plugin_cleanup):
    bad = tmp_path / "bad_commands.py"
    bad.write_text("import shiptoolkit\n@shiptoolkit.hookimpl\ndef register_commands(cli):\n"
                   "    raise RuntimeError('boom')\n")
    plugin_cleanup.append(plugins.local_plugin_name(str(bad)))
    result = CliRunner().invoke(cli, ["--plugin", str(bad), "hello"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "bad_commands.py" in result.output and "register_commands" in result.output and "boom" in result.output
    result = CliRunner().invoke(cli, ["--help"])  # help still helps, and says what is missing
    assert result.exit_code == 0 and "train" in result.output and "bad_commands.py" in result.output
    assert CliRunner().invoke(cli, ["components", "callback"]).exit_code == 0  # built-ins never wait on plugins


def test_a_plugin_command_may_not_take_a_built_in_name(plugin_cleanup):
    class Clash:
        @shiptoolkit.hookimpl
        def register_commands(self, cli):
            @cli.command(name="train")
            def fake_train():
                click.echo("not the real train")

    plugin_cleanup.append(shiptoolkit.register_plugin(Clash(), name="clash_commands"))
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 1 and "'clash_commands' registered the command 'train'" in result.output
    assert cli.commands["train"].callback.__module__ == "shiptoolkit.cli.train"  # the built-in is kept


# -- register_callbacks: plugins add Keras callbacks, selected by train.callbacks ----------------------

class Callbacks:
    """Callback factories of every kind: built per fit (recording the stage), opted out, broken, wrong."""

    stages: list[str] = []
    epochs: list[tuple[str, int]] = []

    @shiptoolkit.hookimpl
    def register_callbacks(self, register):
        import keras

        def recorder(config, run_dir, stage):
            """Record which fits ran which epochs."""
            Callbacks.stages.append(stage)

            class Record(keras.callbacks.Callback):
                def on_epoch_end(self, epoch, logs=None):
                    Callbacks.epochs.append((stage, epoch, sorted(logs)))
            return Record()

        register("recorder", recorder)
        register("opt_out", lambda config, run_dir: None)
        register("broken", lambda config, run_dir: 1 / 0)
        register("not_a_callback", lambda config, run_dir: "logger")


@pytest.fixture
def callbacks(plugin_cleanup):
    Callbacks.stages, Callbacks.epochs = [], []
    plugin_cleanup.append(shiptoolkit.register_plugin(Callbacks(), name="test_callbacks"))
    return Callbacks


def test_callbacks_are_chosen_by_name_and_checked(callbacks, tmp_path):
    from shiptoolkit.plugins.contracts import build_callbacks

    def build(*names):
        return build_callbacks(shiptoolkit.load_config({"train": {"callbacks": list(names)}}), tmp_path, "classifier")

    assert build() == []
    built = build("recorder", "opt_out")
    assert len(built) == 1 and callbacks.stages == ["classifier"]
    with pytest.raises(PluginError, match=r"callback 'broken' \(plugin 'test_callbacks'\).*ZeroDivisionError"):
        build("broken")
    with pytest.raises(PluginError, match=r"'not_a_callback' \(plugin 'test_callbacks'\) returned str"):
        build("not_a_callback")
    with pytest.raises(shiptoolkit.ConfigError, match=r"train.callbacks: Unknown callback 'recordr'.*'recorder'"):
        build("recordr")  # named when the config loads (and by --dry-run), before any fit
    with pytest.raises(shiptoolkit.ConfigError, match="more than once"):
        build("recorder", "recorder")
    with pytest.raises(shiptoolkit.ConfigError, match="train.callbacks"):
        shiptoolkit.load_config({"train": {"callbacks": "recorder"}})


def test_callbacks_are_a_component_kind(callbacks):
    result = CliRunner().invoke(cli, ["components", "callback"])
    assert result.exit_code == 0 and "recorder" in result.output and "[test_callbacks]" in result.output
    assert {p["name"]: p for p in plugins.plugin_info()}["test_callbacks"]["components"]["callback"] == [
        "broken", "not_a_callback", "opt_out", "recorder"]


EPOCH_TIMER = Path(__file__).resolve().parents[1] / "plugins" / "shiptoolkit-epoch-timer"


def test_plugin_callbacks_run_in_both_fits_of_a_training_run(callbacks, tiny_run_toml, plugin_cleanup, monkeypatch):
    from shiptoolkit.runner import prepare_config
    from shiptoolkit.training.stage import train

    monkeypatch.syspath_prepend(str(EPOCH_TIMER))  # the example plugin, loaded as package.module
    plugin_cleanup.append(plugins.load_local_plugin("shiptoolkit_epoch_timer"))
    path = tiny_run_toml("callbacks", 'name = "mixed"\npatch_size = 64\npatches_per_epoch = 16', images=16,
                         extra='callbacks = ["recorder", "epoch_timer"]\ncollapse_patience = 0\n'
                               '[classifier]\nname = "cnn_classifier"\nbase_filters = 4\ndepth = 2\n'
                               'image_size = 32\nepochs = 1\nsteps_per_epoch = 1\nbatch_size = 4')
    result = train(prepare_config(path, ["tune.enabled=false"]), progress=False)
    assert callbacks.stages == ["classifier", "segmenter"]
    assert [(stage, epoch) for stage, epoch, _ in callbacks.epochs] == [("classifier", 0), ("segmenter", 0)]
    assert "val_f2" in callbacks.epochs[-1][2]  # plugin callbacks come after val_f2 filled the logs
    lines = (result.run_dir / "epoch_times.csv").read_text().splitlines()
    assert lines[0] == "stage,epoch,seconds,learning_rate" and [line.split(",")[:2] for line in lines[1:]] == [
        ["classifier", "1"], ["segmenter", "1"]]
    saved = tomllib.loads((result.run_dir / "config.toml").read_text())
    assert saved["train"]["callbacks"] == ["recorder", "epoch_timer"]


@pytest.fixture(scope="module")
def installed_examples(tmp_path_factory):
    """Both example plugins pip-installed into a folder on PYTHONPATH: found through their entry points."""
    target = tmp_path_factory.mktemp("site")
    examples = Path(__file__).resolve().parents[1] / "plugins"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    str(examples / "shiptoolkit-size-balanced"), str(EPOCH_TIMER)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), *sys.path])}
    env.pop("SHIPTOOLKIT_LOAD_PLUGINS", None)  # load every installed plugin, as a user would
    return env


def test_installed_plugins_bring_their_command_and_callback(installed_examples, rect_dataset):
    def shiptoolkit_cli(*args):
        result = subprocess.run([sys.executable, "-m", "shiptoolkit", *args], env=installed_examples, text=True,
                                capture_output=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    assert "size-histogram" in shiptoolkit_cli("--help")
    info = json.loads(shiptoolkit_cli("size-histogram", str(rect_dataset), "--size", "96", "--json"))
    assert info["images"] == 12 and info["ships"] == 4 and sum(b["ships"] for b in info["bins"]) == 4
    listed = json.loads(shiptoolkit_cli("components", "callback", "--json"))["callback"]
    assert [(c["name"], c["plugin"]) for c in listed] == [("epoch_timer", "epoch_timer")]
