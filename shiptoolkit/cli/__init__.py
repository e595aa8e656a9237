"""The `shiptoolkit` command: a thin click layer over the library. One small module per group."""

from __future__ import annotations

import errno
from pathlib import Path

import click

from shiptoolkit import TENSORFLOW_MISSING, __version__
from shiptoolkit.cli import quiet
from shiptoolkit.cli.run_plugins import config_without_run_plugins
from shiptoolkit.config import prepare_config
from shiptoolkit.errors import PluginError, ShiptoolkitError
from shiptoolkit.plugins import hook_implementations, load_installed_plugins, load_local_plugin
from shiptoolkit.rundir import RunDir

# TensorFlow's start-up chatter is noise on a command line: hidden unless --verbose / SHIPTOOLKIT_VERBOSE=1
# (none of the imports above loads TensorFlow).
quiet.install()

# Where each command writes, for the fix in a "cannot write" message.
_OUTPUT_OPTION = {"run": "--set run.out_dir=<folder>", "train": "--set run.out_dir=<folder>",
                  "evaluate": "--set run.out_dir=<folder>", "predict": "--out <file>", "score": "--per-image <file>",
                  "synth": "another OUT folder", "export": "--out <folder>",
                  "submission": "--out <file>", "detect": "--out <file>"}
# Errors of the machine around a path (permissions, read-only or full disk), not bugs: no traceback.
_ENVIRONMENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


