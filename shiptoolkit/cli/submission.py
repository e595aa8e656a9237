"""`shiptoolkit submission merge PARTS... --out sub.csv`: one submission from the parts of a sharded predict."""

from __future__ import annotations

import click

from shiptoolkit.cli import cli
from shiptoolkit.inference.merging import merge_submissions
from shiptoolkit.inference.prediction import folder_items


@cli.group()
def submission() -> None:
    """Work with submission CSVs (ImageId,EncodedPixels)."""


@submission.command()
@click.argument("parts", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The merged submission (an existing file only with --overwrite; never one of PARTS).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file (once the new one is complete).")
@click.option("--images", type=click.Path(exists=True, file_okay=False),
              help="Also check that every image of this folder is in exactly one part, and no other image is "
                   "(needed for parts without a .shard.json).")
@click.option("--size", type=click.IntRange(min=1),
              help="Image height and width for the RLE checks [default: the parts' shard descriptions, else 768].")
def merge(parts: tuple[str, ...], out: str, overwrite: bool, images: str | None, size: int | None) -> None:
    """Merge the parts written by `shiptoolkit predict --shard I/N` into one submission.

    Refuses, naming the file and image: an image in two parts, a shard missing or given twice,
    parts of different N or predicted over different images, an image in the wrong shard, a part
    changed since predict wrote it, malformed RLE, and ships of one image that share a pixel.
    Each part's shard description (part.csv -> part.shard.json) proves that no image is missing;
    parts without one need --images FOLDER. The merged rows are sorted by ImageId and written
    atomically.

    Example:

        shiptoolkit submission merge submission-*-of-3.csv --out submission.csv
    """
    expected = [image_id for image_id, _ in folder_items(images)] if images else None
    s = merge_submissions(parts, out, overwrite, expected, images or "", size)
    click.echo(f"wrote {s.path}: {s.images} images, {s.images_with_ships} with ships, {s.ships} ships, "
               f"from {s.parts} part(s) ({s.completeness})")
