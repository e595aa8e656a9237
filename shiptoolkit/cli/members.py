"""`--run` given several times, or naming a folder of runs: the members of an ensemble (`shiptoolkit.ensembles`).

Each member's config.toml is loaded as `--run` loads one run's (its [plugins] modules only with
--trust-run-plugins), with the `--set` overrides except those that decide its data split.
"""

from __future__ import annotations

from pathlib import Path

from shiptoolkit.cli import model_and_config
from shiptoolkit.config import Config
from shiptoolkit.ensembles import member_overrides
from shiptoolkit.inference.ensemble import Member, find_members, is_folder_of_runs
from shiptoolkit.rundir import RunDir

RUN_HELP = ("A run directory: uses its best.keras and (without CONFIG) its config.toml. Repeat it (--run A --run B), "
            "or name a folder of run directories (e.g. a cross-validation's), to use their ensemble: probabilities "
            "averaged, post-processing re-tuned on the members' own validation images.")


def is_ensemble(run_dirs: tuple[str, ...]) -> bool:
    """Several --run, or one naming a folder of runs (one plain --run predicts as it always did)."""
    return len(run_dirs) > 1 or (len(run_dirs) == 1 and is_folder_of_runs(run_dirs[0]))


def ensemble_members(run_dirs: tuple[str, ...], config: str | None, overrides: tuple[str, ...],
                     trust_run_plugins: bool) -> tuple[list[Member], Config]:
    """(members, the config to predict with: CONFIG, else the first member's config.toml, with --set)."""
    paths = find_members(run_dirs)
    members = [Member(RunDir(p), model_and_config(None, None, str(p), tuple(member_overrides(overrides)),
                                                  trust_run_plugins=trust_run_plugins)[1]) for p in paths]
    resolved = model_and_config(config, None, str(Path(paths[0])), overrides, trust_run_plugins=trust_run_plugins)[1]
    return members, resolved
