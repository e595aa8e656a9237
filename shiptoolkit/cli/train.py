"""`shiptoolkit train CONFIG`: only the training stage; `--resume RUN_DIR` continues a run."""

from __future__ import annotations

import click

from shiptoolkit import require_tensorflow
from shiptoolkit.cli import cli
from shiptoolkit.cli.interrupts import exit_on_interrupt
from shiptoolkit.cli.workers import apply_worker_options, worker_options
from shiptoolkit.config import prepare_config
from shiptoolkit.rundir import RunDir


@cli.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False))  # a file or a packaged example's name
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a config value.")
@click.option("--resume", type=click.Path(exists=True, file_okay=False),
              help="Continue an interrupted run from its last checkpoint (uses the run's saved config).")
@click.option("--accept-config-changes", is_flag=True,
              help="With --resume: go on even though the run's config.toml was edited in keys that describe the model.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@worker_options
def train(config: str | None, overrides: tuple[str, ...], resume: str | None, accept_config_changes: bool, quiet: bool,
          workers: str | None, worker_index: int | None) -> None:
    """Train the model of an experiment file into a new run directory.

    CONFIG is a TOML file, or the name of an example that ships with shiptoolkit (e.g. quickstart).

    Examples:

        shiptoolkit train examples/resnet34_mixed.toml --set train.epochs=3

        shiptoolkit train resnet34_mixed --set train.epochs=3

        shiptoolkit train --resume runs/resnet34_mixed-20260101-120000 --set train.epochs=30

        shiptoolkit train quickstart --workers n1:2222,n2:2222 --worker-index 0
    """
    if not config and not resume:
        raise click.UsageError("Give a CONFIG file, or --resume RUN_DIR.")
    overrides = apply_worker_options(workers, worker_index, overrides)
    require_tensorflow()  # a bare `pip install shiptoolkit` has none: say which extra, before anything else
    from shiptoolkit.training.stage import train as train_stage

    resolved = None if resume else prepare_config(config, overrides)
    with exit_on_interrupt():
        result = train_stage(resolved, resume=resume, overrides=list(overrides), progress=not quiet,
                             accept_config_changes=accept_config_changes)
    if not result.worker.is_chief:
        click.echo(f"{result.worker.describe()}: finished training in step with the chief.")
        return
    click.echo(f"run directory: {result.run_dir}")
    click.echo(f"  best model:   {result.best_model_path}")
    for loaded in result.init_from:  # what train.init_from / classifier.init_from loaded
        click.echo(f"  {loaded}")
    run = RunDir(result.run_dir)
    click.echo(f"  history:      {run.history} (plot: {run.history_plot.name})")
    skipped = run.skipped
    if skipped.is_file():
        rows = skipped.read_text().count("\n") - 1
        click.echo(f"  skipped {rows} image(s) (data.on_error = \"skip\"): listed in {skipped}")
