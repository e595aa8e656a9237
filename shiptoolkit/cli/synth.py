"""`shiptoolkit synth OUT`: write a synthetic dataset in the Kaggle layout."""

from __future__ import annotations

import click

from shiptoolkit.cli import cli
from shiptoolkit.cli.interrupts import exit_on_interrupt
from shiptoolkit.data.synth import generate_dataset
from shiptoolkit.errors import ShiptoolkitError


@cli.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--images", default=1000, show_default=True, help="Number of images.")
@click.option("--seed", default=0, show_default=True, help="The dataset is a pure function of its options.")
@click.option("--empty-fraction", default=0.78, show_default=True, help="Fraction of images without ships.")
@click.option("--size", default=768, show_default=True, help="Image height and width in pixels.")
@click.option("--workers", type=int, default=None, help="Processes (default: all cores).")
@click.option("--overlap-fraction", default=0.0, show_default=True,
              help="Fraction of images cut as overlapping crops of larger scenes (written to scenes.csv).")
def synth(out: str, images: int, seed: int, empty_fraction: float, size: int, workers: int | None,
          overlap_fraction: float) -> None:
    """Generate a synthetic Airbus-like dataset: JPGs in OUT/train_v2 and the segmentation CSV.

    Ships are rotated hulls with the real data's area distribution; whitecaps, clouds and
    coastline with piers are distractors. OUT must be new or empty.

    Example:

        shiptoolkit synth /tmp/ships --images 200 --seed 1
    """

    interrupted = (f"interrupted: nothing was written to {out} (synth fills a temporary folder and moves it there "
                   "when complete); run the same command again.")
    try:
        with exit_on_interrupt(nothing_to_resume=interrupted):
            summary = generate_dataset(out, images=images, seed=seed, empty_fraction=empty_fraction,
                                       size=size, workers=workers, overlap_fraction=overlap_fraction)
    except ShiptoolkitError:
        raise
    except ValueError as exc:  # a bad option value
        raise click.BadParameter(str(exc)) from None
    click.echo(f"wrote {summary.images} images ({summary.empty_images} without ships, {summary.ships} ships) "
               f"to {summary.path} in {summary.seconds:.1f} s")
