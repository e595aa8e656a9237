"""`shiptoolkit evaluate`: score a trained model on the full validation images."""

from __future__ import annotations

import click

from shiptoolkit.cli import cli, model_and_config


@cli.command()
@click.argument("config", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--model", type=click.Path(exists=True, dir_okay=False), help="A trained .keras model.")
@click.option("--run", "run_dir", type=click.Path(exists=True, file_okay=False),
              help="A run directory: uses its best.keras and (without CONFIG) its config.toml.")
@click.option("--trust-run-plugins", is_flag=True,
              help="Import the [plugins] modules of the --run directory's config.toml (they run code; off by default).")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a config value, e.g. --set predict.threshold=0.6 --set predict.split=watershed.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def evaluate(config: str | None, model: str | None, run_dir: str | None, trust_run_plugins: bool,
             overrides: tuple[str, ...], quiet: bool) -> None:
    """Score a model on the full validation images: f2 beside the all-empty baseline, dice, IoU,
    image-level precision/recall and the false-positive rate on empty images.

    Writes metrics.json and examples.png into a new run directory (nothing is overwritten). With
    a [classifier] in the config, f2 is reported with and without the gate.

    Example:

        shiptoolkit evaluate --run runs/quickstart-20260101-120000 --set predict.min_area=60
    """
    from shiptoolkit.runner import run as run_stages

    model, resolved = model_and_config(config, model, run_dir, overrides, trust_run_plugins=trust_run_plugins)
    result = run_stages(resolved, stages=["evaluate"], model=model, progress=not quiet)
    click.echo(result.summary())
