"""Markdown references generated from the code: components (registries), config (SCHEMA), CLI (click).

(The design page's module map is drawn by `benchmarks/package_map.py`: repository tooling, not the package.)

The docs site renders these at build time (docs/hooks.py), and `shiptoolkit components` reads
the same registries, so neither can drift from the code.
"""

from __future__ import annotations

from typing import Any

import click

from shiptoolkit.cli import cli
from shiptoolkit.config import SCHEMA
from shiptoolkit.models.encoder_facts import facts_cells
from shiptoolkit.moved import MOVED, REMOVED_IN
from shiptoolkit.plugins import KINDS, get_registry


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def components_markdown() -> str:
    """One section per component kind, one subsection per component: summary, plugin, parameters."""
    out = []
    for kind in KINDS:
        registry = get_registry(kind)
        out.append(f"## {registry.plural.capitalize()}\n")
        if not len(registry):
            out.append("_None registered._\n")
        out.extend(_KIND_TABLES.get(kind, lambda _: [])(registry))
        for component in registry:
            out.append(f"### `{component.name}`\n")
            out.append(f"{component.summary or '_No summary._'}\n")
            out.append(f"Provided by plugin `{component.plugin}`. "
                       f"Python: `{component.factory.__module__}.{component.factory.__qualname__}`.\n")
            params = component.params
            if params:
                out.append("| parameter | type | default | range | meaning |\n|---|---|---|---|---|")
                for p in params:
                    default = "**required**" if p.required else f"`{p.default!r}`"
                    allowed = _cell(str(p.range)) if p.range else ""
                    out.append(f"| `{p.name}` | `{_cell(p.type)}` | {_cell(default)} | {allowed} | {_cell(p.doc)} |")
                out.append("")
            else:
                out.append("No parameters.\n")
    return "\n".join(out)


def _architectures_table(registry) -> list[str]:
    """The backbones taking an `encoder`: segmentation-models' architectures."""
    names = [c.name for c in registry if "encoder" in {p.name for p in c.params}]
    if not names:
        return []
    return [f"Architectures taking an `encoder` (any of the [encoders](#encoders) below): "
            f"{', '.join(f'`{n}`' for n in names)}.\n"]


def _encoders_table(registry) -> list[str]:
    """encoder | parameters | ImageNet weights | skip strides, from each factory's declared facts ("-": none)."""
    out = ["Parameters of the encoder alone with 3 bands; skip strides: the features the decoders take "
           "(+ the deepest output's stride). Declared by each factory (`encoder_facts`) and checked against "
           "the built graphs by the tests.\n",
           "| encoder | parameters | ImageNet weights | skip strides |", "|---|---:|---|---|"]
    for component in registry:
        params, weights, strides = facts_cells(component.factory)
        out.append(f"| `{component.name}` | {params} | {_cell(weights)} | {strides} |")
    return [*out, ""]


_KIND_TABLES = {"backbone": _architectures_table, "encoder": _encoders_table}


def config_markdown() -> str:
    """Every TOML section and key with type, default, range (numbers) and meaning."""
    out = []
    for section in SCHEMA.values():
        out.append(f"## `[{section.name}]`\n\n{section.doc}\n")
        if section.component:
            names = ", ".join(f"`{n}`" for n in get_registry(section.component).names())
            default = f"`{section.default_component}`" if section.default_component else "`\"\"`: none"
            own = " and the keys below" if section.keys else ""
            out.append(f"`name` picks a {section.component} (default {default}; "
                       f"registered: {names}); the other keys are that component's parameters{own}, "
                       f"listed in the [component reference](components.md).\n")
            if not section.keys:
                continue
        out.append("| key | type | default | range | meaning |\n|---|---|---|---|---|")
        for key in section.keys:
            choices = f" One of: {', '.join(f'`{c}`' for c in key.choices)}." if key.choices else ""
            allowed = _cell(str(key.range)) if key.range else ""  # checked at load (each item of a list)
            out.append(f"| `{key.name}` | `{key.type_name}` | `{_cell(repr(key.default))}` | {allowed} | "
                       f"{_cell(key.doc)}{choices} |")
        out.append("")
    return "\n".join(out)


def cli_markdown(command: click.Command | None = None, prefix: str = "shiptoolkit", level: int = 2) -> str:
    """Help text of every command and subcommand, as click renders it."""
    command = command or cli
    ctx = click.Context(command, info_name=prefix)
    out = [f"{'#' * level} `{prefix}`\n", "```text", command.get_help(ctx), "```\n"]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            out.append(cli_markdown(command.get_command(ctx, name), f"{prefix} {name}", level + 1))
    return "\n".join(out)


def moved_markdown() -> str:
    """The old flat import paths and their new homes (`shiptoolkit.moved`), for plugin authors."""
    out = [f"| old path (warns; removed in {REMOVED_IN}) | new path |", "|---|---|"]
    for old, new in sorted(MOVED.items()):
        out.append(f"| `shiptoolkit.{old}` | {' and '.join(f'`shiptoolkit.{n}`' for n in new)} |")
    return "\n".join(out) + "\n"
