"""The `shiptoolkit` command: a thin click layer over the library. One small module per group."""

from __future__ import annotations

import os

import click

# TensorFlow's C++ start-up chatter is noise on a command line; users can still opt in.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from shiptoolkit import __version__
from shiptoolkit.errors import ShiptoolkitError
from shiptoolkit.plugins import load_local_plugin


class FriendlyGroup(click.Group):
    """Turns user mistakes (`ShiptoolkitError`) into one clean message, no traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ShiptoolkitError as exc:
            raise click.ClickException(str(exc)) from exc


def model_and_config(config: str | None, model: str | None, run_dir: str | None, overrides: tuple[str, ...]):
    """(model path, resolved config) for commands that use a trained model.

    `--run RUN_DIR` stands for its best.keras and, without CONFIG, its config.toml.
    """
    from pathlib import Path

    from shiptoolkit.runner import prepare_config

    if run_dir:
        model = model or str(Path(run_dir) / "best.keras")
        config = config or str(Path(run_dir) / "config.toml")
    if not model:
        raise click.UsageError("Give --model MODEL.keras or --run RUN_DIR.")
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
