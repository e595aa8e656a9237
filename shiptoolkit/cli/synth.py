"""`shiptoolkit synth OUT`: write a synthetic dataset in the Kaggle layout (or, with --scene, a whole GeoTIFF scene)."""

from __future__ import annotations

import click

from shiptoolkit.cli import cli
from shiptoolkit.cli.interrupts import exit_on_interrupt
from shiptoolkit.data.synth import generate_dataset
from shiptoolkit.errors import ShiptoolkitError
from shiptoolkit.scenes.synthetic import generate_scene

# Options of each kind of output: given for the other kind, they are a mistake, not silently ignored.
_DATASET_OPTIONS = ("images", "empty_fraction", "size", "workers", "overlap_fraction")
_SCENE_OPTIONS = ("scene_size", "bands", "dtype", "ships", "nodata_margin", "window", "overlap", "cog")


@cli.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--images", default=1000, show_default=True, help="Number of images.")
@click.option("--seed", default=0, show_default=True, help="The dataset is a pure function of its options.")
@click.option("--empty-fraction", default=0.78, show_default=True, help="Fraction of images without ships.")
@click.option("--size", default=768, show_default=True, help="Image height and width in pixels.")
@click.option("--workers", type=int, default=None, help="Processes (default: all cores).")
@click.option("--overlap-fraction", default=0.0, show_default=True,
              help="Fraction of images cut as overlapping crops of larger scenes (written to scenes.csv).")
@click.option("--scene", is_flag=True,
              help="Write one whole georeferenced scene instead (OUT/scene.tif and its truth; needs the geo extra).")
@click.option("--scene-size", type=click.IntRange(min=64), default=3072, show_default=True,
              help="--scene: height and width in pixels.")
@click.option("--bands", type=click.IntRange(min=3), default=3, show_default=True,
              help="--scene: bands (red, green, blue, near infrared, ...).")
@click.option("--dtype", type=click.Choice(["uint8", "uint16"]), default="uint8", show_default=True,
              help="--scene: pixel type (uint16: 8-bit values * 12 + 150, like a 12-bit sensor).")
@click.option("--ships", type=click.IntRange(min=0), default=None,
              help="--scene: ships to place (default: 2 per 768 x 768 px of area).")
@click.option("--nodata-margin", type=click.IntRange(min=0), default=64, show_default=True,
              help="--scene: px of nodata around the footprint.")
@click.option("--window", type=click.IntRange(min=32), default=768, show_default=True,
              help="--scene: the detection window (px, as detect's --window) whose borders some ships cross.")
@click.option("--overlap", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="--scene: the fraction of a window shared with its neighbour (as detect's --overlap).")
@click.option("--cog", is_flag=True, help="--scene: write a Cloud-Optimized GeoTIFF.")
@click.pass_context
def synth(ctx: click.Context, out: str, images: int, seed: int, empty_fraction: float, size: int,
          workers: int | None, overlap_fraction: float, scene: bool, **scene_options) -> None:
    """Generate a synthetic Airbus-like dataset: JPGs in OUT/train_v2 and the segmentation CSV.

    Ships are rotated hulls with the real data's area distribution; whitecaps, clouds and
    coastline with piers are distractors. OUT must be new or empty.

    With --scene: one GeoTIFF mosaic, OUT/scene.tif (UTM 31N, 1.5 m pixels), with ships at known map
    coordinates (some across the borders of --window/--overlap windows) and nodata margins; beside it
    scene.ships.geojson (the true hulls, lon/lat), scene.truth.json and scene.labels.tif (ship ids).

    Examples:

        shiptoolkit synth /tmp/ships --images 200 --seed 1

        shiptoolkit synth /tmp/scene --scene --scene-size 3072 --bands 4 --dtype uint16
    """
    _refuse_other_kind(ctx, scene)
    if scene:
        _synth_scene(out, seed, scene_options)
        return

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


def _refuse_other_kind(ctx: click.Context, scene: bool) -> None:
    """An option of the dataset given with --scene (or of the scene without it) is a mistake: say so."""
    given = [name for name in (_DATASET_OPTIONS if scene else _SCENE_OPTIONS)
             if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise click.UsageError(f"{flags} applies to a scene (add --scene)." if not scene else
                               f"{flags} applies to a dataset of images, not to --scene (drop it, or drop --scene).")


def _synth_scene(out: str, seed: int, options: dict) -> None:
    interrupted = f"interrupted: nothing was written to {out}; run the same command again."
    size = options.pop("scene_size")
    try:
        with exit_on_interrupt(nothing_to_resume=interrupted):
            truth = generate_scene(out, size=size, seed=seed, **options)
    except ShiptoolkitError:
        raise
    except ValueError as exc:  # a bad option value
        raise click.BadParameter(str(exc)) from None
    km2 = (truth.size * truth.pixel_size_m / 1000) ** 2
    click.echo(f"wrote {truth.path} ({truth.size} x {truth.size} px, {km2:.1f} km², {truth.bands} bands "
               f"{truth.dtype}, {truth.crs}) with {len(truth.ships)} ships ({len(truth.crossing)} across window "
               f"borders); true hulls in {truth.geojson.name}, {truth.truth.name}, {truth.labels.name}")
