"""`shiptoolkit evaluate`: score a trained model on full images, the test set by default (evaluate.images)."""

from __future__ import annotations

import click

from shiptoolkit.cli import cli, model_and_config
from shiptoolkit.cli.members import RUN_HELP, ensemble_members, is_ensemble
from shiptoolkit.ensembles import evaluate_ensemble


@cli.command()
@click.argument("config", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--model", type=click.Path(exists=True, dir_okay=False), help="A trained .keras model.")
@click.option("--run", "run_dirs", multiple=True, type=click.Path(exists=True, file_okay=False), help=RUN_HELP)
@click.option("--trust-run-plugins", is_flag=True,
              help="Import the [plugins] modules of the --run directory's config.toml (they run code; off by default).")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a config value, e.g. --set predict.threshold=0.6 --set predict.split=watershed.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def evaluate(config: str | None, model: str | None, run_dirs: tuple[str, ...], trust_run_plugins: bool,
             overrides: tuple[str, ...], quiet: bool) -> None:
    """Score a model on the full images of the test set: f2 beside the all-empty baseline, dice, IoU,
    image-level precision/recall and the false-positive rate on empty images.

    Which images: evaluate.images, "test" by default (the data's test set, never used for a choice);
    --set evaluate.images=validation scores the validation split instead (tuned on: not a test figure).

    Writes metrics.json and examples.png into a new run directory (nothing is overwritten). With
    a [classifier] in the config, f2 is reported with and without the gate.

    Several --run (or a folder of runs) score their ensemble (`<name>-ensemble-<time>/`), its
    post-processing re-tuned on the members' own validation images; the images scored must be
    none of the members' training or validation images.

    Examples:

        shiptoolkit evaluate --run runs/quickstart-20260101-120000 --set predict.min_area=60

        shiptoolkit evaluate --run runs/a-20260101-120000 --run runs/b-20260102-090000
    """
    from shiptoolkit.runner import run as run_stages

    if is_ensemble(run_dirs):
        if model:
            raise click.UsageError("Give --model MODEL or --run RUN_DIR (repeatable), not both.")
        members, resolved = ensemble_members(run_dirs, config, overrides, trust_run_plugins)
        click.echo(evaluate_ensemble(members, resolved, progress=not quiet, say=click.echo).summary())
        return
    run_dir = run_dirs[0] if run_dirs else None
    model, resolved = model_and_config(config, model, run_dir, overrides, trust_run_plugins=trust_run_plugins)
    result = run_stages(resolved, stages=["evaluate"], model=model, progress=not quiet)
    click.echo(result.summary())
