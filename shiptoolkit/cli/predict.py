"""`shiptoolkit predict`: a Kaggle submission for a folder of images."""

from __future__ import annotations

import time
import warnings
from functools import partial
from pathlib import Path

import click

from shiptoolkit.cli import cli, model_and_config
from shiptoolkit.cli.members import RUN_HELP, ensemble_members, is_ensemble
from shiptoolkit.config import Config
from shiptoolkit.data.airbus import Problem
from shiptoolkit.ensembles import predict_ensemble
from shiptoolkit.errors import ConfigError
from shiptoolkit.inference.exported import MANIFEST, ExportedModel, find_export, load_export
from shiptoolkit.inference.gate import Gate
from shiptoolkit.inference.sharding import Shard, parse_shard, sidecar_path
from shiptoolkit.inference.stage import PredictResult, predict_stage
from shiptoolkit.rundir import RunDir

SHOWN = 20  # skipped images listed with their reason; the rest by name only


def _shard_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Shard | None:
    try:
        return parse_shard(value) if value is not None else None
    except ConfigError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _default_out(shard: Shard | None) -> str:
    """submission.csv, or a name per shard, so that the parts written into one folder do not collide."""
    return f"submission-{shard.index}-of-{shard.count}.csv" if shard else "submission.csv"


def _model_config_and_gate(config: str | None, model: str | None, run_dir: str | None, overrides: tuple[str, ...],
                           trust_run_plugins: bool) -> tuple[ExportedModel | str, Config, Gate | None]:
    """(model, resolved config, gate) to predict with.

    An export brings its own settings and gate (`--set` still wins); a .keras file or run directory
    gives a model path and its config, and `predict_stage` loads the gate beside it (hence None here).
    """
    export = find_export(model) if model else None
    if export is not None:
        if run_dir:
            raise click.UsageError("Give either --model EXPORT or --run RUN_DIR, not both.")
        loaded = load_export(export)
        resolved, gate = loaded.predict_config(config, overrides)  # the export's settings; --set wins
        return loaded.segmenter, resolved, gate
    if model and not Path(model).is_file():
        hint = (f"; for a run directory use --run {model}" if RunDir(model).best.is_file() else "")
        raise click.UsageError(f"--model {model!r} is a folder but not an export written by `shiptoolkit export` "
                               f"(no {MANIFEST}): give a .keras file or an export folder{hint}.")
    model_path, resolved = model_and_config(config, model, run_dir, overrides, trust_run_plugins=trust_run_plugins)
    return model_path, resolved, None


def _echo_summary(result: PredictResult, seconds: float, shard: Shard | None) -> None:
    """What was written, how fast, and (for a shard) how to join the parts."""
    s = result.summary
    skipped = f" ({len(result.skipped)} skipped: empty rows)" if result.skipped else ""
    click.echo(f"wrote {s.path}: {s.images} images{skipped}, {s.images_with_ships} with ships, {s.ships} ships "
               f"({seconds / max(1, s.images):.2f} s per image)")
    if shard is not None:
        click.echo(f"shard {shard}: {s.images} of {result.total_images} images (described in "
                   f"{sidecar_path(s.path)}; merge all {shard.count} parts with `shiptoolkit submission merge`)")


def _echo_skipped(skipped: list[Problem]) -> None:
    """Nothing left out silently: each skipped image, and why (the first SHOWN; the rest by name only)."""
    if not skipped:
        return
    click.echo(f"skipped {len(skipped)} image(s) (data.on_error = \"skip\"; each has an empty row):")
    for problem in skipped[:SHOWN]:
        click.echo(f"  {problem.image_id}: {problem.message}")
    if len(skipped) > SHOWN:
        click.echo(f"  ... and {len(skipped) - SHOWN} more: " + ", ".join(p.image_id for p in skipped[SHOWN:]))


