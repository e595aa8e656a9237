"""A run directory's config.toml, loaded without importing the plugin modules it names.

`predict --run` and `evaluate --run` read a run directory that may come from someone else.
Its `[plugins] modules` are Python files or modules: importing them runs their code, which a
.keras model (always loaded in safe mode) never does. So they are skipped, with a notice, unless
the user loads them on purpose (`--trust-run-plugins`, or the global `--plugin`). Prediction
needs none of them: only [data], [predict], [classifier] and the .keras files.
"""

from __future__ import annotations

from pathlib import Path

import click

from shiptoolkit.config import Config, prepare_config
from shiptoolkit.plugins import is_loaded


def config_without_run_plugins(path: str | Path, overrides: tuple[str, ...] | list[str]) -> Config:
    """The run's config with its [plugins] modules left out, except those --plugin loaded already.

    Components from the skipped plugins are unknown, so the config is loaded without component
    checks; the skipped modules are dropped from the returned config, so that no later stage
    (e.g. `runner.run`, which loads a config's plugins) imports them either.
    """
    config = prepare_config(path, overrides, load_plugins=False)
    modules = config.settings.plugins.modules
    loaded = [spec for spec in modules if is_loaded(spec, config.base_dir)]
    skipped = [spec for spec in modules if spec not in loaded]
    if not skipped:  # nothing from the run would be imported: validate its components as usual
        return prepare_config(path, overrides)
    example = skipped[0]
    if example.endswith(".py") and not Path(example).is_absolute():
        example = str(config.base_dir / example)
    click.echo(f"Not importing the plugin module(s) {', '.join(map(repr, skipped))} named in [plugins] of "
               f"{str(path)!r}: a run directory from elsewhere would run their code. Prediction does not need "
               f"them unless the model uses their layers. If you trust this run, pass --trust-run-plugins, or "
               f"load a module yourself: shiptoolkit --plugin {example} <command> ...", err=True)
    values = {**config.values, "plugins": {**config.values["plugins"], "modules": loaded}}
    return Config(values, config.source, config.overrides)
