"""`shiptoolkit plugins`: loaded plugins, their versions, hooks and components."""

from __future__ import annotations

import json

import click

from shiptoolkit.cli import cli
from shiptoolkit.plugins import get_registry, plugin_info


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.option("--all", "show_all", is_flag=True, help="Include the built-in plugins.")
def plugins(as_json: bool, show_all: bool) -> None:
    """List loaded plugins and what each registered.

    Example:

        shiptoolkit --plugin my_sampler.py plugins
    """
    info = [p for p in plugin_info() if show_all or not p["builtin"]]
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    if not info:
        click.echo("No plugins installed (built-ins are hidden; use --all).")
    for p in info:
        version = f" {p['version']}" if p["version"] else ""
        click.secho(f"{p['name']}{version}", bold=True)
        click.echo(f"  hooks: {', '.join(p['hooks'])}")
        for kind, names in p["components"].items():
            click.echo(f"  {get_registry(kind).plural}: {', '.join(names)}")