@cli.command()
@click.argument("config", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--model", type=click.Path(exists=True),
              help="A trained .keras model, or an export written by `shiptoolkit export` (its folder).")
@click.option("--run", "run_dirs", multiple=True, type=click.Path(exists=True, file_okay=False), help=RUN_HELP)
@click.option("--images", required=True, type=click.Path(exists=True, file_okay=False), help="Folder of images.")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Submission CSV to write (an existing one only with --overwrite). Default: submission.csv, "
                   "with --shard I/N submission-I-of-N.csv.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file (once the new one is complete).")
@click.option("--trust-run-plugins", is_flag=True,
              help="Import the [plugins] modules of the --run directory's config.toml (they run code; off by default).")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a config value, e.g. --set predict.threshold=0.6.")
@click.option("--shard", metavar="I/N", callback=_shard_option,
              help="Predict only part I of N disjoint parts (numbered from 1; by a hash of the ImageId, the "
                   "same on every machine); merge the parts with `shiptoolkit submission merge`.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def predict(config: str | None, model: str | None, run_dirs: tuple[str, ...], images: str, out: str | None,
            overwrite: bool, trust_run_plugins: bool, overrides: tuple[str, ...], shard: Shard | None,
            quiet: bool) -> None:
    """Predict every image of a folder and write a Kaggle submission (one row per ship).

    Thresholds, overlap, TTA, min_area and the image gate come from the config's [predict]
    section (CONFIG, else the run's config.toml, else the defaults). A config with a [classifier]
    uses the gate saved beside the model (classifier.keras, gate.json): images it rejects get an
    empty row without being segmented. Every image must be data.image_size square; with
    --set data.on_error=skip, unreadable or other-size images get an empty row and are listed.

    --model may name an export (saved_model, onnx or tflite, see `shiptoolkit export`): it runs
    with its own runtime, with the image size, post-processing and gate recorded in it (--set
    still overrides them). Load only exports you trust: .keras files are loaded in Keras' safe
    mode, but a SavedModel or TFLite file is a TensorFlow graph that shiptoolkit cannot vet.

    --shard I/N predicts the I-th of N disjoint parts of the images, e.g. one per machine, and
    writes a shard description beside the CSV (part.csv -> part.shard.json); `shiptoolkit
    submission merge` checks the parts and joins them into one submission.

    Several --run (or a folder of runs) predict with their ensemble: the segmenters' (and gates')
    probabilities averaged, the post-processing re-tuned on the members' own validation images
    (never on the images predicted); one line says the members and the post-processing used.

    Examples:

        shiptoolkit predict --run runs/quickstart-20260101-120000 --images test_v2 --out submission.csv

        shiptoolkit predict --run runs/quickstart-20260101-120000 --images test_v2 --shard 2/3

        shiptoolkit predict --run runs/a-20260101-120000 --run runs/b-20260102-090000 --images test_v2
    """
    if out is None:
        out = _default_out(shard)
    if is_ensemble(run_dirs):
        if model:
            raise click.UsageError("Give --model MODEL or --run RUN_DIR (repeatable), not both.")
        members, resolved = ensemble_members(run_dirs, config, overrides, trust_run_plugins)
        run = partial(predict_ensemble, members, images, out, resolved, progress=not quiet, overwrite=overwrite,
                      shard=shard, say=click.echo)
    else:
        model_or_path, resolved, gate = _model_config_and_gate(config, model, run_dirs[0] if run_dirs else None,
                                                               overrides, trust_run_plugins)
        run = partial(predict_stage, resolved, model_or_path, ".", progress=not quiet, images=images, out=out,
                      overwrite=overwrite, gate=gate, shard=shard)
    start = time.perf_counter()
    with warnings.catch_warnings():  # the skipped images are listed below, each with its reason
        warnings.filterwarnings("ignore", message=".* predicted as empty", category=UserWarning)
        result = run()
    _echo_summary(result, time.perf_counter() - start, shard)
    _echo_skipped(result.skipped)