class FriendlyGroup(click.Group):
    """Turns user mistakes (`ShiptoolkitError`) and unwritable paths (`OSError` naming a file, or
    permission / read-only / disk-full errors) into one clean message, no traceback.

    Plugins add commands through the `register_commands(cli)` hook, called lazily: when a name is
    not a built-in command, and when the commands are listed (`--help`). So built-in commands never
    wait for plugins, and `--plugin` modules (loaded while the options are parsed, before click
    looks up the command) add commands like installed plugins do.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # plugin name -> the commands its register_commands added (removed again if it is unregistered)
        self.plugin_commands: dict[str, dict[str, click.Command]] = {}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands or self.command_plugin(cmd_name):
            try:
                self.add_plugin_commands()
            except ShiptoolkitError as exc:
                raise click.ClickException(str(exc)) from exc
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        try:
            self.add_plugin_commands()
        except ShiptoolkitError as exc:  # --help still helps; running the command names the problem
            click.echo(f"Warning: commands from plugins are not listed: {exc}", err=True)
        return super().list_commands(ctx)

    def command_plugin(self, cmd_name: str) -> str | None:
        """The plugin that added command `cmd_name`; None for a built-in (or unknown) one."""
        return next((plugin for plugin, added in self.plugin_commands.items() if cmd_name in added), None)

    def add_plugin_commands(self) -> None:
        """Call `register_commands(cli)` of each plugin not called yet (installed, `--plugin` or
        registered in-process); drop the commands of plugins unregistered since.

        Raises:
            PluginError: a plugin raised in the hook, or took a name already in use (its commands
                are then left out).
        """
        load_installed_plugins()
        implementations = hook_implementations("register_commands")
        current = {plugin for plugin, _ in implementations}
        for plugin in [p for p in self.plugin_commands if p not in current]:
            for name, command in self.plugin_commands.pop(plugin).items():
                if self.commands.get(name) is command:
                    del self.commands[name]
        for plugin, call in implementations:
            if plugin in self.plugin_commands:
                continue
            before = dict(self.commands)
            try:
                call(cli=self)
            except ShiptoolkitError:
                self.commands = before
                raise
            added = {name: command for name, command in self.commands.items() if before.get(name) is not command}
            taken = sorted(name for name in added if name in before)
            if taken:
                owner = self.command_plugin(taken[0])
                self.commands = before
                raise PluginError(f"Plugin {plugin!r} registered the command {taken[0]!r}, which "
                                  f"{f'plugin {owner!r}' if owner else 'shiptoolkit'} already provides. "
                                  "Pick another name.")
            self.plugin_commands[plugin] = added

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ShiptoolkitError as exc:
            raise click.ClickException(str(exc)) from exc
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in ("tensorflow", "keras"):
                raise
            raise click.ClickException(TENSORFLOW_MISSING) from exc
        except OSError as exc:
            if exc.filename is None and exc.errno not in _ENVIRONMENT_ERRNOS:
                raise  # e.g. a broken pipe: not about a path the user chose
            raise click.ClickException(os_error_message(exc, ctx.invoked_subcommand)) from exc


def os_error_message(exc: OSError, command: str | None = None) -> str:
    """'Cannot write/access PATH: reason.' plus the fix (for unwritable places: the command's output option)."""
    what = f" {str(exc.filename)!r}" if exc.filename is not None else ""
    reason = exc.strerror or str(exc)
    via = f" (e.g. {_OUTPUT_OPTION[command]})" if command in _OUTPUT_OPTION else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = f"Free some disk space, or write elsewhere{via}."
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = f"Choose a writable folder{via}, or fix the folder's permissions."
    else:
        fix = "Check the path."
    verb = "write" if exc.errno in (errno.EROFS, errno.ENOSPC, errno.EDQUOT) else "access"
    return f"Cannot {verb}{what}: {reason}. {fix}"


def model_and_config(config: str | None, model: str | None, run_dir: str | None, overrides: tuple[str, ...],
                     trust_run_plugins: bool = False):
    """(model path, resolved config) for commands that use a trained model.

    `--run RUN_DIR` stands for its best.keras and, without CONFIG, its config.toml. A run directory
    may come from anyone, so loading it must be as safe as loading a model: the [plugins] modules
    of its config.toml are not imported (a notice names them) unless `trust_run_plugins` or the
    global --plugin option loaded them.
    """
    from_run = bool(run_dir) and not config
    if run_dir and model:
        _check_one_run(model, run_dir)
    if run_dir:
        model = model or str(RunDir(run_dir).best)
        config = config or str(RunDir(run_dir).config)
    if not model:
        raise click.UsageError("Give --model MODEL.keras or --run RUN_DIR.")
    if from_run and not trust_run_plugins:
        return model, config_without_run_plugins(config, overrides)
    return model, prepare_config(config or {}, overrides)


def _check_one_run(model: str, run_dir: str) -> None:
    """Refuse `--model OTHER_RUN/best.keras --run RUN`: the model's gate and post-processing (beside it)
    would be mixed with another run's config without a word."""
    home = Path(model).resolve().parent
    if home == Path(run_dir).resolve() or not (RunDir(home).config.is_file() or RunDir(home).state.is_file()):
        return
    raise click.UsageError(
        f"--model {model} belongs to the run {home}, but --run names another run, {run_dir}: the model (with the "
        f"post-processing and gate beside it) would be used with that other run's config. Give --run {home} alone, "
        f"or --model {model} with the config that trained it ({RunDir(home).config}) as CONFIG.")


def _load_plugin_option(ctx: click.Context, param: click.Parameter, specs: tuple[str, ...]) -> tuple[str, ...]:
    """Load `--plugin` modules as soon as they are parsed (an eager option), so that their components,
    and commands from their `register_commands` hook, are there when click looks up the command."""
    for spec in specs:
        try:
            load_local_plugin(spec)
        except ShiptoolkitError as exc:
            if ctx.resilient_parsing:  # shell completion: complete what can be
                continue
            raise click.ClickException(str(exc)) from exc
    return specs


def _verbose_option(ctx: click.Context, param: click.Parameter, verbose: bool) -> bool:
    if verbose:
        quiet.set_verbose()
    return verbose


@click.group(cls=FriendlyGroup)
@click.version_option(__version__, prog_name="shiptoolkit")
@click.option("--verbose", is_flag=True, is_eager=True, expose_value=False, callback=_verbose_option,
              help="Show TensorFlow's own start-up and log lines (hidden by default; also SHIPTOOLKIT_VERBOSE=1).")
@click.option("--plugin", "plugins", multiple=True, metavar="SPEC", is_eager=True, callback=_load_plugin_option,
              help="Load a local plugin first: file.py, package.module or package.module:attr. Repeatable.")
def cli(plugins: tuple[str, ...]) -> None:
    """Ship segmentation for the Kaggle Airbus data: samplers, backbones, losses, metrics, classifiers
    and callbacks from plugins, assembled by a TOML file.

    Quick start:

        shiptoolkit run examples/quickstart.toml
    """
    # `--plugin` modules are loaded already, by the option's callback.


from shiptoolkit.cli import (  # noqa: E402,F401,E501  (commands attach themselves)
    components,
    cv,
    data,
    detect,
    evaluate,
    export,
    plugins_cmd,
    predict,
    run,
    score,
    submission,
    synth,
    train,
)
