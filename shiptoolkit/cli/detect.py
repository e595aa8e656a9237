"""`shiptoolkit detect`: ships on whole georeferenced scenes, written as GeoJSON, GeoPackage or FlatGeobuf."""

from __future__ import annotations

from pathlib import Path

import click

from shiptoolkit.cli import cli
from shiptoolkit.cli.predict import _model_config_and_gate
from shiptoolkit.inference.exported import find_export
from shiptoolkit.scenes.detect import DEFAULT_OVERLAP, DetectSummary, check_arguments, detect_scenes, detector_for
from shiptoolkit.scenes.reading import require_geo
from shiptoolkit.scenes.recentre import DEFAULT_CONTEXT


def _run_and_scenes(paths: tuple[str, ...], model: str | None) -> tuple[str | None, str | None, list[str]]:
    """(model, run dir, scenes): with --model every path is a scene; else the first is the run (or export)."""
    if model:
        return model, None, list(paths)
    first, scenes = paths[0], list(paths[1:])
    if not Path(first).is_dir():
        raise click.UsageError(f"RUN_DIR {first!r} is not a folder: give the run directory (or an export folder) "
                               "first, then the scenes, or name the model with --model EXPORT.")
    if not scenes:
        raise click.UsageError(f"No scene given after RUN_DIR {first!r}: name one or more GeoTIFF/COG files.")
    return (first, None, scenes) if find_export(first) is not None else (None, first, scenes)


def _echo_summary(summary: DetectSummary) -> None:
    rate = summary.km2_per_second
    click.echo(f"wrote {summary.out}: {summary.ships} ship(s) on {len(summary.scenes)} scene(s), "
               f"{summary.km2:.2f} km² in {summary.seconds:.1f} s ({rate:.2f} km²/s)")
    for s in summary.scenes:
        probabilities = f"; probabilities: {s.probabilities}" if s.probabilities else ""
        lattice = f"one lattice of {s.patch_lattice[0]} px patches {s.patch_lattice[1]} px apart (no borders), " \
            if s.patch_lattice else ""
        click.echo(f"  {s.path}: {s.ships} ship(s), {s.km2:.2f} km², {s.windows} windows ({s.predicted} predicted, "
                   f"{s.nodata} all nodata, {s.rejected} rejected by the gate), {lattice}{s.centred_windows} centred "
                   "window(s), "
                   f"{s.border_views[1]} of {s.border_views[0]} border view(s) accepted{probabilities}")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True), metavar="RUN_DIR SCENE...")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Vector file to write: .geojson (RFC 7946, lon/lat), .gpkg or .fgb (the scene's CRS).")
@click.option("--model", type=click.Path(exists=True),
              help="An export (`shiptoolkit export`) or a .keras file instead of RUN_DIR: every path is a scene.")
@click.option("--bands", metavar="R,G,B", help="The scene's bands (1-based) in the model's R,G,B order, e.g. 3,2,1.")
@click.option("--scale", metavar="pLO,pHI|LO,HI",
              help="Scaling of scenes that are not 8-bit: a percentile stretch (p2,p98, the default) or a fixed "
                   "range (0,3000). Stated in the output's metadata.")
@click.option("--resample", is_flag=True, help="Read the scene at the model's pixel size (data.pixel_size_m).")
@click.option("--probabilities", type=click.Path(dir_okay=False),
              help="Also write the stitched ship probabilities as a georeferenced COG (uint8, 255 = 1.0).")
@click.option("--window", type=int, default=768, show_default=True, help="Side of the scene windows, in pixels.")
@click.option("--overlap", type=float, default=DEFAULT_OVERLAP, show_default=True,
              help="Fraction of a window shared with its neighbour (any overlap > 0 costs windows: 25 instead of 16 "
                   "on a 3,072 px scene; the patch lattice or centred windows already give ships at borders their "
                   "context).")
@click.option("--border-context", type=int, default=DEFAULT_CONTEXT, show_default=True,
              help="Ships at a window border (with a sliding-patch model: beside a window the gate rejected) are "
                   "predicted again on a window centred on them, with this many pixels of context on every side "
                   "(0: not predicted again).")
@click.option("--force", is_flag=True, help="Replace existing output files (once the new ones are complete).")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a config value, e.g. --set predict.threshold=0.6.")
@click.option("--trust-run-plugins", is_flag=True,
              help="Import the [plugins] modules of RUN_DIR's config.toml (they run code; off by default).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def detect(paths: tuple[str, ...], out: str, model: str | None, bands: str | None, scale: str | None, resample: bool,
           probabilities: str | None, window: int, overlap: float, border_context: int, force: bool,
           overrides: tuple[str, ...], trust_run_plugins: bool, quiet: bool) -> None:
    """Detect ships on whole georeferenced scenes (GeoTIFF/COG) and write them as vector features.

    Each scene is predicted window by window (padded at the edges, nodata never predicted), with
    the run's post-processing and gate, and the windows are stitched. A model that predicts by
    sliding patches gets one lattice of patches over the whole scene (no window borders for it); with
    a model that takes whole windows, each ship at a window border is predicted again on a window
    centred on it. Either way a ship comes out once and whole, as on a chip of its own; memory
    does not grow with the scene.
    Each ship has its polygon, oriented box (obb, WKT), centroid, length_m, width_m, heading_deg,
    area_m2, confidence (mean probability), gate_probability and scene.

    Examples:

        shiptoolkit detect runs/quickstart-20260101-120000 scene.tif --out ships.geojson

        shiptoolkit detect --model export/ a.tif b.tif --out ships.gpkg --bands 3,2,1 --scale p2,p98
    """
    require_geo()
    model, run_dir, scenes = _run_and_scenes(paths, model)
    check_arguments([Path(s) for s in scenes], out, bands, scale, window, overlap, probabilities, force,
                    border_context)
    model_or_path, resolved, gate = _model_config_and_gate(None, model, run_dir, overrides, trust_run_plugins)
    summary = detect_scenes(detector_for(resolved, model_or_path, gate), scenes, out, bands=bands, scale=scale,
                            window=window, overlap=overlap, border_context=border_context, resample=resample,
                            probabilities=probabilities, force=force, progress=not quiet)
    _echo_summary(summary)
