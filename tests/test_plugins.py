import json
import textwrap

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
    from shiptoolkit import hookspecs

    for name in plugins.KINDS.values():
        assert getattr(hookspecs, name[0]).__doc__
