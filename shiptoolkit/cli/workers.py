"""`--workers host:port,... --worker-index I` for `train` and `run`: several machines, no JSON by hand.

The options build `TF_CONFIG` (replacing one already in the environment, with a notice) and set
train.strategy = "multi_worker". Without them, a `TF_CONFIG` from the launcher is used as it is
when the config's train.strategy is "multi_worker" (see docs/multi-machine.md).
"""

from __future__ import annotations

import os

import click

from shiptoolkit.errors import ConfigError
from shiptoolkit.training.cluster import ENV, parse_workers, tf_config

STRATEGY = "train.strategy=multi_worker"


def worker_options(command):
    """Add --workers and --worker-index to a click command."""
    command = click.option("--worker-index", type=int, default=None, metavar="I",
                           help="This machine's position in --workers (0 = the chief, which writes the run "
                                "directory), e.g. $SLURM_PROCID or $JOB_COMPLETION_INDEX.")(command)
    return click.option("--workers", default=None, metavar="HOST:PORT,...",
                        help="Train on several machines: every worker's host:port, the same list on each "
                             "(sets TF_CONFIG and train.strategy=multi_worker).")(command)


def apply_worker_options(workers: str | None, index: int | None, overrides: tuple[str, ...]) -> tuple[str, ...]:
    """Check the options, export TF_CONFIG for them, and return the overrides with the strategy added.

    Raises:
        click.UsageError / click.BadParameter: --worker-index without --workers or the other way
            round, an index out of range, a malformed host:port.
    """
    if workers is None:
        if index is not None:
            raise click.UsageError("--worker-index needs --workers HOST:PORT,... (every worker's address, the same "
                                   "list on every machine).")
        return overrides
    if index is None:
        raise click.UsageError("--workers needs --worker-index I: this machine's position in the list "
                               "(0 = the chief), e.g. --worker-index $SLURM_PROCID.")
    try:
        spec = tf_config(parse_workers(workers), index)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="'--workers' / '--worker-index'") from None
    if os.environ.get(ENV, "").strip() and os.environ[ENV] != spec:
        click.echo(f"Note: --workers replaces the {ENV} set in the environment.", err=True)
    os.environ[ENV] = spec
    return (*overrides, STRATEGY)
