"""`shiptoolkit cv CONFIG --folds K`: k-fold cross-validation, one run per fold, with the table of them all."""

from __future__ import annotations

import click

from shiptoolkit import require_tensorflow
from shiptoolkit.cli import cli
from shiptoolkit.cli.interrupts import exit_on_interrupt


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False), required=False)
@click.option("--folds", type=click.IntRange(min=2), help="Number of folds (default: the config's cv.folds, 5).")
@click.option("--seed", type=int, help="Seed of the fold assignment (default: the config's cv.seed).")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a config value, e.g. --set train.epochs=1. Repeatable.")
@click.option("--resume", type=click.Path(exists=True, file_okay=False),
              help="A cv folder to finish: the folds without a score are run (again).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def cv(config: str | None, folds: int | None, seed: int | None, overrides: tuple[str, ...], resume: str | None,
       quiet: bool) -> None:
    """Cross-validate an experiment: each fold's images are the test set of one run.

    Folds come from a seeded hash of each ImageId (cv.seed), stratified by ships, whole groups of
    overlapping images in one fold with data.split = "groups". Each fold's run trains on the other
    folds, tunes on validation carved from them (data.val_fraction) and is scored on its fold,
    which no choice ever saw. Prints each fold's f2 beside its all-empty baseline and the
    prior-weighted f2 (at data.empty_prior empty images) beside the prior; writes cv.json,
    oof.csv and cv.png into the cv folder under run.out_dir.

    Examples:

        shiptoolkit cv examples/real_cpu.toml --folds 5 --set data.path=airbus

        shiptoolkit cv --resume runs/real_cpu-cv-20261206-101500
    """
    if (config is None) == (resume is None):
        raise click.UsageError("Give a CONFIG, or --resume CV_DIR to finish a cross-validation.")
    require_tensorflow()
    from shiptoolkit.cv import cross_validate, resume_hint

    with exit_on_interrupt(also=resume_hint):
        result = cross_validate(config, folds, seed, list(overrides), progress=not quiet, resume=resume)
    click.echo(result.table())
