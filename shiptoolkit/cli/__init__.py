"""The `shiptoolkit` command: a thin click layer over the library. One small module per group."""

from __future__ import annotations

import errno
import os

import click

# TensorFlow's C++ start-up chatter is noise on a command line; users can still opt in.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from shiptoolkit import __version__
from shiptoolkit.cli.run_plugins import config_without_run_plugins
from shiptoolkit.config import prepare_config
from shiptoolkit.errors import ShiptoolkitError
from shiptoolkit.plugins import load_local_plugin
from shiptoolkit.rundir import RunDir

# Where each command writes, for the fix in a "cannot write" message.
_OUTPUT_OPTION = {"run": "--set run.out_dir=<folder>", "train": "--set run.out_dir=<folder>",
                  "evaluate": "--set run.out_dir=<folder>", "predict": "--out <file>", "score": "--per-image <file>",
                  "synth": "another OUT folder"}
# Errors of the machine around a path (permissions, read-only or full disk), not bugs: no traceback.
_ENVIRONMENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


class FriendlyGroup(click.Group):
    """Turns user mistakes (`ShiptoolkitError`) and unwritable paths (`OSError` naming a file, or
    permission / read-only / disk-full errors) into one clean message, no traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ShiptoolkitError as exc:
            raise click.ClickException(str(exc)) from exc
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
    if run_dir:
        model = model or str(RunDir(run_dir).best)
        config = config or str(RunDir(run_dir).config)
    if not model:
        raise click.UsageError("Give --model MODEL.keras or --run RUN_DIR.")
    if from_run and not trust_run_plugins:
        return model, config_without_run_plugins(config, overrides)
    return model, prepare_config(config or {}, overrides)


@click.group(cls=FriendlyGroup)
@click.version_option(__version__, prog_name="shiptoolkit")
@click.option("--plugin", "plugins", multiple=True, metavar="SPEC",
              help="Load a local plugin first: file.py, package.module or package.module:attr. Repeatable.")
def cli(plugins: tuple[str, ...]) -> None:
    """Ship segmentation for the Kaggle Airbus data: samplers, backbones, losses, metrics and classifiers
    from plugins, assembled by a TOML file.

    Quick start:

        shiptoolkit run examples/quickstart.toml
    """
    for spec in plugins:
        load_local_plugin(spec)


from shiptoolkit.cli import components, data, evaluate, plugins_cmd, predict, run, score, synth, train  # noqa: E402,F401,E501  (commands attach themselves)
