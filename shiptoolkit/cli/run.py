"""`shiptoolkit run CONFIG`: the stages a TOML file names, in one run directory."""

from __future__ import annotations

import json

import click

from shiptoolkit import require_tensorflow
from shiptoolkit.cli import cli
from shiptoolkit.cli.interrupts import exit_on_interrupt
from shiptoolkit.cli.workers import apply_worker_options, worker_options
from shiptoolkit.config import prepare_config


@cli.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False))  # a file, or a packaged example's name
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a config value, e.g. --set train.epochs=1. Repeatable.")
@click.option("--stage", "stages", multiple=True, type=click.Choice(["train", "predict", "evaluate"]),
              help="Run only these stages (default: the config's run.stages). Repeatable.")
@click.option("--model", type=click.Path(exists=True, dir_okay=False),
              help="A trained .keras model, for predict/evaluate without training.")
@click.option("--dry-run", is_flag=True, help="Validate, print the resolved config and the components; train nothing.")
@click.option("--resume", type=click.Path(exists=True, file_okay=False),
              help="Finish an interrupted run: the stages it did not finish (its training from last.keras).")
@click.option("--accept-config-changes", is_flag=True,
              help="With --resume: go on even though the run's config.toml was edited in keys that describe the model.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@worker_options
def run(config: str | None, overrides: tuple[str, ...], stages: tuple[str, ...], model: str | None, dry_run: bool,
        resume: str | None, accept_config_changes: bool, quiet: bool, workers: str | None,
        worker_index: int | None) -> None:
    """Run the train, predict and evaluate stages of an experiment file.

    CONFIG is a TOML file, or the name of an example that ships with shiptoolkit (quickstart,
    cpu_long, ...; a name that matches nothing lists them).

    Examples:

        shiptoolkit run quickstart

        shiptoolkit run examples/quickstart.toml --set train.epochs=1

        shiptoolkit run --resume runs/quickstart-20260101-120000
    """
    if resume:
        if config or stages or model or dry_run:
            raise click.UsageError("--resume RUN_DIR goes on with the run's own config.toml, stages and model: "
                                   "give no CONFIG, --stage, --model or --dry-run with it.")
        _resume(resume, overrides, accept_config_changes, quiet)
        return
    if not config:
        raise click.UsageError("Give a CONFIG file, or --resume RUN_DIR.")
    overrides = apply_worker_options(workers, worker_index, overrides)
    require_tensorflow()  # a bare `pip install shiptoolkit` has none: say which extra, before anything else
    from shiptoolkit.runner import describe
    from shiptoolkit.runner import run as run_stages

    resolved = prepare_config(config, overrides)
    if dry_run:
        click.echo(resolved.to_toml())
        click.secho("components:", bold=True)
        click.echo(json.dumps(describe(resolved), indent=2, default=str))
        click.echo("dry run: config is valid; nothing was trained.")
        return
    with exit_on_interrupt(resume="run"):
        result = run_stages(resolved, stages=stages or None, model=model, progress=not quiet)
    if result.worker.is_chief:
        click.echo(result.summary())
    else:
        click.echo(f"{result.worker.describe()}: finished training in step with the chief, which predicts and "
                   "evaluates.")


def _resume(run_dir: str, overrides: tuple[str, ...], accept_config_changes: bool, quiet: bool) -> None:
    require_tensorflow()
    from shiptoolkit.runner import resume_run

    with exit_on_interrupt(resume="run"):
        result = resume_run(run_dir, overrides, progress=not quiet, accept_config_changes=accept_config_changes)
    click.echo(result.summary())
