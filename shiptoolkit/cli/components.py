"""`shiptoolkit components`: list registered components with their parameters."""

from __future__ import annotations

import json

import click

from shiptoolkit.cli import cli
from shiptoolkit.models.encoder_facts import facts_cells
from shiptoolkit.plugins import KINDS, get_registry


@cli.command()
@click.argument("kind", required=False, type=click.Choice(list(KINDS)))
@click.option("--pattern", default="*", show_default=True, help="fnmatch pattern on names.")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.option("--params/--no-params", default=True, show_default=True, help="Show parameters.")
def components(kind: str | None, pattern: str, as_json: bool, params: bool) -> None:
    """List registered samplers, backbones, losses, metrics, classifiers and callbacks.

    Example:

        shiptoolkit components backbone --pattern 'resnet*'
    """
    kinds = [kind] if kind else list(KINDS)
    data = {k: [c.to_dict() for c in get_registry(k).list(pattern)] for k in kinds}
    if as_json:
        click.echo(json.dumps(data, indent=2, default=repr))
        return
    for k, items in data.items():
        click.secho(f"{get_registry(k).plural}:", bold=True)
        if not items:
            click.echo("  (none)")
        for item in items:
            click.echo(f"  {item['name']:<20} {item['summary']}  [{item['plugin']}]")
            if k == "encoder":  # the facts the factory declares (the docs' table), "-" for none
                count, weights, strides = facts_cells(get_registry(k).get(item["name"]).factory)
                click.echo(f"      {count} parameters; ImageNet weights: {weights}; skip strides {strides}")
            if params:
                for p in item["params"]:
                    default = "required" if p["required"] else f"default {p['default']!r}"
                    allowed = f"; {p['range']}" if p["range"] else ""  # from @param_ranges, checked at load
                    click.echo(f"      {p['name']}: {p['type']} ({default}{allowed})")
