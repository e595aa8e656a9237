"""`shiptoolkit data ...`: inspect datasets."""

from __future__ import annotations

import json
import sys

import click

from shiptoolkit.cli import cli
from shiptoolkit.data.check import check_dataset


@cli.group()
def data() -> None:
    """Inspect datasets in the Kaggle layout."""


@data.command()
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@click.option("--csv", default="train_ship_segmentations_v2.csv", show_default=True, help="CSV inside ROOT.")
@click.option("--images", default="train_v2", show_default=True, help="Image folder inside ROOT.")
@click.option("--size", default=768, show_default=True, type=click.IntRange(min=1),
              help="Expected image height and width in pixels.")
@click.option("--no-images", is_flag=True, help="Skip opening every image (only the CSV is checked).")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
def check(root: str, csv: str, images: str, size: int, no_images: bool, as_json: bool) -> None:
    """Report a dataset's statistics and every problem found; exit 1 if there are problems.

    Problems: malformed RLE, unsafe ImageIds, missing or corrupt images, duplicate rows, and
    image files that the CSV does not list.

    Example:

        shiptoolkit data check /data/airbus
    """

    report = check_dataset(root, csv, images, check_images=not no_images, progress=not as_json, size=size)
    info = report.to_dict()
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        click.echo(f"dataset:          {info['root']}")
        click.echo(f"images:           {info['images']}")
        click.echo(f"without ships:    {info['empty_images']} ({info['empty_fraction']:.1%})")
        click.echo(f"ships:            {info['ships']}")
        per = ", ".join(f"{k}: {v}" for k, v in info["ships_per_image"].items())
        click.echo(f"ships per image:  {per}")
        if info["ship_area"]:
            area = "  ".join(f"{k} {v:g}" for k, v in info["ship_area"].items())
            click.echo(f"ship area (px):   {area}")
        if report.ok:
            click.secho("no problems found", fg="green")
        for kind, count in info["problems"].items():
            click.secho(f"{kind}: {count}", fg="red", bold=True)
            for example in info["problem_examples"].get(kind, []):
                click.echo(f"  {example}")
    if not report.ok:
        sys.exit(1)
